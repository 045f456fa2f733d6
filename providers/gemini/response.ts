/**
 * Gemini GenerateContentResponse -> OpenAI chat.completion (and the pieces the stream translator shares):
 * candidates become choices (text parts joined; `thought: true` parts -> `reasoning_content`; `functionCall` parts ->
 * `tool_calls` with generated ids and JSON-string arguments), finishReason maps to stop | length | content_filter
 * (| tool_calls when the turn called a tool), and usageMetadata to usage with cached and reasoning tokens.
 * A prompt Gemini refused to answer (`promptFeedback.blockReason`, no candidates) is a content-policy error.
 * Reference: https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/openai/types.js'
import type { ResponseMeta } from '../types.js'
import { googleErrorOf, geminiError } from './errors.js'
import { newToolCallId } from './ids.js'

type Obj = Record<string, unknown>

/** Finish reasons that mean a safety / policy stop. Everything else that is not STOP or MAX_TOKENS reads as 'stop'. */
const FILTERED: ReadonlySet<string> = new Set([
  'SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'IMAGE_PROHIBITED_CONTENT', 'IMAGE_RECITATION',
])

/** Whether a candidate's finishReason is a safety / policy stop. */
export function isFiltered(reason: unknown): boolean {
  return typeof reason === 'string' && FILTERED.has(reason)
}

export function finishReason(reason: unknown, calledTool: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length'
  if (isFiltered(reason)) return 'content_filter'
  return calledTool ? 'tool_calls' : 'stop'
}

/** A candidate's parts, split the way an OpenAI message carries them. */
export interface SplitParts {
  content: string | null
  reasoning: string | null
  toolCalls: ToolCall[]
}

export function splitParts(parts: unknown): SplitParts {
  let content: string | null = null
  let reasoning: string | null = null
  const toolCalls: ToolCall[] = []
  if (!Array.isArray(parts)) return { content, reasoning, toolCalls }
  for (const p of parts as Obj[]) {
    if (!p || typeof p !== 'object') continue
    if (typeof p.text === 'string') {
      if (p.thought === true) reasoning = (reasoning ?? '') + p.text
      else content = (content ?? '') + p.text
    } else if (p.functionCall && typeof p.functionCall === 'object') {
      const fc = p.functionCall as { name?: unknown; args?: unknown }
      toolCalls.push({
        id: newToolCallId(p.thoughtSignature),
        type: 'function',
        function: { name: String(fc.name ?? ''), arguments: JSON.stringify(fc.args ?? {}) },
      })
    } else if (p.inlineData && typeof p.inlineData === 'object') {
      // Generated media (image output models): a data URL in the text, as LiteLLM returns it.
      const d = p.inlineData as { mimeType?: unknown; data?: unknown }
      content = (content ?? '') + `data:${String(d.mimeType)};base64,${String(d.data)}`
    }
  }
  return { content, reasoning, toolCalls }
}

/**
 * usageMetadata -> Usage. Reasoning (`thoughtsTokenCount`) is part of the completion, as OpenAI counts it: Gemini
 * reports it beside `candidatesTokenCount` (prompt + candidates + thoughts = total), so it is added; when a model
 * already includes it (prompt + candidates = total), it is not added twice (LiteLLM's
 * `is_candidate_token_count_inclusive`). Returns null when the metadata holds no counts (Vertex's early chunks).
 */
export function toUsage(um: unknown): Usage | null {
  if (!um || typeof um !== 'object') return null
  const u = um as Obj
  if (u.promptTokenCount === undefined && u.candidatesTokenCount === undefined && u.totalTokenCount === undefined) return null
  const prompt = num(u.promptTokenCount) + num(u.toolUsePromptTokenCount)
  const candidates = num(u.candidatesTokenCount)
  const thoughts = num(u.thoughtsTokenCount)
  const inclusive = u.totalTokenCount !== undefined && prompt + candidates === num(u.totalTokenCount)
  const completion = inclusive ? candidates : candidates + thoughts
  const usage: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  if (u.cachedContentTokenCount !== undefined) usage.prompt_tokens_details = { cached_tokens: num(u.cachedContentTokenCount) }
  if (u.thoughtsTokenCount !== undefined) usage.completion_tokens_details = { reasoning_tokens: thoughts }
  return usage
}

/** The error for a response that carries no answer: an error object, or a prompt blocked before generation. */
export function refusal(provider: string, body: Obj): GatewayError | null {
  if (googleErrorOf(body)) return geminiError(provider, 0, body, {})
  const feedback = body.promptFeedback as { blockReason?: unknown; blockReasonMessage?: unknown } | undefined
  const candidates = body.candidates
  if (feedback?.blockReason && (!Array.isArray(candidates) || candidates.length === 0)) {
    const why = typeof feedback.blockReasonMessage === 'string' ? `: ${feedback.blockReasonMessage}` : ''
    return gatewayError('GW_ERR_CONTENT_POLICY', `${provider} blocked the prompt (blockReason ${String(feedback.blockReason)})${why}`,
      { provider, upstreamStatus: 200 })
  }
  return null
}

/** `chatcmpl-<responseId>`, else one from the gateway's request id. */
export function completionId(body: Obj, meta: ResponseMeta): string {
  return `chatcmpl-${typeof body.responseId === 'string' && body.responseId ? body.responseId : meta.requestId}`
}

export function geminiResponse(provider: string, body: unknown, meta: ResponseMeta): ChatCompletion {
  const b = body as Obj
  const refused = refusal(provider, b)
  if (refused) throw refused
  const candidates = Array.isArray(b.candidates) ? (b.candidates as Obj[]) : []
  const choices: ChatCompletion['choices'] = []
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!
    const { content, reasoning, toolCalls } = splitParts((c.content as Obj | undefined)?.parts)
    const message: ChatCompletion['choices'][number]['message'] = { role: 'assistant', content, refusal: null }
    if (reasoning !== null) message.reasoning_content = reasoning
    if (toolCalls.length) message.tool_calls = toolCalls
    choices.push({
      index: typeof c.index === 'number' ? c.index : i,
      message,
      finish_reason: finishReason(c.finishReason, toolCalls.length > 0),
      logprobs: toLogprobs(c.logprobsResult),
    })
  }
  const out: ChatCompletion = {
    id: completionId(b, meta),
    object: 'chat.completion',
    created: meta.created,
    model: meta.target.model,
    choices,
  }
  const usage = toUsage(b.usageMetadata)
  if (usage) out.usage = usage
  return out
}

/** logprobsResult (chosenCandidates + topCandidates, asked for with `logprobs`) -> OpenAI choice.logprobs. */
function toLogprobs(r: unknown): { content: unknown[]; refusal: null } | null {
  const chosen = (r as { chosenCandidates?: unknown } | undefined)?.chosenCandidates
  if (!Array.isArray(chosen)) return null
  const top = (r as { topCandidates?: Array<{ candidates?: Obj[] }> }).topCandidates
  return {
    content: chosen.map((c: Obj, i: number) => ({
      token: String(c.token ?? ''),
      logprob: num(c.logProbability),
      bytes: null,
      top_logprobs: (top?.[i]?.candidates ?? []).map((t) => ({ token: String(t.token ?? ''), logprob: num(t.logProbability), bytes: null })),
    })),
    refusal: null,
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}
