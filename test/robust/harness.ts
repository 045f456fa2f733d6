/**
 * Shared pieces of the robustness (fault) suite: a gateway run as users run it (the built CLI in its own process, so
 * a crash, an unhandled rejection or a SIGKILL is the real thing), load at a bounded concurrency through the official
 * `openai` client, per-call outcomes a test can classify (served, a clean OpenAI error, a broken connection, a hang),
 * spend rows read back through the management API, and the process checks every scenario ends with: still alive,
 * nothing on stderr but JSON log lines, memory back near its baseline.
 */
import type { Test } from 'tap'
import OpenAI from 'openai'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:net'
import { CLI, freePort, spawnProc, waitListening, type Proc } from '../helpers/cli.js'
import { alive } from '../helpers/net.js'
import { jsonCall, type JsonReply } from '../helpers/http.js'
import type { TestPostgres } from '../helpers/postgres.js'
import pgClient from 'pg'

export const MASTER = 'sk-master-robust-1234'
/** Per token, USD (the deployments below set them, so every call is priced the same way on every store). */
export const INPUT_PRICE = 0.001
export const OUTPUT_PRICE = 0.002

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

// ---- the gateway process -------------------------------------------------------------------------------------

export interface CliGateway {
  url: string
  proc: Proc
  pid: number
  configPath: string
  dataDir: string
  /** Every stderr line of this process and of the processes it replaced (restart), in order. */
  stderr(): string
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>
  /** Start a new process on the same config, data dir and port (after a kill); this object then describes it. */
  restart(): Promise<void>
}

/**
 * The built CLI on `config` (a YAML string written to a file in `dataDir`), 127.0.0.1 and a free port, with its
 * embedded database and spend spool in `dataDir` (SWITCHYARD_DATA_DIR). Killed by PID in teardown (spawnProc).
 */
export async function startCliGateway(t: Test, config: string, o: { dataDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliGateway> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'sy-robust-'))
  if (!o.dataDir) t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const configPath = join(dataDir, 'config.yaml')
  writeFileSync(configPath, config)
  const port = await freePort()
  let earlier = ''
  const spawnOne = async (): Promise<{ proc: Proc; url: string }> => {
    const proc = spawnProc(t, process.execPath, [CLI, '--config', configPath, '--port', String(port), '--host', '127.0.0.1'],
      { SWITCHYARD_DATA_DIR: dataDir, ...o.env })
    // 60 s: a boot takes 1-2 s, but the suite shares two cores with two other test files and their servers.
    return { proc, url: await waitListening(proc, 60_000) }
  }
  const first = await spawnOne()
  const gw: CliGateway = {
    url: first.url,
    proc: first.proc,
    pid: first.proc.child.pid!,
    configPath,
    dataDir,
    stderr: () => earlier + gw.proc.stderr(),
    async kill() {
      const p = gw.proc
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
      await p.exited
    },
    async restart() {
      earlier += gw.proc.stderr()
      const next = await spawnOne()
      gw.proc = next.proc
      gw.url = next.url
      gw.pid = next.proc.child.pid!
    },
  }
  return gw
}

/** Resident memory of a process in KiB, from /proc/PID/status (VmRSS). */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** Samples a process's VmRSS every `everyMs` (100 ms) until stopped; `stop` returns the highest seen, KiB. */
export function sampleRss(pid: number, everyMs = 100): { stop(): number } {
  let max = rssKb(pid)
  const timer = setInterval(() => {
    try {
      max = Math.max(max, rssKb(pid))
    } catch {
      // the process is gone: the liveness check reports it
    }
  }, everyMs)
  return { stop: () => (clearInterval(timer), max) }
}

/**
 * What a crash leaves on stderr: the gateway logs JSON lines only, so any other line is Node's own output (an
 * uncaught exception or unhandled rejection with its stack, "Node.js v20...", a process warning such as
 * MaxListenersExceededWarning). Returned for the assertion message.
 */
export function foreignStderr(stderr: string): string[] {
  const out: string[] = []
  for (const line of stderr.split('\n')) {
    if (!line.trim()) continue
    try {
      JSON.parse(line)
    } catch {
      out.push(line)
      continue
    }
    if (/unhandledRejection|uncaughtException/i.test(line)) out.push(line)
  }
  return out
}

/** The gateway process is running and its stderr holds no crash output. */
export function assertAlive(t: Test, gw: CliGateway, what: string): void {
  t.equal(gw.proc.child.exitCode, null, `${what}: the gateway process is still running`)
  t.equal(gw.proc.child.signalCode, null, `${what}: and was not killed by a signal`)
  const foreign = foreignStderr(gw.stderr())
  t.same(foreign.slice(0, 20), [], `${what}: no crash, unhandled rejection or process warning on stderr`)
}

