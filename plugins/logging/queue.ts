/**
 * The queue in front of one sink: batches records, sends one batch at a time, retries a failed batch with
 * exponential backoff and jitter, and holds a bounded buffer meanwhile, so a slow or dead receiver never slows,
 * fails or blocks a call. push() is what the request side calls: synchronous, O(1), never throws.
 *
 * Order and loss: records leave in the order they came. A batch that failed in a way worth retrying stays at the
 * head until it goes through, so no record is lost while the buffer has room; only when it is full are the oldest
 * dropped (counted; a warning at most every DROP_WARN_INTERVAL_MS). A batch the receiver refuses for good (a
 * non-retryable SinkError: 400, 401, 413) is dropped at once, counted and logged. stop() flushes within a deadline;
 * what is still unsent then is counted as dropped, never lost silently.
 *
 * One send in flight per sink keeps the order and means a dead receiver costs one socket, not one per batch.
 */
import type { Logger } from '../../core/logger.js'
import type { LogRecord, Sink, SinkStats } from './types.js'
import { SinkError } from './types.js'

export interface SinkQueueOptions {
  /** Records held (waiting and in the batch being retried); past it the oldest are dropped. */
  maxBuffer: number
  /** Records per send; default and ceiling: the sink's maxBatch. */
  batchSize?: number
  /** Longest a record waits for its batch to fill before it is sent anyway, ms. */
  flushIntervalMs: number
  /** Failed sends of one batch before it is dropped; default: no limit (the buffer bound applies instead). */
  maxRetries?: number
  /** First retry delay, ms (doubled per failure, with jitter). */
  backoffMs?: number
  /** Longest retry delay, ms. */
  maxBackoffMs?: number
  /** Longest one send may take before it is aborted and counted as a retryable failure, ms. */
  sendTimeoutMs?: number
  logger: Logger
  /** Clock for the warning throttle (tests pass a fake one). */
  now?: () => number
}

/** First retry after 500 ms, then 1 s, 2 s, ... */
const DEFAULT_BACKOFF_MS = 500
/** A receiver down for long is tried about twice a minute. */
const DEFAULT_MAX_BACKOFF_MS = 30_000
/** 10 seconds per send: longer means the receiver is in trouble; the batch is tried again later. */
const DEFAULT_SEND_TIMEOUT_MS = 10_000
/** flush() with no deadline of its own gives up after 10 seconds. */
const DEFAULT_FLUSH_DEADLINE_MS = 10_000
/** Drop and outage warnings: at most one per 10 seconds per sink. */
const DROP_WARN_INTERVAL_MS = 10_000

/** A first-in first-out buffer with O(1) push and shift (an array's shift() copies once it grows). */
class Fifo<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(v: T): void {
    this.items.push(v)
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const v = this.items[this.head]
    this.items[this.head++] = undefined
    // Compact once the dead prefix is half the array: amortised O(1), memory bounded by the live records.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return v
  }

  /** Remove and return up to `n` records from the head. */
  take(n: number): T[] {
    const k = Math.min(n, this.length)
    const out = this.items.slice(this.head, this.head + k) as T[]
    for (let i = 0; i < k; i++) this.items[this.head + i] = undefined
    this.head += k
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    }
    return out
  }

  clear(): void {
    this.items = []
    this.head = 0
  }
}

interface FlushWaiter {
  /** Records that had entered the queue when flush() was called: it is done when that many have left. */
  until: number
  /** performance.now() when the caller stops waiting. */
  deadline: number
  resolve: () => void
  timer: NodeJS.Timeout
}

export class SinkQueue {
  private readonly sink: Sink
  private readonly maxBuffer: number
  private readonly batchSize: number
  private readonly maxRetries: number
  private readonly backoffMs: number
  private readonly maxBackoffMs: number
  private readonly sendTimeoutMs: number
  private readonly logger: Logger
  private readonly now: () => number

  private readonly waiting = new Fifo<LogRecord>()
  /** The batch at the head: being sent, or waiting to be retried. */
  private batch: LogRecord[] | null = null
  private sending = false
  /** The send loop while it runs (one at a time). */
  private loop: Promise<void> | null = null
  /** Aborts the send in flight (its timeout, or stop() at its deadline). */
  private inFlight: AbortController | null = null
  private kickScheduled = false
  /** The interval elapsed since the queue was last empty: send what is there without waiting for a full batch. */
  private due = false
  private failedSends = 0
  private closed = false
  private stopping: Promise<void> | null = null
  private readonly interval: NodeJS.Timeout
  private sleepTimer: NodeJS.Timeout | null = null
  private wake: (() => void) | null = null
  private readonly waiters: FlushWaiter[] = []

  /** Records pushed (accepted into the buffer) and records that left it (sent or dropped): FIFO positions. */
  private entered = 0
  private left = 0
  private sent = 0
  private dropped = 0
  private failures = 0
  /** Drops not yet reported in a warning, and when the last warning went out. */
  private unreportedDrops = 0
  private lastDropWarn = -Infinity
  private lastFailWarn = -Infinity

