/**
 * The priority queue shared by every replica on one Redis: one capacity gate per model group, with the waiting calls
 * of all replicas in one order (priority, then arrival). Admission happens inside Redis, in Lua, so "is a slot free"
 * and "is anyone better waiting" are one atomic step for the whole fleet.
 *
 * Keys (one hash slot per group through the `{pq:<group>}` tag; the client's `keyPrefix` goes in front):
 *   {pq:G}:s:<level>   zset  slot member -> lease expiry (ms)            calls in flight, per reservation level
 *   {pq:G}:q:<level>   zset  waiter member -> priority                    waiting calls, per level
 *   {pq:G}:w           zset  waiter member -> liveness expiry (ms)        so a dead replica's waiters leave
 *   {pq:G}:m:<minute>  hash  r -> calls, t -> tokens admitted in that clock minute (rpm/tpm groups; expires in 2 min)
 * A member is `<arrival ms, 15 digits>|<replica id>|<seq>|<estimated tokens>|<priority>`: equal priorities sort by
 * member, i.e. by arrival across replicas; the member names the replica to wake, the tokens the pump counts against
 * the minute's tpm, and the priority a slot is held at (for the status).
 *
 * Event-driven: whoever frees a slot (a finished call's RELEASE, a waiter that leaves, a lapsed lease found by any
 * script) runs the pump, which moves the best admissible waiters into slots and PUBLISHes each member on its
 * replica's channel; that replica starts the call at once. Nothing polls. Waiters held by a minute's rpm/tpm wake at
 * the minute boundary: each replica with waiters in such a group sets one timer for it and runs PUMP (idempotent, so
 * any replica may); a call's real tokens replace its estimate in its minute by CORRECT, fire-and-forget. A heartbeat
 * (a third of the lease, at most every second) renews this replica's slots and waiters and answers which of its
 * waiters were admitted, so a lost message (a subscriber reconnecting) delays a call by one beat instead of leaking
 * its slot; it also re-adds slots and waiters a restarted Redis lost, so capacity holds again within a beat. (A
 * restarted Redis also forgets the minute's counts: that minute starts over.)
 *
 * Redis down: a failed ENTER returns `null` and the caller gates the call in process; waiters already queued in
 * Redis are handed to the in-process gate (their `moved()`), so none waits for a wake-up that cannot come.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { BEAT, CORRECT, ENTER, LEAVE, PUMP, RELEASE } from './lua.js'
import { BoundaryTimer, minuteOf } from './minute.js'

interface PqCommands {
  syPqEnter(n: number, ...args: Array<string | number>): Promise<[number, number, number]>
  syPqLeave(n: number, ...args: Array<string | number>): Promise<number>
  syPqRelease(n: number, ...args: Array<string | number>): Promise<number>
  syPqBeat(n: number, ...args: Array<string | number>): Promise<string[]>
  syPqPump(n: number, ...args: Array<string | number>): Promise<number>
  syPqCorrect(key: string, delta: number): Promise<number>
}

/** What the plugin tells the gate about a group on each call. */
export interface GroupParams {
  /** Parallel calls (Infinity = none). */
  capacity: number
  /** Calls and tokens per clock minute, for the whole fleet (Infinity = none). */
  rpm: number
  tpm: number
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
  /** Estimated tokens (as in its member), counted against the minute's tpm when admitted. */
  readonly tokens: number
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

/** 'full': no parallel slot and the call may not queue; 'minute-full': the same because of this minute's rpm/tpm. */
export type EnterResult = 'admitted' | 'queued' | 'full' | 'minute-full'

/** A slot this replica holds: its group and level, and the minute it counted in with its estimate (-1 = none). */
interface Held {
  group: string
  level: string
  minute: number
  tokens: number
}

export class RedisGate {
  private readonly cmd: PqCommands
  private readonly replica = randomBytes(6).toString('hex')
  private readonly channel: string
  private seq = 0
  private readonly waiting = new Map<string, SharedWaiter>()
  /** Members whose ENTER is in flight, and those of them already woken (the wake-up beat the script's reply). */
  private readonly pending = new Set<string>()
  /** Early wake-ups: member -> the minute it was counted in. */
  private readonly early = new Map<string, number>()
  private readonly held = new Map<string, Held>()
  /** Members that left are remembered briefly so a late wake-up can be answered with a release. */
  private readonly gone = new Map<string, { name: string; level: string; tokens: number }>()
  private readonly params = new Map<string, GroupParams>()
  /** Per group with per-minute limits: the timer for the next boundary, set while this replica has waiters there. */
  private readonly boundaries = new Map<string, BoundaryTimer>()
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
      redis.defineCommand('syPqPump', { lua: PUMP })
      redis.defineCommand('syPqCorrect', { lua: CORRECT, numberOfKeys: 1 })
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
    sub.on('message', (_channel: string, message: string) => this.woken(message))
    await sub.subscribe(this.channel + this.replica).catch(() => undefined)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    for (const b of this.boundaries.values()) b.clear()
    const sub = this.subscriber
    this.subscriber = null
    if (sub) await sub.quit().catch(() => sub.disconnect())
  }

