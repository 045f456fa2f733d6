/**
 * The Redis ledger: every replica on one Redis shares one budget exactly. Each operation is one Lua script
 * (ioredis `defineCommand`), so a reserve's check-then-add cannot interleave with another replica's.
 *
 * Keys (all in one hash slot through the `{sy}` tag, so a script may touch the keys of any scope and a Redis Cluster
 * keeps them on one node):
 *   <prefix>{sy}:b:<scope>   hash  spend, reserved (integer micro-dollars), reset_at (epoch ms, '' = none), gen
 *   <prefix>{sy}:leases      zset  reservation id -> lease expiry (epoch ms)
 *   <prefix>{sy}:r:<id>      hash  amount (micro-dollars), scopes and gens (JSON), state live|released|settled
 *   <prefix>{sy}:gen         counter for `gen`: a scope created again after a `forget` gets a new generation, and
 *                            a reservation gives its amount back only to the generation it reserved on
 * A client `keyPrefix` (state-redis sets one) is applied by ioredis to the declared keys; the scripts derive the keys
 * they find in lease records from KEYS[1], so they get the same prefix.
 *
 * Time is the caller's clock (`now`, passed in ARGV), so tests can use a fake one and replicas agree as far as their
 * clocks do. Money is integer micro-dollars (see ledger.ts), added with HINCRBY: exact in Redis and in Lua's doubles.
 */
import type { Redis } from 'ioredis'
import { parseDuration, addDuration, rollForward } from '../../core/duration.js'
import {
  DEFAULT_LEASE_MS, TOMBSTONE_LEASES, LedgerUnavailableError, fromMicros, isoOrNull, msOrNull, renewalTimer, reservationIds,
  toMicros, uniqueLimits, type BudgetLimit, type HeldRef, type LeasedLedger, type LedgerOptions, type Reservation, type ScopeState,
} from './ledger.js'

export { LedgerUnavailableError } from './ledger.js'

export interface RedisLedgerOptions extends LedgerOptions {
  redis: Redis
  /** Prepended to every key, before the `{sy}` hash tag (default ''). */
  prefix?: string
  /** Give up on a call after this long, ms, when the client has no `commandTimeout` of its own (default 500). */
  timeoutMs?: number
}

