/**
 * Router stats shared between replicas through Redis (`cradle.redis`, whose client prefixes keys with `sy:`).
 *
 * Keys (one hash slot through the `{sy}` tag, so the group read below is one script also on a Cluster):
 *   {sy}:router:r:<minute>:<id>   requests sent to the deployment in that minute     expire after 2 minutes
 *   {sy}:router:t:<minute>:<id>   tokens it used in that minute                      expire after 2 minutes
 *   {sy}:router:busy:<id>         zset: call -> lease expiry (ms): calls in flight
 *   {sy}:router:lat:<id>          list of "<at>:<ms>" latency samples, newest first, trimmed to `samples`
 *   {sy}:router:ttft:<id>         the same for time to first token
 *
 * Calls in flight are leased (IN_FLIGHT_LEASE_MS) rather than counted with INCR/DECR: a replica that dies with calls
 * open would otherwise leave them counted for good, and least-busy would avoid that deployment for ever.
 *
 * Why picking reads a snapshot: the router runs on every call, and a Redis round trip per pick would put Redis
 * latency (and an outage's command timeout) on every request. Instead each group's shared numbers are fetched in
 * the background at most every REFRESH_MS (one script call for the whole group), and a pick reads that snapshot
 * plus what this process did since the fetch was sent. Updates are fire-and-forget. Only the first pick of a group
 * waits for a fetch (at most FIRST_READ_WAIT_MS), so a fresh replica does not route blind on what others used.
 * Commands on one connection run in order, so a fetch sees every update this process sent before it: the deltas
 * recorded until the fetch was sent move to `transit` and are dropped when its answer arrives. (A script's first
 * EVALSHA after a Redis restart is re-sent as EVAL, which can reorder that one update: a count off by one for
 * under REFRESH_MS.) A deployment id belongs to one model group, so one group's fetch owns its entries' deltas.
 *
 * Redis down: picks use the in-process stats (always kept, so they hold everything this replica did), with one
 * warning per outage; no call ever fails or waits because of Redis.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../../core/logger.js'
import { MINUTE_MS, minuteOf, type DeploymentStats, type RouterStats, type StatsParams } from './stats.js'

/** How often a group's shared numbers are fetched at most, ms. */
export const REFRESH_MS = 100
/** The longest the first pick of a group waits for the first fetch, ms. */
const FIRST_READ_WAIT_MS = 250
/** A call in flight stops counting after 10 min: long enough for any single call, short enough to forget a crash. */
const IN_FLIGHT_LEASE_MS = 600_000
/** A minute's counters outlive it by one more minute (late token counts), ms. */
const WINDOW_TTL_MS = 2 * MINUTE_MS

// KEYS: requests of the minute, in-flight zset. ARGV: window ttl ms, call id, lease expiry, now, lease ms.
const BEGIN = `
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1`

// KEYS: requests and tokens of the minute. ARGV: requests (may be negative), tokens, window ttl ms.
const COUNT = `
local r, t = tonumber(ARGV[1]), tonumber(ARGV[2])
if r ~= 0 then redis.call('INCRBY', KEYS[1], r) redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if t ~= 0 then redis.call('INCRBY', KEYS[2], t) redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1`

// KEYS: a sample list. ARGV: "<at>:<ms>", samples kept, ttl ms.
const SAMPLE = `
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`

// KEYS: 5 per deployment (requests, tokens, in flight, latency, ttft). ARGV: now, oldest sample time, samples kept.
// Returns 7 integers per deployment: requests, tokens, in flight, latency sum and count, ttft sum and count.
const READ = `
local out = {}
local since = tonumber(ARGV[2])
for i = 1, #KEYS, 5 do
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i + 2], '(' .. ARGV[1], '+inf')
  for k = 3, 4 do
    local sum, n = 0, 0
    for _, e in ipairs(redis.call('LRANGE', KEYS[i + k], 0, tonumber(ARGV[3]) - 1)) do
      local sep = string.find(e, ':', 1, true)
      if sep and tonumber(string.sub(e, 1, sep - 1)) >= since then
        sum = sum + tonumber(string.sub(e, sep + 1))
        n = n + 1
      end
    end
    out[#out + 1] = math.floor(sum + 0.5)
    out[#out + 1] = n
  end
end
return out`

