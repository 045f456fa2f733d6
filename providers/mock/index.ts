/**
 * The mock provider: answers in process, so the gateway works with no provider key at all.
 *
 * - `mock/<anything>` models: chat, text completion and embeddings; streams word by word.
 * - `mock_response` on any deployment (litellm_params) or in the request body, as in LiteLLM: that text is the reply.
 *   A mock_response naming an error class ("litellm.RateLimitError", "RateLimitError: slow down") raises it instead,
 *   so retries and fallbacks can be exercised without an upstream.
 *
 * Token counts are estimates (about 4 characters per token), reported in `usage` like a real provider's.
 */
import { createHash } from 'node:crypto'
import { gatewayError, type ErrorCode } from '../../core/errors.js'
import type { ChatChunk, ChatCompletion, ChatMessage, EmbeddingResponse, TextCompletion, Usage } from '../../core/openai/types.js'
import type { ProviderAdapter, ProviderCall, ProviderResult } from '../types.js'

export const DEFAULT_MOCK_TEXT = 'This is a mock response from Switchyard.'
/** Embedding width when the request sets no `dimensions`; text-embedding-3-small's. */
const DEFAULT_DIMENSIONS = 1536

const ERROR_REPLY = /^(?:litellm\.)?([A-Za-z]+(?:Error|Timeout))(?::\s*(.*))?$/s
const ERROR_CODES: Record<string, ErrorCode> = {
  RateLimitError: 'GW_ERR_UPSTREAM_RATE_LIMIT',
  BadRequestError: 'GW_ERR_UPSTREAM_BAD_REQUEST',
  AuthenticationError: 'GW_ERR_UPSTREAM_AUTH',
  PermissionDeniedError: 'GW_ERR_UPSTREAM_FORBIDDEN',
  NotFoundError: 'GW_ERR_UPSTREAM_NOT_FOUND',
  ContextWindowExceededError: 'GW_ERR_CONTEXT_WINDOW',
  ContentPolicyViolationError: 'GW_ERR_CONTENT_POLICY',
  Timeout: 'GW_ERR_UPSTREAM_TIMEOUT',
  APIConnectionError: 'GW_ERR_UPSTREAM_CONNECTION',
  ServiceUnavailableError: 'GW_ERR_UPSTREAM_UNAVAILABLE',
  InternalServerError: 'GW_ERR_UPSTREAM_SERVER',
}

export function estimateTokens(text: string): number {
  return text ? Math.max(1, Math.ceil(text.length / 4)) : 0
}

function messageText(messages: ChatMessage[]): string {
  let out = ''
  for (const m of messages) {
    if (typeof m.content === 'string') out += m.content + '\n'
    else if (Array.isArray(m.content)) for (const p of m.content) if (typeof p.text === 'string') out += p.text + '\n'
  }
  return out
}

function usageOf(prompt: string, completion: string): Usage {
  const p = estimateTokens(prompt)
  const c = estimateTokens(completion)
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c }
}

/** Split into word-sized pieces that join back to the text exactly. */
function pieces(text: string): string[] {
  const out: string[] = []
  let start = 0
  for (let i = 1; i <= text.length; i++) {
    if (i === text.length || (text[i] === ' ' && text[i - 1] !== ' ')) {
      out.push(text.slice(start, i))
      start = i
    }
  }
  return out.length ? out : ['']
}

/** A deterministic unit vector per input, so equal inputs embed equally. */
function vector(input: string, dims: number): number[] {
  const out = new Array<number>(dims)
  let seed = createHash('sha256').update(input).digest()
  let norm = 0
  for (let i = 0; i < dims; i++) {
    if (i % 8 === 0 && i > 0) seed = createHash('sha256').update(seed).digest()
    const v = seed.readInt32LE((i % 8) * 4) / 2 ** 31
    out[i] = v
    norm += v * v
  }
  norm = Math.sqrt(norm) || 1
  for (let i = 0; i < dims; i++) out[i] = out[i]! / norm
  return out
}

function replyText(call: ProviderCall): string {
  const fromBody = call.request.mock_response
  const text = call.target.mockResponse ?? (typeof fromBody === 'string' ? fromBody : undefined) ?? DEFAULT_MOCK_TEXT
  const err = ERROR_REPLY.exec(text)
  if (err && ERROR_CODES[err[1]!]) {
    throw gatewayError(ERROR_CODES[err[1]!]!, err[2] || `Mock ${err[1]} from ${call.target.modelName}`, { provider: 'mock' })
  }
  return text
}

async function* streamChat(id: string, created: number, model: string, text: string, usage: Usage): AsyncGenerator<ChatChunk> {
  const base = { id, object: 'chat.completion.chunk' as const, created, model }
  yield { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }] }
  for (const piece of pieces(text)) {
    yield { ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null, logprobs: null }] }
  }
  yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }] }
  yield { ...base, choices: [], usage }
}

async function* streamText(id: string, created: number, model: string, text: string, usage: Usage): AsyncGenerator<TextCompletion> {
  const base = { id, object: 'text_completion' as const, created, model }
  for (const piece of pieces(text)) yield { ...base, choices: [{ index: 0, text: piece, finish_reason: null, logprobs: null }] }
  yield { ...base, choices: [{ index: 0, text: '', finish_reason: 'stop', logprobs: null }] }
  yield { ...base, choices: [], usage } as TextCompletion
}

async function invoke(call: ProviderCall): Promise<ProviderResult> {
  const { request, meta, target } = call
  const model = target.model
  const id = `${call.op === 'chat' ? 'chatcmpl' : 'cmpl'}-mock-${meta.requestId}`
  if (call.op === 'embeddings') {
    const raw = request.input
    const inputs: string[] = Array.isArray(raw) ? raw.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))) : [String(raw)]
    const dims = typeof request.dimensions === 'number' ? request.dimensions : DEFAULT_DIMENSIONS
    const prompt = inputs.reduce((n, s) => n + estimateTokens(s), 0)
    const body: EmbeddingResponse = {
      object: 'list',
      data: inputs.map((s, index) => ({ object: 'embedding', index, embedding: vector(s, dims) })),
      model,
      usage: { prompt_tokens: prompt, total_tokens: prompt },
    }
    return { kind: 'json', body, usage: { prompt_tokens: prompt, completion_tokens: 0, total_tokens: prompt } }
  }
  const text = replyText(call)
  if (call.op === 'completions') {
    const p = request.prompt
    const usage = usageOf(Array.isArray(p) ? p.join('\n') : String(p), text)
    if (call.stream) return { kind: 'stream', chunks: streamText(id, meta.created, model, text, usage) }
    const body: TextCompletion = {
      id, object: 'text_completion', created: meta.created, model,
      choices: [{ index: 0, text, finish_reason: 'stop', logprobs: null }], usage,
    }
    return { kind: 'json', body, usage }
  }
  const usage = usageOf(messageText(request.messages as ChatMessage[]), text)
  if (call.stream) return { kind: 'stream', chunks: streamChat(id, meta.created, model, text, usage) }
  const body: ChatCompletion = {
    id, object: 'chat.completion', created: meta.created, model,
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage,
  }
  return { kind: 'json', body, usage }
}

export const mock: ProviderAdapter = {
  name: 'mock',
  operations: new Set(['chat', 'completions', 'embeddings']),
  request() {
    throw gatewayError('GW_ERR_INTERNAL', 'The mock provider answers in process and has no HTTP endpoint')
  },
  error: (status) => gatewayError('GW_ERR_UPSTREAM_SERVER', `mock error ${status}`),
  invoke,
}