/** Expired leases released per reserve, so one call after a long outage cannot run a script for long: 100. */
const RELEASE_LIMIT = 100
/** Reservations renewed per script call: 500, for the same reason. */
const RENEW_BATCH = 500
/** Retries of a reserve or charge whose calendar rollover needed a boundary from another reset (see pushScope). */
const HINT_RETRIES = 3
/** Redis replies that mean "not now" rather than "wrong": the caller should fall back, as when Redis is down. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM|NOREPLICAS)\b/

// Shared Lua. Numbers are written with '%.0f' because Lua's tostring switches to exponent notation past 1e14.
// Per-scope ARGV (7 fields from index i): name, max ('' = none), step ('' = no duration, 'c' = calendar, else ms),
// hint_reset, hint_next, seed_spend, seed_reset.
const PRELUDE = `
local leases = KEYS[1]
local base = string.sub(leases, 1, -7)
local now = tonumber(ARGV[1])
local function num(x) return string.format('%.0f', x) end

local function new_gen() return tostring(redis.call('INCR', base .. 'gen')) end

-- Take a reservation's amount off the reserved of each scope it was made on (same generation only).
local function give_back(keys, gens, amount)
  if amount == 0 then return end
  for k, key in ipairs(keys) do
    if redis.call('HGET', key, 'gen') == gens[k] then redis.call('HINCRBY', key, 'reserved', num(-amount)) end
  end
end

local function release_expired(limit, tombstone_ms)
  local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local rkey = base .. 'r:' .. id
    local r = redis.call('HMGET', rkey, 'amount', 'scopes', 'gens')
    local amount = tonumber(r[1])
    if amount then
      local keys = {}
      for k, scope in ipairs(cjson.decode(r[2])) do keys[k] = base .. 'b:' .. scope end
      give_back(keys, cjson.decode(r[3]), amount)
      redis.call('HSET', rkey, 'state', 'released')
      redis.call('PEXPIRE', rkey, tombstone_ms)
    end
    redis.call('ZREM', leases, id)
  end
end

-- The scope's spend, reserved, reset ('' = none) and gen, seeded when missing and rolled over when its period ended;
-- or nil and the stored reset when a calendar rollover is due and the caller's boundary came from another reset.
local function load(j, i)
  local key = KEYS[j + 1]
  local h = redis.call('HMGET', key, 'spend', 'reserved', 'reset_at', 'gen')
  local spend, reserved, reset, gen
  if h[1] then
    spend, reserved, reset, gen = tonumber(h[1]), tonumber(h[2]) or 0, h[3] or '', h[4] or ''
  else
    spend, reserved, reset, gen = tonumber(ARGV[i + 5]), 0, ARGV[i + 6], new_gen()
    redis.call('HSET', key, 'spend', ARGV[i + 5], 'reserved', '0', 'reset_at', reset, 'gen', gen)
  end
  local step = ARGV[i + 2]
  if step ~= '' then
    local r = tonumber(reset)
    if r == nil or r <= now then
      local nxt
      if step == 'c' then
        if reset ~= ARGV[i + 3] then return nil, reset end
        nxt = ARGV[i + 4]
      elseif r == nil then
        nxt = num(now + tonumber(step))
      else
        local s = tonumber(step)
        nxt = num(r + (math.floor((now - r) / s) + 1) * s)
      end
      if r ~= nil then spend = 0 end
      reset = nxt
      redis.call('HSET', key, 'spend', num(spend), 'reset_at', reset)
    end
  end
  return spend, reserved, reset, gen
end

local function states(n, out)
  for j = 1, n do
    local h = redis.call('HMGET', KEYS[j + 1], 'spend', 'reserved', 'reset_at')
    if h[1] then
      out[#out + 1] = h[1]; out[#out + 1] = h[2] or '0'; out[#out + 1] = h[3] or ''
    else
      out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''
    end
  end
  return out
end
`

// ARGV: now, lease_ms, id, amount, release_limit, tombstone_ms, scopes_json, need, then 7 per scope from 9.
const RESERVE = PRELUDE + `
release_expired(tonumber(ARGV[5]), ARGV[6])
local n = #KEYS - 1
local need = tonumber(ARGV[8])
local spend, reserved, reset, gens = {}, {}, {}, {}
for j = 1, n do
  local s, r, z, g = load(j, 9 + (j - 1) * 7)
  if s == nil then return {'retry', j, r} end
  spend[j], reserved[j], reset[j], gens[j] = s, r, z, g
end
for j = 1, n do
  local max = ARGV[9 + (j - 1) * 7 + 1]
  if max ~= '' then
    local m = tonumber(max)
    if spend[j] >= m or spend[j] + reserved[j] + need > m then
      return {'refused', j, num(spend[j]), num(reserved[j]), reset[j]}
    end
  end
end
for j = 1, n do redis.call('HINCRBY', KEYS[j + 1], 'reserved', ARGV[4]) end
redis.call('HSET', base .. 'r:' .. ARGV[3], 'amount', ARGV[4], 'scopes', ARGV[7], 'gens', cjson.encode(gens), 'state', 'live')
redis.call('ZADD', leases, num(now + tonumber(ARGV[2])), ARGV[3])
return states(n, {'ok'})
`

// KEYS[2..] are the reservation's scopes. ARGV: now, id, cost, tombstone_ms. A live reservation gives back its
// amount; a released one (lease expired) or an unknown one only adds the cost; a settled one changes nothing.
const SETTLE = PRELUDE + `
local rkey = base .. 'r:' .. ARGV[2]
local r = redis.call('HMGET', rkey, 'amount', 'state', 'gens')
local n = #KEYS - 1
if r[2] ~= 'settled' then
  local keys = {}
  for j = 1, n do keys[j] = KEYS[j + 1] end
  if r[2] == 'live' then give_back(keys, cjson.decode(r[3]), tonumber(r[1])) end
  for j = 1, n do
    if redis.call('EXISTS', KEYS[j + 1]) == 1 then redis.call('HINCRBY', KEYS[j + 1], 'spend', ARGV[3]) end
  end
  redis.call('ZREM', leases, ARGV[2])
  redis.call('HSET', rkey, 'state', 'settled')
  redis.call('PEXPIRE', rkey, ARGV[4])
end
return states(n, {'ok'})
`

// ARGV: now, cost, then 7 per scope from 3.
const CHARGE = PRELUDE + `
local n = #KEYS - 1
for j = 1, n do
  local s, r = load(j, 3 + (j - 1) * 7)
  if s == nil then return {'retry', j, r} end
end
for j = 1, n do redis.call('HINCRBY', KEYS[j + 1], 'spend', ARGV[2]) end
return states(n, {'ok'})
`

// KEYS[2] the scope; ARGV: now (unused), spend, reset_at. A scope created here gets a generation like a seeded one.
const SET = PRELUDE + `
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('HSET', KEYS[2], 'reserved', '0', 'gen', new_gen()) end
redis.call('HSET', KEYS[2], 'spend', ARGV[2], 'reset_at', ARGV[3])
return 1
`

// ARGV: now (unused), expiry, ids... Returns the ids whose lease is gone (released by another replica).
const RENEW = PRELUDE + `
local lost = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', leases, ARGV[i]) then
    redis.call('ZADD', leases, 'XX', ARGV[2], ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
`

type Script = (...args: Array<string | number>) => Promise<unknown>
interface Scripts { syLedgerReserve: Script; syLedgerSettle: Script; syLedgerCharge: Script; syLedgerRenew: Script; syLedgerSet: Script }

/**
 * Define the scripts once per client (ioredis sends EVALSHA, and EVAL after a NOSCRIPT, e.g. on a restarted Redis);
 * without numberOfKeys, ioredis takes the key count as the first argument. Bound, so they can be passed around.
 */
