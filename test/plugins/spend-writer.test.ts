/**
 * The spend-log writer: batching, the interval flush, an outage and its recovery (every row once, in order),
 * overflow to the spool and its replay, a spool left by a dead process, close() with the store up and down, and a
 * push() that stays O(1) on the request path.
 */
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setImmediate as tick } from 'node:timers/promises'
import { createLogger } from '../../core/logger.js'
import { StoreUnavailableError, type SpendLogQuery, type SpendLogRow, type Store } from '../../core/store.js'
import { createSpendWriter, type SpendWriter, type SpendWriterOptions } from '../../plugins/spend/writer.js'

/**
 * Test double, said plainly: the SQLite store (plugins/store-sqlite) is being written in parallel, so these tests run
 * against this in-memory Store. It implements only writeSpend/spendLogs, keeps the contract's request_id
 * idempotency, and can be told to fail (`down`: what a database outage looks like to the writer) or to hang
 * (`hang`: a connection that never answers), which a real database cannot be made to do on cue. It also records
 * every row offered in an accepted call, so a row the writer sends twice shows up even though the store skips it.
 */
class MemoryStore implements Pick<Store, 'writeSpend' | 'spendLogs'> {
  rows: SpendLogRow[] = []
  private seen = new Set<string>()
  /** Batch sizes of accepted calls. */
  calls: number[] = []
  failed = 0
  offered = new Map<string, number>()
  down = false
  hang = false
  /** Runs at each call: tests advance their fake clock here (each attempt costs time, like a connect timeout). */
  onCall: (() => void) | null = null
  private hung: Array<() => void> = []
  private waiters: Array<() => void> = []

  async writeSpend(rows: readonly SpendLogRow[]): Promise<void> {
    this.onCall?.()
    if (this.hang) await new Promise<void>((resolve) => this.hung.push(resolve))
    else if (this.down) {
      this.failed++
      this.notify()
      throw new StoreUnavailableError('connect ECONNREFUSED 127.0.0.1:5432')
    }
    this.calls.push(rows.length)
    for (const r of rows) {
      this.offered.set(r.request_id, (this.offered.get(r.request_id) ?? 0) + 1)
      if (this.seen.has(r.request_id)) continue // idempotent by request_id, as the Store contract says
      this.seen.add(r.request_id)
      this.rows.push(r)
    }
    this.notify()
  }

  async spendLogs(q: SpendLogQuery): Promise<SpendLogRow[]> {
    return this.rows.filter((r) => !q.request_id || r.request_id === q.request_id).reverse()
  }

  /** Let hung calls finish (a commit that lands after the caller gave up). */
  release(): void {
    this.hang = false
    for (const r of this.hung.splice(0)) r()
  }

  /** Resolves once `pred` holds after a call; fails the test after 5 s instead of hanging it. */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error('store condition not reached in 5 s')), 5000)
      const check = () => {
        if (!pred()) return this.waiters.push(check)
        clearTimeout(guard)
        resolve()
      }
      this.waiters.push(check)
    })
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  ids(): number[] {
    return this.rows.map((r) => Number(r.request_id.slice(4)))
  }

  duplicates(): string[] {
    return [...this.offered].filter(([, n]) => n > 1).map(([id]) => id)
  }
}

function row(i: number): SpendLogRow {
  return {
    request_id: `req-${i}`, call_type: 'chat', api_key: 'ab'.repeat(32), key_alias: null, team_id: 'team-a', user: null,
    end_user: null, model: 'gpt-4o-mini', model_group: 'gpt-4o-mini', model_id: 'd1', custom_llm_provider: 'openai',
    api_base: null, prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, cached_tokens: 0, reasoning_tokens: 0,
    spend: 0.0001, cost_source: 'priced', startTime: '2025-01-01T00:00:00.000Z', endTime: '2025-01-01T00:00:01.000Z',
    status: 'success', request_tags: [], metadata: {}, error: null,
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

interface Harness {
  dir: string
  spoolPath: string
  logs: Array<Record<string, any>>
  make(store: MemoryStore, opts?: Partial<SpendWriterOptions>): SpendWriter
  /** Lines in every spool file of the directory. */
  spoolLines(): number
  files(): string[]
}

function harness(t: Test): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'spend-writer-'))
  const spoolPath = join(dir, `spend-spool.${process.pid}.jsonl`)
  const logs: Array<Record<string, any>> = []
  const logger = createLogger({ level: 'debug', write: (l) => void logs.push(JSON.parse(l)) })
  const writers: SpendWriter[] = []
  t.teardown(async () => {
    for (const w of writers) await w.close(0)
    rmSync(dir, { recursive: true, force: true })
  })
  const files = () => readdirSync(dir).filter((f) => f.endsWith('.jsonl'))
  return {
    dir, spoolPath, logs, files,
    make(store, opts = {}) {
      const w = createSpendWriter({ store, logger, spoolPath, ...opts })
      writers.push(w)
      return w
    },
    spoolLines: () => files().reduce((n, f) => n + readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0),
  }
}

