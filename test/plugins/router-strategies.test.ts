/**
 * The router's strategies and pre-call checks, through HTTP with the official `openai` client against fake
 * upstreams (one real node:http server; the deployment that answered is read from x-litellm-model-id and counted at
 * the upstream by the model id it received):
 *
 * - simple-shuffle spreads 3:1 weights, and rpm used as weights, within ±8 % over 400 calls;
 * - least-busy sends the next call to the idle deployment while another call holds one busy;
 * - latency-based prefers the fast deployment after one warm-up call each, spreads between near-equal ones only
 *   with a buffer, and ranks streams by time to first token;
 * - cost-based picks the cheaper deployment (retries go to the next cheapest), `order` first;
 * - usage-based avoids a deployment near its rpm/tpm (real tokens from the upstream's usage) and answers 429 with
 *   the seconds left in the minute when all are used up, on the gateway's fake clock;
 * - pre-call checks skip a deployment whose max_input_tokens is too small, and answer LiteLLM's context window
 *   error when none is big enough;
 * - two gateways on one real redis-server: usage-based routing on one sees the rpm used through the other; calls in
 *   flight on one steer least-busy on the other; Redis down -> in-process stats, calls served, one warning.
 *
 * Latency numbers are real (the upstream delays its answers); everything per-minute runs on a fake clock.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { Redis } from 'ioredis'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { defaultChat, delay, slowStream, startUpstream, type Behaviour, type FakeUpstream } from '../helpers/upstream.js'

/** Mid-minute (:10), so a test's calls stay in one rpm/tpm minute until it moves the clock. */
const START = Date.parse('2030-01-01T00:00:10Z')
const fakeClock = () => {
  const c = { ms: START, now: () => c.ms }
  return c
}
const tick = () => new Promise<void>((r) => setImmediate(r))

/** Answer by the model id the gateway sent upstream; anything else gets the default reply. */
function byModel(map: Record<string, Behaviour>): Behaviour {
  const fallback = defaultChat()
  return (ctx) => (map[ctx.record.body?.model] ?? fallback)(ctx)
}

/** `model_list` entries: one deployment per spec, all on upstream `up`, model id = deployment id. */
function deployments(up: FakeUpstream, group: string, specs: Array<[id: string, params?: string, info?: string]>): string {
  return specs.map(([id, params, info]) => `
  - model_name: ${group}
    litellm_params: { model: openai/${id}, api_base: ${up.url}, api_key: sk-up${params ? `, ${params}` : ''} }
    model_info: { id: ${id}${info ? `, ${info}` : ''} }`).join('')
}

interface Reply {
  status: number
  id: string | null
  retryAfter: string | null
  message: string
  code: string | null
}

async function ask(client: OpenAI, model: string, o: { content?: string; stream?: boolean } = {}): Promise<Reply> {
  const messages = [{ role: 'user' as const, content: o.content ?? 'hi' }]
  try {
    if (o.stream) {
      const { data, response } = await client.chat.completions.create({ model, messages, stream: true }).withResponse()
      for await (const _ of data) { /* drain: the call ends with the stream */ }
      return { status: 200, id: response.headers.get('x-litellm-model-id'), retryAfter: null, message: '', code: null }
    }
    const { response } = await client.chat.completions.create({ model, messages }).withResponse()
    return { status: 200, id: response.headers.get('x-litellm-model-id'), retryAfter: null, message: '', code: null }
  } catch (e) {
    const err = e as InstanceType<typeof OpenAI.APIError>
    return { status: err.status ?? -1, id: null, retryAfter: err.headers?.get('retry-after') ?? null, message: err.message, code: (err.code as string | null) ?? null }
  }
}

const clientOf = (gw: TestGateway) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0, timeout: 10_000 })

function tally(ids: Array<string | null>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const id of ids) out[String(id)] = (out[String(id)] ?? 0) + 1
  return out
}

/** `n` calls, `width` at a time (order does not matter for the shuffle). */
async function many(client: OpenAI, model: string, n: number, width = 20): Promise<Record<string, number>> {
  const ids: Array<string | null> = []
  for (let i = 0; i < n; i += width) {
    const batch = await Promise.all(Array.from({ length: Math.min(width, n - i) }, () => ask(client, model)))
    for (const r of batch) ids.push(r.id)
  }
  return tally(ids)
}

