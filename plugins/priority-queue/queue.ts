/**
 * The in-process scheduler of the priority-queue plugin: per model group, a capacity gate (how many calls may be in
 * flight at once, and how many calls and tokens it may start per clock minute) and the waiters ordered by priority
 * (lower = more important), then arrival.
 *
 * Admission is event-driven: a waiter is admitted in `enqueue()` when it may start, else when `release()` frees a
 * slot, a waiter ahead of it leaves, or the minute boundary timer fires (minute.ts); nothing polls. Waiters live in
 * one heap per reservation level, so a level held to its share under saturation does not block the best waiter of
 * another level (a single heap would have to be scanned past it).
 *
 * The per-minute limits are head-of-line: when the best waiter that has a parallel slot does not fit this minute's
 * rpm/tpm, nobody behind it starts this minute (a small call slipping past a large one would starve it, and the
 * priority order is the promise). An empty minute admits any one call, so the head always starts at the boundary.
 */
import { BoundaryTimer, MinuteWindow, type MinuteLimit } from './minute.js'

/** One queued request. `index` is its position in its heap, kept so timeout/disconnect remove it in O(log n). */
export interface Waiter {
  readonly priority: number
  /** Arrival order: ties on priority are first come, first served. */
  readonly seq: number
  /** Reservation level ('' = none). */
  readonly level: string
  /** clock.now() when it was queued, ms. */
  readonly queuedAt: number
  index: number
  /** Estimated tokens of the call, counted against the group's tpm at admission (0 when it has none). */
  readonly tokens?: number
  /** Called once, when the waiter is admitted (its slot is taken before the call), with the minute it counted in. */
  readonly admit: (minute: number) => void
}

const before = (a: Waiter, b: Waiter) => a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq)

/** A binary min-heap on (priority, seq) with removal of any element by its stored index. */
export class WaiterHeap {
  private readonly items: Waiter[] = []

  get size(): number {
    return this.items.length
  }

  peek(): Waiter | undefined {
    return this.items[0]
  }

  push(w: Waiter): void {
    w.index = this.items.length
    this.items.push(w)
    this.up(w.index)
  }

  pop(): Waiter | undefined {
    const top = this.items[0]
    if (top !== undefined) this.removeAt(0)
    return top
  }

  /** Remove `w` if it is still in this heap; false when it was not (already admitted or removed). */
  remove(w: Waiter): boolean {
    const i = w.index
    if (i < 0 || this.items[i] !== w) return false
    this.removeAt(i)
    return true
  }

  /** Every waiter, in heap order (not sorted): for status reports. */
  all(): readonly Waiter[] {
    return this.items
  }

  private removeAt(i: number): void {
    const items = this.items
    const gone = items[i]!
    const last = items.pop()!
    gone.index = -1
    if (i === items.length) return
    items[i] = last
    last.index = i
    this.down(i)
    this.up(last.index)
  }

  private up(i: number): void {
    const items = this.items
    const w = items[i]!
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = items[p]!
      if (!before(w, parent)) break
      items[i] = parent
      parent.index = i
      i = p
    }
    items[i] = w
    w.index = i
  }

  private down(i: number): void {
    const items = this.items
    const n = items.length
    const w = items[i]!
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && before(items[r]!, items[l]!) ? r : l
      const child = items[c]!
      if (!before(child, w)) break
      items[i] = child
      child.index = i
      i = c
    }
    items[i] = w
    w.index = i
  }
}

export interface ReservationPolicy {
  /** Level name -> share of capacity (0..1). Empty = no reservation: the gate is a plain priority queue. */
  shares: ReadonlyMap<string, number>
  /** In-flight/capacity at or above which each level is held to its share (LiteLLM's strict mode), 0..1. */
  saturationThreshold: number
}

export interface PriorityStats {
  inFlight: number
  queued: number
  oldestWaitMs: number
}

export interface GateStatus {
  /** Parallel calls; null = no parallel limit (a group gated by rpm/tpm only). */
  capacity: number | null
  /** Calls and tokens per clock minute (null = none), and what this minute has used. */
  rpm: number | null
  tpm: number | null
  rpmUsed: number
  tpmUsed: number
  inFlight: number
  queued: number
  oldestWaitMs: number
  /** Keyed by priority (as a string; 'none' for calls admitted without one). */
  priorities: Record<string, PriorityStats>
  /** In flight per reservation level ('' = no level), when a reservation is configured. */
  levels: Record<string, { inFlight: number; queued: number; limit: number | null }>
}

/** Priority key for in-flight accounting of a call admitted without any priority. */
export const NO_PRIORITY = Number.POSITIVE_INFINITY

