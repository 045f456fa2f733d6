/** What every section gets from bench/run.ts. */
import { coresBusyUs, cpuTimeOfUs } from './proc-stats.js'
import { parseCpuList } from './cpus.js'
import type { CpuLayout } from './cpus.js'
import type { LoadResult } from './stats.js'
import type { Loader, LoadSpec } from './wrk.js'

export interface BenchContext {
  /** Temp directory for configs, logs, data. */
  dir: string
  /** Length of each measured run, s. */
  seconds: number
  /** Concurrent connections of the saturation runs. */
  connections: number
  layout: CpuLayout
  loader: Loader
  /** The fake upstream, http://127.0.0.1:port. */
  upstream: string
  /** Gateway server.log_level: info (the default) writes one access line per call, as in production. */
  logLevel: string
  cpuProf?: string | undefined
  /** Progress line (stderr), so a long run shows where it is. */
  progress(line: string): void
}

/** Warm-up before each measured run (JIT, keep-alive pools, caches): 2 s. */
export const WARMUP_S = 2

export interface Measured extends LoadResult {
  /** CPU time of the measured processes per request, µs (all their threads). */
  cpuUsPerReq: number
  /** Their CPU time over the wall time, %: near 100 per process means it was the bottleneck. */
  cpuPct: number
  /**
   * CPU other processes took on the cores under test during the run, % of those cores (NaN when not pinned). Above
   * a few %, the machine is shared and the figures are low by about that much.
   */
  noisePct: number
}

/** One load run, with the CPU the given processes spent during it. */
export async function measure(ctx: BenchContext, pids: readonly number[], spec: Omit<LoadSpec, 'cpus' | 'seconds'> & { seconds?: number }, cores = ctx.layout.gateway): Promise<Measured> {
  const full: LoadSpec = { ...spec, seconds: spec.seconds ?? ctx.seconds, cpus: ctx.layout.load }
  const coreList = cores ? [...new Set(parseCpuList(cores))] : []
  const b0 = coreList.length ? coresBusyUs(coreList) : NaN
  const c0 = cpuTimeOfUs(pids)
  const t0 = performance.now()
  const r = await ctx.loader.run(full)
  const wallUs = (performance.now() - t0) * 1000
  const c1 = cpuTimeOfUs(pids)
  const b1 = coreList.length ? coresBusyUs(coreList) : NaN
  const cpu = c0 !== null && c1 !== null ? c1 - c0 : NaN
  return {
    ...r, cpuUsPerReq: r.requests ? cpu / r.requests : NaN, cpuPct: (cpu / wallUs) * 100,
    noisePct: Math.max(0, ((b1 - b0 - cpu) / (wallUs * coreList.length)) * 100),
  }
}

/** A warm-up run whose figures are dropped but its request count (the calls it made). */
export async function warm(ctx: BenchContext, spec: Omit<LoadSpec, 'cpus' | 'seconds'>): Promise<number> {
  return (await ctx.loader.run({ ...spec, seconds: WARMUP_S, cpus: ctx.layout.load })).requests
}
