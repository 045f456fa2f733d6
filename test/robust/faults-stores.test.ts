/**
 * Robustness, state side: the stores a gateway depends on die under load and come back.
 *
 * - Redis (budgets, rate limits and the priority queue share their counters through it) is SIGKILLed under load and
 *   restarted empty on the same port. What the plugins document for an outage: budget admits on the replica's own
 *   ledger and charges Redis once it is back (plugins/budget), rate-limit counts on the replica (plugins/rate-limit),
 *   the priority queue gates in process (plugins/priority-queue), state-redis fails fast and reconnects
 *   (plugins/state-redis). None of them fails closed, so every call is served or refused for its budget only, and
 *   once Redis is back the plugins use it again.
 * - PostgreSQL (the store: keys, spend) is SIGKILLed under load and restarted. Keys already looked up are served from
 *   the auth cache, stale if need be (plugins/auth: "a lookup that fails while a stale copy exists serves the stale
 *   copy"), and spend rows are held and written once it is back (plugins/spend): rows == calls after recovery.
 * Both: no crash, the stored spend equals the rows, no budget passed by more than the calls in flight when it was
 * reached, and memory back near its post-warm-up baseline.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { defaultChat, delay, startUpstream } from '../helpers/upstream.js'
import { startRedis } from '../helpers/redis.js'
import { startPostgres } from '../helpers/postgres.js'
import {
  INPUT_PRICE, MASTER, OUTPUT_PRICE, admin, durableDatabase, assertAlive, assertMemorySettles, chat, clientFor, deployment, eventually, generateKey,
  killAndRestartPostgres, loadWhile, pool, rssKb, sleep, spendRows, startCliGateway, assertTally, tally, type CallResult, type CliGateway,
  type VirtualKey,
} from './harness.js'

/** Calls in flight at once (the openai client's), and the deadline past which a call counts as a hang (ms). */
const CONCURRENCY = 16
const DEADLINE_MS = 20_000
/** The most one call can cost: "load <n> <key>" is at most 5 prompt tokens; the fake's reply is 8 tokens. */
const MAX_CALL_COST = 5 * INPUT_PRICE + 8 * OUTPUT_PRICE
/** The budgeted key's budget, USD: about 50 calls, so the load (a third of it on that key) passes it mid-way. */
const BUDGET = 1.0

// A little latency upstream, so the load overlaps the outage with calls in every stage (queued, in flight, settling).
const up = await startUpstream(t, { chat: delay(60, defaultChat()) })
const redis = await startRedis(t)
const pg = await startPostgres(t)
// Durable commits: a SIGKILLed server must not take acknowledged spend rows with it (see durableDatabase).
const db = await durableDatabase(pg)

// Redis: an unchanged LiteLLM config. The group's max_parallel_requests puts it behind the priority queue, and
// default_priority makes calls at capacity wait (in Redis) instead of getting a 429.
const withRedis = startCliGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  redis_url: ${redis.url}
  default_priority: 5
model_list:
${deployment('gpt-4o-mini', up.url, '      max_parallel_requests: 8\n')}`)
// PostgreSQL: the default chain, written out to give auth a 1 s cache, so the outage outlasts it: cached keys must
// still be served from their stale copy, as plugins/auth documents.
const withPg = startCliGateway(t, `
general_settings:
  master_key: ${MASTER}
  database_url: ${pg.urlFor(db)}
pipeline:
  - request-id
  - store-postgres
  - auth: { cache_ttl_ms: 1000 }
  - keys
  - spend
  - rate-limit
  - priority-queue
  - budget
  - router