  constructor(sink: Sink, o: SinkQueueOptions) {
    this.sink = sink
    this.maxBuffer = o.maxBuffer
    this.batchSize = Math.max(1, Math.min(o.batchSize ?? sink.maxBatch, sink.maxBatch))
    this.maxRetries = o.maxRetries ?? Infinity
    this.backoffMs = o.backoffMs ?? DEFAULT_BACKOFF_MS
    this.maxBackoffMs = o.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS
    this.sendTimeoutMs = o.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS
    this.logger = o.logger
    this.now = o.now ?? Date.now
    this.interval = setInterval(() => this.tick(), o.flushIntervalMs)
    this.interval.unref()
  }

  /** Queue one record. Synchronous, O(1), never throws; the send happens later, off the caller's path. */
  push(r: LogRecord): void {
    if (this.closed) {
      this.dropped++
      this.noteDrop(1)
      return
    }
    if (this.waiting.length + (this.batch?.length ?? 0) >= this.maxBuffer) this.dropOldest()
    this.waiting.push(r)
    this.entered++
    if (!this.loop && !this.kickScheduled && this.waiting.length >= this.batchSize) {
      // Not sent from inside push(): the caller (a request's `done`) should not pay for serialising a batch.
      this.kickScheduled = true
      setImmediate(() => {
        this.kickScheduled = false
        void this.run()
      })
    }
  }

  /**
   * Send everything buffered now (full batch or not), retrying within the deadline. Resolves when the records
   * queued before the call have left (sent, or dropped as refused), or when the deadline passed.
   */
  flush(deadlineMs: number = DEFAULT_FLUSH_DEADLINE_MS): Promise<void> {
    if (this.left >= this.entered) return Promise.resolve()
    return new Promise<void>((resolve) => {
      // Not unref'd: on a graceful stop nothing else may keep the process alive while the last batch is retried.
      const w: FlushWaiter = { until: this.entered, deadline: performance.now() + deadlineMs, resolve, timer: setTimeout(() => this.release(w), deadlineMs) }
      this.waiters.push(w)
      // A batch sleeping out a long backoff is tried again now: the caller has a deadline.
      this.wakeUp()
      void this.run()
    })
  }

  /** Flush within the deadline, then close the sink. Records still unsent are counted as dropped (and logged). */
  stop(deadlineMs: number): Promise<void> {
    this.stopping ??= this.doStop(deadlineMs)
    return this.stopping
  }

  stats(): SinkStats {
    return {
      sink: this.sink.name,
      buffered: this.waiting.length + (this.batch?.length ?? 0),
      sent: this.sent,
      dropped: this.dropped,
      failures: this.failures,
    }
  }

  private async doStop(deadlineMs: number): Promise<void> {
    clearInterval(this.interval)
    await this.flush(deadlineMs)
    // Past the deadline: no more tries. A send still in flight is aborted (its batch counts as sent only if it made
    // it), and the loop is let out of its backoff, so what is left can be counted now.
    this.closed = true
    this.wakeUp()
    this.inFlight?.abort(new SinkError('the gateway is stopping', true))
    await this.loop
    const lost = this.waiting.length + (this.batch?.length ?? 0)
    this.waiting.clear()
    this.batch = null
    if (lost > 0) {
      this.dropped += lost
      this.left += lost
      this.logger.error('logging: records not delivered before stop', { sink: this.sink.name, dropped: lost, deadlineMs })
    }
    try {
      await this.sink.close?.()
    } catch (err) {
      this.logger.warn('logging: sink close failed', { sink: this.sink.name, err: (err as Error).message })
    }
  }

  private tick(): void {
    if (this.waiting.length === 0) return
    this.due = true
    if (!this.loop) void this.run()
  }

  /** Start the send loop unless it runs; resolves when it stopped. */
  private run(): Promise<void> {
    this.loop ??= this.sendLoop().finally(() => {
      this.loop = null
      this.settleWaiters()
    })
    return this.loop
  }

  /** The send loop: one batch at a time, in order, until nothing is ready to go. Never throws. */
  private async sendLoop(): Promise<void> {
    for (;;) {
      if (this.closed) break
      let batch = this.batch
      if (!batch) {
        const n = this.waiting.length
        if (n === 0) {
          this.due = false
          break
        }
        if (n < this.batchSize && !this.due && this.waiters.length === 0) break
        batch = this.batch = this.waiting.take(this.batchSize)
      }
      const error = await this.send(batch)
      if (error === null) {
        this.sent += batch.length
        this.left += batch.length
        this.batch = null
        if (this.failedSends > 0) this.logger.info('logging: sink recovered', { sink: this.sink.name, failedSends: this.failedSends })
        this.failedSends = 0
        this.settleWaiters()
        continue
      }
      this.failures++
      this.failedSends++
      // Stopped: the batch stays for stop() to count.
      if (this.closed) break
      const retry = error instanceof SinkError ? error.retry : true
      if (!retry || this.failedSends > this.maxRetries) {
        this.dropBatch(error, retry)
        continue
      }
      this.warnFailure(error)
      await this.sleep(this.retryDelay())
    }
  }

