/**
 * `Router`: LiteLLM's `litellm.Router` in process. It takes the proxy config's `model_list` (snake_case as in
 * config.yaml, or camelCase) and the router settings, and runs each call through the SAME plugins and provider
 * adapters as the proxy: a gateway built from that config (createGateway), called through its in-process entry
 * (core/invoke.ts). Routing strategy, pre-call checks, retries, cooldowns, fallbacks, the priority queue, rate
 * limits, logging sinks and, when a store is given, virtual keys' budgets and spend rows are the proxy's own code.
 *
 *   const router = new Router({
 *     modelList: [
 *       { model_name: 'gpt', litellm_params: { model: 'openai/gpt-4o-mini', rpm: 600 } },
 *       { model_name: 'gpt', litellm_params: { model: 'azure/gpt-4o-mini', api_base, api_key, api_version } },
 *     ],
 *     numRetries: 2, fallbacks: [{ gpt: ['claude'] }], cooldownTime: 30,
 *   })
 *   const r = await router.completion({ model: 'gpt', messages, priority: 0 })
 *   await router.close()
 *
 * Constructing a Router checks the config and starts nothing (no socket, timer or file): the engine boots on the
 * first call. `close()` lets calls in flight finish, then stops the plugins (stores flushed, Redis closed).
 */
import { createGateway, type Gateway } from './gateway.js'
import { buildConfig, type Config, type RawConfig } from './config/load.js'
import type { GatewayPlugin } from './plugin.js'
import { gatewayError } from './errors.js'
import type { Logger } from './logger.js'
import type { Operation, ChatChunk, ChatCompletion, EmbeddingResponse, TextCompletion, ImagesResponse, ModerationResponse, TranscriptionResponse } from './openai/types.js'
import { callbacksPlugin, type CallEvent } from './sdk-callbacks.js'
import { asInputError, checkCallOptions, invokeOn, snakeCase, type CompletionParams, type EmbeddingParams, type Runner } from './sdk.js'
import { mediaFunctions, type ImageGenerationParams, type ModerationParams, type SpeechParams, type TranscriptionParams } from './sdk-media.js'
import { formatFunctions, type AnthropicMessagesParams, type AnthropicMessage, type AnthropicStreamEvent, type ResponseObject, type ResponsesParams, type ResponseStreamEvent } from './sdk-formats.js'
import type { Dispatcher } from 'undici'
import type { ProviderAdapter } from '../providers/types.js'

/** One deployment of the model list, as in config.yaml (`model_name`, `litellm_params`, `model_info`) or camelCase. */
export type RouterDeployment = Record<string, unknown>

