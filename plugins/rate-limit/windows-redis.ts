/**
 * Rate-limit counters in Redis: every replica on one Redis shares one window per scope exactly. Each operation is one
 * Lua script (ioredis `defineCommand`), so a check-then-count cannot interleave with another replica's.
 *
 * Keys (one hash slot through the `{sy}` tag, so one script may touch every scope of a call, also on a Cluster; the
 * client's own `keyPrefix`, e.g. state-redis' 'sy:', is put in front by ioredis):
 *   {sy}:rl:w:<window>:<scope>   hash  r = requests, t = tokens counted in that minute; expires after 2 windows
 *   {sy}:rl:p:<scope>            zset  parallel slot id -> lease expiry (ms, caller's clock)
 *
 * Parallel slots are leased: this process renews the leases of its live slots every third of the lease, and an
 * admission first drops expired ones, so the slots of a replica that died without finishing (SIGKILL, OOM) free
 * themselves within one lease instead of blocking the scope for good.
 */
import type { Redis } from 'ioredis'
import { WINDOW_MS, windowOf, type AdmitResult, type LimitKind, type Ticket, type Windows } from './windows.js'

export interface RedisWindowsOptions {
  redis: Redis
  now: () => number
  /** Parallel slot lease, ms: a crashed replica's slots are freed after at most this long. */
  leaseMs: number
}

/** A window's hash outlives its minute by one more (late finishes of calls admitted in it), ms. */
const WINDOW_TTL_MS = 2 * WINDOW_MS
/** Slots renewed per script call, so one call stays short with many calls in flight: 500. */
const RENEW_BATCH = 500

// KEYS per scope: window hash, parallel zset. ARGV: now, lease expiry, slot, tokens, window ttl, zset ttl, then per
// scope rpm, tpm, parallel ('' = no limit). Returns {0, r1, t1, r2, t2, ...} or {i, kind, limit, current}.
// The token rule is tokensFit() in windows.ts: an empty window admits one call, otherwise the reservation must fit.
const ADMIT = `
local n = #KEYS / 2
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[4])
for i = 1, n do
  local b = 6 + 3 * (i - 1)
  local rpm, tpm, par = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if par ~= '' then
    local p = KEYS[2 * i]
    redis.call('ZREMRANGEBYSCORE', p, '-inf', now)
    local c = redis.call('ZCARD', p)
    if c + 1 > tonumber(par) then return {i, 'parallel', par, c} end
  end
  local h = redis.call('HMGET', KEYS[2 * i - 1], 'r', 't')
  local r, t = tonumber(h[1]) or 0, tonumber(h[2]) or 0
  if rpm ~= '' and r + 1 > tonumber(rpm) then return {i, 'rpm', rpm, r} end
  if tpm ~= '' then
    local l = tonumber(tpm)
    if (t == 0 and l <= 0) or (t > 0 and t + tokens > l) then return {i, 'tpm', tpm, t} end
  end
end
local out = {0}
for i = 1, n do
  local w = KEYS[2 * i - 1]
  out[#out + 1] = redis.call('HINCRBY', w, 'r', 1)
  out[#out + 1] = redis.call('HINCRBY', w, 't', tokens)
  redis.call('PEXPIRE', w, ARGV[5])
  if ARGV[6 + 3 * i] ~= '' then
    redis.call('ZADD', KEYS[2 * i], ARGV[2], ARGV[3])
    redis.call('PEXPIRE', KEYS[2 * i], ARGV[6])
  end
end
return out
`

// KEYS per scope: admission window hash, current window hash, parallel zset. ARGV: reserved, actual, slot ('' =
// none), window ttl, same window ('1' = the admission window is still the current one).
const FINISH = `
local reserved, actual = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS / 3 do
  if ARGV[5] == '1' then
    local a = KEYS[3 * i - 2]
    if redis.call('EXISTS', a) == 1 and actual ~= reserved then
      if redis.call('HINCRBY', a, 't', actual - reserved) < 0 then redis.call('HSET', a, 't', 0) end
    end
  elseif actual > 0 then
    redis.call('HINCRBY', KEYS[3 * i - 1], 't', actual)
    redis.call('PEXPIRE', KEYS[3 * i - 1], ARGV[4])
  end
  if ARGV[3] ~= '' then redis.call('ZREM', KEYS[3 * i], ARGV[3]) end
end
return 1
`

