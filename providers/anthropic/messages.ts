/**
 * OpenAI chat messages -> Anthropic Messages API `system` and `messages`, following LiteLLM's conversion
 * (litellm_core_utils/prompt_templates/factory.py `anthropic_messages_pt`, AnthropicConfig.translate_system_message):
 *
 * - `system` and `developer` messages, wherever they sit, become the top-level `system` list of text blocks
 *   (`cache_control` kept on each block).
 * - `user`, `tool` and `function` messages form user turns: consecutive ones merge into one message, because the
 *   API wants user and assistant turns to alternate. A tool result becomes a `tool_result` block.
 * - Consecutive `assistant` messages merge the same way: `thinking_blocks` first (the API rejects a turn whose
 *   thinking does not lead), then text, then `tool_use` blocks built from `tool_calls`.
 * - The final assistant turn (a prefill) loses its trailing whitespace, which the API rejects.
 *
 * API reference: https://docs.anthropic.com/en/api/messages
 */
import { randomUUID } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'
import type { ChatMessage } from '../../core/openai/types.js'

type Block = Record<string, unknown>
export interface AnthropicMessage {
  role: 'user' | 'assistant'
  content: Block[]
}

/** The image types the Messages API accepts in a base64 source; a PDF data URL becomes a document block. */
const PDF = 'application/pdf'

function invalid(message: string, param = 'messages'): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

/** Copy `cache_control` from an OpenAI part or message onto the Anthropic block, as LiteLLM does. */
function withCache(block: Block, from: Record<string, unknown>): Block {
  const cc = from.cache_control
  if (cc && typeof cc === 'object') block.cache_control = cc
  return block
}

/** System and developer messages -> the `system` text blocks (empty when there are none). */
export function systemBlocks(messages: readonly ChatMessage[]): Block[] {
  const out: Block[] = []
  for (const m of messages) {
    if (m.role !== 'system' && m.role !== 'developer') continue
    if (typeof m.content === 'string') {
      // The API rejects an empty text block (minLength 1); an empty system message says nothing anyway.
      if (m.content) out.push(withCache({ type: 'text', text: m.content }, m))
    } else if (Array.isArray(m.content)) {
      for (const p of m.content) {
        if (typeof p.text === 'string' && p.text) out.push(withCache({ type: 'text', text: p.text }, p))
      }
    }
  }
  return out
}

/**
 * `image_url` (a data URL or an http(s) URL) -> an image block, or a document block for a PDF. A data URL carries
 * its media type; `format` (LiteLLM's extension) overrides it.
 */
function imageBlock(part: Record<string, unknown>): Block {
  const iu = part.image_url
  const url = typeof iu === 'string' ? iu : iu && typeof iu === 'object' ? (iu as { url?: unknown }).url : undefined
  const format = iu && typeof iu === 'object' ? (iu as { format?: unknown }).format : undefined
  if (typeof url !== 'string' || !url) invalid('image_url.url must be a non-empty string')
  return withCache(mediaBlock(url, typeof format === 'string' ? format : undefined), part)
}

function mediaBlock(url: string, format: string | undefined): Block {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',')
    const meta = comma === -1 ? '' : url.slice(5, comma)
    if (!meta.endsWith(';base64')) invalid('An image data URL must be base64-encoded (data:<type>;base64,...)')
    const mediaType = format ?? meta.slice(0, -';base64'.length)
    const source = { type: 'base64', media_type: mediaType, data: url.slice(comma + 1) }
    return { type: mediaType === PDF ? 'document' : 'image', source }
  }
  if (url.startsWith('https://') || url.startsWith('http://')) {
    return { type: format === PDF ? 'document' : 'image', source: { type: 'url', url } }
  }
  return invalid('image_url.url must be a data URL or an http(s) URL')
}

/** OpenAI `file` part (file_data as a data URL) -> a document or image block. */
function fileBlock(part: Record<string, unknown>): Block {
  const f = (part.file ?? {}) as { file_data?: unknown; format?: unknown }
  if (typeof f.file_data !== 'string' || !f.file_data.startsWith('data:')) {
    invalid('Anthropic takes a file part only as file_data (a base64 data URL)')
  }
  return withCache(mediaBlock(f.file_data, typeof f.format === 'string' ? f.format : undefined), part)
}

/** User content parts -> Anthropic blocks. Anthropic-native `document` parts pass as given. */
function userBlocks(m: ChatMessage, out: Block[]): void {
  if (typeof m.content === 'string') {
    out.push(withCache({ type: 'text', text: m.content }, m))
    return
  }
  if (!Array.isArray(m.content)) return
  for (const p of m.content) {
    switch (p.type) {
      case 'text':
        out.push(withCache({ type: 'text', text: p.text }, p))
        break
      case 'image_url':
        out.push(imageBlock(p))
        break
      case 'file':
        out.push(fileBlock(p))
        break
      case 'document':
      case 'image':
        out.push(p)
        break
      default:
        invalid(`Content part type '${String(p.type)}' is not supported by Anthropic`)
    }
  }
}

