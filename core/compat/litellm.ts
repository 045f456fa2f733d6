/**
 * LiteLLM config compatibility: a LiteLLM proxy `config.yaml` loads unchanged. Its sections map onto Switchyard's
 * shape here, in one place:
 *
 *   general_settings.master_key            -> auth plugin option master_key (else $LITELLM_MASTER_KEY)
 *   litellm_settings.drop_params           -> settings.drop_params
 *   litellm_settings.request_timeout       -> settings.request_timeout (seconds)
 *   litellm_settings.num_retries,
 *   router_settings.num_retries            -> retry plugin option num_retries
 *   router_settings.routing_strategy       -> router plugin option routing_strategy
 *   router_settings.timeout/stream_timeout -> settings.request_timeout / settings.stream_timeout
 *   litellm_settings.set_verbose           -> server.log_level: debug
 *
 * Every key this version does not act on is collected and reported in one boot warning, never dropped silently.
 * A config with no `pipeline:` gets the default chain (request-id, auth, router; retry on the attempt chain).
 */
import type { RawConfig } from '../config/load.js'

/** The request chain a config gets when it names none. */
export const DEFAULT_PIPELINE = ['request-id', 'auth', 'router'] as const
export const DEFAULT_UPSTREAM = ['retry'] as const

const TOP_LEVEL = new Set([
  'server', 'pipeline', 'upstream', 'plugins', 'model_list', 'settings',
  'litellm_settings', 'router_settings', 'general_settings', 'environment_variables',
])

const ENTRY_KEYS = new Set(['model_name', 'litellm_params', 'model_info'])

/** litellm_params keys the core acts on (see providers/types.ts Target). */
const DEPLOYMENT_KEYS = new Set([
  'model', 'api_base', 'api_key', 'api_version', 'organization', 'custom_llm_provider', 'rpm', 'tpm', 'weight',
  'order', 'timeout', 'stream_timeout', 'max_retries', 'input_cost_per_token', 'output_cost_per_token',
  'mock_response', 'drop_params', 'additional_drop_params', 'extra_headers',
])

/** OpenAI request params a deployment may set as defaults (LiteLLM passes them into every call). */
export const REQUEST_DEFAULT_KEYS = new Set([
  'temperature', 'top_p', 'n', 'max_tokens', 'max_completion_tokens', 'stop', 'presence_penalty',
  'frequency_penalty', 'seed', 'user', 'response_format', 'tool_choice', 'parallel_tool_calls', 'logprobs',
  'top_logprobs', 'logit_bias', 'reasoning_effort', 'service_tier', 'dimensions', 'encoding_format',
])

const GENERAL_SUPPORTED = new Set(['master_key'])
const LITELLM_SUPPORTED = new Set(['drop_params', 'request_timeout', 'num_retries', 'set_verbose', 'json_logs'])
const ROUTER_SUPPORTED = new Set(['routing_strategy', 'num_retries', 'timeout', 'stream_timeout'])
/** Routing strategies the router plugin implements; others fall back to simple-shuffle with a warning. */
const STRATEGIES = new Set(['simple-shuffle'])

export interface LiteLLMMapping {
  config: RawConfig
  /** Plugin options derived from LiteLLM sections; explicit options in `pipeline:` win over these. */
  pluginDefaults: Record<string, Record<string, unknown>>
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
}

export function mapLiteLLM(input: RawConfig, warnings: string[], env: Record<string, string | undefined> = {}): LiteLLMMapping {
  const unsupported: string[] = []
  const pluginDefaults: Record<string, Record<string, unknown>> = {}
  const set = (plugin: string, key: string, value: unknown) => {
    if (value === undefined || value === null) return
    ;(pluginDefaults[plugin] ??= {})[key] = value
  }
  const config: RawConfig = { ...input }
  for (const k of Object.keys(input)) if (!TOP_LEVEL.has(k)) unsupported.push(k)

  const general = obj(input.general_settings)
  const litellm = obj(input.litellm_settings)
  const router = obj(input.router_settings)
  for (const k of Object.keys(general)) if (!GENERAL_SUPPORTED.has(k)) unsupported.push(`general_settings.${k}`)
  for (const k of Object.keys(litellm)) if (!LITELLM_SUPPORTED.has(k)) unsupported.push(`litellm_settings.${k}`)
  for (const k of Object.keys(router)) if (!ROUTER_SUPPORTED.has(k)) unsupported.push(`router_settings.${k}`)

  // LiteLLM also takes the master key from LITELLM_MASTER_KEY when the config has none.
  set('auth', 'master_key', general.master_key ?? (env.LITELLM_MASTER_KEY || undefined))
  set('retry', 'num_retries', router.num_retries ?? litellm.num_retries)
  const strategy = router.routing_strategy
  if (typeof strategy === 'string') {
    if (STRATEGIES.has(strategy)) set('router', 'routing_strategy', strategy)
    else unsupported.push(`router_settings.routing_strategy=${strategy} (using simple-shuffle)`)
  }

  const settings = { ...obj(input.settings) }
  if (litellm.drop_params !== undefined && settings.drop_params === undefined) settings.drop_params = litellm.drop_params
  const timeout = litellm.request_timeout ?? router.timeout
  if (timeout !== undefined && settings.request_timeout === undefined) settings.request_timeout = timeout
  if (router.stream_timeout !== undefined && settings.stream_timeout === undefined) settings.stream_timeout = router.stream_timeout
  config.settings = settings
  if ((litellm.set_verbose === true || litellm.set_verbose === 'True') && !obj(input.server).log_level) {
    config.server = { ...obj(input.server), log_level: 'debug' }
  }

  if (Array.isArray(input.model_list)) {
    input.model_list.forEach((entry, i) => {
      for (const k of Object.keys(obj(entry))) if (!ENTRY_KEYS.has(k)) unsupported.push(`model_list[${i}].${k}`)
      const params = obj(obj(entry).litellm_params)
      for (const k of Object.keys(params)) {
        if (!DEPLOYMENT_KEYS.has(k) && !REQUEST_DEFAULT_KEYS.has(k)) unsupported.push(`model_list[${i}].litellm_params.${k}`)
      }
    })
  }

  if (input.pipeline === undefined) config.pipeline = [...DEFAULT_PIPELINE]
  if (input.upstream === undefined) config.upstream = [...DEFAULT_UPSTREAM]
  if (pluginDefaults.auth && !namesPlugin(config.pipeline, 'auth')) {
    warnings.push('general_settings.master_key is set but the pipeline has no auth plugin: requests are not authenticated')
  }
  for (const plugin of ['retry', 'router'] as const) {
    if (pluginDefaults[plugin] && !namesPlugin(config.pipeline, plugin) && !namesPlugin(config.upstream, plugin)) {
      warnings.push(`${Object.keys(pluginDefaults[plugin]!).join(', ')} set in LiteLLM settings but no '${plugin}' plugin is configured: ignored`)
    }
  }
  if (unsupported.length) {
    warnings.push(`config keys not supported yet, ignored: ${unsupported.join(', ')}`)
  }
  return { config, pluginDefaults }
}

function namesPlugin(list: unknown, name: string): boolean {
  return Array.isArray(list) && list.some((e) => e === name || (e && typeof e === 'object' && name in e))
}
