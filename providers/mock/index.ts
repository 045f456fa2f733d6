/**
 * The mock provider: answers in process, so the gateway works with no provider key at all.
 *
 * - `mock/<anything>` models: chat, text completion and embeddings; streams word by word.
 * - `mock_response` on any deployment (litellm_params) or in the request body, as in LiteLLM: that text is the reply.
 *   A mock_response naming an error class ("litellm.RateLimitError", "RateLimitError: slow down") raises it instead,
 *   so retries and fallbacks can be exercised without an upstream.
 * - LiteLLM's testing flags in the body: `mock_testing_rate_limit_error` (429), `mock_testing_fallbacks` (500),
 *   `mock_timeout` (waits `timeout` seconds, default 1, then 408).
 * - OpenAI's `n` (that many identical choices), `max_tokens` / `max_completion_tokens` (the reply cut to that many
 *   estimated tokens, `finish_reason: 'length'`) and `tools` + `tool_choice` (a deterministic call of the first or
 *   the named function, its arguments filled from the parameter schema), so agent loops can be tested offline.
 *
 * Token counts are estimates (about 4 characters per token), reported in `usage` like a real provider's.
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { gatewayError, type ErrorCode } from '../../core/errors.js'
import type {
  ChatChunk, ChatCompletion, ChatMessage, EmbeddingResponse, FinishReason, TextCompletion, ToolCall, Usage,
} from '../../core/openai/types.js'
import type { ProviderAdapter, ProviderCall, ProviderResult } from '../types.js'
import { chosenTool, placeholderFor, priorToolCalls } from './tools.js'

export const DEFAULT_MOCK_TEXT = 'This is a mock response from Switchyard.'
/** Embedding width when the request sets no `dimensions`; text-embedding-3-small's. */
const DEFAULT_DIMENSIONS = 1536
/** The estimate `usage` uses, and so the unit `max_tokens` truncation counts in. */
const CHARS_PER_TOKEN = 4
/** Seconds `mock_timeout` waits when the request sets no `timeout` (the brief's LiteLLM-like default). */
const DEFAULT_MOCK_TIMEOUT = 1
/** OpenAI's own bound on `n`; also keeps a stray huge value (or a schema's `minItems`) from allocating without limit. */
const MAX_CHOICES = 128
/** Characters of tool-call arguments per streamed delta. */
const ARGUMENT_PIECE = 8

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
  return text ? Math.max(1, Math.ceil(text.length / CHARS_PER_TOKEN)) : 0
}

function messageText(messages: ChatMessage[]): string {
  let out = ''
  for (const m of messages) {
    if (typeof m.content === 'string') out += m.content + '\n'
    else if (Array.isArray(m.content)) for (const p of m.content) if (typeof p?.text === 'string') out += p.text + '\n'
  }
  return out
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

/** The explicit canned reply (deployment, then request body), if any. */
function cannedText(call: ProviderCall): string | undefined {
  const fromBody = call.request.mock_response
  return call.target.mockResponse ?? (typeof fromBody === 'string' ? fromBody : undefined)
}

function replyText(call: ProviderCall): string {
  const text = cannedText(call) ?? DEFAULT_MOCK_TEXT
  const err = ERROR_REPLY.exec(text)
  if (err && ERROR_CODES[err[1]!]) {
    throw gatewayError(ERROR_CODES[err[1]!]!, err[2] || `Mock ${err[1]} from ${call.target.modelName}`, { provider: 'mock' })
  }
  return text
}

/**
 * LiteLLM's testing flags in a request body. `mock_testing_rate_limit_error` and `mock_testing_fallbacks` fail at
 * once (429, and the 500 LiteLLM raises to exercise fallbacks); `mock_timeout` waits the request's `timeout`
 * (seconds, default 1) and then fails with a 408, as a provider that never answered would.
 */
async function mockFlags(call: ProviderCall): Promise<void> {
  const { request, target } = call
  if (request.mock_testing_rate_limit_error === true) {
    throw gatewayError('GW_ERR_UPSTREAM_RATE_LIMIT', 'This is a mock rate limit error', { provider: 'mock' })
  }
  if (request.mock_testing_fallbacks === true) {
    throw gatewayError('GW_ERR_UPSTREAM_SERVER', `This is a mock exception for model=${target.modelName}, to trigger a fallback.`, { provider: 'mock' })
  }
  if (request.mock_timeout === true) {
    const seconds = typeof request.timeout === 'number' && request.timeout >= 0 ? request.timeout : DEFAULT_MOCK_TIMEOUT
    await waitOrAbort(seconds * 1000, call.signal)
    throw gatewayError('GW_ERR_UPSTREAM_TIMEOUT', 'This is a mock timeout error', { provider: 'mock' })
  }
}

/** Sleep, but end early with the client's disconnect, as an HTTP call through undici would. */
async function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal })
  } catch (err) {
    throw gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request', { provider: 'mock', cause: err })
  }
}