/** The per-minute limits of a gate (Infinity = none) and the clock its minutes are read from. */
export interface MinuteLimits {
  rpm: number
  tpm: number
  now: () => number
}

/** Why a call may not start now: no parallel slot (or its level is over its share), or this minute's rpm/tpm. */
export type Refusal = 'parallel' | Exclude<MinuteLimit, null> | null

const NO_MINUTE_LIMITS: MinuteLimits = { rpm: Infinity, tpm: Infinity, now: Date.now }

/**
 * One model group's gate. Its limits may change between calls (deployments added at runtime): the latest values
 * given to `setLimits` rule the next admissions; calls already in flight are never cut.
 */
export class CapacityGate {
  capacity: number
  inFlight = 0
  private readonly heaps = new Map<string, WaiterHeap>()
  private readonly levelInFlight = new Map<string, number>()
  private readonly priorityInFlight = new Map<number, number>()
  private queuedCount = 0
  private readonly window: MinuteWindow
  private readonly now: () => number
  private readonly boundary = new BoundaryTimer()
  /** Set by the pump when the best waiter with a slot does not fit this minute: the limit that holds it. */
  private rateBlocked: MinuteLimit = null
  private readonly pumpNow = () => this.pump()

  constructor(capacity: number, private readonly policy: ReservationPolicy, minute: MinuteLimits = NO_MINUTE_LIMITS) {
    this.capacity = capacity
    this.window = new MinuteWindow(minute.rpm, minute.tpm)
    this.now = minute.now
  }

  get queued(): number {
    return this.queuedCount
  }

  /** Calls and tokens per clock minute (Infinity = none). */
  get rpm(): number {
    return this.window.rpm
  }

  get tpm(): number {
    return this.window.tpm
  }

  /** The per-minute limit holding the best waiter that has a slot, or null (for a timed-out waiter's message). */
  get heldByMinute(): MinuteLimit {
    return this.rateBlocked
  }

  setLimits(capacity: number, rpm: number, tpm: number): void {
    if (capacity === this.capacity && rpm === this.window.rpm && tpm === this.window.tpm) return
    this.capacity = capacity
    this.window.rpm = rpm
    this.window.tpm = tpm
    this.pump()
  }

  /**
   * The most a level may hold in flight right now: unlimited below the saturation threshold; at or above it, its
   * share of capacity, at least 1 so a small share is never starved to zero. A call with no level, when a
   * reservation is configured, is held to what the named levels leave (1 - their sum), also at least 1.
   */
  levelLimit(level: string): number {
    const shares = this.policy.shares
    if (shares.size === 0) return Infinity
    let share = shares.get(level)
    if (share === undefined) {
      let sum = 0
      for (const s of shares.values()) sum += s
      share = Math.max(0, 1 - sum)
    }
    // A tiny epsilon: 0.9 * 10 is 9.000000000000002 or 8.999999999999998 depending on the operands.
    return Math.max(1, Math.floor(share * this.capacity + 1e-9))
  }

  /** Whether a call of `level` may start now (a free slot, and its level within its share under saturation). */
  canAdmit(level: string): boolean {
    if (this.inFlight >= this.capacity) return false
    if (this.policy.shares.size === 0) return true
    if (this.inFlight / this.capacity < this.policy.saturationThreshold) return true
    return (this.levelInFlight.get(level) ?? 0) < this.levelLimit(level)
  }

  /**
   * Why a call of `level` and `tokens` may not start now without passing anyone, or null when it may. Waiters held
   * by this minute's rpm/tpm are ahead of it (a call with a priority then queues, and the pump puts it in order).
   */
  refuses(level: string, tokens: number): Refusal {
    if (this.window.limited) {
      // The minute may have rolled since the pump stopped on it: look again (cheap: one peek per level).
      if (this.rateBlocked !== null) this.pump()
      if (this.rateBlocked !== null) return this.rateBlocked
      this.window.at(this.now())
      const r = this.window.refuses(tokens)
      if (r !== null) return r
    }
    return this.canAdmit(level) ? null : 'parallel'
  }

  /**
   * Take a slot now (the caller checked `refuses`, or `canAdmit` for a gate without per-minute limits) and count the
   * call in this minute. Returns that minute (-1 when the gate has no per-minute limit), for `correct`.
   */
  take(level: string, priority: number, tokens = 0): number {
    this.inFlight++
    this.levelInFlight.set(level, (this.levelInFlight.get(level) ?? 0) + 1)
    this.priorityInFlight.set(priority, (this.priorityInFlight.get(priority) ?? 0) + 1)
    if (!this.window.limited) return -1
    this.window.at(this.now())
    return this.window.count(tokens)
  }