export interface RouterOptions {
  /** The deployments: LiteLLM's model_list. */
  modelList?: RouterDeployment[]
  model_list?: RouterDeployment[]
  /** simple-shuffle (default), least-busy, usage-based-routing-v2, latency-based-routing, cost-based-routing. */
  routingStrategy?: string
  routingStrategyArgs?: Record<string, unknown>
  numRetries?: number
  retryPolicy?: Record<string, number>
  modelGroupRetryPolicy?: Record<string, Record<string, number>>
  allowedFails?: number
  allowedFailsPolicy?: Record<string, number>
  /** Seconds a failing deployment is skipped. */
  cooldownTime?: number
  disableCooldowns?: boolean
  fallbacks?: Array<Record<string, string[]>>
  defaultFallbacks?: string[]
  contextWindowFallbacks?: Array<Record<string, string[]>>
  contentPolicyFallbacks?: Array<Record<string, string[]>>
  maxFallbacks?: number
  /** Seconds, per call (a call's own `timeout` wins). */
  timeout?: number
  streamTimeout?: number
  enablePreCallChecks?: boolean
  modelGroupAlias?: Record<string, string | { model: string; hidden?: boolean }>
  /** Calls in flight per deployment that sets no max_parallel_requests (the priority queue's capacity). */
  defaultMaxParallelRequests?: number
  /** Priority of a call that names none; unset: such calls are not queued (429 at once at capacity). */
  defaultPriority?: number
  /** Level name -> share of capacity held for it under saturation (LiteLLM's priority_reservation). */
  priorityReservation?: Record<string, number>
  /** Shared state for several processes: rate-limit windows, the queue, cooldowns, budgets (ioredis options). */
  redis?: { url?: string; host?: string; port?: number; password?: string }
  /** PostgreSQL (LiteLLM's database_url): virtual keys, budgets and spend rows, shared with a proxy on the same database. */
  databaseUrl?: string
  /** Embedded SQLite file for the same; better-sqlite3 loads only then. */
  sqlitePath?: string
  /**
   * LiteLLM's master_key: with it, only known virtual keys (call option `virtualKey`) or the master key are let in,
   * and a call with no `virtualKey` runs as the master key. Without it an unknown key runs unauthenticated, as on a
   * proxy without a master key.
   */
  masterKey?: string
  /** The proxy's logging sinks by LiteLLM's callback names: langfuse, helicone, mlflow, otel, prometheus is not one. */
  callbacks?: string[]
  successCallback?: string[]
  failureCallback?: string[]
  /** Sink credentials (LANGFUSE_PUBLIC_KEY, ...), as config.yaml's environment_variables; default: process.env. */
  environment?: Record<string, string>
  turnOffMessageLogging?: boolean
  dropParams?: boolean
  /** Called when a call has succeeded (a stream: once read to the end). A throw is logged and ignored. */
  onSuccess?: (event: CallEvent) => void | Promise<void>
  /** Called when a call has failed (after its retries and fallbacks). */
  onFailure?: (event: CallEvent) => void | Promise<void>
  /** In-house plugins, and their place: `pipeline` / `upstream` as in config.yaml (default: the proxy's chains). */
  plugins?: readonly GatewayPlugin<any>[]
  pipeline?: RawConfig['pipeline']
  upstream?: RawConfig['upstream']
  /** Extra provider adapters. */
  providers?: readonly ProviderAdapter[]
  logger?: Logger
  /** 'warn' by default: a library should be quiet. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent'
  dispatcher?: Dispatcher
  env?: Record<string, string | undefined>
  /** Any other LiteLLM section as in config.yaml (router_settings, litellm_settings, general_settings, mcp_servers). */
  [litellmKey: string]: unknown
}

/** Per-call options a Router takes beside the operation's params. */
export interface RouterCallOptions {
  /** Lower = more important; queued by it when the model group is at capacity. */
  priority?: number
  /** A virtual key (from a store shared with the proxy): its budgets, limits and spend apply. */
  virtualKey?: string
  /** Request headers as a proxy client would send them (`x-litellm-*`). */
  headers?: Record<string, string>
  signal?: AbortSignal
  timeout?: number
  numRetries?: number
  num_retries?: number
  fallbacks?: Array<string | { model: string }>
  mockResponse?: string
  mock_response?: string
  metadata?: Record<string, unknown>
}

type Params<T> = Omit<T, 'api_key' | 'api_base' | 'apiKey' | 'apiBase'> & RouterCallOptions

/** Router option -> where it goes in a LiteLLM config. */
const ROUTER_SETTINGS = new Set(['routing_strategy', 'routing_strategy_args', 'num_retries', 'retry_policy',
  'model_group_retry_policy', 'allowed_fails', 'allowed_fails_policy', 'cooldown_time', 'disable_cooldowns', 'fallbacks',
  'default_fallbacks', 'context_window_fallbacks', 'content_policy_fallbacks', 'max_fallbacks', 'timeout',
  'stream_timeout', 'enable_pre_call_checks', 'model_group_alias', 'default_max_parallel_requests', 'default_priority'])
const LITELLM_SETTINGS = new Set(['callbacks', 'success_callback', 'failure_callback', 'turn_off_message_logging',
  'priority_reservation', 'drop_params'])
/** Options read here, not config. */
const OWN = new Set(['model_list', 'master_key', 'redis', 'database_url', 'sqlite_path', 'environment', 'on_success', 'on_failure',
  'plugins', 'pipeline', 'upstream', 'providers', 'logger', 'log_level', 'dispatcher', 'env'])