/**
 * RSS growth allowed after a scenario, over the baseline taken after a warm-up with the same traffic: 30 MB.
 * Measured here: -10 to +13 MB after 300-600 calls, from when V8 collects and which freed pages it keeps. The bound
 * catches what the scenarios are about, streams buffered in memory (one firehose stream would be 128 MB) and
 * per-call state kept after the call (50-100 KB a call at these volumes); a leak of a few KB a call needs a soak
 * test, not this one.
 */
export const MEMORY_BOUND_MB = 30

/**
 * Memory back near the baseline: VmRSS polled for up to `settleMs` (6 s) after the load, passing as soon as it is
 * within `boundMb` of `baselineKb`. The baseline is taken after a warm-up that ran the scenario's own traffic mix, so
 * the heap has already grown to its working size.
 */
export async function assertMemorySettles(t: Test, gw: CliGateway, baselineKb: number, what: string, boundMb = MEMORY_BOUND_MB, settleMs = 6_000): Promise<void> {
  const until = Date.now() + settleMs
  let now = rssKb(gw.pid)
  while (now > baselineKb + boundMb * 1024 && Date.now() < until) {
    await sleep(250)
    now = rssKb(gw.pid)
  }
  const grew = (now - baselineKb) / 1024
  t.ok(now <= baselineKb + boundMb * 1024,
    `${what}: VmRSS back near the baseline (${(now / 1024).toFixed(1)} MB, baseline ${(baselineKb / 1024).toFixed(1)} MB, ` +
    `${grew >= 0 ? '+' : ''}${grew.toFixed(1)} MB, bound +${boundMb} MB)`)
}

// ---- management calls --------------------------------------------------------------------------------------

export function admin(url: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonReply> {
  return jsonCall(url, method, path, body, MASTER)
}

export interface VirtualKey { key: string; token: string }

/**
 * A virtual key; throws (no assertion) when the gateway refuses, so it can run at a file's top level: an assertion
 * there would let tap end the root test, and run its teardowns, before the subtests are queued.
 */
export async function generateKey(url: string, body: Record<string, unknown>): Promise<VirtualKey> {
  const r = await admin(url, 'POST', '/key/generate', body)
  if (r.status !== 200) throw new Error(`key/generate ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`)
  return { key: r.body.key, token: r.body.token }
}

/** Spend rows of one key (the newest 10,000: more than any scenario writes). */
export async function spendRows(url: string, token: string): Promise<any[]> {
  const r = await admin(url, 'GET', `/spend/logs?api_key=${token}&limit=10000`)
  if (r.status !== 200 || !Array.isArray(r.body)) throw new Error(`spend/logs: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`)
  return r.body
}

/** Poll until `check` returns a truthy value; throws with `what` after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check().catch(() => undefined)
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

/** Spend rows of one key once there are at least `n` (rows are written in batches off the hot path). */
export function rowsAtLeast(url: string, token: string, n: number, timeoutMs = 20_000): Promise<any[]> {
  return eventually(async () => {
    const rows = await spendRows(url, token)
    return rows.length >= n ? rows : undefined
  }, timeoutMs, `${n} spend rows`)
}

/** A priced deployment of an OpenAI-compatible fake upstream, as a LiteLLM config lists it. */
export function deployment(name: string, apiBase: string, extra = ''): string {
  return `  - model_name: ${name}
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${apiBase}
      api_key: sk-upstream
      input_cost_per_token: ${INPUT_PRICE}
      output_cost_per_token: ${OUTPUT_PRICE}
${extra}`
}

// ---- load ---------------------------------------------------------------------------------------------------

/** Run `n` tasks, at most `concurrency` at once, in index order; results in index order. */
export async function pool<T>(n: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < n; i = next++) out[i] = await task(i)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return out
}

/**
 * How one call ended, from the client's side:
 * - `ok`: served (a stream read to its end);
 * - `error`: the gateway answered with an OpenAI error (status and body), before or during a stream (`midStream`);
 * - `broken`: the connection failed without an OpenAI error (reset, closed mid-body);
 * - `hang`: no end within the deadline (the call is aborted to free it);
 * - `left`: the client aborted the stream itself after `abortAfterChunks` chunks (a client that goes away).
 */
