/**
 * The sink queue (plugins/logging/queue.ts): batching by size and by interval, order, one send in flight, backoff,
 * the buffer bound with counted drops and a throttled warning, a refused batch, a retry limit, a hung send, stop()
 * flushing, and push() staying cheap and safe. Then the outage the issue describes, over real HTTP: a receiver on
 * 127.0.0.1 that is down (its port closed), then up but answering 500 for a while, then well, and every record
 * arrives once, in order.
 *
 * The in-memory sink below is a test double for the receiver side only (it can be told to fail, refuse or hang on
 * cue, which is what the queue's logic is about); the real-receiver test at the end covers the network side. Backoff
 * delays are real but small (milliseconds); the warning throttle runs on an injected clock.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { Agent, request } from 'undici'
import { createLogger } from '../../core/logger.js'
import { closedPort } from '../helpers/upstream.js'
import { SinkQueue, type SinkQueueOptions } from '../../plugins/logging/queue.js'
import { SinkError, type LogRecord, type Sink } from '../../plugins/logging/types.js'

/** A plain chat record, a streamed one with cached and reasoning tokens, a failed one: the three shapes a queue carries. */
function record(i: number): LogRecord {
  const kind = i % 3
  const failed = kind === 2
  return {
    id: `req-${i}`, call_type: 'chat', route: '/v1/chat/completions', status: failed ? 'failure' : 'success', http_status: failed ? 500 : 200,
    model_group: 'gpt', model: 'gpt-4o-mini', model_id: 'dep-1', provider: 'openai', api_base: 'https://api.openai.com/v1',
    stream: kind === 1, start_time: 1_700_000_000_000 + i, completion_start_time: failed ? null : 1_700_000_000_050 + i,
    end_time: 1_700_000_000_200 + i, latency_ms: 200, ttft_ms: failed ? null : 50, overhead_ms: 1.5, plugin_timings: { auth: 0.1, handler: 198 },
    queue_wait_ms: 0, priority: null,
    attempts: [{ deployment: 'dep-1', provider: 'openai', model: 'gpt-4o-mini', start_time: 1_700_000_000_001 + i, duration_ms: 190, status: failed ? 500 : 200, error_code: failed ? 'GW_ERR_UPSTREAM' : null }],
    retries: 0, fallbacks: 0,
    usage: kind === 1
      ? { prompt_tokens: 40, completion_tokens: 25, total_tokens: 65, cached_tokens: 16, cache_creation_tokens: 0, reasoning_tokens: 9 }
      : { prompt_tokens: failed ? 0 : 10, completion_tokens: failed ? 0 : 5, total_tokens: failed ? 0 : 15, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 },
    cost: failed ? 0 : 0.0001, cost_source: failed ? '' : 'table', model_parameters: { temperature: 0.2 },
    messages: [{ role: 'user', content: `hello ${i}` }], response: failed ? null : { role: 'assistant', content: 'hi' },
    tool_calls: [], mcp_tool_calls: [], finish_reason: failed ? null : 'stop',
    error: failed ? { type: 'InternalServerError', code: 'GW_ERR_UPSTREAM', message: 'boom', status: 500 } : null,
    key_hash: 'abc123', key_alias: 'k', team_id: null, team_alias: null, user_id: null, end_user: null, tags: [], metadata: {}, redacted: false,
  }
}

type Mode = 'ok' | 'fail' | 'refuse' | 'hang' | 'ignore-abort' | 'throw-sync'

/** The receiver side, in memory: accepts, fails (retryable), refuses (not retryable) or hangs, as told. */
class MemorySink implements Sink {
  readonly name = 'memory'
  mode: Mode = 'ok'
  delivered: LogRecord[] = []
  batches: number[] = []
  calls = 0
  callTimes: number[] = []
  inFlight = 0
  maxInFlight = 0
  aborted = 0
  closed = false
  constructor(readonly maxBatch = 100) {}

  send(batch: readonly LogRecord[], signal: AbortSignal): Promise<void> {
    this.calls++
    this.callTimes.push(performance.now())
    if (this.mode === 'throw-sync') throw new TypeError('sink bug')
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    const mode = this.mode
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.inFlight--
        if (err) reject(err)
        else resolve()
      }
      if (mode === 'hang') {
        signal.addEventListener('abort', () => {
          this.aborted++
          done(new SinkError('aborted', true))
        }, { once: true })
        return
      }
      if (mode === 'ignore-abort') return // never settles: the queue must give up on its own
      setImmediate(() => {
        if (mode === 'fail') return done(new SinkError('receiver answered 503', true, 503))
        if (mode === 'refuse') return done(new SinkError('receiver answered 400', false, 400))
        this.delivered.push(...batch)
        this.batches.push(batch.length)
        done()
      })
    })
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /** Polls until `ok` holds (the queue settles a send a few ticks after the sink did), or fails after `ms`. */
  async until(ok: () => boolean, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
      await new Promise((r) => setTimeout(r, 1))
    }
  }

}

