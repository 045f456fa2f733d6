/**
 * The spend-log writer: every model call pushes one SpendLogRow here (O(1), on the request path) and rows reach the
 * store in batches off it, one `Store.writeSpend` per batch (the store adds each entity's spend once per batch, so no
 * hot row is updated per call).
 *
 * Guarantees:
 * - Order: rows are written in push order; a failed batch stays at the front and is retried as it was.
 * - One flush in flight at a time; rows pushed during a flush wait for the next one. A row this writer has seen
 *   written is never offered again (writeSpend is idempotent by request_id as well, which covers a commit whose
 *   acknowledgement was lost, a write abandoned at a close deadline, and a spool replayed twice after a crash).
 * - Outage: rows stay in memory up to `maxBuffered`, beyond it they go to a JSON-lines spool file. Spool files are
 *   replayed first once the store accepts writes again, and at the next start. Rows are only ever lost when the
 *   spool itself cannot be written (or a spool line is unreadable); both are logged with the count and counted in
 *   `stats().dropped`.
 * - Logging is per outage, never per row: one warning when it starts, one when it ends.
 * - A process that dies without its shutdown (SIGKILL, the OOM killer, a lost host) loses the rows still in memory:
 *   with the store up, those of calls that ended less than `flushIntervalMs` plus the batch writes in progress before
 *   it died (the price of writing in batches off the hot path; test/robust/faults-crash.test.ts holds this bound);
 *   during a store outage, every row buffered in memory (up to `maxBuffered`): only the rows beyond it are in the
 *   spool file. Rows in spool files survive and are written by the next start.
 *
 * Spool files. All files of one writer family live in one directory and share a stem (`spend-spool`):
 *   `<stem>.<pid>.jsonl`               the live spool of process <pid> (appended during overflow)
 *   `<stem>.<pid>.replay-<hex>.jsonl`  a spool claimed for replay by process <pid>
 * A file is claimed by renaming it to a replay name of our own pid: rename is atomic, so when two processes race for
 * the same file one of them gets ENOENT and skips it. A process only claims files whose owner pid is dead, or is its
 * own pid without a live writer in this process holding it (a container restart reuses pid 1; a writer closed earlier
 * in this process). A file claimed by a process that died mid-replay is claimed again and replayed from its start:
 * the rows already written are skipped by the store's request_id check.
 */
import { appendFile, mkdir, readdir, rename, stat, truncate, unlink } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join, resolve } from 'node:path'
import type { Logger } from '../../core/logger.js'
import type { SpendLogRow, Store } from '../../core/store.js'
import { gatewayError } from '../../core/errors.js'
import { alive, countLines, isMissing, readBatch, type SpoolFile } from './spool.js'

export interface SpendWriterOptions {
  /** Only writeSpend is used; any Store fits. */
  store: Pick<Store, 'writeSpend'>
  logger: Logger
  /** Rows per writeSpend call (default 500). */
  batchSize?: number
  /** Max time a row waits before a flush starts, ms (default 200 ms). */
  flushIntervalMs?: number
  /** Rows held in memory during an outage (default 100,000); beyond it rows go to the spool. */
  maxBuffered?: number
  /** JSON-lines overflow file, ending in `.jsonl` (default ./data/spend-spool.<pid>.jsonl). */
  spoolPath?: string
  /** Backoff after a failed flush, ms, doubling up to 10 s (default 250 ms). */
  retryBaseMs?: number
  /** Clock, ms since the epoch: outage durations and flush/close deadlines are measured on it. */
  now?: () => number
}

export interface SpendWriterStats {
  /** Rows in memory, not yet written. */
  buffered: number
  /** Rows in spool files (and on their way there), not yet written. */
  spooled: number
  /** Rows this writer wrote. */
  written: number
  /** writeSpend calls that failed. */
  failedFlushes: number
  lastError: string | null
  /** Rows lost: the spool could not be written, or a spool line could not be read. Each loss is logged. */
  dropped: number
}