interface RouterCommands {
  syRouterBegin(req: string, busy: string, windowTtlMs: number, call: string, leaseUntil: number, now: number, leaseMs: number): Promise<number>
  syRouterCount(req: string, tok: string, requests: number, tokens: number, windowTtlMs: number): Promise<number>
  syRouterSample(list: string, entry: string, samples: number, ttlMs: number): Promise<number>
  syRouterRead(numKeys: number, ...args: Array<string | number>): Promise<number[]>
}

const P = '{sy}:router'
const reqKey = (id: string, minute: number) => `${P}:r:${minute}:${id}`
const tokKey = (id: string, minute: number) => `${P}:t:${minute}:${id}`
const busyKey = (id: string) => `${P}:busy:${id}`

/** Counts this process added since some point, for one minute (in flight has no minute). */
class Delta {
  minute = -1
  requests = 0
  tokens = 0
  inFlight = 0
  add(minute: number, requests: number, tokens: number, inFlight: number): void {
    if (minute > this.minute) {
      this.minute = minute
      this.requests = 0
      this.tokens = 0
    }
    if (minute === this.minute) {
      this.requests += requests
      this.tokens += tokens
    }
    this.inFlight += inFlight
  }
  /** Move `o` into this one; `o` is left empty. */
  absorb(o: Delta): void {
    this.add(o.minute, o.requests, o.tokens, o.inFlight)
    o.clear()
  }
  clear(): void {
    this.requests = 0
    this.tokens = 0
    this.inFlight = 0
  }
  requestsAt(minute: number): number {
    return minute === this.minute ? this.requests : 0
  }
  tokensAt(minute: number): number {
    return minute === this.minute ? this.tokens : 0
  }
}

/** One deployment: its numbers as last fetched, and this process's deltas since. */
class Entry {
  readonly busy: string
  readonly lat: string
  readonly ttft: string
  /** Minute of the last fetch (-1: none yet). */
  minute = -1
  requests = 0
  tokens = 0
  inFlight = 0
  latencyMs = -1
  ttftMs = -1
  /** Recorded before the fetch in flight was sent (that fetch's answer includes them). */
  readonly transit = new Delta()
  /** Recorded since. */
  readonly mine = new Delta()
  constructor(readonly id: string) {
    this.busy = busyKey(id)
    this.lat = `${P}:lat:${id}`
    this.ttft = `${P}:ttft:${id}`
  }
}

interface Group {
  entries: Entry[]
  /** performance.now() of the last answered fetch; -inf before the first. */
  fetchedAt: number
  pending: Promise<void> | null
  /** The first fetch was answered (or failed): picks no longer wait. */
  primed: boolean
  /** The READ script's keys, for `keysMinute`. */
  keys: string[]
  keysMinute: number
}

export interface RedisStatsOptions {
  /** A monotonic clock for the snapshot's age, ms (tests' fake gateway clocks do not move on their own). */
  monotonic?: () => number
}

