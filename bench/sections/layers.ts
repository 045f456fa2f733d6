/**
 * Section 6, layers: what each layer of the chain costs. The same plain-chat load (wrk, closed loop) against the
 * gateway with the chain built up one plugin at a time, from no plugin at all (Koa, the route, the provider call,
 * the response) to the full default chain. Each step's CPU per call less the previous step's is that plugin's cost
 * (plus the bookkeeping it brings, such as the spend row written by the SQLite worker thread). The bare proxy's CPU
 * per call, from the same run, is the floor.
 */
import path from 'node:path'
import { BODIES, MASTER_KEY } from '../lib/fixtures.js'
import { gatewayConfig, startGateway, virtualKey, writeConfig } from '../lib/gateway.js'
import { stop, type Started } from '../lib/procs.js'
import { measure, warm, type BenchContext, type Measured } from '../lib/context.js'

interface Layer {
  /** What this step adds. */
  adds: string
  pipeline: string[]
  upstream: string[]
  /** Called with a virtual key (from /key/generate) instead of the master key. */
  virtual: boolean
}

const LAYERS: Layer[] = [
  { adds: 'no plugin (Koa, route, provider call)', pipeline: [], upstream: [], virtual: false },
  { adds: 'request-id', pipeline: ['request-id'], upstream: [], virtual: false },
  { adds: 'auth (master key)', pipeline: ['request-id', 'auth'], upstream: [], virtual: false },
  { adds: 'router', pipeline: ['request-id', 'auth', 'router'], upstream: [], virtual: false },
  { adds: 'retry (= core chain)', pipeline: ['request-id', 'auth', 'router'], upstream: ['retry'], virtual: false },
  { adds: 'store-sqlite, keys (virtual key)', pipeline: ['request-id', 'store-sqlite', 'auth', 'keys', 'router'], upstream: ['retry'], virtual: true },
  { adds: 'spend (a row per call)', pipeline: ['request-id', 'store-sqlite', 'auth', 'keys', 'spend', 'router'], upstream: ['retry'], virtual: true },
  { adds: 'rate-limit', pipeline: ['request-id', 'store-sqlite', 'auth', 'keys', 'spend', 'rate-limit', 'router'], upstream: ['retry'], virtual: true },
  { adds: 'priority-queue', pipeline: ['request-id', 'store-sqlite', 'auth', 'keys', 'spend', 'rate-limit', 'priority-queue', 'router'], upstream: ['retry'], virtual: true },
  { adds: 'budget', pipeline: ['request-id', 'store-sqlite', 'auth', 'keys', 'spend', 'rate-limit', 'priority-queue', 'budget', 'router'], upstream: ['retry'], virtual: true },
  { adds: 'fallback, cooldown', pipeline: ['request-id', 'store-sqlite', 'auth', 'keys', 'spend', 'rate-limit', 'priority-queue', 'budget', 'router'], upstream: ['fallback', 'cooldown', 'retry'], virtual: true },
  { adds: 'logging (otel, live receiver)', pipeline: ['request-id', 'logging', 'store-sqlite', 'auth', 'keys', 'spend', 'rate-limit', 'priority-queue', 'budget', 'router'], upstream: ['fallback', 'cooldown', 'retry'], virtual: true },
  { adds: 'prometheus (= full chain)', pipeline: ['request-id', 'logging', 'prometheus', 'store-sqlite', 'auth', 'keys', 'spend', 'rate-limit', 'priority-queue', 'budget', 'router'], upstream: ['fallback', 'cooldown', 'retry'], virtual: true },
]

export interface LayersResult {
  bare: Measured
  rows: { adds: string; m: Measured }[]
}

/** Seconds per measured step: shorter than the other sections (eleven gateways), after the usual warm-up. */
export const layerSeconds = (seconds: number): number => Math.max(2, Math.round(seconds / 2))

export async function layers(ctx: BenchContext, bare: Started & { url: string }): Promise<LayersResult> {
  const seconds = layerSeconds(ctx.seconds)
  const spec = (url: string, key: string) => ({ urls: [url], body: BODIES.plain, key, connections: ctx.connections, seconds })
  ctx.progress('layers: bare proxy')
  await warm(ctx, spec(bare.url, MASTER_KEY))
  const bareM = await measure(ctx, [bare.pid], spec(bare.url, MASTER_KEY))
  const rows: LayersResult['rows'] = []
  for (let i = 0; i < LAYERS.length; i++) {
    const l = LAYERS[i]!
    // The full config (fallback group, prices, max_parallel_requests), with this step's chain named explicitly.
    const base = gatewayConfig('full', ctx.upstream, ctx.logLevel)
    const text = `${base}pipeline: [${l.pipeline.join(', ')}]\nupstream: [${l.upstream.join(', ')}]\n`
    const cfg = writeConfig(ctx.dir, `layer-${i}`, text)
    const gw = await startGateway({ label: `gateway-layer-${i}`, config: cfg, dataDir: path.join(ctx.dir, `data-layer-${i}`), cpus: ctx.layout.gateway, dir: ctx.dir, cpuProf: undefined })
    try {
      const key = l.virtual ? await virtualKey(gw) : MASTER_KEY
      ctx.progress(`layers: + ${l.adds}`)
      await warm(ctx, spec(gw.url, key))
      rows.push({ adds: l.adds, m: await measure(ctx, [gw.proc.pid], spec(gw.url, key)) })
    } finally {
      await stop(gw.proc)
    }
  }
  return { bare: bareM, rows }
}