const LITELLM_SECTIONS = new Set(['router_settings', 'litellm_settings', 'general_settings', 'mcp_servers', 'mcp_aliases', 'server', 'settings'])

const camelToSnake = (k: string): string => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())

function snakeKeys(o: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (!o || typeof o !== 'object' || Array.isArray(o)) return out
  for (const [k, v] of Object.entries(o)) out[camelToSnake(k)] = v
  return out
}

/** A model_list entry in config.yaml's shape: camelCase keys of the entry, its litellm_params and model_info. */
function deploymentEntry(d: RouterDeployment, i: number): Record<string, unknown> {
  if (!d || typeof d !== 'object' || Array.isArray(d)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `Router: modelList[${i}] must be an object with model_name and litellm_params.`)
  }
  const e = snakeKeys(d)
  if (e.litellm_params !== undefined) e.litellm_params = snakeKeys(e.litellm_params)
  if (e.model_info !== undefined) e.model_info = snakeKeys(e.model_info)
  return e
}

/** The pipeline a Router runs: the proxy's default chain, less what needs HTTP or a store it was not given. */
function routerPipeline(store: string | null, redis: boolean, logging: boolean, callbacks: boolean): string[] {
  return [
    ...(callbacks ? ['sdk-callbacks'] : []),
    ...(store ? [store] : []),
    ...(redis ? ['state-redis'] : []),
    ...(logging ? ['logging'] : []),
    'auth',
    ...(store ? ['spend'] : []),
    'rate-limit', 'priority-queue',
    ...(store ? ['budget'] : []),
    'router',
  ]
}

/** Router options -> a LiteLLM config (the same mapping config.yaml goes through) with the Router's chains. */
export function routerConfig(o: RouterOptions): { raw: RawConfig; callbacks: boolean } {
  if (!o || typeof o !== 'object') throw gatewayError('GW_ERR_CONFIG_INVALID', 'Router: expected an options object.')
  const opts = snakeKeys(o)
  const list = opts.model_list
  if (!Array.isArray(list) || list.length === 0) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', 'Router: modelList (model_list) must be a non-empty array of deployments.')
  }
  const routerSettings: Record<string, unknown> = { ...snakeKeys(opts.router_settings) }
  const litellmSettings: Record<string, unknown> = { ...snakeKeys(opts.litellm_settings) }
  const generalSettings: Record<string, unknown> = { ...snakeKeys(opts.general_settings) }
  const raw: RawConfig = {}
  for (const [k, v] of Object.entries(opts)) {
    if (v === undefined) continue
    if (ROUTER_SETTINGS.has(k)) routerSettings[k] = v
    else if (LITELLM_SETTINGS.has(k)) litellmSettings[k] = v
    else if (LITELLM_SECTIONS.has(k)) {
      if (k !== 'router_settings' && k !== 'litellm_settings' && k !== 'general_settings') raw[k] = v
    } else if (!OWN.has(k)) {
      throw gatewayError('GW_ERR_CONFIG_INVALID', `Router: unknown option '${k}'.`)
    }
  }
  const redis = opts.redis as RouterOptions['redis']
  if (redis) {
    if (redis.url) routerSettings.redis_url = redis.url
    if (redis.host) routerSettings.redis_host = redis.host
    if (redis.port !== undefined) routerSettings.redis_port = redis.port
    if (redis.password) routerSettings.redis_password = redis.password
  }
  const hasRedis = routerSettings.redis_url !== undefined || routerSettings.redis_host !== undefined
  if (typeof opts.database_url === 'string') generalSettings.database_url = opts.database_url
  if (typeof opts.master_key === 'string') generalSettings.master_key = opts.master_key
  const store = typeof generalSettings.database_url === 'string' ? 'store-postgres' : typeof opts.sqlite_path === 'string' ? 'store-sqlite' : null
  raw.model_list = list.map((d, i) => deploymentEntry(d as RouterDeployment, i))
  raw.router_settings = routerSettings
  raw.litellm_settings = litellmSettings
  if (Object.keys(generalSettings).length) raw.general_settings = generalSettings
  if (opts.environment && typeof opts.environment === 'object') raw.environment_variables = opts.environment
  const logging = ['callbacks', 'success_callback', 'failure_callback'].some((k) => Array.isArray(litellmSettings[k]) && (litellmSettings[k] as unknown[]).length > 0)
  const callbacks = typeof opts.on_success === 'function' || typeof opts.on_failure === 'function'
  let pipeline = (opts.pipeline as unknown[] | undefined) ?? routerPipeline(store, hasRedis, logging, callbacks)
  if (store === 'store-sqlite') pipeline = pipeline.map((p) => (p === 'store-sqlite' ? { 'store-sqlite': { path: opts.sqlite_path } } : p))
  raw.pipeline = pipeline as RawConfig['pipeline']
  if (opts.upstream !== undefined) raw.upstream = opts.upstream as RawConfig['upstream']
  raw.server = { log_level: (opts.log_level as string | undefined) ?? 'warn', ...snakeKeys(raw.server) }
  return { raw, callbacks }
}