function scriptsOf(redis: Redis): Scripts {
  const r = redis as unknown as Scripts
  if (!r.syLedgerReserve) {
    redis.defineCommand('syLedgerReserve', { lua: RESERVE })
    redis.defineCommand('syLedgerSettle', { lua: SETTLE })
    redis.defineCommand('syLedgerCharge', { lua: CHARGE })
    redis.defineCommand('syLedgerRenew', { lua: RENEW })
    redis.defineCommand('syLedgerSet', { lua: SET })
  }
  return {
    syLedgerReserve: r.syLedgerReserve.bind(redis), syLedgerSettle: r.syLedgerSettle.bind(redis),
    syLedgerCharge: r.syLedgerCharge.bind(redis), syLedgerRenew: r.syLedgerRenew.bind(redis), syLedgerSet: r.syLedgerSet.bind(redis),
  }
}

function unavailable(err: unknown): Error {
  if (err instanceof LedgerUnavailableError) return err
  const e = err instanceof Error ? err : new Error(String(err))
  // A script error is a bug, not an outage: let it surface instead of degrading quietly to the fallback.
  if (e.name === 'ReplyError' && !TRANSIENT_REPLY.test(e.message)) return e
  return new LedgerUnavailableError(`budget ledger unavailable: ${e.message}`, { cause: err })
}

const stateOf = (spend: string, reserved: string, reset: string): ScopeState =>
  ({ spend: fromMicros(Number(spend)), reserved: fromMicros(Number(reserved)), resetAt: reset === '' ? null : isoOrNull(Number(reset)) })

/** Scope states from a script reply: triples from `from`; scopes Redis no longer holds are left out. */
function statesOf(reply: readonly string[], scopes: readonly string[], from: number): Record<string, ScopeState> {
  const out: Record<string, ScopeState> = {}
  for (let j = 0; j < scopes.length; j++) {
    const k = from + j * 3
    if (reply[k] !== '') out[scopes[j]!] = stateOf(reply[k]!, reply[k + 1]!, reply[k + 2]!)
  }
  return out
}

/**
 * The 7 per-scope script arguments. Fixed-length periods (s, m, h, d, w) roll over inside the script; calendar ones
 * (mo, y) need date arithmetic Lua does not have, so the next boundary is computed here from the reset time we
 * believe is stored (the seed's, or the one a 'retry' reply reported) and used only when it matches.
 */
function pushScope(args: Array<string | number>, l: BudgetLimit, t: number, storedReset: string | undefined): void {
  const d = l.duration === null ? null : parseDuration(l.duration)
  const fixed = d && d.unit !== 'mo' && d.unit !== 'y' ? addDuration(0, d) : 0
  const seedReset = msOrNull(l.seed.resetAt)
  let step = '', hintReset = '', hintNext = ''
  if (d && Number.isInteger(fixed) && fixed > 0) {
    step = String(fixed)
  } else if (d) {
    step = 'c'
    hintReset = storedReset ?? (seedReset === null ? '' : String(seedReset))
    hintNext = String(msOrNull(rollForward(hintReset === '' ? null : isoOrNull(Number(hintReset)), l.duration, t)))
  }
  args.push(l.scope, l.max === null ? '' : String(toMicros(l.max)), step, hintReset, hintNext,
    String(toMicros(l.seed.spend)), seedReset === null ? '' : String(seedReset))
}

