/**
 * The SQLite side of the shared SQL store: one better-sqlite3 connection behind the SqlDriver interface
 * (core/store/driver.ts). better-sqlite3 is synchronous, so this runs only inside the store's worker thread
 * (worker.ts), never on the gateway's event loop.
 */
import Database from 'better-sqlite3'
import { StoreUnavailableError } from '../../core/store.js'
import {
  UniqueViolation, withoutNul, type SqlDriver, type SqlExecutor, type SqlParam,
} from '../../core/store/driver.js'

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

/**
 * better-sqlite3 loads its native addon on the first `new Database`, not on import, so a package installed with
 * `npm install --ignore-scripts` imports fine and fails here. Say what is missing and how to fix it, instead of
 * bindings' list of thirteen paths it tried.
 */
function openDatabase(path: string, busyTimeoutMs: number): Database.Database {
  try {
    return new Database(path, { timeout: busyTimeoutMs })
  } catch (err) {
    const msg = (err as Error)?.message ?? ''
    if (!/Could not locate the bindings file|better_sqlite3\.node|NODE_MODULE_VERSION/.test(msg)) throw err
    throw new StoreUnavailableError(
      'store-sqlite needs better-sqlite3\'s native module, which is not built for this Node ' +
      `(${process.version}; installed with --ignore-scripts?): run \`npm rebuild better-sqlite3\`, or configure ` +
      `another store. ${msg.split('\n')[0]}`, { cause: err })
  }
}

export function openSqliteDriver(path: string, busyTimeoutMs: number): SqlDriver {
  const db = openDatabase(path, busyTimeoutMs)
  // Several processes share one file: wait for another writer's lock up to busy_timeout instead of failing at once.
  db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`)
  // WAL: readers never wait for the writer, and a commit is visible to other connections (other processes) at once.
  db.pragma('journal_mode = WAL')
  // NORMAL under WAL: durable against a crash of this process; only an OS crash can lose the last commits.
  db.pragma('synchronous = NORMAL')
  const statements = new Map<string, Database.Statement>()

  function run(sql: string, params: readonly SqlParam[] = []): Record<string, unknown>[] {
    try {
      let st = statements.get(sql)
      if (!st) statements.set(sql, (st = db.prepare(sql)))
      const values = withoutNul(params)
      if (st.reader) return st.all(values) as Record<string, unknown>[]
      st.run(values)
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
