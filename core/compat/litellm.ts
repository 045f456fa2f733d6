/**
 * LiteLLM config compatibility: a LiteLLM proxy `config.yaml` loads unchanged. Its sections map onto Switchyard's
 * shape here, in one place:
 *
 *   general_settings.master_key            -> auth plugin option master_key (else $LITELLM_MASTER_KEY)
 *   general_settings.max_request_size_mb   -> server.body_limit
 *   general_settings.strict_config         -> strict mode (ignored keys refuse to boot)
 *   litellm_settings.drop_params           -> settings.drop_params
 *   litellm_settings.request_timeout       -> settings.request_timeout (seconds)
 *   litellm_settings.num_retries,
 *   router_settings.num_retries            -> retry plugin option num_retries
 *   router_settings.routing_strategy(_args), enable_pre_call_checks -> router plugin options of the same names
 *   router_settings.timeout/stream_timeout -> settings.request_timeout / settings.stream_timeout
 *   router_settings.model_group_alias      -> settings.model_group_alias
 *   litellm_settings.set_verbose           -> server.log_level: debug
 *   model_list[].tpm/rpm, litellm_params.base_url/num_retries -> litellm_params.tpm/rpm/api_base/max_retries
 *
 * Every key this version does not act on is collected and reported in one boot warning, never dropped silently (in
 * strict mode that warning is a boot error). A top-level key that reads as a typo of a known one is a boot error
 * with a suggestion: a misspelt `pipline:` would otherwise run the default chain without anyone noticing.
 * A config with no `pipeline:` gets the default chain (request-id, auth, router; retry on the attempt chain).
 *
 * The key lists below are exported so test/readme-config.test.ts can hold the README's tables to them.
 */
import type { RawConfig } from '../config/load.js'
import { gatewayError } from '../errors.js'

/**
 * The request chain a config gets when it names none: a store (embedded SQLite, or PostgreSQL when a database_url
 * is set), Redis for shared counters when one is configured, then auth, the management API, spend logs (first, so a
 * call refused for rate or budget is logged too), rate limits, the priority queue (before budgets: a waiting call
 * holds no money), budgets, the MCP gateway (its servers come from `mcp_servers` or /v1/mcp/server) and the router.
 */
export function defaultPipeline(store: 'store-sqlite' | 'store-postgres', redis: boolean): string[] {
  return ['request-id', store, ...(redis ? ['state-redis'] : []), 'auth', 'keys', 'ui', 'spend', 'rate-limit', 'priority-queue', 'budget', 'mcp', 'router']
}
/** The attempt chain a config gets when it names none: fallback groups outermost, cooldowns, then retries. */
export const DEFAULT_UPSTREAM = ['fallback', 'cooldown', 'retry'] as const

/** Switchyard's own top-level keys. */
export const NATIVE_TOP_LEVEL: ReadonlySet<string> = new Set(['server', 'pipeline', 'upstream', 'plugins', 'model_list', 'settings'])

/** OpenAI request params a deployment may set as defaults (LiteLLM passes them into every call). */
export const REQUEST_DEFAULT_KEYS: ReadonlySet<string> = new Set([
  'temperature', 'top_p', 'n', 'max_tokens', 'max_completion_tokens', 'stop', 'presence_penalty',
  'frequency_penalty', 'seed', 'user', 'response_format', 'tool_choice', 'parallel_tool_calls', 'logprobs',
  'top_logprobs', 'logit_bias', 'reasoning_effort', 'service_tier', 'dimensions', 'encoding_format',
])

/**
 * Cooldown, fallback and retry-policy keys, read from router_settings first, then litellm_settings (LiteLLM takes
 * them in both): key -> [plugin, option].
 */