export interface SpendWriter {
  /** O(1), never throws, never awaits I/O. */
  push(row: SpendLogRow): void
  /**
   * Write everything pushed so far (spool first, then memory). Without a deadline: one attempt, rejects at the first
   * failure. With `deadlineMs`: retries with backoff and rejects (GW_ERR_STORE_UNAVAILABLE) once the deadline passes;
   * a write still running then is abandoned, not awaited.
   */
  flush(deadlineMs?: number): Promise<void>
  /** Flush within `deadlineMs` (default 5 s); whatever cannot be written goes to the spool. Never rejects. */
  close(deadlineMs?: number): Promise<void>
  stats(): SpendWriterStats
}

const DEFAULT_BATCH_SIZE = 500 // rows
const DEFAULT_FLUSH_INTERVAL_MS = 200 // 200 ms
const DEFAULT_MAX_BUFFERED = 100_000 // rows
const DEFAULT_RETRY_BASE_MS = 250 // 250 ms
const RETRY_CAP_MS = 10_000 // 10 s
const DEFAULT_CLOSE_DEADLINE_MS = 5_000 // 5 s
/** Compact the memory queue once this many written rows sit at its front (and they are at least half of it). */
const COMPACT_AT = 4096 // rows
const SPOOL_EXT = '.jsonl'

/** Spool files a live writer in this process holds: its live spool and the files it is replaying. */
const held = new Set<string>()

/** Marks a write whose result no longer matters: close() moved its rows to the spool at the deadline. */
const ABANDONED = new Error('spend write abandoned at the close deadline')
const DEADLINE = new Error('deadline')

function noop(): void {}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}


/**
 * Resolve `p`, or reject with DEADLINE once `left()` (time left on the writer's clock) reaches 0. Checked on a timer
 * that re-arms while time is left, so an injected clock decides, and a real one behaves as a plain timeout. The timer
 * is ref'd on purpose: a caller is awaiting it, and it ends with the deadline.
 */
function bounded<T>(p: Promise<T>, left: () => number): Promise<T> {
  if (left() === Infinity) return p
  return new Promise<T>((res, rej) => {
    let timer: NodeJS.Timeout
    const check = () => {
      const ms = left()
      if (ms <= 0) rej(DEADLINE)
      else timer = setTimeout(check, ms)
    }
    check()
    p.then(
      (v) => { clearTimeout(timer); res(v) },
      (e) => { clearTimeout(timer); rej(e) },
    )
  })
}

