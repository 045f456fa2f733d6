/**
 * Provider registry: adapter name -> adapter, from explicit imports (no globbing). Parses LiteLLM model strings
 * (`groq/llama-3.1-8b-instant`, `openrouter/anthropic/claude-3.5-sonnet`) into provider + upstream model.
 */
import { gatewayError } from '../core/errors.js'
import type { ProviderAdapter, Target } from './types.js'
import { openai } from './openai/index.js'
import { openAICompatibleAdapters } from './openai-compatible.js'
import { mock } from './mock/index.js'

/**
 * Provider prefixes LiteLLM knows that have no adapter here yet. A model_list entry naming one still loads (the
 * config is LiteLLM's, unchanged); the boot warning names it and its requests get a clear 400 instead of being
 * sent, wrongly, to OpenAI.
 */
export const PENDING_PROVIDERS: ReadonlySet<string> = new Set([
  'azure', 'azure_ai', 'azure_text', 'anthropic', 'gemini', 'vertex_ai', 'vertex_ai_beta', 'bedrock', 'sagemaker',
  'cohere', 'cohere_chat', 'ollama', 'ollama_chat', 'mistral', 'codestral', 'huggingface', 'replicate', 'watsonx',
  'databricks', 'ai21', 'cloudflare', 'voyage', 'text-completion-codestral', 'predibase',
  'triton', 'clarifai', 'baseten', 'petals', 'nlp_cloud', 'aleph_alpha', 'palm', 'snowflake', 'oci', 'jina_ai',
  'infinity', 'elevenlabs', 'assemblyai', 'deepgram', 'litellm_proxy', 'gradient_ai', 'datarobot', 'meta_llama',
])

export interface ProviderRegistry {
  get(name: string): ProviderAdapter | undefined
  names(): string[]
  /** 'groq/llama3' -> { provider: 'groq', model: 'llama3' }; no known prefix -> openai. */
  parseModel(model: string, customProvider?: string | null): { provider: string; model: string }
  /**
   * The adapter that serves a call: the mock adapter when the deployment, or the request body (as LiteLLM allows),
   * has a mock_response; else the deployment's provider.
   */
  forTarget(target: Target, request?: Record<string, unknown>): ProviderAdapter
}

export function builtinProviders(): ProviderAdapter[] {
  return [openai, ...openAICompatibleAdapters, mock]
}

export function createProviderRegistry(adapters: readonly ProviderAdapter[] = builtinProviders()): ProviderRegistry {
  const byName = new Map<string, ProviderAdapter>()
  for (const a of adapters) byName.set(a.name, a)
  const mockAdapter = byName.get('mock')
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
    parseModel(model, customProvider) {
      if (customProvider) {
        if (!byName.has(customProvider) && !PENDING_PROVIDERS.has(customProvider)) throw unknownProvider(customProvider, model, [...byName.keys()])
        const prefix = `${customProvider}/`
        return { provider: customProvider, model: model.startsWith(prefix) ? model.slice(prefix.length) : model }
      }
      const slash = model.indexOf('/')
      if (slash > 0) {
        const prefix = model.slice(0, slash)
        if (byName.has(prefix) || PENDING_PROVIDERS.has(prefix)) return { provider: prefix, model: model.slice(slash + 1) }
      }
      return { provider: 'openai', model }
    },
    forTarget(target, request) {
      if (mockAdapter && (target.mockResponse !== undefined || typeof request?.mock_response === 'string')) return mockAdapter
      const a = byName.get(target.provider)
      if (a) return a
      if (PENDING_PROVIDERS.has(target.provider)) {
        throw gatewayError('GW_ERR_PROVIDER_UNSUPPORTED',
          `Provider '${target.provider}' (model ${target.modelName}) is not supported by this Switchyard version yet.`, { param: 'model' })
      }
      throw unknownProvider(target.provider, target.model, [...byName.keys()])
    },
  }
}

function unknownProvider(name: string, model: string, known: string[]) {
  return gatewayError('GW_ERR_PROVIDER_UNKNOWN', `Unknown provider '${name}' for model '${model}'. Known providers: ${known.sort().join(', ')}`)
}
