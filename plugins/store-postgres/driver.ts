/**
 * The PostgreSQL side of the shared SQL store: a `pg` Pool behind the SqlDriver interface (core/store/driver.ts).
 *
 * Outages are data, not crashes: a pooled connection that dies while idle is dropped by the pool ('error' event,
 * handled), one that dies in use fails its call with StoreUnavailableError and is discarded, and the next call
 * connects afresh, so the store works again once the server is back without restarting the gateway.
 */
import pg from 'pg'
import { StoreUnavailableError } from '../../core/store.js'
import { createSqlStore, type SqlStore } from '../../core/store/sql.js'
import {
  UniqueViolation, toNumberedPlaceholders, withoutNul, type Row, type SqlDriver, type SqlExecutor, type SqlParam,
} from '../../core/store/driver.js'

export interface PostgresStoreOptions {
  url: string
  /** Pool size (LiteLLM's database_connection_pool_limit). */
  max: number
  /** Give up connecting after this long, ms. */
  connectionTimeoutMs: number
  /** Server-side limit per statement, ms (0 = none). */
  statementTimeoutMs: number
  /** An idle pooled connection failed (server restart, network): logged, never thrown. */
  onIdleError?: (err: Error) => void
  now?: () => number
}

const INT8_OID = 20
/** bigint columns and count(*) as JS numbers: token and request counts stay far below 2^53. */
function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID) return Number
  return pg.types.getTypeParser(oid, format as 'text')
}

/** One fixed key for the schema lock, shared by every process migrating this database. */
const SCHEMA_LOCK_KEY = 7_339_012_024
const SCHEMA_LOCK_POLL_MS = 50
const SCHEMA_LOCK_WAIT_MS = 300_000

// Network errors, and the SQLSTATEs of a server going away or not yet accepting: 08xxx connection exceptions,
// 57P01-57P03 (admin/crash shutdown, cannot connect now), 53300 (too many connections).
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300'])
const UNAVAILABLE_MESSAGE = /Connection terminated|connection error|timeout exceeded when trying to connect|Client was closed|Connection closed|pool after calling end/i
const UNIQUE_KEY = /^Key \(([^,)]+)/

function unavailable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true
  return err instanceof Error && UNAVAILABLE_MESSAGE.test(err.message)
}

function mapError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || err instanceof UniqueViolation) return err
  const e = err as { code?: string; detail?: string; constraint?: string }
  if (e?.code === '23505') {
    const column = UNIQUE_KEY.exec(e.detail ?? '')?.[1] ?? e.constraint ?? 'id'
    return new UniqueViolation(column, { cause: err })
  }
  if (unavailable(err)) return new StoreUnavailableError(`postgres: ${(err as Error).message}`, { cause: err })
  return err
}

function noop(): void {}

export function createPgDriver(opts: PostgresStoreOptions): SqlDriver {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max,
    connectionTimeoutMillis: opts.connectionTimeoutMs,
    statement_timeout: opts.statementTimeoutMs,
    keepAlive: true,
    application_name: 'switchyard',
    types: { getTypeParser } as never,
  })
  pool.on('error', (err) => opts.onIdleError?.(err))
  const names = new Map<string, string>()
  let closed = false

  /** Parameterised statements are prepared once per connection under a stable name (planned once, not per call). */
  function statement(sql: string, params?: readonly SqlParam[]): pg.QueryConfig {
    const text = toNumberedPlaceholders(sql)
    if (!params || params.length === 0) return { text }
    let name = names.get(sql)
    if (!name) names.set(sql, (name = `sy_${names.size + 1}`))
    return { name, text, values: withoutNul(params) as SqlParam[] }
  }

  async function run(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly SqlParam[]): Promise<Row[]> {
    try {
      return (await client.query(statement(sql, params))).rows
    } catch (err) {
      throw mapError(err)
    }
  }

  async function connect(): Promise<pg.PoolClient> {
    try {
      const client = await pool.connect()
      // A checked-out client has no pool listener: without ours, a connection dying between two statements would
      // be an unhandled 'error' event, which ends the process.
      client.on('error', noop)
      return client
    } catch (err) {
      throw mapError(err)
    }
  }

  function release(client: pg.PoolClient, discard: boolean): void {
    client.removeListener('error', noop)
    client.release(discard)
  }

  return {
    dialect: 'postgres',

    query: (sql, params) => run(pool, sql, params),

    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await connect()
      let discard = false
      try {
        await run(client, 'BEGIN')
        const out = await fn({ query: (sql, params) => run(client, sql, params) })
        await run(client, 'COMMIT')
        return out
      } catch (err) {
        discard = err instanceof StoreUnavailableError
        if (!discard) await client.query('ROLLBACK').catch(() => { discard = true })
        throw err
      } finally {
        release(client, discard)
      }
    },

    async exclusive<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await connect()
      try {
        // Index builds on big tables may outlast the per-statement limit.
        await run(client, 'SET statement_timeout = 0')
        // Poll rather than block in pg_advisory_lock: a session blocked there holds a snapshot, and the holder's
        // CREATE INDEX CONCURRENTLY waits for every older snapshot to go away, a deadlock.
        const deadline = Date.now() + SCHEMA_LOCK_WAIT_MS
        while (!(await run(client, 'SELECT pg_try_advisory_lock(?) AS ok', [SCHEMA_LOCK_KEY]))[0]?.ok) {
          if (Date.now() > deadline) throw new StoreUnavailableError('postgres: another process has held the schema lock for 5 minutes')
          await new Promise((r) => setTimeout(r, SCHEMA_LOCK_POLL_MS * (0.5 + Math.random())))
        }
        try {
          return await fn({ query: (sql, params) => run(client, sql, params) })
        } finally {
          await run(client, 'SELECT pg_advisory_unlock(?)', [SCHEMA_LOCK_KEY]).catch(noop)
        }
      } finally {
        // Session settings were changed: this connection does not go back to the pool.
        release(client, true)
      }
    },

    async close() {
      if (!closed) {
        closed = true
        await pool.end()
      }
    },
  }
}

export function createPostgresStore(opts: PostgresStoreOptions): SqlStore {
  return createSqlStore(createPgDriver(opts), opts.now ? { now: opts.now } : {})
}
