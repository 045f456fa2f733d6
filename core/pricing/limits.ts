/**
 * Context window and max output tokens of a model, from LiteLLM's table (model-limits.ts, generated). LiteLLM keys
 * most models as `provider/model` (`groq/llama-3.3-70b-versatile`, `gemini/gemini-2.0-flash`) and the first-party
 * OpenAI, Anthropic, Bedrock and Cohere ones bare (`gpt-4o`, `anthropic.claude-...`): both are tried, then the
 * name after the last slash (`openrouter/openai/gpt-4o` -> `gpt-4o`).
 */
import { MODEL_LIMITS, type ModelLimitsRow } from './model-limits.js'

export interface Limits {
  contextWindow: number | null
  maxOutputTokens: number | null
}

export function lookupLimits(provider: string, model: string): Limits | null {
  const row = find(provider, model)
  return row ? { contextWindow: row[0], maxOutputTokens: row[1] } : null
}

function find(provider: string, model: string): ModelLimitsRow | undefined {
  const row = MODEL_LIMITS.get(`${provider}/${model}`) ?? MODEL_LIMITS.get(model)
  if (row) return row
  const slash = model.lastIndexOf('/')
  if (slash < 0) return undefined
  const bare = model.slice(slash + 1)
  return MODEL_LIMITS.get(`${provider}/${bare}`) ?? MODEL_LIMITS.get(bare)
}
