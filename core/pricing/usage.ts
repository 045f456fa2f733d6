/**
 * The billable token counts in an OpenAI-shaped usage block, split the way price tables charge them.
 *
 * Convention (OpenAI's, which LiteLLM follows): `prompt_tokens` is the whole input, cached reads
 * (`prompt_tokens_details.cached_tokens`) and Anthropic cache writes (`cache_creation_input_tokens`) included;
 * `completion_tokens` is the whole output, reasoning (`completion_tokens_details.reasoning_tokens`) and audio
 * included. So cached and reasoning tokens are re-priced, never added a second time.
 */
import type { Operation, Usage } from '../openai/types.js'

export interface TokenParts {
  /** All input tokens, cacheRead and cacheWrite included. */
  input: number
  cacheRead: number
  cacheWrite: number
  /** All output tokens, reasoning included. */
  output: number
  inputAudio: number
  outputAudio: number
}

function count(v: unknown): number {
  return typeof v === 'number' && v > 0 && Number.isFinite(v) ? v : 0
}

export function tokenParts(usage: Usage, op?: Operation): TokenParts {
  const prompt = count(usage.prompt_tokens)
  const promptDetails = usage.prompt_tokens_details
  const completionDetails = usage.completion_tokens_details
  // LiteLLM also reports Anthropic's cache read at the top level (`cache_read_input_tokens`).
  const cacheRead = count(promptDetails?.cached_tokens ?? usage.cache_read_input_tokens)
  const cacheWrite = count(usage.cache_creation_input_tokens)
  // Counts that cannot fit inside the total were reported beside it (Anthropic's raw shape, where input_tokens
  // excludes both caches): add them instead of billing a negative remainder.
  const input = cacheRead + cacheWrite > prompt ? prompt + cacheRead + cacheWrite : prompt
  let output = 0
  let outputAudio = 0
  if (op !== 'embeddings') {
    const completion = count(usage.completion_tokens)
    const reasoning = count(completionDetails?.reasoning_tokens)
    // Same rule for reasoning: a provider that counts thinking beside the visible output (more thinking than the
    // whole completion) gets it added, once.
    output = reasoning > completion ? completion + reasoning : completion
    outputAudio = Math.min(count(completionDetails?.audio_tokens), output)
  }
  return { input, cacheRead, cacheWrite, output, inputAudio: Math.min(count(promptDetails?.audio_tokens), input), outputAudio }
}
