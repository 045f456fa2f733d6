/**
 * priority-queue, in process: real gateways (SQLite store, auth, keys, priority-queue, router) in front of a fake
 * upstream that counts the calls it holds at once and keeps each open for HOLD_MS, called through the official
 * openai client. The waits are real (the upstream's concurrency is what is measured); the gateway's clock is a
 * counter the test advances, so `queue_ms` is exact.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { defaultChat, defaultEmbeddings, delay, startUpstream, type Behaviour, type FakeUpstream } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'
import { tempDb } from './keys-harness.js'
import type { Counter } from './pq-upstream.js'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import priorityQueue from '../../plugins/priority-queue/index.js'
import { CapacityGate, WaiterHeap, type Waiter } from '../../plugins/priority-queue/queue.js'
import { refused } from '../helpers/assert.js'

const MASTER = 'sk-master-pq-1234'
const HOLD_MS = 100
/** Upstream arrivals closer than this belong to one burst (calls held alike free their slots together), ms. */
const BURST_MS = 100


function tagOf(body: any): string {
  if (Array.isArray(body?.messages)) return String(body.messages[0]?.content ?? '')
  return String(Array.isArray(body?.input) ? body.input[0] : body?.input ?? '')
}

/** Counts concurrent requests and holds each `ms` before answering with `then`. */
function counted(c: Counter, ms: number, then: Behaviour): Behaviour {
  const open = new Set<string>()
  const hold = delay(ms, then)
  return async (ctx) => {
    const tag = tagOf(ctx.record.body)
    c.current++
    c.max = Math.max(c.max, c.current)
    c.arrivals.push(tag)
    open.add(tag)
    c.inFlightAt.push([...open])
    c.times.push(Date.now())
    void ctx.closed.then(() => {
      c.current--
      open.delete(tag)
    })
    await hold(ctx)
  }
}

const newCounter = (): Counter => ({ arrivals: [], current: 0, max: 0, inFlightAt: [], times: [] })

/** A fake clock the gateway reads: advances 1 ms per read, so waits are measurable and never zero by accident. */
let ticks = Date.UTC(2030, 0, 1)
const clock = { now: () => ticks++ }

/** Records state.timings.queue_ms per call tag (runs outside priority-queue in the chain). */
const queueMs = new Map<string, number | undefined>()
const probe = definePlugin({
  name: 'probe',
  middleware: () => async function probe(ctx, next) {
    try {
      await next()
    } finally {
      const body = ctx.state.body
      if (body) queueMs.set(tagOf(body), ctx.state.timings.queue_ms)
    }
  } as GatewayMiddleware,
})

interface Setup {
  up: FakeUpstream
  gw: TestGateway
  chat: Counter
  emb: Counter
}

async function setup(t: Test, pq: string, models: (url: string) => string, holdMs = HOLD_MS): Promise<Setup> {
  const chat = newCounter()
  const emb = newCounter()
  const up = await startUpstream(t, { chat: counted(chat, holdMs, defaultChat()), embeddings: counted(emb, holdMs, defaultEmbeddings()) })
  const gw = await startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(tempDb(t))} }
  - auth: { master_key: ${MASTER} }
  - keys
  - probe
  - priority-queue: ${pq}
  - router
