/**
 * The benchmark of issue 16, one command:
 *
 *   npx tsc -p tsconfig.build.json && node --import tsx bench/run.ts [--only saturation,latency,streams,priority,replicas,layers]
 *     [--seconds 10] [--connections 32] [--log-level info] [--cpu-prof DIR] [--keep-dir]
 *
 * Starts a fast fake upstream, the bare pass-through proxy and Switchyard (built dist/, its CLI, a LiteLLM-style
 * config) and prints one report: saturation req/s, p50/p99, CPU per request and the ratio to the bare proxy for
 * plain and streaming chat (core and full chains); added p99 at a fixed 1,000 req/s; 1,000 concurrent slow streams
 * (errors, peak RSS); the priority-queue run with one and two gateways; two replicas sharing Redis. Then the issue's
 * targets, as MET/MISS lines (never asserted). Loopback only; every process it starts is stopped by PID at the end,
 * on an error and on SIGINT/SIGTERM. About 3.5 minutes with the defaults, plus the build.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { cpuLayout, pinSelf } from './lib/cpus.js'
import { MODEL } from './lib/fixtures.js'
import { gatewayConfig, resolvedChain, root, writeConfig } from './lib/gateway.js'
import { nodeLoader } from './lib/node-load.js'
import { freePort, killAllNow, readyMessage, start, stop, stopAll, type Started } from './lib/procs.js'
import { render, type Report } from './lib/report.js'
import { ensureWrk, wrkLoader, type Loader } from './lib/wrk.js'
import type { BenchContext } from './lib/context.js'
import { latency } from './sections/latency.js'
import { priority, prioritySeconds } from './sections/priority.js'
import { replicas } from './sections/replicas.js'
import { saturation } from './sections/saturation.js'
import { streams } from './sections/streams.js'
import { layers, layerSeconds } from './sections/layers.js'

const SECTIONS = ['saturation', 'latency', 'streams', 'priority', 'replicas', 'layers'] as const
type Section = (typeof SECTIONS)[number]

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: SECTIONS.join(',') },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
  },
})
const only = new Set(values.only!.split(',').map((s) => s.trim()).filter(Boolean))
for (const s of only) if (!SECTIONS.includes(s as Section)) throw new Error(`--only: unknown section '${s}' (known: ${SECTIONS.join(', ')})`)
const seconds = Number(values.seconds)
const connections = Number(values.connections)
if (!(seconds > 0) || !(connections > 0)) throw new Error('--seconds and --connections must be positive numbers')

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`)

// Stop everything on Ctrl-C / SIGTERM; SIGKILL whatever is left if the process exits any other way.
let interrupted = false
let workDir = ''
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return
    interrupted = true
    progress(`${sig}: stopping every process started`)
    void stopAll().finally(() => {
      if (workDir) rmSync(workDir, { recursive: true, force: true })
      process.exit(130)
    })
  })
}
process.on('exit', killAllNow)

/** Expected wall time with these settings, s (sections in sequence; warm-ups 2 s; gateway boots about 1 s). */
function expectedSeconds(): number {
  const s = seconds + 2
  const per: Record<Section, number> = {
    saturation: 6 * s + 3, latency: 2 * s + 2, streams: 10, priority: 2 * (2 * (prioritySeconds(seconds) + 4) + 2), replicas: 2 * seconds + 2 + 4,
    layers: 12 * (layerSeconds(seconds) + 2 + 1.5),
  }
  return [...only].reduce((t, k) => t + per[k as Section], 5)
}

