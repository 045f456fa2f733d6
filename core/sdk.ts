/**
 * The in-process SDK: `completion()`, `embedding()` (and the media functions in sdk-media.ts: `imageGeneration()`,
 * `transcription()`, `speech()`, `moderation()`) call a provider directly, no server, with the same providers,
 * param maps, errors, pricing and retry plugin as the proxy. Arguments are LiteLLM's:
 *
 *   const r = await completion({ model: 'groq/llama-3.1-8b-instant', messages, api_key, num_retries: 2 })
 *   for await (const chunk of await completion({ model: 'mock/echo', messages, stream: true })) ...
 *   const audio = await speech({ model: 'openai/tts-1', input: 'Hello', voice: 'alloy' })   // a fetch Response
 *   await writeFile('hello.mp3', Buffer.from(await audio.arrayBuffer()))
 *
 * Errors are the exported classes (RateLimitError, AuthenticationError, ...) with `status`. Nothing else escapes:
 * a throw while reading the arguments is a BadRequestError, any other unexpected throw an InternalServerError whose
 * `cause` is the original.
 */
import { createGateway, type Gateway } from './gateway.js'
import { buildTarget } from './models.js'
import { validateRequest } from './http/validate.js'
import { beginRequest } from './request.js'
import { gatewayError, GatewayError } from './errors.js'
import type {
  ChatChunk, ChatCompletion, ChatRequestParams, EmbeddingRequest, EmbeddingResponse, Operation, TextCompletion, Usage,
} from './openai/types.js'
import type { ModelEntry } from './config/load.js'
import type { Target } from '../providers/types.js'
import { chunkForClient, embeddingsAsBase64 } from './openai/shape.js'
import { generatesText } from './openai/operations.js'

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
  /** USD per prompt / completion token, as LiteLLM's custom pricing: the result's `_hidden_params.response_cost`. */
  input_cost_per_token?: number
  output_cost_per_token?: number
  /** Abort the call (and its stream). */
  signal?: AbortSignal
}

/**
 * `messages` and `tools` take the official client's types (ChatCompletionMessageParam[], ChatCompletionTool[]) and
 * plain literals alike; see ChatRequestParams.
 */
export type CompletionParams = ChatRequestParams & CallOptions
export type EmbeddingParams = EmbeddingRequest & CallOptions
const CALL_KEYS = new Set(['api_key', 'api_base', 'api_version', 'organization', 'custom_llm_provider', 'timeout',
  'stream_timeout', 'num_retries', 'mock_response', 'drop_params', 'extra_headers', 'signal', 'input_cost_per_token',
  'output_cost_per_token'])

/** The public function per operation, for messages about its arguments. */
const FUNCTION_NAMES: Record<Operation, string> = {
  chat: 'completion', completions: 'textCompletion', embeddings: 'embedding', images: 'imageGeneration',
  transcription: 'transcription', speech: 'speech', moderations: 'moderation',
}


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

/**
 * The caller's arguments, checked: anything that goes wrong while reading them (a TypeError from a getter, a
 * non-object) is the caller's mistake and becomes a 400 BadRequestError, never a raw TypeError.
 */
function prepare(op: Operation, params: unknown, gw: Gateway): { call: CallOptions; request: Record<string, unknown>; target: Target } {
  try {
    if (params === null || typeof params !== 'object' || Array.isArray(params)) {
      throw gatewayError('GW_ERR_VALIDATION', `${FUNCTION_NAMES[op]}() takes one object of parameters, got ${params === null ? 'null' : typeof params}.`)
    }
    const { call, request } = split(params as Record<string, unknown>)
    validateRequest(op, request)
    checkCallOptions(call)
    // mock_timeout waits the request's `timeout`; here `timeout` is a call option, so the mock gets it as well.
    if (request.mock_timeout !== undefined && call.timeout !== undefined) request.timeout = call.timeout
    return { call, request, target: targetFor(request.model as string, call, gw) }
  } catch (err) {
    throw asInputError(err, op)
  }
}

