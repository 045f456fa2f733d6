/**
 * Proxy overhead benchmark: the same load against (a) a bare pass-through proxy (node:http + undici, no parsing)
 * and (b) the Switchyard gateway (built dist/), both in front of the same fake OpenAI upstream. Reports requests/s
 * and latency percentiles for each and the ratios gateway/bare. Each server runs in its own process; the load
 * generator (undici Pool) runs here. Loopback only; bounded runs.
 *
 * The gateway is measured with each chain named in --chains (default: all):
 *   core     request-id, auth (master key), router; retry   (the chain before keys and budgets)
 *   master   the default chain (store-sqlite, auth, keys, spend, budget, router; retry), called with the master key:
 *            every call writes a spend row
 *   virtual  the same chain called with a virtual key from /key/generate with a budget: key lookup (cached),
 *            budget reservation and settlement, spend row
 *
 *   npx tsc -p tsconfig.build.json && node --import tsx bench/proxy-overhead.ts [--seconds 5] [--connections 32]
 *     [--chains core,master,virtual] [--log-level info] [--cpu-prof DIR]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool, request } from 'undici'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the bench upstream.', refusal: null }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
})
const chunk = (delta: object, finish: string | null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })}\n\n`
const STREAM = chunk({ role: 'assistant', content: '' }, null) +
  Array.from({ length: 20 }, (_, i) => chunk({ content: `tok${i} ` }, null)).join('') + chunk({}, 'stop') +
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 12, completion_tokens: 20, total_tokens: 32 } })}\n\ndata: [DONE]\n\n`

function upstreamServer(): void {
  http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (body.includes('"stream":true')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.end(STREAM)
      } else {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(COMPLETION)
      }
    })
  }).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'))
}

function bareProxy(): void {
  const upstream = new Pool(process.env.UPSTREAM!, { connections: 128 })
  http.createServer(async (req, res) => {
    try {
      const r = await upstream.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: req })
      res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type']) })
      for await (const c of r.body) res.write(c)
      res.end()
    } catch {
      res.writeHead(502).end()
    }
  }).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'))
}

async function freePort(): Promise<number> {
  const s = http.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  s.close()
  return port
}

async function startChild(args: string[], env: Record<string, string>, readyLine?: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${args.join(' ')} did not start`)), 15_000)
    child.on('message', () => (clearTimeout(timer), resolve()))
    if (readyLine) {
      let buf = ''
      let ready = false
      child.stderr!.on('data', (d) => {
        if (ready) return // keep draining the pipe (access logs), without holding the text
        buf += d
        if (readyLine.test(buf)) (ready = true, buf = '', clearTimeout(timer), resolve())
      })
    }
    child.on('exit', (code) => reject(new Error(`child exited ${code}`)))
  })
  return child
}

interface Result { rps: number; p50: number; p99: number; errors: number; count: number; cpuUs?: number }

/** CPU time (user + system, every thread) a process has used, in µs, from /proc (Linux); null elsewhere. */
function cpuTimeUs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime
    return (ticks * 1_000_000) / 100 // USER_HZ is 100 on Linux
  } catch {
    return null
  }
}

/** Run the load and record the server's CPU per request (all its threads: a worker thread's SQLite writes count). */
async function measured(pid: number, url: string, body: string, seconds: number, connections: number, key: string): Promise<Result> {
  const before = cpuTimeUs(pid)
  const r = await load(url, body, seconds, connections, key)
  const after = cpuTimeUs(pid)
  if (before !== null && after !== null && r.count > 0) r.cpuUs = (after - before) / r.count
  return r
}

async function load(url: string, body: string, seconds: number, connections: number, key: string): Promise<Result> {
  const pool = new Pool(url, { connections, pipelining: 1 })
  const lat: number[] = []
  let errors = 0
  const end = Date.now() + seconds * 1000
  const worker = async () => {
    while (Date.now() < end) {
      const t0 = performance.now()
      try {
        const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body })
        await r.body.text()
        if (r.statusCode !== 200) errors++
      } catch {
        errors++
      }
      lat.push(performance.now() - t0)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: connections }, worker))
  const elapsed = (performance.now() - t0) / 1000
  await pool.close()
  lat.sort((a, b) => a - b)
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0
  return { rps: lat.length / elapsed, p50: pct(0.5), p99: pct(0.99), errors, count: lat.length }
}