function logs() {
  const lines: Array<Record<string, any>> = []
  const logger = createLogger({ level: 'debug', write: (l) => void lines.push(JSON.parse(l)) })
  return { lines, logger, msgs: (m: string) => lines.filter((l) => l.msg === m) }
}

/** A queue whose interval never fires on its own within a test (batches go by size or by flush). */
function queue(t: Test, sink: Sink, o: Partial<SinkQueueOptions> = {}) {
  const log = logs()
  const q = new SinkQueue(sink, { maxBuffer: 1_000, flushIntervalMs: 60_000, backoffMs: 5, maxBackoffMs: 40, logger: log.logger, ...o })
  t.teardown(() => q.stop(0))
  return { q, ...log }
}

const ids = (rs: readonly LogRecord[]) => rs.map((r) => r.id)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `req-${from + i}`)

t.test('full batches go at once; the rest waits for the interval or a flush', async (t) => {
  const sink = new MemorySink(3)
  const { q } = queue(t, sink, { batchSize: 10 })
  for (let i = 0; i < 7; i++) q.push(record(i))
  await sink.until(() => sink.delivered.length === 6, 'two full batches')
  t.same(sink.batches, [3, 3], 'batchSize is capped by the sink maxBatch')
  t.equal(q.stats().buffered, 1, 'the seventh waits')
  await q.flush()
  t.same(ids(sink.delivered), range(0, 7), 'all, in order')
  t.same(q.stats(), { sink: 'memory', buffered: 0, sent: 7, dropped: 0, failures: 0 })
})

t.test('a partial batch goes out after flushIntervalMs', async (t) => {
  const sink = new MemorySink(100)
  const { q } = queue(t, sink, { flushIntervalMs: 20 })
  q.push(record(0))
  q.push(record(1))
  t.equal(sink.calls, 0, 'push sends nothing by itself')
  await sink.until(() => sink.delivered.length === 2, 'the interval flush')
  t.same(sink.batches, [2], 'one batch for both')
})

t.test('one send in flight; order kept across many batches', async (t) => {
  const sink = new MemorySink(10)
  const { q } = queue(t, sink)
  for (let i = 0; i < 1_000; i++) q.push(record(i))
  await q.flush()
  t.equal(sink.maxInFlight, 1, 'never two sends at once')
  t.same(ids(sink.delivered), range(0, 1_000))
  t.equal(q.stats().sent, 1_000)
})

t.test('retryable failures back off exponentially, keep the batch at the head, and everything arrives on recovery', async (t) => {
  const sink = new MemorySink(5)
  sink.mode = 'fail'
  const { q, msgs } = queue(t, sink, { backoffMs: 20, maxBackoffMs: 80 })
  for (let i = 0; i < 12; i++) q.push(record(i))
  await sink.until(() => q.stats().failures >= 6, 'six failed sends', 10_000)
  const gaps = sink.callTimes.slice(1, 6).map((x, i) => x - sink.callTimes[i]!)
  // Equal jitter: each delay is between half and all of min(max, base * 2^n): 20, 40, 80, 80, 80 ms.
  const bases = [20, 40, 80, 80, 80]
  gaps.forEach((g, i) => t.ok(g >= bases[i]! / 2 - 2 && g <= bases[i]! + 150, `gap ${i + 1}: ${g.toFixed(1)} ms within [${bases[i]! / 2}, ${bases[i]}] (+slack)`))
  t.equal(sink.maxInFlight, 1)
  t.ok(q.stats().failures >= 6, 'each failed send counted')
  t.equal(q.stats().buffered, 12, 'nothing lost while down')
  t.equal(msgs('logging: sink send failed; retrying').length, 1, 'the outage is logged once, not per retry')
  for (let i = 12; i < 20; i++) q.push(record(i))
  sink.mode = 'ok'
  await q.flush()
  t.same(ids(sink.delivered), range(0, 20), 'every record, once, in order')
  t.equal(q.stats().dropped, 0)
  t.equal(msgs('logging: sink recovered').length, 1)
})

