/** Small numeric helpers shared by the bench sections. */

/** The p-quantile (0..1) of an ascending array, NaN when empty (nearest rank, no interpolation). */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

/** One load run's outcome, whatever generated it. Latencies in ms. */
export interface LoadResult {
  requests: number
  seconds: number
  rps: number
  p50Ms: number
  p99Ms: number
  /** Non-2xx answers plus socket errors and timeouts. */
  errors: number
}
