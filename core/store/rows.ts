/**
 * Records <-> table rows. A record's filter fields, spend, budget period and created_at go to their own columns;
 * everything else is kept as JSON in `data` and merged back on read, so LiteLLM fields the store does not know
 * round-trip untouched. A key's model_spend lives in sy_key_model_spend and is merged in by the caller.
 */
import type { EntityTable } from './schema.js'
import { parseJson, type Row, type SqlParam } from './driver.js'

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const HAS_ZONE = /(?:[zZ]|[+-]\d{2}:?\d{2})$/

/**
 * A timestamp as ISO-8601 UTC in Date#toISOString's fixed format, so text comparison is time comparison. A date or a
 * date-time without a zone is read as UTC (never the host's time zone).
 */
export function toIso(value: unknown, field: string): string | null {
  if (value === null || value === undefined) return null
  let ms: number
  if (typeof value === 'string') ms = Date.parse(DATE_ONLY.test(value) || HAS_ZONE.test(value) ? value : `${value}Z`)
  else if (typeof value === 'number') ms = value
  else if (value instanceof Date) ms = value.getTime()
  else ms = NaN
  if (!Number.isFinite(ms)) throw new TypeError(`${field}: not a timestamp: ${String(value)}`)
  return new Date(ms).toISOString()
}

export function isDateOnly(value: string): boolean {
  return DATE_ONLY.test(value)
}

function dropNul(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.includes('\0') ? value.replaceAll('\0', '') : value
}

/** JSON text for a JSON column, without U+0000 in its strings (see driver.ts withoutNul); the check is the fast path. */
export function toJson(value: unknown): string {
  const json = JSON.stringify(value)
  return json.includes('\\u0000') ? JSON.stringify(value, dropNul) : json
}

function text(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value)
}

/** The column list of a table, in the order `splitRecord` fills it. */
export function columnsOf(t: EntityTable): string[] {
  const cols = [t.id, ...t.columns]
  if (t.budgeted) cols.push('spend', 'budget_duration', 'budget_reset_at')
  cols.push('created_at', 'data')
  return cols
}

/** Fields that live in columns (or, for keys, model_spend in its own table), never in `data`. */
function columnFields(t: EntityTable): Set<string> {
  const s = new Set(columnsOf(t))
  s.delete('data')
  if (t.kind === 'key') s.add('model_spend')
  return s
}

const columnFieldsCache = new WeakMap<EntityTable, Set<string>>()

export interface SplitRecord {
  id: string
  /** Values in `columnsOf(t)` order, `data` last as JSON text. */
  params: SqlParam[]
}

/** A record -> the parameters of an INSERT in `columnsOf(t)` order. */
export function splitRecord(t: EntityTable, record: Record<string, unknown>, now: () => number): SplitRecord {
  const id = record[t.id]
  if (typeof id !== 'string' || id === '') throw new TypeError(`${t.kind}: '${t.id}' must be a non-empty string`)
  let skip = columnFieldsCache.get(t)
  if (!skip) columnFieldsCache.set(t, (skip = columnFields(t)))
  const data: Record<string, unknown> = {}
  for (const k in record) if (!skip.has(k) && record[k] !== undefined) data[k] = record[k]
  const params: SqlParam[] = [id]
  for (const c of t.columns) params.push(text(record[c]))
  if (t.budgeted) {
    const spend = Number(record.spend ?? 0)
    if (!Number.isFinite(spend)) throw new TypeError(`${t.kind}: spend must be a number`)
    params.push(spend, text(record.budget_duration), toIso(record.budget_reset_at, 'budget_reset_at'))
  }
  params.push(toIso(record.created_at ?? now(), 'created_at'), toJson(data))
  return { id, params }
}

/** A row (columns as `columnsOf(t)` names them; `data` as JSON text or parsed) -> the record. */
export function toRecord(t: EntityTable, row: Row, modelSpend?: Record<string, number>): any {
  // The parsed JSON is a fresh object per row: filled in place (spreading it first makes V8 rebuild the object
  // on every added field, ~6x slower on a get).
  const rec = parseJson(row.data)
  rec[t.id] = row[t.id]
  for (const c of t.columns) rec[c] = row[c] ?? null
  if (t.budgeted) {
    rec.spend = Number(row.spend)
    rec.budget_duration = row.budget_duration ?? null
    rec.budget_reset_at = row.budget_reset_at ?? null
  }
  rec.created_at = row.created_at
  if (t.kind === 'key') rec.model_spend = modelSpend ?? {}
  return rec
}

/** INSERT parameters back into a row object, to build the record a write produced without reading it again. */
export function paramsToRow(t: EntityTable, params: readonly SqlParam[]): Row {
  const row: Row = {}
  columnsOf(t).forEach((c, i) => { row[c] = params[i] })
  return row
}
