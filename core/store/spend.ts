/**
 * Spend: the call log (sy_spend_logs), the increments it carries to keys, teams, users and end users, and the daily
 * totals (sy_daily_spend), all in one transaction per batch.
 *
 * Idempotent by request_id: rows are inserted ON CONFLICT DO NOTHING and only the rows actually inserted add to
 * spend. Each entity gets one UPDATE per batch with its summed increment, never one per row (a hot key would
 * otherwise be rewritten once per call). Every batch touches rows in one global order (spend logs, then keys with
 * their model rows, teams, users, end users, daily totals, each sorted by id), so two replicas writing at once on
 * PostgreSQL wait for each other instead of deadlocking.
 */
import type { DailySpendQuery, DailySpendRow, SpendLogQuery, SpendLogRow, Store } from '../store.js'
import { ENTITY_TABLES } from './schema.js'
import { parseJson, type Row, type SqlDriver, type SqlExecutor, type SqlParam } from './driver.js'
import { columnsOf, isDateOnly, splitRecord, toIso, toJson } from './rows.js'

const LOG_COLUMNS = [
  'request_id', 'call_type', 'api_key', 'key_alias', 'team_id', 'user_id', 'end_user', 'model', 'model_group',
  'model_id', 'custom_llm_provider', 'api_base', 'prompt_tokens', 'completion_tokens', 'total_tokens',
  'cached_tokens', 'reasoning_tokens', 'spend', 'cost_source', 'start_time', 'end_time', 'status', 'ttft_ms',
  'request_tags', 'metadata', 'error',
] as const

/** Rows per INSERT: 50 x 26 parameters stays far below both engines' limits (SQLite 32766, PostgreSQL 65535). */
const CHUNK_ROWS = 50
const DEFAULT_LOG_LIMIT = 100
const MAX_LOG_LIMIT = 10_000
const DAY_MS = 86_400_000

const LOG_SELECT = `SELECT ${LOG_COLUMNS.join(', ')} FROM sy_spend_logs`
const DAILY_COLUMNS = 'date, entity, entity_id, model_group, spend, prompt_tokens, completion_tokens, requests, failed_requests'
const DAILY_UPSERT = `INSERT INTO sy_daily_spend (${DAILY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ` +
  'ON CONFLICT (date, entity, entity_id, model_group) DO UPDATE SET spend = sy_daily_spend.spend + excluded.spend, ' +
  'prompt_tokens = sy_daily_spend.prompt_tokens + excluded.prompt_tokens, ' +
  'completion_tokens = sy_daily_spend.completion_tokens + excluded.completion_tokens, ' +
  'requests = sy_daily_spend.requests + excluded.requests, failed_requests = sy_daily_spend.failed_requests + excluded.failed_requests'
const KEY_ADD = 'UPDATE sy_keys SET spend = spend + ? WHERE token = ? RETURNING token'
const KEY_MODEL_ADD = 'INSERT INTO sy_key_model_spend (token, model, spend) VALUES (?, ?, ?) ' +
  'ON CONFLICT (token, model) DO UPDATE SET spend = sy_key_model_spend.spend + excluded.spend'
const TEAM_ADD = 'UPDATE sy_teams SET spend = spend + ? WHERE team_id = ?'
const USER_ADD = 'UPDATE sy_users SET spend = spend + ? WHERE user_id = ?'
const END_USER_COLUMNS = columnsOf(ENTITY_TABLES.end_user)
// A request's `user` creates its end user on first spend, as LiteLLM does.
const END_USER_ADD = `INSERT INTO sy_end_users (${END_USER_COLUMNS.join(', ')}) VALUES (${END_USER_COLUMNS.map(() => '?').join(', ')}) ` +
  'ON CONFLICT (user_id) DO UPDATE SET spend = sy_end_users.spend + excluded.spend'

const insertSql = new Map<number, string>()

function insertLogs(rows: number): string {
  let sql = insertSql.get(rows)
  if (!sql) {
    const tuple = `(${LOG_COLUMNS.map(() => '?').join(', ')})`
    sql = `INSERT INTO sy_spend_logs (${LOG_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, () => tuple).join(', ')} ` +
      'ON CONFLICT (request_id) DO NOTHING RETURNING request_id'
    insertSql.set(rows, sql)
  }
  return sql
}

function num(v: unknown): number {
  const n = Number(v)
  return Number.isFinite(n) ? n : 0
}

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v)
}

