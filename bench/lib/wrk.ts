/**
 * wrk as the load generator: C, one thread on the load core, far cheaper per request than any Node client, so the
 * bare proxy (not the client) is what saturates. POST bodies come from a generated Lua script; its done() hook
 * prints the counts and percentiles as one JSON line, so nothing depends on wrk's human-readable layout.
 */
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { start, stop } from './procs.js'
import type { LoadResult } from './stats.js'

export interface LoadSpec {
  /** One or more gateways (http://127.0.0.1:port); with several, wrk's threads are spread across them. */
  urls: string[]
  body: string
  key: string
  seconds: number
  connections: number
  /** taskset list for the generator. */
  cpus: string
}

export interface Loader {
  name: string
  run(spec: LoadSpec): Promise<LoadResult>
}

/** wrk's path, installing the Debian package when absent and running as root (as scripts/test.sh does). */
export function ensureWrk(log: (line: string) => void): { path: string; version: string } | { reason: string } {
  const found = () => spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim()
  let where = found()
  if (!where && process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0) {
    log('installing wrk (apt-get)')
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' })
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'wrk'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    where = found()
  }
  if (!where) return { reason: 'wrk not found (Debian: apt-get install wrk)' }
  // `wrk -v` prints "wrk 4.1.0 [epoll] ..." (and exits 1).
  const v = spawnSync(where, ['-v'], { encoding: 'utf8' })
  const version = /wrk (\S+)/.exec(`${v.stdout}${v.stderr}`)?.[1] ?? '?'
  return { path: where, version }
}

/** Lua for one spec: the POST, and a done() that prints one JSON line; with several urls, one per thread in turn. */
function script(spec: LoadSpec): string {
  const ports = spec.urls.map((u) => new URL(u).port)
  const spread = ports.length > 1
    ? `local ports = { ${ports.map((p) => `"${p}"`).join(', ')} }
local next_port = 0
function setup(thread)
  next_port = next_port + 1
  thread.addr = wrk.lookup("127.0.0.1", ports[(next_port - 1) % #ports + 1])[1]
end
`
    : ''
  return `${spread}wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.body = ${JSON.stringify(spec.body)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${spec.key}"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`
}

let runs = 0

export function wrkLoader(wrkPath: string, dir: string): Loader {
  return {
    name: 'wrk',
    async run(spec) {
      const lua = path.join(dir, `wrk-${++runs}.lua`)
      writeFileSync(lua, script(spec))
      const threads = spec.urls.length
      const args = ['-t', String(threads), '-c', String(Math.max(spec.connections, threads)), '-d', `${spec.seconds}s`, '--timeout', '10s', '-s', lua, spec.urls[0]!]
      const p = start('wrk', wrkPath, args, { cpus: spec.cpus })
      let out = ''
      p.child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
      p.child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d))
      try {
        const [code] = await once(p.child, 'exit')
        const line = /WRK_RESULT (\{.*\})/.exec(out)
        if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}):\n${out}`)
        const r = JSON.parse(line[1]!) as { requests: number; duration_us: number; p50_us: number; p99_us: number; errors: number }
        const seconds = r.duration_us / 1e6
        return { requests: r.requests, seconds, rps: r.requests / seconds, p50Ms: r.p50_us / 1000, p99Ms: r.p99_us / 1000, errors: r.errors }
      } finally {
        await stop(p)
      }
    },
  }
}