export type CallResult =
  | { kind: 'ok'; requestId: string | null; ms: number; chunks: number; endedAt: number }
  | { kind: 'error'; requestId: string | null; ms: number; status: number | undefined; type: string | undefined; code: string | null | undefined;
      message: string; midStream: boolean; retryAfter: string | null }
  | { kind: 'broken'; requestId: string | null; ms: number; message: string; midStream: boolean }
  | { kind: 'hang'; requestId: string | null; ms: number; midStream: boolean }
  | { kind: 'left'; requestId: string | null; ms: number; chunks: number; leftAt: number }

export interface ChatOptions {
  stream: boolean
  /** A call not over after this long is a hang (ms). */
  deadlineMs: number
  /** Abort a stream after this many chunks (a client that leaves mid-stream). */
  abortAfterChunks?: number
  extra?: Record<string, unknown>
}

const clients = new Map<string, OpenAI>()
/**
 * One client per gateway URL and key, made once: the SDK's own retries off (maxRetries 0), so every 5xx the gateway
 * sends is seen here; its timeout far above any call's deadline (the deadline is ours, in `chat`).
 */
export function clientFor(url: string, key: string): OpenAI {
  let c = clients.get(`${url} ${key}`)
  if (!c) clients.set(`${url} ${key}`, (c = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 120_000 })))
  return c
}

