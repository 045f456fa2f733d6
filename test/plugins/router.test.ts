/**
 * Routing: the router plugin's order (simple-shuffle: `order` first, then weights), load spread over the
 * deployments of one model name, wildcard model names, providers LiteLLM knows that have no adapter yet, and the
 * deployment id echoed as x-litellm-model-id.
 */
import t from 'tap'
import { orderTargets, weightedShuffle } from '../../plugins/router/index.js'
import type { Target } from '../../providers/types.js'
import { startGateway } from '../helpers/gateway.js'

const tgt = (id: string, over: Partial<Target> = {}): Target => ({
  id, modelName: 'm', provider: 'mock', model: id, timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1, dropParams: false,
  additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, ...over,
})

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('weighted shuffle: every deployment once; first picks follow the weights', async (t) => {
  const group = [tgt('a', { weight: 9 }), tgt('b', { weight: 1 })]
  const random = rng(42)
  let aFirst = 0
  let complete = 0
  const N = 4000
  for (let i = 0; i < N; i++) {
    const order = weightedShuffle(group, random)
    if (order.map((x) => x.id).sort().join() === 'a,b') complete++
    if (order[0]!.id === 'a') aFirst++
  }
  t.equal(complete, N, 'every shuffle holds each deployment once')
  t.ok(aFirst / N > 0.86 && aFirst / N < 0.94, `weight 9:1 puts a first ~90% of the time (${aFirst / N})`)
  // Without weights, rpm then tpm act as weights (LiteLLM's simple-shuffle).
  const byRpm = [tgt('x', { rpm: 900 }), tgt('y', { rpm: 100 })]
  let xFirst = 0
  for (let i = 0; i < N; i++) if (weightedShuffle(byRpm, random)[0]!.id === 'x') xFirst++
  t.ok(xFirst / N > 0.86, `rpm as weight (${xFirst / N})`)
  t.equal(weightedShuffle([tgt('z', { weight: 0 }), tgt('w')], random)[0]!.id, 'w', 'weight 0 goes last')
})

t.test('order: lower order always first, shuffled within an order', async (t) => {
  const group = [tgt('late', { order: 2 }), tgt('early1', { order: 1 }), tgt('none'), tgt('early2', { order: 1 })]
  const random = rng(7)
  const firsts = new Set<string>()
  const tails = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const o = orderTargets(group, random).map((x) => x.id)
    tails.add(o.slice(2).join())
    firsts.add(o[0]!)
  }
  t.same([...tails], ['late,none'], 'order 2, then deployments without an order, every time')
  t.same([...firsts].sort(), ['early1', 'early2'], 'both order-1 deployments lead sometimes')
})

t.test('through the gateway: one model name, two deployments, both used; x-litellm-model-id names the one', async (t) => {
  const gw = await startGateway(t, `
model_list:
  - model_name: pool
    litellm_params: { model: mock/a, mock_response: from-a }
    model_info: { id: dep-a }
  - model_name: pool
    litellm_params: { model: mock/b, mock_response: from-b }
    model_info: { id: dep-b }
`)
  const seen = new Map<string, string>()
  for (let i = 0; i < 40; i++) {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'pool', messages: [{ role: 'user', content: 'x' }] }) })
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> }
    seen.set(res.headers.get('x-litellm-model-id')!, body.choices[0]!.message.content)
  }
  t.same(Object.fromEntries(seen), { 'dep-a': 'from-a', 'dep-b': 'from-b' }, 'both deployments served, each under its id')
  const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: Array<{ id: string }> }
  t.same(models.data.map((m) => m.id), ['pool'], 'one public model name')
})

t.test('wildcard model names route any matching model; the longest prefix wins', async (t) => {
  const gw = await startGateway(t, `
model_list:
  - model_name: "team-*"
    litellm_params: { model: "mock/team-*" }
  - model_name: "*"
    litellm_params: { model: mock/catch-all, mock_response: catch-all }
`)
  const ask = async (model: string) => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }) })
    return { status: res.status, body: (await res.json()) as { model: string; choices: Array<{ message: { content: string } }> } }
  }
  const a = await ask('team-search')
  t.equal(a.status, 200)
  t.equal(a.body.model, 'team-search', 'the * in litellm_params.model takes the matched part')
  const b = await ask('anything-else')
  t.equal(b.body.choices[0]!.message.content, 'catch-all')
  const list = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: unknown[] }
  t.same(list.data, [], 'wildcards are not listed as models')
})

t.test('a provider LiteLLM knows but Switchyard does not yet: loads with a warning, requests get a 400', async (t) => {
  const gw = await startGateway(t, `
model_list:
  - model_name: claude
    litellm_params: { model: replicate/meta/llama-3-8b, api_key: r8-x }
  - model_name: ok
    litellm_params: { model: mock/ok }
`)
  t.ok(gw.logs.some((l) => l.level === 'warn' && /claude uses provider 'replicate', not supported yet/.test(String(l.msg))), 'named at boot')
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'claude', messages: [{ role: 'user', content: 'x' }] }) })
  t.equal(res.status, 400)
  const body = (await res.json()) as { error: { code: string; message: string } }
  t.equal(body.error.code, 'provider_not_supported')
  t.match(body.error.message, /replicate/)
  const ok = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'ok', messages: [{ role: 'user', content: 'x' }] }) })
  t.equal(ok.status, 200, 'the other deployments serve')
})

t.test('LITELLM_MASTER_KEY turns auth on when the config names no key, as in LiteLLM', async (t) => {
  const gw = await startGateway(t, 'model_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n', { env: { LITELLM_MASTER_KEY: 'sk-from-env' } })
  t.equal((await fetch(`${gw.url}/v1/models`)).status, 401)
  t.equal((await fetch(`${gw.url}/v1/models`, { headers: { authorization: 'Bearer sk-from-env' } })).status, 200)
})
