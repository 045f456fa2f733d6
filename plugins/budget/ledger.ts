/**
 * The budget ledger: exact budgets under concurrency. Admission reserves money before a call (`reserve`), settlement
 * replaces the reservation with the real cost after it (`settle`). Two implementations behind this one interface:
 * `createLocalLedger` (in-process Maps, one replica) and `createRedisLedger` in ./ledger-redis.ts (Lua scripts, shared
 * by every replica on one Redis).
 */
import { randomBytes } from 'node:crypto'
import { rollForward } from '../../core/duration.js'

export interface BudgetLimit {
  /** 'key:<hash>', 'team:<id>', 'user:<id>', 'end_user:<id>', 'key:<hash>:model:<name>', 'budget:<id>' */
  scope: string
  /** USD; null = track spend, no limit. */
  max: number | null
  /** LiteLLM budget_duration ('30s','1h','1d','7d','30d','1mo'); null = never resets. See core/duration.ts. */
  duration: string | null
  /** Persisted state, used only when the ledger has no entry for this scope (first use, or Redis lost it). */
  seed: { spend: number; resetAt: string | null }
}
export interface Reservation { readonly id: string; readonly scopes: readonly string[]; readonly amount: number }
export interface ScopeState { spend: number; reserved: number; resetAt: string | null }
export type ReserveResult =
  | { ok: true; reservation: Reservation; states: Record<string, ScopeState> }
  | { ok: false; scope: string; spend: number; reserved: number; max: number; resetAt: string | null }
export interface Ledger {
  /**
   * All or nothing over `limits`: refused when, for any scope with a max, spend >= max or
   * spend + reserved + amount > max (report the first such scope); otherwise `amount` is added to every scope's
   * reserved and a lease starts. Before checking, a scope whose resetAt has passed rolls over (spend = 0, resetAt =
   * rollForward(resetAt, duration, now) from core/duration.ts); a scope with a duration and no resetAt gets one.
   * `need` (default `amount`) is what must fit for admission: the budget plugin's estimate mode passes a micro-dollar
   * ("admit while any money is left") while still reserving its estimate.
   */
  reserve(limits: readonly BudgetLimit[], amount: number, need?: number): Promise<ReserveResult>
  /** Replace the reservation with the real cost on each of its scopes (reserved -= amount, spend += cost). Idempotent
   *  (a second settle of the same reservation, or a settle after its lease expired, only adds the cost where the
   *  reservation is gone — never subtracts reserved twice). Returns the scopes' states after. */
  settle(r: Reservation, cost: number): Promise<Record<string, ScopeState>>
  /** Add spend without a reservation (e.g. a call admitted while the ledger was unreachable). */
  charge(limits: readonly BudgetLimit[], cost: number): Promise<Record<string, ScopeState>>
  read(scope: string): Promise<ScopeState | null>
  /** Admin: set spend/resetAt (key/update spend, reset); keeps reserved. */
  set(scope: string, state: { spend: number; resetAt: string | null }): Promise<void>
  /** Drop a scope (deleted key/team). */
  forget(scope: string): Promise<void>
  /** Live reservations in this process (for tests and metrics). */
  live(): number
  close(): Promise<void>
}
export interface LedgerOptions {
  /** Lease length, ms (default 60_000). Live reservations are renewed every leaseMs/3 by a timer (unref'd) while
   *  this process holds them; a reservation not renewed (its process crashed) expires and its amount is released. */
  leaseMs?: number
  now?: () => number   // fake clock for tests
}

/**
 * The ledger's backend could not be reached in time (Redis down, command timeout). Callers catch it and fall back
 * (admit on the cached spend and `charge` later); it is never sent to a client as is.
 */
export class LedgerUnavailableError extends Error {
  override get name(): string {
    return 'LedgerUnavailableError'
  }
}

/** Default lease length: 60 s. */
export const DEFAULT_LEASE_MS = 60_000

// ---------------------------------------------------------------------------------------------------------------
// Shared by both implementations.
//
// Money is kept as integer micro-dollars (1 USD = 1_000_000): sums of integers are exact, in JS doubles (to 2^53
// micro-dollars, ~9 billion USD) and in Redis (HINCRBY, 64-bit), so both ledgers agree to the cent and a long run of
// small costs never drifts the way summed floats (or INCRBYFLOAT's decimal strings) do. USD in, USD out.

