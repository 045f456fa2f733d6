/**
 * cooldown: a failing deployment leaves its group (the next calls reach the healthy one only: counted at the fake
 * upstreams) and comes back after cooldown_time on the gateway's fake clock; 429 cools at once; a group of one is
 * never cooled; a whole group cooling fails fast with 429 + retry-after, and a fallback group then answers; two
 * gateways sharing a real redis-server see one cooldown; Redis down -> in process, one warning.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import cooldown from '../../plugins/cooldown/index.js'
import fallback from '../../plugins/fallback/index.js'
import stateRedis from '../../plugins/state-redis/index.js'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, errorReply, startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { startRedis } from '../helpers/redis.js'

const messages = [{ role: 'user' as const, content: 'hi' }]
/** Mid-minute, so +6 s stays in the same failure-counting minute. */
const START = Date.parse('2030-01-01T00:00:10Z')
const fakeClock = () => {
  const c = { ms: START, now: () => c.ms }
  return c
}

/** Two deployments per group: `a` on upstream A (order 1: always tried first), `b` on upstream B. */
function models(a: FakeUpstream, b: FakeUpstream, groups: string[]): string {
  return 'model_list:\n' + groups.map((g) => `
  - model_name: ${g}
    litellm_params: { model: openai/${g}-a, api_base: ${a.url}, api_key: sk-up, order: 1 }
    model_info: { id: ${g}-a }
  - model_name: ${g}
    litellm_params: { model: openai/${g}-b, api_base: ${b.url}, api_key: sk-up, order: 2 }
    model_info: { id: ${g}-b }`).join('') + `
  - model_name: solo
    litellm_params: { model: openai/solo, api_base: ${a.url}, api_key: sk-up }
    model_info: { id: solo }
  - model_name: rescue
    litellm_params: { model: openai/rescue, api_base: ${b.url}, api_key: sk-up }
    model_info: { id: rescue }
`
}

/** Requests to upstream `u` for model `model` (the deployment's own model name). */
const hits = (u: FakeUpstream, model: string) => u.requestsTo('chat').filter((r) => r.body?.model === model).length

async function call(client: OpenAI, model: string) {
  return client.chat.completions.create({ model, messages }).withResponse()
    .then(({ response }) => ({ status: 200, id: response.headers.get('x-litellm-model-id'), retryAfter: null as string | null, message: '' }),
      (e: InstanceType<typeof OpenAI.APIError>) => ({ status: e.status ?? -1, id: e.headers?.get('x-litellm-model-id') ?? null, retryAfter: e.headers?.get('retry-after') ?? null, message: e.message }))
}

async function setup(t: Test) {
  const a = await startUpstream(t)
  const b = await startUpstream(t)
  const clock = fakeClock()
  const gw = await startGateway(t, `
pipeline: [request-id, router]
upstream:
  - fallback: { fallbacks: [{ guarded: [rescue] }] }
  - cooldown: { allowed_fails: 1, cooldown_time: 5 }
  - retry: { num_retries: 1, initial_backoff_ms: 0 }
${models(a, b, ['gpt-4o', 'rl', 'both', 'guarded', 'bad'])}`, { plugins: [cooldown, fallback], clock })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })
  return { a, b, clock, gw, client }
}

t.test('in process', async (t) => {
  const { a, b, clock, gw, client } = await setup(t)

  t.test('more than allowed_fails 5xx in a minute: out for cooldown_time, then back', async (t) => {
    a.on('chat', errorReply(500, { message: 'a is broken' }))
    t.equal((await call(client, 'gpt-4o')).id, 'gpt-4o-b', '1st failure: retried on b')
    t.equal(hits(a, 'gpt-4o-a'), 1)
    t.equal((await call(client, 'gpt-4o')).id, 'gpt-4o-b', '2nd failure crosses allowed_fails 1')
    t.equal(hits(a, 'gpt-4o-a'), 2)
    for (let i = 0; i < 3; i++) t.equal((await call(client, 'gpt-4o')).id, 'gpt-4o-b')
    t.equal(hits(a, 'gpt-4o-a'), 2, 'no call reached a while it cooled')
    t.equal(hits(b, 'gpt-4o-b'), 5)
    t.ok(gw.logs.some((l) => l.msg === 'deployment cooling down' && l.deployment === 'gpt-4o-a' && l.status === 500), 'logged')
    a.on('chat', defaultChat())
    clock.ms += 4_900
    t.equal((await call(client, 'gpt-4o')).id, 'gpt-4o-b', 'still cooling at 4.9 s')
    clock.ms += 200
    t.equal((await call(client, 'gpt-4o')).id, 'gpt-4o-a', 'back after 5 s')
    t.equal(hits(a, 'gpt-4o-a'), 3)
  })

  t.test('a 429 cools at once', async (t) => {
    a.on('chat', errorReply(429, { message: 'slow down' }))
    t.equal((await call(client, 'rl')).id, 'rl-b')
    a.on('chat', defaultChat())
    t.equal((await call(client, 'rl')).id, 'rl-b', 'the next call skips a after one 429')
    t.equal(hits(a, 'rl-a'), 1)
  })

  t.test('a plain 400 does not count', async (t) => {
    a.on('chat', errorReply(400, { message: 'bad param' }))
    for (let i = 0; i < 3; i++) t.equal((await call(client, 'bad')).status, 400)
    t.equal(hits(a, 'bad-a'), 3, 'every call still reaches a (and a 400 is not retried on b)')
    t.equal(hits(b, 'bad-b'), 0)
    a.on('chat', defaultChat())
  })

  t.test('a group of one is never cooled', async (t) => {
    a.on('chat', errorReply(429, { message: 'slow down' }))
    for (let i = 0; i < 4; i++) t.equal((await call(client, 'solo')).status, 429)
    t.equal(hits(a, 'solo'), 8, 'every call and its retry reach the only deployment')
    a.on('chat', defaultChat())
  })

  t.test('the whole group cooling: fail fast with 429 and retry-after; a fallback group answers when set', async (t) => {
    a.on('chat', errorReply(429, { message: 'a slow' }))
    b.on('chat', errorReply(429, { message: 'b slow' }))
    t.equal((await call(client, 'both')).status, 429, 'both deployments fail and cool')
    const before = a.requests.length + b.requests.length
    clock.ms += 2_000
    const r = await call(client, 'both')
    t.equal(r.status, 429)
    t.match(r.message, /No deployments available for selected model/)
    t.equal(r.retryAfter, '3', 'seconds until the first comes back')
    t.equal(a.requests.length + b.requests.length, before, 'no upstream call')
    // guarded cools the same way (b fails for every model but rescue), then its fallback answers at once
    const ok = defaultChat()
    const slow = errorReply(429, { message: 'b slow' })
    b.on('chat', (ctx) => (ctx.record.body?.model === 'rescue' ? ok : slow)(ctx))
    t.equal((await call(client, 'guarded')).id, 'rescue', 'guarded: both fail -> rescue')
    a.on('chat', defaultChat())
    const n = a.requests.length
    const g = await client.chat.completions.create({ model: 'guarded', messages }).withResponse()
    t.equal(g.response.headers.get('x-litellm-model-id'), 'rescue')
    t.equal(g.response.headers.get('x-litellm-attempted-fallbacks'), '1')
    t.equal(a.requests.length, n, 'the cooling group was not called')
    b.on('chat', defaultChat())
    clock.ms += 5_000
    t.equal((await call(client, 'both')).id, 'both-a', 'the group is back')
  })
})