/** Router per-call options -> the request body and the invoke options (the rest of the params is the body). */
function routerCall(op: Operation, params: unknown, masterKey: string | undefined): { request: Record<string, unknown>; signal?: AbortSignal; headers?: Record<string, string> } {
  try {
    if (params === null || typeof params !== 'object' || Array.isArray(params)) {
      throw gatewayError('GW_ERR_VALIDATION', `Router: a call takes one object of parameters, got ${params === null ? 'null' : typeof params}.`)
    }
    const { signal, virtualKey, headers, ...rest } = snakeCase(params as Record<string, unknown>) as Record<string, unknown> & RouterCallOptions
    checkCallOptions({ signal })
    let h: Record<string, string> | undefined
    if (headers !== undefined) {
      if (!headers || typeof headers !== 'object') throw gatewayError('GW_ERR_VALIDATION', "Invalid 'headers': expected an object of strings.", { param: 'headers' })
      h = { ...headers }
    }
    if (virtualKey !== undefined) {
      if (typeof virtualKey !== 'string' || virtualKey === '') throw gatewayError('GW_ERR_VALIDATION', "Invalid 'virtualKey': expected a key string.", { param: 'virtualKey' })
      h = { ...h, authorization: `Bearer ${virtualKey}` }
    }
    if (masterKey !== undefined && h?.authorization === undefined) h = { ...h, authorization: `Bearer ${masterKey}` }
    return { request: rest, signal, headers: h }
  } catch (err) {
    throw asInputError(err, op)
  }
}

export class Router {
  /** The gateway config the options became (plugins, their options, the model table's entries). */
  readonly config: Config
  readonly #options: RouterOptions
  #engine: Promise<Gateway> | null = null
  #gateway: Gateway | null = null
  #closed = false
  readonly #run: Runner
  readonly #media: ReturnType<typeof mediaFunctions>
  readonly #formats: ReturnType<typeof formatFunctions>
  readonly #plugins: GatewayPlugin<any>[]