const MICROS = 1_000_000
export const toMicros = (usd: number): number => Math.round(usd * MICROS)
export const fromMicros = (micros: number): number => micros / MICROS
/** A settled or released reservation is remembered for this many lease lengths, so a late or repeated settle
 *  knows what happened to it (10 × 60 s by default). */
export const TOMBSTONE_LEASES = 10
/** The renewal timer fires this many times per lease, so one late tick does not lose a lease. */
const TICKS_PER_LEASE = 3

/** One entry per scope: a repeated scope would reserve twice. Limits lists are short (key, team, user, ...). */
export function uniqueLimits(limits: readonly BudgetLimit[]): readonly BudgetLimit[] {
  for (let i = 1; i < limits.length; i++) {
    for (let j = 0; j < i; j++) {
      if (limits[i]!.scope === limits[j]!.scope) return limits.filter((l, k) => limits.findIndex((m) => m.scope === l.scope) === k)
    }
  }
  return limits
}

export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())
export function msOrNull(iso: string | null): number | null {
  if (iso === null) return null
  const t = Date.parse(iso)
  return Number.isFinite(t) ? t : null
}

/**
 * Reservations are renewed only while the caller still holds the Reservation object (a WeakRef): a call in flight
 * keeps its money reserved however long it streams, and a reservation dropped without a settle (a bug) is collected,
 * stops being renewed and expires within one lease, like one whose process crashed.
 */
export type HeldRef = WeakRef<Reservation>

/** Ids unique across replicas and cheap to make: a random instance part (64 bits) and a counter. */
export function reservationIds(): () => string {
  const instance = randomBytes(8).toString('base64url')
  let seq = 0
  return () => `${instance}.${(++seq).toString(36)}`
}

/** The renewal timer: every leaseMs/3, unref'd (it never keeps the process alive), one tick at a time. */
export function renewalTimer(leaseMs: number, tick: () => Promise<void>): { stop(): void } {
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    // A failed tick (Redis down) is retried by the next one; if the outage outlasts the lease, the lease lapses and
    // its money is released, which is what a lease is for. The caller sees the outage on its own calls.
    tick().catch(() => {}).finally(() => { running = false })
  }, Math.max(1, Math.floor(leaseMs / TICKS_PER_LEASE)))
  timer.unref()
  return { stop: () => clearInterval(timer) }
}

// ---------------------------------------------------------------------------------------------------------------
// The in-process ledger: one replica, Maps, synchronous (so every operation is atomic by construction).

interface Entry { spend: number; reserved: number; resetAt: number | null }     // micro-dollars, epoch ms
/** A lease points at the entries it reserved on, not at scope names: after a `forget` and a re-creation of the same
 *  scope, releasing the old reservation must not take money off the new entry's reserved. */
interface Lease { entries: readonly Entry[]; amount: number; expires: number; ref: HeldRef }

/** A ledger whose leases can be renewed on demand (tests; the timer calls the same function). */
export interface LeasedLedger extends Ledger {
  /** Renew the leases of reservations still held, and release expired ones. */
  renew(): Promise<void>
}

