/**
 * priority-queue, per-minute capacity in process: a real gateway (SQLite store, auth, priority-queue, router) in front
 * of a fake upstream, called through the official openai client. Groups: `gpt` (two deployments, rpm 1 and 2: rpm 3),
 * `tok` (tpm 100), `mixed` (one deployment without rpm: no rpm gate).
 *
 * The gateway's clock is real time plus an offset the test moves, so minutes roll on demand. The boundary timer is
 * set from that clock's distance to the next minute, in real ms: after a jump the test runs the timers with the
 * plugin's `fireMinuteBoundaries` hook (a jump does not move a real timer), and one test leaves the clock 3 s before a
 * boundary and lets the real timer fire by itself.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'
import { queueStatus, taggedUpstream, until } from './pq-upstream.js'
import { refused } from '../helpers/assert.js'
import { tempDb } from './keys-harness.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import priorityQueue, { fireMinuteBoundaries } from '../../plugins/priority-queue/index.js'
import { CapacityGate } from '../../plugins/priority-queue/queue.js'
import { MINUTE_MS, minuteOf } from '../../plugins/priority-queue/minute.js'

const MASTER = 'sk-master-pq-rpm-1234'
/** How long the upstream holds a call it was not told to hold longer, ms. */
const HOLD_MS = 50
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---- the clock: real time plus an offset ----
let offset = Date.UTC(2030, 0, 1) - Date.now()
const clock = { now: () => Date.now() + offset }
/** Move the clock forward to `msInto` ms into the next minute. */
function jumpTo(msInto: number): void {
  const target = (minuteOf(clock.now()) + 1) * MINUTE_MS + msInto
  offset += target - clock.now()
}

// ---- the upstream: records arrivals (tag = first word of the prompt, real arrival time); holds calls on demand ----
const tagged = taggedUpstream(HOLD_MS)
const { arrivals, arrivedAt, usageOf, hold } = tagged

const up = await startUpstream(t, { chat: tagged.behaviour })
const gw = await startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(tempDb(t))} }
  - auth: { master_key: ${MASTER} }
  - priority-queue: { queue_timeout_ms: 20000 }
  - router
