/**
 * OpenAI-compatible hosts: one row each, addressed as `<name>/<model>` exactly as LiteLLM names them.
 * Base URLs are each host's documented OpenAI-compatible endpoint; `env` lists the variables LiteLLM reads for the
 * key and base. `unsupported` lists chat params the host documents as not supported (dropped with drop_params,
 * else a 400). Hosts without a public default (vLLM, generic `openai_like`) need `api_base` on the deployment.
 */
import { createOpenAIAdapter, type OpenAIFamilyOptions } from './openai/index.js'
import type { ProviderAdapter } from './types.js'

type Preset = Omit<OpenAIFamilyOptions, 'name'>

const key = (...apiKey: string[]) => ({ apiKey })

/** name -> preset. Add a host by adding a line. */
export const OPENAI_COMPATIBLE: Readonly<Record<string, Preset>> = {
  // Groq serves Whisper transcription on the same API (https://console.groq.com/docs/speech-to-text).
  groq: {
    baseUrl: 'https://api.groq.com/openai/v1', env: key('GROQ_API_KEY'), unsupported: ['logprobs', 'top_logprobs', 'logit_bias'],
    operations: ['chat', 'completions', 'embeddings', 'transcription'],
  },
  deepseek: { baseUrl: 'https://api.deepseek.com/v1', env: key('DEEPSEEK_API_KEY') },
  together_ai: { baseUrl: 'https://api.together.xyz/v1', env: key('TOGETHERAI_API_KEY', 'TOGETHER_API_KEY', 'TOGETHER_AI_API_KEY') },
  fireworks_ai: { baseUrl: 'https://api.fireworks.ai/inference/v1', env: key('FIREWORKS_AI_API_KEY', 'FIREWORKS_API_KEY') },
  openrouter: { baseUrl: 'https://openrouter.ai/api/v1', env: key('OPENROUTER_API_KEY', 'OR_API_KEY') },
  xai: { baseUrl: 'https://api.x.ai/v1', env: key('XAI_API_KEY') },
  perplexity: { baseUrl: 'https://api.perplexity.ai', env: key('PERPLEXITYAI_API_KEY', 'PERPLEXITY_API_KEY'), operations: ['chat'] },
  deepinfra: { baseUrl: 'https://api.deepinfra.com/v1/openai', env: key('DEEPINFRA_API_KEY') },
  cerebras: { baseUrl: 'https://api.cerebras.ai/v1', env: key('CEREBRAS_API_KEY'), operations: ['chat', 'completions'] },
  hosted_vllm: { env: { apiKey: ['HOSTED_VLLM_API_KEY'], apiBase: ['HOSTED_VLLM_API_BASE'] } },
  lm_studio: { baseUrl: 'http://localhost:1234/v1', env: { apiKey: ['LM_STUDIO_API_KEY'], apiBase: ['LM_STUDIO_API_BASE'] } },
  nvidia_nim: { baseUrl: 'https://integrate.api.nvidia.com/v1', env: { apiKey: ['NVIDIA_NIM_API_KEY'], apiBase: ['NVIDIA_NIM_API_BASE'] } },
  sambanova: { baseUrl: 'https://api.sambanova.ai/v1', env: key('SAMBANOVA_API_KEY') },
  anyscale: { baseUrl: 'https://api.endpoints.anyscale.com/v1', env: key('ANYSCALE_API_KEY') },
  nebius: { baseUrl: 'https://api.studio.nebius.ai/v1', env: key('NEBIUS_API_KEY') },
  novita: { baseUrl: 'https://api.novita.ai/v3/openai', env: key('NOVITA_API_KEY') },
  hyperbolic: { baseUrl: 'https://api.hyperbolic.xyz/v1', env: key('HYPERBOLIC_API_KEY') },
  featherless_ai: { baseUrl: 'https://api.featherless.ai/v1', env: key('FEATHERLESS_AI_API_KEY') },
  moonshot: { baseUrl: 'https://api.moonshot.ai/v1', env: key('MOONSHOT_API_KEY') },
  dashscope: { baseUrl: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1', env: key('DASHSCOPE_API_KEY') },
  lambda_ai: { baseUrl: 'https://api.lambda.ai/v1', env: key('LAMBDA_API_KEY') },
  nscale: { baseUrl: 'https://inference.api.nscale.com/v1', env: key('NSCALE_API_KEY') },
  friendliai: { baseUrl: 'https://api.friendli.ai/serverless/v1', env: key('FRIENDLI_TOKEN', 'FRIENDLIAI_API_KEY') },
  github: { baseUrl: 'https://models.github.ai/inference', env: key('GITHUB_API_KEY') },
  llamafile: { baseUrl: 'http://127.0.0.1:8080/v1', env: { apiKey: ['LLAMAFILE_API_KEY'], apiBase: ['LLAMAFILE_API_BASE'] } },
  // LiteLLM's name for OpenAI's legacy /v1/completions models (gpt-3.5-turbo-instruct): the same API.
  'text-completion-openai': { baseUrl: 'https://api.openai.com/v1', env: { apiKey: ['OPENAI_API_KEY'], apiBase: ['OPENAI_BASE_URL', 'OPENAI_API_BASE'] } },
  openai_like: { env: {} },
  custom_openai: { env: {} },
}

export function createOpenAICompatible(name: string, preset: Preset): ProviderAdapter {
  return createOpenAIAdapter({ ...preset, name })
}

export const openAICompatibleAdapters: ProviderAdapter[] = Object.entries(OPENAI_COMPATIBLE).map(([name, preset]) =>
  createOpenAICompatible(name, preset))
