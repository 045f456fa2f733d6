/**
 * Section 4b, two replicas sharing Redis: a redis-server and two full-chain gateways with state-redis (rate-limit
 * counters, budgets and the priority queue's gate in Redis) and one SQLite file (the virtual key made on the first
 * is found by the second). The same closed-loop plain-chat load runs against one replica, then split across both
 * (wrk: one thread per replica, the connections divided between them); the figure is total req/s against one.
 *
 * On fewer than four cores both replicas share the gateway core, so this measures what sharing state through
 * Redis costs at the same CPU, not scaling; with four or more each replica gets its own core.
 */
import path from 'node:path'
import { existsSync, mkdirSync } from 'node:fs'
import { BODIES } from '../lib/fixtures.js'
import { gatewayConfig, loggedErrors, startGateway, virtualKey, writeConfig } from '../lib/gateway.js'
import { freePort, readyWhen, start, stop, tcpAnswers, type Started } from '../lib/procs.js'
import { measure, warm, type BenchContext, type Measured } from '../lib/context.js'
import { cpuTimeUs } from '../lib/proc-stats.js'
import { Redis } from 'ioredis'

const REDIS_SERVER = '/usr/bin/redis-server'

/** How long the idle Redis traffic is sampled: 2 s. */
const IDLE_SAMPLE_MS = 2000

function sum(stats: Map<string, number>): number {
  let t = 0
  for (const v of stats.values()) t += v
  return t
}

/** calls per command from INFO commandstats ("cmdstat_get:calls=12,usec=..."). */
function commandStats(info: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m) out.set(m[1]!, Number(m[2]))
  }
  return out
}

export interface ReplicasResult {
  one: Measured
  two: Measured
  /** Redis CPU per call in the two-replica run, µs. */
  redisCpuUsPerReq: number
  /** Redis commands per call in the two-replica run, and the five most called (name: calls per call). */
  redisCommandsPerReq: number
  redisTop: string
  /** Redis commands a second with both replicas idle (timers: leases, resets), counted in the per-call figure. */
  redisIdlePerS: number
  ownCores: boolean
  gatewayErrors: string[]
}

async function startRedis(ctx: BenchContext): Promise<{ proc: Started; url: string }> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} not found (Debian: apt-get install redis-server)`)
  const port = await freePort()
  const dir = path.join(ctx.dir, 'redis')
  mkdirSync(dir, { recursive: true })
  const proc = start('redis', REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
    cpus: ctx.layout.load, log: path.join(ctx.dir, 'redis.log'),
  })
  await readyWhen(proc, () => tcpAnswers(port, 'PING\r\n', '+PONG'))
  return { proc, url: `redis://127.0.0.1:${port}` }
}

export async function replicas(ctx: BenchContext): Promise<ReplicasResult> {
  const redis = await startRedis(ctx)
  const started: Started[] = [redis.proc]
  try {
    const cfg = writeConfig(ctx.dir, 'replicas-full', gatewayConfig('full', ctx.upstream, ctx.logLevel, redis.url))
    const dataDir = path.join(ctx.dir, 'data-replicas')
    const base = { config: cfg, dataDir, dir: ctx.dir, cpuProf: ctx.cpuProf }
    const a = await startGateway({ ...base, label: 'replica-a', cpus: ctx.layout.gateway })
    started.push(a.proc)
    const b = await startGateway({ ...base, label: 'replica-b', cpus: ctx.layout.gateway2 })
    started.push(b.proc)
    const key = await virtualKey(a)
    const spec = (urls: string[]) => ({ urls, body: BODIES.plain, key, connections: ctx.connections })
    ctx.progress('replicas: one replica')
    await warm(ctx, spec([a.url, b.url]))
    const one = await measure(ctx, [a.proc.pid], spec([a.url]))
    ctx.progress('replicas: two replicas')
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await client.connect()
    const idle0 = sum(commandStats(await client.info('commandstats')))
    await new Promise((r) => setTimeout(r, IDLE_SAMPLE_MS))
    // The INFO call itself is one command.
    const redisIdlePerS = ((sum(commandStats(await client.info('commandstats'))) - idle0 - 1) * 1000) / IDLE_SAMPLE_MS
    const s0 = commandStats(await client.info('commandstats'))
    const r0 = cpuTimeUs(redis.proc.pid) ?? NaN
    const two = await measure(ctx, [a.proc.pid, b.proc.pid], spec([a.url, b.url]), `${ctx.layout.gateway},${ctx.layout.gateway2}`)
    const r1 = cpuTimeUs(redis.proc.pid) ?? NaN
    const s1 = commandStats(await client.info('commandstats'))
    client.disconnect()
    const deltas = [...s1].map(([cmd, calls]) => [cmd, calls - (s0.get(cmd) ?? 0)] as const).filter(([, d]) => d > 0).sort((x, y) => y[1] - x[1])
    const perReq = (d: number) => d / Math.max(1, two.requests)
    const gatewayErrors = [a, b].map((g) => ({ g, e: loggedErrors(g) })).filter(({ e }) => e.count > 0)
      .map(({ g, e }) => `${g.proc.label}: ${e.count} error lines, first: ${e.first}`)
    return {
      one, two, redisCpuUsPerReq: (r1 - r0) / two.requests, ownCores: ctx.layout.gateway2 !== ctx.layout.gateway, gatewayErrors,
      redisCommandsPerReq: perReq(deltas.reduce((t, [, d]) => t + d, 0)), redisIdlePerS,
      redisTop: deltas.slice(0, 5).map(([cmd, d]) => `${cmd} ${perReq(d).toFixed(1)}`).join(', '),
    }
  } finally {
    // Gateways first (they flush to Redis and SQLite on stop), then Redis.
    await Promise.all(started.slice(1).map((p) => stop(p)))
    await stop(redis.proc)
  }
}
