/**
 * The SQLite worker thread: owns the one better-sqlite3 connection and runs the shared SQL store (core/store/sql.ts)
 * next to it, so every SQLite call (synchronous by design in better-sqlite3) blocks this thread, never the gateway's
 * event loop. The main thread sends `{ id, method, args }` for a Store method and gets `{ id, ok, value | error }`.
 *
 * Calls run one at a time, in arrival order: the connection is shared, so a transaction must not interleave with
 * another call's statements.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { createSqlStore, type SqlStore } from '../../core/store/sql.js'
import { StoreConflictError } from '../../core/store.js'
import { openSqliteDriver } from './driver.js'

export interface SqliteWorkerData {
  path: string
  busyTimeoutMs: number
}

export interface WorkerRequest {
  id: number
  method: string
  args: unknown[]
}

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; field?: string; code?: string } }

function serialise(err: unknown): Extract<WorkerReply, { ok: false }>['error'] {
  if (err instanceof StoreConflictError) return { name: err.name, message: err.message, field: err.field }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) }
  }
  return { name: 'Error', message: String(err) }
}

const port = parentPort!
const data = workerData as SqliteWorkerData
let store: SqlStore | null = null
let queue: Promise<void> = Promise.resolve()

async function handle(req: WorkerRequest): Promise<void> {
  try {
    store ??= createSqlStore(openSqliteDriver(data.path, data.busyTimeoutMs))
    const fn = (store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[req.method]
    if (typeof fn !== 'function') throw new TypeError(`unknown store method: ${req.method}`)
    const value = await fn.apply(store, req.args)
    port.postMessage({ id: req.id, ok: true, value } satisfies WorkerReply)
  } catch (err) {
    port.postMessage({ id: req.id, ok: false, error: serialise(err) } satisfies WorkerReply)
  }
}

port.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => handle(req))
})
