/**
 * applyParamMap(): the declarative OpenAI -> provider body translation every HTTP provider goes through.
 * Table-driven over small maps that exercise one rule kind each.
 */
import t from 'tap'
import { applyParamMap, GATEWAY_FIELDS, setPath } from '../../providers/param-map.js'
import type { ParamMap, ParamPolicy, Target } from '../../providers/types.js'
import { GatewayError, UnsupportedParamsError, BadRequestError } from '../../core/errors.js'

function target(over: Partial<Target> = {}): Target {
  return {
    id: 't1', modelName: 'm', provider: 'acme', model: 'acme-large', timeoutMs: 1000, streamTimeoutMs: 1000,
    weight: 1, dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, ...over,
  }
}

type Req = Record<string, unknown>

t.test('setPath creates intermediate objects and replaces non-objects on the way', async (t) => {
  const b: Record<string, unknown> = { a: 1 }
  setPath(b, 'x.y.z', 2)
  setPath(b, 'a.b', 3)
  setPath(b, 'top', 4)
  t.same(b, { a: { b: 3 }, x: { y: { z: 2 } }, top: 4 })
})

t.test('dotted paths: several fields land in one nested object', async (t) => {
  const map: ParamMap<Req> = {
    model: { to: 'model', map: (_v, _r, tg) => tg.model },
    temperature: { to: 'generationConfig.temperature' },
    max_tokens: { to: 'generationConfig.maxOutputTokens' },
    user: { to: 'metadata.user_id' },
  }
  const body = applyParamMap({ model: 'alias', temperature: 0.5, max_tokens: 100, user: 'u1' }, map, target())
  t.same(body, { model: 'acme-large', generationConfig: { temperature: 0.5, maxOutputTokens: 100 }, metadata: { user_id: 'u1' } })
})

t.test('one field mapped to several places (array of rules)', async (t) => {
  const map: ParamMap<Req> = { stop: [{ to: 'stop_sequences' }, { to: 'options.stop', map: (v) => [v].flat().length }] }
  t.same(applyParamMap({ stop: ['a', 'b'] }, map, target()), { stop_sequences: ['a', 'b'], options: { stop: 2 } })
})

t.test('defaults: values and functions fill only what the request left out', async (t) => {
  const map: ParamMap<Req> = {
    max_tokens: { to: 'max_tokens', default: 4096 },
    model: { to: 'model', default: (_r: Req, tg: Target) => `${tg.provider}:${tg.model}` },
    temperature: { to: 'sampling.temperature', default: (r: Req) => (r.stream ? 0.1 : 0.2) },
    top_p: { to: 'top_p' },
  }
  t.same(applyParamMap({}, map, target()), { max_tokens: 4096, model: 'acme:acme-large', sampling: { temperature: 0.2 } },
    'defaults applied, a rule without default adds nothing')
  t.same(applyParamMap({ stream: true }, map, target()).sampling, { temperature: 0.1 }, 'function default sees the request')
  t.same(applyParamMap({ max_tokens: 10, model: 'x' }, { max_tokens: map.max_tokens, model: { to: 'model' } }, target()),
    { max_tokens: 10, model: 'x' }, 'the request value wins over a default')
})

t.test('required without a default -> 400 naming the param', async (t) => {
  const map: ParamMap<Req> = { max_tokens: { to: 'max_tokens', required: true } }
  t.throws(() => applyParamMap({}, map, target()), { code: 'GW_ERR_VALIDATION', status: 400, param: 'max_tokens' })
  t.same(applyParamMap({ max_tokens: 5 }, map, target()), { max_tokens: 5 })
})

t.test('range: out of range -> GW_ERR_PARAM_RANGE 400, bounds inclusive, no silent clamp', async (t) => {
  const map: ParamMap<Req> = { temperature: { to: 'temperature', range: [0, 1] } }
  for (const ok of [0, 0.5, 1]) t.same(applyParamMap({ temperature: ok }, map, target()), { temperature: ok }, `${ok} passes unchanged`)
  for (const bad of [-0.1, 1.5, 2]) {
    let err: unknown
    try {
      applyParamMap({ temperature: bad }, map, target())
    } catch (e) {
      err = e
    }
    t.ok(err instanceof BadRequestError, `${bad}: a BadRequestError`)
    const e = err as GatewayError
    t.equal(e.code, 'GW_ERR_PARAM_RANGE')
    t.equal(e.status, 400)
    t.equal(e.param, 'temperature')
    t.match(e.message, /temperature/)
    t.match(e.message, /0 to 1/)
    t.match(e.message, /acme/, 'names the provider')
  }
})