/**
 * Run `body` in a separate Node process (ESM, top-level await) with `createSpendWriter`, a silent `logger`, `row(i)`,
 * a `downStore` whose database is down, and `spoolPath` (this process's default name, in `dir`) in scope.
 */
function child(dir: string, body: string) {
  const file = join(dir, `child-${Math.random().toString(36).slice(2)}.mjs`)
  writeFileSync(file, `
    import { createSpendWriter } from ${JSON.stringify(new URL('../../plugins/spend/writer.ts', import.meta.url).href)}
    const logger = { level: 'silent', debug() {}, info() {}, warn() {}, error() {}, child() { return logger } }
    const downStore = { async writeSpend() { throw new Error('connect ECONNREFUSED') } }
    const spoolPath = ${JSON.stringify(dir)} + '/spend-spool.' + process.pid + '.jsonl'
    const row = (i) => (${row.toString()})(i)
    ${body}
  `)
  return spawn(process.execPath, ['--import', 'tsx', file], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] })
}

t.test('batches: N rows make ceil(N / batchSize) writeSpend calls, in push order', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  const w = h.make(store, { batchSize: 100, flushIntervalMs: 60_000 })
  for (const i of range(0, 1050)) w.push(row(i))
  t.same(store.calls, [], 'nothing is written inside push()')
  t.equal(w.stats().buffered, 1050)
  await w.flush()
  t.same(store.calls, [...Array(10).fill(100), 50], '11 calls: ten full batches and the rest')
  t.same(store.ids(), range(0, 1050), 'in push order')
  t.same(store.duplicates(), [])
  t.match(w.stats(), { buffered: 0, spooled: 0, written: 1050, failedFlushes: 0, lastError: null, dropped: 0 })
  t.same(h.logs.filter((l) => l.level !== 'debug'), [], 'a healthy store logs nothing')
})

t.test('a full batch is written at once; a partial one after flushIntervalMs', async (t) => {
  const h = harness(t)
  const full = new MemoryStore()
  const w1 = h.make(full, { batchSize: 50, flushIntervalMs: 60_000 })
  for (const i of range(0, 50)) w1.push(row(i))
  // The interval is a minute: only the batch-size trigger can write this within the 5 s guard of until().
  await full.until(() => full.calls.length === 1)
  t.same(full.calls, [50])

  const partial = new MemoryStore()
  const w2 = h.make(partial, { batchSize: 500, flushIntervalMs: 20 })
  const started = Date.now()
  for (const i of range(0, 3)) w2.push(row(i))
  await tick()
  t.same(partial.calls, [], 'not yet: a partial batch waits for the interval')
  await partial.until(() => partial.calls.length === 1)
  await tick() // the writer counts the batch when writeSpend's promise resolves
  t.same(partial.calls, [3], 'written by the interval timer, no flush() call')
  t.ok(Date.now() - started >= 15, 'after about flushIntervalMs (20 ms)')
  t.equal(w2.stats().written, 3)
})

t.test('outage then recovery: every row written exactly once and in order; one warning each way', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  let clock = 1_000
  const w = h.make(store, { batchSize: 100, flushIntervalMs: 5, retryBaseMs: 5, now: () => clock })
  store.down = true
  for (const i of range(0, 250)) w.push(row(i))
  await store.until(() => store.failed >= 3) // the writer retries by itself, with backoff
  await tick()
  for (const i of range(250, 300)) w.push(row(i)) // rows keep coming during the outage
  let s = w.stats()
  t.equal(s.buffered, 300, 'held in memory, nothing lost')
  t.equal(s.written, 0)
  t.ok(s.failedFlushes >= 3)
  t.match(s.lastError, /ECONNREFUSED/)

  clock = 6_000 // five seconds later the database is back
  store.down = false
  await w.flush()
  t.same(store.ids(), range(0, 300), 'every row, in push order')
  t.same(store.duplicates(), [], 'none offered twice')
  t.ok(store.calls.every((n) => n <= 100), 'still in batches')
  s = w.stats()
  t.match(s, { buffered: 0, spooled: 0, written: 300, dropped: 0 })

  const loud = h.logs.filter((l) => l.level === 'warn' || l.level === 'error')
  t.equal(loud.length, 2, 'one line when the outage starts, one when it ends, none per row or per retry')
  t.match(loud[0], { level: 'warn', msg: /unavailable/, buffered: 250, error: /ECONNREFUSED/ })
  t.match(loud[1], { level: 'warn', msg: /available again/, written: 300, downMs: 5_000 })
})