export function redisRouterStats(redis: Redis, local: RouterStats, p: StatsParams, logger: Logger, o: RedisStatsOptions = {}): RouterStats {
  if (typeof (redis as unknown as Partial<RouterCommands>).syRouterRead !== 'function') {
    redis.defineCommand('syRouterBegin', { numberOfKeys: 2, lua: BEGIN })
    redis.defineCommand('syRouterCount', { numberOfKeys: 2, lua: COUNT })
    redis.defineCommand('syRouterSample', { numberOfKeys: 1, lua: SAMPLE })
    redis.defineCommand('syRouterRead', { lua: READ })
  }
  const r = redis as unknown as RouterCommands
  const mono = o.monotonic ?? (() => performance.now())
  const instance = Math.random().toString(36).slice(2, 10)
  const entries = new Map<string, Entry>()
  const groups = new WeakMap<readonly string[], Group>()
  let down = false

  function failed(err: unknown): void {
    if (down) return
    down = true
    // A client closed by the gateway's own stop is not an outage.
    if (redis.status === 'end' || redis.status === 'close') return
    logger.warn('router: Redis unreachable; routing stats are kept in process until it is back', { err: (err as Error).message })
  }
  function ok(): void {
    if (!down) return
    down = false
    logger.info('router: Redis reachable again; routing stats are shared again')
  }
  // Fire-and-forget updates: one pair of handlers for all of them, no closure per call.
  const written = (): void => ok()
  const lost = (err: unknown): void => failed(err)

  function entry(id: string): Entry {
    let e = entries.get(id)
    if (!e) entries.set(id, (e = new Entry(id)))
    return e
  }

  function groupOf(ids: readonly string[]): Group {
    let g = groups.get(ids)
    if (!g) groups.set(ids, (g = { entries: ids.map(entry), fetchedAt: Number.NEGATIVE_INFINITY, pending: null, primed: false, keys: [], keysMinute: -1 }))
    return g
  }

  function fetch(g: Group, now: number): Promise<void> {
    const minute = minuteOf(now)
    if (g.keysMinute !== minute) {
      g.keys = g.entries.flatMap((e) => [reqKey(e.id, minute), tokKey(e.id, minute), e.busy, e.lat, e.ttft])
      g.keysMinute = minute
    }
    for (const e of g.entries) e.transit.absorb(e.mine)
    const sent = r.syRouterRead(g.keys.length, ...g.keys, now, now - p.latencyTtlMs, p.samples)
    g.pending = sent.then((reply) => {
      g.entries.forEach((e, i) => {
        const b = 7 * i
        e.minute = minute
        e.requests = Number(reply[b])
        e.tokens = Number(reply[b + 1])
        e.inFlight = Number(reply[b + 2])
        const latN = Number(reply[b + 4])
        const ttftN = Number(reply[b + 6])
        e.latencyMs = latN > 0 ? Number(reply[b + 3]) / latN : -1
        e.ttftMs = ttftN > 0 ? Number(reply[b + 5]) / ttftN : -1
        e.transit.clear()
      })
      ok()
    }, (err: unknown) => {
      // Whether the updates in transit reached Redis is unknown; they stay counted here until the next answer.
      for (const e of g.entries) e.mine.absorb(e.transit)
      failed(err)
    }).finally(() => {
      g.fetchedAt = mono()
      g.pending = null
      g.primed = true
    })
    return g.pending
  }

  return {
    acquire(id, now) {
      const handle = local.acquire(id, now)
      const e = entry(id)
      e.mine.add(minuteOf(now), 1, 0, 1)
      r.syRouterBegin(reqKey(id, minuteOf(now)), e.busy, WINDOW_TTL_MS, `${instance}:${handle}`, now + IN_FLIGHT_LEASE_MS, now, IN_FLIGHT_LEASE_MS)
        .then(written, lost)
      return handle
    },
    release(id, handle) {
      local.release(id, handle)
      const e = entry(id)
      e.mine.inFlight--
      redis.zrem(e.busy, `${instance}:${handle}`).then(written, lost)
    },
    count(id, now, requests, tokens) {
      local.count(id, now, requests, tokens)
      const minute = minuteOf(now)
      entry(id).mine.add(minute, requests, tokens, 0)
      r.syRouterCount(reqKey(id, minute), tokKey(id, minute), requests, tokens, WINDOW_TTL_MS).then(written, lost)
    },
    sample(id, ms, ttft, now) {
      local.sample(id, ms, ttft, now)
      const e = entry(id)
      r.syRouterSample(ttft ? e.ttft : e.lat, `${now}:${Math.round(ms)}`, p.samples, p.latencyTtlMs).then(written, lost)
    },
    read(ids, now, out) {
      local.read(ids, now, out)
      const g = groupOf(ids)
      if (g.pending === null && mono() - g.fetchedAt >= REFRESH_MS) void fetch(g, now)
      // Down, or never answered: what this process knows is all there is.
      if (down || g.entries[0]!.minute < 0) return
      const minute = minuteOf(now)
      for (let i = 0; i < ids.length; i++) {
        const e = g.entries[i]!
        const s: DeploymentStats = out[i]!
        const shared = e.minute === minute
        s.requests = Math.max(0, (shared ? e.requests : 0) + e.transit.requestsAt(minute) + e.mine.requestsAt(minute))
        s.tokens = Math.max(0, (shared ? e.tokens : 0) + e.transit.tokensAt(minute) + e.mine.tokensAt(minute))
        s.inFlight = Math.max(0, e.inFlight + e.transit.inFlight + e.mine.inFlight)
        // Other replicas' samples when there are any; this one's own until the first arrives.
        if (e.latencyMs >= 0) s.latencyMs = e.latencyMs
        if (e.ttftMs >= 0) s.ttftMs = e.ttftMs
      }
    },
    ready(ids, now) {
      const g = groupOf(ids)
      if (g.primed || down) return null
      const first = g.pending ?? fetch(g, now)
      let timer: NodeJS.Timeout | undefined
      return Promise.race([first, new Promise<void>((resolve) => { timer = setTimeout(resolve, FIRST_READ_WAIT_MS) })])
        .finally(() => clearTimeout(timer))
    },
  }
}
