/**
 * Section 1, saturation: the same closed-loop load (wrk, `connections` at once) against the bare proxy, the gateway
 * with the `core` chain, the `quiet` one (full without logging and metrics) and the `full` chain, for plain and
 * streaming chat. The three servers run side by side
 * on the gateway core (an idle one costs nothing) so the runs being compared follow each other closely.
 */
import path from 'node:path'
import { BODIES, MASTER_KEY } from '../lib/fixtures.js'
import { chainEvidence, gatewayConfig, loggedErrors, spendRows, startGateway, virtualKey, writeConfig } from '../lib/gateway.js'
import { stop, type Started } from '../lib/procs.js'
import { measure, warm, type BenchContext, type Measured } from '../lib/context.js'

export type Chain = 'bare' | 'core' | 'quiet' | 'full'
export type Kind = 'plain' | 'stream'

export interface SaturationResult {
  rows: { kind: Kind; chain: Chain; m: Measured }[]
  evidence: { seen: string[]; missing: string[] }
  /**
   * Spend-log rows the full gateway wrote, and the calls the load counted (warm-ups and checks included). The rows
   * can exceed the count by up to the connections per run: calls in flight when a run ends are answered, not counted.
   */
  spend: { rows: number; calls: number }
  gatewayErrors: string[]
}

export async function saturation(ctx: BenchContext, bare: Started & { url: string }): Promise<SaturationResult> {
  const fullCfg = writeConfig(ctx.dir, 'saturation-full', gatewayConfig('full', ctx.upstream, ctx.logLevel))
  const coreCfg = writeConfig(ctx.dir, 'saturation-core', gatewayConfig('core', ctx.upstream, ctx.logLevel))
  const quietCfg = writeConfig(ctx.dir, 'saturation-quiet', gatewayConfig('quiet', ctx.upstream, ctx.logLevel))
  const fullData = path.join(ctx.dir, 'data-saturation-full')
  const gwOpts = { cpus: ctx.layout.gateway, dir: ctx.dir, cpuProf: ctx.cpuProf }
  const core = await startGateway({ ...gwOpts, label: 'gateway-core', config: coreCfg, dataDir: path.join(ctx.dir, 'data-saturation-core') })
  const full = await startGateway({ ...gwOpts, label: 'gateway-full', config: fullCfg, dataDir: fullData })
  const quiet = await startGateway({ ...gwOpts, label: 'gateway-quiet', config: quietCfg, dataDir: path.join(ctx.dir, 'data-saturation-quiet') })
  try {
    const key = await virtualKey(full)
    const quietKey = await virtualKey(quiet)
    const evidence = await chainEvidence(full, key, BODIES.plain)
    const targets: Record<Chain, { url: string; pid: number; key: string }> = {
      bare: { url: bare.url, pid: bare.pid, key: MASTER_KEY },
      core: { url: core.url, pid: core.proc.pid, key: MASTER_KEY },
      quiet: { url: quiet.url, pid: quiet.proc.pid, key: quietKey },
      full: { url: full.url, pid: full.proc.pid, key },
    }
    const rows: SaturationResult['rows'] = []
    let fullCalls = 1
    for (const kind of ['plain', 'stream'] as const) {
      for (const chain of ['bare', 'core', 'quiet', 'full'] as const) {
        const t = targets[chain]
        const spec = { urls: [t.url], body: BODIES[kind], key: t.key, connections: ctx.connections }
        ctx.progress(`saturation: ${kind} ${chain}`)
        const warmed = await warm(ctx, spec)
        const m = await measure(ctx, [t.pid], spec)
        rows.push({ kind, chain, m })
        if (chain === 'full') fullCalls += warmed + m.requests
      }
    }
    const gatewayErrors = [core, quiet, full].map((g) => ({ g, e: loggedErrors(g) })).filter(({ e }) => e.count > 0)
      .map(({ g, e }) => `${g.proc.label}: ${e.count} error lines, first: ${e.first}`)
    await stop(full.proc)
    return { rows, evidence, spend: { rows: spendRows(fullData), calls: fullCalls }, gatewayErrors }
  } finally {
    await Promise.all([stop(core.proc), stop(quiet.proc), stop(full.proc)])
  }
}
