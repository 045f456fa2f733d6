/**
 * priority-queue, per-minute capacity shared through Redis: two gateways (one SQLite file, one real redis-server, one
 * injected clock) in front of one fake upstream, called through the official openai client. Groups: `gpt` (two
 * deployments of rpm 2: rpm 4 for the whole fleet) and `tok` (tpm 100).
 *
 * The clock stands still unless the test moves it. Minute boundaries are crossed by moving it and running the
 * plugin's `fireMinuteBoundaries` hook on ONE gateway (its PUMP admits the waiters of both). A waiter's liveness in
 * Redis is a few seconds of that clock, renewed by each gateway's heartbeat (1 s), so a long move is made in two
 * steps: to 2 s before the boundary, a pause of 1.5 s for the heartbeats, then just past it.
 */
import t from 'tap'
import OpenAI from 'openai'
import { Redis } from 'ioredis'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'
import { queueStatus, taggedUpstream, until } from './pq-upstream.js'
import { refused } from '../helpers/assert.js'
import { tempDb } from './keys-harness.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import priorityQueue, { fireMinuteBoundaries } from '../../plugins/priority-queue/index.js'
import { MINUTE_MS, minuteOf } from '../../plugins/priority-queue/minute.js'

const MASTER = 'sk-master-pqrr-1234'
const HOLD_MS = 50
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let fake = Date.UTC(2030, 0, 1, 0, 0, 10)
const clock = { now: () => fake }
/** Cross the next minute boundary (see the header: two steps, so the heartbeats keep every waiter alive). */
async function crossBoundary(): Promise<void> {
  const next = (minuteOf(fake) + 1) * MINUTE_MS
  fake = next - 2_000
  await sleep(1_500)
  fake = next + 1
}

// ---- the upstream: arrivals by tag (first word of the prompt); holds calls and reports usage on demand ----
const tagged = taggedUpstream(HOLD_MS)
const { arrivals, usageOf, hold } = tagged

const up = await startUpstream(t, { chat: tagged.behaviour })
const redis = await startRedis(t)
const db = tempDb(t)
const gateway = () => startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(db)} }
  - state-redis: { url: ${redis.url}, key_prefix: 'sy:' }
  - auth: { master_key: ${MASTER} }
  - priority-queue: { lease_ms: 3000, queue_timeout_ms: 20000 }
  - router