async function main(): Promise<void> {
  const layout = cpuLayout()
  pinSelf(layout.load)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-'))
  workDir = dir
  const wrk = ensureWrk(progress)
  const loader: Loader = 'path' in wrk ? wrkLoader(wrk.path, dir) : nodeLoader
  const loaderLine = 'path' in wrk
    ? `load: wrk ${wrk.version}, ${connections} connections`
    : `load: ${nodeLoader.name}, ${connections} connections: ${wrk.reason}; a Node client on one core caps below the bare proxy, so ratios are flattered`

  const upPort = await freePort()
  const upstreamProc = start('upstream', process.execPath, ['--import', 'tsx', path.join(root, 'bench/roles/upstream.ts')], {
    ipc: true, cpus: layout.load, log: path.join(dir, 'upstream.log'), env: { PORT: String(upPort) },
  })
  await readyMessage(upstreamProc)
  const upstream = `http://127.0.0.1:${upPort}`
  const ctx: BenchContext = { dir, seconds, connections, layout, loader, upstream, logLevel: values['log-level']!, cpuProf: values['cpu-prof'], progress }

  const probeCfg = writeConfig(dir, 'chain-probe', gatewayConfig('full', upstream, ctx.logLevel))
  const chain = await resolvedChain(probeCfg, path.join(dir, 'data-probe'))
  const coreChain = await resolvedChain(writeConfig(dir, 'chain-probe-core', gatewayConfig('core', upstream, ctx.logLevel)), path.join(dir, 'data-probe'))
  const cpuModel = os.cpus()[0]?.model.trim() ?? '?'
  const report: Report = {
    header: [
      `Switchyard benchmark, ${new Date().toISOString()}`,
      `node ${process.version}, ${os.platform()} ${os.release()}, ${layout.allowed.length} cores (${cpuModel}), ${layout.describe}`,
      `load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}` +
        (os.loadavg()[0]! > 0.5 ? ': other processes are running, see the "other %" columns (figures are low by about that much)' : ''),
      `${loaderLine}; ${seconds} s per run after a 2 s warm-up; gateway log_level ${ctx.logLevel}` +
        `${ctx.logLevel === 'info' ? ' (one access line per call, as in production)' : ''}; model ${MODEL} on a fake upstream (cached replies)`,
      `core chain: ${coreChain.pipeline.join(' > ')} | attempts: ${coreChain.upstream.join(' > ')} (called with the master key)`,
      `full chain: ${chain.pipeline.join(' > ')} | attempts: ${chain.upstream.join(' > ')}`,
      `  virtual key with budget and rpm/tpm limits (never reached), simple-shuffle over 2 deployments, a fallback group, ` +
        `max_parallel_requests 4096 (queue gating, not saturated), num_retries 2, spend log to embedded SQLite`,
      `  bundled plugins not in the full chain: ${chain.absent.join(', ') || 'none'}${chain.absent.includes('state-redis') ? ' (section 5 adds state-redis)' : ''}`,
    ],
    failed: [],
  }
  progress(`sections: ${[...only].join(', ')}; expected about ${Math.ceil(expectedSeconds() / 60)} min; work dir ${dir}`)

  let bare: (Started & { url: string }) | null = null
  const needBare = async () => {
    if (bare) return bare
    const port = await freePort()
    const p = start('bare-proxy', process.execPath, ['--import', 'tsx', path.join(root, 'bench/roles/bare.ts')], {
      ipc: true, cpus: layout.gateway, log: path.join(dir, 'bare.log'), env: { PORT: String(port), UPSTREAM: upstream },
    })
    await readyMessage(p)
    bare = Object.assign(p, { url: `http://127.0.0.1:${port}` })
    return bare
  }
  const run = async <T>(name: Section, fn: () => Promise<T>): Promise<T | undefined> => {
    if (!only.has(name)) return undefined
    try {
      return await fn()
    } catch (err) {
      report.failed.push({ section: name, error: (err as Error).stack ?? String(err) })
      return undefined
    }
  }
  try {
    report.saturation = await run('saturation', async () => saturation(ctx, await needBare()))
    report.latency = await run('latency', async () => latency(ctx, await needBare()))
    report.layers = await run('layers', async () => layers(ctx, await needBare()))
    if (bare) await stop(bare)
    report.streams = await run('streams', () => streams(ctx))
    report.priority = await run('priority', async () => ({ seconds: prioritySeconds(seconds), runs: await priority(ctx) }))
    report.replicas = await run('replicas', () => replicas(ctx))
  } finally {
    await stopAll()
    // Logs and configs stay for a look when asked or when a section failed.
    if (!values['keep-dir'] && !report.failed.length) rmSync(dir, { recursive: true, force: true })
  }
  console.log(render(report, seconds))
  if (values['keep-dir'] || report.failed.length) console.log(`\nlogs, configs and data kept in ${dir}`)
  if (report.failed.length) process.exitCode = 1
}

main().catch(async (err) => {
  console.error(err)
  await stopAll()
  process.exit(1)
})
