/**
 * The fallback load generator when wrk is missing: a closed loop of undici requests in this process (on the load
 * core). A Node client on one core tops out below what the bare proxy can take, so its ratios flatter the gateway;
 * the report says so whenever this loader ran.
 */
import { Pool } from 'undici'
import { percentile, type LoadResult } from './stats.js'
import type { Loader } from './wrk.js'

export const nodeLoader: Loader = {
  name: 'node (undici, closed loop)',
  async run(spec) {
    const pools = spec.urls.map((u) => new Pool(u, { connections: Math.ceil(spec.connections / spec.urls.length), pipelining: 1 }))
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${spec.key}` }
    const lat: number[] = []
    let errors = 0
    const end = performance.now() + spec.seconds * 1000
    const worker = async (i: number) => {
      const pool = pools[i % pools.length]!
      while (performance.now() < end) {
        const t0 = performance.now()
        try {
          const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body: spec.body })
          await r.body.text()
          if (r.statusCode !== 200) errors++
        } catch {
          errors++
        }
        lat.push(performance.now() - t0)
      }
    }
    const t0 = performance.now()
    await Promise.all(Array.from({ length: spec.connections }, (_, i) => worker(i)))
    const seconds = (performance.now() - t0) / 1000
    await Promise.all(pools.map((p) => p.close()))
    lat.sort((a, b) => a - b)
    return { requests: lat.length, seconds, rps: lat.length / seconds, p50Ms: percentile(lat, 0.5), p99Ms: percentile(lat, 0.99), errors } satisfies LoadResult
  },
}
