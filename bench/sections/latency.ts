/**
 * Section 2, latency at a fixed rate: plain chat at `RATE` calls a second, open loop (roles/open-loop.ts, pinned
 * to the load core), first against the bare proxy, then the full chain. The figure that matters is "added p99":
 * the gateway's p99 minus the bare proxy's, both measured from the scheduled send time.
 */
import { once } from 'node:events'
import path from 'node:path'
import { BODIES, MASTER_KEY } from '../lib/fixtures.js'
import { gatewayConfig, loggedErrors, startGateway, virtualKey, writeConfig } from '../lib/gateway.js'
import { start, stop, type Started } from '../lib/procs.js'
import { WARMUP_S, type BenchContext } from '../lib/context.js'
import { parseCpuList } from '../lib/cpus.js'
import { coresBusyUs, cpuTimeUs } from '../lib/proc-stats.js'
import { root } from '../lib/gateway.js'

/** The rate for the latency target: 1,000 calls/s. */
export const RATE = 1000

export interface OpenLoopResult {
  sent: number; ok: number; errors: number; p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number; lagP99Ms: number
  /** CPU other processes took on the gateway core during the run, % (NaN when not pinned). */
  noisePct: number
}

export interface LatencyResult { bare: OpenLoopResult; full: OpenLoopResult; gatewayErrors: string[] }

async function openLoop(ctx: BenchContext, target: Started, url: string, key: string, label: string): Promise<OpenLoopResult> {
  const cores = ctx.layout.gateway ? parseCpuList(ctx.layout.gateway) : []
  const b0 = cores.length ? coresBusyUs(cores) : NaN
  const c0 = cpuTimeUs(target.pid) ?? NaN
  const t0 = performance.now()
  const p = start(label, process.execPath, ['--import', 'tsx', path.join(root, 'bench/roles/open-loop.ts')], {
    ipc: true, cpus: ctx.layout.load, log: path.join(ctx.dir, `${label}.log`),
    env: { URL: url, BODY: BODIES.plain, KEY: key, RATE: String(RATE), SECONDS: String(ctx.seconds), WARMUP: String(WARMUP_S) },
  })
  try {
    const [result] = await Promise.race([
      once(p.child, 'message') as Promise<[Omit<OpenLoopResult, 'noisePct'>]>,
      once(p.child, 'exit').then(([code]) => { throw new Error(`${label} exited (${code}) before reporting; see ${p.log}`) }),
    ])
    const wallUs = (performance.now() - t0) * 1000
    const busy = (cores.length ? coresBusyUs(cores) : NaN) - b0 - ((cpuTimeUs(target.pid) ?? NaN) - c0)
    return { ...result, noisePct: Math.max(0, (busy / (wallUs * cores.length)) * 100) }
  } finally {
    await stop(p)
  }
}

export async function latency(ctx: BenchContext, bare: Started & { url: string }): Promise<LatencyResult> {
  const cfg = writeConfig(ctx.dir, 'latency-full', gatewayConfig('full', ctx.upstream, ctx.logLevel))
  const full = await startGateway({ label: 'gateway-latency', config: cfg, dataDir: path.join(ctx.dir, 'data-latency'), cpus: ctx.layout.gateway, dir: ctx.dir, cpuProf: ctx.cpuProf })
  try {
    const key = await virtualKey(full)
    ctx.progress(`latency: bare at ${RATE}/s`)
    const bareR = await openLoop(ctx, bare, bare.url, MASTER_KEY, 'open-loop-bare')
    ctx.progress(`latency: full chain at ${RATE}/s`)
    const fullR = await openLoop(ctx, full.proc, full.url, key, 'open-loop-full')
    const e = loggedErrors(full)
    return { bare: bareR, full: fullR, gatewayErrors: e.count ? [`gateway-latency: ${e.count} error lines, first: ${e.first}`] : [] }
  } finally {
    await stop(full.proc)
  }
}
