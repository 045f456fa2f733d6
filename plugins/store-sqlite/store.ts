/**
 * The main-thread side of the SQLite store: a `Store` whose every method is one message to the worker thread that
 * owns the connection (worker.ts), so no SQLite I/O runs on the gateway's event loop.
 *
 * A worker that dies (crash, out of memory, terminate) rejects its calls in flight with StoreUnavailableError and is
 * replaced by a new one on the next call; the schema is already in place, so the new worker just reopens the file.
 */
import { Worker } from 'node:worker_threads'
import { StoreConflictError, StoreUnavailableError, type Store } from '../../core/store.js'
import type { SqliteWorkerData, WorkerReply, WorkerRequest } from './worker.js'

// From dist/ the worker is worker.js and plain node runs it. Under tsx (tests, `tsx core/cli.ts`) it is worker.ts,
// and Node 20 does not apply a `--import tsx` given in a Worker's execArgv before loading its entry file, so a
// two-line bootstrap registers tsx in the thread first, then imports the worker.
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const WORKER_URL = new URL(FROM_SOURCE ? './worker.ts' : './worker.js', import.meta.url)

function startWorker(data: SqliteWorkerData): Worker {
  // execArgv [] rather than the process's own: flags such as --input-type or -e are meant for the main entry and
  // break the worker's, and it needs none.
  if (!FROM_SOURCE) return new Worker(WORKER_URL, { workerData: data, execArgv: [] })
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`
  return new Worker(bootstrap, { eval: true, workerData: data, execArgv: [] })
}

export interface SqliteStoreOptions {
  /** Absolute path of the database file. */
  path: string
  /** How long a call waits for another connection's write lock, ms. */
  busyTimeoutMs: number
}

function revive(e: Extract<WorkerReply, { ok: false }>['error']): Error {
  if (e.name === 'StoreConflictError') return new StoreConflictError(e.field ?? 'id', e.message)
  if (e.name === 'StoreUnavailableError') return new StoreUnavailableError(e.message)
  const err = e.name === 'TypeError' ? new TypeError(e.message) : e.name === 'RangeError' ? new RangeError(e.message) : new Error(e.message)
  if (err.name !== e.name) Object.defineProperty(err, 'name', { value: e.name })
  if (e.code) Object.assign(err, { code: e.code })
  return err
}

/** One worker and the calls waiting on it. */
class Channel {
  readonly worker: Worker
  dead = false
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  private nextId = 1

  constructor(data: SqliteWorkerData) {
    this.worker = startWorker(data)
    // Idle, the worker must not keep the process alive; with calls in flight it must (see call()).
    this.worker.unref()
    this.worker.on('message', (reply: WorkerReply) => this.settle(reply))
    this.worker.on('error', (err) => this.fail(err))
    this.worker.on('exit', (code) => this.fail(new Error(`worker exited with code ${code}`)))
  }

  call(method: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++
      if (this.pending.size === 0) this.worker.ref()
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage({ id, method, args } satisfies WorkerRequest)
    })
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id)
    if (!p) return
    this.pending.delete(reply.id)
    if (this.pending.size === 0) this.worker.unref()
    if (reply.ok) p.resolve(reply.value)
    else p.reject(revive(reply.error))
  }

  private fail(cause: unknown): void {
    this.dead = true
    const err = new StoreUnavailableError(`sqlite worker stopped: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  private channel: Channel | null = null
  private closed = false

  constructor(private readonly options: SqliteStoreOptions) {}

  /** The current worker thread, null before the first call or after it died (diagnostics and tests). */
  get worker(): Worker | null {
    return this.channel && !this.channel.dead ? this.channel.worker : null
  }

  private call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('sqlite store is closed'))
    if (!this.channel || this.channel.dead) {
      this.channel = new Channel({ path: this.options.path, busyTimeoutMs: this.options.busyTimeoutMs })
    }
    return this.channel.call(method, args) as Promise<T>
  }

  open(): Promise<void> {
    return this.call('open', [])
  }

  get: Store['get'] = (kind, id) => this.call('get', [kind, id])
  list: Store['list'] = (kind, query) => this.call('list', [kind, query])
  insert: Store['insert'] = (kind, record) => this.call('insert', [kind, record])
  update: Store['update'] = (kind, id, patch) => this.call('update', [kind, id, patch])
  upsert: Store['upsert'] = (kind, record) => this.call('upsert', [kind, record])
  delete: Store['delete'] = (kind, id) => this.call('delete', [kind, id])
  writeSpend: Store['writeSpend'] = (rows) => this.call('writeSpend', [rows])
  spendLogs: Store['spendLogs'] = (query) => this.call('spendLogs', [query])
  dailySpend: Store['dailySpend'] = (query) => this.call('dailySpend', [query])
  dueForReset: Store['dueForReset'] = (now) => this.call('dueForReset', [now])
  ping: Store['ping'] = () => this.call('ping', [])
  putResponse: NonNullable<Store['putResponse']> = (r) => this.call('putResponse', [r])
  getResponse: NonNullable<Store['getResponse']> = (id) => this.call('getResponse', [id])
  deleteResponse: NonNullable<Store['deleteResponse']> = (id) => this.call('deleteResponse', [id])

  /** See SqlStore.resetSpend: `models` names a key's model_spend entries to zero with it. */
  resetSpend(kind: Parameters<Store['resetSpend']>[0], id: string, expected: string | null, nextResetAt: string | null,
    models?: readonly string[]): Promise<boolean> {
    return this.call('resetSpend', models ? [kind, id, expected, nextResetAt, [...models]] : [kind, id, expected, nextResetAt])
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const ch = this.channel
    this.channel = null
    if (!ch || ch.dead) return
    try {
      await ch.call('close', [])
    } finally {
      await ch.worker.terminate()
    }
  }
}
