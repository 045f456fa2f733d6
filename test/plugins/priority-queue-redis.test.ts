/**
 * priority-queue shared through Redis: two gateways (one SQLite file, one real redis-server) in front of one fake
 * upstream that counts the calls it holds at once, called through the official openai client. Capacity, priority
 * order and the no-priority refusal hold across both; a disconnect leaves the shared queue; a dead replica's slots
 * lapse after the lease; when Redis dies the queued calls finish in process and none gets a 5xx.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { Redis } from 'ioredis'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { defaultChat, delay, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'
import { tempDb } from './keys-harness.js'
import type { Counter } from './pq-upstream.js'
import priorityQueue from '../../plugins/priority-queue/index.js'
import { RedisGate, type GroupParams } from '../../plugins/priority-queue/gate-redis.js'

const MASTER = 'sk-master-pqr-1234'
/**
 * Slot lease of the gateways: 3 s (heartbeat 1 s), long enough that a loaded machine's event-loop stalls never let a
 * live slot lapse. The "dead replica" takes its slots with a 300 ms lease, so they lapse within the test.
 */
const LEASE_MS = 3_000
const DEAD_LEASE_MS = 300
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Upstream arrivals closer than this belong to one burst (calls held alike free their slots together), ms. */
const BURST_MS = 100

const counter: Counter = { arrivals: [], current: 0, max: 0, inFlightAt: [], times: [] }
const open = new Set<string>()
let holdMs = 150

/** Counts concurrent requests; each is held `holdMs` (read per call, so a test can change it). */
/** While set, the next `heldLeft` calls wait for it before their hold (a first wave the test releases). */
let firstWave: Promise<void> | null = null
let heldLeft = 0
const counted: Behaviour = async (ctx) => {
  const tag = String(ctx.record.body?.messages?.[0]?.content ?? '')
  counter.current++
  counter.max = Math.max(counter.max, counter.current)
  counter.arrivals.push(tag)
  open.add(tag)
  counter.inFlightAt.push([...open])
  counter.times.push(Date.now())
  void ctx.closed.then(() => {
    counter.current--
    open.delete(tag)
  })
  if (firstWave && heldLeft-- > 0) await Promise.race([firstWave, ctx.closed])
  await delay(holdMs, defaultChat())(ctx)
}
function resetCounter(): void {
  counter.arrivals.length = 0
  counter.inFlightAt.length = 0
  counter.times.length = 0
  counter.max = 0
}

const up = await startUpstream(t, { chat: counted })
const redis = await startRedis(t)
const db = tempDb(t)

function gatewayOn(t: Test, redisUrl: string, dbPath: string, pq = '', prefix = 'sy:'): Promise<TestGateway> {
  return startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(dbPath)} }
  - state-redis: { url: ${redisUrl}, key_prefix: '${prefix}' }
  - auth: { master_key: ${MASTER} }
  - keys
  - priority-queue: { lease_ms: ${LEASE_MS}, queue_timeout_ms: 20000${pq} }
  - router
model_list:
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up, max_parallel_requests: 1 }
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up, max_parallel_requests: 1 }
  - model_name: res
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up }
`, { plugins: [priorityQueue] })
}

const a = await gatewayOn(t, redis.url, db)
const b = await gatewayOn(t, redis.url, db)

const client = (gw: TestGateway, key = MASTER) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 })
function chat(gw: TestGateway, tag: string, extra: Record<string, unknown> = {}, signal?: AbortSignal, key = MASTER, model = 'gpt') {
  return client(gw, key).chat.completions.create({ model, messages: [{ role: 'user', content: tag }], ...extra } as any,
    signal ? { signal } : undefined)
}
/** 'ok', or the refused call's status. */
const outcome = (p: Promise<unknown>) => p.then(() => 'ok' as const, (e: any) => (e?.status as number) ?? String(e))

async function status(gw: TestGateway): Promise<any> {
  const r = await jsonCall(gw.url, 'GET', '/queue/status', undefined, MASTER)
  if (r.status !== 200) throw new Error(`queue/status: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}
