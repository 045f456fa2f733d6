/**
 * Proxy overhead, chain by chain: the same load against the bare pass-through proxy (roles/bare.ts) and the
 * gateway (built dist/), both in front of the fake upstream (roles/upstream.ts), for each chain in --chains. A
 * quicker, narrower tool than bench/run.ts (which is the issue-16 report): it adds the `master` chain and uses the
 * same loader, pinning and CPU accounting (lib/).
 *
 *   core     request-id, auth (master key), router; retry   (the chain before keys and budgets)
 *   master   the default chain (store-sqlite, auth, keys, spend, rate-limit, priority-queue, budget, router; fallback,
 *            cooldown, retry) called with the master key: every call writes a spend row
 *   virtual  the same chain called with a budgeted virtual key: key lookup (cached), limits, budget reservation and
 *            settlement, spend row
 *
 *   npx tsc -p tsconfig.build.json && node --import tsx bench/proxy-overhead.ts [--seconds 5] [--connections 32]
 *     [--chains core,master,virtual] [--log-level info] [--cpu-prof DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { cpuLayout, pinSelf } from './lib/cpus.js'
import { BODIES, MASTER_KEY } from './lib/fixtures.js'
import { gatewayConfig, root, startGateway, virtualKey, writeConfig } from './lib/gateway.js'
import { nodeLoader } from './lib/node-load.js'
import { freePort, killAllNow, readyMessage, start, stop, stopAll } from './lib/procs.js'
import { ensureWrk, wrkLoader } from './lib/wrk.js'
import { measure, warm, type BenchContext, type Measured } from './lib/context.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' }, 'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'string' }, chains: { type: 'string', default: 'core,master,virtual' },
  },
})
process.on('exit', killAllNow)
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stopAll().finally(() => process.exit(130)))

const f = (m: Measured) => `${m.rps.toFixed(0).padStart(7)} req/s  p50 ${m.p50Ms.toFixed(2).padStart(6)} ms  p99 ${m.p99Ms.toFixed(2).padStart(6)} ms  ` +
  `cpu ${m.cpuUsPerReq.toFixed(0).padStart(4)} µs/req  other ${Number.isFinite(m.noisePct) ? m.noisePct.toFixed(0) : '-'} %  errors ${m.errors}`

async function main(): Promise<void> {
  const layout = cpuLayout()
  pinSelf(layout.load)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-overhead-'))
  const progress = (line: string) => process.stderr.write(`bench: ${line}\n`)
  const wrk = ensureWrk(progress)
  const upPort = await freePort()
  const up = start('upstream', process.execPath, ['--import', 'tsx', path.join(root, 'bench/roles/upstream.ts')], {
    ipc: true, cpus: layout.load, log: path.join(dir, 'upstream.log'), env: { PORT: String(upPort) },
  })
  await readyMessage(up)
  const upstream = `http://127.0.0.1:${upPort}`
  const barePort = await freePort()
  const bare = start('bare-proxy', process.execPath, ['--import', 'tsx', path.join(root, 'bench/roles/bare.ts')], {
    ipc: true, cpus: layout.gateway, log: path.join(dir, 'bare.log'), env: { PORT: String(barePort), UPSTREAM: upstream },
  })
  await readyMessage(bare)
  const bareUrl = `http://127.0.0.1:${barePort}`
  const ctx: BenchContext = {
    dir, seconds: Number(values.seconds), connections: Number(values.connections), layout, upstream, progress,
    loader: 'path' in wrk ? wrkLoader(wrk.path, dir) : nodeLoader, logLevel: values['log-level']!, cpuProf: values['cpu-prof'],
  }
  const rows: string[] = []
  try {
    for (const chain of values.chains!.split(',').map((c) => c.trim()).filter(Boolean)) {
      if (!['core', 'master', 'virtual'].includes(chain)) throw new Error(`--chains: unknown chain '${chain}'`)
      const cfg = writeConfig(dir, `config-${chain}`, gatewayConfig(chain === 'core' ? 'core' : 'full', upstream, ctx.logLevel))
      const gw = await startGateway({ label: `gateway-${chain}`, config: cfg, dataDir: path.join(dir, chain), cpus: layout.gateway, dir, cpuProf: ctx.cpuProf })
      const key = chain === 'virtual' ? await virtualKey(gw) : MASTER_KEY
      for (const kind of ['plain', 'stream'] as const) {
        const spec = (url: string, k: string) => ({ urls: [url], body: BODIES[kind], key: k, connections: ctx.connections })
        progress(`${chain} ${kind}`)
        await warm(ctx, spec(bareUrl, MASTER_KEY))
        await warm(ctx, spec(gw.url, key))
        const b = await measure(ctx, [bare.pid], spec(bareUrl, MASTER_KEY))
        const g = await measure(ctx, [gw.proc.pid], spec(gw.url, key))
        rows.push(`${kind.padEnd(6)} ${chain.padEnd(8)} bare     ${f(b)}`, `${kind.padEnd(6)} ${chain.padEnd(8)} gateway  ${f(g)}`,
          `${kind.padEnd(6)} ${chain.padEnd(8)} ratio    throughput ${(g.rps / b.rps).toFixed(2)}x  p50 ${(g.p50Ms / b.p50Ms).toFixed(2)}x  ` +
          `p99 ${(g.p99Ms / b.p99Ms).toFixed(2)}x  cpu/req ${(g.cpuUsPerReq / b.cpuUsPerReq).toFixed(2)}x`)
      }
      await stop(gw.proc)
    }
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`proxy overhead, ${ctx.loader.name}, ${ctx.connections} connections, ${ctx.seconds} s per run, node ${process.version}; ${layout.describe}`)
  console.log(rows.join('\n'))
}

main().catch(async (err) => {
  console.error(err)
  await stopAll()
  process.exit(1)
})