function logParams(r: SpendLogRow, out: SqlParam[]): void {
  out.push(r.request_id, r.call_type, r.api_key ?? '', str(r.key_alias), str(r.team_id), str(r.user), str(r.end_user),
    r.model, r.model_group, str(r.model_id), str(r.custom_llm_provider), str(r.api_base), num(r.prompt_tokens),
    num(r.completion_tokens), num(r.total_tokens), num(r.cached_tokens), num(r.reasoning_tokens), num(r.spend),
    r.cost_source, toIso(r.startTime, 'startTime')!, toIso(r.endTime, 'endTime')!, r.status,
    r.ttft_ms === undefined || r.ttft_ms === null ? null : num(r.ttft_ms), toJson(r.request_tags ?? []),
    toJson(r.metadata ?? {}), str(r.error))
}

function toLogRow(row: Row): SpendLogRow {
  const out: SpendLogRow = {
    request_id: row.request_id as string, call_type: row.call_type as string, api_key: row.api_key as string,
    key_alias: str(row.key_alias), team_id: str(row.team_id), user: str(row.user_id), end_user: str(row.end_user),
    model: row.model as string, model_group: row.model_group as string, model_id: str(row.model_id),
    custom_llm_provider: str(row.custom_llm_provider), api_base: str(row.api_base),
    prompt_tokens: num(row.prompt_tokens), completion_tokens: num(row.completion_tokens), total_tokens: num(row.total_tokens),
    cached_tokens: num(row.cached_tokens), reasoning_tokens: num(row.reasoning_tokens), spend: num(row.spend),
    cost_source: row.cost_source as string, startTime: row.start_time as string, endTime: row.end_time as string,
    status: row.status as string, request_tags: parseJson(row.request_tags), metadata: parseJson(row.metadata),
    error: str(row.error),
  }
  if (row.ttft_ms !== null && row.ttft_ms !== undefined) out.ttft_ms = num(row.ttft_ms)
  return out
}

interface DailyTotal {
  key: [string, DailySpendRow['entity'], string, string]
  spend: number
  prompt: number
  completion: number
  requests: number
  failed: number
}

/** Per-entity sums of one batch's newly inserted rows. */
class Increments {
  keys = new Map<string, { spend: number; models: Map<string, number> }>()
  teams = new Map<string, number>()
  users = new Map<string, number>()
  endUsers = new Map<string, number>()
  daily = new Map<string, DailyTotal>()

  add(r: SpendLogRow): void {
    const spend = num(r.spend)
    const date = toIso(r.startTime, 'startTime')!.slice(0, 10)
    if (r.api_key) {
      let k = this.keys.get(r.api_key)
      if (!k) this.keys.set(r.api_key, (k = { spend: 0, models: new Map() }))
      k.spend += spend
      k.models.set(r.model_group, (k.models.get(r.model_group) ?? 0) + spend)
      this.day(r, date, 'key', r.api_key, spend)
    }
    if (r.team_id) {
      this.teams.set(r.team_id, (this.teams.get(r.team_id) ?? 0) + spend)
      this.day(r, date, 'team', r.team_id, spend)
    }
    if (r.user) {
      this.users.set(r.user, (this.users.get(r.user) ?? 0) + spend)
      this.day(r, date, 'user', r.user, spend)
    }
    if (r.end_user) {
      this.endUsers.set(r.end_user, (this.endUsers.get(r.end_user) ?? 0) + spend)
      this.day(r, date, 'end_user', r.end_user, spend)
    }
  }

  private day(r: SpendLogRow, date: string, entity: DailySpendRow['entity'], id: string, spend: number): void {
    const k = `${date}\u0000${entity}\u0000${id}\u0000${r.model_group}`
    let d = this.daily.get(k)
    if (!d) this.daily.set(k, (d = { key: [date, entity, id, r.model_group], spend: 0, prompt: 0, completion: 0, requests: 0, failed: 0 }))
    d.spend += spend
    d.prompt += num(r.prompt_tokens)
    d.completion += num(r.completion_tokens)
    d.requests += 1
    if (r.status === 'failure') d.failed += 1
  }
}

