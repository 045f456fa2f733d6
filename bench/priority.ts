/**
 * Priority benchmark: a model group that takes `--slots` calls at once (its deployment's max_parallel_requests), each
 * held `--service-ms` by a fake upstream, offered `--load` times its capacity as an open loop (arrivals at a fixed
 * rate, whether or not earlier calls finished), 10 % at priority 0 and 90 % at priority 100, through the gateway's CLI
 * on an unchanged LiteLLM config. Reports, per priority: calls served, refused (429 after the queue wait bound) and
 * failed, and the latency above the service time (queue wait plus gateway overhead) at p50/p99/max.
 *
 * The routing issue's bar: every priority-0 call is served and its p99 queue wait stays under 50 ms above the
 * service time, while priority 100 still progresses (some served). A priority-0 call that arrives when every slot
 * is busy must wait for one call in flight to finish, up to one service time, whatever the scheduler: the bar is
 * that wait plus at most 50 ms of queueing and gateway overhead. Measured from the client: latency minus the
 * service time = queue wait + gateway overhead. The script prints PASS/FAIL against the bar and exits 1 on FAIL.
 * --replicas 2 starts a redis-server (/usr/bin/redis-server, 127.0.0.1, temp dir) and two gateway processes sharing
 * it; calls alternate between them. --gateway-cpus LIST pins the gateways there with taskset (bench/run.ts passes
 * its gateway core; this process, the fake upstream and Redis stay where they were started).
 *
 *   npx tsc -p tsconfig.build.json && node --import tsx bench/priority.ts [--seconds 8] [--slots 4]
 *     [--service-ms 40] [--load 3] [--route chat|embeddings|both] [--replicas 1|2] [--gateway-cpus LIST] [--cpu-prof DIR]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** The bar from the routing issue: priority-0 p99 queue wait at most this much above the service time, ms. */
const ABOVE_SERVICE_MS = 50
/** How long a call may wait in the queue (its body `timeout`, seconds): bounds the open connections of the backlog. */
const QUEUE_WAIT_S = 3

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
})
const EMBEDDING = JSON.stringify({
  object: 'list', model: 'text-embedding-3-small', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
  usage: { prompt_tokens: 2, total_tokens: 2 },
})

/** The fake upstream: every call held `serviceMs`, then answered; counts the most it held at once. */
function upstream(serviceMs: number): Promise<{ url: string; maxConcurrent: () => number; close: () => void }> {
  let current = 0
  let max = 0
  const server = http.createServer((req, res) => {
    current++
    max = Math.max(max, current)
    req.resume()
    req.on('end', () => setTimeout(() => {
      current--
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(req.url?.includes('embeddings') ? EMBEDDING : COMPLETION)
    }, serviceMs))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port
    resolve({ url: `http://127.0.0.1:${port}/v1`, maxConcurrent: () => max, close: () => server.close() })
  }))
}

async function freePort(): Promise<number> {
  const s = http.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  s.close()
  return port
}

/** Start a process and wait until its output matches `ready`; fails after 20 s. */
async function startProc(cmd: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start`)), 20_000)
    let buf = ''
    let done = false
    const onData = (d: Buffer) => {
      if (done) return   // keep draining the pipes
      buf += d
      if (ready.test(buf)) {
        done = true
        buf = ''
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => { if (!done) reject(new Error(`${cmd} exited ${code}:\n${buf}`)) })
  })
  return child
}

interface Sample { priority: number; status: number; ms: number }

interface Stats { served: number; refused: number; failed: number; p50: number; p99: number; max: number }

function statsOf(samples: Sample[], priority: number, serviceMs: number): Stats {
  const mine = samples.filter((s) => s.priority === priority)
  const over = mine.filter((s) => s.status === 200).map((s) => s.ms - serviceMs).sort((a, b) => a - b)
  const pct = (p: number) => over[Math.min(over.length - 1, Math.floor(over.length * p))] ?? NaN
  return {
    served: over.length,
    refused: mine.filter((s) => s.status === 429).length,
    failed: mine.filter((s) => s.status !== 200 && s.status !== 429).length,
    p50: pct(0.5),
    p99: pct(0.99),
    max: over[over.length - 1] ?? NaN,
  }
}

/** Open-loop load: `rate` calls a second for `seconds`, every tenth at priority 0; resolves when all have answered. */
async function drive(urls: string[], route: 'chat' | 'embeddings', rate: number, seconds: number): Promise<Sample[]> {
  const pools = urls.map((u) => new Pool(u, { connections: 4096, pipelining: 1 }))
  const samples: Sample[] = []
  const pending: Promise<void>[] = []
  const total = Math.round(rate * seconds)
  const started = performance.now()
  let sent = 0
  const send = (i: number) => {
    const priority = i % 10 === 0 ? 0 : 100
    const body = route === 'chat'
      ? { model: 'capped', messages: [{ role: 'user', content: `call ${i}` }], priority, timeout: QUEUE_WAIT_S }
      : { model: 'capped-emb', input: `call ${i}`, priority, timeout: QUEUE_WAIT_S }
    const t0 = performance.now()
    pending.push(pools[i % pools.length]!.request({
      method: 'POST', path: route === 'chat' ? '/v1/chat/completions' : '/v1/embeddings',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' }, body: JSON.stringify(body),
    }).then(async (r) => {
      await r.body.text()
      samples.push({ priority, status: r.statusCode, ms: performance.now() - t0 })
    }, () => { samples.push({ priority, status: 0, ms: performance.now() - t0 }) }))
  }
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate))
      while (sent < due) send(sent++)
      if (sent >= total) {
        clearInterval(tick)
        resolve()
      }
    }, 1)
  })
  await Promise.all(pending)
  await Promise.all(pools.map((p) => p.close()))
  return samples
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' }, slots: { type: 'string', default: '4' }, 'service-ms': { type: 'string', default: '40' },
      load: { type: 'string', default: '3' }, route: { type: 'string', default: 'both' }, replicas: { type: 'string', default: '1' },
      'cpu-prof': { type: 'string' }, 'gateway-cpus': { type: 'string', default: '' },
    },
  })
  const seconds = Number(values.seconds)
  const slots = Number(values.slots)
  const serviceMs = Number(values['service-ms'])
  const loadFactor = Number(values.load)
  const replicas = Number(values.replicas)
  const routes = values.route === 'both' ? ['chat', 'embeddings'] as const : [values.route as 'chat' | 'embeddings']
  const capacityRps = (slots * 1000) / serviceMs
  const rate = capacityRps * loadFactor
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-prio-'))
  const children: ChildProcess[] = []
  const up = await upstream(serviceMs)
  let ok = true
  // Stopped by a signal (bench/run.ts stops this process by PID): stop the children first, by their PIDs.
  const onSignal = () => {
    for (const c of children) if (c.pid && c.exitCode === null) c.kill('SIGKILL')
    process.exit(130)
  }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  try {
    let redisLine = ''
    if (replicas > 1) {
      const port = await freePort()
      children.push(await startProc('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--save', '', '--appendonly', 'no'], {}, /Ready to accept connections/))
      redisLine = `router_settings: { redis_url: "redis://127.0.0.1:${port}" }\n`
    }
    const cfg = path.join(dir, 'config.yaml')
    writeFileSync(cfg, `server: { log_level: warn }
general_settings: { master_key: sk-bench }
${redisLine}model_list:
  - model_name: capped
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up, max_parallel_requests: ${slots} }
  - model_name: capped-emb
    litellm_params: { model: openai/text-embedding-3-small, api_base: ${up.url}, api_key: sk-up, max_parallel_requests: ${slots} }
