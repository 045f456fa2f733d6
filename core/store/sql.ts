/**
 * The Store contract (core/store.ts) written once in SQL over a small driver (core/store/driver.ts), for SQLite (in
 * its worker thread) and PostgreSQL alike. Entity methods and the budget rollover live here; the spend log and daily
 * totals in spend.ts; tables and migrations in schema.ts.
 *
 * Statement texts are built once per kind when the store is created, not per call.
 */
import {
  StoreConflictError, type EntityKind, type ListQuery, type ListResult, type RecordOf, type Store,
} from '../store.js'
import { UniqueViolation, parseJson, type Row, type SqlDriver, type SqlExecutor, type SqlParam } from './driver.js'
import { BUDGETED_KINDS, ENTITY_TABLES, migrate, type EntityTable } from './schema.js'
import { columnsOf, paramsToRow, splitRecord, toIso, toRecord } from './rows.js'
import { createSpendLog } from './spend.js'

export interface SqlStoreOptions {
  /** Clock for created_at defaults and migration stamps (ms since the epoch). Default Date.now. */
  now?: () => number
}

/** The Store, plus resetSpend's optional list of a key's model_spend entries to zero (see resetSpend). */
export interface SqlStore extends Store {
  resetSpend(kind: 'key' | 'team' | 'user' | 'end_user' | 'budget', id: string, expected: string | null,
    nextResetAt: string | null, models?: readonly string[]): Promise<boolean>
}

const DEFAULT_LIMIT = 100
const MAX_LIMIT = 1000

interface Statements {
  t: EntityTable
  cols: string
  get: string
  getForUpdate: string
  insert: string
  /** UPDATE every column but spend (spend moves only by increments unless an admin sets it), then the id. */
  update: string
  updateCols: string[]
  updateWithSpend: string
  updateWithSpendCols: string[]
  upsert: string
  delete: string
  reset: string
  due: string
}

/** The spend-log column naming each budgeted kind's entity. */
const LOG_COLUMN: Partial<Record<EntityTable['kind'], string>> = { key: 'api_key', team: 'team_id', user: 'user_id', end_user: 'end_user' }

/**
 * What a budget period starts with when it rolls over: not 0, but the spend of the calls that already ended in the
 * new period (rows written between the boundary and the sweep that runs this), so the persisted spend agrees with
 * the ledger's, which rolled over at the boundary itself. Parameters: entity id, the boundary (twice). The
 * start_time bound (a day before the boundary) keeps the scan on the (entity, start_time) index.
 */
function newPeriodSpend(kind: EntityTable['kind']): string {
  const col = LOG_COLUMN[kind]
  if (!col) return '0'
  return `(SELECT COALESCE(SUM(l.spend), 0) FROM sy_spend_logs l WHERE l.${col} = ? AND l.start_time >= ? AND l.end_time >= ?)`
}

function statements(t: EntityTable, pg: boolean): Statements {
  const all = columnsOf(t)
  const cols = all.join(', ')
  const marks = all.map(() => '?').join(', ')
  const settable = all.filter((c) => c !== t.id && c !== 'spend')
  const set = (names: string[]) => names.map((c) => `${c} = ?`).join(', ')
  // upsert keeps the existing row's spend and created_at: spend only moves by increments, a record is created once.
  const upsertSet = settable.filter((c) => c !== 'created_at').map((c) => `${c} = excluded.${c}`).join(', ')
  return {
    t,
    cols,
    get: `SELECT ${cols} FROM ${t.table} WHERE ${t.id} = ?`,
    getForUpdate: `SELECT ${cols} FROM ${t.table} WHERE ${t.id} = ?${pg ? ' FOR UPDATE' : ''}`,
    insert: `INSERT INTO ${t.table} (${cols}) VALUES (${marks})`,
    update: `UPDATE ${t.table} SET ${set(settable)} WHERE ${t.id} = ?`,
    updateCols: settable,
    updateWithSpend: `UPDATE ${t.table} SET ${set([...settable, 'spend'])} WHERE ${t.id} = ?`,
    updateWithSpendCols: [...settable, 'spend'],
    upsert: `INSERT INTO ${t.table} (${cols}) VALUES (${marks}) ON CONFLICT (${t.id}) DO UPDATE SET ${upsertSet}`,
    delete: `DELETE FROM ${t.table} WHERE ${t.id} = ? RETURNING ${t.id}`,
    reset: `UPDATE ${t.table} SET spend = ${newPeriodSpend(t.kind)}, budget_reset_at = ? WHERE ${t.id} = ? ` +
      `AND budget_reset_at ${pg ? 'IS NOT DISTINCT FROM' : 'IS'} ? RETURNING budget_duration, data`,
    due: `SELECT ${t.id} AS id, budget_reset_at, budget_duration FROM ${t.table} WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= ?`,
  }
}

