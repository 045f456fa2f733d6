/**
 * The priority queue shared by every replica on one Redis: one capacity gate per model group, with the waiting calls
 * of all replicas in one order (priority, then arrival). Admission happens inside Redis, in Lua, so "is a slot free"
 * and "is anyone better waiting" are one atomic step for the whole fleet.
 *
 * Keys (one hash slot per group through the `{pq:<group>}` tag; the client's `keyPrefix` goes in front):
 *   {pq:G}:s:<level>   zset  slot member -> lease expiry (ms)            calls in flight, per reservation level
 *   {pq:G}:q:<level>   zset  waiter member -> priority                    waiting calls, per level
 *   {pq:G}:w           zset  waiter member -> liveness expiry (ms)        so a dead replica's waiters leave
 * A member is `<arrival ms, 15 digits>|<replica id>|<seq>|<priority>`: equal priorities sort by member, i.e. by
 * arrival across replicas; the member names the replica to wake and the priority a slot is held at (for the status).
 *
 * Event-driven: whoever frees a slot (a finished call's RELEASE, a waiter that leaves, a lapsed lease found by any
 * script) runs the pump, which moves the best admissible waiters into slots and PUBLISHes each member on its
 * replica's channel; that replica starts the call at once. Nothing polls. A heartbeat (a third of the lease, at most
 * every second) renews this replica's slots and waiters and answers which of its waiters were admitted, so a lost
 * message (a subscriber reconnecting) delays a call by one beat instead of leaking its slot; it also re-adds slots and
 * waiters a restarted Redis lost, so capacity holds again within a beat.
 *
 * Redis down: a failed ENTER returns `null` and the caller gates the call in process; waiters already queued in
 * Redis are handed to the in-process gate (their `moved()`), so none waits for a wake-up that cannot come.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'

// Shared Lua: KEYS[1] = waiter liveness zset, then per level i: KEYS[2i] = slots, KEYS[2i+1] = queue.
// ARGV[1] now, [2] capacity, [3] saturation threshold, [4] '1' when reservation shares apply, [5] lease expiry,
// [6] channel prefix, [7] key ttl ms, [8] level count L, [9 .. 8+L] per-level limits ('' = none), then the script's own.
const PRELUDE = `
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local sat = tonumber(ARGV[3])
local reserved = ARGV[4] == '1'
local leaseExp = ARGV[5]
local chan = ARGV[6]
local ttl = ARGV[7]
local L = tonumber(ARGV[8])
local limits = {}
for i = 1, L do limits[i] = tonumber(ARGV[8 + i]) end
local A = 9 + L
local per = {}
local total = 0

local function load()
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #dead > 0 then
    for i = 1, L do redis.call('ZREM', KEYS[2 * i + 1], unpack(dead)) end
    redis.call('ZREM', KEYS[1], unpack(dead))
  end
  total = 0
  for i = 1, L do
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', now)
    per[i] = redis.call('ZCARD', KEYS[2 * i])
    total = total + per[i]
  end
end

local function admissible(i)
  if total >= cap then return false end
  if not reserved or total / cap < sat then return true end
  return limits[i] == nil or per[i] < limits[i]
end

local function take(i, m)
  redis.call('ZADD', KEYS[2 * i], leaseExp, m)
  per[i] = per[i] + 1
  total = total + 1
end

local function pump()
  while total < cap do
    local bi, bm, bs = nil, nil, nil
    for i = 1, L do
      if admissible(i) then
        local top = redis.call('ZRANGE', KEYS[2 * i + 1], 0, 0, 'WITHSCORES')
        if #top > 0 then
          local s = tonumber(top[2])
          if bi == nil or s < bs or (s == bs and top[1] < bm) then bi, bm, bs = i, top[1], s end
        end
      end
    end
    if bi == nil then return end
    redis.call('ZREM', KEYS[2 * bi + 1], bm)
    redis.call('ZREM', KEYS[1], bm)
    take(bi, bm)
    local replica = string.match(bm, '^[^|]*|([^|]*)|')
    if replica then redis.call('PUBLISH', chan .. replica, bm) end
  end
end

local function touch()
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
`

// ARGV[A] member, [A+1] level index, [A+2] priority, [A+3] '1' = may queue, [A+4] liveness expiry.
// Returns {1, total} admitted, {0, total} queued, {-1, total} full and not queued.
const ENTER = PRELUDE + `
local m, li = ARGV[A], tonumber(ARGV[A + 1])
load()
pump()
local r = -1
if admissible(li) then
  take(li, m)
  r = 1
elseif ARGV[A + 3] == '1' then
  redis.call('ZADD', KEYS[2 * li + 1], ARGV[A + 2], m)
  redis.call('ZADD', KEYS[1], ARGV[A + 4], m)
  r = 0
end
touch()
return {r, total}
`

// ARGV[A] member, [A+1] level index. Returns 0 = left the queue, 1 = it had been admitted (slot freed), -1 = unknown.
const LEAVE = PRELUDE + `
local m, li = ARGV[A], tonumber(ARGV[A + 1])
load()
local r = -1
if redis.call('ZREM', KEYS[2 * li + 1], m) == 1 then
  redis.call('ZREM', KEYS[1], m)
  r = 0
elseif redis.call('ZREM', KEYS[2 * li], m) == 1 then
  per[li] = per[li] - 1
  total = total - 1
  r = 1
end
pump()
return r
`

// ARGV[A] member, [A+1] level index.
const RELEASE = PRELUDE + `
local m, li = ARGV[A], tonumber(ARGV[A + 1])
load()
if redis.call('ZREM', KEYS[2 * li], m) == 1 then
  per[li] = per[li] - 1
  total = total - 1
end
pump()
return 1
`

// ARGV[A] liveness expiry, [A+1] held count H, then H pairs (member, level index), then triples (member, level
// index, priority) of waiters. Re-adds what a restarted Redis lost. Returns the waiters that hold a slot now.
const BEAT = PRELUDE + `
local wexp = ARGV[A]
local h = tonumber(ARGV[A + 1])
local j = A + 2
for _ = 1, h do
  redis.call('ZADD', KEYS[2 * tonumber(ARGV[j + 1])], leaseExp, ARGV[j])
  j = j + 2
end
local waiting = {}
while j <= #ARGV do
  local m, li = ARGV[j], tonumber(ARGV[j + 1])
  if redis.call('ZSCORE', KEYS[2 * li], m) then
    redis.call('ZADD', KEYS[2 * li], leaseExp, m)
  else
    redis.call('ZADD', KEYS[2 * li + 1], ARGV[j + 2], m)
    redis.call('ZADD', KEYS[1], wexp, m)
  end
  waiting[#waiting + 1] = {m, li}
  j = j + 3
end
load()
pump()
touch()
local admitted = {}
for _, w in ipairs(waiting) do
  if redis.call('ZSCORE', KEYS[2 * w[2]], w[1]) then admitted[#admitted + 1] = w[1] end
end
return admitted
`

interface PqCommands {
  syPqEnter(n: number, ...args: Array<string | number>): Promise<[number, number]>
  syPqLeave(n: number, ...args: Array<string | number>): Promise<number>
  syPqRelease(n: number, ...args: Array<string | number>): Promise<number>
  syPqBeat(n: number, ...args: Array<string | number>): Promise<string[]>
}

/** What the plugin tells the gate about a group on each call. */
export interface GroupParams {
  capacity: number
  /** Reservation levels in a fixed order ('' first), with each one's limit under saturation (Infinity = none). */
  levels: readonly string[]
  limits: readonly number[]
  reserved: boolean
  saturation: number
}