export function createLocalLedger(opts: LedgerOptions = {}): LeasedLedger {
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS
  const now = opts.now ?? Date.now
  const nextId = reservationIds()
  const scopes = new Map<string, Entry>()
  const leases = new Map<string, Lease>()
  /** Finished reservations: id -> when to forget it. Insertion order is expiry order (one fixed length). */
  const finished = new Map<string, { settled: boolean; until: number }>()
  /** No lease expires before this (a lower bound), so most calls skip the sweep. */
  let earliest = Infinity

  const timer = renewalTimer(leaseMs, renew)

  const state = (e: Entry): ScopeState => ({ spend: fromMicros(e.spend), reserved: fromMicros(e.reserved), resetAt: isoOrNull(e.resetAt) })

  function finish(id: string, settled: boolean, t: number): void {
    finished.delete(id)
    finished.set(id, { settled, until: t + TOMBSTONE_LEASES * leaseMs })
  }

  function sweep(t: number): void {
    if (t >= earliest) {
      earliest = Infinity
      for (const [id, l] of leases) {
        if (l.expires > t) {
          if (l.expires < earliest) earliest = l.expires
          continue
        }
        for (const e of l.entries) e.reserved -= l.amount
        leases.delete(id)
        finish(id, false, t)
      }
    }
    for (const [id, f] of finished) {
      if (f.until > t) break
      finished.delete(id)
    }
  }

  /** The scope's entry, seeded when missing and rolled over when its period ended. */
  function entry(limit: BudgetLimit, t: number): Entry {
    let e = scopes.get(limit.scope)
    if (!e) {
      e = { spend: toMicros(limit.seed.spend), reserved: 0, resetAt: msOrNull(limit.seed.resetAt) }
      scopes.set(limit.scope, e)
    }
    if (limit.duration !== null && (e.resetAt === null || e.resetAt <= t)) {
      const next = msOrNull(rollForward(isoOrNull(e.resetAt), limit.duration, t))
      if (next !== null) {
        if (e.resetAt !== null) e.spend = 0
        e.resetAt = next
      }
    }
    return e
  }

  return {
    async reserve(limits, amount, need = amount) {
      const t = now()
      sweep(t)
      const list = uniqueLimits(limits)
      const micros = Math.max(0, toMicros(amount))
      const needMicros = Math.max(0, toMicros(need))
      const entries = list.map((l) => entry(l, t))
      for (let i = 0; i < list.length; i++) {
        const max = list[i]!.max
        if (max === null) continue
        const e = entries[i]!
        const m = toMicros(max)
        if (e.spend >= m || e.spend + e.reserved + needMicros > m) {
          return { ok: false, scope: list[i]!.scope, spend: fromMicros(e.spend), reserved: fromMicros(e.reserved), max, resetAt: isoOrNull(e.resetAt) }
        }
      }
      const states: Record<string, ScopeState> = {}
      for (let i = 0; i < list.length; i++) {
        entries[i]!.reserved += micros
        states[list[i]!.scope] = state(entries[i]!)
      }
      const reservation: Reservation = { id: nextId(), scopes: list.map((l) => l.scope), amount }
      const expires = t + leaseMs
      leases.set(reservation.id, { entries, amount: micros, expires, ref: new WeakRef(reservation) })
      if (expires < earliest) earliest = expires
      return { ok: true, reservation, states }
    },

    async settle(r, cost) {
      const t = now()
      const micros = toMicros(cost)
      const lease = leases.get(r.id)
      const done = finished.get(r.id)
      const states: Record<string, ScopeState> = {}
      if (lease) {
        for (const e of lease.entries) e.reserved -= lease.amount
        leases.delete(r.id)
      }
      for (const s of r.scopes) {
        const e = scopes.get(s)
        if (!e) continue   // forgotten: recreating it from the cost alone would hide its persisted seed
        if (!done?.settled) e.spend += micros
        states[s] = state(e)
      }
      if (!done?.settled) finish(r.id, true, t)
      return states
    },

    async charge(limits, cost) {
      const t = now()
      const micros = toMicros(cost)
      const states: Record<string, ScopeState> = {}
      for (const l of uniqueLimits(limits)) {
        const e = entry(l, t)
        e.spend += micros
        states[l.scope] = state(e)
      }
      return states
    },

    async read(scope) {
      const e = scopes.get(scope)
      return e ? state(e) : null
    },

    async set(scope, s) {
      const e = scopes.get(scope)
      if (e) {
        e.spend = toMicros(s.spend)
        e.resetAt = msOrNull(s.resetAt)
      } else {
        scopes.set(scope, { spend: toMicros(s.spend), reserved: 0, resetAt: msOrNull(s.resetAt) })
      }
    },

    async forget(scope) {
      scopes.delete(scope)
    },

    live: () => leases.size,

    renew,

    async close() {
      timer.stop()
    },
  }

  async function renew(): Promise<void> {
    const t = now()
    const expires = t + leaseMs
    for (const l of leases.values()) {
      if (l.ref.deref() !== undefined) l.expires = expires
    }
    earliest = -Infinity   // recompute on the sweep
    sweep(t)
  }
}