/** Upstream requests for a model id. */
const hits = (up: FakeUpstream, id: string) => up.requestsTo('chat').filter((r) => r.body?.model === id).length

/** An upstream behaviour that holds each request until released, in arrival order. */
function holding() {
  const held: Array<() => void> = []
  const behaviour: Behaviour = async (ctx) => {
    await Promise.race([new Promise<void>((r) => held.push(r)), ctx.closed])
    return defaultChat()(ctx)
  }
  return { behaviour, release: (i: number) => held[i]?.(), releaseAll: () => { for (const r of held) r() } }
}

async function sequential(client: OpenAI, model: string, n: number, o: { stream?: boolean } = {}): Promise<Array<string | null>> {
  const ids: Array<string | null> = []
  for (let i = 0; i < n; i++) ids.push((await ask(client, model, o)).id)
  return ids
}

t.test('simple-shuffle: weights, or rpm as weights, spread 400 calls 3:1 within ±8 %', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `
pipeline: [request-id, router]
model_list:${deployments(up, 'weighted', [['w-3', 'weight: 3'], ['w-1', 'weight: 1']])}${deployments(up, 'by-rpm', [['r-300', 'rpm: 300'], ['r-100', 'rpm: 100']])}
`)
  const client = clientOf(gw)
  const w = await many(client, 'weighted', 400)
  t.equal((w['w-3'] ?? 0) + (w['w-1'] ?? 0), 400, 'every call served by one of the two')
  t.ok(Math.abs((w['w-3'] ?? 0) / 400 - 0.75) <= 0.08, `weight 3:1 -> ${JSON.stringify(w)}`)
  const r = await many(client, 'by-rpm', 400)
  t.ok(Math.abs((r['r-300'] ?? 0) / 400 - 0.75) <= 0.08, `rpm 300:100 as weights -> ${JSON.stringify(r)}`)
  t.equal(hits(up, 'r-300') + hits(up, 'r-100'), 400, 'rpm is only a weight here: no call refused (no pre-call checks)')
})

t.test('least-busy: the next call goes to the idle deployment while another is held busy', async (t) => {
  const up = await startUpstream(t)
  const hold = holding()
  up.on('chat', hold.behaviour)
  const gw = await startGateway(t, `
pipeline: [request-id, { router: { routing_strategy: least-busy } }]
model_list:${deployments(up, 'busy', [['lb-a'], ['lb-b']])}
`)
  const client = clientOf(gw)
  const modelOf = (i: number) => up.requestsTo('chat')[i]!.body.model as string
  let n = 0
  for (let round = 0; round < 5; round++) {
    const first = ask(client, 'busy')
    await up.waitForRequests(++n)
    const busy = modelOf(n - 1)
    const second = ask(client, 'busy')
    await up.waitForRequests(++n)
    t.not(modelOf(n - 1), busy, `round ${round}: the call while ${busy} is busy goes to the other`)
    hold.release(n - 2)
    t.equal((await first).id, busy)
    await tick()
    // Now `busy` is idle and the other still holds the second call.
    const third = ask(client, 'busy')
    await up.waitForRequests(++n)
    t.equal(modelOf(n - 1), busy, `round ${round}: the freed deployment takes the next call`)
    hold.releaseAll()
    await Promise.all([second, third])
    await tick()
  }
})