model_list:
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up, rpm: 2 }
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up, rpm: 2 }
  - model_name: tok
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up, tpm: 100 }
`, { plugins: [priorityQueue], clock })
const a = await gateway()
const b = await gateway()
const cradleOf = (gw: TestGateway) => gw.gateway.container.cradle

const clients = new Map<TestGateway, OpenAI>()
function chat(gw: TestGateway, model: string, content: string, extra: Record<string, unknown> = {}) {
  let c = clients.get(gw)
  if (!c) clients.set(gw, (c = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER, maxRetries: 0, timeout: 30_000 })))
  return c.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra } as any)
}
const status = (gw: TestGateway, model: string) => queueStatus(gw.url, model, MASTER)
const untilStatus = (gw: TestGateway, model: string, ok: (s: any) => boolean, what: string) =>
  until(() => status(gw, model), (s) => !!s && ok(s), what)
const arrivalsReach = (n: number) => until(() => arrivals.length, (x) => x >= n, `${n} upstream arrivals`)

t.test('rpm 4 across two gateways: 4 calls per minute for the fleet, the waiting ones in priority order', async (t) => {
  arrivals.length = 0
  // 12 calls at once, split across both gateways, priorities shuffled.
  const priorities = [7, 3, 11, 5, 1, 9, 6, 2, 10, 4, 0, 8]
  const calls = priorities.map((p, i) => chat(i % 2 ? a : b, 'gpt', `p${p} hello`, { priority: p }))
  const st = await untilStatus(a, 'gpt', (s) => s.rpmUsed === 4 && s.queued === 8, '4 admitted, 8 queued')
  t.match(st, { capacity: null, rpm: 4, tpm: null }, 'status shows the fleet\'s rpm capacity')
  t.match(await status(b, 'gpt'), { rpmUsed: 4, queued: 8 }, 'the other gateway reads the same minute from Redis')
  await untilStatus(a, 'gpt', (s) => s.inFlight === 0, 'the first 4 finished')
  const first = arrivals.slice()
  t.equal(first.length, 4, 'four calls went at once, though two gateways admitted them')
  const rest = priorities.map((p) => `p${p}`).filter((x) => !first.includes(x)).sort((x, y) => Number(x.slice(1)) - Number(y.slice(1)))

  // Heartbeats run every second on both gateways: none admits anyone while the minute is used up.
  await sleep(1_200)
  t.equal(arrivals.length, 4, 'nobody else started this minute')

  await crossBoundary()
  t.equal(await fireMinuteBoundaries(cradleOf(a)), 1, 'gateway A had one boundary timer set, for the group')
  await arrivalsReach(8)
  t.same(arrivals.slice(4, 8).sort(), rest.slice(0, 4).sort(),
    'the next minute admits the 4 best waiting, on both gateways, from one gateway\'s boundary pump')
  t.match(await untilStatus(b, 'gpt', (s) => s.inFlight === 0, 'second wave done'), { rpmUsed: 4, queued: 4 })
  await sleep(300)
  t.equal(arrivals.length, 8, 'still 4 per minute')

  await crossBoundary()
  t.equal(await fireMinuteBoundaries(cradleOf(b)), 1, 'gateway B had its timer set too')
  await arrivalsReach(12)
  t.same(arrivals.slice(8).sort(), rest.slice(4).sort(), 'the last 4 the minute after')
  const done = await Promise.all(calls)
  t.equal(done.length, 12, 'every call completed')
  t.equal(arrivals.length, 12, 'each reached the upstream once')

  // The minute's counts live in one hash per group and minute that expires after 2 minutes.
  const r = new Redis(redis.url)
  t.teardown(() => r.disconnect())
  const key = `sy:{pq:gpt}:m:${minuteOf(fake)}`
  t.same(await r.hgetall(key), { r: '4' }, 'the minute hash counts the calls admitted in it')
  const ttl = await r.pttl(key)
  t.ok(ttl > 0 && ttl <= 120_000, `and expires within 2 minutes (${ttl} ms)`)
})

t.test('no priority while the fleet\'s rpm is used up: 429 with retry-after = seconds left in the minute', async (t) => {
  await crossBoundary()
  fake += 9_999   // 10 s into the minute: 50 s left
  for (let i = 0; i < 4; i++) await chat(i % 2 ? a : b, 'gpt', `np${i} hello`)
  const e = await refused(t, chat(a, 'gpt', 'np4 hello'), 'a fifth no-priority call this minute')
  t.equal(e.headers.get('retry-after'), '50')
  t.match(e.error?.message, /per-minute capacity \(rpm 4\) is used up this minute/)
})

t.test('tpm 100 across two gateways: the real usage replaces the estimate in Redis and admits the next waiter', async (t) => {
  await crossBoundary()
  arrivals.length = 0
  const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ')
  const ca = `ta ${words(55)}`
  const cb = `tb ${words(55)}`
  const estimate = (content: string) => Math.ceil(promptTokensEstimate('chat', { messages: [{ role: 'user', content }] }))
  const ea = estimate(ca)
  const eb = estimate(cb)
  t.ok(ea + eb > 100 && 10 + eb <= 100, `${ea} + ${eb} do not fit; 10 + ${eb} do`)

  const releaseA = hold('ta')
  usageOf.set('ta', 10)
  const callA = chat(a, 'tok', ca, { priority: 1 })
  await arrivalsReach(1)
  t.match(await status(b, 'tok'), { capacity: null, rpm: null, tpm: 100, rpmUsed: 1, tpmUsed: ea }, 'the estimate counts at admission')

  const releaseB = hold('tb')
  usageOf.set('tb', 80)
  const callB = chat(b, 'tok', cb, { priority: 1 })
  await untilStatus(a, 'tok', (s) => s.queued === 1, 'the second large call waits on the other gateway')
  const e = await refused(t, chat(a, 'tok', 'tc hi'), 'a small no-priority call behind a waiter held by tpm')
  t.ok(Number(e.headers.get('retry-after')) >= 55, 'its retry-after is the rest of the minute')

  releaseA()
  await callA
  await arrivalsReach(2)
  t.same(arrivals, ['ta', 'tb'], 'A\'s real 10 tokens left room for B: A\'s release admitted it on the other gateway')
  t.match(await status(a, 'tok'), { tpmUsed: 10 + eb, queued: 0 })
  releaseB()
  await callB
  await untilStatus(a, 'tok', (s) => s.tpmUsed === 90, 'B\'s real 80 tokens replace its estimate')
  t.pass('the minute holds 10 + 80 real tokens')
})
