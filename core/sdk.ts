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
import { buildConfig, type RawConfig } from './config/load.js'
import { callbacksPlugin, type Callbacks } from './sdk-callbacks.js'
import { buildTarget } from './models.js'
import { validateRequest } from './http/validate.js'
import type { InvokeOptions } from './invoke.js'
import { gatewayError, GatewayError } from './errors.js'
import type {
  ChatChunk, ChatCompletion, ChatRequestParams, EmbeddingRequest, EmbeddingResponse, Operation, TextCompletion, Usage,
} from './openai/types.js'
import type { ModelEntry } from './config/load.js'
import type { Target } from '../providers/types.js'
import { generatesText } from './openai/operations.js'

/**
 * Per-call options, as LiteLLM's completion() takes them beside the OpenAI params. Each is also accepted in
 * camelCase (`apiKey`, `apiBase`, `numRetries`, `mockResponse`, ...), as a TypeScript caller writes them.
 */
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
  /** Retries of a failed call (retryable errors: 408, 429, 5xx, timeouts, connection errors). */
  num_retries?: number
  /** Models ("provider/name") to try in turn when the call still fails after its retries. */
  fallbacks?: Array<string | { model: string }>
  mock_response?: string
  drop_params?: boolean
  extra_headers?: Record<string, string>
  /** USD per prompt / completion token, as LiteLLM's custom pricing: the result's `_hidden_params.response_cost`. */
  input_cost_per_token?: number
  output_cost_per_token?: number
  /** Abort the call (and its stream). */
  signal?: AbortSignal
  apiKey?: string
  apiBase?: string
  apiVersion?: string
  customLlmProvider?: string
  streamTimeout?: number
  numRetries?: number
  mockResponse?: string
  dropParams?: boolean
  extraHeaders?: Record<string, string>
  inputCostPerToken?: number
  outputCostPerToken?: number
}

/**
 * `messages` and `tools` take the official client's types (ChatCompletionMessageParam[], ChatCompletionTool[]) and
 * plain literals alike; see ChatRequestParams.
 */
export type CompletionParams = ChatRequestParams & CallOptions
export type EmbeddingParams = EmbeddingRequest & CallOptions

/** camelCase spellings of LiteLLM's option names, for callers writing TypeScript. */
export const CAMEL_OPTIONS: Readonly<Record<string, string>> = {
  apiKey: 'api_key', apiBase: 'api_base', apiVersion: 'api_version', customLlmProvider: 'custom_llm_provider',
  streamTimeout: 'stream_timeout', numRetries: 'num_retries', mockResponse: 'mock_response', dropParams: 'drop_params',
  extraHeaders: 'extra_headers', inputCostPerToken: 'input_cost_per_token', outputCostPerToken: 'output_cost_per_token',
  disableFallbacks: 'disable_fallbacks', contextWindowFallbacks: 'context_window_fallbacks',
}
/** Options that shape the call's own deployment (the rest of the params go to the request body, as in the proxy). */
const CALL_KEYS = new Set(['api_key', 'api_base', 'api_version', 'organization', 'custom_llm_provider', 'timeout',
  'stream_timeout', 'mock_response', 'drop_params', 'extra_headers', 'signal', 'input_cost_per_token',
  'output_cost_per_token'])

/** The public function per operation, for messages about its arguments. */
const FUNCTION_NAMES: Record<Operation, string> = {
  chat: 'completion', completions: 'textCompletion', embeddings: 'embedding', images: 'imageGeneration',
  transcription: 'transcription', speech: 'speech', moderations: 'moderation',
}

/**
 * The SDK's engine: the same gateway as the proxy, with no request-chain plugins but the ones settings ask for
 * (logging sinks, callbacks) and the attempt chain's fallback and retry plugins. Each call brings its own deployment
 * (built from `model` and the call's options); a model named in `fallbacks` resolves through the catch-all wildcard,
 * with its provider's key from the environment, as LiteLLM's completion() does.
 */