const RELIABILITY: Readonly<Record<string, readonly [plugin: string, option: string]>> = {
  allowed_fails: ['cooldown', 'allowed_fails'],
  cooldown_time: ['cooldown', 'cooldown_time'],
  allowed_fails_policy: ['cooldown', 'allowed_fails_policy'],
  disable_cooldowns: ['cooldown', 'disabled'],
  fallbacks: ['fallback', 'fallbacks'],
  default_fallbacks: ['fallback', 'default_fallbacks'],
  context_window_fallbacks: ['fallback', 'context_window_fallbacks'],
  content_policy_fallbacks: ['fallback', 'content_policy_fallbacks'],
  max_fallbacks: ['fallback', 'max_fallbacks'],
  retry_policy: ['retry', 'retry_policy'],
  model_group_retry_policy: ['retry', 'model_group_retry_policy'],
}
const RELIABILITY_KEYS = Object.keys(RELIABILITY)

/**
 * Provider settings in litellm_params read by the native adapters (Target.params), LiteLLM's names: AWS for
 * bedrock, Vertex AI's project/location/credentials, Azure's Entra ID token or client credentials.
 */
export const PROVIDER_PARAMS: readonly string[] = [
  'aws_access_key_id', 'aws_secret_access_key', 'aws_session_token', 'aws_region_name', 'aws_bedrock_runtime_endpoint',
  'vertex_project', 'vertex_location', 'vertex_credentials', 'azure_ad_token', 'tenant_id', 'client_id', 'client_secret',
  'azure_scope', 'model_id', 'guardrailConfig', 'performanceConfig', 'requestMetadata', 'aws_role_name', 'aws_profile_name',
  'aws_web_identity_token',
  // Ollama: keep_alive and the model options it takes in `options`; Mistral: safe_prompt, prompt_mode, random_seed.
  'keep_alive', 'num_keep', 'num_predict', 'draft_num_predict', 'top_k', 'min_p', 'typical_p', 'repeat_last_n',
  'repeat_penalty', 'penalize_newline', 'numa', 'num_ctx', 'num_batch', 'num_gpu', 'main_gpu', 'use_mmap', 'num_thread',
  'mirostat', 'mirostat_eta', 'mirostat_tau', 'tfs_z', 'num_gqa', 'safe_prompt', 'prompt_mode', 'random_seed',
]

/** Prices of images, audio and speech a deployment may set (litellm_params or model_info), LiteLLM's names. */
export const MEDIA_PRICE_KEYS: readonly string[] = [
  'input_cost_per_second', 'output_cost_per_second', 'input_cost_per_character', 'input_cost_per_image',
  'output_cost_per_image', 'input_cost_per_pixel', 'output_cost_per_pixel', 'input_cost_per_audio_token',
  'output_cost_per_audio_token', 'input_cost_per_image_token', 'output_cost_per_image_token',
]

/** LiteLLM keys acted on, per section (`top` = top level; `model_list[]` = beside litellm_params in an entry). */
export const LITELLM_ACTED_ON = {
  top: new Set(['model_list', 'litellm_settings', 'general_settings', 'router_settings', 'environment_variables', 'include',
    'mcp_servers', 'mcp_aliases']),
  general_settings: new Set(['master_key', 'max_request_size_mb', 'strict_config', 'database_url',
    'database_connection_pool_limit', 'store_model_in_db', 'budget_mode', 'max_parallel_requests', 'global_max_parallel_requests',
    'store_prompts_in_spend_logs']),
  litellm_settings: new Set(['drop_params', 'request_timeout', 'num_retries', 'set_verbose', 'json_logs', 'max_end_user_budget',
    'priority_reservation', 'priority_reservation_settings', 'default_priority', 'callbacks', 'success_callback',
    'failure_callback', 'turn_off_message_logging', 'require_auth_for_metrics_endpoint', 'mcp_aliases', ...RELIABILITY_KEYS]),
  router_settings: new Set(['routing_strategy', 'num_retries', 'timeout', 'stream_timeout', 'redis_host', 'redis_port',
    'redis_password', 'redis_url', 'model_group_alias', 'routing_strategy_args', 'enable_pre_call_checks', 'default_priority',
    'polling_interval', 'default_max_parallel_requests', ...RELIABILITY_KEYS]),
  'model_list[]': new Set(['model_name', 'litellm_params', 'model_info', 'tpm', 'rpm']),
  /** See providers/types.ts Target; REQUEST_DEFAULT_KEYS are acted on too (listed in the README beside these). */
  litellm_params: new Set([
    'model', 'api_base', 'base_url', 'api_key', 'api_version', 'organization', 'custom_llm_provider', 'rpm', 'tpm',
    'weight', 'order', 'timeout', 'stream_timeout', 'max_retries', 'num_retries', 'input_cost_per_token',
    'output_cost_per_token', 'mock_response', 'drop_params', 'additional_drop_params', 'extra_headers', 'max_parallel_requests',
    ...MEDIA_PRICE_KEYS, ...PROVIDER_PARAMS,
  ]),
  /** `mode` picks the call /health makes (chat, completion, embedding) and shows in /model_group/info. */
  model_info: new Set(['id', 'owned_by', 'input_cost_per_token', 'output_cost_per_token', 'mode', ...MEDIA_PRICE_KEYS]),
} as const satisfies Record<string, ReadonlySet<string>>

