/**
 * The budget ledger: one suite run against the in-process ledger and the Redis ledger (a real redis-server), then
 * what only Redis has: two replicas sharing one budget, a crashed replica's leases, data loss, an outage.
 * Time is a fake clock handed to the ledger, never a sleep.
 */
import t, { type Test } from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Redis } from 'ioredis'
import { rollForward } from '../../core/duration.js'
import {
  createLocalLedger, LedgerUnavailableError, type BudgetLimit, type LeasedLedger, type LedgerOptions,
} from '../../plugins/budget/ledger.js'
import { createRedisLedger } from '../../plugins/budget/ledger-redis.js'
import { createStateRedisClient } from '../../plugins/state-redis/index.js'
import { startRedis } from '../helpers/redis.js'

// WeakRef-held reservations are only observable with a forced collection; this is how node exposes gc at runtime.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const LEASE_MS = 60_000
const START = Date.UTC(2025, 0, 10, 12, 0, 0)

function fakeClock(start = START) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms }, set: (ms: number) => { now = ms } }
}

const limit = (scope: string, max: number | null, extra: Partial<BudgetLimit> = {}): BudgetLimit =>
  ({ scope, max, duration: null, seed: { spend: 0, resetAt: null }, ...extra })

const micros = (usd: number) => Math.round(usd * 1e6)
const tick = () => new Promise<void>((r) => setImmediate(r))

type Make = (t: Test, opts: LedgerOptions) => Promise<LeasedLedger>

/**
 * A client made as state-redis makes it (key prefix, command timeout, no offline queue once connected). Correctness
 * tests use a 5 s command timeout so a loaded test machine cannot turn them into outage tests; the outage test uses
 * the plugin's default, 500 ms.
 */
async function stateClient(t: Test, url: string, commandTimeoutMs = 5_000): Promise<Redis> {
  const c = createStateRedisClient({ url, command_timeout_ms: commandTimeoutMs, key_prefix: 'sy:' }, {})
  c.on('error', () => {})   // outages are part of some tests; the ledger reports them
  await c.connect()
  t.teardown(() => { c.disconnect() })
  return c
}

