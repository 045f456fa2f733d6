/**
 * Cohere v2 chat response -> OpenAI chat.completion (https://docs.cohere.com/reference/chat, 200 response).
 *  - message.content[]: `text` parts joined into `content`; `thinking` parts into `reasoning_content` (the field
 *    LiteLLM uses for every provider's reasoning);
 *  - message.tool_calls: already OpenAI's shape (arguments a JSON string);
 *  - message.tool_plan (and citations): under `provider_specific_fields`, where LiteLLM puts Cohere's extras;
 *  - finish_reason: COMPLETE / STOP_SEQUENCE -> stop, MAX_TOKENS -> length, TOOL_CALL -> tool_calls; ERROR and
 *    TIMEOUT are failures, not endings, and become errors (OpenAI has no "error" finish reason);
 *  - usage: `usage.tokens` (what the model processed), `billed_units` when tokens are absent, `cached_tokens`.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/openai/types.js'
import type { ResponseMeta } from '../types.js'
import { streamError } from './errors.js'

const FINISH: Readonly<Record<string, FinishReason>> = {
  COMPLETE: 'stop',
  STOP_SEQUENCE: 'stop',
  MAX_TOKENS: 'length',
  TOOL_CALL: 'tool_calls',
  // v1-era reasons some deployments still send.
  ERROR_TOXIC: 'content_filter',
  ERROR_LIMIT: 'length',
  USER_CANCEL: 'stop',
}

/** Cohere's finish reason -> OpenAI's; throws for ERROR / TIMEOUT (with Cohere's error text when it gave one). */
export function finishReason(provider: string, reason: unknown, error: unknown, hasToolCalls: boolean): FinishReason {
  if (reason === 'ERROR' || reason === 'TIMEOUT') throw streamError(provider, reason, typeof error === 'string' && error !== '' ? error : null)
  const mapped = typeof reason === 'string' ? FINISH[reason] : undefined
  // A turn that called tools must say so: OpenAI clients loop on finish_reason === 'tool_calls'.
  if (hasToolCalls && (mapped === undefined || mapped === 'stop')) return 'tool_calls'
  return mapped ?? 'stop'
}

interface CohereUsage {
  tokens?: { input_tokens?: unknown; output_tokens?: unknown }
  billed_units?: { input_tokens?: unknown; output_tokens?: unknown }
  cached_tokens?: unknown
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

/** Cohere usage -> OpenAI usage; null when Cohere reported none (the core then counts). */
export function toUsage(u: unknown): Usage | null {
  if (!u || typeof u !== 'object') return null
  const { tokens, billed_units: billed, cached_tokens } = u as CohereUsage
  const prompt = num(tokens?.input_tokens) ?? num(billed?.input_tokens)
  const completion = num(tokens?.output_tokens) ?? num(billed?.output_tokens)
  if (prompt === undefined && completion === undefined) return null
  const usage: Usage = { prompt_tokens: prompt ?? 0, completion_tokens: completion ?? 0, total_tokens: (prompt ?? 0) + (completion ?? 0) }
  const cached = num(cached_tokens)
  if (cached !== undefined) usage.prompt_tokens_details = { cached_tokens: cached }
  return usage
}

interface CohereMessageOut {
  content?: Array<{ type?: unknown; text?: unknown; thinking?: unknown }> | string
  tool_calls?: Array<{ id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } }>
  tool_plan?: unknown
  citations?: unknown
}

function toolCalls(calls: CohereMessageOut['tool_calls']): ToolCall[] {
  if (!Array.isArray(calls)) return []
  return calls.map((c) => {
    const args = c.function?.arguments
    return {
      id: String(c.id ?? ''),
      type: 'function' as const,
      function: { name: String(c.function?.name ?? ''), arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) },
    }
  })
}

export function fromCohereChat(provider: string, body: unknown, meta: ResponseMeta): ChatCompletion {
  const b = body as { id?: unknown; message?: CohereMessageOut; finish_reason?: unknown; usage?: unknown }
  if (!b.message || typeof b.message !== 'object') {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned a chat response without a \`message\``, { provider })
  }
  const m = b.message
  let text = ''
  let thinking = ''
  if (typeof m.content === 'string') text = m.content
  else if (Array.isArray(m.content)) {
    for (const part of m.content) {
      if (part.type === 'text' && typeof part.text === 'string') text += part.text
      else if (part.type === 'thinking' && typeof part.thinking === 'string') thinking += part.thinking
    }
  }
  const calls = toolCalls(m.tool_calls)
  const message: ChatCompletion['choices'][number]['message'] = {
    role: 'assistant',
    // OpenAI's shape: null content on a turn that only calls tools.
    content: text === '' && calls.length ? null : text,
    // Required (nullable) in OpenAI's schema; Cohere has no separate refusal channel.
    refusal: null,
  }
  if (thinking !== '') message.reasoning_content = thinking
  if (calls.length) message.tool_calls = calls
  const extras: Record<string, unknown> = {}
  if (typeof m.tool_plan === 'string' && m.tool_plan !== '') extras.tool_plan = m.tool_plan
  if (Array.isArray(m.citations) && m.citations.length) extras.citations = m.citations
  for (const _k in extras) {
    message.provider_specific_fields = extras
    break
  }
  const out: ChatCompletion = {
    id: typeof b.id === 'string' && b.id !== '' ? b.id : `chatcmpl-${meta.requestId}`,
    object: 'chat.completion',
    created: meta.created,
    model: meta.target.model,
    choices: [{ index: 0, message, finish_reason: finishReason(provider, b.finish_reason, (b as { error?: unknown }).error, calls.length > 0), logprobs: null }],
  }
  const usage = toUsage(b.usage)
  if (usage) out.usage = usage
  return out
}