/**
 * Top-level LiteLLM sections this version does not act on: accepted, named in the one boot warning. Keys not acted
 * on inside the LiteLLM sections (litellm_settings.success_callback, model_info.mode, ...) are warned about the same
 * way; they are an open set, so they are not listed.
 */
export const LITELLM_KNOWN_IGNORED: ReadonlySet<string> = new Set([
  'callback_settings', 'guardrails', 'credential_list', 'vector_store_registry',
  'files_settings', 'finetune_settings', 'assistant_settings', 'search_tools', 'prompts',
])

/** Keys that stop the boot (GW_ERR_CONFIG_INVALID / GW_ERR_CONFIG_READ), and when. */
export const LITELLM_REFUSE_TO_BOOT: Readonly<Record<string, string>> = {
  'general_settings.master_key': 'empty, or a reference to an environment variable that is not set (auth would silently be off)',
  'general_settings.max_request_size_mb': 'not a positive number',
  'general_settings.strict_config': 'true, and the config has keys this version ignores (they are listed)',
  include: 'a file that is missing, unreadable, not a YAML mapping, or that includes itself',
  'model_list[].litellm_params.custom_llm_provider': 'a provider nobody knows',
  '(a misspelt top-level key)': 'within a few edits of a Switchyard or LiteLLM section (`pipline`); the error names the key meant',
}

/** Routing strategies the router plugin implements; others fall back to simple-shuffle with a warning. */
const STRATEGIES = new Set(['simple-shuffle', 'least-busy', 'usage-based-routing-v2', 'latency-based-routing', 'cost-based-routing'])
/** LiteLLM's older names for a strategy the router implements under its current name. */
const STRATEGY_ALIASES: Record<string, string> = { 'usage-based-routing': 'usage-based-routing-v2' }
/** routing_strategy_args the router acts on; others are reported as ignored. */
const STRATEGY_ARGS = new Set(['lowest_latency_buffer', 'ttl', 'max_latency_list_size'])

/** Deployment credentials that must not fall back to a provider's env vars or public endpoint when they do not resolve. */
const CREDENTIAL_KEYS = ['api_base', 'base_url', 'api_key'] as const

export interface MapContext {
  env: Record<string, string | undefined>
  /** Values that referenced an environment variable that is not set: dotted path -> variable names. */
  unset: ReadonlyMap<string, readonly string[]>
  /** Ignored keys refuse to boot (the CLI's --strict); `general_settings.strict_config: true` does the same. */
  strict?: boolean
}

export interface LiteLLMMapping {
  config: RawConfig
  /** Plugin options derived from LiteLLM sections; explicit options in `pipeline:` win over these. */
  pluginDefaults: Record<string, Record<string, unknown>>
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
}