t.test('latency-based: the fast deployment after warm-up; a buffer spreads near-equal ones; streams by time to first token', async (t) => {
  // Each deployment is measured once in warm-up and a slower one is not tried again, so one sample decides: the
  // delays are far enough apart that a scheduling stall of tens of ms (tests running in parallel) cannot flip it.
  const up = await startUpstream(t)
  up.on('chat', byModel({
    'slow': delay(150, defaultChat()),
    'n-60': delay(60, defaultChat()),
    'n-120': delay(120, defaultChat()),
    'n-600': delay(600, defaultChat()),
    // ttft-late: quick as a whole answer, 150 ms before a stream's first chunk; ttft-early: the opposite.
    'ttft-late': (ctx) => (ctx.record.body?.stream ? delay(150, defaultChat()) : defaultChat())(ctx),
    'ttft-early': (ctx) => (ctx.record.body?.stream ? slowStream({ intervalMs: 20, chunks: 5 }) : delay(150, defaultChat()))(ctx),
  }))
  const models = `model_list:${deployments(up, 'lat', [['fast'], ['slow']])}${deployments(up, 'near', [['n-60'], ['n-120'], ['n-600']])}${deployments(up, 'ttft', [['ttft-late'], ['ttft-early']])}`
  const clock = fakeClock()
  const strict = clientOf(await startGateway(t, `
pipeline: [request-id, { router: { routing_strategy: latency-based-routing } }]
${models}`, { clock }))
  const buffered = clientOf(await startGateway(t, `
pipeline: [request-id, { router: { routing_strategy: latency-based-routing, routing_strategy_args: { lowest_latency_buffer: 3 } } }]
${models}`, { clock }))

  t.test('fast vs slow', async (t) => {
    const warm = await sequential(strict, 'lat', 2)
    t.same([...warm].sort(), ['fast', 'slow'], 'a deployment without a sample is tried first: one warm-up call each')
    t.same(tally(await sequential(strict, 'lat', 10)), { fast: 10 }, 'then every call goes to the fast one')
  })

  t.test('no buffer: the fastest only', async (t) => {
    await sequential(strict, 'near', 3)
    t.same(tally(await sequential(strict, 'near', 8)), { 'n-60': 8 })
  })

  t.test('buffer 3: within 4x the best counts as equally fast', async (t) => {
    await sequential(buffered, 'near', 3)
    const after = tally(await sequential(buffered, 'near', 16))
    t.ok(after['n-60']! > 0 && after['n-120']! > 0, `60 ms and 120 ms both used: ${JSON.stringify(after)}`)
    t.notOk(after['n-600'], '600 ms is outside the buffer')
  })

  t.test('streams go by time to first token, whole answers by latency', async (t) => {
    t.same([...await sequential(strict, 'ttft', 2, { stream: true })].sort(), ['ttft-early', 'ttft-late'], 'stream warm-up')
    t.same([...await sequential(strict, 'ttft', 2)].sort(), ['ttft-early', 'ttft-late'], 'whole-answer warm-up')
    t.same(tally(await sequential(strict, 'ttft', 5, { stream: true })), { 'ttft-early': 5 }, 'streams: the early first chunk')
    t.same(tally(await sequential(strict, 'ttft', 5)), { 'ttft-late': 5 }, 'whole answers: the quicker whole answer')
  })
})

t.test('cost-based: the cheaper deployment; on failure the next cheapest; `order` first', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `
pipeline: [request-id, { router: { routing_strategy: cost-based-routing } }]
upstream: [{ retry: { num_retries: 1, initial_backoff_ms: 0 } }]
model_list:${deployments(up, 'cost', [
    ['c-dear', 'input_cost_per_token: 0.00001, output_cost_per_token: 0.00003'],
    ['c-cheap', 'input_cost_per_token: 0.0000001, output_cost_per_token: 0.0000004'],
    ['c-mid', 'input_cost_per_token: 0.000001, output_cost_per_token: 0.000002'],
  ])}${deployments(up, 'cost-order', [
    ['o-cheap', 'input_cost_per_token: 0.0000001, output_cost_per_token: 0.0000004, order: 2'],
    ['o-dear', 'input_cost_per_token: 0.00001, output_cost_per_token: 0.00003, order: 1'],
  ])}
`)
  const client = clientOf(gw)
  t.same(tally(await sequential(client, 'cost', 8)), { 'c-cheap': 8 })
  up.on('chat', byModel({ 'c-cheap': (ctx) => { ctx.res.writeHead(500, { 'content-type': 'application/json' }); ctx.res.end('{"error":{"message":"down","type":"server_error"}}') } }))
  t.equal((await ask(client, 'cost')).id, 'c-mid', 'the cheapest fails: the retry goes to the next cheapest')
  t.equal(hits(up, 'c-dear'), 0, 'the dearest was never called')
  up.on('chat', defaultChat())
  t.same(tally(await sequential(client, 'cost-order', 4)), { 'o-dear': 4 }, 'a lower order wins over price')
})