model_list:
${models(up.url)}
`, { plugins: [priorityQueue, probe], clock })
  return { up, gw, chat, emb }
}

const client = (gw: TestGateway, key = MASTER) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 20_000 })

async function newKey(gw: TestGateway, body: Record<string, unknown>): Promise<string> {
  const r = await jsonCall(gw.url, 'POST', '/key/generate', body, MASTER)
  if (r.status !== 200) throw new Error(`key/generate: ${JSON.stringify(r.body)}`)
  return r.body.key
}

function chatCall(gw: TestGateway, tag: string, extra: Record<string, unknown> = {}, key = MASTER, signal?: AbortSignal) {
  return client(gw, key).chat.completions.create(
    { model: 'gpt', messages: [{ role: 'user', content: tag }], ...extra } as any, signal ? { signal } : undefined)
}

function embedCall(gw: TestGateway, tag: string, extra: Record<string, unknown> = {}) {
  return client(gw).embeddings.create({ model: 'emb', input: tag, ...extra } as any)
}

async function status(gw: TestGateway, key = MASTER) {
  return jsonCall(gw.url, 'GET', '/queue/status', undefined, key)
}

/** Poll /queue/status (test side) until `ok` holds for `model`. */
async function untilStatus(gw: TestGateway, model: string, ok: (s: any) => boolean, what: string, timeoutMs = 5_000): Promise<any> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = (await status(gw)).body?.models?.[model]
    if (s && ok(s)) return s
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}; last status ${JSON.stringify(s)}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}


t.test('the heap orders by priority then arrival and removes any waiter', async (t) => {
  const heap = new WaiterHeap()
  const mk = (priority: number, seq: number): Waiter => ({ priority, seq, level: '', queuedAt: 0, index: -1, admit: () => {} })
  const ws = [mk(5, 0), mk(1, 1), mk(5, 2), mk(0, 3), mk(1, 4), mk(9, 5), mk(0, 6)]
  for (const w of ws) heap.push(w)
  t.ok(heap.remove(ws[1]!), 'a queued waiter is removed')
  t.notOk(heap.remove(ws[1]!), 'a second removal is a no-op')
  const out: string[] = []
  while (heap.size) out.push(`${heap.peek()!.priority}:${heap.pop()!.seq}`)
  t.same(out, ['0:3', '0:6', '1:4', '5:0', '5:2', '9:5'])
})

t.test('the gate: event-driven admission and reservation shares under saturation', async (t) => {
  const gate = new CapacityGate(10, { shares: new Map([['prod', 0.9], ['dev', 0.1]]), saturationThreshold: 0.8 })
  t.equal(gate.levelLimit('prod'), 9)
  t.equal(gate.levelLimit('dev'), 1)
  t.equal(gate.levelLimit(''), 1, 'no level: what the shares leave, at least 1')
  // Below the threshold dev borrows idle capacity: 8 dev calls start (8/10 reaches the 0.8 threshold).
  let dev = 0
  while (gate.canAdmit('dev')) {
    gate.take('dev', 0)
    dev++
  }
  t.equal(dev, 8, 'dev borrows up to the saturation threshold')
  t.ok(gate.canAdmit('prod'), 'prod still gets the rest')
  const admitted: string[] = []
  const w = (level: string, seq: number): Waiter => ({ priority: 0, seq, level, queuedAt: 0, index: -1, admit: () => void admitted.push(`${level}${seq}`) })
  gate.enqueue(w('dev', 1))
  gate.enqueue(w('prod', 2))
  gate.enqueue(w('prod', 3))
  gate.enqueue(w('prod', 4))
  t.same(admitted, ['prod2', 'prod3'], 'the queued dev call is held to its share; prod fills the free slots at once')
  gate.release('dev', 0)
  t.same(admitted, ['prod2', 'prod3', 'prod4'], 'a freed slot goes to prod while dev is above its share')
  for (let i = 0; i < 7; i++) gate.release('dev', 0)
  t.same(admitted, ['prod2', 'prod3', 'prod4', 'dev1'], 'dev gets its one slot back once its own calls end')
  t.equal(gate.queued, 0)
  t.equal(gate.inFlight, 4)
})

t.test('capacity 2: priority-0 calls overtake a queued priority-100 backlog (chat and embeddings)', async (t) => {
  // Chat: two deployments of max_parallel_requests 1 each (capacity = their sum). Embeddings: the plugin option.
  const s = await setup(t, '{ max_parallel_requests: { emb: 2 } }', (url) => `
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${url}, api_key: sk-up, max_parallel_requests: 1 }
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o, api_base: ${url}, api_key: sk-up, max_parallel_requests: 1 }
  - model_name: emb
    litellm_params: { model: openai/text-embedding-3-small, api_base: ${url}, api_key: sk-up }