async function main(): Promise<void> {
  const role = process.env.BENCH_ROLE
  if (role === 'upstream') return upstreamServer()
  if (role === 'bare') return bareProxy()
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' }, 'log-level': { type: 'string', default: 'info' },
      'cpu-prof': { type: 'string' }, chains: { type: 'string', default: 'core,master,virtual' },
    },
  })
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  const script = fileURLToPath(import.meta.url)
  const loader = ['--import', 'tsx']
  const [upPort, barePort] = [await freePort(), await freePort()]
  const children: ChildProcess[] = []
  try {
    children.push(await startChild([...loader, script], { BENCH_ROLE: 'upstream', PORT: String(upPort) }))
    const upstream = `http://127.0.0.1:${upPort}`
    const bareChild = await startChild([...loader, script], { BENCH_ROLE: 'bare', PORT: String(barePort), UPSTREAM: upstream })
    children.push(bareChild)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-'))
    const chains = String(values.chains).split(',').map((c) => c.trim()).filter(Boolean)
    const bodies = {
      json: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] }),
      stream: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Say hello.' }] }),
    }
    const rows: string[] = []
    const f = (r: Result) => `${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms  ` +
      `${r.cpuUs !== undefined ? `cpu ${r.cpuUs.toFixed(0).padStart(4)} µs/req  ` : ''}errors ${r.errors}`
    for (const chain of chains) {
      const cfg = path.join(dir, `config-${chain}.yaml`)
      // log_level info (the default) writes one access line per request to stderr, as in production; --log-level warn
      // measures without it.
      writeFileSync(cfg, `server: { log_level: ${values['log-level']} }
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${upstream}/v1, api_key: sk-upstream, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
general_settings: { master_key: sk-bench }
${chain === 'core' ? 'pipeline: [request-id, auth, router]\n' : ''}`)
      // --cpu-prof DIR writes the gateway's CPU profile there on exit (open it in Chrome DevTools).
      const prof = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['cpu-prof'], chain)] : []
      const gwPort = await freePort()
      const gateway = await startChild([...prof, path.join(root, 'dist/core/cli.js'), '--config', cfg, '--port', String(gwPort), '--host', '127.0.0.1'],
        { SWITCHYARD_DATA_DIR: path.join(dir, chain) }, /listening/)
      children.push(gateway)
      let key = 'sk-bench'
      if (chain === 'virtual') {
        const r = await request(`http://127.0.0.1:${gwPort}/key/generate`, { method: 'POST', headers: { authorization: 'Bearer sk-bench', 'content-type': 'application/json' }, body: JSON.stringify({ max_budget: 1_000_000, models: ['gpt-4o-mini'] }) })
        key = ((await r.body.json()) as { key: string }).key
      }
      // Warm both paths (JIT, keep-alive pools) before measuring.
      for (const port of [barePort, gwPort]) {
        await (await request(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' })).body.text()
      }
      for (const [name, body] of Object.entries(bodies)) {
        await load(`http://127.0.0.1:${barePort}`, body, 1, connections, key)
        await load(`http://127.0.0.1:${gwPort}`, body, 1, connections, key)
        const bare = await measured(bareChild.pid!, `http://127.0.0.1:${barePort}`, body, seconds, connections, key)
        const gw = await measured(gateway.pid!, `http://127.0.0.1:${gwPort}`, body, seconds, connections, key)
        rows.push(`${name.padEnd(6)} ${chain.padEnd(8)} bare     ${f(bare)}`)
        rows.push(`${name.padEnd(6)} ${chain.padEnd(8)} gateway  ${f(gw)}`)
        rows.push(`${name.padEnd(6)} ${chain.padEnd(8)} ratio    throughput ${(gw.rps / bare.rps).toFixed(2)}x  p50 ${(gw.p50 / bare.p50).toFixed(2)}x  p99 ${(gw.p99 / bare.p99).toFixed(2)}x` +
          (gw.cpuUs !== undefined && bare.cpuUs !== undefined ? `  cpu/req ${(gw.cpuUs / bare.cpuUs).toFixed(2)}x` : ''))
      }
      process.kill(gateway.pid!, 'SIGTERM')
      await once(gateway, 'exit')
    }
    console.log(`proxy overhead, ${connections} connections, ${seconds}s per run, node ${process.version}`)
    console.log(rows.join('\n'))
  } finally {
    for (const c of children) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGTERM')
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