/** `max_completion_tokens` (the current name) or `max_tokens` (the legacy one); null when neither limits the reply. */
function tokenLimit(request: Record<string, unknown>): number | null {
  const limit = request.max_completion_tokens ?? request.max_tokens
  if (typeof limit !== 'number') return null
  if (limit < 1) {
    const param = request.max_completion_tokens !== undefined && request.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens'
    throw gatewayError('GW_ERR_PARAM_RANGE', `Invalid '${param}': integer below minimum value. Expected a value >= 1, but got ${limit} instead.`, { param })
  }
  return limit
}

/** Cut the reply to `limit` tokens by the same 4-characters-per-token estimate `usage` reports. */
function truncate(text: string, limit: number | null): { text: string; finish: FinishReason } {
  if (limit === null || text.length <= limit * CHARS_PER_TOKEN) return { text, finish: 'stop' }
  return { text: text.slice(0, limit * CHARS_PER_TOKEN), finish: 'length' }
}

/** OpenAI's `n`: how many choices to return (each the same deterministic reply). */
function choiceCount(request: Record<string, unknown>): number {
  const n = request.n
  if (typeof n !== 'number' || n <= 1) return 1
  if (n > MAX_CHOICES) {
    throw gatewayError('GW_ERR_PARAM_RANGE', `Invalid 'n': integer above maximum value. Expected a value <= ${MAX_CHOICES}, but got ${n} instead.`, { param: 'n' })
  }
  return Math.floor(n)
}

/** What one choice answers: text (maybe cut by the token limit) or one tool call. */
interface Reply {
  content: string | null
  toolCall: ToolCall | null
  finish: FinishReason
}

function replyTokens(r: Reply): number {
  return r.toolCall ? estimateTokens(r.toolCall.function.name + r.toolCall.function.arguments) : estimateTokens(r.content ?? '')
}

function chatReplies(call: ProviderCall): Reply[] {
  const { request } = call
  const n = choiceCount(request)
  const text = replyText(call) // first: a mock_response naming an error raises it even when a tool would be called
  const tool = call.op === 'chat' ? chosenTool(request, cannedText(call) !== undefined) : null
  const replies: Reply[] = []
  if (tool) {
    const args = JSON.stringify(placeholderFor(tool.parameters) ?? {})
    const first = priorToolCalls(request.messages as ChatMessage[] | undefined) + 1
    for (let i = 0; i < n; i++) {
      const toolCall: ToolCall = { id: `call_mock_${first + i}`, type: 'function', function: { name: tool.name, arguments: args } }
      replies.push({ content: null, toolCall, finish: 'tool_calls' })
    }
    return replies
  }
  const cut = truncate(text, tokenLimit(request))
  for (let i = 0; i < n; i++) replies.push({ content: cut.text, toolCall: null, finish: cut.finish })
  return replies
}

function usageOf(prompt: string, replies: Reply[]): Usage {
  const p = estimateTokens(prompt)
  let c = 0
  for (const r of replies) c += replyTokens(r)
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c }
}

type Delta = ChatChunk['choices'][number]['delta']

/** The deltas one choice streams, as OpenAI sends them: the role first, then content or tool-call pieces. */
function deltasOf(r: Reply): Delta[] {
  if (r.toolCall) {
    const { id, type, function: fn } = r.toolCall
    const out: Delta[] = [{ role: 'assistant', content: null, tool_calls: [{ index: 0, id, type, function: { name: fn.name, arguments: '' } }] }]
    for (let i = 0; i < fn.arguments.length; i += ARGUMENT_PIECE) {
      out.push({ tool_calls: [{ index: 0, function: { arguments: fn.arguments.slice(i, i + ARGUMENT_PIECE) } }] })
    }
    return out
  }
  const out: Delta[] = [{ role: 'assistant', content: '' }]
  for (const piece of pieces(r.content ?? '')) out.push({ content: piece })
  return out
}

