/**
 * The SQLite worker thread: owns the one better-sqlite3 connection and runs the shared SQL store (core/store/sql.ts)
 * next to it, so every SQLite call (synchronous by design in better-sqlite3) blocks this thread, never the gateway's
 * event loop. The main thread sends `{ id, method, args }` for a Store method and gets `{ id, ok, value | error }`.
 *
 * Calls run one at a time, in arrival order: the connection is shared, so a transaction must not interleave with
 * another call's statements.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { createSqlStore, type SqlStore } from '../../core/store/sql.js'
import { UniqueViolation, type SqlDriver, type SqlExecutor, type SqlParam } from '../../core/store/driver.js'
import { StoreConflictError, StoreUnavailableError } from '../../core/store.js'

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

// Lock contention past busy_timeout, a file that cannot be opened or read: the database is unavailable, not the call wrong.
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|PROTOCOL)/
const UNIQUE_COLUMN = /UNIQUE constraint failed: \w+\.(\w+)/

function mapError(err: unknown): unknown {
  const code = (err as { code?: unknown })?.code
  if (typeof code !== 'string') return err
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const column = UNIQUE_COLUMN.exec((err as Error).message)?.[1]
    if (column) return new UniqueViolation(column, { cause: err })
  }
  if (UNAVAILABLE.test(code)) return new StoreUnavailableError(`sqlite: ${(err as Error).message}`, { cause: err })
  return err
}

function openDriver(data: SqliteWorkerData): SqlDriver {
  const db = new Database(data.path, { timeout: data.busyTimeoutMs })
  // Several processes share one file: wait for another writer's lock up to busy_timeout instead of failing at once.
  db.pragma(`busy_timeout = ${Math.trunc(data.busyTimeoutMs)}`)
  // WAL: readers never wait for the writer, and a commit is visible to other connections (other processes) at once.
  db.pragma('journal_mode = WAL')
  // NORMAL under WAL: durable against a crash of this process; only an OS crash can lose the last commits.
  db.pragma('synchronous = NORMAL')
  const statements = new Map<string, Database.Statement>()

  function run(sql: string, params: readonly SqlParam[] = []): Record<string, unknown>[] {
    try {
      let st = statements.get(sql)
      if (!st) statements.set(sql, (st = db.prepare(sql)))
      if (st.reader) return st.all(params) as Record<string, unknown>[]
      st.run(params)
      return []
    } catch (err) {
      throw mapError(err)
    }
  }

  const exec: SqlExecutor = { query: async (sql, params) => run(sql, params) }

  async function transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    // IMMEDIATE: take the write lock up front; a deferred read-then-write fails on the upgrade without waiting.
    run('BEGIN IMMEDIATE')
    try {
      const out = await fn(exec)
      run('COMMIT')
      return out
    } catch (err) {
      if (db.inTransaction) run('ROLLBACK')
      throw err
    }
  }

  return {
    dialect: 'sqlite',
    query: exec.query,
    transaction,
    exclusive: transaction,
    async close() {
      db.close()
    },
  }
}

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
    store ??= createSqlStore(openDriver(data))
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
