/**
 * Provider registry: adapter name -> adapter, from explicit imports (no globbing). Parses LiteLLM model strings
 * (`groq/llama-3.1-8b-instant`, `openrouter/anthropic/claude-3.5-sonnet`) into provider + upstream model.
 */
import { gatewayError } from '../core/errors.js'
import type { ProviderAdapter, Target } from './types.js'
import { openai } from './openai/index.js'
import { openAICompatibleAdapters } from './openai-compatible.js'
import { mock } from './mock/index.js'
import { anthropic } from './anthropic/index.js'
import { bedrock } from './bedrock/index.js'
import { gemini } from './gemini/index.js'
import { vertex_ai, vertex_ai_beta } from './vertex/index.js'
import { cohere, cohere_chat } from './cohere/index.js'
import { ollama, ollama_chat } from './ollama/index.js'
import { mistral } from './mistral/index.js'
import { azure, azure_ai } from './azure/index.js'

/**
 * Provider prefixes LiteLLM knows (its `LlmProviders` enum, litellm/types/utils.py) that have no adapter here yet.
 * A model_list entry naming one still loads (the config is LiteLLM's, unchanged); the boot warning names it and its
 * requests get a clear 400 `provider_not_supported` instead of being sent, wrongly, to OpenAI. Names that also have
 * an adapter (groq, openrouter, ...) are listed too: the registry checks adapters first, so the list needs no
 * upkeep when one is built.
 */
export const PENDING_PROVIDERS: ReadonlySet<string> = new Set([
  'chatgpt', 'openai_like', 'jina_ai', 'xai', 'zai', 'custom_openai', 'text-completion-openai', 'cohere', 'cohere_chat',
  'clarifai', 'anthropic', 'anthropic_text', 'bytez', 'replicate', 'reducto', 'runwayml', 'aws_polly', 'huggingface',
  'together_ai', 'openrouter', 'datarobot', 'vertex_ai', 'vertex_ai_beta', 'gemini', 'ai21', 'baseten',
  'black_forest_labs', 'azure', 'azure_text', 'azure_ai', 'sagemaker', 'sagemaker_chat', 'sagemaker_nova', 'bedrock',
  'vllm', 'nlp_cloud', 'petals', 'oobabooga', 'ollama', 'ollama_chat', 'deepinfra', 'perplexity', 'mistral', 'milvus',
  'groq', 'a2a', 'gigachat', 'nvidia_nim', 'nvidia_riva', 'soniox', 'cerebras', 'ai21_chat', 'volcengine', 'codestral',
  'text-completion-codestral', 'dashscope', 'modelscope', 'moonshot', 'publicai', 'v0', 'morph', 'lambda_ai',
  'inception', 'text-completion-inception', 'deepseek', 'sambanova', 'maritalk', 'voyage', 'cloudflare', 'xinference',
  'fireworks_ai', 'friendliai', 'featherless_ai', 'watsonx', 'watsonx_text', 'triton', 'predibase', 'databricks',
  'empower', 'github', 'ragflow', 'compactifai', 'docker_model_runner', 'custom', 'litellm_proxy', 'hosted_vllm',
  'tencent', 'llamafile', 'lm_studio', 'galadriel', 'nebius', 'infinity', 'deepgram', 'elevenlabs', 'novita',
  'aiohttp_openai', 'langfuse', 'humanloop', 'topaz', 'sap', 'assemblyai', 'charity_engine', 'github_copilot',
  'snowflake', 'gradient_ai', 'meta_llama', 'nscale', 'pg_vector', 's3_vectors', 'helicone', 'hyperbolic', 'recraft',
  'fal_ai', 'stability', 'heroku', 'aiml', 'cometapi', 'oci', 'auto_router', 'vercel_ai_gateway', 'dotprompt', 'manus',
  'wandb', 'ovhcloud', 'scaleway', 'lemonade', 'amazon_nova', 'a2a_agent', 'langgraph', 'langflow', 'minimax',
  'synthetic', 'apertis', 'nano-gpt', 'poe', 'chutes', 'neosantara', 'parasail', 'xiaomi_mimo', 'tensormesh',
  'libertai', 'pinstripes', 'darkbloom', 'meta', 'litellm_agent', 'cursor', 'bedrock_mantle', 'gdc',
  // Older LiteLLM names still found in configs.
  'palm', 'aleph_alpha', 'anyscale',
])

