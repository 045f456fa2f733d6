/**
 * What the fake upstream answers and what the load sends, built once. The upstream replies with these exact bytes
 * (cached Buffers), so its cost per call is an HTTP parse and one write.
 */

export const MODEL = 'gpt-4o-mini'
/** Model whose deployment points at the upstream's slow-stream path (/slow/v1): the 1,000-streams section. */
export const SLOW_MODEL = 'slow-stream'
/** Master key of every gateway the bench starts. */
export const MASTER_KEY = 'sk-bench'

const CREATED = 1700000000

export const COMPLETION = Buffer.from(JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: CREATED, model: MODEL,
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the bench upstream.', refusal: null }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
}))

/** One SSE event carrying a chat.completion.chunk. */
export function sseChunk(delta: object, finish: string | null): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: CREATED, model: MODEL, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })}\n\n`
}

/** Token chunks in a stream: 20, as a short chat answer. */
export const STREAM_TOKENS = 20

export const STREAM_HEAD = sseChunk({ role: 'assistant', content: '' }, null)
export const STREAM_TAIL = sseChunk({}, 'stop') +
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: CREATED, model: MODEL, choices: [], usage: { prompt_tokens: 12, completion_tokens: STREAM_TOKENS, total_tokens: 12 + STREAM_TOKENS } })}\n\n` +
  'data: [DONE]\n\n'
/** Every token chunk, pre-rendered (the slow stream writes them one at a time). */
export const STREAM_TOKEN_CHUNKS: readonly Buffer[] = Array.from({ length: STREAM_TOKENS }, (_, i) => Buffer.from(sseChunk({ content: `tok${i} ` }, null)))

/** The whole stream in one buffer: role chunk, 20 token chunks, finish chunk, usage chunk, [DONE]. */
export const STREAM = Buffer.concat([Buffer.from(STREAM_HEAD), ...STREAM_TOKEN_CHUNKS, Buffer.from(STREAM_TAIL)])

/** Request bodies the load sends (identical for the bare proxy and the gateway). */
export const BODIES = {
  plain: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say hello.' }] }),
  stream: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'Say hello.' }] }),
  slow: JSON.stringify({ model: SLOW_MODEL, stream: true, messages: [{ role: 'user', content: 'Say hello slowly.' }] }),
} as const

export type BodyKind = keyof typeof BODIES