t.test('a full buffer drops the oldest, counts them and warns at most once per 10 s', async (t) => {
  let now = 1_000_000
  const sink = new MemorySink(4)
  sink.mode = 'fail'
  // A long backoff: the pushes below land while the failed batch waits for its retry (not while a send has it).
  const { q, msgs } = queue(t, sink, { maxBuffer: 10, backoffMs: 2_000, maxBackoffMs: 2_000, now: () => now })
  for (let i = 0; i < 4; i++) q.push(record(i))
  await sink.until(() => q.stats().failures === 1, 'the first batch failing')
  for (let i = 4; i < 25; i++) q.push(record(i))
  t.equal(q.stats().buffered, 10, 'bounded by maxBuffer')
  t.equal(q.stats().dropped, 15, 'every drop counted')
  t.equal(msgs('logging: buffer full, oldest records dropped').length, 1, 'one warning for the burst')
  t.equal(msgs('logging: buffer full, oldest records dropped')[0]!.dropped, 1)
  now += 10_000
  q.push(record(25))
  const warns = msgs('logging: buffer full, oldest records dropped')
  t.equal(warns.length, 2, 'another warning once 10 s passed')
  t.equal(warns[1]!.dropped, 15, 'reporting the drops since the last one')
  t.equal(warns[1]!.droppedTotal, 16)
  sink.mode = 'ok'
  await q.flush()
  t.same(ids(sink.delivered), range(16, 26), 'the newest maxBuffer records arrive, in order (the waiting batch lost its oldest first)')
  t.same(q.stats(), { sink: 'memory', buffered: 0, sent: 10, dropped: 16, failures: q.stats().failures })
})

t.test('a refused batch is dropped at once, counted and logged; the next goes through', async (t) => {
  const sink = new MemorySink(3)
  sink.mode = 'refuse'
  const { q, msgs } = queue(t, sink)
  for (let i = 0; i < 3; i++) q.push(record(i))
  await sink.until(() => sink.calls === 1, 'the refused send')
  await new Promise((r) => setImmediate(r))
  t.equal(q.stats().dropped, 3)
  t.equal(q.stats().failures, 1)
  t.equal(sink.calls, 1, 'not retried')
  const err = msgs('logging: sink refused a batch; dropped')
  t.equal(err.length, 1)
  t.match(err[0], { level: 'error', sink: 'memory', records: 3, status: 400 })
  sink.mode = 'ok'
  for (let i = 3; i < 6; i++) q.push(record(i))
  await q.flush()
  t.same(ids(sink.delivered), range(3, 6))
})

t.test('maxRetries gives a batch up after that many retries', async (t) => {
  const sink = new MemorySink(2)
  sink.mode = 'fail'
  const { q, msgs } = queue(t, sink, { maxRetries: 2 })
  q.push(record(0))
  q.push(record(1))
  await sink.until(() => q.stats().dropped === 2, 'the batch dropped')
  t.equal(sink.calls, 3, 'first try and two retries')
  t.equal(msgs('logging: batch dropped after retries').length, 1)
})

t.test('a send past sendTimeoutMs is aborted and retried, even if the sink ignores the signal', async (t) => {
  const sink = new MemorySink(1)
  sink.mode = 'hang'
  const { q } = queue(t, sink, { sendTimeoutMs: 30 })
  q.push(record(0))
  await sink.until(() => sink.aborted >= 1, 'the signal aborted')
  sink.mode = 'ignore-abort'
  await sink.until(() => sink.calls >= 3, 'a retry after a send that never settles')
  t.ok(q.stats().failures >= 2, 'timeouts count as failures')
  sink.mode = 'ok'
  await q.flush()
  t.same(ids(sink.delivered), ['req-0'])
})

t.test('a sink that throws synchronously does not break the queue or the caller', async (t) => {
  const sink = new MemorySink(1)
  sink.mode = 'throw-sync'
  const { q } = queue(t, sink)
  t.doesNotThrow(() => q.push(record(0)))
  await new Promise((r) => setTimeout(r, 20))
  t.ok(q.stats().failures >= 1)
  sink.mode = 'ok'
  await q.flush()
  t.same(ids(sink.delivered), ['req-0'])
})

t.test('stop() flushes, closes the sink, and counts later pushes as dropped', async (t) => {
  const sink = new MemorySink(50)
  const { q } = queue(t, sink)
  for (let i = 0; i < 120; i++) q.push(record(i))
  await q.stop(5_000)
  t.same(ids(sink.delivered), range(0, 120), 'everything buffered was sent')
  t.ok(sink.closed, 'sink closed')
  q.push(record(999))
  t.same(q.stats(), { sink: 'memory', buffered: 0, sent: 120, dropped: 1, failures: 0 })
  t.equal(q.stop(5_000), q.stop(1), 'stop is idempotent')
})

