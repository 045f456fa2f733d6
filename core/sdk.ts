/**
 * The in-process SDK: `completion()` and `embedding()` call a provider directly, no server, with the same
 * providers, param maps, errors and retry plugin as the proxy. Arguments are LiteLLM's:
 *
 *   const r = await completion({ model: 'groq/llama-3.1-8b-instant', messages, api_key, num_retries: 2 })
 *   for await (const chunk of await completion({ model: 'mock/echo', messages, stream: true })) ...
 *
 * Errors are the exported classes (RateLimitError, AuthenticationError, ...) with `status`.
 */
import { createGateway, type Gateway } from './gateway.js'
import { buildTarget } from './models.js'
import { validateRequest } from './http/validate.js'
import { beginRequest } from './request.js'
import { asGatewayError, gatewayError, GatewayError } from './errors.js'
import type { ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, EmbeddingResponse, Operation, TextCompletion, Usage } from './openai/types.js'
import type { ModelEntry } from './config/load.js'
import { chunkForClient, embeddingsAsBase64 } from './openai/shape.js'

/** Per-call options, as LiteLLM's completion() takes them beside the OpenAI params. */
export interface CallOptions {
  api_key?: string
  api_base?: string
  api_version?: string
  organization?: string
  custom_llm_provider?: string
  /** Seconds. */
  timeout?: number
  /** Seconds, until a stream's first event. */
  stream_timeout?: number
  num_retries?: number
  mock_response?: string
  drop_params?: boolean
  extra_headers?: Record<string, string>
  /** Abort the call (and its stream). */
  signal?: AbortSignal
}

export type CompletionParams = ChatRequest & CallOptions
export type EmbeddingParams = EmbeddingRequest & CallOptions

const CALL_KEYS = new Set(['api_key', 'api_base', 'api_version', 'organization', 'custom_llm_provider', 'timeout',
  'stream_timeout', 'num_retries', 'mock_response', 'drop_params', 'extra_headers', 'signal'])

let engine: Promise<Gateway> | null = null

/** One shared engine per process: providers, the keep-alive dispatcher and the retry interceptor. */
function getEngine(): Promise<Gateway> {
  engine ??= createGateway({ config: { pipeline: [], upstream: ['retry'], server: { log_level: 'warn' } } }).catch((err) => {
    engine = null
    throw err
  })
  return engine
}

function split(params: Record<string, unknown>): { call: CallOptions; request: Record<string, unknown> } {
  const call: Record<string, unknown> = {}
  const request: Record<string, unknown> = {}
  for (const k in params) {
    if (CALL_KEYS.has(k)) call[k] = params[k]
    else request[k] = params[k]
  }
  return { call: call as CallOptions, request }
}

async function run(op: Operation, params: Record<string, unknown>) {
  const gw = await getEngine()
  const { call, request } = split(params)
  validateRequest(op, request)
  const entry: ModelEntry = {
    model_name: request.model as string,
    litellm_params: {
      model: request.model as string,
      api_key: call.api_key, api_base: call.api_base, api_version: call.api_version, organization: call.organization,
      custom_llm_provider: call.custom_llm_provider, timeout: call.timeout, stream_timeout: call.stream_timeout,
      max_retries: call.num_retries, mock_response: call.mock_response, drop_params: call.drop_params,
      extra_headers: call.extra_headers,
    },
  }
  const s = gw.config.settings
  let target
  try {
    target = buildTarget(entry, gw.container.cradle.providers, {
      dropParams: s.drop_params, requestTimeout: s.request_timeout, streamTimeout: s.stream_timeout, env: process.env,
    })
  } catch (err) {
    // A wrong provider name is the caller's mistake here, not a config error: 400, as LiteLLM raises it.
    if (err instanceof GatewayError) throw gatewayError('GW_ERR_VALIDATION', err.message, { param: 'model', cause: err })
    throw err
  }
  const signal = call.signal ?? new AbortController().signal
  // One lifetime per call, as the proxy has per request, so interceptors can resolve `state` and `log` alike.
  const { state, end } = beginRequest(gw.container, gw.container.cradle.logger, signal)
  state.kind = op
  state.model = target.modelName
  state.body = request
  state.stream = op !== 'embeddings' && request.stream === true
  state.targets = [target]
  const finish = (error: GatewayError | null) => {
    state.error = error
    end({ status: error ? error.status : 200, aborted: signal.aborted })
  }
  let result
  try {
    result = await gw.attempt({ op, target, request, stream: state.stream, state, number: 0 })
  } catch (err) {
    finish(asGatewayError(err))
    throw err
  }
  if (result.kind === 'json') {
    state.usage = result.usage
    finish(null)
    return result
  }
  const chunks = result.chunks
  return {
    kind: 'stream' as const,
    chunks: (async function* () {
      let error: GatewayError | null = null
      try {
        for await (const c of chunks as AsyncIterable<{ usage?: Usage | null }>) {
          if (c.usage) state.usage = c.usage
          yield c
        }
      } catch (err) {
        error = asGatewayError(err)
        throw err
      } finally {
        finish(error)
      }
    })(),
  }
}

async function* withoutUsage<T extends { usage?: Usage | null; choices?: unknown[] }>(src: AsyncIterable<T>, keepUsage: boolean): AsyncGenerator<T> {
  for await (const c of src) {
    const out = chunkForClient(c, keepUsage)
    if (out !== null) yield out
  }
}

export function completion(params: CompletionParams & { stream: true }): Promise<AsyncIterable<ChatChunk>>
export function completion(params: CompletionParams & { stream?: false | null }): Promise<ChatCompletion>
export function completion(params: CompletionParams): Promise<ChatCompletion | AsyncIterable<ChatChunk>>
export async function completion(params: CompletionParams): Promise<ChatCompletion | AsyncIterable<ChatChunk>> {
  const result = await run('chat', params)
  if (result.kind === 'stream') {
    return withoutUsage(result.chunks as AsyncIterable<ChatChunk>, params.stream_options?.include_usage === true)
  }
  return result.body as ChatCompletion
}

/** Legacy text completion (`/v1/completions`). */
export async function textCompletion(params: Record<string, unknown> & { model: string; prompt: unknown } & CallOptions): Promise<TextCompletion | AsyncIterable<TextCompletion>> {
  const result = await run('completions', params)
  if (result.kind === 'stream') return withoutUsage(result.chunks as AsyncIterable<TextCompletion>, false)
  return result.body as TextCompletion
}

export async function embedding(params: EmbeddingParams): Promise<EmbeddingResponse> {
  const result = await run('embeddings', params)
  const body = result.kind === 'json' ? (result.body as EmbeddingResponse) : null
  if (!body) throw new TypeError('embedding() got a stream')
  return params.encoding_format === 'base64' ? embeddingsAsBase64(body) : body
}