/** A call waiting in Redis: the plugin's callbacks, and what the heartbeat needs to renew (or re-add) it. */
export interface SharedWaiter {
  readonly group: string
  readonly level: string
  readonly priority: number
  readonly queuedAt: number
  readonly member: string
  /** Called once when Redis admitted it (after `enter` said 'queued'): the slot is held from then on. */
  admit(): void
  /** Called instead when Redis failed while it waited: it must be queued in process now. */
  moved(): void
}

export interface RedisGateOptions {
  redis: Redis
  now: () => number
  /** Slot lease, ms: a dead replica's slots free themselves within it. */
  leaseMs: number
  /** Called once per outage, and once when Redis answers again. */
  onState(up: boolean, err?: Error): void
}

/** Liveness of a waiter between beats, ms: 5 beats, so a loaded event loop missing one or two loses nobody. */
const WAITER_LEASE_BEATS = 5
/** Longest heartbeat interval, ms: bounds how late a waiter whose wake-up message was lost starts. */
const MAX_BEAT_MS = 1_000

export type EnterResult = 'admitted' | 'queued' | 'full'

export class RedisGate {
  private readonly cmd: PqCommands
  private readonly replica = randomBytes(6).toString('hex')
  private readonly channel: string
  private seq = 0
  private readonly waiting = new Map<string, SharedWaiter>()
  /** Members whose ENTER is in flight, and those of them already woken (the wake-up beat the script's reply). */
  private readonly pending = new Set<string>()
  private readonly early = new Set<string>()
  /** Slots this replica holds: member -> group and level. */
  private readonly held = new Map<string, { group: string; level: string }>()
  private readonly params = new Map<string, GroupParams>()
  private subscriber: Redis | null = null
  private readonly beatMs: number
  private readonly timer: NodeJS.Timeout
  private up = true

