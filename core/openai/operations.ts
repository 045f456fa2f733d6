/**
 * The model operations at runtime: one set every plugin consults to tell a model call (auth's model access,
 * budgets, rate limits, the priority queue, routing, spend logs) from a management or info request.
 */
import type { Operation } from './types.js'

export const MODEL_OPERATIONS: ReadonlySet<string> = new Set<Operation>([
  'chat', 'completions', 'embeddings', 'images', 'transcription', 'speech', 'moderations',
])

/** Whether a request kind (GatewayState.kind) is a model call. */
export function isModelOperation(kind: string): kind is Operation {
  return MODEL_OPERATIONS.has(kind)
}

/** Operations whose reply holds generated text tokens (chat and legacy completions): the others have no max_tokens. */
export function generatesText(op: Operation): op is 'chat' | 'completions' {
  return op === 'chat' || op === 'completions'
}

/**
 * The list every JSON response of an operation carries, checked on each 200 (core/upstream/dispatch.ts) and found
 * without a parse in a pass-through reply (core/upstream/passthrough.ts). '' = none: a transcription carries a
 * `text` string, speech is audio.
 */
export const RESPONSE_LIST: Readonly<Record<Operation, string>> = {
  chat: 'choices', completions: 'choices', embeddings: 'data', images: 'data', moderations: 'results', transcription: '', speech: '',
}