export function mapLiteLLM(input: RawConfig, warnings: string[], ctx: MapContext): LiteLLMMapping {
  const env = ctx.env
  const ignored: string[] = []
  const pluginDefaults: Record<string, Record<string, unknown>> = {}
  const set = (plugin: string, key: string, value: unknown) => {
    if (value === undefined || value === null) return
    ;(pluginDefaults[plugin] ??= {})[key] = value
  }
  const config: RawConfig = { ...input }
  checkTopLevel(Object.keys(input), ignored)

  const general = obj(input.general_settings)
  const litellm = obj(input.litellm_settings)
  const router = obj(input.router_settings)
  collectIgnored('general_settings', general, LITELLM_ACTED_ON.general_settings, ignored)
  collectIgnored('litellm_settings', litellm, LITELLM_ACTED_ON.litellm_settings, ignored)
  collectIgnored('router_settings', router, LITELLM_ACTED_ON.router_settings, ignored)

  refuseEmptyMasterKey(input, ctx.unset)
  // LiteLLM also takes the master key from LITELLM_MASTER_KEY when the config has none.
  set('auth', 'master_key', general.master_key ?? (env.LITELLM_MASTER_KEY || undefined))
  set('retry', 'num_retries', router.num_retries ?? litellm.num_retries)
  for (const [key, [plugin, option]] of Object.entries(RELIABILITY)) {
    if (key === 'disable_cooldowns') continue
    set(plugin, option, router[key] ?? litellm[key])
  }
  // LiteLLM cools by failure count only once allowed_fails is set explicitly (no instant cooldown on 429/401/404).
  if ((router.allowed_fails ?? litellm.allowed_fails) !== undefined) set('cooldown', 'cool_at_once', [])
  const noCooldowns = (router.disable_cooldowns ?? litellm.disable_cooldowns) === true
  // Per deployment without its own (LiteLLM: general_settings.max_parallel_requests, the Router's
  // default_max_parallel_requests): the queue's capacity. The gateway-wide cap is the rate limiter's.
  set('priority-queue', 'deployment_max_parallel_requests', general.max_parallel_requests ?? router.default_max_parallel_requests)
  set('rate-limit', 'global_max_parallel_requests', general.global_max_parallel_requests)
  set('priority-queue', 'priority_reservation', litellm.priority_reservation)
  set('priority-queue', 'default_priority', router.default_priority ?? litellm.default_priority)
  // router_settings.polling_interval (LiteLLM's scheduler polls its queue) needs nothing: admission here is event-driven.
  set('priority-queue', 'saturation_threshold', obj(litellm.priority_reservation_settings).saturation_threshold)
  const strategy = router.routing_strategy
  if (typeof strategy === 'string') {
    const known = STRATEGY_ALIASES[strategy] ?? strategy
    if (STRATEGIES.has(known)) set('router', 'routing_strategy', known)
    else ignored.push(`router_settings.routing_strategy=${strategy} (using simple-shuffle)`)
    if (known !== strategy && STRATEGIES.has(known)) warnings.push(`router_settings.routing_strategy=${strategy} is served as ${known}`)
  }
  const strategyArgs = obj(router.routing_strategy_args)
  const args: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(strategyArgs)) {
    if (STRATEGY_ARGS.has(k)) args[k] = v
    else ignored.push(`router_settings.routing_strategy_args.${k}`)
  }
  if (Object.keys(args).length) set('router', 'routing_strategy_args', args)
  set('router', 'enable_pre_call_checks', router.enable_pre_call_checks)

  const settings = { ...obj(input.settings) }
  if (litellm.drop_params !== undefined && settings.drop_params === undefined) settings.drop_params = litellm.drop_params
  const timeout = litellm.request_timeout ?? router.timeout
  if (timeout !== undefined && settings.request_timeout === undefined) settings.request_timeout = timeout
  if (router.stream_timeout !== undefined && settings.stream_timeout === undefined) settings.stream_timeout = router.stream_timeout
  if (router.model_group_alias !== undefined && settings.model_group_alias === undefined) settings.model_group_alias = router.model_group_alias
  config.settings = settings
  const server = { ...obj(input.server) }
  if ((litellm.set_verbose === true || litellm.set_verbose === 'True') && !server.log_level) server.log_level = 'debug'
  const maxMb = general.max_request_size_mb
  if (maxMb !== undefined && server.body_limit === undefined) server.body_limit = megabytes(maxMb)
  if (input.server !== undefined || Object.keys(server).length) config.server = server

  if (Array.isArray(input.model_list)) {
    config.model_list = input.model_list.map((entry, i) => mapEntry(entry, i, ctx.unset, ignored, warnings))
  }

  // Stores and budgets. LiteLLM reads the database from general_settings.database_url or $DATABASE_URL.
  const databaseUrl = general.database_url ?? (env.DATABASE_URL || undefined)
  set('store-postgres', 'database_url', databaseUrl)
  set('store-postgres', 'connection_limit', general.database_connection_pool_limit)
  if (env.SWITCHYARD_DATA_DIR) set('store-sqlite', 'path', `${env.SWITCHYARD_DATA_DIR.replace(/\/$/, '')}/switchyard.db`)
  // LiteLLM also reads STORE_MODEL_IN_DB from the environment ('True' / 'true').
  set('keys', 'store_model_in_db', general.store_model_in_db ?? (/^true$/i.test(env.STORE_MODEL_IN_DB ?? '') ? true : undefined))
  set('budget', 'mode', general.budget_mode)
  set('spend', 'store_prompts', general.store_prompts_in_spend_logs)
  set('budget', 'max_end_user_budget', litellm.max_end_user_budget)
  set('state-redis', 'url', router.redis_url)
  set('state-redis', 'host', router.redis_host)
  set('state-redis', 'port', router.redis_port)
  set('state-redis', 'password', router.redis_password)
  const redis = router.redis_url !== undefined || router.redis_host !== undefined

  const logging = mapCallbacks(litellm, ignored)
  set('logging', 'sinks', logging.sinks.length ? logging.sinks : undefined)
  set('logging', 'success_only', logging.successOnly.length ? logging.successOnly : undefined)
  set('logging', 'failure_only', logging.failureOnly.length ? logging.failureOnly : undefined)
  set('logging', 'turn_off_message_logging', litellm.turn_off_message_logging)
  // LiteLLM users put sink credentials in `environment_variables:` (LANGFUSE_PUBLIC_KEY, ...), which LiteLLM exports.
  const envSection = obj(input.environment_variables)
  if (logging.any && Object.keys(envSection).length) {
    set('logging', 'environment', Object.fromEntries(Object.entries(envSection).filter(([, v]) => v != null).map(([k, v]) => [k, String(v)])))
  }
  set('prometheus', 'require_auth', litellm.require_auth_for_metrics_endpoint)
  // The MCP gateway: servers by name, and aliases (LiteLLM reads them from litellm_settings; top level taken too).
  set('mcp', 'servers', input.mcp_servers ?? undefined)
  set('mcp', 'aliases', litellm.mcp_aliases ?? input.mcp_aliases ?? undefined)

  if (input.pipeline === undefined) {
    const pipeline = defaultPipeline(databaseUrl ? 'store-postgres' : 'store-sqlite', redis)
    // Logging and metrics watch every call from the start of the chain (a call refused for its key is logged too).
    const watchers = [...(logging.any ? ['logging'] : []), ...(logging.prometheus ? ['prometheus'] : [])]
    pipeline.splice(1, 0, ...watchers)
    config.pipeline = pipeline
  }
  if (input.upstream === undefined) config.upstream = DEFAULT_UPSTREAM.filter((p) => !(noCooldowns && p === 'cooldown'))
  if (pluginDefaults.auth && !namesPlugin(config.pipeline, 'auth')) {
    warnings.push('general_settings.master_key is set but the pipeline has no auth plugin: requests are not authenticated')
  }
  for (const plugin of ['retry', 'router', 'cooldown', 'fallback', 'priority-queue', 'logging', 'prometheus', 'mcp'] as const) {
    if (pluginDefaults[plugin] && !namesPlugin(config.pipeline, plugin) && !namesPlugin(config.upstream, plugin)) {
      warnings.push(`${Object.keys(pluginDefaults[plugin]!).join(', ')} set in LiteLLM settings but no '${plugin}' plugin is configured: ignored`)
    }
  }
  reportIgnored(ignored, warnings, ctx.strict === true || general.strict_config === true)
  return { config, pluginDefaults }
}