t.test('usage-based: avoids a deployment near its rpm/tpm; 429 with the rest of the minute when all are used', async (t) => {
  const up = await startUpstream(t)
  const clock = fakeClock()
  const gw = await startGateway(t, `
pipeline: [request-id, { router: { routing_strategy: usage-based-routing-v2 } }]
model_list:${deployments(up, 'rpm', [['u-4', 'rpm: 4'], ['u-8', 'rpm: 8']])}${deployments(up, 'tpm', [['v-a', 'tpm: 100'], ['v-b', 'tpm: 100']])}
`, { clock })
  const client = clientOf(gw)
  const used = { 'u-4': 0, 'u-8': 0 }
  for (let i = 0; i < 12; i++) {
    const r = await ask(client, 'rpm')
    used[r.id as keyof typeof used]++
    // The deployment with the most headroom takes each call: u-4 is never ahead of its share.
    t.ok(used['u-4'] / 4 <= used['u-8'] / 8 + 0.25 + 1e-9, `call ${i + 1}: ${JSON.stringify(used)}`)
  }
  t.same(used, { 'u-4': 4, 'u-8': 8 }, 'each up to its rpm')
  const full = await ask(client, 'rpm')
  t.equal(full.status, 429)
  t.match(full.message, /No deployments available for selected model/)
  t.equal(full.retryAfter, '50', 'retry-after: the seconds left in the minute (at :10)')
  t.equal(hits(up, 'u-4') + hits(up, 'u-8'), 12, 'the refused call never left the gateway')

  // tpm: each call uses 48 real tokens (40 prompt + 8 completion, from the upstream's usage). Two calls each fit
  // (96 <= 100); a third cannot fit its prompt on top.
  const prompt = 'x'.repeat(160)
  const tpm: Reply[] = []
  for (let i = 0; i < 5; i++) tpm.push(await ask(client, 'tpm', { content: prompt }))
  t.same(tpm.map((r) => r.status), [200, 200, 200, 200, 429], 'four calls fit 2 x 100 tpm, the fifth does not')
  t.same(tally(tpm.slice(0, 4).map((r) => r.id)), { 'v-a': 2, 'v-b': 2 }, 'spread by tokens used')

  clock.ms += 50_000
  t.equal((await ask(client, 'rpm')).status, 200, 'a new minute: counts start again')
  t.equal((await ask(client, 'tpm', { content: prompt })).status, 200)
})

t.test('pre-call checks: a small context window is skipped; none big enough -> context window error; rpm checked', async (t) => {
  const up = await startUpstream(t)
  const clock = fakeClock()
  const gw = await startGateway(t, `
pipeline: [request-id, { router: { enable_pre_call_checks: true } }]
model_list:${deployments(up, 'ctx', [['small', '', 'max_input_tokens: 50'], ['big', '', 'max_input_tokens: 100000']])}${deployments(up, 'tiny', [['tiny-a', '', 'max_input_tokens: 50'], ['tiny-b', '', 'max_input_tokens: 60']])}${deployments(up, 'limited', [['lim', 'rpm: 2']])}
`, { clock })
  const client = clientOf(gw)
  const long = 'the quick brown fox jumps over the lazy dog '.repeat(30)
  const longIds: Array<string | null> = []
  for (let i = 0; i < 10; i++) longIds.push((await ask(client, 'ctx', { content: long })).id)
  t.same(tally(longIds), { big: 10 }, 'a ~300-token prompt never goes to the 50-token deployment')
  const short = tally(await sequential(client, 'ctx', 30))
  t.ok(short.small! > 0 && short.big! > 0, `a short prompt may go to either: ${JSON.stringify(short)}`)
  t.equal(hits(up, 'small'), short.small, 'small only ever got short prompts')

  const r = await ask(client, 'tiny', { content: long })
  t.equal(r.status, 400)
  t.equal(r.code, 'context_length_exceeded')
  t.match(r.message, /ContextWindowExceededError/)
  t.equal(hits(up, 'tiny-a') + hits(up, 'tiny-b'), 0, 'nothing was sent')

  t.same([(await ask(client, 'limited')).status, (await ask(client, 'limited')).status], [200, 200])
  const third = await ask(client, 'limited')
  t.equal(third.status, 429, 'rpm 2: the third call this minute is refused')
  t.equal(third.retryAfter, '50')
})