const MODEL_SPEND_OF = 'SELECT model, spend FROM sy_key_model_spend WHERE token = ?'
const MODEL_SPEND_INSERT = 'INSERT INTO sy_key_model_spend (token, model, spend) VALUES (?, ?, ?) ON CONFLICT (token, model) DO NOTHING'
const MODEL_SPEND_CLEAR = 'DELETE FROM sy_key_model_spend WHERE token = ?'
const MODEL_SPEND_ZERO = 'UPDATE sy_key_model_spend SET spend = 0 WHERE token = ? AND model = ?'

function modelSpendMap(rows: Row[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of rows) out[r.model as string] = Number(r.spend)
  return out
}

async function insertModelSpend(q: SqlExecutor, token: string, spend: unknown): Promise<void> {
  if (!spend || typeof spend !== 'object') return
  for (const [model, value] of Object.entries(spend as Record<string, unknown>)) {
    await q.query(MODEL_SPEND_INSERT, [token, model, Number(value) || 0])
  }
}

function conflict(kind: EntityKind, err: unknown): unknown {
  if (!(err instanceof UniqueViolation)) return err
  const what = kind === 'key' && err.column === 'token' ? 'a key with this token' : `a ${kind} with this ${err.column}`
  return new StoreConflictError(err.column, `${what} already exists`)
}

const RESPONSE_PUT = 'INSERT INTO sy_responses (id, owner, created_at, data) VALUES (?, ?, ?, ?) ' +
  'ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, created_at = excluded.created_at, data = excluded.data'