export async function chat(client: OpenAI, model: string, content: string, o: ChatOptions): Promise<CallResult> {
  const started = Date.now()
  const ac = new AbortController()
  let requestId: string | null = null
  let chunks = 0
  let midStream = false
  let hung = false
  let leftAt = 0
  const timer = setTimeout(() => {
    hung = true
    ac.abort()
  }, o.deadlineMs)
  const body = { model, messages: [{ role: 'user' as const, content }], max_tokens: 16, ...o.extra }
  try {
    if (o.stream) {
      const { data, response } = await client.chat.completions
        .create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal: ac.signal })
        .withResponse()
      requestId = response.headers.get('x-request-id')
      midStream = true
      for await (const _ of data) {
        if (++chunks === o.abortAfterChunks) {
          leftAt = Date.now()
          ac.abort()
        }
      }
      // The SDK ends a stream's iteration quietly when its signal aborts: ours (the client left), or the deadline's.
      if (hung) return { kind: 'hang', requestId, ms: Date.now() - started, midStream }
      if (leftAt) return { kind: 'left', requestId, ms: Date.now() - started, chunks, leftAt }
    } else {
      const { response } = await client.chat.completions.create(body, { signal: ac.signal }).withResponse()
      requestId = response.headers.get('x-request-id')
    }
    const now = Date.now()
    return { kind: 'ok', requestId, ms: now - started, chunks, endedAt: now }
  } catch (err) {
    const ms = Date.now() - started
    if (hung) return { kind: 'hang', requestId, ms, midStream }
    if (err instanceof OpenAI.APIUserAbortError && leftAt) return { kind: 'left', requestId, ms, chunks, leftAt }
    if (err instanceof OpenAI.APIConnectionError) return { kind: 'broken', requestId, ms, message: err.message, midStream }
    if (err instanceof OpenAI.APIError) {
      const e = err.error as { type?: string; code?: string | null } | undefined
      requestId ??= err.headers?.get('x-request-id') ?? null
      return {
        kind: 'error', requestId, ms, status: err.status, type: e?.type ?? (err as { type?: string }).type,
        code: e?.code ?? (err.code as string | null | undefined), message: err.message, midStream, retryAfter: err.headers?.get('retry-after') ?? null,
      }
    }
    // A body cut off mid-stream surfaces as a plain TypeError ("terminated") from fetch.
    return { kind: 'broken', requestId, ms, message: String((err as Error)?.message ?? err), midStream }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The results tally as `expected` (see `tally`); on a mismatch the first few results of an unexpected kind go into
 * the failure's diagnostics, so a red run says what the calls saw.
 */
export function assertTally(t: Test, results: readonly CallResult[], expected: Record<string, number>, what: string): void {
  const got = tally(results)
  const odd = results.filter((r) => !(r.kind === 'ok' && 'ok' in expected) && !(r.kind === 'left' && 'left' in expected)).slice(0, 5)
  t.same(got, expected, `${what} (${JSON.stringify(got)})`, { odd })
}

/** Counts of results by kind and status, for assertion messages. */
export function tally(results: readonly CallResult[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of results) {
    // An error event in a stream has no status of its own (the stream's 200 was sent): 'error event'.
    const k = r.kind === 'error' ? (r.status === undefined ? 'error event' : `error ${r.status}${r.midStream ? ' mid-stream' : ''}`)
      : r.kind === 'broken' && r.midStream ? 'broken mid-stream' : r.kind
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

// ---- raw clients -------------------------------------------------------------------------------------------

export interface SlowReader {
  /** Bytes read so far (head included). */
  received(): number
  /** The response's x-request-id, once the head has been read. */
  requestId(): string | null
  /** The response's status, once the head has been read. */
  status(): number | null
  /** Stop reading and tear the connection down (a client that gives up). */
  destroy(): void
  /** Resolves when the connection has closed, whoever closed it. */
  closed: Promise<void>
}

/**
 * A client that reads `bytes` every `everyMs` from a streamed chat call, over a raw socket (the official client and
 * fetch read as fast as data comes; this one lets the kernel buffers fill and keeps them full). POSTs `body` with
 * `key` as the bearer token.
 */
export function slowReader(url: string, key: string, body: Record<string, unknown>, o: { bytes: number; everyMs: number }): SlowReader {
  const u = new URL(url)
  const payload = JSON.stringify(body)
  const sock = connect(Number(u.port), u.hostname)
  let received = 0
  let head = ''
  let requestId: string | null = null
  let status: number | null = null
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()))
  sock.on('error', () => {}) // a reset by either side ends the reader; `closed` reports it
  sock.pause()
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: ${u.host}\r\nauthorization: Bearer ${key}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`)
  const timer = setInterval(() => {
    const n = Math.min(o.bytes, sock.readableLength)
    if (n === 0) {
      sock.read(0) // keep the socket reading from the kernel up to its high-water mark
      return
    }
    const b = sock.read(n) as Buffer | null
    if (!b) return
    received += b.length
    if (status === null) {
      head += b.toString('latin1')
      const end = head.indexOf('\r\n\r\n')
      if (end !== -1) {
        const lines = head.slice(0, end).split('\r\n')
        status = Number(lines[0]!.split(' ')[1])
        for (const l of lines) if (/^x-request-id:/i.test(l)) requestId = l.slice(l.indexOf(':') + 1).trim()
      }
    }
  }, o.everyMs)
  void closed.then(() => clearInterval(timer))
  return {
    received: () => received,
    requestId: () => requestId,
    status: () => status,
    destroy: () => {
      clearInterval(timer)
      sock.destroy()
    },
    closed,
  }
}

/**
 * Load for as long as `running()` says: `concurrency` workers, each starting its next call when the last ended.
 * Call `i` is numbered in start order; results come back in that order with the time each started.
 */
export async function loadWhile<T>(running: () => boolean, concurrency: number, task: (i: number) => Promise<T>): Promise<Array<{ startedAt: number; result: T }>> {
  const out: Array<{ startedAt: number; result: T }> = []
  let next = 0
  const worker = async () => {
    while (running()) {
      const i = next++
      const startedAt = Date.now()
      out[i] = { startedAt, result: await task(i) }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return out
}

// ---- servers killed ----------------------------------------------------------------------------------------

/** Direct children of a process, from /proc (PostgreSQL's backends and auxiliary processes under the postmaster). */
export function childPids(pid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its closing parenthesis.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/**
 * A new database on `pg` that commits durably. The helper's server trades durability for speed (fsync and
 * synchronous_commit off). A kill loses no committed transaction with fsync off (the OS keeps the page cache), but
 * with synchronous_commit off it does: up to a few hundred ms of commits acknowledged before their WAL was written.
 * Spend rows the gateway saw committed would then vanish in the crash, which is the server's doing, not the gateway's.
 */
export async function durableDatabase(pg: TestPostgres): Promise<string> {
  const db = await pg.createDatabase()
  const c = new pgClient.Client({ connectionString: pg.urlFor('postgres') })
  await c.connect()
  try {
    await c.query(`ALTER DATABASE ${db} SET synchronous_commit = on`)
  } finally {
    await c.end()
  }
  return db
}

/**
 * Kill a PostgreSQL server the hard way, as a crashed host or the OOM killer leaves it: SIGKILL to the postmaster and
 * every process under it at once, no shutdown checkpoint. Then remove its postmaster.pid (the processes are gone, so
 * the lock protects nothing) and start it again on the same port and data through the helper's restart, after
 * `downMs`: it comes back through crash recovery.
 */
export async function killAndRestartPostgres(pg: TestPostgres, downMs: number): Promise<{ killedAt: number; upAt: number }> {
  const postmaster = pg.pid()
  const pids = [postmaster, ...childPids(postmaster)]
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  const killedAt = Date.now()
  await eventually(async () => pids.every((p) => !alive(p)), 10_000, 'the PostgreSQL processes to die')
  rmSync(join(pg.dataDir, 'postmaster.pid'), { force: true })
  await pg.restart({ whileDown: () => sleep(Math.max(0, downMs - (Date.now() - killedAt))) })
  return { killedAt, upAt: Date.now() }
}
