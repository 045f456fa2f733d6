/**
 * The Ollama adapters: LiteLLM's `ollama/` and `ollama_chat/` models, both over Ollama's native chat API
 * (`POST {api_base}/api/chat`, NDJSON streams) and `POST {api_base}/api/embed`. LiteLLM sends `ollama/` to the
 * older /api/generate; the chat API serves the same models with messages, tools and images intact, so both names
 * use it here. Legacy /v1/completions calls reach it through the core's completions-over-chat translation.
 *
 * Credentials as LiteLLM reads them (litellm/main.py): the base from `api_base`, else OLLAMA_API_BASE, else
 * http://localhost:11434; `ollama_chat` also takes OLLAMA_API_KEY (Ollama's cloud, or a proxy in front of a server),
 * sent as a Bearer token; `ollama` uses a key only when the deployment sets `api_key`.
 * API reference: shared/data/ollama/api.md and openapi.yaml (ollama/ollama docs).
 */
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import type { OperationAdapter, Operation, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { chatParams, finishChat } from './chat.js'
import { ollamaEmbeddings } from './embeddings.js'
import { ollamaError } from './errors.js'
import { toChatCompletion } from './response.js'
import { NdjsonDecoder, ollamaStream } from './stream.js'

export const OLLAMA_DEFAULT_BASE = 'http://localhost:11434'

/** Endpoint paths a LiteLLM api_base may already end in (LiteLLM accepts `.../api/chat` and `.../api/embed`). */
const ENDPOINT_SUFFIXES = ['/api/chat', '/api/embed', '/api/generate', '/api/embeddings'] as const

/** "http://host:11434/", "http://host:11434/api/chat" -> "http://host:11434". */
export function ollamaRoot(base: string): string {
  let root = base.endsWith('/') ? base.slice(0, -1) : base
  for (const s of ENDPOINT_SUFFIXES) {
    if (root.endsWith(s)) {
      root = root.slice(0, -s.length)
      break
    }
  }
  return root
}

function createOllamaAdapter(name: 'ollama' | 'ollama_chat', apiKeyEnv: readonly string[]): ProviderAdapter {
  const chat: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> = {
    params: chatParams,
    // Ollama's body has its own vocabulary: an OpenAI field with no rule here has no meaning there.
    policy: { unknown: 'unsupported' },
    decoder: () => new NdjsonDecoder(),
    finish: finishChat,
    response: (body, meta) => toChatCompletion(name, body, meta),
    stream: ollamaStream(name),
  }
  return {
    name,
    operations: new Set<Operation>(['chat', 'embeddings']),
    env: { apiKey: apiKeyEnv, apiBase: ['OLLAMA_API_BASE'] },
    request(op: Operation, target: Target): ProviderRequest {
      const root = ollamaRoot(target.apiBase ?? OLLAMA_DEFAULT_BASE)
      const headers: Record<string, string> = {}
      if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`
      for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
      return { url: root + (op === 'embeddings' ? '/api/embed' : '/api/chat'), headers }
    },
    chat,
    embeddings: ollamaEmbeddings(name),
    error: (status, body, headers) => ollamaError(name, status, body, headers),
  }
}

/** `ollama/<model>`: LiteLLM reads no key variable for it. */
export const ollama = createOllamaAdapter('ollama', [])
/** `ollama_chat/<model>`: LiteLLM reads OLLAMA_API_KEY for it. */
export const ollama_chat = createOllamaAdapter('ollama_chat', ['OLLAMA_API_KEY'])