function engineConfig(s: SdkSettings): RawConfig {
  const litellm: Record<string, unknown> = {}
  if (s.callbacks?.length) litellm.callbacks = s.callbacks
  if (s.successCallback?.length) litellm.success_callback = s.successCallback
  if (s.failureCallback?.length) litellm.failure_callback = s.failureCallback
  if (s.turnOffMessageLogging !== undefined) litellm.turn_off_message_logging = s.turnOffMessageLogging
  const logging = Object.keys(litellm).some((k) => k.endsWith('callback') || k === 'callbacks')
  const hooks = s.onSuccess !== undefined || s.onFailure !== undefined
  return {
    model_list: [{ model_name: '*', litellm_params: { model: '*' } }],
    litellm_settings: litellm,
    ...(s.environment ? { environment_variables: s.environment } : {}),
    pipeline: [...(hooks ? ['sdk-callbacks'] : []), ...(logging ? ['logging'] : [])],
    upstream: ['fallback', 'retry'],
    server: { log_level: s.logLevel ?? 'warn' },
  }
}

/** Settings of the SDK's functions (completion(), embedding(), ...), as LiteLLM's module-level ones. */
export interface SdkSettings extends Callbacks {
  /** The proxy's logging sinks by LiteLLM's callback names (langfuse, helicone, mlflow, otel), for every call. */
  callbacks?: string[]
  successCallback?: string[]
  failureCallback?: string[]
  /** Sink credentials (LANGFUSE_PUBLIC_KEY, ...); default: process.env. */
  environment?: Record<string, string>
  turnOffMessageLogging?: boolean
  /** 'warn' by default. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent'
}

let settings: SdkSettings = {}
let engine: Promise<Gateway> | null = null

/** One shared engine per process, built on first use (importing the package starts nothing). */
function getEngine(): Promise<Gateway> {
  engine ??= (async () => {
    const hooks = settings.onSuccess || settings.onFailure ? [callbacksPlugin(settings, () => undefined)] : []
    const gw = await createGateway({ config: engineConfig(settings), plugins: hooks })
    await gw.start()
    return gw
  })().catch((err) => {
    engine = null
    throw err
  })
  return engine
}

/**
 * Logging sinks and callbacks for the SDK's functions, as LiteLLM's `litellm.callbacks = [...]` and
 * `litellm.success_callback = [fn]`: `configureSdk({ callbacks: ['langfuse'], onSuccess: (e) => ... })`. Replaces
 * the previous settings; calls in flight finish on the engine they started on (it is stopped once they are over,
 * its sinks flushed). Resolves once the old engine has stopped.
 */
export async function configureSdk(next: SdkSettings): Promise<void> {
  const old = engine
  settings = { ...next }
  engine = null
  // Checked now: a wrong sink name or option fails here, not on the next call.
  buildConfig(engineConfig(settings))
  if (old) await (await old.catch(() => null))?.stop()
}

/** LiteLLM's names for camelCase ones; the caller's object is never changed. */
export function snakeCase(params: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null
  for (const k in params) {
    const snake = CAMEL_OPTIONS[k]
    if (snake === undefined) continue
    out ??= { ...params }
    if (out[snake] === undefined) out[snake] = params[k]
    delete out[k]
  }
  return out ?? params
}

function split(params: Record<string, unknown>): { call: CallOptions; request: Record<string, unknown> } {
  const call: Record<string, unknown> = {}
  const request: Record<string, unknown> = {}
  const all = snakeCase(params)
  for (const k in all) {
    if (CALL_KEYS.has(k)) call[k] = all[k]
    else request[k] = all[k]
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
export function checkCallOptions(call: { signal?: unknown; api_base?: unknown }): void {
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
      mock_response: call.mock_response, drop_params: call.drop_params,
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

/** An in-process call's result as the SDK's functions read it. */
export type RunResult =
  | { kind: 'json'; body: unknown }
  | { kind: 'stream'; chunks: AsyncIterable<object> }
  | { kind: 'binary'; contentType: string; chunks: AsyncIterable<Uint8Array> }

/**
 * One call through an engine's in-process entry (core/invoke.ts), read back for the SDK's functions: a JSON reply
 * carries `_hidden_params`; a binary reply's hidden params are returned beside it (its cost is known up front).
 * Streams keep their usage chunk (the last one) unless `stream_options.include_usage` is false.
 */
export async function invokeOn(gw: Gateway, op: Operation, request: Record<string, unknown>, opts: InvokeOptions): Promise<{ result: RunResult; hidden: HiddenParams | null }> {
  // Streams end with their usage chunk unless the caller says `stream_options: { include_usage: false }`.
  const usageOff = (request.stream_options as { include_usage?: unknown } | null | undefined)?.include_usage === false
  const out = await gw.invoke(op, request, { includeUsage: generatesText(op) && !usageOff, ...opts })
  const state = out.state
  const hidden = (): HiddenParams => {
    const served = state.target ?? state.targets[0]
    return {
      response_cost: state.costUsd, model_id: served?.id ?? '', custom_llm_provider: served?.provider ?? '',
      api_base: served?.apiBase ?? null, additional_headers: out.headers,
    }
  }
  if (out.kind === 'json') {
    if (out.body && typeof out.body === 'object') hideParams(out.body, hidden())
    return { result: { kind: 'json', body: out.body }, hidden: null }
  }
  if (out.kind === 'binary') return { result: { kind: 'binary', contentType: out.contentType, chunks: out.chunks }, hidden: hidden() }
  return { result: { kind: 'stream', chunks: out.chunks }, hidden: null }
}

/** One in-process call, read back: the shared engine's (run below) or a Router's. */
export type Runner = (op: Operation, params: unknown) => Promise<{ result: RunResult; request: Record<string, unknown>; hidden: HiddenParams | null }>

/** One call through the shared engine (exported for sdk-media.ts, not from the package). */
export async function run(op: Operation, params: unknown): Promise<{ result: RunResult; request: Record<string, unknown>; hidden: HiddenParams | null }> {
  const gw = await getEngine()
  const { call, request, target } = prepare(op, params, gw)
  const { result, hidden } = await invokeOn(gw, op, request, { signal: call.signal, targets: [target] })
  return { result, request, hidden }
}

/** What LiteLLM's SDK reports beside a result (`response._hidden_params`), non-enumerable: never serialised. */
export interface HiddenParams {
  /** USD, from the deployment's input/output_cost_per_token and the usage; 0 without prices. */
  response_cost: number
  model_id: string
  custom_llm_provider: string
  /** The deployment's API base, null for the provider's default. */
  api_base?: string | null
  /** Response headers of the call (LiteLLM's `additional_headers`): rate-limit remaining, key spend, call headers. */
  additional_headers?: Record<string, string>
}

export function hideParams(body: object, params: HiddenParams): void {
  Object.defineProperty(body, '_hidden_params', { value: params, enumerable: false, configurable: true })
}

export function completion(params: CompletionParams & { stream: true }): Promise<AsyncIterable<ChatChunk>>
export function completion(params: CompletionParams & { stream?: false | null }): Promise<ChatCompletion>
export function completion(params: CompletionParams): Promise<ChatCompletion | AsyncIterable<ChatChunk>>
export async function completion(params: CompletionParams): Promise<ChatCompletion | AsyncIterable<ChatChunk>> {
  const { result } = await run('chat', params)
  if (result.kind === 'stream') return result.chunks as AsyncIterable<ChatChunk>
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'completion() got a binary reply')
  return result.body as ChatCompletion
}

/** Legacy text completion (`/v1/completions`). */
export async function textCompletion(params: Record<string, unknown> & { model: string; prompt: unknown } & CallOptions): Promise<TextCompletion | AsyncIterable<TextCompletion>> {
  const { result } = await run('completions', params)
  if (result.kind === 'stream') return result.chunks as AsyncIterable<TextCompletion>
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'textCompletion() got a binary reply')
  return result.body as TextCompletion
}

/** Floats unless `encoding_format: 'base64'` was asked for; the result type says which. */
export function embedding(params: EmbeddingParams & { encoding_format: 'base64' }): Promise<EmbeddingResponse<string>>
export function embedding(params: EmbeddingParams & { encoding_format?: 'float' }): Promise<EmbeddingResponse<number[]>>
export function embedding(params: EmbeddingParams): Promise<EmbeddingResponse>
export async function embedding(params: EmbeddingParams): Promise<EmbeddingResponse> {
  const { result } = await run('embeddings', params)
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'embedding() got a stream')
  // Base64 when asked for: the in-process entry encodes it as the proxy does.
  return result.body as EmbeddingResponse
}