export function createSpendWriter(o: SpendWriterOptions): SpendWriter {
  const { store, logger } = o
  const batchSize = Math.max(1, o.batchSize ?? DEFAULT_BATCH_SIZE)
  const flushIntervalMs = o.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS
  const maxBuffered = o.maxBuffered ?? DEFAULT_MAX_BUFFERED
  const retryBaseMs = o.retryBaseMs ?? DEFAULT_RETRY_BASE_MS
  const now = o.now ?? Date.now

  const live = resolve(o.spoolPath ?? join('data', `spend-spool.${process.pid}${SPOOL_EXT}`))
  const dir = dirname(live)
  if (!live.endsWith(SPOOL_EXT)) throw gatewayError('GW_ERR_CONFIG_INVALID', `spend spoolPath must end in ${SPOOL_EXT}: ${live}`)
  const stem = basename(live).slice(0, -SPOOL_EXT.length).replace(/\.\d+$/, '')
  const escaped = stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  // Group 1: the owner pid (absent only for a custom spoolPath without one: then it is ours).
  const family = new RegExp(`^${escaped}(?:\\.(\\d+))?(?:\\.replay-[0-9a-f]+)?\\.jsonl$`)

  // Memory: queue[head..] are unwritten rows in push order; `removed` rows were cut off the front by compaction,
  // so a row's absolute position is removed + index (flush targets are absolute positions).
  let queue: SpendLogRow[] = []
  let head = 0
  let removed = 0

  // Spool: overflow rows waiting for their append, rows in the live file, files claimed for replay (oldest first).
  let spoolOut: SpendLogRow[] = []
  let appending = 0 // rows taken from spoolOut by the append in progress
  let liveRows = 0
  let liveBytes = 0
  const replay: SpoolFile[] = []
  let appendQueued = false
  let spoolLost = 0 // rows lost since the spool started failing; 0 = writable
  // Appends to the live file and its claim for replay run one at a time, in order.
  let spoolChain: Promise<void> = Promise.resolve()

  let written = 0
  let failedFlushes = 0
  let dropped = 0
  let lastError: string | null = null
  let failures = 0 // consecutive failed writes: the backoff exponent
  let outage: { since: number; upAt: number | null; written: number } | null = null

  let inflight: Promise<void> | null = null
  let timer: NodeJS.Timeout | null = null
  let pendingSince: number | null = null
  let closed = false
  let closing: Promise<void> | null = null
  // Bumped when close() moves the memory queue to the spool: a write still running from before must not touch it.
  let epoch = 0

  const buffered = () => queue.length - head
  const end = () => removed + queue.length
  const backoff = () => Math.min(retryBaseMs * 2 ** Math.min(failures - 1, 30), RETRY_CAP_MS)

  const startup = scan()

  function arm(delayMs: number): void {
    if (timer || closed) return
    timer = setTimeout(onTimer, delayMs)
    timer.unref() // never keeps a process alive; close() is what flushes at shutdown
  }

  function onTimer(): void {
    timer = null
    if (!inflight && !closed) void run(end())
  }

  function push(row: SpendLogRow): void {
    if (closed || buffered() >= maxBuffered) {
      spoolOut.push(row)
      kickAppend()
      if (!inflight) arm(flushIntervalMs)
      return
    }
    queue.push(row)
    if (pendingSince === null) pendingSince = now()
    if (inflight || outage) return // the running flush, or the retry timer, takes it from here
    if (buffered() === batchSize && timer) {
      // A full batch does not wait for the interval.
      clearTimeout(timer)
      timer = null
    }
    arm(buffered() >= batchSize ? 0 : flushIntervalMs)
  }

  function run(target: number): Promise<void> {
    const p = drain(target, epoch)
    inflight = p
    p.then(() => settle(p, true), () => settle(p, false))
    return p
  }

  function settle(p: Promise<void>, ok: boolean): void {
    if (inflight === p) inflight = null
    if (ok && outage) {
      logger.warn('spend store available again: buffered spend rows written', {
        written: outage.written, downMs: (outage.upAt ?? now()) - outage.since, spooled: spooledRows(), dropped,
      })
      outage = null
    }
    if (closed) return
    if (!ok) return arm(backoff())
    if (buffered() >= batchSize) arm(0)
    else if (buffered() > 0 || spoolOut.length || appending || liveRows) {
      const due = pendingSince === null ? 0 : pendingSince + flushIntervalMs - now()
      arm(Math.max(0, Math.min(flushIntervalMs, due)))
    }
  }

  /** Spool first (older rows, or overflow), then memory up to `target`. Rejects on the first failed write. */
  async function drain(target: number, ep: number): Promise<void> {
    pendingSince = null
    await startup
    await replaySpool(ep)
    if (ep !== epoch) throw ABANDONED
    if (liveRows || spoolOut.length || appending) {
      await claimLive()
      await replaySpool(ep)
    }
    if (ep !== epoch) throw ABANDONED
    while (removed + head < target) {
      const n = Math.min(batchSize, target - removed - head)
      await write(queue.slice(head, head + n), ep)
      head += n
      compact()
    }
  }

  function compact(): void {
    if (head === queue.length) {
      removed += head
      queue = []
      head = 0
    } else if (head >= COMPACT_AT && head * 2 >= queue.length) {
      removed += head
      queue = queue.slice(head)
      head = 0
    }
  }

  /** The one place writeSpend is called: counts, and opens/tracks the outage. */
  async function write(rows: SpendLogRow[], ep: number): Promise<void> {
    if (ep !== epoch) throw ABANDONED
    try {
      await store.writeSpend(rows)
    } catch (err) {
      if (ep !== epoch) throw ABANDONED
      failedFlushes++
      failures++
      lastError = message(err)
      if (!outage) {
        outage = { since: now(), upAt: null, written: 0 }
        logger.warn('spend store unavailable: buffering spend rows', { buffered: buffered(), spooled: spooledRows(), error: lastError })
      } else {
        outage.upAt = null
      }
      throw err
    }
    if (ep !== epoch) throw ABANDONED
    failures = 0
    written += rows.length
    if (outage) {
      outage.upAt ??= now()
      outage.written += rows.length
    }
  }

  async function replaySpool(ep: number): Promise<void> {
    while (replay.length) {
      if (ep !== epoch) throw ABANDONED
      const f = replay[0]!
      let batch: Awaited<ReturnType<typeof readBatch>>
      try {
        batch = await readBatch(f.path, f.offset, batchSize)
      } catch (err) {
        // Left on disk (released, under our pid): the next start claims it again.
        replay.shift()
        held.delete(f.path)
        if (isMissing(err)) {
          dropped += f.remaining
          logger.error('spend spool file vanished before replay: rows lost', { path: f.path, rows: f.remaining })
        } else {
          logger.error('spend spool file unreadable: left for the next start', { path: f.path, rows: f.remaining, error: message(err) })
        }
        continue
      }
      if (batch.rows.length) await write(batch.rows, ep)
      if (ep !== epoch) throw ABANDONED
      f.offset = batch.next
      f.remaining = Math.max(0, f.remaining - batch.rows.length - batch.bad)
      if (batch.bad) {
        dropped += batch.bad
        logger.error('spend spool lines unreadable: skipped', { path: f.path, rows: batch.bad })
      }
      if (!batch.rows.length && !batch.bad) {
        replay.shift()
        held.delete(f.path)
        await unlink(f.path).catch(noop)
      }
    }
  }

  /** Rename a spool file to a replay name of ours and queue it. False when another process took it first. */
  async function claim(path: string, rows: number | null): Promise<boolean> {
    const to = join(dir, `${stem}.${process.pid}.replay-${randomBytes(8).toString('hex')}${SPOOL_EXT}`)
    held.add(to) // before the rename: another writer in this process must not take it the moment it appears
    try {
      await rename(path, to)
    } catch (err) {
      held.delete(to)
      if (!isMissing(err)) logger.error('spend spool file cannot be claimed', { path, error: message(err) })
      return false
    }
    let remaining = rows
    if (remaining === null) remaining = await countLines(to).catch(() => 0)
    replay.push({ path: to, offset: 0, remaining })
    return true
  }

  /** Claim spool files left by dead processes (or earlier writers of this pid). Never rejects. */
  async function scan(): Promise<void> {
    try {
      let names: string[] = []
      try {
        names = await readdir(dir)
      } catch (err) {
        if (!isMissing(err)) logger.error('spend spool directory unreadable', { dir, error: message(err) })
      }
      const found: Array<{ path: string; mtime: number }> = []
      for (const name of names) {
        const m = family.exec(name)
        if (!m) continue
        const path = join(dir, name)
        const owner = m[1] ? Number(m[1]) : process.pid
        if (held.has(path) || (owner !== process.pid && alive(owner))) continue
        try {
          found.push({ path, mtime: (await stat(path)).mtimeMs })
        } catch {
          // claimed by someone else meanwhile
        }
      }
      found.sort((a, b) => a.mtime - b.mtime) // oldest rows first
      for (const f of found) await claim(f.path, null)
      if (replay.length) {
        logger.info('spend spool left by an earlier process: replaying', { files: replay.length, rows: spooledRows() })
      }
    } catch (err) {
      logger.error('spend spool scan failed', { dir, error: message(err) })
    } finally {
      held.add(live)
    }
    if (replay.length && !inflight) arm(0)
  }

  function kickAppend(): void {
    if (appendQueued) return
    appendQueued = true
    spoolChain = spoolChain.then(appendSpool)
  }

  /** Append the waiting overflow rows to the live spool. Never rejects. */
  async function appendSpool(): Promise<void> {
    appendQueued = false
    await startup // a leftover file at our live path is claimed before we append to it
    const rows = spoolOut
    spoolOut = []
    if (!rows.length) return
    appending = rows.length
    let text = ''
    let bad = 0
    for (const r of rows) {
      try {
        text += JSON.stringify(r) + '\n'
      } catch {
        bad++ // not serialisable (a BigInt in metadata): cannot be spooled
      }
    }
    const n = rows.length - bad
    try {
      await mkdir(dir, { recursive: true })
      await appendFile(live, text)
      liveRows += n
      appending = 0
      liveBytes += Buffer.byteLength(text)
      if (spoolLost) logger.warn('spend spool writable again', { lostRows: spoolLost })
      spoolLost = 0
    } catch (err) {
      appending = 0
      // Cut a partial append back off, so the next append does not start in the middle of a line.
      await truncate(live, liveBytes).catch(noop)
      if (!spoolLost) logger.error('spend spool cannot be written: spend rows lost', { rows: n, path: live, error: message(err) })
      spoolLost += n
      dropped += n
    }
    if (bad) {
      dropped += bad
      logger.error('spend rows not serialisable: lost', { rows: bad })
    }
  }

  /** Move the live spool into the replay queue (after the appends queued before it). */
  function claimLive(): Promise<void> {
    kickAppend()
    spoolChain = spoolChain.then(async () => {
      if (!liveRows) return
      if (await claim(live, liveRows)) {
        liveRows = 0
        liveBytes = 0
      } else if (!(await stat(live).then(() => true, () => false))) {
        dropped += liveRows
        logger.error('spend spool file vanished: rows lost', { path: live, rows: liveRows })
        liveRows = 0
        liveBytes = 0
      }
    })
    return spoolChain
  }

  function spooledRows(): number {
    let n = spoolOut.length + appending + liveRows
    for (const f of replay) n += f.remaining
    return n
  }

  async function flush(deadlineMs?: number): Promise<void> {
    const start = now()
    const target = end()
    const left = () => (deadlineMs === undefined ? Infinity : start + deadlineMs - now())
    const unavailable = (err: unknown) =>
      gatewayError('GW_ERR_STORE_UNAVAILABLE', `spend rows not written: ${err === DEADLINE ? 'deadline passed' : lastError ?? message(err)}`, {
        cause: err === DEADLINE ? undefined : err,
      })
    for (;;) {
      if (left() <= 0) throw unavailable(DEADLINE)
      try {
        if (inflight) {
          // One flush at a time: wait for the running one, then write what it did not cover.
          await bounded(inflight.catch(noop), left)
          continue
        }
        await bounded(run(target), left)
        return
      } catch (err) {
        if (err === DEADLINE || deadlineMs === undefined || left() <= 0) throw unavailable(err)
      }
      // Ref'd on purpose, bounded by the deadline: a shutdown awaiting close() must not exit in the middle.
      await sleep(Math.min(backoff(), left()))
    }
  }

  function close(deadlineMs = DEFAULT_CLOSE_DEADLINE_MS): Promise<void> {
    closing ??= (async () => {
      closed = true
      if (timer) clearTimeout(timer)
      timer = null
      try {
        await flush(deadlineMs)
      } catch (err) {
        // Whatever is still in memory goes to the spool, ahead of anything pushed after close. A write still running
        // is abandoned: its rows are spooled too (the store's request_id check absorbs it if it commits late).
        epoch++
        inflight = null
        const rest = queue.slice(head)
        removed += queue.length
        queue = []
        head = 0
        spoolOut = rest.concat(spoolOut)
        kickAppend()
        logger.warn('spend writer closed with the store unavailable: rows spooled', {
          rows: rest.length, spooled: spooledRows(), path: live, error: message(err),
        })
      }
      kickAppend()
      await spoolChain
      held.delete(live)
      for (const f of replay) held.delete(f.path)
    })()
    return closing
  }

  function stats(): SpendWriterStats {
    return { buffered: buffered(), spooled: spooledRows(), written, failedFlushes, lastError, dropped }
  }

  return { push, flush, close, stats }
}