t.test('beyond maxBuffered rows go to the spool, replayed first after recovery', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  const w = h.make(store, { batchSize: 50, maxBuffered: 100, retryBaseMs: 5, flushIntervalMs: 60_000 })
  store.down = true
  for (const i of range(0, 300)) w.push(row(i))
  t.match(w.stats(), { buffered: 100, spooled: 200 })
  t.notOk(existsSync(h.spoolPath), 'push() does not touch the disk: the append happens later')

  await t.rejects(w.flush(), { code: 'GW_ERR_STORE_UNAVAILABLE', status: 503 }, 'flush() rejects while the store is down')
  t.equal(h.spoolLines(), 200, 'the overflow is on disk')
  t.match(w.stats(), { buffered: 100, spooled: 200, written: 0, dropped: 0 })

  store.down = false
  await w.flush()
  t.same(store.ids(), [...range(100, 300), ...range(0, 100)], 'the spool first, then memory, each in push order')
  t.same(store.duplicates(), [])
  t.match(w.stats(), { buffered: 0, spooled: 0, written: 300, dropped: 0 })
  t.same(h.files(), [], 'spool files removed once replayed')
  const start = h.logs.find((l) => /unavailable/.test(l.msg))
  t.match(start, { buffered: 100, spooled: 200 }, 'the outage warning carries the counts')
})

t.test('a spool left by a dead process is claimed by rename and replayed once at the next start', async (t) => {
  const h = harness(t)
  // A real second process: it spools rows with its database down, then is killed (no close, no cleanup). It leaves
  // a file it had already claimed for replay (40 rows) and its live spool (20 rows).
  const proc = child(h.dir, `
    const w = createSpendWriter({ store: downStore, logger, spoolPath, maxBuffered: 0, retryBaseMs: 60000 })
    for (let i = 0; i < 40; i++) w.push(row(i))
    await w.flush().catch(() => {})
    for (let i = 40; i < 60; i++) w.push(row(i))
    await w.close(0)
    process.stdout.write('spooled\\n')
    setInterval(() => {}, 1000)
  `)
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', () => out.includes('spooled') && resolve())
    proc.once('exit', (code) => reject(new Error(`child exited early (${code})`)))
  })
  const exited = once(proc, 'exit')
  process.kill(proc.pid!, 'SIGKILL')
  await exited
  const left = h.files().sort()
  t.equal(left.length, 2)
  t.match(left, [new RegExp(`^spend-spool\\.${proc.pid}\\.jsonl$`), new RegExp(`^spend-spool\\.${proc.pid}\\.replay-[0-9a-f]+\\.jsonl$`)])
  t.equal(h.spoolLines(), 60)

  // Two writers start at once on the same directory: each file is claimed by exactly one of them.
  const a = new MemoryStore()
  const b = new MemoryStore()
  const wa = h.make(a)
  const wb = h.make(b)
  await Promise.all([wa.flush(), wb.flush()])
  const all = [...a.ids(), ...b.ids()].sort((x, y) => x - y)
  t.same(all, range(0, 60), 'every spooled row written, none twice')
  t.same([...a.duplicates(), ...b.duplicates()], [])
  for (const s of [a, b]) t.same(s.ids(), [...s.ids()].sort((x, y) => x - y), 'oldest file first, rows in order')
  t.same(h.files(), [], 'nothing left on disk')
  t.equal(wa.stats().spooled + wb.stats().spooled, 0)
  t.ok(h.logs.some((l) => l.level === 'info' && /earlier process/.test(l.msg)), 'the replay at start is logged once')
})

t.test('close() writes everything buffered', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  const w = h.make(store, { batchSize: 500, flushIntervalMs: 60_000 })
  for (const i of range(0, 30)) w.push(row(i))
  await w.close()
  t.same(store.ids(), range(0, 30))
  t.match(w.stats(), { buffered: 0, spooled: 0, written: 30 })
  t.same(existsSync(h.dir) ? h.files() : [], [], 'no spool needed')
})

t.test('close() with the store down spools everything; a new writer replays it: zero rows lost', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  let clock = 1_000
  store.onCall = () => void (clock += 40) // each failed attempt takes 40 ms (a connect timeout)
  store.down = true
  const w = h.make(store, { batchSize: 20, maxBuffered: 50, retryBaseMs: 1, now: () => clock })
  for (const i of range(0, 120)) w.push(row(i))
  await w.close(100)
  t.equal(store.failed, 3, 'retried with backoff until the 100 ms deadline (3 attempts of 40 ms)')
  t.match(w.stats(), { buffered: 0, spooled: 120, written: 0, dropped: 0 })
  t.equal(h.spoolLines(), 120, 'all 120 rows on disk')
  t.match(h.logs.find((l) => /closed with the store unavailable/.test(l.msg)), { level: 'warn', rows: 50 })

  store.down = false
  store.onCall = null
  const next = h.make(store) // the next start, database back
  await next.flush()
  t.same(store.ids().sort((x, y) => x - y), range(0, 120), 'every row written')
  t.same(store.duplicates(), [], 'none twice')
  t.match(next.stats(), { spooled: 0, written: 120, dropped: 0 })
  t.same(h.files(), [])
})

