/**
 * applyParamMap(): turn an OpenAI-format request into a provider body by a declarative ParamMap (Portkey-style).
 * Rules run in the request's field order; defaults fill what the request left out; range errors are 400s, never
 * silent clamps. Unsupported params are dropped when the deployment has drop_params, else rejected with the
 * message LiteLLM users know ("... does not support parameters: ... set drop_params: true").
 */
import { gatewayError } from '../core/errors.js'
import type { ParamMap, ParamPolicy, ParamRule, Target } from './types.js'

/** Fields the gateway itself reads; never sent upstream. */
export const GATEWAY_FIELDS: ReadonlySet<string> = new Set([
  'mock_response', 'priority', 'fallbacks', 'num_retries', 'caching', 'cache', 'tags', 'metadata',
  'litellm_metadata', 'api_key', 'api_base', 'base_url', 'drop_params', 'timeout', 'mock_timeout',
])

/**
 * Fields the core itself acts on for every provider (streaming is chosen by dispatch; usage inclusion for the
 * client by the core): never "unsupported". A map that names them decides what is sent; otherwise the 'pass'
 * policy sends them on and the 'unsupported' policy leaves them out.
 */
const CORE_FIELDS: ReadonlySet<string> = new Set(['stream', 'stream_options'])

const PASS: ParamPolicy = { unknown: 'pass' }

export function setPath(body: Record<string, unknown>, to: string, value: unknown): void {
  if (to.indexOf('.') === -1) {
    body[to] = value
    return
  }
  const parts = to.split('.')
  let cur = body
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i]!
    let next = cur[k]
    if (next === null || typeof next !== 'object') cur[k] = next = {}
    cur = next as Record<string, unknown>
  }
  cur[parts[parts.length - 1]!] = value
}

export function applyParamMap<Req extends Record<string, unknown>>(
  req: Req, map: ParamMap<Req>, target: Target, policy: ParamPolicy = PASS,
): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  let unsupported: string[] | null = null
  const drop = target.additionalDropParams
  for (const key in req) {
    const value = req[key]
    if (value === undefined || GATEWAY_FIELDS.has(key) || (drop.length && drop.includes(key))) continue
    const rule = map[key]
    if (rule === undefined) {
      if (policy.unknown === 'pass') body[key] = value
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
    if (rule === undefined || typeof rule === 'string' || req[key] !== undefined) continue
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