`)
    const urls: string[] = []
    for (let i = 0; i < replicas; i++) {
      const port = await freePort()
      // --cpu-prof DIR writes each gateway's CPU profile there on exit (open it in Chrome DevTools).
      const prof = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['cpu-prof'])] : []
      const gwArgs = [...prof, path.join(root, 'dist/core/cli.js'), '--config', cfg, '--port', String(port), '--host', '127.0.0.1']
      const cpus = values['gateway-cpus']
      // taskset execs node, so the child's PID is the gateway's.
      children.push(await startProc(cpus ? 'taskset' : process.execPath, cpus ? ['-c', cpus, process.execPath, ...gwArgs] : gwArgs,
        { SWITCHYARD_DATA_DIR: path.join(dir, `gw${i}`) }, /listening/))
      urls.push(`http://127.0.0.1:${port}`)
    }
    console.log(`priority bench: ${slots} slots x ${serviceMs} ms = ${capacityRps.toFixed(0)} calls/s capacity, offered ${rate.toFixed(0)}/s ` +
      `(${loadFactor}x) for ${seconds} s, 10 % priority 0; ${replicas} gateway process(es)${replicas > 1 ? ' on one Redis' : ''}; node ${process.version}`)
    for (const route of routes) {
      await drive(urls, route, capacityRps / 2, 1)   // warm-up below capacity (JIT, connections)
      const samples = await drive(urls, route, rate, seconds)
      const hi = statsOf(samples, 0, serviceMs)
      const lo = statsOf(samples, 100, serviceMs)
      const line = (name: string, s: Stats) => `${route.padEnd(10)} ${name}  served ${String(s.served).padStart(5)}  refused ${String(s.refused).padStart(5)}  ` +
        `failed ${String(s.failed).padStart(3)}  queue wait + overhead: p50 ${s.p50.toFixed(1).padStart(7)} ms  p99 ${s.p99.toFixed(1).padStart(7)} ms  max ${s.max.toFixed(1).padStart(7)} ms`
      console.log(line('priority 0  ', hi))
      console.log(line('priority 100', lo))
      const bar = serviceMs + ABOVE_SERVICE_MS
      const pass = hi.refused === 0 && hi.failed === 0 && hi.p99 < bar && lo.served > 0 && lo.failed === 0
      // Each part of the bar as it came out, so a FAIL says which part failed.
      const served = hi.refused === 0 && hi.failed === 0 ? 'every priority-0 call served' : `${hi.refused + hi.failed} priority-0 calls not served`
      const waited = `its p99 wait ${hi.p99.toFixed(1)} ms ${hi.p99 < bar ? '<' : '>='} ${bar} ms (service time ${serviceMs} + ${ABOVE_SERVICE_MS})`
      const progressed = lo.served > 0 ? `priority 100 progressed (${lo.served} served)` : 'priority 100 starved'
      console.log(`${route.padEnd(10)} ${pass ? 'PASS' : 'FAIL'}: ${served}, ${waited}; ${progressed}`)
      ok &&= pass
    }
    console.log(`upstream held at most ${up.maxConcurrent()} calls at once (capacity ${slots})`)
    ok &&= up.maxConcurrent() <= slots
  } finally {
    for (const c of children) if (c.pid && c.exitCode === null) c.kill('SIGTERM')
    await Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : null)))
    up.close()
    rmSync(dir, { recursive: true, force: true })
  }
  if (!ok) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
