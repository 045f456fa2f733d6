/**
 * LiteLLM provider names (the `provider/` prefix of a model string, `Target.provider`) -> @pydantic/genai-prices
 * provider ids. A name not listed here is still tried as-is: genai-prices matches a provider id by its `id` or its
 * `provider_match` rule (e.g. 'cerebras', 'moonshot'), so only names that differ need a row. A Map rather than an
 * object: provider names come from config, and 'constructor' must not find Object's.
 */
export const GENAI_PROVIDER: ReadonlyMap<string, string> = new Map(Object.entries({
  openai: 'openai',
  'text-completion-openai': 'openai',
  chatgpt: 'openai',
  azure: 'azure',
  azure_text: 'azure',
  azure_ai: 'azure',
  anthropic: 'anthropic',
  anthropic_text: 'anthropic',
  // Gemini API and Vertex AI share Google's price list; genai-prices' google provider falls back to anthropic for
  // Claude served on Vertex (`vertex_ai/claude-...@2024...`).
  gemini: 'google',
  vertex_ai: 'google',
  vertex_ai_beta: 'google',
  bedrock: 'aws',
  bedrock_converse: 'aws',
  mistral: 'mistral',
  codestral: 'mistral',
  'text-completion-codestral': 'mistral',
  cohere: 'cohere',
  cohere_chat: 'cohere',
  groq: 'groq',
  deepseek: 'deepseek',
  together_ai: 'together',
  fireworks_ai: 'fireworks',
  openrouter: 'openrouter',
  xai: 'x-ai',
  perplexity: 'perplexity',
  cerebras: 'cerebras',
  moonshot: 'moonshotai',
  novita: 'novita',
  cloudflare: 'cloudflare',
  ovhcloud: 'ovhcloud',
  minimax: 'minimax',
  zai: 'zai',
  voyage: 'voyageai',
  github_copilot: 'github-copilot',
}))

/**
 * Where a model no provider claims is looked for by name, in this order: the model makers first (their list price
 * is the reference), then the large hosts. A `mock/gpt-4o-mini` deployment, or an OpenAI-compatible host serving
 * `gpt-4o-mini`, is priced as OpenAI's gpt-4o-mini; `llama-3.1-8b-instant` on an unknown host as Groq's.
 * OpenRouter is left out: its ids are `vendor/model`, and the vendor's own price is found above.
 */
export const SCAN_ORDER: readonly string[] = [
  'openai', 'anthropic', 'google', 'mistral', 'cohere', 'deepseek', 'x-ai', 'moonshotai', 'zai', 'minimax',
  'groq', 'together', 'fireworks', 'cerebras', 'perplexity', 'aws', 'azure', 'novita',
]

/** genai-prices provider id -> the LiteLLM provider name that keys its models in LiteLLM's table (first row wins). */
export const LITELLM_PROVIDER: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>()
  for (const [litellm, genai] of GENAI_PROVIDER) if (!m.has(genai)) m.set(genai, litellm)
  return m
})()
