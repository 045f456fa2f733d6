/**
 * LiteLLM's duration strings (`budget_duration`, key `duration`): '30s', '5m', '1h', '1d', '7d', '2w', '1mo', '1y'.
 * Months and years are calendar ones (UTC): a '1mo' budget set on Jan 31 resets on the last day of February.
 */

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|mo|y)\s*$/

export interface Duration {
  amount: number
  unit: 's' | 'm' | 'h' | 'd' | 'w' | 'mo' | 'y'
}

/** Parse a duration string; null when it is not one. */
export function parseDuration(s: unknown): Duration | null {
  if (typeof s !== 'string') return null
  const m = PATTERN.exec(s)
  if (!m) return null
  const amount = Number(m[1])
  if (!(amount > 0)) return null
  const unit = m[2] as Duration['unit']
  if ((unit === 'mo' || unit === 'y') && !Number.isInteger(amount)) return null
  return { amount, unit }
}

/** `from` plus the duration, in ms since the epoch. */
export function addDuration(from: number, d: Duration): number {
  if (d.unit === 'mo' || d.unit === 'y') {
    const date = new Date(from)
    const months = d.unit === 'y' ? d.amount * 12 : d.amount
    const day = date.getUTCDate()
    date.setUTCDate(1)
    date.setUTCMonth(date.getUTCMonth() + months)
    const last = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate()
    date.setUTCDate(Math.min(day, last))
    return date.getTime()
  }
  return from + d.amount * UNIT_MS[d.unit]!
}

/** The next reset time (ISO) for a budget_duration starting now; null without a (valid) duration. */
export function nextReset(duration: string | null | undefined, now: number = Date.now()): string | null {
  const d = parseDuration(duration)
  return d ? new Date(addDuration(now, d)).toISOString() : null
}

/**
 * The reset time in force at `now` for a budget whose period last reset at `resetAt`: `resetAt` itself while it is
 * in the future, else the first period boundary after `now` (resetAt + k × duration). Every replica and every store
 * computes the same boundary from the same inputs, so a rollover happens once, at the same instant.
 */
export function rollForward(resetAt: string | null, duration: string | null | undefined, now: number = Date.now()): string | null {
  const d = parseDuration(duration)
  if (!d) return null
  if (!resetAt) return new Date(addDuration(now, d)).toISOString()
  let t = Date.parse(resetAt)
  if (!Number.isFinite(t)) return new Date(addDuration(now, d)).toISOString()
  if (t > now) return resetAt
  if (d.unit !== 'mo' && d.unit !== 'y') {
    const step = addDuration(0, d)
    t += (Math.floor((now - t) / step) + 1) * step
    return new Date(t).toISOString()
  }
  while (t <= now) t = addDuration(t, d)
  return new Date(t).toISOString()
}