  /** A waiter's member: arrival, this replica, a sequence, its estimated tokens (whole, >= 0), its priority. */
  newMember(now: number, priority: number, tokens = 0): string {
    return `${String(Math.max(0, Math.floor(now))).padStart(15, '0')}|${this.replica}|${this.seq++}|${tokens}|${priority}`
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
    let minuteFull: number
    try {
      ;[r, , minuteFull] = await this.cmd.syPqEnter(...this.args(w.group, p, now), m, li, Number.isFinite(w.priority) ? w.priority : 0,
        mayQueue ? '1' : '0', now + WAITER_LEASE_BEATS * this.beatMs)
    } catch (err) {
      this.pending.delete(m)
      this.early.delete(m)
      this.failed(err)
      return null
    }
    this.pending.delete(m)
    this.ok()
    const perMinute = p.rpm !== Infinity || p.tpm !== Infinity
    const early = this.early.get(m)
    if (early !== undefined) this.early.delete(m)
    if (r === 1 || (r === 0 && early !== undefined)) {
      this.held.set(m, { group: w.group, level: w.level, minute: !perMinute ? -1 : r === 1 ? minuteOf(now) : early!, tokens: w.tokens })
      return 'admitted'
    }
    if (r === 0) {
      this.waiting.set(m, w)
      if (perMinute) this.armBoundary(w.group)
      return 'queued'
    }
    return minuteFull === 1 ? 'minute-full' : 'full'
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

  /**
   * Free a slot taken by `enter` or an admission. `realTokens` (>= 0) replaces the call's estimate in the minute it
   * counted in; -1 = unknown (the estimate stands).
   */
  release(member: string, realTokens = -1): void {
    const h = this.held.get(member)
    if (!h) return
    this.held.delete(member)
    const p = this.params.get(h.group)
    if (!p) return
    // Sent before RELEASE on the same connection, so the pump RELEASE runs already sees the corrected tokens.
    if (h.minute >= 0 && p.tpm !== Infinity && realTokens >= 0 && realTokens !== h.tokens) {
      this.cmd.syPqCorrect(minuteKey(h.group, h.minute), realTokens - h.tokens).catch(() => {})
    }
    // A failed release leaves the slot to its lease.
    this.cmd.syPqRelease(...this.args(h.group, p, this.o.now()), member, levelIndex(p, h.level))
      .then(() => this.ok(), (err) => this.failed(err))
  }

  /**
   * Run the boundary pump of every group whose timer is set, now, as the timers would at the boundary; resolves with
   * how many ran. For tests that move an injected clock past a boundary (a real timer keeps real time).
   */
  async fireBoundaries(): Promise<number> {
    const due = [...this.boundaries].filter(([, b]) => b.armed)
    for (const [, b] of due) b.clear()
    await Promise.all(due.map(([group]) => this.boundary(group)))
    return due.length
  }

  private armBoundary(group: string): void {
    let b = this.boundaries.get(group)
    if (!b) this.boundaries.set(group, (b = new BoundaryTimer()))
    b.arm(this.o.now(), () => void this.boundary(group))
  }

  /** The minute rolled: pump the group if this replica still has waiters there, and wait for the next one if so. */
  private async boundary(group: string): Promise<void> {
    const p = this.params.get(group)
    if (!p || !this.waitsIn(group)) return
    try {
      await this.cmd.syPqPump(...this.args(group, p, this.o.now()))
      this.ok()
    } catch (err) {
      this.failed(err)
      return
    }
    if (this.waitsIn(group)) this.armBoundary(group)
  }

  private waitsIn(group: string): boolean {
    for (const w of this.waiting.values()) if (w.group === group) return true
    return false
  }

  get waitingCount(): number {
    return this.waiting.size
  }

  /** In flight and queued in Redis, per level, and this minute's counts: for /queue/status. Null when Redis does not answer. */
  async status(group: string, p: GroupParams): Promise<SharedStatus | null> {
    const now = this.o.now()
    const pipe = this.o.redis.pipeline()
    for (const level of p.levels) {
      pipe.zrangebyscore(slotsKey(group, level), `(${now}`, '+inf')
      pipe.zrange(queueKey(group, level), 0, -1)
    }
    pipe.hmget(minuteKey(group, minuteOf(now)), 'r', 't')
    const out = await pipe.exec().catch(() => null)
    if (!out || out.some(([err]) => err)) return null
    const [r, t] = out[2 * p.levels.length]![1] as Array<string | null>
    const levels: SharedStatus['levels'] = []
    for (let i = 0; i < p.levels.length; i++) {
      levels.push({
        level: p.levels[i]!,
        inFlight: (out[2 * i]![1] as string[]).map(parseMember),
        queued: (out[2 * i + 1]![1] as string[]).map(parseMember),
      })
    }
    return { capacity: p.capacity, rpm: p.rpm, tpm: p.tpm, rpmUsed: Number(r ?? 0), tpmUsed: Number(t ?? 0), levels }
  }

  private args(group: string, p: GroupParams, now: number): [number, ...Array<string | number>] {
    const keys: string[] = [waitersKey(group)]
    for (const level of p.levels) keys.push(slotsKey(group, level), queueKey(group, level))
    keys.push(minuteKey(group, minuteOf(now)))
    const limits = p.limits.map(orNone)
    const ttl = Math.max(60_000, 4 * this.o.leaseMs)
    return [keys.length, ...keys, now, orNone(p.capacity), p.saturation, p.reserved ? '1' : '0', now + this.o.leaseMs,
      this.channel, ttl, orNone(p.rpm), orNone(p.tpm), p.levels.length, ...limits]
  }

  /** A wake-up message: `<member> <minute it was counted in>`. */
  private woken(message: string): void {
    const sp = message.indexOf(' ')
    if (sp < 0) this.admitted(message, minuteOf(this.o.now()))
    else this.admitted(message.slice(0, sp), Number(message.slice(sp + 1)))
  }

  private admitted(member: string, minute: number): void {
    const w = this.waiting.get(member)
    if (!w && this.pending.has(member)) {
      this.early.set(member, minute)
      return
    }
    if (!w) {
      // Not ours any more (it left, or was handed to the local gate in an outage): give the slot back at once.
      const group = this.groupOfStray(member)
      if (group) {
        // It never ran: its tokens come off the minute it was counted in (its rpm count stays, as a started call's).
        this.held.set(member, { group: group.name, level: group.level, minute, tokens: group.tokens })
        this.release(member, 0)
      }
      return
    }
    this.waiting.delete(member)
    const p = this.params.get(w.group)
    const perMinute = p !== undefined && (p.rpm !== Infinity || p.tpm !== Infinity)
    this.held.set(member, { group: w.group, level: w.level, minute: perMinute ? minute : -1, tokens: w.tokens })
    w.admit()
  }

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
        // The beat does not say in which minute they were counted: most likely this one.
        for (const m of admitted) this.admitted(m, minuteOf(now))
      } catch (err) {
        this.failed(err)
        return
      }
    }
  }

  /** Forget a waiter that left while Redis may still admit it (a late admission is then released). */
  private forget(w: SharedWaiter): void {
    this.gone.set(w.member, { name: w.group, level: w.level, tokens: w.tokens })
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
  rpm: number
  tpm: number
  /** Calls and tokens counted in this clock minute. */
  rpmUsed: number
  tpmUsed: number
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
const minuteKey = (group: string, minute: number) => `${tag(group)}:m:${minute}`
const orNone = (n: number): number | string => (n === Infinity ? '' : n)