model_list:
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up, rpm: 1 }
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up, rpm: 2 }
  - model_name: tok
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up, tpm: 100 }
  - model_name: mixed
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up, rpm: 1 }
  - model_name: mixed
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up }
`, { plugins: [priorityQueue], clock })
const cradle = gw.gateway.container.cradle

const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER, maxRetries: 0, timeout: 30_000 })
function chat(model: string, content: string, extra: Record<string, unknown> = {}, signal?: AbortSignal) {
  return client.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra } as any,
    signal ? { signal } : undefined)
}

const status = (model: string) => queueStatus(gw.url, model, MASTER)
const untilStatus = (model: string, ok: (s: any) => boolean, what: string) => until(() => status(model), (s) => !!s && ok(s), what)
const arrivalsReach = (n: number) => until(() => arrivals.length, (x) => x >= n, `${n} upstream arrivals`)

t.test('the gate: parallel and rpm together; the boundary timer is the only wake-up for the minute', async (t) => {
  let now = Date.UTC(2030, 5, 1, 0, 0, 30)
  const gate = new CapacityGate(1, { shares: new Map(), saturationThreshold: 0.8 }, { rpm: 2, tpm: Infinity, now: () => now })
  t.teardown(() => gate.close())
  const admitted: string[] = []
  const w = (tag: string, priority: number, seq: number) =>
    ({ priority, seq, level: '', queuedAt: now, index: -1, admit: () => void admitted.push(tag) })
  t.equal(gate.refuses('', 0), null)
  gate.take('', 1)
  t.equal(gate.refuses('', 0), 'parallel', 'the one parallel slot is taken')
  gate.enqueue(w('b', 5, 1))
  gate.enqueue(w('a', 1, 2))
  gate.enqueue(w('c', 9, 3))
  t.same(admitted, [])
  gate.release('', 1)
  t.same(admitted, ['a'], 'a release admits the best waiter (rpm 2: the second call of the minute)')
  gate.release('', 1)
  t.same(admitted, ['a'], 'the next release finds the minute used up: nobody starts')
  t.equal(gate.refuses('', 0), 'rpm')
  t.equal(gate.fireBoundary(), true, 'a boundary timer was set while a waiter is held by the minute')
  t.same(admitted, ['a'], 'firing it before the clock rolled admits no one (and sets it again)')
  now += 30_000
  t.same(admitted, ['a'], 'a rolled clock alone admits no one: nothing polls')
  t.equal(gate.fireBoundary(), true)
  t.same(admitted, ['a', 'b'], 'the boundary admits the best waiter; parallel 1 holds the next')
  gate.release('', 5)
  t.same(admitted, ['a', 'b', 'c'])
  t.equal(gate.fireBoundary(), false, 'no timer is left once nobody waits')
  t.match(gate.status(now), { capacity: 1, rpm: 2, tpm: null, rpmUsed: 2, tpmUsed: 0, queued: 0 })
})

t.test('rpm 3 (deployments of rpm 1 and 2): 3 of 8 calls go at once, the rest wait for minute boundaries in priority order', async (t) => {
  jumpTo(1_000)
  arrivals.length = 0
  const priorities = [7, 3, 5, 1, 6, 2, 4, 0]
  const calls = priorities.map((p) => chat('gpt', `r${p} hello`, { priority: p }))
  const st = await untilStatus('gpt', (s) => s.rpmUsed === 3 && s.queued === 5, '3 admitted, 5 queued')
  t.match(st, { capacity: null, rpm: 3, tpm: null }, 'status shows the rpm capacity, summed over the deployments')
  await untilStatus('gpt', (s) => s.inFlight === 0, 'the first 3 calls finished')
  const first = arrivals.slice()
  t.equal(first.length, 3, 'three calls went at once')
  const rest = priorities.map((p) => `r${p}`).filter((x) => !first.includes(x)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))

  await sleep(300)
  t.equal(arrivals.length, 3, 'finished calls free no minute capacity: nobody else started')
  jumpTo(1_000)
  await sleep(300)
  t.equal(arrivals.length, 3, 'the clock rolled, but without the boundary event nobody starts: nothing polls')
  t.match(await status('gpt'), { queued: 5, rpmUsed: 0 })

  t.equal(await fireMinuteBoundaries(cradle), 1, 'one boundary timer was set, for the group')
  await arrivalsReach(6)
  t.same(arrivals.slice(3, 6).sort(), rest.slice(0, 3).sort(), 'the next minute admits the 3 best waiting by priority')
  t.match(await untilStatus('gpt', (s) => s.inFlight === 0, 'second wave finished'), { queued: 2, rpmUsed: 3 })

  jumpTo(1_000)
  t.equal(await fireMinuteBoundaries(cradle), 1)
  await arrivalsReach(8)
  t.same(arrivals.slice(6).sort(), rest.slice(3).sort(), 'the last two go the minute after')
  const results = await Promise.all(calls)
  t.equal(results.length, 8, 'every call completed')
  t.equal(arrivals.length, 8, 'each reached the upstream once')
  t.equal(await fireMinuteBoundaries(cradle), 0, 'no timer is set once nobody waits')
})

t.test('rpm used up: a no-priority call gets 429 with retry-after = seconds left in the minute; timeout and disconnect', async (t) => {
  jumpTo(20_000)   // 40 s left in the minute
  arrivals.length = 0
  for (let i = 0; i < 3; i++) await chat('gpt', `np${i} hello`)
  const e = await refused(t, chat('gpt', 'np3 hello'), 'a no-priority call once rpm is used up')
  const retry = Number(e.headers.get('retry-after'))
  t.ok(retry >= 38 && retry <= 40, `retry-after is the seconds left in the minute (${retry})`)
  t.match(e.error?.message, /No deployments available for selected model gpt: its rpm of 3 is used up this minute/)

  const timedOut = await refused(t, chat('gpt', 'np4 hello', { priority: 0, timeout: 0.2 }), 'a waiter past its timeout')
  t.match(timedOut.error?.message, /timed out after 200 ms in the queue for model gpt \(priority 0\); its rpm of 3 is used up/)
  t.ok(Number(timedOut.headers.get('retry-after')) >= 38, 'its retry-after is the rest of the minute too')

  const ac = new AbortController()
  const gone = chat('gpt', 'np5 hello', { priority: 0 }, ac.signal).catch((err: unknown) => err)
  await untilStatus('gpt', (s) => s.queued === 1, 'the waiter is queued')
  ac.abort()
  await untilStatus('gpt', (s) => s.queued === 0, 'the aborted waiter left the queue')
  t.ok(await gone, 'the client saw its own abort')
  t.equal(await fireMinuteBoundaries(cradle), 0, 'the boundary timer went with the last waiter')
  t.same(arrivals, ['np0', 'np1', 'np2'], 'the refused, timed-out and aborted calls never reached the upstream')

  // One deployment of `mixed` has no rpm: the group has no rpm gate at all.
  for (let i = 0; i < 3; i++) await chat('mixed', `mx${i} hello`)
  t.equal(await status('mixed'), undefined, 'a group with a deployment without rpm is not gated')
})

t.test('the boundary timer fires by itself, set from the injected clock', async (t) => {
  jumpTo(57_000)   // 3 s before the next boundary
  const boundaryReal = Date.now() + (MINUTE_MS - (clock.now() % MINUTE_MS))
  for (let i = 0; i < 3; i++) await chat('gpt', `bt${i} hello`, { priority: 1 })
  const waiting = chat('gpt', 'bt3 hello', { priority: 0 })
  await untilStatus('gpt', (s) => s.queued === 1, 'the fourth call waits')
  t.ok(Date.now() < boundaryReal, 'it was queued before the boundary')
  await waiting
  const at = arrivedAt.get('bt3')!
  t.ok(at >= boundaryReal - 5, `it started at the boundary, not before (${at - boundaryReal} ms after)`)
  t.ok(at < boundaryReal + 1_000, 'and right after it')
})

t.test('tpm 100: large prompts wait for the minute; the real usage replaces the estimate', async (t) => {
  jumpTo(1_000)
  arrivals.length = 0
  const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ')
  const text = (tag: string, n: number) => `${tag} ${words(n)}`
  const estimate = (content: string) => Math.ceil(promptTokensEstimate('chat', { messages: [{ role: 'user', content }] }))
  const a = text('ta', 55)
  const b = text('tb', 55)
  const c = text('tc', 2)
  const d = text('td', 150)
  const ea = estimate(a)
  const eb = estimate(b)
  t.ok(ea > 50 && ea + eb > 100, `two large prompts do not fit one minute together (${ea} + ${eb})`)
  t.ok(estimate(d) > 100, `one prompt is larger than the whole tpm (${estimate(d)})`)

  const releaseA = hold('ta')
  usageOf.set('ta', 10)
  const callA = chat('tok', a, { priority: 1 })
  await arrivalsReach(1)
  t.match(await status('tok'), { capacity: null, rpm: null, tpm: 100, rpmUsed: 1, tpmUsed: ea }, 'the estimate is counted at admission')

  const releaseB = hold('tb')
  usageOf.set('tb', 80)
  const callB = chat('tok', b, { priority: 1 })
  await untilStatus('tok', (s) => s.queued === 1, 'the second large call waits')
  const e = await refused(t, chat('tok', c), 'a small no-priority call behind a waiter held by tpm')
  t.match(e.error?.message, /its tpm of 100 cannot take this call this minute/)
  t.ok(Number(e.headers.get('retry-after')) >= 50, 'retry-after: the rest of the minute')

  releaseA()
  await callA
  // A used 10 tokens, not its estimate: the minute has room for B now, and A's release admits it (no boundary).
  await arrivalsReach(2)
  t.same(arrivals, ['ta', 'tb'])
  t.match(await status('tok'), { tpmUsed: 10 + eb, queued: 0 }, 'A counts its real 10 tokens, B its estimate')

  const callD = chat('tok', d, { priority: 1 })
  await untilStatus('tok', (s) => s.queued === 1, 'the huge call waits')
  releaseB()
  await callB
  const st = await untilStatus('tok', (s) => s.inFlight === 0, 'B is done')
  t.match(st, { tpmUsed: 90, queued: 1 }, 'B counts its real 80 tokens; the huge call still waits')
  await sleep(200)
  t.equal(arrivals.length, 2, 'nobody started in a full minute')

  jumpTo(1_000)
  t.equal(await fireMinuteBoundaries(cradle), 1)
  await callD
  t.same(arrivals, ['ta', 'tb', 'td'], 'an empty minute admits one call however large')
  t.match(await status('tok'), { queued: 0, rpmUsed: 1 })
})
