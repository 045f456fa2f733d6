/**
 * applyParamMap(): turn an OpenAI-format request into a provider body by a declarative ParamMap (Portkey-style).
 * Rules run in the request's field order; defaults fill what the request left out; range errors are 400s, never
 * silent clamps. Unsupported params are dropped when the deployment has drop_params, else rejected with the
 * message LiteLLM users know ("... does not support parameters: ... set drop_params: true").
 */
import { gatewayError } from '../core/errors.js'
import type { ParamMap, ParamPolicy, ParamRule, Target } from './types.js'

/**
 * Request fields that belong to the gateway, never to the provider: stripped before every upstream call, as
 * LiteLLM strips its own (a provider answers 400 to e.g. `mock_testing_fallbacks`). Source: LiteLLM's
 * `all_litellm_params` (litellm/types/utils.py, with the StandardCallbackDynamicParams keys it appends), plus the
 * fields its proxy and router read from a request body (fallbacks, guardrails, mock_testing_*, ...). Only names
 * are taken. Genuine OpenAI params are not in it (`user`, `seed`, `n`, `stream`, `model`, `messages`, `tools`,
 * `response_format`...); `metadata` is, as in LiteLLM, which treats it as its own. Connection settings from a
 * client body (`api_key`, `api_base`, `base_url`, `api_version`, `organization`) are never forwarded: a client
 * does not get to point the gateway's credentials elsewhere. Names starting with `user_api_key` (the proxy's
 * key metadata) are stripped too, by isGatewayField().
 */
export const GATEWAY_FIELDS: ReadonlySet<string> = new Set([
  // LiteLLM all_litellm_params
  'metadata', 'litellm_metadata', 'litellm_trace_id', 'tags', 'acompletion', 'aimg_generation', 'atext_completion',
  'text_completion', 'caching', 'mock_response', 'mock_timeout', 'disable_add_transform_inline_image_block',
  'litellm_proxy_rate_limit_response', 'api_key', 'api_version', 'prompt_id', 'provider_specific_header',
  'prompt_variables', 'api_base', 'force_timeout', 'logger_fn', 'verbose', 'custom_llm_provider',
  'model_file_id_mapping', 'litellm_logging_obj', 'litellm_call_id', 'use_client', 'id', 'fallbacks', 'azure',
  'headers', 'model_list', 'num_retries', 'context_window_fallback_dict', 'retry_policy', 'retry_strategy', 'roles',
  'final_prompt_value', 'bos_token', 'eos_token', 'request_timeout', 'complete_response', 'self', 'client', 'rpm',
  'tpm', 'max_parallel_requests', 'input_cost_per_token', 'output_cost_per_token', 'input_cost_per_second',
  'output_cost_per_second', 'hf_model_name', 'model_info', 'proxy_server_request', 'preset_cache_key',
  'caching_groups', 'ttl', 'cache', 'no-log', 'base_model', 'stream_timeout', 'supports_system_message',
  'region_name', 'allowed_model_region', 'model_config', 'fastest_response', 'cooldown_time', 'cache_key',
  'max_retries', 'azure_ad_token_provider', 'tenant_id', 'client_id', 'azure_username', 'azure_password',
  'azure_scope', 'client_secret', 'user_continue_message', 'configurable_clientside_auth_params', 'weight',
  'ensure_alternating_roles', 'assistant_continue_message', 'fallback_depth', 'max_fallbacks', 'max_budget',
  'budget_duration', 'use_in_pass_through', 'merge_reasoning_content_in_choices', 'litellm_credential_name',
  'allowed_openai_params', 'litellm_session_id', 'use_litellm_proxy', 'prompt_label',
  // ... + StandardCallbackDynamicParams
  'langfuse_public_key', 'langfuse_secret', 'langfuse_secret_key', 'langfuse_host', 'gcs_bucket_name',
  'gcs_path_service_account', 'langsmith_api_key', 'langsmith_project', 'langsmith_base_url', 'humanloop_api_key',
  'arize_api_key', 'arize_space_key', 'turn_off_message_logging',
  // read by LiteLLM's proxy / router / completion() from a request body
  'priority', 'context_window_fallbacks', 'content_policy_fallbacks', 'disable_fallbacks', 'timeout',
  'mock_testing_rate_limit_error', 'mock_testing_fallbacks', 'mock_tool_calls', 'guardrails',
  'drop_params', 'additional_drop_params',
  // client-side connection settings, never forwarded
  'base_url', 'organization',
])

