/**
 * The Gemini adapter (Google AI Studio, `gemini/<model>` in LiteLLM): POST
 * `{base}/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` for streams, `:batchEmbedContents` for
 * embeddings, `:predict` (Imagen) or `:generateContent` (Gemini image models) for image generation (images.ts), with
 * base https://generativelanguage.googleapis.com/v1beta. The key goes in the `x-goog-api-key`
 * header, never in the URL (LiteLLM once put it in `?key=`; a URL ends up in logs and error messages).
 * Key: `api_key`, else GEMINI_API_KEY, else GOOGLE_API_KEY; base: `api_base`, else GEMINI_API_BASE (LiteLLM's names).
 * An `api_base` may be the API root (`https://host/v1beta`), a bare origin (`https://host`: `/v1beta` is added),
 * or, as LiteLLM also accepts, the model's own URL (`.../models/<model>`) or the full method URL.
 * The Gemini translation itself (messages.ts, params.ts, response.ts, stream.ts, images.ts) is shared with Vertex AI.
 * API reference: https://ai.google.dev/api/generate-content
 */
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import type { OperationAdapter, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { geminiEmbeddings, resourceName } from './embeddings.js'
import { geminiError } from './errors.js'
import { googleImages, imageMethod } from './images.js'
import { GEMINI_POLICY, geminiChatParams } from './params.js'
import { geminiResponse } from './response.js'
import { GeminiStream } from './stream.js'

export { geminiError, googleErrorOf } from './errors.js'
export { geminiEmbeddings, inputTexts } from './embeddings.js'
export { toGeminiSchema } from './schema.js'
export { googleImages, imageMethod, isGeminiImageModel } from './images.js'

export const GEMINI_API_BASE = 'https://generativelanguage.googleapis.com/v1beta'

/** The chat translation, for any host speaking Gemini's generateContent (AI Studio, Vertex AI). */
export function geminiChat(provider: string): OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> {
  return {
    params: geminiChatParams,
    policy: GEMINI_POLICY,
    finish: dropNulls,
    response: (body, meta) => geminiResponse(provider, body, meta),
    stream: (_req, meta) => new GeminiStream(provider, meta),
  }
}

/**
 * OpenAI clients send `null` for "not set" (`max_tokens: null`); the map copies it, Gemini would read it as a value.
 * Removed from the body and its generationConfig.
 */
function dropNulls(body: Record<string, unknown>): Record<string, unknown> {
  for (const k in body) if (body[k] === null) delete body[k]
  const config = body.generationConfig as Record<string, unknown> | undefined
  if (config) {
    for (const k in config) if (config[k] === null) delete config[k]
    for (const _k in config) return body
    delete body.generationConfig
  }
  return body
}

/** The method URL for a model under an API base (see the header comment for the forms an api_base may take). */
export function methodUrl(base: string, model: string, method: string): string {
  const b = base.endsWith('/') ? base.slice(0, -1) : base
  const name = resourceName(model)
  if (b.endsWith(`/${name}:${method}`)) return b
  if (b.endsWith(`/${name}`)) return `${b}:${method}`
  // A bare origin (no path after the host): the API version is added.
  const root = b.indexOf('/', b.indexOf('//') + 2) === -1 ? `${b}/v1beta` : b
  return `${root}/${name}:${method}`
}

const METHOD = { chat: 'generateContent', embeddings: 'batchEmbedContents' } as const

export const gemini: ProviderAdapter = {
  name: 'gemini',
  operations: new Set(['chat', 'embeddings', 'images']),
  env: { apiKey: ['GEMINI_API_KEY', 'GOOGLE_API_KEY'], apiBase: ['GEMINI_API_BASE'] },
  request(op, target: Target, stream): ProviderRequest {
    const base = target.apiBase ?? GEMINI_API_BASE
    const url = op === 'chat' && stream
      ? `${methodUrl(base, target.model, 'streamGenerateContent')}?alt=sse`
      : methodUrl(base, target.model, op === 'images' ? imageMethod(target.model) : METHOD[op as keyof typeof METHOD])
    const headers: Record<string, string> = {}
    if (target.apiKey) headers['x-goog-api-key'] = target.apiKey
    for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
    return { url, headers }
  },
  chat: geminiChat('gemini'),
  embeddings: geminiEmbeddings,
  images: googleImages('gemini'),
  error: (status, body, headers) => geminiError('gemini', status, body, headers),
}
