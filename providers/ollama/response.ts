/**
 * Ollama `/api/chat` reply -> OpenAI chat.completion (shared/data/ollama/openapi.yaml ChatResponse). The pieces
 * (tool calls, finish reason, usage) are shared with the stream translator.
 */
import { randomBytes } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/openai/types.js'
import type { ResponseMeta } from '../types.js'
import { ollamaError } from './errors.js'

export interface OllamaReplyMessage {
  role?: string
  content?: string | null
  thinking?: string | null
  tool_calls?: Array<{ id?: unknown; function?: { name?: unknown; arguments?: unknown } }> | null
}

export interface OllamaReply {
  model?: string
  message?: OllamaReplyMessage | null
  done?: boolean
  done_reason?: string
  prompt_eval_count?: number
  eval_count?: number
  logprobs?: unknown[] | null
  error?: unknown
}

/** Ollama gives tool calls no id (newer servers may): OpenAI clients need one to answer the call. */
export function toolCallId(given: unknown): string {
  return typeof given === 'string' && given ? given : `call_${randomBytes(12).toString('hex')}`
}

/** Ollama's arguments object -> OpenAI's JSON string (a string already is kept as sent). */
export function argumentsText(args: unknown): string {
  if (typeof args === 'string') return args
  return JSON.stringify(args ?? {})
}

export function toolCalls(raw: OllamaReplyMessage['tool_calls']): ToolCall[] {
  const out: ToolCall[] = []
  if (!Array.isArray(raw)) return out
  for (const tc of raw) {
    const fn = tc?.function
    if (!fn || typeof fn.name !== 'string') continue
    out.push({ id: toolCallId(tc.id), type: 'function', function: { name: fn.name, arguments: argumentsText(fn.arguments) } })
  }
  return out
}

/**
 * done_reason -> finish_reason. Ollama says "stop" for a turn that ended in tool calls too, and "load"/"unload"
 * for model housekeeping; only "length" is a cut-off.
 */
export function finishReason(doneReason: unknown, sawToolCalls: boolean): FinishReason {
  if (doneReason === 'length') return 'length'
  return sawToolCalls ? 'tool_calls' : 'stop'
}

/**
 * prompt_eval_count / eval_count -> usage. A reply missing either count gets null: the core then counts the call
 * itself instead of pricing half of it as zero.
 */
export function usageOf(r: OllamaReply): Usage | null {
  const p = r.prompt_eval_count
  const c = r.eval_count
  if (typeof p !== 'number' || typeof c !== 'number') return null
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c }
}

/** Ollama's per-token entries already have OpenAI's shape ({token, logprob, bytes, top_logprobs}). */
export function logprobsOf(r: OllamaReply): { content: unknown[]; refusal: null } | null {
  return Array.isArray(r.logprobs) ? { content: r.logprobs, refusal: null } : null
}

export function chatId(meta: ResponseMeta): string {
  return `chatcmpl-${meta.requestId}`
}

export function toChatCompletion(provider: string, body: unknown, meta: ResponseMeta): ChatCompletion {
  const r = body as OllamaReply
  if (r.error !== undefined) throw ollamaError(provider, 500, r, {})
  const m = r.message
  if (!m || typeof m !== 'object') {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned a chat response without a message`, { provider })
  }
  const calls = toolCalls(m.tool_calls)
  const message: ChatCompletion['choices'][number]['message'] = {
    role: 'assistant',
    // A turn that only calls tools has content null in OpenAI's replies; Ollama sends ''.
    content: typeof m.content === 'string' && (m.content !== '' || calls.length === 0) ? m.content : null,
    refusal: null,
  }
  if (calls.length) message.tool_calls = calls
  if (typeof m.thinking === 'string' && m.thinking) message.reasoning_content = m.thinking
  const out: ChatCompletion = {
    id: chatId(meta),
    object: 'chat.completion',
    created: meta.created,
    model: meta.target.model,
    choices: [{ index: 0, message, finish_reason: finishReason(r.done_reason, calls.length > 0), logprobs: logprobsOf(r) }],
  }
  const usage = usageOf(r)
  if (usage) out.usage = usage
  return out
}