/** The proxy's key metadata (`user_api_key_alias`, `user_api_key_team_id`, ...): one prefix, many names. */
const GATEWAY_PREFIX = 'user_api_key'

/** Whether a request field is the gateway's own (GATEWAY_FIELDS, or a `user_api_key*` name). */
export function isGatewayField(key: string): boolean {
  return GATEWAY_FIELDS.has(key) || key.startsWith(GATEWAY_PREFIX)
}

/**
 * Fields the core itself acts on for every provider (streaming is chosen by dispatch; usage inclusion for the
 * client by the core): never "unsupported". A map that names them decides what is sent; otherwise the 'pass'
 * policy sends them on and the 'unsupported' policy leaves them out.
 */
const CORE_FIELDS: ReadonlySet<string> = new Set(['stream', 'stream_options'])

const PASS: ParamPolicy = { unknown: 'pass' }

/**
 * `obj[key] = value` for a key that may come from a client. `__proto__` as a plain assignment would replace the
 * object's prototype (and drop the field from the JSON); defined as an own property it is just a field, as
 * JSON.parse made it.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
  else obj[key] = value
}

export function setPath(body: Record<string, unknown>, to: string, value: unknown): void {
  if (to.indexOf('.') === -1) {
    setOwn(body, to, value)
    return
  }
  const parts = to.split('.')
  let cur = body
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i]!
    // Own properties only: an inherited `constructor` is no object to write into.
    let next = Object.hasOwn(cur, k) ? cur[k] : undefined
    if (next === null || typeof next !== 'object') setOwn(cur, k, (next = {}))
    cur = next as Record<string, unknown>
  }
  setOwn(cur, parts[parts.length - 1]!, value)
}

export function applyParamMap<Req extends Record<string, unknown>>(
  req: Req, map: ParamMap<Req>, target: Target, policy: ParamPolicy = PASS,
): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  let unsupported: string[] | null = null
  const drop = target.additionalDropParams
  for (const key in req) {
    const value = req[key]
    if (value === undefined || isGatewayField(key) || (drop.length && drop.includes(key))) continue
    // Own rules only: a client's `constructor` or `toString` must not find Object.prototype's function as a rule.
    const rule = Object.hasOwn(map, key) ? map[key] : undefined
    if (rule === undefined) {
      if (policy.unknown === 'pass') setOwn(body, key, value)
      else if (!target.dropParams && !CORE_FIELDS.has(key)) (unsupported ??= []).push(key)
      continue
    }
    if (rule === 'drop') continue
    if (rule === 'unsupported') {
      if (!target.dropParams && value !== null) (unsupported ??= []).push(key)
      continue
    }
    if (Array.isArray(rule)) for (const r of rule) applyRule(body, r, key, value, req, target)
    else applyRule(body, rule, key, value, req, target)
  }
  if (unsupported) {
    throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
      `${target.provider} does not support parameters: ${unsupported.join(', ')}, for model=${target.model}. ` +
      `To drop these, set \`drop_params: true\` in litellm_settings (or on the deployment's litellm_params).`,
      { param: unsupported[0]! })
  }
  for (const key in map) {
    const rule = map[key]
    if (rule === undefined || typeof rule === 'string' || (Object.hasOwn(req, key) && req[key] !== undefined)) continue
    for (const r of Array.isArray(rule) ? rule : [rule]) {
      if (r.default !== undefined) {
        setPath(body, r.to, typeof r.default === 'function' ? (r.default as (q: Req, t: Target) => unknown)(req, target) : r.default)
      } else if (r.required) {
        throw gatewayError('GW_ERR_VALIDATION', `Missing required parameter: '${key}'.`, { param: key, openaiCode: 'missing_required_parameter' })
      }
    }
  }
  return body
}

function applyRule<Req>(body: Record<string, unknown>, rule: ParamRule<Req>, key: string, value: unknown, req: Req, target: Target): void {
  if (rule.range && typeof value === 'number' && (value < rule.range[0] || value > rule.range[1])) {
    throw gatewayError('GW_ERR_PARAM_RANGE',
      `Invalid '${key}': ${value} is out of range for ${target.provider}; expected a value from ${rule.range[0]} to ${rule.range[1]}.`,
      { param: key })
  }
  const out = rule.map ? rule.map(value, req, target) : value
  if (out !== undefined) setPath(body, rule.to, out)
}
