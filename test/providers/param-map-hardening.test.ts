/**
 * applyParamMap() with client keys named after Object.prototype members, and the gateway's own fields: keys are
 * looked up as own properties only, `__proto__` never changes a prototype, and LiteLLM's fields are never sent.
 * (The same through a real gateway: test/http/upstream-hardening.test.ts.)
 */
import t from 'tap'
import { applyParamMap, GATEWAY_FIELDS, isGatewayField, setOwn, setPath } from '../../providers/param-map.js'
import type { ParamMap, Target } from '../../providers/types.js'

function target(over: Partial<Target> = {}): Target {
  return {
    id: 't1', modelName: 'm', provider: 'acme', model: 'acme-large', timeoutMs: 1000, streamTimeoutMs: 1000,
    weight: 1, dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, ...over,
  }
}

const PROTO_KEYS = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', '__defineSetter__']

/** A request as JSON.parse builds it: `__proto__` is then an own field, not the prototype. */
const parsed = (key: string, value: unknown) => JSON.parse(`{"model":"a","${key}":${JSON.stringify(value)}}`) as Record<string, unknown>

t.test('pass policy: prototype-named keys are passed on as own fields; the body keeps its prototype', async (t) => {
  const map: ParamMap<Record<string, unknown>> = { model: { to: 'model', map: (_v, _r, tg) => tg.model }, temperature: { to: 'temperature' } }
  for (const key of PROTO_KEYS) {
    for (const value of [{ a: 1 }, 'x', null, 3]) {
      const body = applyParamMap(parsed(key, value), map, target())
      t.ok(Object.hasOwn(body, key), `${key}=${JSON.stringify(value)} is an own field`)
      t.same(body[key], value)
      t.equal(Object.getPrototypeOf(body), Object.prototype, 'prototype unchanged')
      t.equal(body.model, 'acme-large')
      t.same(JSON.parse(JSON.stringify(body)), { model: 'acme-large', [key]: value }, 'serialised as sent')
    }
  }
})

t.test('unsupported policy: a prototype-named key is an unsupported param (400), or dropped with drop_params', async (t) => {
  const map: ParamMap<Record<string, unknown>> = { model: { to: 'model' } }
  for (const key of PROTO_KEYS) {
    t.throws(() => applyParamMap(parsed(key, 1), map, target(), { unknown: 'unsupported' }),
      { code: 'GW_ERR_UNSUPPORTED_PARAM', status: 400, param: key }, `${key} -> 400`)
    t.same(applyParamMap(parsed(key, 1), map, target({ dropParams: true }), { unknown: 'unsupported' }), { model: 'a' }, `${key} dropped`)
    t.same(applyParamMap(parsed(key, 1), map, target({ additionalDropParams: [key] })), { model: 'a' }, `${key} in additional_drop_params`)
  }
})

t.test('a map rule whose key is a prototype member still gets its default when the request lacks it', async (t) => {
  const map: ParamMap<Record<string, unknown>> = { toString: { to: 'options.text', default: 'plain' }, valueOf: { to: 'v', required: true, default: 1 } }
  t.same(applyParamMap({}, map, target()), { options: { text: 'plain' }, v: 1 })
  const req: Record<string, unknown> = { toString: 'rich' }
  t.same(applyParamMap(req, map, target()), { options: { text: 'rich' }, v: 1 })
})

t.test('setPath / setOwn never write through to a prototype', async (t) => {
  const b: Record<string, unknown> = {}
  setPath(b, '__proto__.polluted', 1)
  setPath(b, 'constructor.prototype.polluted', 2)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.equal(Object.getPrototypeOf(b), Object.prototype)
  t.same(JSON.parse(JSON.stringify(b)), { __proto__: { polluted: 1 }, constructor: { prototype: { polluted: 2 } } })
  const o: Record<string, unknown> = {}
  setOwn(o, '__proto__', { x: 1 })
  t.ok(Object.hasOwn(o, '__proto__'))
  t.equal((o as { x?: unknown }).x, undefined, 'not inherited')
})

t.test('GATEWAY_FIELDS: LiteLLM\'s own params, never an OpenAI one', async (t) => {
  // OpenAI request params (chat, completions, embeddings): all must reach the provider.
  const openai = ['model', 'messages', 'stream', 'stream_options', 'temperature', 'top_p', 'n', 'seed', 'user', 'stop', 'max_tokens',
    'max_completion_tokens', 'presence_penalty', 'frequency_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'response_format',
    'tools', 'tool_choice', 'parallel_tool_calls', 'functions', 'function_call', 'store', 'service_tier', 'reasoning_effort',
    'prediction', 'modalities', 'audio', 'web_search_options', 'prompt', 'suffix', 'echo', 'best_of', 'input', 'encoding_format',
    'dimensions']
  for (const k of openai) t.notOk(isGatewayField(k), `${k} is forwarded`)
  for (const k of ['mock_testing_rate_limit_error', 'mock_testing_fallbacks', 'litellm_trace_id', 'langfuse_public_key', 'api_version',
    'organization', 'base_url', 'user_api_key_alias', 'user_api_key_team_id', 'no-log', 'turn_off_message_logging']) {
    t.ok(isGatewayField(k), `${k} is the gateway's`)
  }
  const req: Record<string, unknown> = { model: 'a', user: 'u', seed: 1, user_api_key_user_id: 'x' }
  for (const k of GATEWAY_FIELDS) req[k] = 'x'
  t.same(applyParamMap(req, {}, target()), { model: 'a', user: 'u', seed: 1 }, 'every gateway field stripped, nothing else')
})