/** LiteLLM callback names the logging plugin ships to (plugins/logging SINKS); "prometheus" is its own plugin. */
export const LOGGING_CALLBACKS: ReadonlySet<string> = new Set(['langfuse', 'langfuse_otel', 'helicone', 'mlflow', 'otel', 'opentelemetry'])

interface CallbackMapping {
  /** Sinks for every call (`callbacks`, or named in both success_callback and failure_callback). */
  sinks: string[]
  successOnly: string[]
  failureOnly: string[]
  any: boolean
  prometheus: boolean
}

/**
 * litellm_settings.callbacks / success_callback / failure_callback -> the logging plugin's sink lists and the
 * prometheus plugin. A callback this version does not ship to (datadog, s3, a custom class) is reported as ignored.
 */
function mapCallbacks(litellm: Record<string, unknown>, ignored: string[]): CallbackMapping {
  const names = (key: string): string[] => {
    const v = litellm[key]
    const list = Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
    const out: string[] = []
    for (const n of list) {
      if (typeof n !== 'string') continue
      const name = n.toLowerCase()
      if (name === 'prometheus' || LOGGING_CALLBACKS.has(name)) out.push(name)
      else ignored.push(`litellm_settings.${key}: ${n}`)
    }
    return out
  }
  const both = new Set(names('callbacks'))
  const success = new Set(names('success_callback'))
  const failure = new Set(names('failure_callback'))
  const prometheus = both.has('prometheus') || success.has('prometheus') || failure.has('prometheus')
  for (const set of [both, success, failure]) set.delete('prometheus')
  const sinks = [...new Set([...both, ...[...success].filter((n) => failure.has(n))])]
  const successOnly = [...success].filter((n) => !failure.has(n) && !both.has(n))
  const failureOnly = [...failure].filter((n) => !success.has(n) && !both.has(n))
  return { sinks, successOnly, failureOnly, any: sinks.length + successOnly.length + failureOnly.length > 0, prometheus }
}