/** Request-body keys that ask for a simulated outcome (LiteLLM's mock_* testing params): the mock adapter answers. */
const MOCK_REQUEST_KEYS = ['mock_testing_rate_limit_error', 'mock_testing_fallbacks', 'mock_timeout'] as const

export interface ProviderRegistry {
  get(name: string): ProviderAdapter | undefined
  names(): string[]
  /** Whether `name` is a LiteLLM provider with no adapter here yet. */
  isPending(name: string): boolean
  /**
   * 'groq/llama3' -> { provider: 'groq', model: 'llama3' }; no slash -> openai. A prefix nobody knows stays the
   * provider (its calls get a 400; nothing is sent), except with an explicit api_base: then the whole string is the
   * model id on an OpenAI-compatible host (`meta-llama/Llama-3-8b` on a vLLM), which is what such an entry means.
   */
  parseModel(model: string, customProvider?: string | null, hasApiBase?: boolean): { provider: string; model: string }
  /**
   * The adapter that serves a call: the mock adapter when the deployment, or the request body (as LiteLLM allows),
   * asks for a mock outcome; else the deployment's provider. A provider with no adapter is a 400 here, per call.
   */
  forTarget(target: Target, request?: Record<string, unknown>): ProviderAdapter
}

export function builtinProviders(): ProviderAdapter[] {
  return [openai, ...openAICompatibleAdapters, anthropic, bedrock, gemini, vertex_ai, vertex_ai_beta, cohere, cohere_chat, ollama, ollama_chat, mistral, azure, azure_ai, mock]
}

function wantsMock(target: Target, request: Record<string, unknown> | undefined): boolean {
  if (target.mockResponse !== undefined) return true
  if (!request) return false
  if (typeof request.mock_response === 'string') return true
  // `=== true`, as the mock itself reads them: a truthy non-boolean must not divert a real call to a canned reply.
  for (const k of MOCK_REQUEST_KEYS) if (request[k] === true) return true
  return false
}

export function createProviderRegistry(adapters: readonly ProviderAdapter[] = builtinProviders()): ProviderRegistry {
  const byName = new Map<string, ProviderAdapter>()
  for (const a of adapters) byName.set(a.name, a)
  const mockAdapter = byName.get('mock')
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
    isPending: (name) => !byName.has(name) && PENDING_PROVIDERS.has(name),
    parseModel(model, customProvider, hasApiBase = false) {
      if (customProvider) {
        if (!byName.has(customProvider) && !PENDING_PROVIDERS.has(customProvider)) throw unknownProvider(customProvider, model, [...byName.keys()])
        const prefix = `${customProvider}/`
        return { provider: customProvider, model: model.startsWith(prefix) ? model.slice(prefix.length) : model }
      }
      const slash = model.indexOf('/')
      if (slash <= 0) return { provider: 'openai', model }
      const prefix = model.slice(0, slash)
      if (byName.has(prefix) || PENDING_PROVIDERS.has(prefix)) return { provider: prefix, model: model.slice(slash + 1) }
      // Unknown prefix. With an api_base the operator named the host: an OpenAI-compatible server whose model ids
      // contain slashes. Without one, reading it as an OpenAI model would send the call (and OPENAI_API_KEY) to
      // api.openai.com; keep the prefix so the call fails instead.
      return hasApiBase ? { provider: 'openai', model } : { provider: prefix, model: model.slice(slash + 1) }
    },
    forTarget(target, request) {
      if (mockAdapter && wantsMock(target, request)) return mockAdapter
      const a = byName.get(target.provider)
      if (a) return a
      if (PENDING_PROVIDERS.has(target.provider)) {
        throw gatewayError('GW_ERR_PROVIDER_UNSUPPORTED',
          `Provider '${target.provider}' (model ${target.modelName}) is not supported by this Switchyard version yet.`, { param: 'model' })
      }
      throw gatewayError('GW_ERR_PROVIDER_UNSUPPORTED',
        `Unknown provider '${target.provider}' (model ${target.modelName}); nothing was sent. Write a known provider prefix ` +
        `(openai/, groq/, ...), or set api_base to send the full name to an OpenAI-compatible host.`, { param: 'model' })
    },
  }
}

function unknownProvider(name: string, model: string, known: string[]) {
  return gatewayError('GW_ERR_PROVIDER_UNKNOWN', `Unknown provider '${name}' for model '${model}'. Known providers: ${known.sort().join(', ')}`)
}
