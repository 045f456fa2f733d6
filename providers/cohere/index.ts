/**
 * The Cohere adapters: LiteLLM's `cohere/` and `cohere_chat/` model prefixes, both over Cohere's v2 API
 * (POST {api_base}/v2/chat, POST {api_base}/v2/embed; https://docs.cohere.com/reference/chat). The two names share
 * one translation; LiteLLM itself sends `cohere/command-*` to its chat route.
 *
 * Credentials as LiteLLM reads them: COHERE_API_KEY, then CO_API_KEY (Cohere's SDK name), sent as a Bearer token;
 * the base from COHERE_API_BASE, default https://api.cohere.com.
 */
import type { ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import type { Operation, OperationAdapter, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { chatParams, finishChat, UNSUPPORTED_UNKNOWN } from './chat.js'
import { embeddingParams, finishEmbeddings, fromCohereEmbed } from './embeddings.js'
import { cohereError } from './errors.js'
import { fromCohereChat } from './response.js'
import { CohereStream } from './stream.js'

export const COHERE_BASE_URL = 'https://api.cohere.com'

const PATHS: Partial<Record<Operation, string>> = { chat: '/v2/chat', embeddings: '/v2/embed' }

/**
 * LiteLLM takes a Cohere `api_base` as the full endpoint ("https://api.cohere.ai/v1/chat", ".../v2/chat",
 * ".../v2/embed"), while Cohere's SDKs take the bare host. Either is accepted: a known endpoint or version suffix is
 * cut before the operation's v2 path is added, so one deployment serves chat and embeddings.
 */
const SUFFIXES = ['/v1/chat', '/v2/chat', '/v1/embed', '/v2/embed', '/v1', '/v2'] as const

export function cohereBase(apiBase: string | undefined): string {
  let base = apiBase ?? COHERE_BASE_URL
  while (base.endsWith('/')) base = base.slice(0, -1)
  for (const s of SUFFIXES) if (base.endsWith(s)) return base.slice(0, -s.length)
  return base
}

export function createCohereAdapter(name: string): ProviderAdapter {
  const chat: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> = {
    params: chatParams,
    policy: UNSUPPORTED_UNKNOWN,
    finish: finishChat,
    response: (body, meta) => fromCohereChat(name, body, meta),
    stream: (_req, meta) => new CohereStream(name, meta),
  }
  const embeddings: OperationAdapter<EmbeddingRequest, EmbeddingResponse> = {
    params: embeddingParams,
    policy: UNSUPPORTED_UNKNOWN,
    finish: finishEmbeddings,
    response: (body, meta) => fromCohereEmbed(name, body, meta),
  }
  return {
    name,
    operations: new Set<Operation>(['chat', 'embeddings']),
    env: { apiKey: ['COHERE_API_KEY', 'CO_API_KEY'], apiBase: ['COHERE_API_BASE'] },
    request(op: Operation, target: Target): ProviderRequest {
      const headers: Record<string, string> = {}
      if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`
      for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
      return { url: cohereBase(target.apiBase) + (PATHS[op] ?? '/v2/chat'), headers }
    },
    chat,
    embeddings,
    error: (status, body, headers) => cohereError(name, status, body, headers),
  }
}

export const cohere = createCohereAdapter('cohere')
export const cohere_chat = createCohereAdapter('cohere_chat')