t.test('stop() with the receiver down gives up at its deadline and counts what is left', async (t) => {
  const sink = new MemorySink(5)
  sink.mode = 'fail'
  const { q, msgs } = queue(t, sink, { backoffMs: 1_000, maxBackoffMs: 1_000 })
  for (let i = 0; i < 12; i++) q.push(record(i))
  await sink.until(() => sink.calls >= 1, 'a failed send')
  const start = performance.now()
  await q.stop(150)
  const took = performance.now() - start
  t.ok(took >= 140 && took < 1_000, `stop waited about its deadline (${took.toFixed(0)} ms), not the 1 s backoff`)
  t.ok(sink.calls >= 2, 'flush tried again at once instead of sleeping out the backoff')
  t.equal(q.stats().dropped, 12)
  t.equal(q.stats().buffered, 0)
  t.match(msgs('logging: records not delivered before stop')[0], { level: 'error', dropped: 12 })
  t.ok(sink.closed)
})

t.test('push() is cheap and bounded under a flood with the receiver down', async (t) => {
  const sink = new MemorySink(100)
  sink.mode = 'fail'
  const { q } = queue(t, sink, { maxBuffer: 1_000 })
  const r = record(0)
  const n = 200_000
  const start = performance.now()
  for (let i = 0; i < n; i++) q.push(r)
  const perPushNs = ((performance.now() - start) / n) * 1e6
  t.comment(`push: ${perPushNs.toFixed(0)} ns each`)
  t.ok(perPushNs < 2_000, `under 2 µs per push (${perPushNs.toFixed(0)} ns)`)
  t.equal(q.stats().buffered, 1_000)
  t.equal(q.stats().dropped, n - 1_000)
})

// ---- a real receiver: down, then 500s, then up -----------------------------------------------------------------

/** A minimal HTTP sink: POSTs the batch's ids as JSON; 2xx ok, 5xx and network errors retryable, other 4xx not. */
class HttpSink implements Sink {
  readonly name = 'http'
  readonly maxBatch = 20
  readonly dispatcher = new Agent({ connect: { timeout: 1_000 } })
  constructor(readonly url: string) {}
  async send(batch: readonly LogRecord[], signal: AbortSignal): Promise<void> {
    let status: number
    try {
      const res = await request(this.url, {
        method: 'POST', dispatcher: this.dispatcher, signal, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ids: batch.map((r) => r.id) }),
      })
      status = res.statusCode
      await res.body.dump()
    } catch (err) {
      throw new SinkError(`network: ${(err as Error).message}`, true)
    }
    if (status >= 200 && status < 300) return
    throw new SinkError(`HTTP ${status}`, status === 408 || status === 429 || status >= 500, status)
  }
  close(): Promise<void> {
    return this.dispatcher.close()
  }
}

t.test('real receiver: down, then answering 500, then up; every record arrives once, in order', async (t) => {
  const port = await closedPort()
  const sink = new HttpSink(`http://127.0.0.1:${port}/ingest`)
  const { q, msgs } = queue(t, sink, { flushIntervalMs: 10, backoffMs: 10, maxBackoffMs: 50 })
  // Down: nothing listens on the port.
  for (let i = 0; i < 50; i++) q.push(record(i))
  const until = async (ok: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  await until(() => q.stats().failures >= 3, 'connection refused a few times')
  t.equal(q.stats().sent, 0)

  // Up, but failing: the first 5 requests get a 500.
  const received: string[] = []
  let requests = 0
  let fiveHundreds = 0
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      requests++
      if (requests <= 5) {
        fiveHundreds++
        res.writeHead(500).end('{"error":"busy"}')
        return
      }
      received.push(...(JSON.parse(body).ids as string[]))
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  for (let i = 50; i < 100; i++) q.push(record(i))
  await until(() => q.stats().sent === 100, 'everything delivered')
  t.equal(fiveHundreds, 5, 'the 500s were retried')
  t.same(received, range(0, 100), 'once each, in order')
  t.same(q.stats(), { sink: 'http', buffered: 0, sent: 100, dropped: 0, failures: q.stats().failures })
  t.ok(q.stats().failures >= 8, 'refusals and 500s counted')
  t.equal(msgs('logging: sink recovered').length, 1)
  await q.stop(1_000)
})