async function untilStatus(gw: TestGateway, ok: (s: any) => boolean, what: string, timeoutMs = 10_000, model = 'gpt'): Promise<any> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = (await status(gw)).models?.[model]
    if (s && ok(s)) return s
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}; last status ${JSON.stringify(s)}`)
    await sleep(10)
  }
}

t.test('capacity 2 across two gateways: priority-0 calls overtake a priority-100 backlog queued on both', async (t) => {
  resetCounter()
  // The first two calls are held until the test has seen everyone queued behind them, however slow the machine.
  let release!: () => void
  firstWave = new Promise<void>((r) => (release = r))
  heldLeft = 2
  t.teardown(() => { release(); firstWave = null })
  const finished: string[] = []
  const call = (gw: TestGateway, tag: string, priority: number) =>
    chat(gw, tag, { priority }).then(() => void finished.push(tag))
  const low: Promise<void>[] = []
  for (let i = 0; i < 20; i++) {
    low.push(call(i % 2 ? a : b, `low-${i}`, 100))
    // Arrival order across replicas is the order the calls joined the shared queue: each call is seen there (or in
    // a slot) before the next is sent, so a loaded machine cannot reorder two sends to different gateways.
    if (i < 2) await untilStatus(a, (x) => x.inFlight === i + 1, `low-${i} in flight`)
    else await untilStatus(a, (x) => x.queued === i - 1, `low-${i} queued`)
  }
  const st = await untilStatus(a, (x) => x.queued === 18, '18 low calls queued in Redis')
  t.equal(st.capacity, 2)
  t.equal(st.inFlight, 2)
  t.equal(st.priorities['100'].queued, 18, 'status read on gateway A counts the waiters of both gateways')
  t.same((await status(b)).models.gpt.queued, 18, 'gateway B sees the same queue')
  const high = Array.from({ length: 5 }, (_, i) => call(i % 2 ? a : b, `high-${i}`, 0))
  await untilStatus(b, (x) => x.queued === 23, 'high calls queued')
  release()
  await Promise.all([...low, ...high])

  const highAt = counter.arrivals.map((x, i) => (x.startsWith('high-') ? i : -1)).filter((i) => i >= 0)
  t.same(highAt, [2, 3, 4, 5, 6], 'the five priority-0 calls reach the upstream right after the two in flight', { arrivals: counter.arrivals })
  // Slots free in pairs (both calls are held equally long), so two calls are admitted together and may reach the
  // upstream in either order: each low call is within one place of its arrival rank.
  const lows = counter.arrivals.filter((x) => x.startsWith('low-'))
  const misplaced = lows.filter((x, i) => Math.abs(Number(x.slice(4)) - i) > 1)
  t.same(misplaced, [], 'equal priorities keep arrival order across both gateways', { lows })
  const lastHighDone = Math.max(...Array.from({ length: 5 }, (_, i) => finished.indexOf(`high-${i}`)))
  t.ok(lastHighDone < 7, `every priority-0 call finished before the low backlog (last at #${lastHighDone})`)
  t.equal(counter.arrivals.length, 25, 'every call reached the upstream once')
  t.equal(counter.max, 2, 'the upstream never held more than 2 at once, though two gateways admitted calls')
  await sleep(50)
  const after = await untilStatus(a, (x) => x.inFlight === 0, 'every slot freed')
  t.equal(after.queued, 0)
})

t.test('no priority at capacity is refused at once on the other gateway; a disconnect leaves the shared queue', async (t) => {
  resetCounter()
  holdMs = 600
  t.teardown(() => { holdMs = 150 })
  const held = [outcome(chat(a, 'hold-1', { priority: 5 })), outcome(chat(a, 'hold-2', { priority: 5 }))]
  await untilStatus(b, (x) => x.inFlight === 2, 'two slots held through gateway A')
  const started = Date.now()
  const refused = await chat(b, 'no-priority').then(() => null, (e: any) => e)
  t.equal(refused?.status, 429, 'a call without priority on gateway B gets 429')
  t.ok(Date.now() - started < 500, 'at once, not after a wait')
  t.ok(Number(refused?.headers?.get?.('retry-after')) >= 1, 'with retry-after')

  const ac = new AbortController()
  const gone = outcome(chat(b, 'leaves', { priority: 1 }, ac.signal))
  await untilStatus(a, (x) => x.queued === 1, 'the call queued on B is visible from A')
  ac.abort()
  await untilStatus(a, (x) => x.queued === 0, 'the aborted call left the shared queue')
  t.not(await gone, 'ok', 'the aborted call did not complete')
  t.same(await Promise.all(held), ['ok', 'ok'])
  await sleep(100)
  t.notOk(counter.arrivals.includes('leaves'), 'the aborted call never reached the upstream')
  t.notOk(up.requests.some((r) => r.body && 'priority' in r.body), 'priority is never sent upstream')
})