export function createSqlStore(driver: SqlDriver, opts: SqlStoreOptions = {}): SqlStore {
  const now = opts.now ?? Date.now
  const pg = driver.dialect === 'postgres'
  const S = Object.fromEntries(
    Object.values(ENTITY_TABLES).map((t) => [t.kind, statements(t, pg)]),
  ) as Record<EntityKind, Statements>
  const listSql = new Map<string, { rows: string; count: string; modelSpend: string }>()

  function sqlFor<K extends EntityKind>(kind: K): Statements {
    const s = S[kind]
    if (!s) throw new TypeError(`unknown entity kind: ${String(kind)}`)
    return s
  }

  async function read(q: SqlExecutor, s: Statements, sql: string, id: string): Promise<any> {
    const [row] = await q.query(sql, [id])
    if (!row) return null
    return toRecord(s.t, row, s.t.kind === 'key' ? modelSpendMap(await q.query(MODEL_SPEND_OF, [id])) : undefined)
  }

  function listStatements(s: Statements, fields: string[]) {
    const key = `${s.t.kind}|${fields.join('|')}`
    let out = listSql.get(key)
    if (!out) {
      const where = fields.length ? ` WHERE ${fields.map((f) => f.startsWith('!') ? `${f.slice(1)} IS NULL` : `${f} = ?`).join(' AND ')}` : ''
      const page = `FROM ${s.t.table}${where} ORDER BY created_at, ${s.t.id} LIMIT ? OFFSET ?`
      out = {
        rows: `SELECT ${s.cols} ${page}`,
        count: `SELECT count(*) AS n FROM ${s.t.table}${where}`,
        modelSpend: `SELECT token, model, spend FROM sy_key_model_spend WHERE token IN (SELECT token ${page})`,
      }
      listSql.set(key, out)
    }
    return out
  }

  const spend = createSpendLog(driver, now)

  const store: SqlStore = {
    kind: driver.dialect,

    async open() {
      await migrate(driver, now)
    },

    get(kind, id) {
      const s = sqlFor(kind)
      return read(driver, s, s.get, id)
    },

    async list<K extends EntityKind>(kind: K, query: ListQuery = {}): Promise<ListResult<RecordOf[K]>> {
      const s = sqlFor(kind)
      // Fields sorted so one filter combination is one statement text; '!' marks an IS NULL test.
      const fields: string[] = []
      const params: SqlParam[] = []
      for (const f of Object.keys(query.where ?? {}).sort()) {
        if (!s.t.columns.includes(f)) {
          throw new TypeError(`list ${kind}: cannot filter on '${f}' (filterable: ${s.t.columns.join(', ') || 'none'})`)
        }
        const v = query.where![f]
        if (v === undefined) continue
        if (v === null) fields.push(`!${f}`)
        else { fields.push(f); params.push(String(v)) }
      }
      const limit = Math.min(Math.max(Math.trunc(query.limit ?? DEFAULT_LIMIT), 0), MAX_LIMIT)
      const offset = Math.max(Math.trunc(query.offset ?? 0), 0)
      const sql = listStatements(s, fields)
      const page = [...params, limit, offset]
      const rows = await driver.query(sql.rows, page)
      const [count] = await driver.query(sql.count, params)
      let spends: Map<unknown, Record<string, number>> | undefined
      if (kind === 'key' && rows.length) {
        spends = new Map()
        for (const r of await driver.query(sql.modelSpend, page)) {
          let m = spends.get(r.token)
          if (!m) spends.set(r.token, (m = {}))
          m[r.model as string] = Number(r.spend)
        }
      }
      return {
        rows: rows.map((r) => toRecord(s.t, r, spends ? spends.get(r[s.t.id]) ?? {} : undefined)),
        total: Number(count?.n ?? 0),
      }
    },

    async insert(kind, record) {
      const s = sqlFor(kind)
      const { id, params } = splitRecord(s.t, record, now)
      try {
        await driver.transaction(async (tx) => {
          await tx.query(s.insert, params)
          if (kind === 'key') await insertModelSpend(tx, id, (record as Record<string, unknown>).model_spend)
        })
      } catch (err) {
        throw conflict(kind, err)
      }
    },

    async update(kind, id, patch) {
      const s = sqlFor(kind)
      const changes = patch as Record<string, unknown>
      try {
        return await driver.transaction(async (tx) => {
          const current = await read(tx, s, s.getForUpdate, id)
          if (!current) return null
          const next: Record<string, unknown> = { ...current }
          for (const k in changes) if (changes[k] !== undefined && k !== s.t.id) next[k] = changes[k]
          const row = paramsToRow(s.t, splitRecord(s.t, next, now).params)
          const withSpend = s.t.budgeted && changes.spend !== undefined
          const cols = withSpend ? s.updateWithSpendCols : s.updateCols
          await tx.query(withSpend ? s.updateWithSpend : s.update, [...cols.map((c) => row[c] as SqlParam), id])
          let modelSpend = current.model_spend
          if (kind === 'key' && changes.model_spend !== undefined) {
            // An admin setting model_spend replaces the rows (the one case spend is set rather than incremented).
            await tx.query(MODEL_SPEND_CLEAR, [id])
            await insertModelSpend(tx, id, changes.model_spend)
            modelSpend = modelSpendMap(await tx.query(MODEL_SPEND_OF, [id]))
          }
          return toRecord(s.t, row, modelSpend)
        })
      } catch (err) {
        throw conflict(kind, err)
      }
    },

    async upsert(kind, record) {
      const s = sqlFor(kind)
      const { id, params } = splitRecord(s.t, record, now)
      try {
        await driver.transaction(async (tx) => {
          await tx.query(s.upsert, params)
          // An existing key keeps its model_spend (spend moves only by increments); new entries are added.
          if (kind === 'key') await insertModelSpend(tx, id, (record as Record<string, unknown>).model_spend)
        })
      } catch (err) {
        throw conflict(kind, err)
      }
    },

    async delete(kind, id) {
      const s = sqlFor(kind)
      return driver.transaction(async (tx) => {
        const gone = await tx.query(s.delete, [id])
        if (kind === 'key') await tx.query(MODEL_SPEND_CLEAR, [id])
        return gone.length > 0
      })
    },

    writeSpend: spend.writeSpend,
    spendLogs: spend.spendLogs,
    dailySpend: spend.dailySpend,

    /**
     * Compare-and-set rollover. For a key, the model_spend entries zeroed are `models` when given, else those whose
     * model_max_budget time_period equals the key's budget_duration (their period is the key's period).
     */
    async resetSpend(kind, id, expected, nextResetAt, models) {
      const s = sqlFor(kind)
      if (!s.t.budgeted) throw new TypeError(`resetSpend: ${kind} has no spend`)
      const boundary = toIso(expected, 'expected')
      const dayBefore = boundary ? new Date(Date.parse(boundary) - 86_400_000).toISOString() : null
      const params = [
        ...(LOG_COLUMN[kind] ? [id, dayBefore ?? '', boundary ?? ''] : []), toIso(nextResetAt, 'nextResetAt'), id, boundary,
      ]
      return driver.transaction(async (tx) => {
        const [row] = await tx.query(s.reset, params)
        if (!row) return false
        if (kind === 'key') {
          let names = models
          if (!names) {
            const budgets = (parseJson(row.data).model_max_budget ?? {}) as Record<string, { time_period?: string | null }>
            names = Object.keys(budgets).filter((m) => budgets[m]?.time_period != null && budgets[m]?.time_period === row.budget_duration)
          }
          for (const m of [...names].sort()) await tx.query(MODEL_SPEND_ZERO, [id, m])
        }
        return true
      })
    },

    async dueForReset(nowIso) {
      const at = toIso(nowIso, 'now')
      const out: Array<{ kind: typeof BUDGETED_KINDS[number]; id: string; budget_reset_at: string; budget_duration: string }> = []
      for (const kind of BUDGETED_KINDS) {
        for (const r of await driver.query(S[kind].due, [at])) {
          out.push({ kind, id: r.id as string, budget_reset_at: r.budget_reset_at as string, budget_duration: (r.budget_duration as string | null) ?? '' })
        }
      }
      return out
    },

    async putResponse(r) {
      await driver.query(RESPONSE_PUT, [r.id, r.owner, r.created_at, JSON.stringify({ response: r.response, input: r.input })])
    },

    async getResponse(id) {
      const [row] = await driver.query('SELECT id, owner, created_at, data FROM sy_responses WHERE id = ?', [id])
      if (!row) return null
      const data = parseJson(row.data) as { response: Record<string, unknown>; input: Array<Record<string, unknown>> }
      return { id: row.id as string, owner: (row.owner as string | null) ?? null, created_at: row.created_at as string, response: data.response, input: data.input }
    },

    async deleteResponse(id) {
      const rows = await driver.query('DELETE FROM sy_responses WHERE id = ? RETURNING id', [id])
      return rows.length > 0
    },

    async ping() {
      await driver.query('SELECT 1')
    },

    close() {
      return driver.close()
    },
  }
  return store
}