export function createRedisLedger(opts: RedisLedgerOptions): LeasedLedger {
  const { redis } = opts
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS
  const now = opts.now ?? Date.now
  const timeoutMs = opts.timeoutMs ?? 500
  const base = `${opts.prefix ?? ''}{sy}:`
  const leasesKey = `${base}leases`
  const tombstoneMs = String(TOMBSTONE_LEASES * leaseMs)
  const scripts = scriptsOf(redis)
  const nextId = reservationIds()
  /** Reservations this process holds (see HeldRef): renewed by the timer while their object is alive. */
  const held = new Map<string, HeldRef>()
  // With a client-side command timeout (state-redis sets one) ioredis rejects late calls itself; without one a call
  // could wait in the offline queue for as long as Redis is down, so the ledger keeps its own timer.
  const ownTimer = typeof redis.options.commandTimeout !== 'number'

  function call<T>(p: Promise<unknown>): Promise<T> {
    if (!ownTimer) return (p as Promise<T>).catch((err) => { throw unavailable(err) })
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LedgerUnavailableError(`budget ledger unavailable: no reply from Redis in ${timeoutMs} ms`)), timeoutMs)
      p.then((v) => { clearTimeout(timer); resolve(v as T) }, (err) => { clearTimeout(timer); reject(unavailable(err)) })
    })
  }

  /** Run a reserve or charge script, retrying when a calendar rollover asked for a boundary from another reset. */
  async function withScopes(
    script: Script, list: readonly BudgetLimit[], head: Array<string | number>, t: number,
  ): Promise<string[]> {
    const stored = new Map<number, string>()
    for (let attempt = 0; ; attempt++) {
      const args = head.slice()
      for (let j = 0; j < list.length; j++) pushScope(args, list[j]!, t, stored.get(j))
      const reply = await call<Array<string | number>>(script(...args))
      if (reply[0] !== 'retry') return reply as string[]
      if (attempt === HINT_RETRIES) throw new Error('budget ledger: a calendar rollover kept changing under us')
      stored.set(Number(reply[1]) - 1, String(reply[2]))
    }
  }

  const keysOf = (scopes: readonly string[]) => [scopes.length + 1, leasesKey, ...scopes.map((s) => base + 'b:' + s)]

  async function renew(): Promise<void> {
    const ids: string[] = []
    for (const [id, ref] of held) {
      if (ref.deref() === undefined) held.delete(id)
      else ids.push(id)
    }
    if (ids.length === 0) return
    const expiry = String(now() + leaseMs)
    for (let i = 0; i < ids.length; i += RENEW_BATCH) {
      const lost = await call<string[]>(scripts.syLedgerRenew(1, leasesKey, '0', expiry, ...ids.slice(i, i + RENEW_BATCH)))
      for (const id of lost) held.delete(id)
    }
  }

  const timer = renewalTimer(leaseMs, renew)

  return {
    async reserve(limits, amount, need = amount) {
      const list = uniqueLimits(limits)
      const scopes = list.map((l) => l.scope)
      const t = now()
      const micros = Math.max(0, toMicros(amount))
      const id = nextId()
      const head = [...keysOf(scopes), String(t), String(leaseMs), id, String(micros), String(RELEASE_LIMIT), tombstoneMs, JSON.stringify(scopes),
        String(Math.max(0, toMicros(need)))]
      const reply = await withScopes(scripts.syLedgerReserve, list, head, t)
      if (reply[0] === 'refused') {
        const limit = list[Number(reply[1]) - 1]!
        return {
          ok: false, scope: limit.scope, spend: fromMicros(Number(reply[2])), reserved: fromMicros(Number(reply[3])),
          max: limit.max!, resetAt: reply[4] === '' ? null : isoOrNull(Number(reply[4])),
        }
      }
      const reservation: Reservation = { id, scopes, amount }
      held.set(id, new WeakRef(reservation))
      return { ok: true, reservation, states: statesOf(reply, scopes, 1) }
    },

    async settle(r, cost) {
      held.delete(r.id)
      const reply = await call<string[]>(
        scripts.syLedgerSettle(...keysOf(r.scopes), String(now()), r.id, String(toMicros(cost)), tombstoneMs))
      return statesOf(reply, r.scopes, 1)
    },

    async charge(limits, cost) {
      const list = uniqueLimits(limits)
      const scopes = list.map((l) => l.scope)
      const t = now()
      const reply = await withScopes(scripts.syLedgerCharge, list, [...keysOf(scopes), String(t), String(toMicros(cost))], t)
      return statesOf(reply, scopes, 1)
    },

    async read(scope) {
      const h = await call<Array<string | null>>(redis.hmget(base + 'b:' + scope, 'spend', 'reserved', 'reset_at'))
      return h[0] === null ? null : stateOf(h[0]!, h[1] ?? '0', h[2] ?? '')
    },

    async set(scope, s) {
      const reset = msOrNull(s.resetAt)
      await call(scripts.syLedgerSet(...keysOf([scope]), '0', String(toMicros(s.spend)), reset === null ? '' : String(reset)))
    },

    async forget(scope) {
      await call(redis.del(base + 'b:' + scope))
    },

    live: () => held.size,

    renew,

    async close() {
      timer.stop()
      held.clear()
    },
  }
}