function suite(t: Test, make: Make): void {
  t.test('reserve, settle, read: reserved becomes spend', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const limits = [limit('key:k1', 10), limit('team:t1', null)]
    const r = await l.reserve(limits, 1.5)
    if (!r.ok) throw new Error('refused')
    t.same(r.reservation.scopes, ['key:k1', 'team:t1'])
    t.equal(r.reservation.amount, 1.5)
    t.same(r.states, { 'key:k1': { spend: 0, reserved: 1.5, resetAt: null }, 'team:t1': { spend: 0, reserved: 1.5, resetAt: null } })
    t.equal(l.live(), 1)
    const after = await l.settle(r.reservation, 0.42)
    t.same(after['key:k1'], { spend: 0.42, reserved: 0, resetAt: null })
    t.same(after['team:t1'], { spend: 0.42, reserved: 0, resetAt: null })
    t.same(await l.read('key:k1'), { spend: 0.42, reserved: 0, resetAt: null })
    t.equal(await l.read('key:none'), null)
    t.equal(l.live(), 0)
  })

  t.test('need: what must fit may be less than what is reserved (estimate mode)', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const limits = [limit('key:n1', 1)]
    const a = await l.reserve(limits, 0.8, 1e-6)
    t.ok(a.ok, 'admitted with money left, holding 0.8')
    const b = await l.reserve(limits, 0.8, 1e-6)
    t.ok(b.ok, '0.2 left: admitted, holding another 0.8 (reserved may pass the max)')
    const c = await l.reserve(limits, 0.8, 1e-6)
    t.notOk(c.ok, 'spend + reserved >= max: refused')
    if (!c.ok) t.same([c.spend, c.reserved, c.max], [0, 1.6, 1])
    if (a.ok) await l.settle(a.reservation, 0.1)
    t.ok((await l.reserve(limits, 0.8, 1e-6)).ok, 'a settled call frees what it did not spend')
    t.notOk((await l.reserve(limits, 0.8)).ok, 'without need, the whole amount must fit')
  })

  t.test('all or nothing over several scopes; the first scope over its max is reported', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const key = limit('key:k1', 10)
    const team = limit('team:t1', 1, { seed: { spend: 0.8, resetAt: null } })
    const user = limit('user:u1', 0.5, { seed: { spend: 0.5, resetAt: null } })
    const no = await l.reserve([key, team, user], 0.3)
    t.match(no, { ok: false, scope: 'team:t1', spend: 0.8, reserved: 0, max: 1, resetAt: null })
    t.same(await l.read('key:k1'), { spend: 0, reserved: 0, resetAt: null }, 'nothing reserved on the scope that had room')
    const no2 = await l.reserve([key, user, team], 0.1)
    t.match(no2, { ok: false, scope: 'user:u1', spend: 0.5, max: 0.5 }, 'spend >= max refuses even a small amount')
    const zero = await l.reserve([user], 0)
    t.equal(zero.ok, false, 'spend at max refuses a zero reservation')
    const exact = await l.reserve([key, team], 0.2)
    t.equal(exact.ok, true, 'spend + reserved + amount == max fits')
    const over = await l.reserve([key, team], 0.000001)
    t.match(over, { ok: false, scope: 'team:t1', spend: 0.8, reserved: 0.2 }, 'in-flight reservations count')
    t.same(await l.read('key:k1'), { spend: 0, reserved: 0.2, resetAt: null })
    t.equal(l.live(), 1)
  })

  t.test('null max tracks spend and never refuses; a repeated scope counts once', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const free = limit('end_user:e1', null, { seed: { spend: 1e6, resetAt: null } })
    const r = await l.reserve([free, free], 5000)
    if (!r.ok) throw new Error('refused')
    t.same(r.reservation.scopes, ['end_user:e1'])
    t.same(r.states['end_user:e1'], { spend: 1e6, reserved: 5000, resetAt: null })
    await l.settle(r.reservation, 4321.123456)
    t.same(await l.read('end_user:e1'), { spend: 1004321.123456, reserved: 0, resetAt: null })
  })

  t.test('the seed is used only when the ledger has no entry', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const reset = new Date(START + 3_600_000).toISOString()
    const r = await l.reserve([limit('key:k1', 10, { duration: '1d', seed: { spend: 2.5, resetAt: reset } })], 1)
    t.match(r, { ok: true, states: { 'key:k1': { spend: 2.5, reserved: 1, resetAt: reset } } })
    const r2 = await l.reserve([limit('key:k1', 10, { duration: '1d', seed: { spend: 9, resetAt: null } })], 1)
    t.match(r2, { ok: true, states: { 'key:k1': { spend: 2.5, reserved: 2, resetAt: reset } } }, 'the ledger\'s own figures win')
  })

  t.test('charge adds spend without a reservation, seeding a missing scope, past the max', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const s = await l.charge([limit('key:k1', 1, { seed: { spend: 0.9, resetAt: null } }), limit('team:t1', null)], 0.25)
    t.same(s, { 'key:k1': { spend: 1.15, reserved: 0, resetAt: null }, 'team:t1': { spend: 0.25, reserved: 0, resetAt: null } })
    t.equal(l.live(), 0)
    t.match(await l.reserve([limit('key:k1', 1)], 0.01), { ok: false, scope: 'key:k1', spend: 1.15 })
  })

  t.test('set keeps reserved; forget drops the scope and the next use reseeds', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const key = limit('key:k1', 10, { seed: { spend: 3, resetAt: null } })
    const r = await l.reserve([key], 2)
    if (!r.ok) throw new Error('refused')
    const reset = '2025-02-01T00:00:00.000Z'
    await l.set('key:k1', { spend: 7.5, resetAt: reset })
    t.same(await l.read('key:k1'), { spend: 7.5, reserved: 2, resetAt: reset })
    await l.set('key:k1', { spend: 0, resetAt: null })
    t.same(await l.read('key:k1'), { spend: 0, reserved: 2, resetAt: null })
    await l.set('team:new', { spend: 4, resetAt: null })
    t.same(await l.read('team:new'), { spend: 4, reserved: 0, resetAt: null }, 'set creates a missing scope')
    await l.forget('key:k1')
    t.equal(await l.read('key:k1'), null)
    const s = await l.settle(r.reservation, 1)
    t.same(s, {}, 'a settle does not recreate a forgotten scope from the cost alone')
    t.equal(await l.read('key:k1'), null)
    t.match(await l.reserve([key], 1), { ok: true, states: { 'key:k1': { spend: 3, reserved: 1 } } }, 'reseeded')
  })

  t.test('a scope forgotten and created again: old reservations never touch the new one\'s reserved', async (t) => {
    const clock = fakeClock()
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const team = limit('team:t1', 10)
    const settled = await l.reserve([team], 4)
    const expiring = await l.reserve([team], 3)
    if (!settled.ok || !expiring.ok) throw new Error('refused')
    await l.forget('team:t1')
    clock.advance(LEASE_MS / 2)
    const fresh = await l.reserve([team], 1)
    t.match(fresh, { ok: true, states: { 'team:t1': { spend: 0, reserved: 1 } } })
    const s = await l.settle(settled.reservation, 2)
    t.same(s['team:t1'], { spend: 2, reserved: 1, resetAt: null }, 'the cost counts, the old amount is not given back')
    clock.advance(LEASE_MS / 2)
    t.match(await l.reserve([team], 0), { ok: true, states: { 'team:t1': { reserved: 1 } } }, 'the old lease expired without touching it')
    t.ok(fresh.ok && expiring.ok)
  })

  t.test('settle is idempotent', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    const key = limit('key:k1', 10)
    const r = await l.reserve([key], 1)
    const other = await l.reserve([key], 2)
    if (!r.ok || !other.ok) throw new Error('refused')
    await l.settle(r.reservation, 0.6)
    const again = await l.settle(r.reservation, 0.6)
    t.same(again['key:k1'], { spend: 0.6, reserved: 2, resetAt: null }, 'cost once, reserved given back once')
    t.same(await l.read('key:k1'), { spend: 0.6, reserved: 2, resetAt: null })
  })

  t.test('a lease that is not renewed expires; a settle after that adds the cost only', async (t) => {
    const clock = fakeClock()
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const key = limit('key:k1', 10)
    const r1 = await l.reserve([key], 4)
    if (!r1.ok) throw new Error('refused')
    clock.advance(LEASE_MS - 1)
    t.match(await l.reserve([key], 1), { ok: true, states: { 'key:k1': { reserved: 5 } } }, 'held until the lease ends')
    clock.advance(2)
    t.match(await l.reserve([key], 1), { ok: true, states: { 'key:k1': { reserved: 2 } } }, 'r1 released (its lease expired); r2 still held')
    const s = await l.settle(r1.reservation, 3.5)
    t.same(s['key:k1'], { spend: 3.5, reserved: 2, resetAt: null }, 'cost added, reserved not given back twice')
    await l.settle(r1.reservation, 3.5)
    t.same(await l.read('key:k1'), { spend: 3.5, reserved: 2, resetAt: null }, 'still idempotent')
  })

  t.test('renewal keeps a long call\'s reservation past the lease', async (t) => {
    const clock = fakeClock()
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const key = limit('key:k1', 10)
    const long = await l.reserve([key], 4)
    if (!long.ok) throw new Error('refused')
    for (let i = 0; i < 5; i++) {
      clock.advance(LEASE_MS * 0.6)
      await l.renew()
    }
    clock.advance(LEASE_MS * 0.6)
    t.match(await l.reserve([key], 1), { ok: true, states: { 'key:k1': { reserved: 5 } } }, '3.6 leases later, still held')
    const s = await l.settle(long.reservation, 3)
    t.same(s['key:k1'], { spend: 3, reserved: 1, resetAt: null })
  })

  t.test('a reservation dropped without a settle stops being renewed and expires', async (t) => {
    const clock = fakeClock()
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const key = limit('key:k1', 10)
    const kept = await l.reserve([key], 1)
    await (async () => { await l.reserve([key], 4) })()   // the caller forgets it (a bug): nothing refers to it
    await tick()
    gc()
    clock.advance(LEASE_MS * 0.6)
    await l.renew()
    clock.advance(LEASE_MS * 0.6)
    const r = await l.reserve([key], 0)
    t.match(r, { ok: true, states: { 'key:k1': { reserved: 1 } } }, 'the dropped 4 released, the held 1 kept')
    t.ok(kept.ok)
  })

  t.test('rollover on a fake clock: 30s', async (t) => {
    const clock = fakeClock()
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const key = limit('key:k1', 1, { duration: '30s' })
    const first = await l.charge([key], 0.9)
    t.same(first['key:k1'], { spend: 0.9, reserved: 0, resetAt: new Date(START + 30_000).toISOString() }, 'a duration without resetAt gets one')
    clock.advance(29_999)
    t.match(await l.reserve([key], 0.2), { ok: false, scope: 'key:k1', spend: 0.9 })
    clock.advance(1)
    const r = await l.reserve([key], 0.2)
    t.match(r, { ok: true, states: { 'key:k1': { spend: 0, reserved: 0.2, resetAt: new Date(START + 60_000).toISOString() } } })
    clock.advance(95_000)
    const late = await l.charge([key], 0.1)
    t.same(late['key:k1'], { spend: 0.1, reserved: 0.2, resetAt: rollForward(new Date(START + 60_000).toISOString(), '30s', clock.now()) })
    t.equal(late['key:k1']!.resetAt, new Date(START + 150_000).toISOString(), 'periods it slept through are skipped')
  })

  t.test('rollover on a fake clock: 1d, from a seeded resetAt', async (t) => {
    const clock = fakeClock()
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const seedReset = new Date(START - 3 * 86_400_000 - 3_600_000).toISOString()   // passed 3 days and an hour ago
    const key = limit('key:k1', 5, { duration: '1d', seed: { spend: 4.99, resetAt: seedReset } })
    const r = await l.reserve([key], 1)
    t.match(r, { ok: true, states: { 'key:k1': { spend: 0, reserved: 1, resetAt: new Date(START + 86_400_000 - 3_600_000).toISOString() } } })
    t.equal(rollForward(seedReset, '1d', START), new Date(START + 82_800_000).toISOString(), 'same boundary as core/duration')
  })

  t.test('rollover on a fake clock: 1mo (calendar months)', async (t) => {
    const clock = fakeClock(Date.UTC(2025, 1, 3))
    const l = await make(t, { leaseMs: LEASE_MS, now: clock.now })
    const key = limit('key:k1', 5, { duration: '1mo', seed: { spend: 4, resetAt: '2025-01-31T00:00:00.000Z' } })
    const r = await l.reserve([key], 1)
    t.match(r, { ok: true, states: { 'key:k1': { spend: 0, reserved: 1, resetAt: '2025-02-28T00:00:00.000Z' } } }, 'Jan 31 + 1mo = Feb 28')
    if (!r.ok) return
    await l.settle(r.reservation, 2)
    clock.set(Date.UTC(2025, 2, 1))
    t.match(await l.reserve([key], 0), { ok: true, states: { 'key:k1': { spend: 0, resetAt: '2025-03-28T00:00:00.000Z' } } })
    // The stored reset differs from the seed (an admin set it): the boundary follows the stored one.
    await l.set('key:k1', { spend: 3, resetAt: '2025-03-15T00:00:00.000Z' })
    clock.set(Date.UTC(2025, 4, 20))
    const after = await l.charge([key], 0.5)
    t.same(after['key:k1'], { spend: 0.5, reserved: 0, resetAt: rollForward('2025-03-15T00:00:00.000Z', '1mo', clock.now()) })
    t.equal(after['key:k1']!.resetAt, '2025-06-15T00:00:00.000Z')
    const fresh = await l.charge([limit('team:t1', null, { duration: '1mo' })], 1)
    t.equal(fresh['team:t1']!.resetAt, '2025-06-20T00:00:00.000Z', 'no resetAt yet: one month from now')
  })

  t.test('500 concurrent reserve+settle cycles on a small budget', async (t) => {
    const l = await make(t, { leaseMs: LEASE_MS, now: fakeClock().now })
    await concurrentCycles(t, [l], 500)
  })
}

