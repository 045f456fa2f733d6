/**
 * Mistral chat replies -> OpenAI (shared/data/mistral/openapi.json ChatCompletionResponse, AssistantMessage,
 * ContentChunk). Mostly OpenAI's shape already; what differs:
 * - `content` may be a list of chunks: Magistral models answer `[{type: "thinking", thinking: [{type: "text",
 *   text}]}, {type: "text", text}]`. Text chunks become `content`, thinking becomes `reasoning_content` (LiteLLM's
 *   field for it).
 * - tool-call `arguments` may be an object (the spec allows it): OpenAI's are a JSON string.
 * - finish_reason "model_length" is a cut-off at the model's context ("length"); "error" means generation failed,
 *   which is a server error, not a finished answer.
 */
import { randomBytes } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'
import type { ChatCompletion, FinishReason, ToolCall, ToolCallDelta, Usage } from '../../core/openai/types.js'
import type { ResponseMeta } from '../types.js'

type Obj = Record<string, unknown>

export interface FlatContent {
  text: string | null
  reasoning: string | null
}

function chunkText(list: unknown): string {
  if (!Array.isArray(list)) return typeof list === 'string' ? list : ''
  let s = ''
  for (const c of list) if (c && typeof c === 'object' && typeof (c as Obj).text === 'string') s += (c as Obj).text as string
  return s
}

/** A message's (or delta's) content: a string passes; a chunk list splits into text and thinking. */
export function flatten(content: unknown): FlatContent {
  if (typeof content === 'string') return { text: content, reasoning: null }
  if (!Array.isArray(content)) return { text: null, reasoning: null }
  let text: string | null = null
  let reasoning: string | null = null
  for (const c of content) {
    if (!c || typeof c !== 'object') continue
    const o = c as Obj
    if (o.type === 'thinking') reasoning = (reasoning ?? '') + chunkText(o.thinking)
    else if (o.type === 'text' || o.type === undefined) text = (text ?? '') + (typeof o.text === 'string' ? o.text : '')
  }
  return { text, reasoning }
}

export function argumentsText(args: unknown): string {
  return typeof args === 'string' ? args : JSON.stringify(args ?? {})
}

/** Mistral's ToolCall id defaults to the string "null" when none is set. */
export function realId(id: unknown): string | undefined {
  return typeof id === 'string' && id && id !== 'null' ? id : undefined
}

export function finishReason(provider: string, reason: unknown): FinishReason | null {
  if (reason == null) return null
  if (reason === 'model_length') return 'length'
  if (reason === 'error') {
    throw gatewayError('GW_ERR_UPSTREAM_SERVER', `${provider} stopped generating with finish_reason "error"`, { provider })
  }
  return reason as FinishReason
}

function toolCalls(raw: unknown): ToolCall[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined
  return raw.map((tc: Obj) => {
    const fn = (tc?.function ?? {}) as Obj
    return {
      id: realId(tc?.id) ?? `call_${randomBytes(12).toString('hex')}`,
      type: 'function' as const,
      function: { name: typeof fn.name === 'string' ? fn.name : '', arguments: argumentsText(fn.arguments) },
    }
  })
}

/** Stream form of a tool call: index, id, type and name come whole with the arguments (Mistral does not split them). */
export function toolCallDelta(tc: Obj, index: number): ToolCallDelta {
  const fn = (tc.function ?? {}) as Obj
  const d: ToolCallDelta = { index, type: 'function', function: { arguments: argumentsText(fn.arguments) } }
  const id = realId(tc.id)
  if (id) d.id = id
  if (typeof fn.name === 'string') d.function!.name = fn.name
  return d
}

/** Mistral's UsageInfo has OpenAI's three counts; anything more it reports (cached prompt tokens) is kept. */
export function usageOf(u: unknown): Usage | null {
  if (!u || typeof u !== 'object') return null
  const o = u as Usage
  if (typeof o.prompt_tokens !== 'number' || typeof o.completion_tokens !== 'number') return null
  return { ...o, total_tokens: typeof o.total_tokens === 'number' ? o.total_tokens : o.prompt_tokens + o.completion_tokens }
}

export function toChatCompletion(provider: string, body: unknown, meta: ResponseMeta): ChatCompletion {
  const b = body as Obj
  if (!Array.isArray(b.choices)) {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned a chat response without a \`choices\` list`, { provider })
  }
  const choices: ChatCompletion['choices'] = b.choices.map((c: Obj, i: number) => {
    const m = (c?.message ?? {}) as Obj
    const { text, reasoning } = flatten(m.content)
    const calls = toolCalls(m.tool_calls)
    // Mistral sends '' for no content; OpenAI (and LiteLLM's Mistral transform) say null.
    const message: ChatCompletion['choices'][number]['message'] = { role: 'assistant', content: text === '' ? null : text, refusal: null }
    if (calls) message.tool_calls = calls
    if (reasoning) message.reasoning_content = reasoning
    return { index: typeof c?.index === 'number' ? c.index : i, message, finish_reason: finishReason(provider, c?.finish_reason) ?? 'stop', logprobs: null }
  })
  const out: ChatCompletion = {
    id: typeof b.id === 'string' ? b.id : `chatcmpl-${meta.requestId}`,
    object: 'chat.completion',
    created: typeof b.created === 'number' ? b.created : meta.created,
    model: meta.target.model,
    choices,
  }
  const usage = usageOf(b.usage)
  if (usage) out.usage = usage
  return out
}