  constructor(private readonly o: RedisGateOptions) {
    const redis = o.redis
    if (typeof (redis as unknown as Partial<PqCommands>).syPqEnter !== 'function') {
      redis.defineCommand('syPqEnter', { lua: ENTER })
      redis.defineCommand('syPqLeave', { lua: LEAVE })
      redis.defineCommand('syPqRelease', { lua: RELEASE })
      redis.defineCommand('syPqBeat', { lua: BEAT })
    }
    this.cmd = redis as unknown as PqCommands
    // Channels are not keys: ioredis does not prefix them, so the prefix is added here (replicas of one deployment
    // share it, another deployment on the same Redis does not).
    this.channel = `${redis.options.keyPrefix ?? ''}pq:`
    this.beatMs = Math.max(1, Math.min(MAX_BEAT_MS, Math.floor(o.leaseMs / 3)))
    this.timer = setInterval(() => void this.beat(), this.beatMs)
    this.timer.unref()
  }

  /** Subscribe to this replica's wake-up channel. Resolves once subscribed (or once it failed: beats cover it). */
  async start(): Promise<void> {
    const sub = this.o.redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, lazyConnect: true })
    this.subscriber = sub
    sub.on('error', () => {})   // the commands client reports outages; the subscriber reconnects by itself
    sub.on('message', (_channel: string, member: string) => this.admitted(member))
    await sub.subscribe(this.channel + this.replica).catch(() => undefined)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    const sub = this.subscriber
    this.subscriber = null
    if (sub) await sub.quit().catch(() => sub.disconnect())
  }

  newMember(now: number, priority: number): string {
    return `${String(Math.max(0, Math.floor(now))).padStart(15, '0')}|${this.replica}|${this.seq++}|${priority}`
  }

  /**
   * Take a slot now, queue `w` (when `mayQueue`), or say the group is full. `null`: Redis failed; gate in process.
   * A queued waiter's `admit` runs later, from a wake-up message or a beat.
   */
  async enter(w: SharedWaiter, p: GroupParams, mayQueue: boolean): Promise<EnterResult | null> {
    this.params.set(w.group, p)
    const li = levelIndex(p, w.level)
    const now = this.o.now()
    const m = w.member
    // A wake-up may arrive before the script's reply (it comes on the subscriber's connection): `early` keeps it.
    this.pending.add(m)
    let r: number
    try {
      ;[r] = await this.cmd.syPqEnter(...this.args(w.group, p, now), m, li, Number.isFinite(w.priority) ? w.priority : 0, mayQueue ? '1' : '0',
        now + WAITER_LEASE_BEATS * this.beatMs)
    } catch (err) {
      this.pending.delete(m)
      this.early.delete(m)
      this.failed(err)
      return null
    }
    this.pending.delete(m)
    this.ok()
    if (r === 1 || (r === 0 && this.early.delete(m))) {
      this.held.set(m, { group: w.group, level: w.level })
      return 'admitted'
    }
    if (r === 0) {
      this.waiting.set(m, w)
      return 'queued'
    }
    return 'full'
  }

  /** A queued waiter gives up (timeout, disconnect). False when it was admitted already (it then holds a slot). */
  leave(w: SharedWaiter): boolean {
    if (!this.waiting.delete(w.member)) return false
    this.forget(w)
    const p = this.params.get(w.group)
    if (p) {
      // If Redis admitted it meanwhile, LEAVE frees that slot and wakes the next waiter.
      this.cmd.syPqLeave(...this.args(w.group, p, this.o.now()), w.member, levelIndex(p, w.level))
        .then(() => this.ok(), (err) => this.failed(err))
    }
    return true
  }

  /** Free a slot taken by `enter` or an admission. */
  release(member: string): void {
    const h = this.held.get(member)
    if (!h) return
    this.held.delete(member)
    const p = this.params.get(h.group)
    if (!p) return
    // A failed release leaves the slot to its lease.
    this.cmd.syPqRelease(...this.args(h.group, p, this.o.now()), member, levelIndex(p, h.level))
      .then(() => this.ok(), (err) => this.failed(err))
  }

  get waitingCount(): number {
    return this.waiting.size
  }

  /** In flight and queued in Redis, per level: for /queue/status. Null when Redis does not answer. */
  async status(group: string, p: GroupParams): Promise<SharedStatus | null> {
    const now = this.o.now()
    const pipe = this.o.redis.pipeline()
    for (const level of p.levels) {
      pipe.zrangebyscore(slotsKey(group, level), `(${now}`, '+inf')
      pipe.zrange(queueKey(group, level), 0, -1)
    }
    const out = await pipe.exec().catch(() => null)
    if (!out || out.some(([err]) => err)) return null
    const levels: SharedStatus['levels'] = []
    for (let i = 0; i < p.levels.length; i++) {
      levels.push({
        level: p.levels[i]!,
        inFlight: (out[2 * i]![1] as string[]).map(parseMember),
        queued: (out[2 * i + 1]![1] as string[]).map(parseMember),
      })
    }
    return { capacity: p.capacity, levels }
  }

  private args(group: string, p: GroupParams, now: number): [number, ...Array<string | number>] {
    const keys: string[] = [waitersKey(group)]
    for (const level of p.levels) keys.push(slotsKey(group, level), queueKey(group, level))
    const limits = p.limits.map((l) => (l === Infinity ? '' : l))
    const ttl = Math.max(60_000, 4 * this.o.leaseMs)
    return [keys.length, ...keys, now, p.capacity, p.saturation, p.reserved ? '1' : '0', now + this.o.leaseMs,
      this.channel, ttl, p.levels.length, ...limits]
  }

  private admitted(member: string): void {
    const w = this.waiting.get(member)
    if (!w && this.pending.has(member)) {
      this.early.add(member)
      return
    }
    if (!w) {
      // Not ours any more (it left, or was handed to the local gate in an outage): give the slot back at once.
      const group = this.groupOfStray(member)
      if (group) {
        this.held.set(member, { group: group.name, level: group.level })
        this.release(member)
      }
      return
    }
    this.waiting.delete(member)
    this.held.set(member, { group: w.group, level: w.level })
    w.admit()
  }

  /** Members that left are remembered briefly so a late wake-up can be answered with a release. */
  private readonly gone = new Map<string, { name: string; level: string }>()
  private groupOfStray(member: string) {
    const g = this.gone.get(member)
    if (g) this.gone.delete(member)
    return g
  }

  private async beat(): Promise<void> {
    if (this.waiting.size === 0 && this.held.size === 0) return
    const now = this.o.now()
    const byGroup = new Map<string, { held: Array<string | number>; waiting: Array<string | number>; h: number }>()
    const entry = (g: string) => {
      let e = byGroup.get(g)
      if (!e) byGroup.set(g, (e = { held: [], waiting: [], h: 0 }))
      return e
    }
    for (const [m, h] of this.held) {
      const p = this.params.get(h.group)
      if (!p) continue
      const e = entry(h.group)
      e.held.push(m, levelIndex(p, h.level))
      e.h++
    }
    for (const [m, w] of this.waiting) {
      const p = this.params.get(w.group)
      if (p) entry(w.group).waiting.push(m, levelIndex(p, w.level), w.priority)
    }
    for (const [group, e] of byGroup) {
      const p = this.params.get(group)!
      try {
        const admitted = await this.cmd.syPqBeat(...this.args(group, p, now), now + WAITER_LEASE_BEATS * this.beatMs, e.h,
          ...e.held, ...e.waiting)
        this.ok()
        for (const m of admitted) this.admitted(m)
      } catch (err) {
        this.failed(err)
        return
      }
    }
  }

  /** Forget a waiter that left while Redis may still admit it (a late admission is then released). */
  forget(w: SharedWaiter): void {
    this.gone.set(w.member, { name: w.group, level: w.level })
    if (this.gone.size > 10_000) this.gone.delete(this.gone.keys().next().value!)
  }

  private ok(): void {
    if (this.up) return
    this.up = true
    this.o.onState(true)
  }

  private failed(err: unknown): void {
    if (this.up) {
      this.up = false
      this.o.onState(false, err as Error)
    }
    if (this.waiting.size === 0) return
    const moved = [...this.waiting.values()]
    this.waiting.clear()
    for (const w of moved) {
      this.forget(w)
      w.moved()
    }
  }
}

export interface MemberInfo {
  priority: number
  queuedAt: number
}

export interface SharedStatus {
  capacity: number
  levels: Array<{ level: string; inFlight: MemberInfo[]; queued: MemberInfo[] }>
}

function parseMember(m: string): MemberInfo {
  const bar = m.lastIndexOf('|')
  return { queuedAt: Number(m.slice(0, 15)), priority: Number(m.slice(bar + 1)) }
}

function levelIndex(p: GroupParams, level: string): number {
  const i = p.levels.indexOf(level)
  return (i < 0 ? 0 : i) + 1
}

const tag = (group: string) => `{pq:${group}}`
const waitersKey = (group: string) => `${tag(group)}:w`
const slotsKey = (group: string, level: string) => `${tag(group)}:s:${level}`
const queueKey = (group: string, level: string) => `${tag(group)}:q:${level}`