t.test('close() gives up on a write that hangs past its deadline and spools its rows', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  store.hang = true
  const w = h.make(store, { batchSize: 500, flushIntervalMs: 60_000 })
  for (const i of range(0, 10)) w.push(row(i))
  await w.close(30)
  t.match(w.stats(), { buffered: 0, spooled: 10, written: 0 })
  t.equal(h.spoolLines(), 10)
  store.release() // the abandoned write commits late
  await store.until(() => store.rows.length === 10)
  await tick()
  t.equal(w.stats().written, 0, 'the closed writer ignores a late answer')
  const next = h.make(store)
  await next.flush()
  t.same(store.ids(), range(0, 10), 'the replay is skipped by the store request_id check: no row counted twice')
  t.same(h.files(), [])
})

t.test('a spool that cannot be written: one error line with the count, losses counted', async (t) => {
  const h = harness(t)
  const notADir = join(h.dir, 'file')
  writeFileSync(notADir, '')
  const store = new MemoryStore()
  store.down = true
  const w = h.make(store, { spoolPath: join(notADir, 'spend-spool.jsonl'), maxBuffered: 10, retryBaseMs: 60_000 })
  for (const i of range(0, 50)) w.push(row(i))
  await t.rejects(w.flush())
  for (const i of range(50, 80)) w.push(row(i))
  await w.close(0)
  t.equal(w.stats().dropped, 80, '70 overflow rows and the 10 in memory at close')
  // (The directory scan at start also reports the path is not a directory: a separate line, once.)
  const errors = h.logs.filter((l) => l.level === 'error' && /spool cannot be written/.test(l.msg))
  t.equal(errors.length, 1, 'one line for the whole episode, not one per row or per append')
  t.match(errors[0], { msg: /spool cannot be written/, rows: 40 })
})

t.test('push() is O(1): returns nothing, never throws, costs the same with 400,000 rows buffered', async (t) => {
  const h = harness(t)
  const store = new MemoryStore()
  store.down = true
  const w = h.make(store, { maxBuffered: 1_000_000, batchSize: 10_000_000, flushIntervalMs: 60_000, retryBaseMs: 60_000 })
  const r = row(0)
  const timeBlock = () => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < 20_000; i++) w.push(r)
    return Number(process.hrtime.bigint() - start)
  }
  timeBlock() // warm up the JIT
  const early = Math.min(timeBlock(), timeBlock(), timeBlock())
  while (w.stats().buffered < 400_000) timeBlock()
  const late = Math.min(timeBlock(), timeBlock(), timeBlock())
  t.ok(late < early * 10, `20,000 pushes: ${early} ns near empty, ${late} ns at 400,000 buffered`)
  t.equal(w.push(r), undefined, 'synchronous: no promise to await')
  t.same(store.calls, [], 'no store call from push()')
  store.down = false
  await w.close()
  t.doesNotThrow(() => w.push(row(1)), 'push() after close() does not throw: the row goes to the spool')
  await w.flush()
  t.equal(store.rows.length, 2)
  t.same(h.files(), [])
})

t.test('timers never keep a process alive: a process with rows buffered and the store down exits', async (t) => {
  const h = harness(t)
  // Retries every 10 ms (capped at 10 s) would hold the process forever if the timers were ref'd.
  const proc = child(h.dir, `
    const w = createSpendWriter({ store: downStore, logger, spoolPath, retryBaseMs: 10, flushIntervalMs: 5 })
    for (let i = 0; i < 10; i++) w.push(row(i))
    await new Promise((resolve) => setTimeout(resolve, 50)) // let it fail and arm its retry timer
    process.stdout.write(JSON.stringify(w.stats()) + '\\n')
  `)
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  const guard = setTimeout(() => proc.kill('SIGKILL'), 10_000)
  const [code, signal] = await once(proc, 'exit')
  clearTimeout(guard)
  t.equal(signal, null, 'exited by itself, not killed by the 10 s guard')
  t.equal(code, 0)
  t.match(JSON.parse(out), { buffered: 10, written: 0, failedFlushes: Number })
  t.ok(JSON.parse(out).failedFlushes >= 1, 'it had failed and was retrying')
})