// KEYS: parallel zsets; ARGV: new expiry, zset ttl, then the slot for each key. XX: a finished slot is not re-added.
const RENEW = `
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', ARGV[1], ARGV[i + 2]) >= 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return 1
`

interface RateCommands {
  syRateAdmit(numKeys: number, ...args: Array<string | number>): Promise<Array<number | string>>
  syRateFinish(numKeys: number, ...args: Array<string | number>): Promise<number>
  syRateRenew(numKeys: number, ...args: Array<string | number>): Promise<number>
}

const windowKey = (window: number, scope: string) => `{sy}:rl:w:${window}:${scope}`
const slotsKey = (scope: string) => `{sy}:rl:p:${scope}`

export function createRedisWindows(o: RedisWindowsOptions): Windows {
  const redis = o.redis
  // Scripts are defined on the client once; EVALSHA with an EVAL fallback is ioredis' job.
  if (typeof (redis as unknown as Partial<RateCommands>).syRateAdmit !== 'function') {
    redis.defineCommand('syRateAdmit', { lua: ADMIT })
    redis.defineCommand('syRateFinish', { lua: FINISH })
    redis.defineCommand('syRateRenew', { lua: RENEW })
  }
  const cmd = redis as unknown as RateCommands
  const zsetTtl = Math.max(2 * o.leaseMs, WINDOW_MS)
  /** This process's live slots -> the zsets holding them, for the lease heartbeat. */
  const live = new Map<string, string[]>()

  const heartbeat = setInterval(() => void renew(), Math.max(1, Math.floor(o.leaseMs / 3)))
  heartbeat.unref()

  async function renew(): Promise<void> {
    if (live.size === 0) return
    const expiry = o.now() + o.leaseMs
    let keys: string[] = []
    let slots: string[] = []
    const flush = async () => {
      // A failed renewal is retried on the next beat; a lease only lapses after three missed ones.
      await cmd.syRateRenew(keys.length, ...keys, expiry, zsetTtl, ...slots).catch(() => undefined)
      keys = []
      slots = []
    }
    for (const [slot, zsets] of live) {
      for (const z of zsets) {
        keys.push(z)
        slots.push(slot)
      }
      if (keys.length >= RENEW_BATCH) await flush()
    }
    if (keys.length) await flush()
  }

  return {
    async admit(scopes, now, tokens, slot) {
      const window = windowOf(now)
      const keys: string[] = []
      const limits: Array<string | number> = []
      const zsets: string[] = []
      for (const s of scopes) {
        const z = slotsKey(s.scope)
        keys.push(windowKey(window, s.scope), z)
        limits.push(s.rpm ?? '', s.tpm ?? '', s.parallel ?? '')
        if (s.parallel !== null) zsets.push(z)
      }
      const slotId = zsets.length ? slot : ''
      const reply = await cmd.syRateAdmit(keys.length, ...keys, now, now + o.leaseMs, slotId, tokens, WINDOW_TTL_MS, zsetTtl, ...limits)
      const head = Number(reply[0])
      if (head !== 0) {
        return { ok: false, index: head - 1, kind: reply[1] as LimitKind, limit: Number(reply[2]), current: Number(reply[3]) } satisfies AdmitResult
      }
      const requests = new Array<number>(scopes.length)
      const used = new Array<number>(scopes.length)
      for (let i = 0; i < scopes.length; i++) {
        requests[i] = Number(reply[1 + 2 * i])
        used[i] = Number(reply[2 + 2 * i])
      }
      if (slotId) live.set(slotId, zsets)
      const ticket: Ticket = { window, tokens, slot: slotId }
      return { ok: true, ticket, requests, tokens: used }
    },

    async finish(scopes, ticket, now, tokens) {
      const window = windowOf(now)
      if (ticket.slot) live.delete(ticket.slot)
      const keys: string[] = []
      for (const s of scopes) keys.push(windowKey(ticket.window, s.scope), windowKey(window, s.scope), slotsKey(s.scope))
      await cmd.syRateFinish(keys.length, ...keys, ticket.tokens, tokens, ticket.slot, WINDOW_TTL_MS, window === ticket.window ? '1' : '0')
    },

    async close() {
      // Live slots are left to their leases: a stopping replica's calls were drained before stop; anything left
      // frees itself, exactly as after a crash.
      clearInterval(heartbeat)
      live.clear()
    },
  }
}