  /** A call counted in `minute` with `estimate` tokens used `real`: fix that minute (call before `release`). */
  correct(minute: number, estimate: number, real: number): void {
    if (minute < 0) return
    this.window.at(this.now())
    this.window.correct(minute, estimate, real)
  }

  /** Free a slot taken by `take` (or by an admitted waiter) and admit whoever may start now. */
  release(level: string, priority: number): void {
    this.inFlight--
    dec(this.levelInFlight, level)
    dec(this.priorityInFlight, priority)
    this.pump()
  }

  /** Queue a waiter and admit at once whoever may start (possibly this one: its `admit` runs synchronously). */
  enqueue(w: Waiter): void {
    let heap = this.heaps.get(w.level)
    if (!heap) this.heaps.set(w.level, (heap = new WaiterHeap()))
    heap.push(w)
    this.queuedCount++
    this.pump()
  }

  /** Take a waiter out of the queue (timeout, disconnect); false when it was already admitted. */
  remove(w: Waiter): boolean {
    const heap = this.heaps.get(w.level)
    if (!heap || !heap.remove(w)) return false
    this.queuedCount--
    // It may have been the head held by this minute's tokens: the next one may fit.
    if (this.rateBlocked !== null) this.pump()
    return true
  }

  /** Run what the minute boundary timer runs, now; false when no timer was armed (tests with a fake clock). */
  fireBoundary(): boolean {
    return this.boundary.fire()
  }

  /** Drop the boundary timer (the gateway stops). */
  close(): void {
    this.boundary.clear()
  }

  /** Admit the best admissible waiters while slots are free and this minute takes them. */
  private pump(): void {
    const limited = this.window.limited
    if (limited) this.window.at(this.now())
    this.rateBlocked = null
    while (this.queuedCount > 0 && this.inFlight < this.capacity) {
      let best: Waiter | undefined
      let bestHeap: WaiterHeap | undefined
      for (const [level, heap] of this.heaps) {
        const top = heap.peek()
        if (top === undefined || !this.canAdmit(level)) continue
        if (best === undefined || before(top, best)) {
          best = top
          bestHeap = heap
        }
      }
      if (best === undefined) break
      const tokens = best.tokens ?? 0
      if (limited && (this.rateBlocked = this.window.refuses(tokens)) !== null) break
      bestHeap!.pop()
      this.queuedCount--
      best.admit(this.take(best.level, best.priority, tokens))
    }
    // Held by the minute: wake at its end (one timer per group). Otherwise a release or an arrival is the event.
    if (this.rateBlocked !== null) this.boundary.arm(this.now(), this.pumpNow)
    else if (this.boundary.armed) this.boundary.clear()
  }

  status(now: number): GateStatus {
    const priorities: Record<string, PriorityStats> = {}
    const stat = (p: number) => (priorities[p === NO_PRIORITY ? 'none' : String(p)] ??= { inFlight: 0, queued: 0, oldestWaitMs: 0 })
    for (const [p, n] of this.priorityInFlight) stat(p).inFlight = n
    let oldest = 0
    const levels: GateStatus['levels'] = {}
    const reserved = this.policy.shares.size > 0
    for (const [level, heap] of this.heaps) {
      for (const w of heap.all()) {
        const s = stat(w.priority)
        s.queued++
        const waited = now - w.queuedAt
        if (waited > s.oldestWaitMs) s.oldestWaitMs = waited
        if (waited > oldest) oldest = waited
      }
      if (reserved && heap.size > 0) (levels[level] ??= { inFlight: 0, queued: 0, limit: this.levelLimit(level) }).queued = heap.size
    }
    if (reserved) {
      for (const [level, n] of this.levelInFlight) (levels[level] ??= { inFlight: 0, queued: 0, limit: this.levelLimit(level) }).inFlight = n
    }
    const w = this.window
    w.at(now)
    return {
      capacity: this.capacity === Infinity ? null : this.capacity,
      rpm: w.rpm === Infinity ? null : w.rpm,
      tpm: w.tpm === Infinity ? null : w.tpm,
      rpmUsed: w.limited ? w.requests : 0,
      tpmUsed: w.limited ? w.tokens : 0,
      inFlight: this.inFlight, queued: this.queuedCount, oldestWaitMs: oldest, priorities, levels,
    }
  }
}

function dec<K>(m: Map<K, number>, k: K): void {
  const n = (m.get(k) ?? 0) - 1
  if (n <= 0) m.delete(k)
  else m.set(k, n)
}
