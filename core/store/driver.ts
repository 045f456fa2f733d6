/**
 * The small interface the shared SQL store (core/store/sql.ts) runs over. A driver is one database engine seen
 * through one connection pool (PostgreSQL) or one connection (SQLite, inside its worker thread).
 *
 * SQL is written once with `?` placeholders; a driver that needs `$1..$n` converts it (once per statement text).
 * Rows come back as plain objects keyed by column name; JSON columns may come back parsed (pg's jsonb) or as text
 * (SQLite), so readers go through `parseJson`.
 */

export type SqlParam = string | number | null

export type Row = Record<string, unknown>

export interface SqlExecutor {
  query(sql: string, params?: readonly SqlParam[]): Promise<Row[]>
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres'
  /**
   * Run `fn` in one transaction on one connection; commit when it resolves, roll back when it throws. SQLite takes
   * the write lock up front (BEGIN IMMEDIATE), so a read-then-write never fails on a lock upgrade.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>
  /**
   * Run `fn` on one connection while holding the cross-process schema lock, outside any transaction on PostgreSQL
   * (CREATE INDEX CONCURRENTLY refuses one) and inside BEGIN IMMEDIATE on SQLite.
   */
  exclusive<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** A unique index refused a row; `column` names the first column of that index. Drivers throw it, sql.ts maps it. */
export class UniqueViolation extends Error {
  readonly column: string
  constructor(column: string, opts?: { cause?: unknown }) {
    super(`duplicate value for ${column}`, opts)
    this.name = 'UniqueViolation'
    this.column = column
  }
}

/** A JSON column's value: pg hands jsonb back parsed, SQLite as text. */
export function parseJson(value: unknown): any {
  return typeof value === 'string' ? JSON.parse(value) : value
}

/**
 * Parameters without U+0000. PostgreSQL text cannot hold it (and jsonb refuses its escape, see rows.ts toJson), so a
 * stray NUL in a request's `user` or metadata would fail its whole spend batch on every retry. Both drivers drop it,
 * so the two backends store, and look up, the same values. Returns `params` itself when there is none (the norm).
 */
export function withoutNul(params: readonly SqlParam[]): readonly SqlParam[] {
  for (let i = 0; i < params.length; i++) {
    const v = params[i]
    if (typeof v === 'string' && v.includes('\0')) {
      return params.map((p) => (typeof p === 'string' ? p.replaceAll('\0', '') : p))
    }
  }
  return params
}

const placeholders = new Map<string, string>()

/**
 * `?` -> `$1..$n`, cached per statement text (the texts are a fixed set built by sql.ts, so the cache stays small).
 * The store's SQL has no `?` inside literals, so a plain scan is enough.
 */
export function toNumberedPlaceholders(sql: string): string {
  let out = placeholders.get(sql)
  if (out === undefined) {
    let n = 0
    out = sql.replace(/\?/g, () => `$${++n}`)
    placeholders.set(sql, out)
  }
  return out
}
