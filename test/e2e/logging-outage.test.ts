/**
 * A dead or failing log receiver never gets in the way of a call, and loses nothing (issue 19 acceptance), tested on
 * the built CLI in a child process, as it runs in production.
 *
 * The gateway logs every call to `otel` and `helicone` (LiteLLM config, credentials in `environment_variables:`),
 * both pointed at one receiver on 127.0.0.1 that this test switches between: up, down (port closed, open
 * connections cut), hanging (accepts the request and never answers until the next switch), answering 500, and up
 * again. Under load (200 calls per phase, 8 in flight: moderate, so the latencies measure the gateway rather than a saturated CPU) the gateway's latency with the receiver out of service is
 * compared with its latency with the receiver up; after recovery every record of the outage must arrive, counted by
 * request id: exactly the calls made, no duplicates. Finally: calls while the receiver is down, the receiver back,
 * SIGTERM at once: the gateway flushes what it buffered (the queues are sleeping out a retry backoff then, so the
 * stop's flush is what delivers) and exits 0.
 */
import t from 'tap'
import http from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { CLI, freePort, spawnProc, waitListening } from '../helpers/cli.js'
import { startUpstream } from '../helpers/upstream.js'
import { decodeExport } from '../plugins/logging-otlp-fixtures.js'

const MASTER = 'sk-master-outage-4711'
const UPSTREAM_KEY = 'sk-upstream-outage-0815'
/** Calls per measured phase, and how many are in flight at once. */
const CALLS = 200
const CONCURRENCY = 8

// ---- the switchable receiver ----------------------------------------------------------------------------------------

type Mode = 'up' | 'down' | 'hang' | '500'

/** One port for both sinks (OTLP at /v1/traces, Helicone at /custom/v1/log); its mode is switched by the test. */
class SwitchableReceiver {
  /** Records delivered (answered 2xx), per sink: request id -> times received (up to date after delivered()). */
  readonly otel = new Map<string, number>()
  readonly helicone = new Map<string, number>()
  /** Requests answered per status, and requests held while hanging. */
  readonly answered = new Map<number, number>()
  held = 0
  mode: Mode = 'down'
  private readonly server: http.Server
  private readonly pending: http.ServerResponse[] = []
  private readonly bodies: Array<{ url: string; body: Buffer }> = []

  constructor(readonly port: number) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => this.handle(req.url ?? '', Buffer.concat(chunks), res))
    })
  }

  private handle(url: string, body: Buffer, res: http.ServerResponse): void {
    if (this.mode === 'hang') {
      this.held++
      this.pending.push(res)
      return
    }
    if (this.mode === '500') return this.answer(res, 500)
    if (url !== '/v1/traces' && url !== '/custom/v1/log') return this.answer(res, 404)
    // Decoded later (delivered()), not here: this process also runs the load, whose latencies are being measured.
    this.bodies.push({ url, body })
    this.answer(res, 200)
  }

  /** Decode what arrived since the last look (protobufjs throws on a malformed OTLP body, JSON.parse on Helicone's). */
  delivered(): this {
    for (const { url, body } of this.bodies.splice(0)) {
      if (url === '/v1/traces') {
        for (const s of decodeExport(body).spans) {
          if (s.parentSpanId === '') bump(this.otel, String(s.attrs['switchyard.request_id']))
        }
      } else bump(this.helicone, JSON.parse(body.toString('utf8')).providerRequest.meta['Helicone-Property-Request-Id'])
    }
    return this
  }

  private answer(res: http.ServerResponse, status: number): void {
    this.answered.set(status, (this.answered.get(status) ?? 0) + 1)
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(status === 200 ? '{}' : `{"error":"status ${status}"}`)
  }

  async set(mode: Mode): Promise<void> {
    // Held requests get a retryable 503 when the hang ends, so the sink's in-flight send is not stuck for its timeout.
    for (const res of this.pending.splice(0)) this.answer(res, 503)
    const wasListening = this.server.listening
    this.mode = mode
    if (mode === 'down' && wasListening) {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve())
        // Keep-alive sockets would otherwise keep delivering to a "closed" receiver.
        this.server.closeAllConnections()
      })
    } else if (mode !== 'down' && !wasListening) {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject)
        this.server.listen(this.port, '127.0.0.1', () => {
          this.server.off('error', reject)
          resolve()
        })
      })
    }
  }

  close(): Promise<void> {
    return this.set('down')
  }
}

function bump(m: Map<string, number>, id: string): void {
  m.set(id, (m.get(id) ?? 0) + 1)
}