t.test('two gateways on one real redis-server share a cooldown; Redis down -> in process, one warning', async (t) => {
  const redis = await startRedis(t)
  const a = await startUpstream(t)
  const b = await startUpstream(t)
  const clock = fakeClock()
  const yaml = `
pipeline: [request-id, { state-redis: { url: '${redis.url}' } }, router]
upstream:
  - cooldown: { allowed_fails: 1, cooldown_time: 5 }
  - retry: { num_retries: 1, initial_backoff_ms: 0 }
${models(a, b, ['gpt-4o', 'other'])}`
  const gw1 = await startGateway(t, yaml, { plugins: [cooldown, stateRedis], clock })
  const gw2 = await startGateway(t, yaml, { plugins: [cooldown, stateRedis], clock })
  const c1 = new OpenAI({ baseURL: `${gw1.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })
  const c2 = new OpenAI({ baseURL: `${gw2.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })

  a.on('chat', errorReply(429, { message: 'slow down' }))
  t.equal((await call(c1, 'gpt-4o')).id, 'gpt-4o-b', 'gateway 1: a fails, b answers')
  a.on('chat', defaultChat())
  t.equal((await call(c2, 'gpt-4o')).id, 'gpt-4o-b', 'gateway 2 skips a: it saw the cooldown gateway 1 set')
  t.equal(hits(a, 'gpt-4o-a'), 1)
  clock.ms += 5_100
  t.equal((await call(c2, 'gpt-4o')).id, 'gpt-4o-a', 'back for gateway 2 after cooldown_time')

  await redis.stop()
  a.on('chat', errorReply(429, { message: 'slow down' }))
  t.equal((await call(c1, 'other')).id, 'other-b', 'Redis down: calls still served')
  a.on('chat', defaultChat())
  t.equal((await call(c1, 'other')).id, 'other-b', 'the cooldown holds in process')
  t.equal((await call(c1, 'other')).id, 'other-b')
  t.equal(hits(a, 'other-a'), 1)
  const warnings = gw1.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('cooldown: Redis unreachable'))
  t.equal(warnings.length, 1, 'one warning for the outage')
})

t.test('allowed_fails_policy (LiteLLM config): a class gets its own count; a 429 no longer cools at once; 400s count when named', async (t) => {
  const a = await startUpstream(t)
  const b = await startUpstream(t)
  const clock = fakeClock()
  const gw = await startGateway(t, `
router_settings:
  num_retries: 0
  allowed_fails_policy: { RateLimitErrorAllowedFails: 2, BadRequestErrorAllowedFails: 1 }
${models(a, b, ['rl', 'bad'])}`, { clock })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })
  a.on('chat', (ctx) => (ctx.record.body?.model === 'rl-a'
    ? errorReply(429, { message: 'slow down' }) : errorReply(400, { message: 'bad param' }))(ctx))
  // order: a first. With the policy, a's 429s are allowed twice in the minute before it cools.
  for (let i = 0; i < 3; i++) await call(client, 'rl')
  t.equal(hits(a, 'rl-a'), 3, 'two 429s allowed, the third crosses the line')
  for (let i = 0; i < 2; i++) t.equal((await call(client, 'rl')).id, 'rl-b', 'then a is skipped')
  t.equal(hits(a, 'rl-a'), 3)
  // 400s do not count by status alone, but the policy names them: the second one cools a.
  for (let i = 0; i < 2; i++) t.equal((await call(client, 'bad')).status, 400)
  t.equal((await call(client, 'bad')).id, 'bad-b', 'a cooled after two 400s (BadRequestErrorAllowedFails: 1)')
  t.equal(hits(a, 'bad-a'), 2)
  t.ok(gw.logs.some((l) => l.msg === 'deployment cooling down' && l.deployment === 'bad-a' && l.status === 400))
})