/** One warning for everything ignored; in strict mode the same list is a boot error. */
function reportIgnored(ignored: string[], warnings: string[], strict: boolean): void {
  if (!ignored.length) return
  if (strict) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      `strict config: keys this version does not act on: ${ignored.join(', ')}. Remove them, or turn strict mode off ` +
      '(--strict / general_settings.strict_config) to run with them ignored.')
  }
  warnings.push(`config keys not supported yet, ignored: ${ignored.join(', ')}`)
}

function collectIgnored(section: string, values: Record<string, unknown>, acted: ReadonlySet<string>, ignored: string[]): void {
  for (const k of Object.keys(values)) if (!acted.has(k)) ignored.push(`${section}.${k}`)
}

/**
 * Known LiteLLM sections not acted on are ignored (warned). An unknown key that reads as a typo of a known one
 * (`pipline:`) refuses the boot with a suggestion: it would otherwise run the default chain, auth and all, without
 * anyone noticing. Any other unknown key (an anchor holder such as `common: &defaults`, which LiteLLM ignores too)
 * joins the one warning, and strict mode refuses it.
 */
function checkTopLevel(keys: string[], ignored: string[]): void {
  const errors: string[] = []
  for (const k of keys) {
    if (NATIVE_TOP_LEVEL.has(k) || LITELLM_ACTED_ON.top.has(k)) continue
    if (LITELLM_KNOWN_IGNORED.has(k)) {
      ignored.push(k)
      continue
    }
    const near = nearestKey(k)
    if (near) errors.push(`config: unknown top-level key '${k}'; did you mean '${near}'?`)
    else ignored.push(k)
  }
  if (errors.length) throw gatewayError('GW_ERR_CONFIG_INVALID', `Invalid config:\n${errors.map((e) => `  - ${e}`).join('\n')}`)
}

const ALL_TOP_LEVEL = [...new Set([...NATIVE_TOP_LEVEL, ...LITELLM_ACTED_ON.top, ...LITELLM_KNOWN_IGNORED])]

