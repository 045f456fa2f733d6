/**
 * Section 3, 1,000 concurrent slow SSE streams through the full chain: the upstream sends 20 token chunks 100-250 ms
 * apart (about 3.5 s a stream); this process opens all 1,000 at once (one undici Pool, a socket each) and checks
 * every one: a 200 and a body that ends with `data: [DONE]`. Meanwhile the gateway's VmRSS is sampled every 100 ms;
 * the peak reported is VmHWM (the kernel's own high-water mark, which a sample can miss).
 */
import path from 'node:path'
import { Pool } from 'undici'
import { BODIES } from '../lib/fixtures.js'
import { gatewayConfig, loggedErrors, startGateway, virtualKey, writeConfig } from '../lib/gateway.js'
import { memoryOf, openFileLimit } from '../lib/proc-stats.js'
import { stop } from '../lib/procs.js'
import type { BenchContext } from '../lib/context.js'

export const STREAMS = 1000
/** RSS sampling period: 100 ms. */
const SAMPLE_MS = 100
/** Streams opened first, and discarded, to warm the stream path: 20. */
const WARM_STREAMS = 20
/** A stream that has not finished in 30 s counts as an error (a healthy one takes under 6 s). */
const STREAM_TIMEOUT_MS = 30_000
const DONE = 'data: [DONE]'

export interface StreamsResult {
  streams: number
  complete: number
  non200: number
  incomplete: number
  failed: number
  /** First failure's description, if any. */
  firstError: string
  wallS: number
  /** VmRSS right after boot, and after the warm-up streams (just before the 1,000). */
  rssIdleBytes: number
  rssBeforeBytes: number
  /** Largest VmRSS sample and the final VmHWM. */
  rssSampledPeakBytes: number
  rssPeakBytes: number
  gatewayErrors: string[]
  /** Why the open-file limit may be the cause of failures, when it is low. */
  fdWarning: string
}

type Outcome = 'complete' | 'non200' | 'incomplete' | 'failed'

async function oneStream(pool: Pool, key: string, failures: string[]): Promise<Outcome> {
  try {
    const r = await pool.request({
      method: 'POST', path: '/v1/chat/completions', body: BODIES.slow,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    })
    // Keep only the tail: whether the stream ended with [DONE] is all that is checked.
    let tail = ''
    for await (const c of r.body) tail = (tail + c.toString('utf8')).slice(-64)
    if (r.statusCode !== 200) {
      failures.push(`status ${r.statusCode}: ${tail}`)
      return 'non200'
    }
    if (!tail.includes(DONE)) {
      failures.push(`stream ended without [DONE]: ...${tail}`)
      return 'incomplete'
    }
    return 'complete'
  } catch (err) {
    failures.push(`${(err as Error).name}: ${(err as Error).message}`)
    return 'failed'
  }
}

export async function streams(ctx: BenchContext): Promise<StreamsResult> {
  const cfg = writeConfig(ctx.dir, 'streams-full', gatewayConfig('full', ctx.upstream, ctx.logLevel))
  const gw = await startGateway({ label: 'gateway-streams', config: cfg, dataDir: path.join(ctx.dir, 'data-streams'), cpus: ctx.layout.gateway, dir: ctx.dir, cpuProf: ctx.cpuProf })
  const pool = new Pool(gw.url, { connections: STREAMS, pipelining: 1, headersTimeout: STREAM_TIMEOUT_MS, bodyTimeout: STREAM_TIMEOUT_MS })
  let sampler: NodeJS.Timeout | undefined
  const idle = memoryOf(gw.proc.pid)
  try {
    const key = await virtualKey(gw)
    ctx.progress(`streams: warming with ${WARM_STREAMS}`)
    await Promise.all(Array.from({ length: WARM_STREAMS }, () => oneStream(pool, key, [])))
    const before = memoryOf(gw.proc.pid)!
    let sampledPeak = before.rss
    sampler = setInterval(() => {
      const m = memoryOf(gw.proc.pid)
      if (m && m.rss > sampledPeak) sampledPeak = m.rss
    }, SAMPLE_MS)
    ctx.progress(`streams: ${STREAMS} at once`)
    const failures: string[] = []
    const t0 = performance.now()
    const outcomes = await Promise.all(Array.from({ length: STREAMS }, () => oneStream(pool, key, failures)))
    const wallS = (performance.now() - t0) / 1000
    clearInterval(sampler)
    const after = memoryOf(gw.proc.pid)
    const count = (o: Outcome) => outcomes.filter((x) => x === o).length
    const limit = openFileLimit()
    const e = loggedErrors(gw)
    return {
      streams: STREAMS, complete: count('complete'), non200: count('non200'), incomplete: count('incomplete'), failed: count('failed'),
      firstError: failures[0] ?? '', wallS, rssIdleBytes: idle?.rss ?? NaN, rssBeforeBytes: before.rss, rssSampledPeakBytes: sampledPeak, rssPeakBytes: after?.hwm ?? NaN,
      gatewayErrors: e.count ? [`gateway-streams: ${e.count} error lines, first: ${e.first}`] : [],
      // Each stream holds two sockets in the gateway (client, upstream) and one here.
      fdWarning: limit !== null && limit < STREAMS * 2 + 256 ? `open-file limit ${limit} is below what ${STREAMS} streams need (ulimit -n 4096)` : '',
    }
  } finally {
    if (sampler) clearInterval(sampler)
    await pool.close().catch(() => {})
    await stop(gw.proc)
  }
}
