/**
 * Context window and max output tokens of a model, from LiteLLM's table (model-limits.ts, generated). LiteLLM keys
 * most models as `provider/model` (`groq/llama-3.3-70b-versatile`, `gemini/gemini-2.0-flash`) and the first-party
 * OpenAI, Anthropic, Bedrock and Cohere ones bare (`gpt-4o`, `anthropic.claude-...`): both are tried, then the
 * name after the last slash (`openrouter/openai/gpt-4o` -> `gpt-4o`).
 *
 * The same lookup finds a model's whole row for the SDK's getModelInfo() (core/sdk-info.ts), so the proxy's limits
 * and what the SDK reports about a model always come from the same key.
 */
import { MODEL_LIMITS, type ModelLimitsRow } from './model-limits.js'

export interface Limits {
  contextWindow: number | null
  maxOutputTokens: number | null
}

export function lookupLimits(provider: string, model: string): Limits | null {
  // Rows kept only for their capability flags give no limit: skipped, so a later key (or the caller's next source)
  // can still give one.
  const found = findModelRow(provider, model, hasLimit)
  return found ? { contextWindow: found.row[0], maxOutputTokens: found.row[1] } : null
}

function hasLimit(row: ModelLimitsRow): boolean {
  return row[0] !== null || row[1] !== null
}

/** The first of the keys above whose row `accept`s (any row by default), with the key it was found under. */
export function findModelRow(
  provider: string, model: string, accept: (row: ModelLimitsRow) => boolean = () => true,
): { key: string; row: ModelLimitsRow } | null {
  const slash = model.lastIndexOf('/')
  const bare = slash < 0 ? null : model.slice(slash + 1)
  const keys = bare === null ? [`${provider}/${model}`, model] : [`${provider}/${model}`, model, `${provider}/${bare}`, bare]
  for (const key of keys) {
    const row = MODEL_LIMITS.get(key)
    if (row && accept(row)) return { key, row }
  }
  return null
}