/**
 * n cycles started at once, spread over the given ledgers (replicas when there are several): a random delay, reserve
 * 0.05, another delay, settle a random cost up to the reservation; the delays interleave reserves and settles.
 * Spend (+ reserved) never passes the max at any point, the final spend is exactly the sum of the settled costs, and
 * nothing stays reserved.
 */
async function concurrentCycles(t: Test, ledgers: LeasedLedger[], n: number): Promise<void> {
  const MAX = 3
  const AMOUNT = 0.05
  const limits = [limit('key:hot', MAX), limit('team:hot', null, { seed: { spend: 10, resetAt: null } })]
  let settled = 0
  let admitted = 0
  let refused = 0
  let worst = 0
  let wrongRefusals = 0
  const jitter = async (ticks: number) => {
    for (let k = Math.floor(Math.random() * ticks); k > 0; k--) await tick()
  }
  const cycle = async (l: LeasedLedger) => {
    await jitter(40)
    const r = await l.reserve(limits, AMOUNT)
    if (!r.ok) {
      refused++
      if (!(micros(r.spend + r.reserved + AMOUNT) > micros(MAX) || r.spend >= MAX)) wrongRefusals++
      return
    }
    admitted++
    worst = Math.max(worst, micros(r.states['key:hot']!.spend + r.states['key:hot']!.reserved))
    await jitter(10)
    const cost = Math.floor(Math.random() * micros(AMOUNT) + 1) / 1e6
    const s = await l.settle(r.reservation, cost)
    settled += micros(cost)
    worst = Math.max(worst, micros(s['key:hot']!.spend))
  }
  await Promise.all(Array.from({ length: n }, (_, i) => cycle(ledgers[i % ledgers.length]!)))
  const key = (await ledgers[0]!.read('key:hot'))!
  const team = (await ledgers[0]!.read('team:hot'))!
  t.ok(admitted > 50 && refused > 50, `both admitted (${admitted}) and refused (${refused}) calls`)
  t.equal(wrongRefusals, 0, 'refused only when the call would not fit')
  t.ok(worst <= micros(MAX), `spend + reserved never passed the max (worst ${worst / 1e6})`)
  t.equal(micros(key.spend), settled, 'spend is exactly the sum of settled costs')
  t.equal(micros(team.spend), micros(10) + settled, 'the unlimited scope tracked the same costs')
  t.equal(key.reserved, 0)
  t.equal(team.reserved, 0)
  for (const l of ledgers) t.equal(l.live(), 0)
}