`, 200)
  // The first two calls of each route are held at the upstream until the test has seen every call queued behind
  // them, however slow the machine (a loaded CI box can take longer than a fixed hold to queue the high calls).
  let release = () => {}
  let gate = Promise.resolve()
  let heldLeft = 0
  const held = (then: Behaviour): Behaviour => async (ctx) => {
    if (heldLeft-- > 0) await Promise.race([gate, ctx.closed])
    return then(ctx)
  }
  s.up.on('chat', counted(s.chat, 0, held(delay(200, defaultChat()))))
  s.up.on('embeddings', counted(s.emb, 0, held(delay(200, defaultEmbeddings()))))
  const vipKey = await newKey(s.gw, { metadata: { priority: 0 } })
  // One call first, so the key's record is cached by auth and its calls reach the queue as fast as the others.
  await chatCall(s.gw, 'warm-up', {}, vipKey)
  s.chat.arrivals.length = 0
  s.chat.max = 0

  for (const route of ['chat', 'embeddings'] as const) {
    gate = new Promise<void>((r) => (release = r))
    heldLeft = 2
    t.teardown(() => release())
    const counter = route === 'chat' ? s.chat : s.emb
    const model = route === 'chat' ? 'gpt' : 'emb'
    const finished: string[] = []
    const call = (tag: string, priority: number | null, key = MASTER) => {
      const extra = priority === null ? {} : { priority }
      const p = route === 'chat' ? chatCall(s.gw, tag, extra, key) : embedCall(s.gw, tag, extra)
      return p.then(() => void finished.push(tag))
    }
    const low = Array.from({ length: 20 }, (_, i) => call(`${route}-low-${i}`, 100))
    const st = await untilStatus(s.gw, model, (x) => x.queued === 18, '18 low calls queued')
    t.equal(st.capacity, 2)
    t.equal(st.inFlight, 2)
    t.equal(st.priorities['100'].queued, 18)
    t.ok(st.priorities['100'].oldestWaitMs > 0, 'the oldest wait is reported')
    // Chat: three high calls by body priority, two by the key's metadata priority; embeddings: all five by body.
    const high = Array.from({ length: 5 }, (_, i) =>
      route === 'chat' && i >= 3 ? call(`${route}-high-${i}`, null, vipKey) : call(`${route}-high-${i}`, 0))
    await untilStatus(s.gw, model, (x) => x.queued === 23, 'high calls queued behind the two held ones')
    release()
    await Promise.all([...low, ...high])

    const highAt = counter.arrivals.map((a, i) => (a.includes('-high-') ? i : -1)).filter((i) => i >= 0)
    t.same(highAt, [2, 3, 4, 5, 6], `${route}: the five priority-0 calls reach the upstream right after the two in flight`, { arrivals: counter.arrivals })
    const lastHighDone = Math.max(...Array.from({ length: 5 }, (_, i) => finished.indexOf(`${route}-high-${i}`)))
    t.ok(lastHighDone < 7, `${route}: every priority-0 call finished before the low backlog (last at #${lastHighDone})`)
    t.equal(counter.arrivals.length, 25, `${route}: every call reached the upstream once`)
    t.equal(counter.max, 2, `${route}: the upstream never held more than 2 at once`)
    t.ok((queueMs.get(`${route}-low-19`) ?? 0) > 0, 'a queued call records queue_ms')
    t.equal(queueMs.get(`${route}-low-0`), 0, 'a call admitted at once records queue_ms 0')
  }

  t.notOk(s.up.requests.some((r) => r.body && 'priority' in r.body), 'priority is never sent upstream')
  const after = (await status(s.gw)).body.models.gpt
  t.same({ inFlight: after.inFlight, queued: after.queued }, { inFlight: 0, queued: 0 }, 'every slot was freed')
})