t.test('a dead replica\'s slots lapse after the lease and wake the waiter', async (t) => {
  resetCounter()
  // The "dead" replica: a gate on its own client that takes both slots and stops (no release, no heartbeat).
  const other = new Redis(redis.url, { keyPrefix: 'sy:', lazyConnect: true })
  await other.connect()
  t.teardown(() => other.disconnect())
  const dead = new RedisGate({ redis: other, now: Date.now, leaseMs: DEAD_LEASE_MS, onState: () => {} })
  const p: GroupParams = { capacity: 2, rpm: Infinity, tpm: Infinity, levels: [''], limits: [Infinity], reserved: false, saturation: 0.8 }
  for (let i = 0; i < 2; i++) {
    const now = Date.now()
    const w = { group: 'gpt', level: '', priority: 0, tokens: 0, queuedAt: now, member: dead.newMember(now, 0), admit() {}, moved() {} }
    t.equal(await dead.enter(w, p, false), 'admitted')
  }
  await dead.stop()
  const started = Date.now()
  t.equal(await outcome(chat(a, 'after-dead', { priority: 3 })), 'ok', 'the queued call ran once the dead slots lapsed')
  const waited = Date.now() - started
  t.ok(waited >= DEAD_LEASE_MS * 0.8, `it waited for the lease (${waited} ms)`)
  // The waiting gateway's heartbeat (1 s) finds the lapsed leases and admits it.
  t.ok(waited < DEAD_LEASE_MS + 2_500, `and not much longer: the next heartbeat found the lapsed leases (${waited} ms)`)
})

t.test('Redis dies with calls queued: they finish in process, none gets a 5xx; the gateways share again after', async (t) => {
  const r2 = await startRedis(t)
  const db2 = tempDb(t)
  const c = await gatewayOn(t, r2.url, db2)
  const d = await gatewayOn(t, r2.url, db2)
  resetCounter()
  holdMs = 200
  t.teardown(() => { holdMs = 150 })
  const calls = Array.from({ length: 12 }, (_, i) => outcome(chat(i % 2 ? c : d, `outage-${i}`, { priority: i % 3 })))
  await untilStatus(c, (x) => x.queued >= 8, 'calls queued in Redis')
  // Killed now (SIGKILL, as an outage looks), back on the same port, empty, after 2.5 s.
  const back = r2.restart(2_500)
  const results = await Promise.all(calls)
  t.same(results.filter((r) => r !== 'ok'), [], 'every queued call completed while Redis was down')
  const more = await Promise.all(Array.from({ length: 6 }, (_, i) => outcome(chat(i % 2 ? c : d, `down-${i}`, { priority: 1 }))))
  t.same(more.filter((r) => r !== 'ok'), [], 'new calls are served on in-process gates')
  const st = await status(c)
  t.ok(st.redis_fallbacks > 0, `fallbacks are counted (${st.redis_fallbacks})`)

  await back
  resetCounter()
  // Once Redis answers, capacity is shared again: 8 calls through both gateways, never more than 2 at the upstream.
  const deadline = Date.now() + 10_000
  for (;;) {
    const probe = await status(c)
    const o = await outcome(chat(c, 'probe', { priority: 1 }))
    if (probe.models.gpt && probe.models.gpt.local === undefined && o === 'ok') break
    if (Date.now() > deadline) throw new Error(`Redis never came back for the gateway: ${JSON.stringify(probe)} ${o}`)
    await sleep(100)
  }
  resetCounter()
  const again = await Promise.all(Array.from({ length: 8 }, (_, i) => outcome(chat(i % 2 ? c : d, `back-${i}`, { priority: 1 }))))
  t.same(again.filter((r) => r !== 'ok'), [], 'all served after Redis is back')
  t.equal(counter.max, 2, 'and the two gateways share capacity 2 again')
})