t.test("'unsupported': 400 GW_ERR_UNSUPPORTED_PARAM naming every such param and drop_params", async (t) => {
  const map: ParamMap<Req> = { logprobs: 'unsupported', logit_bias: 'unsupported', temperature: { to: 'temperature' } }
  let err: unknown
  try {
    applyParamMap({ logprobs: true, logit_bias: { 1: 2 }, temperature: 1 }, map, target())
  } catch (e) {
    err = e
  }
  t.ok(err instanceof UnsupportedParamsError, 'UnsupportedParamsError')
  t.ok(err instanceof BadRequestError, 'which is a BadRequestError')
  const e = err as GatewayError
  t.equal(e.code, 'GW_ERR_UNSUPPORTED_PARAM')
  t.equal(e.status, 400)
  t.equal(e.param, 'logprobs')
  t.match(e.message, /logprobs, logit_bias/)
  t.match(e.message, /drop_params/)
  t.match(e.message, /acme-large/)
})

t.test("'unsupported' with dropParams: removed silently; null values never count", async (t) => {
  const map: ParamMap<Req> = { logprobs: 'unsupported', temperature: { to: 'temperature' } }
  t.same(applyParamMap({ logprobs: true, temperature: 1 }, map, target({ dropParams: true })), { temperature: 1 })
  t.same(applyParamMap({ logprobs: null, temperature: 1 }, map, target()), { temperature: 1 }, 'null is "not set"')
})

t.test("'drop' always removes the field, whatever drop_params says", async (t) => {
  const map: ParamMap<Req> = { user: 'drop' }
  t.same(applyParamMap({ user: 'u', seed: 1 }, map, target()), { seed: 1 })
})

t.test('unknown fields: pass (OpenAI family) or unsupported by policy', async (t) => {
  const strict: ParamPolicy = { unknown: 'unsupported' }
  const map: ParamMap<Req> = { temperature: { to: 'temperature' } }
  t.same(applyParamMap({ temperature: 1, seed: 7 }, map, target()), { temperature: 1, seed: 7 }, 'default policy passes')
  t.throws(() => applyParamMap({ temperature: 1, seed: 7 }, map, target(), strict), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'seed' })
  t.same(applyParamMap({ temperature: 1, seed: 7 }, map, target({ dropParams: true }), strict), { temperature: 1 }, 'dropped with drop_params')
})

t.test('gateway-only fields (mock_response, priority, ...) are never sent upstream', async (t) => {
  const req: Req = { model: 'm', messages: [], mock_response: 'hi', priority: 1, metadata: { a: 1 }, fallbacks: ['x'], num_retries: 2, api_key: 'sk', timeout: 5 }
  const body = applyParamMap(req, {}, target())
  t.same(body, { model: 'm', messages: [] })
  // Even when a map names one of them, the gateway field rule wins.
  t.same(applyParamMap({ priority: 1 }, { priority: { to: 'priority' } }, target()), {})
  for (const f of ['mock_response', 'priority']) t.ok(GATEWAY_FIELDS.has(f), `${f} is a gateway field`)
})

t.test('additional_drop_params removes named fields, even ones the map would send or reject', async (t) => {
  const map: ParamMap<Req> = { logprobs: 'unsupported', temperature: { to: 'temperature' } }
  const tg = target({ additionalDropParams: ['logprobs', 'temperature', 'seed'] })
  t.same(applyParamMap({ logprobs: true, temperature: 1, seed: 3, top_p: 0.9 }, map, tg), { top_p: 0.9 })
})

t.test('undefined values are skipped; map returning undefined sets nothing', async (t) => {
  const map: ParamMap<Req> = { tools: { to: 'tools', map: (v: unknown) => ((v as unknown[]).length ? v : undefined) } }
  t.same(applyParamMap({ tools: [], top_p: undefined }, map, target()), {})
  t.same(applyParamMap({ tools: [1] }, map, target()), { tools: [1] })
})

t.test('stream and stream_options are the core\'s: never unsupported under a strict policy', async (t) => {
  const strict: ParamPolicy = { unknown: 'unsupported' }
  const map: ParamMap<Record<string, unknown>> = { messages: { to: 'contents' } }
  const req = { messages: [], stream: true, stream_options: { include_usage: true } }
  t.same(applyParamMap(req, map, target(), strict), { contents: [] }, 'left out, no 400')
  t.same(applyParamMap(req, { ...map, stream: { to: 'stream' } }, target(), strict), { contents: [], stream: true }, 'a map that names one decides')
  t.same(applyParamMap(req, map, target()), { contents: [], stream: true, stream_options: { include_usage: true } }, 'the pass policy sends them on')
  t.throws(() => applyParamMap({ ...req, top_k: 3 }, map, target(), strict), UnsupportedParamsError, 'other unknown fields still fail')
})