t.test('no priority at capacity: immediate 429 with retry-after; a queue timeout is a 429; a disconnect leaves the queue', async (t) => {
  const s = await setup(t, '{ max_parallel_requests: 2 }', (url) => `
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${url}, api_key: sk-up }
`, 3000) // the holders stay in flight through every step below, however loaded the machine
  const holders = [chatCall(s.gw, 'hold-0', { priority: 1 }), chatCall(s.gw, 'hold-1', { priority: 1 })]
  await untilStatus(s.gw, 'gpt', (x) => x.inFlight === 2, 'two calls in flight')

  const t0 = Date.now()
  const e = await refused(t, chatCall(s.gw, 'no-priority'), 'a call with no priority at capacity')
  t.ok(Date.now() - t0 < 300, 'refused at once, not after a wait')
  t.equal(e.headers.get('retry-after'), '1')
  t.equal(e.error?.type, 'rate_limit_error')
  t.match(e.error?.message, /No deployments available for selected model gpt/)

  // The request's own timeout (seconds) bounds its wait in the queue.
  const t1 = Date.now()
  const timedOut = await refused(t, chatCall(s.gw, 'times-out', { priority: 0, timeout: 0.1 }), 'a waiter past its timeout')
  t.ok(Date.now() - t1 < 350, 'the timeout ended the wait before any slot freed')
  t.ok(timedOut.headers.get('retry-after'), 'the timeout carries retry-after')
  t.match(timedOut.error?.message, /timed out after 100 ms in the queue/)

  // A client that disconnects leaves the queue at once.
  const ac = new AbortController()
  const gone = chatCall(s.gw, 'disconnects', { priority: 0 }, MASTER, ac.signal).catch((err: unknown) => err)
  await untilStatus(s.gw, 'gpt', (x) => x.queued === 1, 'the waiter is queued')
  ac.abort()
  const st = await untilStatus(s.gw, 'gpt', (x) => x.queued === 0, 'the waiter left the queue', 1_000)
  t.equal(st.inFlight, 2, 'the holders were still in flight when it left')
  t.ok(await gone, 'the client saw its own abort')
  await Promise.all(holders)
  const after = chatCall(s.gw, 'after', { priority: 0 })
  await after
  t.same(s.chat.arrivals, ['hold-0', 'hold-1', 'after'], 'the upstream never saw the refused, timed-out or disconnected calls')
  t.equal(s.chat.max, 2)
})

t.test('default_priority: a call with no priority queues instead of a 429; queue_timeout_ms bounds the wait', async (t) => {
  const s = await setup(t, '{ max_parallel_requests: { gpt: 1 }, default_priority: 50, queue_timeout_ms: 2000 }', (url) => `
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${url}, api_key: sk-up }
`, 150)
  const first = chatCall(s.gw, 'dp-first')
  await untilStatus(s.gw, 'gpt', (x) => x.inFlight === 1, 'one call in flight')
  const second = chatCall(s.gw, 'dp-second')
  const st = await untilStatus(s.gw, 'gpt', (x) => x.queued === 1, 'the no-priority call queued')
  t.equal(st.priorities['50'].queued, 1, 'it queued at default_priority')
  await Promise.all([first, second])
  t.same(s.chat.arrivals, ['dp-first', 'dp-second'])
  t.ok((queueMs.get('dp-second') ?? 0) > 0, 'the queued call recorded its wait')
  t.equal(s.chat.max, 1)

  const s2 = await setup(t, '{ max_parallel_requests: 1, default_priority: 50, queue_timeout_ms: 100 }', (url) => `
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${url}, api_key: sk-up }
`, 400)
  const holder = chatCall(s2.gw, 'qt-holder')
  await untilStatus(s2.gw, 'gpt', (x) => x.inFlight === 1, 'one call in flight')
  const e = await refused(t, chatCall(s2.gw, 'qt-waiter'), 'past queue_timeout_ms')
  t.equal(e.headers.get('retry-after'), '1')
  await holder
  t.same(s2.chat.arrivals, ['qt-holder'])
})

t.test('GET /queue/status is for admins only', async (t) => {
  const s = await setup(t, '{ max_parallel_requests: 1 }', (url) => `
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${url}, api_key: sk-up }
`)
  const key = await newKey(s.gw, {})
  const denied = await status(s.gw, key)
  t.equal(denied.status, 403)
  t.equal(denied.body.error?.code, 'forbidden')
  const ok = await status(s.gw)
  t.equal(ok.status, 200)
  t.same(ok.body, { models: {} }, 'no group is listed before its first call')
  await chatCall(s.gw, 'st-1', { priority: 3 })
  const after = await status(s.gw)
  t.match(after.body.models.gpt, { capacity: 1, inFlight: 0, queued: 0 })
})