t.test('local ledger', async (t) => {
  suite(t, async (t, opts) => {
    const l = createLocalLedger(opts)
    t.teardown(() => l.close())
    return l
  })
})

t.test('redis ledger', async (t) => {
  const redis = await startRedis(t)
  const client = await stateClient(t, redis.url)
  let n = 0
  suite(t, async (t, opts) => {
    const l = createRedisLedger({ ...opts, redis: client, prefix: `s${++n}:` })
    t.teardown(() => l.close())
    return l
  })

  t.test('key layout: one hash slot, the client key prefix applied to keys the scripts derive', async (t) => {
    const l = createRedisLedger({ redis: client, prefix: 'layout:', now: fakeClock().now })
    t.teardown(() => l.close())
    const r = await l.reserve([limit('key:k1', 1), limit('team:t1', 1)], 0.5)
    if (!r.ok) throw new Error('refused')
    const keys = (await client.keys('sy:layout:*')).sort()
    t.same(keys, ['sy:layout:{sy}:b:key:k1', 'sy:layout:{sy}:b:team:t1', 'sy:layout:{sy}:gen', 'sy:layout:{sy}:leases', `sy:layout:{sy}:r:${r.reservation.id}`])
    t.same(await client.hgetall('layout:{sy}:b:key:k1'), { spend: '0', reserved: '500000', reset_at: '', gen: '1' }, 'integer micro-dollars')
  })

  t.test('two replicas (two clients) share one budget exactly', async (t) => {
    const a = createRedisLedger({ redis: await stateClient(t, redis.url), prefix: 'two:', now: fakeClock().now })
    const b = createRedisLedger({ redis: await stateClient(t, redis.url), prefix: 'two:', now: fakeClock().now })
    t.teardown(() => Promise.all([a.close(), b.close()]))
    await concurrentCycles(t, [a, b], 500)
  })

  t.test('a crashed replica\'s reservations are released by the other one after the lease', async (t) => {
    const clock = fakeClock()
    const a = createRedisLedger({ redis: await stateClient(t, redis.url), prefix: 'crash:', leaseMs: LEASE_MS, now: clock.now })
    const b = createRedisLedger({ redis: await stateClient(t, redis.url), prefix: 'crash:', leaseMs: LEASE_MS, now: clock.now })
    t.teardown(() => b.close())
    const key = limit('key:k1', 1)
    const held = await a.reserve([key], 0.7)
    t.ok(held.ok)
    await a.close()   // crash: no settle, the renewal timer is gone
    t.match(await b.reserve([key], 0.5), { ok: false, scope: 'key:k1', reserved: 0.7 }, 'still held before the lease ends')
    clock.advance(LEASE_MS)
    t.match(await b.reserve([key], 0.5), { ok: true, states: { 'key:k1': { spend: 0, reserved: 0.5 } } }, 'released by b\'s reserve')
    t.equal(await client.zcard('crash:{sy}:leases'), 1, 'only b\'s lease is left')
  })

  t.test('renewal by one replica keeps its lease alive against the other', async (t) => {
    const clock = fakeClock()
    const a = createRedisLedger({ redis: await stateClient(t, redis.url), prefix: 'renew:', leaseMs: LEASE_MS, now: clock.now })
    const b = createRedisLedger({ redis: await stateClient(t, redis.url), prefix: 'renew:', leaseMs: LEASE_MS, now: clock.now })
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const key = limit('key:k1', 1)
    const long = await a.reserve([key], 0.7)
    if (!long.ok) throw new Error('refused')
    clock.advance(LEASE_MS * 0.9)
    await a.renew()
    clock.advance(LEASE_MS * 0.9)
    t.match(await b.reserve([key], 0.5), { ok: false, reserved: 0.7 }, 'held 1.8 leases later')
    clock.advance(LEASE_MS)   // a stops renewing (as if it crashed)
    t.match(await b.reserve([key], 0.5), { ok: true, states: { 'key:k1': { reserved: 0.5 } } })
    await a.renew()
    t.equal(a.live(), 0, 'a learns on renewal that its lease is gone')
    t.same((await a.settle(long.reservation, 0.6))['key:k1'], { spend: 0.6, reserved: 0.5, resetAt: null }, 'late settle adds the cost only')
  })

  t.test('Redis restarted with its data lost: scopes reseed from the seed', async (t) => {
    const r2 = await startRedis(t)
    const c = await stateClient(t, r2.url)
    const l = createRedisLedger({ redis: c, prefix: 'lost:', now: fakeClock().now })
    t.teardown(() => l.close())
    const key = limit('key:k1', 10, { seed: { spend: 1, resetAt: null } })
    const before = await l.reserve([key], 2)
    if (!before.ok) throw new Error('refused')
    await r2.restart()
    await waitReady(c)
    t.equal(await l.read('key:k1'), null, 'the data is gone')
    const persisted = limit('key:k1', 10, { seed: { spend: 4.25, resetAt: null } })
    t.match(await l.reserve([persisted], 1), { ok: true, states: { 'key:k1': { spend: 4.25, reserved: 1 } } }, 'reseeded')
    const s = await l.settle(before.reservation, 1.5)
    t.same(s['key:k1'], { spend: 5.75, reserved: 1, resetAt: null }, 'a settle from before the loss adds its cost only')
  })

  t.test('Redis stopped: calls reject with LedgerUnavailableError within a second', async (t) => {
    const r3 = await startRedis(t)
    const c = await stateClient(t, r3.url, 500)
    // A bare client (offline queue on, no command timeout): the ledger's own timer bounds the wait.
    const bare = new Redis(r3.url, { maxRetriesPerRequest: null })
    bare.on('error', () => {})
    t.teardown(() => { bare.disconnect() })
    await bare.ping()
    const ledgers = { 'state-redis client': createRedisLedger({ redis: c, prefix: 'down:' }), 'bare client': createRedisLedger({ redis: bare, prefix: 'down:' }) }
    const key = limit('key:k1', 10)
    const r = await ledgers['state-redis client'].reserve([key], 1)
    if (!r.ok) throw new Error('refused')
    await r3.stop()
    for (const [name, l] of Object.entries(ledgers)) {
      t.teardown(() => l.close())
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['renew', () => l.renew()], ['reserve', () => l.reserve([key], 1)], ['settle', () => l.settle(r.reservation, 1)],
        ['charge', () => l.charge([key], 1)], ['read', () => l.read('key:k1')], ['set', () => l.set('key:k1', { spend: 0, resetAt: null })],
        ['forget', () => l.forget('key:k1')],
      ]
      for (const [op, fn] of calls) {
        const started = Date.now()
        const err = await fn().then(() => null, (e: unknown) => e)
        const ms = Date.now() - started
        if (op === 'renew' && err === null && l.live() === 0) continue   // nothing held: renewal has nothing to send
        t.ok(err instanceof LedgerUnavailableError, `${name}: ${op} rejects with LedgerUnavailableError (${String(err)})`)
        t.ok(ms < 1000, `${name}: ${op} gave up in ${ms} ms`)
      }
    }
  })
})

/** Wait until a client reconnected after a restart (bounded: 10 s). */
async function waitReady(c: Redis): Promise<void> {
  const deadline = Date.now() + 10_000
  while (c.status !== 'ready') {
    if (Date.now() > deadline) throw new Error(`client still ${c.status}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
