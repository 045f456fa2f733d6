/**
 * The Mistral adapter: LiteLLM's `mistral/` models at https://api.mistral.ai/v1, an OpenAI-like API. Composed from
 * the OpenAI family adapter (URL, Bearer key, extra headers), with Mistral's own chat and embeddings translators
 * and error mapping on top. API reference: shared/data/mistral/openapi.json (docs.mistral.ai/api).
 *
 * Credentials as LiteLLM reads them (MistralConfig._get_openai_compatible_provider_info): the key from `api_key`,
 * else MISTRAL_AZURE_API_KEY, else MISTRAL_API_KEY; the base from `api_base`, else MISTRAL_AZURE_API_BASE (else
 * MISTRAL_API_BASE), else the public endpoint. As in LiteLLM, a base without a trailing `/v1` gets one.
 */
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import { createOpenAIAdapter } from '../openai/index.js'
import type { OperationAdapter, Operation, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { chatParams, finishChat } from './chat.js'
import { embeddings } from './embeddings.js'
import { mistralError } from './errors.js'
import { toChatCompletion } from './response.js'
import { mistralStream } from './stream.js'

export const MISTRAL_DEFAULT_BASE = 'https://api.mistral.ai/v1'

const base = createOpenAIAdapter({
  name: 'mistral',
  baseUrl: MISTRAL_DEFAULT_BASE,
  operations: ['chat', 'embeddings'],
  // Mistral's request has no stream_options (a 422); its last chunk carries usage unasked.
  streamUsage: false,
  env: { apiKey: ['MISTRAL_AZURE_API_KEY', 'MISTRAL_API_KEY'], apiBase: ['MISTRAL_AZURE_API_BASE', 'MISTRAL_API_BASE'] },
})

/** "http://host:8080" -> "http://host:8080/v1"; "https://api.mistral.ai/v1/" is kept (the trailing slash aside). */
export function mistralBase(apiBase: string): string {
  const b = apiBase.endsWith('/') ? apiBase.slice(0, -1) : apiBase
  return b.endsWith('/v1') ? b : `${b}/v1`
}

/** Targets whose api_base needed `/v1`, rewritten once per deployment rather than per call. */
const withV1 = new WeakMap<Target, Target>()

function normalised(target: Target): Target {
  if (target.apiBase === undefined) return target
  let t = withV1.get(target)
  if (t === undefined) {
    const fixed = mistralBase(target.apiBase)
    t = fixed === target.apiBase ? target : Object.freeze({ ...target, apiBase: fixed })
    withV1.set(target, t)
  }
  return t
}

const chat: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> = {
  params: chatParams,
  // Mistral's request object is closed: an OpenAI field it lacks is unsupported, never forwarded into a 422.
  policy: { unknown: 'unsupported' },
  finish: finishChat,
  response: (body, meta) => toChatCompletion('mistral', body, meta),
  stream: mistralStream('mistral'),
  // Not passed through: see stream.ts for which chunks need rewriting.
  passthrough: false,
}

export const mistral: ProviderAdapter = {
  ...base,
  request: (op: Operation, target: Target, stream: boolean): ProviderRequest => base.request(op, normalised(target), stream),
  chat,
  embeddings,
  completions: undefined,
  error: mistralError,
}
