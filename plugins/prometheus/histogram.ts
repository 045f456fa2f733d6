/**
 * Histograms kept as plain arrays per series and handed to prom-client's Registry at scrape time.
 *
 * Why not prom-client's Histogram: its observe() validates and hashes the label set on every call (about 2 µs with
 * LiteLLM's nine labels, measured), and a model call feeds five histograms and a dozen counters. Here a call finds its
 * series with one Map lookup and an observation is a bucket search and three additions; labels are built once per
 * series. The Registry accepts any object with `name`, `help`, `type`, `aggregator` and `get()`, which is how its
 * own metric classes plug in; this one merges series that share a label set (a metric may use fewer labels than the
 * series key) and writes cumulative `_bucket`, `_sum` and `_count` lines.
 */
import type { MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client'

/** LiteLLM's LATENCY_BUCKETS (seconds), so dashboards' bucket boundaries line up. */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 8.5, 9, 9.5,
  10, 15, 20, 25, 30, 60, 120, 180, 240, 300,
]

/** One series' observations: per-bucket counts (not cumulative; the last slot is +Inf), sum and count. */
export class Hist {
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(v: number): void {
    // Binary search for the first bound >= v (Prometheus buckets are upper-inclusive).
    const b = this.bounds
    let lo = 0
    let hi = b.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (b[mid]! >= v) hi = mid
      else lo = mid + 1
    }
    this.counts[lo]!++
    this.sum += v
    this.count++
  }
}

export type Labels = Record<string, string>
/** Called at scrape time with `add(labels, hist)` for every series that has observations. */
export type HistFill = (add: (labels: Labels, h: Hist) => void) => void | Promise<void>

export class DerivedHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], readonly bounds: readonly number[],
    private readonly fill: HistFill) {}

  async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const merged = new Map<string, { labels: Labels; counts: Float64Array; sum: number; count: number }>()
    const names = this.labelNames
    await this.fill((all, h) => {
      if (h.count === 0) return
      let key = ''
      for (const n of names) key += (all[n] ?? '') + '\u0000'
      let m = merged.get(key)
      if (!m) {
        const labels: Labels = {}
        for (const n of names) labels[n] = all[n] ?? ''
        merged.set(key, (m = { labels, counts: new Float64Array(h.counts.length), sum: 0, count: 0 }))
      }
      for (let i = 0; i < h.counts.length; i++) m.counts[i]! += h.counts[i]!
      m.sum += h.sum
      m.count += h.count
    })
    const values: MetricValueWithName<string>[] = []
    for (const m of merged.values()) {
      let cum = 0
      for (let i = 0; i < this.bounds.length; i++) {
        cum += m.counts[i]!
        values.push({ metricName: `${this.name}_bucket`, labels: { ...m.labels, le: this.bounds[i]! }, value: cum })
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...m.labels, le: '+Inf' }, value: m.count })
      values.push({ metricName: `${this.name}_sum`, labels: m.labels, value: m.sum })
      values.push({ metricName: `${this.name}_count`, labels: m.labels, value: m.count })
    }
    return { name: this.name, help: this.help, type: 'histogram' as never, aggregator: 'sum', values } as never
  }

  register(reg: Registry): this {
    reg.registerMetric(this as never)
    return this
  }
}