  constructor(options: RouterOptions) {
    const { raw, callbacks } = routerConfig(options)
    this.#options = options
    // Checked now, as LiteLLM's Router raises on a bad model list; nothing starts until the first call.
    this.config = buildConfig(raw, { env: options.env ?? process.env })
    this.#plugins = [...(options.plugins ?? []), ...(callbacks ? [callbacksPlugin(options, () => this.#gateway?.container.cradle.logger)] : [])]
    const masterKey = (options.masterKey ?? (options.master_key as string | undefined) ?? (options.general_settings as { master_key?: string } | undefined)?.master_key)
    this.#run = async (op, params) => {
      const { request, signal, headers } = routerCall(op, params, masterKey)
      const gw = await this.#start()
      const { result, hidden } = await invokeOn(gw, op, request, { signal, headers })
      return { result, request, hidden }
    }
    this.#media = mediaFunctions(this.#run)
    this.#formats = formatFunctions((p) => this.completion(p as Params<CompletionParams>))
  }

  #start(): Promise<Gateway> {
    if (this.#closed) return Promise.reject(gatewayError('GW_ERR_SHUTTING_DOWN', 'This Router is closed.'))
    this.#engine ??= (async () => {
      const o = this.#options
      const gw = await createGateway({
        config: this.config, plugins: this.#plugins, providers: o.providers, logger: o.logger, dispatcher: o.dispatcher, env: o.env,
      })
      await gw.start()
      this.#gateway = gw
      return gw
    })().catch((err) => {
      this.#engine = null
      throw err
    })
    return this.#engine
  }

  /** The model group names of the model list (LiteLLM's Router.model_names). */
  get modelNames(): string[] {
    return [...new Set(this.config.model_list.map((m) => m.model_name))]
  }

  completion(params: Params<CompletionParams> & { stream: true }): Promise<AsyncIterable<ChatChunk>>
  completion(params: Params<CompletionParams> & { stream?: false | null }): Promise<ChatCompletion>
  completion(params: Params<CompletionParams>): Promise<ChatCompletion | AsyncIterable<ChatChunk>>
  async completion(params: Params<CompletionParams>): Promise<ChatCompletion | AsyncIterable<ChatChunk>> {
    const { result } = await this.#run('chat', params)
    if (result.kind === 'stream') return result.chunks as AsyncIterable<ChatChunk>
    if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'completion() got a binary reply')
    return result.body as ChatCompletion
  }

  /** LiteLLM's Router.acompletion: the same call (every call here is async). */
  acompletion = this.completion.bind(this) as Router['completion']

  async textCompletion(params: Params<Record<string, unknown> & { model: string; prompt: unknown }>): Promise<TextCompletion | AsyncIterable<TextCompletion>> {
    const { result } = await this.#run('completions', params)
    if (result.kind === 'stream') return result.chunks as AsyncIterable<TextCompletion>
    if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'textCompletion() got a binary reply')
    return result.body as TextCompletion
  }

  async embedding(params: Params<EmbeddingParams>): Promise<EmbeddingResponse> {
    const { result } = await this.#run('embeddings', params)
    if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'embedding() got a stream')
    return result.body as EmbeddingResponse
  }

  imageGeneration(params: Params<ImageGenerationParams>): Promise<ImagesResponse> {
    return this.#media.imageGeneration(params as ImageGenerationParams)
  }

  transcription(params: Params<TranscriptionParams>): Promise<TranscriptionResponse | string> {
    return this.#media.transcription(params as TranscriptionParams)
  }

  speech(params: Params<SpeechParams>): Promise<Response> {
    return this.#media.speech(params as SpeechParams)
  }

  moderation(params: Params<ModerationParams>): Promise<ModerationResponse> {
    return this.#media.moderation(params as ModerationParams)
  }

  responses(params: Params<ResponsesParams> & { stream: true }): Promise<AsyncIterable<ResponseStreamEvent>>
  responses(params: Params<ResponsesParams> & { stream?: false | null }): Promise<ResponseObject>
  responses(params: Params<ResponsesParams>): Promise<ResponseObject | AsyncIterable<ResponseStreamEvent>>
  responses(params: Params<ResponsesParams>): Promise<ResponseObject | AsyncIterable<ResponseStreamEvent>> {
    return this.#formats.responses(params as ResponsesParams)
  }

  anthropicMessages(params: Params<AnthropicMessagesParams> & { stream: true }): Promise<AsyncIterable<AnthropicStreamEvent>>
  anthropicMessages(params: Params<AnthropicMessagesParams> & { stream?: false | null }): Promise<AnthropicMessage>
  anthropicMessages(params: Params<AnthropicMessagesParams>): Promise<AnthropicMessage | AsyncIterable<AnthropicStreamEvent>>
  anthropicMessages(params: Params<AnthropicMessagesParams>): Promise<AnthropicMessage | AsyncIterable<AnthropicStreamEvent>> {
    return this.#formats.anthropicMessages(params as AnthropicMessagesParams)
  }

  /** The running gateway (booted on first use): its container, plugins and config, for inspection. */
  gateway(): Promise<Gateway> {
    return this.#start()
  }

  /** Let calls in flight finish (up to server.shutdown_timeout), then stop the plugins. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    const engine = this.#engine
    if (!engine) return
    const gw = await engine.catch(() => null)
    if (gw) await gw.stop()
  }
}