model_list:
${deployment('gpt-4o-mini', up.url)}`)
const [gwR, gwP] = await Promise.all([withRedis, withPg])

/** Keys: one with a budget the load passes (checked for overshoot), one with limits only. */
async function keys(gw: CliGateway, budget: number) {
  const limited = { rpm_limit: 100_000, tpm_limit: 100_000_000, max_parallel_requests: 100 }
  return {
    budgeted: await generateKey(gw.url, { key_alias: 'budgeted', max_budget: budget, ...limited }),
    open: await generateKey(gw.url, { key_alias: 'open', ...limited }),
  }
}
const redisKeys = await keys(gwR, BUDGET)
const pgKeys = await keys(gwP, BUDGET)

/** Every call made per key token, for the spend-row check. */
const made = new Map<string, CallResult[]>()
function call(gw: CliGateway, k: VirtualKey, i: number, stream: boolean): Promise<CallResult> {
  return chat(clientFor(gw.url, k.key), 'gpt-4o-mini', `load ${i} ${k.token.slice(0, 4)}`, { stream, deadlineMs: DEADLINE_MS }).then((r) => {
    const list = made.get(k.token)
    if (list) list.push(r)
    else made.set(k.token, [r])
    return r
  })
}
const pick = (ks: { budgeted: VirtualKey; open: VirtualKey }, i: number) => (i % 3 === 0 ? ks.budgeted : ks.open)

// Warm-up, then the memory baselines.
await Promise.all([
  pool(60, CONCURRENCY, (i) => call(gwR, redisKeys.open, i, i % 2 === 0)),
  pool(60, CONCURRENCY, (i) => call(gwP, pgKeys.open, i, i % 2 === 0)),
])
const baseR = rssKb(gwR.pid)
const baseP = rssKb(gwP.pid)

/** Only served calls, and refusals for the budgeted key's budget. Anything else is listed. */
function unexpected(results: Array<{ result: CallResult }>, budgeted: VirtualKey): string[] {
  const out: string[] = []
  for (const { result: r } of results) {
    if (r.kind === 'ok') continue
    if (r.kind === 'error' && r.status === 400 && r.type === 'budget_exceeded' && made.get(budgeted.token)?.includes(r)) continue
    out.push(JSON.stringify(r))
  }
  return out
}

/**
 * Spend rows per key == calls admitted with it (every call that got past auth: a call refused for its key is not the
 * key's spend), success rows == served calls; the stored spend == the rows' sum.
 */
async function checkSpend(t: Test, gw: CliGateway, k: VirtualKey, what: string): Promise<number> {
  const calls = (made.get(k.token) ?? []).filter((c) => !(c.kind === 'error' && c.status === 401))
  const rows = await eventually(async () => {
    const r = await spendRows(gw.url, k.token)
    return r.length >= calls.length ? r : undefined
  }, 15_000, `${what}: ${calls.length} spend rows`).catch(async (e: Error) => {
    t.fail(e.message)
    return spendRows(gw.url, k.token)
  })
  t.equal(rows.length, calls.length, `${what}: one spend row per admitted call (${calls.length} calls, ${rows.length} rows)`)
  t.equal(new Set(rows.map((r) => r.request_id)).size, rows.length, `${what}: no row twice`)
  const ok = calls.filter((c) => c.kind === 'ok').length
  t.equal(rows.filter((r) => r.status === 'success').length, ok, `${what}: success rows == served calls (${ok})`)
  const sum = rows.reduce((a, r) => a + Number(r.spend), 0)
  const stored = await eventually(async () => {
    const v = (await admin(gw.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend as number
    return Math.abs(v - sum) < 1e-9 ? { v } : undefined
  }, 10_000, `${what}: stored spend = rows`).catch(async () => ({ v: (await admin(gw.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend as number }))
  t.ok(Math.abs(stored.v - sum) < 1e-9, `${what}: stored spend ${stored.v} = sum of the rows ${sum}`)
  return sum
}


/**
 * After the store is back: load for 3 s more, and on until the budgeted key has been refused for its budget (at most
 * 20 s), so the budget check has a reached budget to check however fast this machine is today.
 */
async function loadOnUntilRefused(k: VirtualKey): Promise<void> {
  await sleep(3_000)
  const refused = () => (made.get(k.token) ?? []).some((c) => c.kind === 'error' && c.type === 'budget_exceeded')
  await eventually(async () => refused(), 20_000, 'the budget to be reached').catch(() => undefined) // asserted after
}

const served = (k: VirtualKey) => (made.get(k.token) ?? []).filter((c) => c.kind === 'ok').length
/** Budgeted calls served before Redis is killed: 35 x ~0.02 = ~70% of the budget. */
const PRE_OUTAGE_CALLS = 35

/**
 * Estimate mode admits a call while money is left and holds its estimate, so a budget is passed by at most the calls
 * in flight when it was reached (plugins/budget). The most of the key's calls ever in flight at once, from the
 * client's start and end times, bounds that: spend <= budget + that many calls at their highest cost.
 */
function assertBudgetHeld(t: Test, results: Array<{ startedAt: number; result: CallResult }>, k: VirtualKey, spent: number): void {
  const mine = new Set(made.get(k.token) ?? [])
  const edges: Array<[number, number]> = []
  for (const r of results) {
    if (!mine.has(r.result)) continue
    edges.push([r.startedAt, 1], [r.startedAt + r.result.ms, -1])
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let now = 0
  let most = 0
  for (const [, d] of edges) most = Math.max(most, (now += d))
  const refused = [...mine].filter((c) => c.kind === 'error' && c.type === 'budget_exceeded').length
  t.ok(refused > 0, `the budget was reached (${refused} calls refused)`)
  const bound = BUDGET + most * MAX_CALL_COST
  t.ok(spent <= bound + 1e-9, `budget ${BUDGET}: spent ${spent.toFixed(4)} <= budget + the ${most} calls at most in flight at once (${bound.toFixed(4)})`)
}

t.test('Redis SIGKILLed under load and restarted empty: calls keep being served, the plugins go back to Redis', async (t) => {
  let running = true
  const load = loadWhile(() => running, CONCURRENCY, (i) => call(gwR, pick(redisKeys, i), 1000 + i, i % 2 === 1))
  // Kill once the budgeted key has spent most of its budget through Redis: the outage must not forget that spend.
  await eventually(async () => served(redisKeys.budgeted) >= PRE_OUTAGE_CALLS, 20_000, `${PRE_OUTAGE_CALLS} budgeted calls served`)
  const killedAt = Date.now()
  await redis.restart(1_500) // SIGKILL, 1.5 s down, up again on the same port with no keys at all
  const upAt = Date.now()
  await loadOnUntilRefused(redisKeys.budgeted)
  running = false
  const results = await load
  t.comment(`${results.length} calls: ${JSON.stringify(tally(results.map((r) => r.result)))}`)
  t.same(unexpected(results, redisKeys.budgeted), [], 'every call served, or refused for its key\'s budget: no 5xx, no 429, no broken connection')
  const during = results.filter((r) => r.startedAt > killedAt && r.startedAt < upAt)
  t.ok(during.filter((r) => r.result.kind === 'ok').length > 10, `calls were served while Redis was down (${during.length} started then)`)
  t.match(gwR.stderr(), /Redis unreachable/, 'the outage was logged')

  // Back to Redis: readiness says connected, and the budget ledger and rate-limit windows are in it again.
  await eventually(async () => {
    const r = await fetch(`${gwR.url}/health/readiness`)
    return r.status === 200 && ((await r.json()) as { cache_status?: string }).cache_status === 'connected'
  }, 10_000, 'readiness: Redis connected')
  await sleep(1_100) // the plugins retry Redis 1 s after their last failure
  const after = await pool(20, 10, (i) => call(gwR, redisKeys.open, 5000 + i, i % 2 === 0))
  assertTally(t, after, { ok: 20 }, 'served after the restart')
  const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  t.teardown(() => r.disconnect())
  await r.connect()
  const stored = await r.keys('sy:*')
  t.ok(stored.includes(`sy:{sy}:b:key:${redisKeys.open.token}`), 'the budget ledger is in Redis again')
  t.ok(stored.some((k) => k.startsWith('sy:{sy}:rl:')), 'the rate-limit windows are in Redis again')
  const queue = await admin(gwR.url, 'GET', '/queue/status')
  t.equal(queue.body.shared, true, '/queue/status: the queue is shared through Redis')
  t.ok(queue.body.redis_fallbacks > 0, `and counted the calls it gated in process meanwhile (${queue.body.redis_fallbacks})`)

  // Money: the budget was passed by no more than the calls in flight when it was reached.
  const spent = await checkSpend(t, gwR, redisKeys.budgeted, 'budgeted key')
  await checkSpend(t, gwR, redisKeys.open, 'open key')
  assertBudgetHeld(t, results, redisKeys.budgeted, spent)
  assertAlive(t, gwR, 'after the Redis outage')
  await assertMemorySettles(t, gwR, baseR, 'after the Redis outage')
})

t.test('PostgreSQL SIGKILLed under load and restarted: calls keep being served, no spend row is lost', async (t) => {
  let running = true
  const load = loadWhile(() => running, CONCURRENCY, (i) => call(gwP, pick(pgKeys, i), 1000 + i, i % 2 === 1))
  await sleep(1_500)
  // Down for 2.5 s: longer than the auth cache (1 s) and than several spend flushes (200 ms).
  const { killedAt, upAt } = await killAndRestartPostgres(pg, 2_500)
  await loadOnUntilRefused(pgKeys.budgeted)
  running = false
  const results = await load
  t.comment(`${results.length} calls: ${JSON.stringify(tally(results.map((r) => r.result)))}; PostgreSQL down ${upAt - killedAt} ms`)
  // KNOWN BUG, plugins/auth (not this suite's to fix): once a key's cache entry has expired, LRUCache.get() deletes
  // it, so the store lookup that fails during the outage has no stale copy to fall back on and the valid key gets a
  // 401 "Invalid proxy server token". Fix: `noDeleteOnStaleGet: true` in recordCache's LRUCache options.
  const refusedValid = results.filter((r) => r.result.kind === 'error' && r.result.status === 401).length
  t.equal(refusedValid, 0, `no valid key refused with 401 while the database was down (${refusedValid} were: plugins/auth drops the stale copy it documents serving)`)
  t.same(unexpected(results, pgKeys.budgeted).filter((r) => !r.includes('"status":401')), [], 'every other call served, or refused for its key\'s budget: no 5xx, no broken connection')
  const during = results.filter((r) => r.startedAt > killedAt && r.startedAt < upAt)
  t.ok(during.filter((r) => r.result.kind === 'ok').length > 10, `calls were served while PostgreSQL was down (${during.length} started then)`)
  t.match(gwP.stderr(), /spend store unavailable/, 'the spend writer logged the outage')

  const spent = await checkSpend(t, gwP, pgKeys.budgeted, 'budgeted key')
  await checkSpend(t, gwP, pgKeys.open, 'open key')
  t.match(gwP.stderr(), /spend store available again/, 'and its end')
  assertBudgetHeld(t, results, pgKeys.budgeted, spent)
  const after = await pool(20, 10, (i) => call(gwP, pgKeys.open, 5000 + i, i % 2 === 0))
  assertTally(t, after, { ok: 20 }, 'served after the restart')
  const fresh = await generateKey(gwP.url, { key_alias: 'after-restart' })
  assertTally(t, [await call(gwP, fresh, 0, false)], { ok: 1 }, 'a key made after the restart works')
  await checkSpend(t, gwP, pgKeys.open, 'open key, after the restart')
  assertAlive(t, gwP, 'after the PostgreSQL outage')
  await assertMemorySettles(t, gwP, baseP, 'after the PostgreSQL outage')
})