  /** One send with a deadline; resolves with the error, or null when the receiver took the batch. */
  private async send(batch: readonly LogRecord[]): Promise<unknown> {
    this.sending = true
    const ac = (this.inFlight = new AbortController())
    let timer: NodeJS.Timeout | undefined
    // Raced as well as signalled: a sink that ignores the signal must not hold the queue (or a stop) forever.
    const aborted = new Promise<unknown>((resolve) => {
      ac.signal.addEventListener('abort', () => resolve(ac.signal.reason), { once: true })
      timer = setTimeout(() => ac.abort(new SinkError(`send timed out after ${this.sendTimeoutMs} ms`, true)), this.sendTimeoutMs)
    })
    try {
      const sent = this.sink.send(batch, ac.signal).then(() => null, (err: unknown) => err ?? new Error('send failed'))
      return await Promise.race([sent, aborted])
    } catch (err) {
      // sink.send threw synchronously.
      return err ?? new Error('send failed')
    } finally {
      clearTimeout(timer)
      this.sending = false
      this.inFlight = null
    }
  }

  /**
   * The wait before the next try. While someone flushes (a graceful stop), never more than half the time left to
   * the furthest deadline: a long backoff must not leave the last chance to deliver unused.
   */
  private retryDelay(): number {
    const delay = this.backoff(this.failedSends)
    if (this.waiters.length === 0) return delay
    let deadline = 0
    for (const w of this.waiters) deadline = Math.max(deadline, w.deadline)
    return Math.min(delay, Math.max(0, (deadline - performance.now()) / 2))
  }

  /** Exponential backoff with equal jitter: half the delay fixed, half random, so many gateways do not retry in step. */
  private backoff(failures: number): number {
    const base = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(failures - 1, 30))
    return base / 2 + Math.random() * (base / 2)
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve
      this.sleepTimer = setTimeout(() => {
        this.sleepTimer = null
        this.wake = null
        resolve()
      }, ms)
      // Idle retries must not keep a process alive; a flush in progress must (see flush()).
      if (this.waiters.length === 0) this.sleepTimer.unref()
    })
  }

  private wakeUp(): void {
    if (this.sleepTimer) clearTimeout(this.sleepTimer)
    this.sleepTimer = null
    const w = this.wake
    this.wake = null
    w?.()
  }

  /**
   * Buffer full: the oldest record goes, from the batch at the head unless a send is using it (then from the
   * waiting list). The batch's shift() is bounded by maxBatch and only happens while the receiver is failing.
   */
  private dropOldest(): void {
    if (this.batch && !this.sending && this.batch.length > 0) {
      this.batch.shift()
      if (this.batch.length === 0) this.batch = null
    } else if (this.waiting.shift() === undefined) return
    this.dropped++
    this.left++
    this.noteDrop(1)
  }

  private dropBatch(error: unknown, retryable: boolean): void {
    const n = this.batch?.length ?? 0
    this.batch = null
    this.dropped += n
    this.left += n
    this.failedSends = 0
    const status = error instanceof SinkError ? error.status : undefined
    this.logger.error(retryable ? 'logging: batch dropped after retries' : 'logging: sink refused a batch; dropped', {
      sink: this.sink.name, records: n, status, error: (error as Error)?.message,
    })
    this.settleWaiters()
  }

  private noteDrop(n: number): void {
    this.unreportedDrops += n
    const t = this.now()
    if (t - this.lastDropWarn < DROP_WARN_INTERVAL_MS) return
    this.lastDropWarn = t
    this.logger.warn('logging: buffer full, oldest records dropped', {
      sink: this.sink.name, dropped: this.unreportedDrops, droppedTotal: this.dropped, maxBuffer: this.maxBuffer,
    })
    this.unreportedDrops = 0
  }

  private warnFailure(error: unknown): void {
    const t = this.now()
    if (t - this.lastFailWarn < DROP_WARN_INTERVAL_MS) return
    this.lastFailWarn = t
    this.logger.warn('logging: sink send failed; retrying', {
      sink: this.sink.name, status: error instanceof SinkError ? error.status : undefined, error: (error as Error)?.message,
      failedSends: this.failedSends, buffered: this.waiting.length + (this.batch?.length ?? 0),
    })
  }

  private settleWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.left >= this.waiters[i]!.until) this.release(this.waiters[i]!)
    }
  }

  private release(w: FlushWaiter): void {
    const i = this.waiters.indexOf(w)
    if (i === -1) return
    this.waiters.splice(i, 1)
    clearTimeout(w.timer)
    w.resolve()
  }
}