/** Choices interleave step by step, as with n > 1 upstream; each chunk carries one choice. */
async function* streamChat(id: string, created: number, model: string, replies: Reply[], usage: Usage): AsyncGenerator<ChatChunk> {
  const base = { id, object: 'chat.completion.chunk' as const, created, model }
  const deltas = replies.map(deltasOf)
  const steps = Math.max(...deltas.map((d) => d.length))
  for (let step = 0; step < steps; step++) {
    for (let index = 0; index < deltas.length; index++) {
      const delta = deltas[index]![step]
      if (delta) yield { ...base, choices: [{ index, delta, finish_reason: null, logprobs: null }] }
    }
  }
  for (let index = 0; index < replies.length; index++) {
    yield { ...base, choices: [{ index, delta: {}, finish_reason: replies[index]!.finish, logprobs: null }] }
  }
  yield { ...base, choices: [], usage }
}

async function* streamText(id: string, created: number, model: string, replies: Reply[], usage: Usage): AsyncGenerator<TextCompletion> {
  const base = { id, object: 'text_completion' as const, created, model }
  const split = replies.map((r) => pieces(r.content ?? ''))
  const steps = Math.max(...split.map((p) => p.length))
  for (let step = 0; step < steps; step++) {
    for (let index = 0; index < split.length; index++) {
      const piece = split[index]![step]
      if (piece !== undefined) yield { ...base, choices: [{ index, text: piece, finish_reason: null, logprobs: null }] }
    }
  }
  for (let index = 0; index < replies.length; index++) {
    yield { ...base, choices: [{ index, text: '', finish_reason: replies[index]!.finish, logprobs: null }] }
  }
  yield { ...base, choices: [], usage } as TextCompletion
}

function embed(call: ProviderCall): ProviderResult {
  const { request, target } = call
  const raw = request.input
  const inputs: string[] = Array.isArray(raw) ? raw.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))) : [String(raw)]
  const dims = typeof request.dimensions === 'number' ? request.dimensions : DEFAULT_DIMENSIONS
  const prompt = inputs.reduce((n, s) => n + estimateTokens(s), 0)
  const body: EmbeddingResponse = {
    object: 'list',
    data: inputs.map((s, index) => ({ object: 'embedding', index, embedding: vector(s, dims) })),
    model: target.model,
    usage: { prompt_tokens: prompt, total_tokens: prompt },
  }
  return { kind: 'json', body, usage: { prompt_tokens: prompt, completion_tokens: 0, total_tokens: prompt } }
}

async function invoke(call: ProviderCall): Promise<ProviderResult> {
  await mockFlags(call)
  if (call.op === 'embeddings') return embed(call)
  const { request, meta, target } = call
  const model = target.model
  const id = `${call.op === 'chat' ? 'chatcmpl' : 'cmpl'}-mock-${meta.requestId}`
  const replies = chatReplies(call)
  if (call.op === 'completions') {
    const p = request.prompt
    const usage = usageOf(Array.isArray(p) ? p.join('\n') : String(p), replies)
    if (call.stream) return { kind: 'stream', chunks: streamText(id, meta.created, model, replies, usage) }
    const body: TextCompletion = {
      id, object: 'text_completion', created: meta.created, model,
      choices: replies.map((r, index) => ({ index, text: r.content ?? '', finish_reason: r.finish, logprobs: null })), usage,
    }
    return { kind: 'json', body, usage }
  }
  const usage = usageOf(messageText(request.messages as ChatMessage[]), replies)
  if (call.stream) return { kind: 'stream', chunks: streamChat(id, meta.created, model, replies, usage) }
  const body: ChatCompletion = {
    id, object: 'chat.completion', created: meta.created, model,
    choices: replies.map((r, index) => ({ index, message: messageOf(r), finish_reason: r.finish, logprobs: null })),
    usage,
  }
  return { kind: 'json', body, usage }
}

function messageOf(r: Reply): ChatCompletion['choices'][number]['message'] {
  if (r.toolCall) return { role: 'assistant', content: null, refusal: null, tool_calls: [r.toolCall] }
  return { role: 'assistant', content: r.content, refusal: null }
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
