/**
 * Rate-limit counters: per scope, requests and tokens in the current fixed one-minute window, and the requests in
 * flight. One small interface (admit, finish, close) with an in-process implementation here and a Redis one in
 * windows-redis.ts, chosen by the plugin.
 *
 * Windows are fixed minutes of the caller's clock (`floor(now / 60 s)`), as LiteLLM counts them, so "60 RPM" admits
 * exactly 60 calls between two minute boundaries. Admission is all-or-nothing over the scopes of one call: either
 * every scope counts it, or (refused) none does.
 */

/** One window: 60 s. */
export const WINDOW_MS = 60_000

/** The limits of one scope ('key:<hash>', 'team:<id>', ...); null = no limit of that kind. */
export interface ScopeLimits {
  scope: string
  rpm: number | null
  tpm: number | null
  parallel: number | null
}

export type LimitKind = 'rpm' | 'tpm' | 'parallel'

/** What one admission did; `finish` takes it back. */
export interface Ticket {
  /** The window the call was counted in. */
  window: number
  /** Tokens reserved at admission (the estimate), replaced by the real count at finish. */
  tokens: number
  /** Parallel slot id ('' when no scope limits parallel requests). */
  slot: string
}

export type AdmitResult =
  | {
    ok: true
    ticket: Ticket
    /** Per scope (same order as given): requests and tokens counted in this window, including this call. */
    requests: number[]
    tokens: number[]
  }
  | { ok: false; index: number; kind: LimitKind; limit: number; current: number }

export interface Windows {
  /** Count a call on every scope, or on none when one of them would pass a limit. */
  admit(scopes: readonly ScopeLimits[], now: number, tokens: number, slot: string): Promise<AdmitResult>
  /** The call is over: replace the reserved tokens by `tokens`, free the parallel slot. Never counts twice. */
  finish(scopes: readonly ScopeLimits[], ticket: Ticket, now: number, tokens: number): Promise<void>
  close(): Promise<void>
}

export const windowOf = (now: number): number => Math.floor(now / WINDOW_MS)

/**
 * The token check. A window with nothing counted yet admits any one call, so a call whose estimate alone is above the
 * limit is not refused forever (LiteLLM checks tokens already used, not the call's own); otherwise the reservation
 * must fit.
 */
export function tokensFit(used: number, tokens: number, limit: number): boolean {
  return used === 0 ? limit > 0 : used + tokens <= limit
}

interface Counter {
  window: number
  requests: number
  tokens: number
  parallel: number
  /** The scope's limits as last admitted (for the read-only snapshot). */
  limits: ScopeLimits | null
}

/** A scope's use in the current window, with its limits (the admin UI's live view). */
export interface ScopeUse {
  scope: string
  rpm: number | null
  tpm: number | null
  parallel: number | null
  requests: number
  tokens: number
  inFlight: number
}

export interface LocalWindows extends Windows {
  /** The scopes counted in this process, this window or with calls in flight. */
  snapshot(now: number): ScopeUse[]
}

/** Counters idle this long are dropped by the sweep: 2 windows. */
const IDLE_MS = 2 * WINDOW_MS

/** The in-process counters: synchronous, so one admission cannot interleave with another. */
export function createLocalWindows(o: { now: () => number; sweepMs?: number } = { now: Date.now }): LocalWindows {
  const counters = new Map<string, Counter>()
  const sweep = setInterval(() => {
    const old = windowOf(o.now() - IDLE_MS)
    for (const [scope, c] of counters) if (c.parallel <= 0 && c.window <= old) counters.delete(scope)
  }, o.sweepMs ?? WINDOW_MS)
  sweep.unref()

  /** The counter of a scope, rolled over to `window` when a new minute began. */
  function counter(scope: string, window: number): Counter {
    let c = counters.get(scope)
    if (!c) {
      c = { window, requests: 0, tokens: 0, parallel: 0, limits: null }
      counters.set(scope, c)
    } else if (c.window !== window) {
      c.window = window
      c.requests = 0
      c.tokens = 0
    }
    return c
  }

  return {
    async admit(scopes, now, tokens, slot) {
      const window = windowOf(now)
      for (let i = 0; i < scopes.length; i++) {
        const s = scopes[i]!
        const c = counter(s.scope, window)
        if (s.parallel !== null && c.parallel + 1 > s.parallel) return { ok: false, index: i, kind: 'parallel', limit: s.parallel, current: c.parallel }
        if (s.rpm !== null && c.requests + 1 > s.rpm) return { ok: false, index: i, kind: 'rpm', limit: s.rpm, current: c.requests }
        if (s.tpm !== null && !tokensFit(c.tokens, tokens, s.tpm)) return { ok: false, index: i, kind: 'tpm', limit: s.tpm, current: c.tokens }
      }
      const requests = new Array<number>(scopes.length)
      const used = new Array<number>(scopes.length)
      let parallel = false
      for (let i = 0; i < scopes.length; i++) {
        const s = scopes[i]!
        const c = counters.get(s.scope)!
        c.limits = s
        requests[i] = ++c.requests
        used[i] = c.tokens += tokens
        if (s.parallel !== null) {
          c.parallel++
          parallel = true
        }
      }
      return { ok: true, ticket: { window, tokens, slot: parallel ? slot : '' }, requests, tokens: used }
    },

    async finish(scopes, ticket, now, tokens) {
      const window = windowOf(now)
      for (const s of scopes) {
        const c = counters.get(s.scope)
        if (!c) continue
        if (ticket.slot !== '' && s.parallel !== null && c.parallel > 0) c.parallel--
        // Same minute: the estimate becomes the real count. A later minute: the admission window is gone, and the
        // tokens were used now, so they count in this one (as LiteLLM adds usage when the call ends).
        if (c.window === ticket.window && window === ticket.window) c.tokens = Math.max(0, c.tokens + tokens - ticket.tokens)
        else counter(s.scope, window).tokens += tokens
      }
    },

    snapshot(now) {
      const window = windowOf(now)
      const out: ScopeUse[] = []
      for (const [scope, c] of counters) {
        const current = c.window === window
        if (!c.limits || (!current && c.parallel <= 0)) continue
        out.push({
          scope, rpm: c.limits.rpm, tpm: c.limits.tpm, parallel: c.limits.parallel,
          requests: current ? c.requests : 0, tokens: current ? c.tokens : 0, inFlight: c.parallel,
        })
      }
      return out
    },

    async close() {
      clearInterval(sweep)
      counters.clear()
    },
  }
}