t.test('two gateways on one real redis-server share the router stats; Redis down -> in process, one warning', async (t) => {
  const redis = await startRedis(t)
  const up = await startUpstream(t)
  const clock = fakeClock()
  const idle = [0, 1, 2, 3].map((g) => deployments(up, `idle-${g}`, [[`i${g}-a`], [`i${g}-b`]])).join('')
  const models = `model_list:${deployments(up, 'shared', [['s-a', 'rpm: 5'], ['s-b', 'rpm: 5']])}${idle}`
  const pair = async (strategy: string) => {
    const yaml = `
pipeline: [request-id, { state-redis: { url: '${redis.url}' } }, { router: { routing_strategy: ${strategy} } }]
${models}`
    return [await startGateway(t, yaml, { clock }), await startGateway(t, yaml, { clock })] as const
  }
  const [a, b] = await pair('usage-based-routing-v2')
  const ca = clientOf(a)
  const cb = clientOf(b)

  t.same((await Promise.all(Array.from({ length: 6 }, () => ask(cb, 'shared')))).map((r) => r.status), [200, 200, 200, 200, 200, 200], 'gateway B: 6 calls')
  const onA: Reply[] = []
  for (let i = 0; i < 5; i++) onA.push(await ask(ca, 'shared'))
  t.same(onA.map((r) => r.status), [200, 200, 200, 200, 429], 'gateway A: 4 more fill 2 x rpm 5, the 5th is refused')
  t.match(onA[4]!.message, /No deployments available/)
  t.equal(hits(up, 's-a'), 5, 'no deployment went past its rpm across both gateways')
  t.equal(hits(up, 's-b'), 5)

  // The shared counters, under the client's `sy:` prefix: this minute's requests per deployment, and no call left
  // in flight (an emptied zset is deleted).
  const raw = new Redis(redis.url)
  const minute = Math.floor(START / 60_000)
  const counts = await raw.mget(`sy:{sy}:router:r:${minute}:s-a`, `sy:{sy}:router:r:${minute}:s-b`)
  const busy = await raw.exists('sy:{sy}:router:busy:s-a', 'sy:{sy}:router:busy:s-b')
  raw.disconnect()
  t.same(counts, ['5', '5'], 'requests this minute, as both gateways counted them')
  t.equal(busy, 0, 'nothing in flight')

  t.test('least-busy sees the calls in flight on the other gateway', async (t) => {
    const hold = holding()
    up.on('chat', hold.behaviour)
    const [la, lb] = await pair('least-busy')
    // A fresh group per round: a gateway's first pick of a group waits for the shared numbers (later picks read a
    // snapshot up to 100 ms old), so each round is decided by what Redis holds, and a lucky 50 % pick cannot pass four.
    for (let g = 0; g < 4; g++) {
      const before = up.requestsTo('chat').length
      const held = ask(clientOf(lb), `idle-${g}`)
      await up.waitForRequests(before + 1)
      const busy = up.requestsTo('chat')[before]!.body.model
      const next = ask(clientOf(la), `idle-${g}`)
      await up.waitForRequests(before + 2)
      t.not(up.requestsTo('chat')[before + 1]!.body.model, busy, `gateway A avoids ${busy}, busy on gateway B`)
      hold.releaseAll()
      t.same([(await held).status, (await next).status], [200, 200])
    }
    up.on('chat', defaultChat())
  })

  t.test('Redis down: calls still served from in-process stats, one warning', async (t) => {
    await redis.stop()
    clock.ms += 60_000
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await ask(ca, 'shared')).status)
    t.same(statuses, [200, 200, 200, 200, 200, 200], 'served while Redis is down')
    // Let the background fetches that noticed the outage finish.
    await new Promise((r) => setTimeout(r, 150))
    statuses.length = 0
    for (let i = 0; i < 5; i++) statuses.push((await ask(ca, 'shared')).status)
    t.same(statuses, [200, 200, 200, 200, 429], 'rpm still enforced in process: 10 per minute, the 11th refused')
    const warnings = a.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('router: Redis unreachable'))
    t.equal(warnings.length, 1, 'one warning for the outage')
  })
})