t.test('priority_reservation {prod: 0.9, dev: 0.1} under saturation: prod gets >= 90 % of the calls, dev is not starved', async (t) => {
  const s = await setup(t, '{ max_parallel_requests: 10, priority_reservation: { prod: 0.9, dev: 0.1 } }', (url) => `
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${url}, api_key: sk-up }
`, 400)
  const prodKey = await newKey(s.gw, { metadata: { priority: 'prod' } })
  const devKey = await newKey(s.gw, { metadata: { priority: 'dev' } })
  // The first wave (10 calls) is held until the test has seen everyone queued behind it, however slow the machine.
  let release!: () => void
  const firstWave = new Promise<void>((r) => (release = r))
  let arrived = 0
  s.up.on('chat', counted(s.chat, 0, async (ctx) => {
    if (arrived++ < 10) await Promise.race([firstWave, ctx.closed])
    await delay(400, defaultChat())(ctx)
  }))
  const calls: Array<Promise<unknown>> = []
  // dev first: below the saturation threshold it borrows idle capacity (8 of 10 slots), then prod arrives.
  for (let i = 0; i < 20; i++) calls.push(chatCall(s.gw, `dev-${i}`, {}, devKey))
  await untilStatus(s.gw, 'gpt', (x) => x.inFlight === 8 && x.queued === 12, 'dev saturating')
  for (let i = 0; i < 50; i++) calls.push(chatCall(s.gw, `prod-${i}`, {}, prodKey))
  const st = await untilStatus(s.gw, 'gpt', (x) => x.queued === 60, 'prod queued behind')
  t.match(st.levels, { dev: { inFlight: 8, limit: 1 }, prod: { inFlight: 2, limit: 9 } })
  release()
  await Promise.all(calls)

  t.equal(s.chat.max, 10, 'capacity 10 was used in full and never exceeded')
  // The window: the admissions after the first wave, while both levels still had calls waiting.
  const lastProd = s.chat.arrivals.findLastIndex((a) => a.startsWith('prod-'))
  // Calls admitted together (slots that freed together) reach the upstream in any order. The burst that holds the
  // last prod call also holds the dev calls admitted once prod's queue was empty (below the saturation threshold
  // again): the window ends before that burst.
  const end = s.chat.times.findIndex((at) => at >= s.chat.times[lastProd]! - BURST_MS)
  const window = s.chat.arrivals.slice(10, end)
  const prod = window.filter((a) => a.startsWith('prod-')).length
  const dev = window.length - prod
  t.ok(window.length >= 40, `the window holds ${window.length} calls`)
  // Capacity share: whenever all 10 slots were busy under saturation, prod held at least 9 of them.
  const full = s.chat.inFlightAt.slice(10, end).filter((o) => o.length === 10)
  const prodSlots = full.reduce((n, o) => n + o.filter((x) => x.startsWith('prod-')).length, 0)
  t.ok(full.length > 0 && prodSlots / (10 * full.length) >= 0.9, `prod held ${prodSlots} of ${10 * full.length} busy slots (>= 90 %)`)
  // Admissions: 90 % of them, give or take the one call a window's edges can cut through a 10-slot cycle.
  t.ok(prod >= Math.floor(0.9 * window.length) - 1, `prod share of admissions ${prod}/${window.length} ~ 90 %`)
  t.ok(dev > 0, `dev still got ${dev} calls`)
  // Once the borrowed dev slots drained (from the 20th admission on), dev never held more than its one slot.
  const devMax = Math.max(...s.chat.inFlightAt.slice(20, end).map((open) => open.filter((a) => a.startsWith('dev-')).length))
  t.ok(devMax <= 1, `dev in flight under saturation: at most ${devMax}`)
})