// ---- load ------------------------------------------------------------------------------------------------------------

const client = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 })
t.teardown(() => client.close())

interface Load {
  ids: string[]
  latencies: number[]
}

/** `n` chat calls, `CONCURRENCY` at a time; each must succeed. Returns their request ids and latencies (ms). */
async function load(base: string, n: number): Promise<Load> {
  const ids: string[] = []
  const latencies: number[] = []
  const body = JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'outage test' }] })
  let next = 0
  let failures = 0
  async function worker(): Promise<void> {
    while (next < n) {
      next++
      const t0 = performance.now()
      const res = await request(`${base}/v1/chat/completions`, {
        method: 'POST', dispatcher: client, body,
        headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
      })
      await res.body.dump()
      latencies.push(performance.now() - t0)
      if (res.statusCode !== 200) failures++
      ids.push(String(res.headers['x-request-id']))
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  if (failures) throw new Error(`${failures} of ${n} calls failed`)
  return { ids, latencies }
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Every id delivered exactly once to this sink, and nothing else. */
function exactly(m: Map<string, number>, ids: readonly string[]): { missing: number; duplicated: number; unexpected: number } {
  const want = new Set(ids)
  let missing = 0
  let duplicated = 0
  let unexpected = 0
  for (const id of want) if (!m.has(id)) missing++
  for (const [id, n] of m) {
    if (!want.has(id)) unexpected++
    else if (n > 1) duplicated++
  }
  return { missing, duplicated, unexpected }
}

function metric(text: string, name: string, sink: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{sink="${sink}"} `))
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
}

// ---- the scenario ----------------------------------------------------------------------------------------------------

t.test('receiver down, hanging, 500, then up: calls unaffected, nothing lost; SIGTERM flushes', async (t) => {
  const up = await startUpstream(t)
  const rx = new SwitchableReceiver(await freePort())
  t.teardown(() => rx.close())
  const dir = mkdtempSync(join(tmpdir(), 'sy-outage-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'config.yaml')
  writeFileSync(config, `
general_settings:
  master_key: ${MASTER}
litellm_settings:
  callbacks: ["otel", "helicone", "prometheus"]
environment_variables:
  OTEL_EXPORTER_OTLP_ENDPOINT: http://127.0.0.1:${rx.port}
  HELICONE_API_KEY: sk-helicone-outage
  HELICONE_API_BASE: http://127.0.0.1:${rx.port}
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: ${UPSTREAM_KEY}
`)
  const port = await freePort()
  const proc = spawnProc(t, process.execPath, [CLI, '--config', config, '--port', String(port), '--host', '127.0.0.1'], { SWITCHYARD_DATA_DIR: dir })
  const base = await waitListening(proc)

  // Receiver up: warm up (JIT, connection pools), then the baseline.
  await rx.set('up')
  const warm = await load(base, 150)
  const baseline = await load(base, CALLS)
  await until('the baseline records', () => exactly(rx.delivered().otel, [...warm.ids, ...baseline.ids]).missing === 0 &&
    exactly(rx.helicone, [...warm.ids, ...baseline.ids]).missing === 0, 10_000)

  // Out of service three ways. Records pile up in the sinks' queues meanwhile.
  await rx.set('down')
  const down = await load(base, CALLS)
  await rx.set('hang')
  const hang = await load(base, CALLS)
  // Let the queues try the hanging receiver (flush interval 1 s), so the 500 phase starts with a send held.
  await new Promise((r) => setTimeout(r, 1_100))
  await rx.set('500')
  const failing = await load(base, CALLS)
  await new Promise((r) => setTimeout(r, 1_100))
  t.ok(rx.held > 0, `the sinks tried the hanging receiver (${rx.held} held)`)
  t.ok((rx.answered.get(500) ?? 0) > 0, `the sinks tried the failing receiver (${rx.answered.get(500)} answered 500)`)

  // Recovery: every record of the outage arrives, once.
  await rx.set('up')
  const outage = [...down.ids, ...hang.ids, ...failing.ids]
  const all = [...warm.ids, ...baseline.ids, ...outage]
  t.equal(new Set(all).size, all.length, 'distinct request ids')
  const recovering = Date.now()
  await until('the outage records', () => exactly(rx.delivered().otel, all).missing === 0 && exactly(rx.helicone, all).missing === 0, 25_000)
    .catch((err: Error) => t.fail(err.message))
  t.comment(`outage records delivered ${Date.now() - recovering} ms after the receiver came back (retry backoff)`)
  t.same(exactly(rx.delivered().otel, all), { missing: 0, duplicated: 0, unexpected: 0 }, `otel: all ${all.length} records, each once`)
  t.same(exactly(rx.helicone, all), { missing: 0, duplicated: 0, unexpected: 0 }, `helicone: all ${all.length} records, each once`)

  // A second baseline with the receiver up again: the machine's own noise (other processes share the CPU) shows as
  // the spread between the two, and the outage phases are compared with the slower of them.
  const again = await load(base, CALLS)
  await until('the second baseline', () => exactly(rx.delivered().otel, again.ids).missing === 0 && exactly(rx.helicone, again.ids).missing === 0, 10_000)
  const show = (name: string, x: number[]) =>
    t.comment(`latency ms p50/p95/max: ${name} ${pct(x, 50).toFixed(2)}/${pct(x, 95).toFixed(2)}/${pct(x, 100).toFixed(2)}`)
  show('up', baseline.latencies)
  show('up again', again.latencies)
  const p50 = Math.max(pct(baseline.latencies, 50), pct(again.latencies, 50))
  const p95 = Math.max(pct(baseline.latencies, 95), pct(again.latencies, 95))
  for (const [name, l] of [['down', down], ['hanging', hang], ['500', failing]] as const) {
    const x = l.latencies
    show(name, x)
    // Noise bounds sized for CI, where two other test files share the 2 cores: a neighbour's burst moves a phase's
    // p50 by a few ms and its p95 by tens (one local run failed 1.5x / +3 ms). A sink in the call's way costs far
    // more: a send timeout (10 s) or, hanging, forever; the max check below holds that.
    t.ok(pct(x, 50) <= Math.max(p50 * 2, p50 + 5), `receiver ${name}: p50 ${pct(x, 50).toFixed(2)} ms within noise of ${p50.toFixed(2)} ms`)
    t.ok(pct(x, 95) <= Math.max(p95 * 3, p95 + 20), `receiver ${name}: p95 ${pct(x, 95).toFixed(2)} ms within noise of ${p95.toFixed(2)} ms`)
    // A call that waited for a sink would take at least a send timeout (10 s) or, hanging, forever.
    t.ok(pct(x, 100) < 1_000, `receiver ${name}: no call blocked (max ${pct(x, 100).toFixed(0)} ms)`)
  }

  const metrics = await (await fetch(`${base}/metrics`)).text()
  for (const sink of ['otel', 'helicone']) {
    t.ok(metric(metrics, 'switchyard_logging_failures_total', sink) > 0, `${sink}: failed sends counted`)
    t.equal(metric(metrics, 'switchyard_logging_dropped_total', sink), 0, `${sink}: nothing dropped`)
    t.equal(metric(metrics, 'switchyard_logging_sent_total', sink), all.length + again.ids.length, `${sink}: sent = calls`)
  }

  // SIGTERM with records buffered behind a retry backoff: the stop's flush delivers them, then exit 0.
  await rx.set('down')
  const last = await load(base, 100)
  // Long enough for a failed send or two, so the queues sleep in a backoff when the receiver comes back.
  await new Promise((r) => setTimeout(r, 1_500))
  await rx.set('up')
  const before = exactly(rx.delivered().otel, last.ids).missing + exactly(rx.helicone, last.ids).missing
  const stopping = Date.now()
  process.kill(proc.child.pid!, 'SIGTERM')
  const exit = await Promise.race([proc.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no exit 15 s after SIGTERM')), 15_000))])
  t.same(exit, { code: 0, signal: null }, `graceful exit 0 (${Date.now() - stopping} ms after SIGTERM)`)
  // Control: none of these had been delivered when the signal went, so what arrived below is the stop's flush.
  t.equal(before, 2 * last.ids.length, 'every record of the last calls was still buffered at SIGTERM')
  const everything = [...all, ...again.ids, ...last.ids]
  t.same(exactly(rx.delivered().otel, everything), { missing: 0, duplicated: 0, unexpected: 0 }, 'otel: everything buffered was flushed before exit')
  t.same(exactly(rx.helicone, everything), { missing: 0, duplicated: 0, unexpected: 0 }, 'helicone: everything buffered was flushed before exit')
  t.notMatch(proc.stderr(), /records not delivered before stop/, 'no record counted as lost at stop')
  for (const secret of [MASTER, UPSTREAM_KEY]) t.notMatch(proc.stderr() + proc.stdout(), secret, 'no key in the gateway\'s logs')
})