/** The known top-level key `key` is a typo of, if any. */
function nearestKey(key: string): string | undefined {
  let best = ''
  let bestDistance = Infinity
  for (const k of ALL_TOP_LEVEL) {
    const d = editDistance(key.toLowerCase(), k)
    if (d < bestDistance) [best, bestDistance] = [k, d]
  }
  // A third of the word (at least 2 edits) still reads as a typo; beyond that the nearest key is noise.
  return bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

/** Levenshtein distance, two rows. Boot-time only. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}

/** A master key that is written but resolves to nothing would leave the gateway open: refuse instead. */
function refuseEmptyMasterKey(input: RawConfig, unset: MapContext['unset']): void {
  const vars = unset.get('general_settings.master_key')
  if (vars) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      `general_settings.master_key references ${vars.join(', ')}, which is not set: auth would be off. Set the variable, ` +
      'or remove master_key to run without auth.')
  }
  const general = obj(input.general_settings)
  if ('master_key' in general && (general.master_key === '' || general.master_key === null)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      'general_settings.master_key is empty: auth would be off. Set a key, or remove master_key to run without auth.')
  }
}

function megabytes(v: unknown): number {
  if (typeof v !== 'number' || !(v > 0)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `general_settings.max_request_size_mb: must be a positive number of megabytes, got ${JSON.stringify(v)}`)
  }
  return Math.floor(v * 1024 * 1024)
}

/**
 * One model_list entry in Switchyard's terms: LiteLLM's aliases resolved (base_url, num_retries, entry-level
 * tpm/rpm), ignored keys collected, and credentials that were written but did not resolve recorded in
 * `unresolved` so the model table disables the deployment instead of falling back to env vars or a public endpoint.
 */
function mapEntry(raw: unknown, i: number, unset: MapContext['unset'], ignored: string[], warnings: string[]): unknown {
  const entry = obj(raw)
  if (!Object.keys(entry).length) return raw
  for (const k of Object.keys(entry)) if (!LITELLM_ACTED_ON['model_list[]'].has(k)) ignored.push(`model_list[${i}].${k}`)
  const given = obj(entry.litellm_params)
  for (const k of Object.keys(given)) {
    if (!LITELLM_ACTED_ON.litellm_params.has(k) && !REQUEST_DEFAULT_KEYS.has(k)) ignored.push(`model_list[${i}].litellm_params.${k}`)
  }
  for (const k of Object.keys(obj(entry.model_info))) {
    if (!LITELLM_ACTED_ON.model_info.has(k)) ignored.push(`model_list[${i}].model_info.${k}`)
  }
  if (entry.litellm_params === undefined || entry.litellm_params === null || typeof entry.litellm_params !== 'object') return raw

  const params: Record<string, unknown> = { ...given }
  moveAlias(params, 'base_url', 'api_base')
  moveAlias(params, 'num_retries', 'max_retries')
  // LiteLLM's router reads tpm/rpm beside litellm_params too; litellm_params wins when both are set.
  for (const k of ['tpm', 'rpm'] as const) if (params[k] === undefined && entry[k] !== undefined) params[k] = entry[k]

  const unresolved = unresolvedCredentials(i, given, unset)
  const out: Record<string, unknown> = { model_name: entry.model_name, litellm_params: params }
  if (entry.model_info !== undefined) out.model_info = entry.model_info
  if (unresolved.length) {
    out.unresolved = unresolved
    warnings.push(`model_list[${i}] (${String(entry.model_name)}): ${unresolved.join('; ')}: deployment disabled, its calls ` +
      "fail with 503; nothing falls back to the provider's env vars or public endpoint")
  }
  return out
}

function moveAlias(params: Record<string, unknown>, alias: string, key: string): void {
  if (!(alias in params)) return
  if (params[key] === undefined) params[key] = params[alias]
  delete params[alias]
}

function unresolvedCredentials(i: number, params: Record<string, unknown>, unset: MapContext['unset']): string[] {
  const out: string[] = []
  for (const k of CREDENTIAL_KEYS) {
    if (k === 'base_url' && typeof params.api_base === 'string' && params.api_base) continue // api_base wins
    const vars = unset.get(`model_list.${i}.litellm_params.${k}`)
    if (vars) out.push(`${k} references ${vars.join(', ')}, which is not set`)
    // An explicit empty api_base names no host; the provider's default would be a silent substitute.
    else if (k !== 'api_key' && k in params && (params[k] === '' || params[k] === null)) out.push(`${k} is empty`)
  }
  return out
}

function namesPlugin(list: unknown, name: string): boolean {
  return Array.isArray(list) && list.some((e) => e === name || (e && typeof e === 'object' && name in e))
}
