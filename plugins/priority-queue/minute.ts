/**
 * The per-minute dimensions of a group's capacity (its deployments' summed `rpm` and `tpm`), in process: this clock
 * minute's admitted calls and tokens, and the one timer that wakes rate-blocked waiters when the minute rolls.
 *
 * Minutes are clock minutes of the injected clock (`floor(now / 60 s)`), as LiteLLM and the router count deployment
 * rpm/tpm, so "rpm 3" admits 3 calls between two minute boundaries. Tokens are the call's estimate at admission,
 * corrected to its real usage when it is done (in the minute it was admitted in, never below 0).
 */

/** One minute, ms. */
export const MINUTE_MS = 60_000

export const minuteOf = (now: number): number => Math.floor(now / MINUTE_MS)

/** Ms from `now` to the next minute boundary, at least 1 (a timer set for 0 ms at a boundary would spin). */
export const msToNextMinute = (now: number): number => Math.max(1, (minuteOf(now) + 1) * MINUTE_MS - now)

/** Retry-After for a call refused because this minute's rpm/tpm is used up: the seconds left in it, at least 1. */
export const retryAfterMinute = (now: number): number => Math.max(1, Math.ceil(msToNextMinute(now) / 1000))

/**
 * The token check. A minute with nothing counted yet admits any one call (when the limit is above 0), so a call whose
 * estimate alone is above the tpm is not held back forever; otherwise the estimate must fit on top of the minute.
 */
export function tokensFit(used: number, tokens: number, limit: number): boolean {
  return used === 0 ? limit > 0 : used + tokens <= limit
}

/** Which per-minute limit refuses a call: 'rpm', 'tpm', or null when both take it. */
export type MinuteLimit = 'rpm' | 'tpm' | null

/** This minute's count for one group. `rpm`/`tpm` are Infinity when the group has no such limit. */
export class MinuteWindow {
  minute = -1
  requests = 0
  tokens = 0

  constructor(public rpm: number, public tpm: number) {}

  /** Whether either limit is finite (else nothing here needs counting). */
  get limited(): boolean {
    return this.rpm !== Infinity || this.tpm !== Infinity
  }

  /** Move to `now`'s minute, starting it empty when a new one began. */
  at(now: number): void {
    const m = minuteOf(now)
    if (m === this.minute) return
    this.minute = m
    this.requests = 0
    this.tokens = 0
  }

  /** The limit a call of `tokens` would pass this minute (call `at` first). */
  refuses(tokens: number): MinuteLimit {
    if (this.requests >= this.rpm) return 'rpm'
    if (this.tpm !== Infinity && !tokensFit(this.tokens, tokens, this.tpm)) return 'tpm'
    return null
  }

  /** Count an admitted call; returns the minute it was counted in (for `correct`). */
  count(tokens: number): number {
    this.requests++
    this.tokens += tokens
    return this.minute
  }

  /** The call counted in `minute` with `estimate` tokens used `real`: fix that minute's tokens (if it is this one). */
  correct(minute: number, estimate: number, real: number): void {
    if (minute !== this.minute) return   // a past minute no longer gates anything
    this.tokens = Math.max(0, this.tokens + real - estimate)
  }
}

/**
 * One timer for the next minute boundary, armed while some waiter is held by rpm/tpm: the event that wakes them, so
 * nothing polls. Computed from the injected clock; `fire()` runs it at once (tests that move a fake clock past a
 * boundary, where a real timer set from the fake clock's distance would fire too late).
 */
export class BoundaryTimer {
  private timer: NodeJS.Timeout | null = null
  private run: (() => void) | null = null

  get armed(): boolean {
    return this.timer !== null
  }

  /** Set the timer for the boundary after `now` unless it is already set. */
  arm(now: number, run: () => void): void {
    if (this.timer !== null) return
    this.run = run
    this.timer = setTimeout(() => this.fire(), msToNextMinute(now))
    this.timer.unref()   // a queued call keeps the server busy, not the timer
  }

  /** Run the armed callback now (false when none was armed). */
  fire(): boolean {
    const run = this.run
    if (this.timer === null || run === null) return false
    this.clear()
    run()
    return true
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.run = null
  }
}
