/**
 * rate-limit through Redis: two gateways (one SQLite file, one real redis-server, one fake clock) share each scope's
 * window and parallel slots exactly; a crashed replica's slots free themselves after the lease while live ones are
 * renewed; a gateway whose Redis dies keeps serving on its own counters with one warning, and goes back to Redis.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { Redis } from 'ioredis'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { defaultChat, startUpstream, type Behaviour, type ReplyContext } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'
import { tempDb } from './keys-harness.js'
import rateLimit from '../../plugins/rate-limit/index.js'
import { createRedisWindows } from '../../plugins/rate-limit/windows-redis.js'

const MASTER = 'sk-master-rlr-1234'
/** Parallel slot lease for these gateways: 300 ms, so the heartbeat (a third of it) runs during a test. */
const LEASE_MS = 300
let now = Date.UTC(2030, 0, 1, 0, 0, 5)
const clock = { now: () => now }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const up = await startUpstream(t)
const redis = await startRedis(t)
const db = tempDb(t)

function gatewayOn(t: Test, redisUrl: string, dbPath: string): Promise<TestGateway> {
  return startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(dbPath)} }
  - state-redis: { url: ${redisUrl} }
  - auth: { master_key: ${MASTER} }
  - keys
  - rate-limit: { lease_ms: ${LEASE_MS} }
  - router
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up }
`, { plugins: [rateLimit], clock })
}

const a = await gatewayOn(t, redis.url, db)
const b = await gatewayOn(t, redis.url, db)

async function newKey(gw: TestGateway, body: Record<string, unknown>): Promise<{ key: string; token: string }> {
  const r = await jsonCall(gw.url, 'POST', '/key/generate', body, MASTER)
  if (r.status !== 200) throw new Error(`key/generate: ${JSON.stringify(r.body)}`)
  return { key: r.body.key, token: r.body.token }
}
const HI = [{ role: 'user' as const, content: 'hi' }]
function chat(gw: TestGateway, key: string) {
  return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 }).chat.completions.create({ model: 'gpt-4o-mini', messages: HI })
}
/** 'ok', or the refused call's status. */
const outcome = (p: Promise<unknown>) => p.then(() => 'ok' as const, (e: any) => e?.status as number)

function gate() {
  const waiting: Array<() => void> = []
  const behaviour: Behaviour = async (ctx: ReplyContext) => {
    await new Promise<void>((resolve) => waiting.push(resolve))
    await defaultChat()(ctx)
  }
  return { behaviour, waiting, releaseAll: () => { for (const r of waiting.splice(0)) r() } }
}
async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await sleep(5)
  }
}

t.test('two gateways share one RPM window exactly: limit 20, 40 calls over both -> 20 admitted', async (t) => {
  const { key } = await newKey(a, { rpm_limit: 20 })
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => outcome(chat(i % 2 ? a : b, key))))
  t.equal(results.filter((r) => r === 'ok').length, 20, 'exactly 20 admitted')
  t.equal(results.filter((r) => r === 429).length, 20, 'the other 20 refused with 429')
  now += 60_000
  t.equal(await outcome(chat(b, key)), 'ok', 'the next minute admits again')
})

t.test('max_parallel_requests holds across both gateways', async (t) => {
  const { key } = await newKey(b, { max_parallel_requests: 2 })
  const g = gate()
  up.on('chat', g.behaviour)
  t.teardown(() => { g.releaseAll(); up.on('chat', defaultChat()) })
  const settled: unknown[] = []
  const first = outcome(chat(a, key)).then((r) => (settled.push(r), r))
  const second = outcome(chat(b, key)).then((r) => (settled.push(r), r))
  // A loaded CI machine (the full suite runs two files at once) can take seconds here: wait generously, and say
  // what came back early if a call did not reach the upstream.
  await until(`two calls in flight (settled early: ${JSON.stringify(settled)})`, () => g.waiting.length === 2 || settled.length > 0, 20_000)
  t.same(settled, [], 'neither of the first two calls was refused')
  t.equal(await outcome(chat(a, key)), 429, 'third call on gateway A refused')
  t.equal(await outcome(chat(b, key)), 429, 'third call on gateway B refused')
  g.releaseAll()
  t.same(await Promise.all([first, second]), ['ok', 'ok'])
  up.on('chat', defaultChat())
  await sleep(50) // the done handlers free the slots in Redis: one round trip after the responses
  t.equal(await outcome(chat(a, key)), 'ok', 'slots were freed')
})

t.test('slots of a crashed instance free after the lease; live slots are renewed', async (t) => {
  const { key, token } = await newKey(a, { max_parallel_requests: 2 })
  // The "crashed" replica: same Redis, same key prefix, takes both slots and then stops renewing (no finish),
  // which is exactly what Redis sees of a SIGKILLed process.
  const other = new Redis(redis.url, { keyPrefix: 'sy:', lazyConnect: true })
  await other.connect()
  t.teardown(() => other.disconnect())
  const crashed = createRedisWindows({ redis: other, now: () => now, leaseMs: LEASE_MS })
  const scopes = [{ scope: `key:${token}`, rpm: null, tpm: null, parallel: 2 }]
  t.equal((await crashed.admit(scopes, now, 0, 'crashed:1')).ok, true)
  t.equal((await crashed.admit(scopes, now, 0, 'crashed:2')).ok, true)
  await crashed.close()
  t.equal(await outcome(chat(a, key)), 429, 'both slots held by the dead instance')

  // The lease runs out: the dead instance's slots lapse, and a call on gateway B takes one.
  now += 10 * LEASE_MS
  const g = gate()
  up.on('chat', g.behaviour)
  t.teardown(() => { g.releaseAll(); up.on('chat', defaultChat()) })
  const live = outcome(chat(b, key))
  await until('the live call admitted', () => g.waiting.length === 1)
  t.pass('a crashed instance\'s slots freed after the lease')
  // Time passes beyond the lease again while B's call lives: B's heartbeat renews its slot, so it still counts.
  now += 10 * LEASE_MS
  await sleep(LEASE_MS) // at least two heartbeats of gateway B
  const next = outcome(chat(a, key))
  await until('a second call admitted', () => g.waiting.length === 2)
  t.equal(await outcome(chat(a, key)), 429, 'the live call still holds its renewed slot')
  g.releaseAll()
  t.same(await Promise.all([live, next]), ['ok', 'ok'])
})

t.test('Redis dies: the gateway keeps serving on its own counters with one warning, then goes back to Redis', async (t) => {
  const r2 = await startRedis(t)
  const gw = await gatewayOn(t, r2.url, tempDb(t))
  const key = await newKey(gw, { rpm_limit: 1000 })
  const limited = await newKey(gw, { rpm_limit: 3 })
  t.equal(await outcome(chat(gw, key.key)), 'ok')
  // Down for 3 s (a SIGKILL, as an outage looks), then back on the same port with every key gone.
  const back = r2.restart(3_000)
  await until('redis killed', () => r2.pid() === undefined)
  const statuses: Array<string | number> = []
  // Calls over ~2.5 s: Redis is retried every second, fails again, and no second warning is written.
  for (let i = 0; i < 10; i++) {
    statuses.push(await outcome(chat(gw, key.key)))
    await sleep(250)
  }
  t.same(statuses, Array(10).fill('ok'), 'no 5xx while Redis is down')
  const warnings = gw.logs.filter((l) => l.level === 'warn' && String(l.msg).startsWith('rate-limit: Redis unreachable'))
  t.equal(warnings.length, 1, 'one warning for the outage')
  const local = await Promise.all(Array.from({ length: 5 }, () => outcome(chat(gw, limited.key))))
  t.same(local.filter((s) => s === 'ok').length, 3, 'limits still hold on the local counters')
  await back
  const deadline = Date.now() + 10_000
  while (!gw.logs.some((l) => String(l.msg).startsWith('rate-limit: Redis answers again'))) {
    if (Date.now() > deadline) throw new Error('rate-limit never went back to Redis')
    t.equal(await outcome(chat(gw, key.key)), 'ok')
    await sleep(200)
  }
  t.pass('back on Redis once it answers')
  t.equal(gw.logs.filter((l) => String(l.msg).startsWith('rate-limit: Redis unreachable')).length, 1, 'still one warning')
})
