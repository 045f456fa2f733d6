/**
 * What the routing strategies and the pre-call checks know about each deployment: calls in flight, requests and
 * tokens in the current minute, recent latency and time to first token. One small interface with an in-process
 * implementation (here) and a Redis one shared between replicas (stats-redis.ts), chosen by whether a state plugin
 * registered `cradle.redis` (@fastify/rate-limit's LocalStore / RedisStore split).
 *
 * Deployments are keyed by id. Times are ms since the epoch by the gateway's clock; the minute is
 * `floor(now / 60 s)`, as LiteLLM counts rpm/tpm per wall-clock minute.
 */

/** A deployment's numbers as the router reads them; one reused object per deployment and group (no per-call allocation). */
export interface DeploymentStats {
  /** Calls sent to it that have not ended yet. */
  inFlight: number
  /** Requests sent to it in the current minute. */
  requests: number
  /** Tokens (prompt + completion) it used in the current minute. */
  tokens: number
  /** Mean latency of its recent non-streaming calls, ms; -1 without a sample. */
  latencyMs: number
  /** Mean time to first token of its recent streams, ms; -1 without a sample. */
  ttftMs: number
}

export interface RouterStats {
  /** A call was sent to `id`: one more in flight and one more request this minute. Returns the handle for `release`. */
  acquire(id: string, now: number): number
  /** The call `handle` to `id` ended (whatever the outcome): one fewer in flight. */
  release(id: string, handle: number): void
  /** Add requests (negative: a correction) and tokens to `id`'s count for the minute of `now`. */
  count(id: string, now: number, requests: number, tokens: number): void
  /** A latency sample, ms; `ttft`: a stream's time to its first token. */
  sample(id: string, ms: number, ttft: boolean, now: number): void
  /** Fill `out[i]` with what is known of `ids[i]`, synchronously (a shared implementation reads a cached snapshot). */
  read(ids: readonly string[], now: number, out: DeploymentStats[]): void
  /** A promise to await once before the first `read` of a group (a shared implementation's first fetch); else null. */
  ready(ids: readonly string[], now: number): Promise<void> | null
}

export interface StatsParams {
  /** Latency samples kept per deployment and kind (LiteLLM `max_latency_list_size`, default 10). */
  samples: number
  /** A latency sample counts for this long, ms (LiteLLM routing_strategy_args.ttl, default 1 h). */
  latencyTtlMs: number
}

/** LiteLLM counts rpm/tpm per minute: 60 s. */
export const MINUTE_MS = 60_000
/** Deployments remembered in process; past this the least recently added is dropped (wildcard names can mint many). */
const MAX_DEPLOYMENTS = 10_000

export const minuteOf = (now: number): number => Math.floor(now / MINUTE_MS)

export function emptyStats(): DeploymentStats {
  return { inFlight: 0, requests: 0, tokens: 0, latencyMs: -1, ttftMs: -1 }
}

/** The last `size` samples with their times, in preallocated arrays. */
export class SampleRing {
  private readonly ms: Float64Array
  private readonly at: Float64Array
  private n = 0
  private next = 0
  constructor(size: number) {
    this.ms = new Float64Array(size)
    this.at = new Float64Array(size)
  }
  push(ms: number, at: number): void {
    this.ms[this.next] = ms
    this.at[this.next] = at
    this.next = (this.next + 1) % this.ms.length
    if (this.n < this.ms.length) this.n++
  }
  /** Mean of the samples taken after `since`; -1 when none. */
  mean(since: number): number {
    let sum = 0
    let k = 0
    for (let i = 0; i < this.n; i++) {
      if (this.at[i]! < since) continue
      sum += this.ms[i]!
      k++
    }
    return k === 0 ? -1 : sum / k
  }
}

class LocalEntry {
  minute = -1
  requests = 0
  tokens = 0
  inFlight = 0
  readonly latency: SampleRing
  readonly ttft: SampleRing
  constructor(samples: number) {
    this.latency = new SampleRing(samples)
    this.ttft = new SampleRing(samples)
  }
  /** Counts for `minute`: a new minute starts from zero. */
  at(minute: number): this {
    if (this.minute !== minute) {
      this.minute = minute
      this.requests = 0
      this.tokens = 0
    }
    return this
  }
}

export function localRouterStats(p: StatsParams): RouterStats {
  const entries = new Map<string, LocalEntry>()
  function entry(id: string): LocalEntry {
    let e = entries.get(id)
    if (!e) {
      if (entries.size >= MAX_DEPLOYMENTS) entries.delete(entries.keys().next().value!)
      entries.set(id, (e = new LocalEntry(p.samples)))
    }
    return e
  }
  let handles = 0
  return {
    acquire(id, now) {
      const e = entry(id).at(minuteOf(now))
      e.inFlight++
      e.requests++
      return ++handles
    },
    release(id) {
      const e = entries.get(id)
      if (e && e.inFlight > 0) e.inFlight--
    },
    count(id, now, requests, tokens) {
      const minute = minuteOf(now)
      const e = entry(id)
      // A correction for a minute that is already over changes nothing that is still read.
      if (minute < e.minute) return
      e.at(minute)
      e.requests = Math.max(0, e.requests + requests)
      e.tokens += tokens
    },
    sample(id, ms, ttft, now) {
      const e = entry(id)
      ;(ttft ? e.ttft : e.latency).push(ms, now)
    },
    read(ids, now, out) {
      const minute = minuteOf(now)
      const since = now - p.latencyTtlMs
      for (let i = 0; i < ids.length; i++) {
        const s = out[i]!
        const e = entries.get(ids[i]!)
        if (!e) {
          s.inFlight = 0
          s.requests = 0
          s.tokens = 0
          s.latencyMs = -1
          s.ttftMs = -1
          continue
        }
        const current = e.minute === minute
        s.inFlight = e.inFlight
        s.requests = current ? e.requests : 0
        s.tokens = current ? e.tokens : 0
        s.latencyMs = e.latency.mean(since)
        s.ttftMs = e.ttft.mean(since)
      }
    },
    ready: () => null,
  }
}
