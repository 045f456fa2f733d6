/**
 * OpenAI chat messages -> Cohere v2 `messages` (https://docs.cohere.com/reference/chat, "messages"). The roles are
 * the same four; what differs is the content each role may carry:
 *  - system (and OpenAI's `developer`): text only;
 *  - user: a string, or `text` and `image_url` parts (the image part has OpenAI's shape: `{url, detail}`);
 *  - assistant: text (plus `thinking` parts, sent back from `reasoning_content`), `tool_calls` in OpenAI's shape,
 *    and `tool_plan`, Cohere's reflection before calling tools, where the message carries one (as `tool_plan` or,
 *    as this adapter returns it, `provider_specific_fields.tool_plan`);
 *  - tool: `tool_call_id` and text content.
 * Anything Cohere cannot take (audio or file parts, the legacy `function` role) is a 400 naming the message,
 * rather than a silently shortened prompt.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatMessage } from '../../core/openai/types.js'

type Part = Record<string, unknown>
type Content = string | Part[]

export interface CohereMessage {
  role: 'system' | 'user' | 'assistant' | 'tool'
  content?: Content
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>
  tool_plan?: string
  tool_call_id?: string
}

function unsupported(provider: string, param: string, what: string): never {
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', `${provider} does not support ${what} (${param}).`, { param })
}

/** A text part's text, or null when the part is not text. */
function textOf(part: Part): string | null {
  return part.type === 'text' && typeof part.text === 'string' ? part.text : null
}

/** Content that may only be text (system, tool, assistant): a string stays a string, text parts stay parts. */
function textContent(provider: string, content: ChatMessage['content'], param: string): Content {
  if (content == null) return ''
  if (typeof content === 'string') return content
  const out: Part[] = []
  for (let i = 0; i < content.length; i++) {
    const text = textOf(content[i]!)
    if (text === null) unsupported(provider, `${param}[${i}]`, `content parts of type '${String(content[i]!.type)}' in this role`)
    out.push({ type: 'text', text })
  }
  return out
}

function userContent(provider: string, content: ChatMessage['content'], param: string): Content {
  if (content == null) return ''
  if (typeof content === 'string') return content
  const out: Part[] = []
  for (let i = 0; i < content.length; i++) {
    const part = content[i]!
    const text = textOf(part)
    if (text !== null) {
      out.push({ type: 'text', text })
      continue
    }
    if (part.type === 'image_url') {
      // OpenAI sends {url, detail?}; some clients (and LiteLLM) also accept the URL as a bare string.
      const img = part.image_url
      const url = typeof img === 'string' ? img : (img as { url?: unknown } | undefined)?.url
      if (typeof url !== 'string') throw gatewayError('GW_ERR_VALIDATION', `Invalid image_url part at ${param}[${i}]: missing url.`, { param: `${param}[${i}]` })
      const detail = typeof img === 'object' && img !== null ? (img as { detail?: unknown }).detail : undefined
      out.push({ type: 'image_url', image_url: typeof detail === 'string' ? { url, detail } : { url } })
      continue
    }
    unsupported(provider, `${param}[${i}]`, `content parts of type '${String(part.type)}'`)
  }
  return out
}

function toolCalls(provider: string, calls: unknown, param: string): CohereMessage['tool_calls'] {
  if (!Array.isArray(calls)) return undefined
  return calls.map((c: { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } }, i) => {
    if (c.type !== undefined && c.type !== 'function') unsupported(provider, `${param}[${i}].type`, `tool calls of type '${String(c.type)}'`)
    const args = c.function?.arguments
    return {
      id: String(c.id ?? ''),
      type: 'function' as const,
      function: {
        name: String(c.function?.name ?? ''),
        // OpenAI's arguments are a JSON string; a client that sends the object is read generously.
        arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
      },
    }
  })
}

function assistant(provider: string, m: ChatMessage, param: string): CohereMessage {
  const out: CohereMessage = { role: 'assistant' }
  const calls = toolCalls(provider, m.tool_calls, `${param}.tool_calls`)
  const hasText = typeof m.content === 'string' ? m.content !== '' : Array.isArray(m.content) && m.content.length > 0
  const reasoning = typeof m.reasoning_content === 'string' && m.reasoning_content !== '' ? m.reasoning_content : null
  if (reasoning !== null) {
    // Cohere reasoning models expect their thinking back in multi-turn tool use: a `thinking` part before the text.
    const text = hasText ? textContent(provider, m.content, `${param}.content`) : ''
    const parts: Part[] = [{ type: 'thinking', thinking: reasoning }]
    if (typeof text === 'string') { if (text !== '') parts.push({ type: 'text', text }) } else parts.push(...text)
    out.content = parts
  } else if (hasText || !calls?.length) {
    // An assistant turn that only calls tools has `content: null` in OpenAI; Cohere wants no content then.
    out.content = textContent(provider, m.content, `${param}.content`)
  }
  if (calls?.length) out.tool_calls = calls
  const psf = m.provider_specific_fields as { tool_plan?: unknown } | undefined
  const plan = typeof m.tool_plan === 'string' ? m.tool_plan : typeof psf?.tool_plan === 'string' ? psf.tool_plan : undefined
  if (plan !== undefined && calls?.length) out.tool_plan = plan
  return out
}

export function toCohereMessages(provider: string, messages: unknown): CohereMessage[] {
  if (!Array.isArray(messages)) throw gatewayError('GW_ERR_VALIDATION', "Invalid 'messages': expected an array.", { param: 'messages' })
  const out: CohereMessage[] = new Array(messages.length)
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as ChatMessage
    const param = `messages[${i}]`
    switch (m.role) {
      case 'system':
      case 'developer':
        out[i] = { role: 'system', content: textContent(provider, m.content, `${param}.content`) }
        break
      case 'user':
        out[i] = { role: 'user', content: userContent(provider, m.content, `${param}.content`) }
        break
      case 'assistant':
        out[i] = assistant(provider, m, param)
        break
      case 'tool':
        out[i] = { role: 'tool', tool_call_id: String(m.tool_call_id ?? ''), content: textContent(provider, m.content, `${param}.content`) }
        break
      default:
        unsupported(provider, `${param}.role`, `messages with role '${String(m.role)}'`)
    }
  }
  return out
}