/** A tool (or legacy function) result -> a `tool_result` block. */
function toolResult(m: ChatMessage): Block {
  let content: string | Block[] = ''
  if (typeof m.content === 'string') content = m.content
  else if (Array.isArray(m.content)) {
    content = []
    for (const p of m.content) {
      if (p.type === 'text') content.push({ type: 'text', text: p.text })
      else if (p.type === 'image_url') content.push(imageBlock({ image_url: p.image_url }))
    }
  }
  // A legacy `function` message has no id to answer; LiteLLM makes one up the same way.
  const id = m.tool_call_id ?? (m.role === 'function' ? `toolu_${randomUUID().replaceAll('-', '')}` : undefined)
  if (typeof id !== 'string' || !id) invalid('A tool message needs a tool_call_id')
  return withCache({ type: 'tool_result', tool_use_id: id, content }, m)
}

/** `arguments` (a JSON string) -> the `input` object a tool_use block requires. */
function toolInput(args: unknown, name: string): Record<string, unknown> {
  if (args === undefined || args === null || args === '') return {}
  let v: unknown = args
  if (typeof args === 'string') {
    try {
      v = JSON.parse(args)
    } catch {
      invalid(`The arguments of tool call '${name}' are not valid JSON`)
    }
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) invalid(`The arguments of tool call '${name}' must be a JSON object`)
  return v as Record<string, unknown>
}

/** A thinking block echoed back by the client, reduced to the fields the API takes. */
function thinkingBlock(b: Record<string, unknown>): Block | null {
  if (b.type === 'thinking' && typeof b.thinking === 'string' && b.thinking) {
    return { type: 'thinking', thinking: b.thinking, signature: b.signature }
  }
  if (b.type === 'redacted_thinking' && typeof b.data === 'string') return { type: 'redacted_thinking', data: b.data }
  return null
}

function assistantBlocks(m: ChatMessage, out: Block[]): void {
  if (Array.isArray(m.thinking_blocks)) {
    for (const b of m.thinking_blocks as Record<string, unknown>[]) {
      const t = b && typeof b === 'object' ? thinkingBlock(b) : null
      if (t) out.push(t)
    }
  }
  // Empty text blocks are left out: the API rejects them.
  if (typeof m.content === 'string') {
    if (m.content) out.push(withCache({ type: 'text', text: m.content }, m))
  } else if (Array.isArray(m.content)) {
    for (const p of m.content) {
      if (p.type === 'text' && typeof p.text === 'string' && p.text) out.push(withCache({ type: 'text', text: p.text }, p))
      else if (p.type === 'thinking' || p.type === 'redacted_thinking') {
        const t = thinkingBlock(p)
        if (t) out.push(t)
      }
    }
  }
  if (Array.isArray(m.tool_calls)) {
    for (const tc of m.tool_calls) {
      if (tc.type !== 'function') continue
      const name = tc.function?.name
      out.push(withCache({ type: 'tool_use', id: tc.id, name, input: toolInput(tc.function?.arguments, name) }, tc as never))
    }
  }
  const fc = m.function_call as { name?: string; arguments?: string } | undefined
  if (fc && typeof fc === 'object' && typeof fc.name === 'string') {
    out.push({ type: 'tool_use', id: `toolu_${randomUUID().replaceAll('-', '')}`, name: fc.name, input: toolInput(fc.arguments, fc.name) })
  }
}

/** Every non-system message -> alternating Anthropic turns. */
export function anthropicTurns(messages: readonly ChatMessage[]): AnthropicMessage[] {
  const out: AnthropicMessage[] = []
  let turn: AnthropicMessage | null = null
  for (const m of messages) {
    if (m.role === 'system' || m.role === 'developer') continue
    const role = m.role === 'assistant' ? 'assistant' : m.role === 'user' || m.role === 'tool' || m.role === 'function' ? 'user' : null
    if (!role) invalid(`Unknown message role '${String(m.role)}'`)
    if (!turn || turn.role !== role) {
      if (turn && turn.content.length) out.push(turn)
      // A turn that came out empty (an assistant message with no content) must not split its neighbours into two
      // turns of the same role.
      turn = out.length && out[out.length - 1]!.role === role ? out.pop()! : { role, content: [] }
    }
    if (m.role === 'user') userBlocks(m, turn.content)
    else if (role === 'user') turn.content.push(toolResult(m))
    else assistantBlocks(m, turn.content)
  }
  if (turn && turn.content.length) out.push(turn)
  const last = out[out.length - 1]
  if (last?.role === 'assistant') {
    for (const b of last.content) if (b.type === 'text' && typeof b.text === 'string') b.text = b.text.trimEnd()
    last.content = last.content.filter((b) => b.type !== 'text' || b.text !== '')
    if (!last.content.length) out.pop()
  }
  if (!out.length) invalid('Anthropic requires at least one user or assistant message besides the system prompt')
  return out
}