function sorted<V>(m: Map<string, V>): Array<[string, V]> {
  return [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

async function applyIncrements(tx: SqlExecutor, inc: Increments, now: () => number): Promise<void> {
  for (const [token, k] of sorted(inc.keys)) {
    if (k.spend === 0) continue
    const hit = await tx.query(KEY_ADD, [k.spend, token])
    if (!hit.length) continue // a deleted key: its log rows stay, its spend goes nowhere
    for (const [model, spend] of sorted(k.models)) if (spend !== 0) await tx.query(KEY_MODEL_ADD, [token, model, spend])
  }
  for (const [id, spend] of sorted(inc.teams)) if (spend !== 0) await tx.query(TEAM_ADD, [spend, id])
  for (const [id, spend] of sorted(inc.users)) if (spend !== 0) await tx.query(USER_ADD, [spend, id])
  for (const [id, spend] of sorted(inc.endUsers)) {
    const at = new Date(now()).toISOString()
    const { params } = splitRecord(ENTITY_TABLES.end_user, {
      user_id: id, alias: null, blocked: false, allowed_model_region: null, default_model: null, spend,
      max_budget: null, soft_budget: null, budget_duration: null, budget_reset_at: null, tpm_limit: null,
      rpm_limit: null, max_parallel_requests: null, budget_id: null, metadata: {}, created_at: at, updated_at: at,
    }, now)
    await tx.query(END_USER_ADD, params)
  }
  for (const [, d] of sorted(inc.daily)) {
    await tx.query(DAILY_UPSERT, [...d.key, d.spend, d.prompt, d.completion, d.requests, d.failed])
  }
}

export function createSpendLog(driver: SqlDriver, now: () => number): Pick<Store, 'writeSpend' | 'spendLogs' | 'dailySpend'> {
  const logQueries = new Map<string, string>()
  const dailyQueries = new Map<string, string>()

  return {
    async writeSpend(rows) {
      if (!rows.length) return
      const unique = new Map<string, SpendLogRow>()
      for (const r of rows) if (!unique.has(r.request_id)) unique.set(r.request_id, r)
      const batch = sorted(unique).map(([, r]) => r)
      const params: SqlParam[] = []
      await driver.transaction(async (tx) => {
        const inserted = new Set<string>()
        for (let i = 0; i < batch.length; i += CHUNK_ROWS) {
          const chunk = batch.slice(i, i + CHUNK_ROWS)
          params.length = 0
          for (const r of chunk) logParams(r, params)
          for (const r of await tx.query(insertLogs(chunk.length), params)) inserted.add(r.request_id as string)
        }
        if (!inserted.size) return
        const inc = new Increments()
        for (const r of batch) if (inserted.has(r.request_id)) inc.add(r)
        await applyIncrements(tx, inc, now)
      })
    },

    async spendLogs(q: SpendLogQuery) {
      const where: string[] = []
      const params: SqlParam[] = []
      const eq = (col: string, v: string | undefined) => {
        if (v !== undefined && v !== null) { where.push(`${col} = ?`); params.push(v) }
      }
      eq('api_key', q.api_key); eq('team_id', q.team_id); eq('user_id', q.user); eq('end_user', q.end_user)
      eq('request_id', q.request_id); eq('model_group', q.model_group); eq('status', q.status)
      if (q.start_date) { where.push('start_time >= ?'); params.push(toIso(q.start_date, 'start_date')) }
      if (q.end_date) {
        // A date alone covers that whole (UTC) day.
        if (isDateOnly(q.end_date)) { where.push('start_time < ?'); params.push(new Date(Date.parse(toIso(q.end_date, 'end_date')!) + DAY_MS).toISOString()) }
        else { where.push('start_time <= ?'); params.push(toIso(q.end_date, 'end_date')) }
      }
      const shape = where.join(' AND ')
      let sql = logQueries.get(shape)
      if (!sql) {
        sql = `${LOG_SELECT}${shape ? ` WHERE ${shape}` : ''} ORDER BY start_time DESC, request_id DESC LIMIT ? OFFSET ?`
        logQueries.set(shape, sql)
      }
      params.push(Math.min(Math.max(Math.trunc(q.limit ?? DEFAULT_LOG_LIMIT), 0), MAX_LOG_LIMIT), Math.max(Math.trunc(q.offset ?? 0), 0))
      return (await driver.query(sql, params)).map(toLogRow)
    },

    async dailySpend(q: DailySpendQuery) {
      const where: string[] = []
      const params: SqlParam[] = []
      if (q.entity) { where.push('entity = ?'); params.push(q.entity) }
      if (q.entity_id) { where.push('entity_id = ?'); params.push(q.entity_id) }
      if (q.model_group) { where.push('model_group = ?'); params.push(q.model_group) }
      if (q.start_date) { where.push('date >= ?'); params.push(toIso(q.start_date, 'start_date')!.slice(0, 10)) }
      if (q.end_date) { where.push('date <= ?'); params.push(toIso(q.end_date, 'end_date')!.slice(0, 10)) }
      const shape = where.join(' AND ')
      let sql = dailyQueries.get(shape)
      if (!sql) {
        sql = `SELECT ${DAILY_COLUMNS} FROM sy_daily_spend${shape ? ` WHERE ${shape}` : ''} ORDER BY date, entity, entity_id, model_group`
        dailyQueries.set(shape, sql)
      }
      return (await driver.query(sql, params)).map((r) => ({
        date: r.date as string, entity: r.entity as DailySpendRow['entity'], entity_id: r.entity_id as string,
        model_group: r.model_group as string, spend: num(r.spend), prompt_tokens: num(r.prompt_tokens),
        completion_tokens: num(r.completion_tokens), requests: num(r.requests), failed_requests: num(r.failed_requests),
      }))
    },
  }
}