/** What undici would otherwise reject deep inside the call, as a 502 that blames the upstream. */
function checkCallOptions(call: CallOptions): void {
  if (call.signal !== undefined && !(call.signal instanceof AbortSignal)) {
    throw gatewayError('GW_ERR_VALIDATION', "Invalid 'signal': expected an AbortSignal.", { param: 'signal' })
  }
  if (call.api_base !== undefined && (typeof call.api_base !== 'string' || !URL.canParse(call.api_base))) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid 'api_base': ${JSON.stringify(call.api_base)} is not a URL.`, { param: 'api_base' })
  }
}

function targetFor(model: string, call: CallOptions, gw: Gateway): Target {
  const entry: ModelEntry = {
    model_name: model,
    litellm_params: {
      model,
      api_key: call.api_key, api_base: call.api_base, api_version: call.api_version, organization: call.organization,
      custom_llm_provider: call.custom_llm_provider, timeout: call.timeout, stream_timeout: call.stream_timeout,
      max_retries: call.num_retries, mock_response: call.mock_response, drop_params: call.drop_params,
      extra_headers: call.extra_headers, input_cost_per_token: call.input_cost_per_token,
      output_cost_per_token: call.output_cost_per_token,
    },
  }
  const s = gw.config.settings
  try {
    return buildTarget(entry, gw.container.cradle.providers, {
      dropParams: s.drop_params, requestTimeout: s.request_timeout, streamTimeout: s.stream_timeout, env: process.env,
    })
  } catch (err) {
    // A wrong provider name is the caller's mistake here, not a config error: 400, as LiteLLM raises it.
    if (err instanceof GatewayError) throw gatewayError('GW_ERR_VALIDATION', err.message, { param: 'model', cause: err })
    throw err
  }
}

export function asInputError(err: unknown, op: Operation): GatewayError {
  if (err instanceof GatewayError) return err
  const why = err instanceof Error ? err.message : String(err)
  return gatewayError('GW_ERR_VALIDATION', `Invalid arguments to ${FUNCTION_NAMES[op]}(): ${why}`, { cause: err })
}

/**
 * A throw from inside the call that is not already one of ours (a provider's bug, a plugin's) becomes a 500
 * InternalServerError that keeps the original as `cause`, so callers catch one family and can still see why.
 */
function asCallError(err: unknown, target: Target): GatewayError {
  if (err instanceof GatewayError) return err
  const why = err instanceof Error ? err.message : String(err)
  return gatewayError('GW_ERR_INTERNAL', `Unexpected error calling ${target.provider}/${target.model}: ${why}`, { cause: err, provider: target.provider })
}

/** One call through the shared engine (exported for sdk-media.ts, not from the package). */
export async function run(op: Operation, params: unknown) {
  const gw = await getEngine()
  const { call, request, target } = prepare(op, params, gw)
  const signal = call.signal ?? new AbortController().signal
  const pricing = gw.container.cradle.pricing
  // One lifetime per call, as the proxy has per request, so interceptors can resolve `state` and `log` alike.
  const { state, end } = beginRequest(gw.container, gw.container.cradle.logger, signal)
  state.kind = op
  state.model = target.modelName
  state.body = request
  state.stream = generatesText(op) && request.stream === true
  state.targets = [target]
  const price = (reply: unknown) => {
    const c = pricing.callCost(state.target ?? target, op, request, reply, state.usage)
    state.costUsd = c.usd
    if (c.source) state.costSource = c.source
  }
  const finish = (error: GatewayError | null, reply: unknown = null) => {
    state.error = error
    price(reply)
    end({ status: error ? error.status : 200, aborted: signal.aborted })
  }
  let result
  try {
    result = await gw.attempt({ op, target, request, stream: state.stream, state, number: 0 })
  } catch (err) {
    const error = asCallError(err, target)
    finish(error)
    throw error
  }
  const hidden = (): HiddenParams => ({ response_cost: state.costUsd, model_id: (state.target ?? target).id, custom_llm_provider: (state.target ?? target).provider })
  if (result.kind === 'json') {
    state.usage = result.usage
    finish(null, result.body)
    hideParams(result.body, hidden())
    return { result, request, hidden: hidden() }
  }
  if (result.kind === 'binary') {
    // Priced before the bytes are read (characters, the upload's seconds), so the caller has the cost at once.
    price(null)
    return { result: { ...result, chunks: settleAtEnd(result.chunks, target, finish) }, request, hidden: hidden() }
  }
  // The SDK never allows the pass-through (state.passthrough stays false): its callers get chunk objects.
  if (result.kind !== 'stream') throw gatewayError('GW_ERR_INTERNAL', 'a pass-through stream reached the SDK')
  const chunks = result.chunks
  const stream = {
    kind: 'stream' as const,
    chunks: (async function* () {
      let error: GatewayError | null = null
      try {
        for await (const c of chunks as AsyncIterable<{ usage?: Usage | null }>) {
          if (c.usage) state.usage = c.usage
          yield c
        }
      } catch (err) {
        error = asCallError(err, target)
        throw error
      } finally {
        finish(error)
      }
    })(),
  }
  return { result: stream, request, hidden: null }
}

/** A binary reply's chunks, ending the call's lifetime (spend, budgets) when they end, however they end. */
async function* settleAtEnd(chunks: AsyncIterable<Uint8Array>, target: Target, finish: (e: GatewayError | null) => void): AsyncGenerator<Uint8Array> {
  let error: GatewayError | null = null
  try {
    yield* chunks
  } catch (err) {
    error = asCallError(err, target)
    throw error
  } finally {
    finish(error)
  }
}

/** What LiteLLM's SDK reports beside a result (`response._hidden_params`), non-enumerable: never serialised. */
export interface HiddenParams {
  /** USD, from the deployment's input/output_cost_per_token and the usage; 0 without prices. */
  response_cost: number
  model_id: string
  custom_llm_provider: string
}

export function hideParams(body: object, params: HiddenParams): void {
  Object.defineProperty(body, '_hidden_params', { value: params, enumerable: false, configurable: true })
}

async function* withoutUsage<T extends { usage?: Usage | null; choices?: unknown[] }>(src: AsyncIterable<T>, keepUsage: boolean): AsyncGenerator<T> {
  for await (const c of src) {
    const out = chunkForClient(c, keepUsage)
    if (out !== null) yield out
  }
}

function wantsUsage(request: Record<string, unknown>): boolean {
  return (request.stream_options as { include_usage?: unknown } | null | undefined)?.include_usage === true
}

export function completion(params: CompletionParams & { stream: true }): Promise<AsyncIterable<ChatChunk>>
export function completion(params: CompletionParams & { stream?: false | null }): Promise<ChatCompletion>
export function completion(params: CompletionParams): Promise<ChatCompletion | AsyncIterable<ChatChunk>>
export async function completion(params: CompletionParams): Promise<ChatCompletion | AsyncIterable<ChatChunk>> {
  const { result, request } = await run('chat', params)
  if (result.kind === 'stream') return withoutUsage(result.chunks as AsyncIterable<ChatChunk>, wantsUsage(request))
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'completion() got a binary reply')
  return result.body as ChatCompletion
}

/** Legacy text completion (`/v1/completions`). */
export async function textCompletion(params: Record<string, unknown> & { model: string; prompt: unknown } & CallOptions): Promise<TextCompletion | AsyncIterable<TextCompletion>> {
  const { result } = await run('completions', params)
  if (result.kind === 'stream') return withoutUsage(result.chunks as AsyncIterable<TextCompletion>, false)
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'textCompletion() got a binary reply')
  return result.body as TextCompletion
}

/** Floats unless `encoding_format: 'base64'` was asked for; the result type says which. */
export function embedding(params: EmbeddingParams & { encoding_format: 'base64' }): Promise<EmbeddingResponse<string>>
export function embedding(params: EmbeddingParams & { encoding_format?: 'float' }): Promise<EmbeddingResponse<number[]>>
export function embedding(params: EmbeddingParams): Promise<EmbeddingResponse>
export async function embedding(params: EmbeddingParams): Promise<EmbeddingResponse> {
  const { result, request } = await run('embeddings', params)
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'embedding() got a stream')
  const body = result.body as EmbeddingResponse
  if (request.encoding_format !== 'base64') return body
  const encoded = embeddingsAsBase64(body)
  if (encoded !== body) hideParams(encoded, (body as { _hidden_params?: HiddenParams })._hidden_params!)
  return encoded
}