t.test('priority_reservation {prod: 0.9, dev: 0.1} holds across two gateways under saturation', async (t) => {
  // Own gateways (own key prefix in the same Redis): a reservation changes every group's admission rules.
  const dbr = tempDb(t)
  const pq = ', max_parallel_requests: { res: 10 }, priority_reservation: { prod: 0.9, dev: 0.1 }'
  const c = await gatewayOn(t, redis.url, dbr, pq, 'syres:')
  const d = await gatewayOn(t, redis.url, dbr, pq, 'syres:')
  const keyOf = async (level: string) => {
    const r = await jsonCall(c.url, 'POST', '/key/generate', { metadata: { priority: level } }, MASTER)
    if (r.status !== 200) throw new Error(`key/generate: ${JSON.stringify(r.body)}`)
    return r.body.key as string
  }
  const prodKey = await keyOf('prod')
  const devKey = await keyOf('dev')
  resetCounter()
  holdMs = 400
  t.teardown(() => { holdMs = 150 })
  let release!: () => void
  firstWave = new Promise<void>((r) => (release = r))
  heldLeft = 10
  t.teardown(() => { release(); firstWave = null })
  const calls: Array<Promise<unknown>> = []
  // dev first, through gateway C: below the threshold it borrows idle capacity (8 of 10 slots).
  for (let i = 0; i < 20; i++) calls.push(chat(c, `dev-${i}`, {}, undefined, devKey, 'res'))
  await untilStatus(d, (x) => x.inFlight === 8 && x.queued === 12, 'dev saturating, seen from D', 10_000, 'res')
  // prod through both gateways, queued behind the first wave.
  for (let i = 0; i < 50; i++) calls.push(chat(i % 2 ? c : d, `prod-${i}`, {}, undefined, prodKey, 'res'))
  const st = await untilStatus(c, (x) => x.queued === 60, 'prod queued behind', 10_000, 'res')
  t.match(st.levels, { dev: { inFlight: 8, limit: 1 }, prod: { inFlight: 2, limit: 9 } })
  release()
  await Promise.all(calls)

  t.equal(counter.max, 10, 'capacity 10 was used in full and never exceeded by the two gateways together')
  const lastProd = counter.arrivals.findLastIndex((x) => x.startsWith('prod-'))
  // Calls admitted together (slots that freed together) reach the upstream in any order. The burst that holds the
  // last prod call also holds the dev calls admitted once prod's queue was empty (below the saturation threshold
  // again): the window ends before that burst.
  const end = counter.times.findIndex((at) => at >= counter.times[lastProd]! - BURST_MS)
  const window = counter.arrivals.slice(10, end)
  const prod = window.filter((x) => x.startsWith('prod-')).length
  const dev = window.length - prod
  t.ok(window.length >= 40, `the window holds ${window.length} calls`)
  // Capacity share: whenever all 10 slots were busy under saturation, prod held at least 9 of them.
  const full = counter.inFlightAt.slice(10, end).filter((o) => o.length === 10)
  const prodSlots = full.reduce((n, o) => n + o.filter((x) => x.startsWith('prod-')).length, 0)
  t.ok(full.length > 0 && prodSlots / (10 * full.length) >= 0.9, `prod held ${prodSlots} of ${10 * full.length} busy slots (>= 90 %)`)
  // Admissions: 90 % of them, give or take the one call a window's edges can cut through a 10-slot cycle.
  t.ok(prod >= Math.floor(0.9 * window.length) - 1, `prod share of admissions ${prod}/${window.length} ~ 90 %`)
  t.ok(dev > 0, `dev still got ${dev} calls`)
  const devMax = Math.max(...counter.inFlightAt.slice(20, end).map((o) => o.filter((x) => x.startsWith('dev-')).length))
  t.ok(devMax <= 1, `dev in flight under saturation: at most ${devMax}`)
})
