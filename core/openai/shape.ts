/**
 * Small transforms on OpenAI bodies that both the HTTP routes and the SDK apply before handing a result back.
 */
import type { ChatChunk, ChatCompletion, EmbeddingResponse, Operation, TextCompletion, Usage } from './types.js'

/** Float32 little-endian base64, the format OpenAI returns for encoding_format: base64. */
export function floatsToBase64(v: readonly number[]): string {
  const f = new Float32Array(v)
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64')
}

/** Providers that only return floats still honour encoding_format: base64 (the official SDKs ask for it). */
export function embeddingsAsBase64(res: EmbeddingResponse): EmbeddingResponse {
  if (res.data.every((d) => typeof d.embedding === 'string')) return res
  return { ...res, data: res.data.map((d) => (typeof d.embedding === 'string' ? d : { ...d, embedding: floatsToBase64(d.embedding) })) }
}

/**
 * The gateway always asks upstream for stream usage (cost tracking needs it); a client that did not ask
 * (`stream_options.include_usage`) gets none: a usage-only chunk is dropped (null), a content chunk loses its
 * `usage` field.
 */
export function chunkForClient<C extends { usage?: Usage | null; choices?: unknown[] }>(chunk: C, includeUsage: boolean): C | null {
  if (includeUsage || chunk.usage === undefined) return chunk
  if (!chunk.choices || chunk.choices.length === 0) return null
  const { usage: _u, ...rest } = chunk
  return rest as C
}

/**
 * A whole completion as the chunk sequence a stream of it would have been: role and content, tool calls, the
 * finish reason, then usage. Used when a stream was asked for and the upstream answered with plain JSON.
 */
export function chatToChunks(res: ChatCompletion): ChatChunk[] {
  const base = { id: res.id, object: 'chat.completion.chunk' as const, created: res.created, model: res.model }
  const out: ChatChunk[] = []
  for (const c of res.choices) {
    const delta: ChatChunk['choices'][number]['delta'] = { role: 'assistant', content: c.message.content ?? '' }
    if (c.message.refusal) delta.refusal = c.message.refusal
    if (c.message.tool_calls?.length) delta.tool_calls = c.message.tool_calls.map((tc, index) => ({ index, ...tc }))
    out.push({ ...base, choices: [{ index: c.index, delta, finish_reason: null, logprobs: null }] })
    out.push({ ...base, choices: [{ index: c.index, delta: {}, finish_reason: c.finish_reason ?? 'stop', logprobs: null }] })
  }
  if (res.usage) out.push({ ...base, choices: [], usage: res.usage })
  return out
}

export function textToChunks(res: TextCompletion): TextCompletion[] {
  const base = { id: res.id, object: 'text_completion' as const, created: res.created, model: res.model }
  const out: TextCompletion[] = res.choices.map((c) => ({ ...base, choices: [{ ...c, finish_reason: c.finish_reason ?? 'stop' }] }))
  if (res.usage) out.push({ ...base, choices: [], usage: res.usage })
  return out
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}

/**
 * A reply's usage in the chat shape the gateway records (spend rows, tpm limits, budgets), whatever the operation:
 * GPT image models and token-billed transcriptions report `input_tokens` / `output_tokens` with their text, image
 * and audio split (`input_tokens_details`, `input_token_details`); a duration-billed transcription's
 * `{type: 'duration', seconds}` is no token count (null: its price reads the seconds off the reply).
 */
export function usageOf(op: Operation, body: unknown): Usage | null {
  const u = (body as { usage?: unknown } | null)?.usage
  if (!u || typeof u !== 'object') return null
  if (op !== 'images' && op !== 'transcription') return u as Usage
  const m = u as Record<string, unknown>
  if (typeof m.prompt_tokens === 'number') return m as Usage
  if (m.type === 'duration' || (m.input_tokens === undefined && m.output_tokens === undefined)) return null
  const input = count(m.input_tokens)
  const output = count(m.output_tokens)
  const details = (m.input_tokens_details ?? m.input_token_details) as Record<string, unknown> | undefined
  const usage: Usage = { prompt_tokens: input, completion_tokens: output, total_tokens: count(m.total_tokens) || input + output }
  if (details && typeof details === 'object') {
    usage.prompt_tokens_details = { text_tokens: count(details.text_tokens), image_tokens: count(details.image_tokens), audio_tokens: count(details.audio_tokens) }
  }
  return usage
}
