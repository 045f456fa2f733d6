/**
 * An in-memory Store that keeps the whole contract of core/store.ts (conflicts, idempotent writeSpend, daily totals,
 * conditional resets), for tests of plugins that read and write through the store. Records are deep-copied in and
 * out, as a database would, so a caller mutating what it got back changes nothing stored.
 *
 *   const store = createMemoryStore()
 *   await startGateway(t, yaml, { plugins: [memoryStorePlugin(store)] })   // config names `store-memory`
 */
import { asValue } from 'awilix'
import { definePlugin, type GatewayPlugin } from '../../core/plugin.js'
import {
  ID_FIELD, FILTER_FIELDS, StoreConflictError,
  type DailySpendQuery, type DailySpendRow, type EntityKind, type KeyRecord, type ListQuery, type ListResult, type RecordOf,
  type SpendLogQuery, type SpendLogRow, type Store,
} from '../../core/store.js'

/** Fields that must be unique (when set) besides the id, per kind, as the SQL stores index them (team_alias is not). */
const UNIQUE: Partial<Record<EntityKind, string>> = { key: 'key_alias' }
/** The spend log column that names each budgeted kind (budget rows have none). */
const LOG_FIELD: Partial<Record<ResetKind, keyof SpendLogRow>> = { key: 'api_key', team: 'team_id', user: 'user', end_user: 'end_user' }
const DAY_MS = 86_400_000
const LIST_DEFAULT = 100
const LIST_MAX = 1000
const LOGS_DEFAULT = 100
const LOGS_MAX = 10_000

type Row = Record<string, unknown>
type ResetKind = 'key' | 'team' | 'user' | 'end_user' | 'budget'
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const HAS_ZONE = /(?:[zZ]|[+-]\d{2}:?\d{2})$/

export interface MemoryStore extends Store {
  /** Calls made, by method name, for tests that check what reached the store. */
  readonly calls: Record<string, number>
}

/** `now` is the clock for records the store creates itself (end users on first spend). */
export function createMemoryStore(opts: { now?: () => number } = {}): MemoryStore {
  const now = opts.now ?? Date.now
  const tables = new Map<EntityKind, Map<string, Row>>()
  for (const k of Object.keys(ID_FIELD) as EntityKind[]) tables.set(k, new Map())
  const logs = new Map<string, SpendLogRow>()
  const daily = new Map<string, DailySpendRow>()
  const calls: Record<string, number> = {}
  let opened = false
  const count = (m: string) => void (calls[m] = (calls[m] ?? 0) + 1)
  const table = (kind: EntityKind) => {
    const t = tables.get(kind)
    if (!t) throw new Error(`unknown entity kind ${String(kind)}`)
    return t
  }
  const clone = <T>(v: T): T => structuredClone(v)

  function checkUnique(kind: EntityKind, record: Row, selfId: string | null): void {
    const field = UNIQUE[kind]
    if (!field) return
    const v = record[field]
    if (v === null || v === undefined) return
    for (const [id, r] of table(kind)) {
      if (id !== selfId && r[field] === v) throw new StoreConflictError(field, `${kind} with ${field}=${String(v)} already exists`)
    }
  }

  function matches(r: Row, where: Record<string, string | null> | undefined, kind: EntityKind): boolean {
    if (!where) return true
    for (const [f, v] of Object.entries(where)) {
      if (!(FILTER_FIELDS[kind] as readonly string[]).includes(f)) throw new TypeError(`list ${kind}: cannot filter on '${f}'`)
      if (v === undefined) continue
      const have = r[f] ?? null
      // Filter columns are text in the SQL stores.
      if (v === null ? have !== null : have === null || String(have) !== String(v)) return false
    }
    return true
  }

  /** A record's id, as the SQL stores require it: a non-empty string. */
  function idOf(kind: EntityKind, r: Row): string {
    const id = r[ID_FIELD[kind]]
    if (typeof id !== 'string' || id === '') throw new TypeError(`${kind}: '${ID_FIELD[kind]}' must be a non-empty string`)
    return id
  }

  /** ISO-8601 UTC, as the SQL stores normalise timestamps (a date or a zone-less date-time is UTC). */
  function iso(v: string): string {
    return new Date(DATE_ONLY.test(v) || HAS_ZONE.test(v) ? v : `${v}Z`).toISOString()
  }

  const byCreation = (a: Row, b: Row, kind: EntityKind) => {
    const ca = String(a.created_at ?? '')
    const cb = String(b.created_at ?? '')
    if (ca !== cb) return ca < cb ? -1 : 1
    const ia = String(a[ID_FIELD[kind]])
    const ib = String(b[ID_FIELD[kind]])
    return ia < ib ? -1 : ia > ib ? 1 : 0
  }

  function addDaily(date: string, entity: DailySpendRow['entity'], id: string, row: SpendLogRow): void {
    const k = `${date}|${entity}|${id}|${row.model_group}`
    const d = daily.get(k) ?? {
      date, entity, entity_id: id, model_group: row.model_group, spend: 0, prompt_tokens: 0, completion_tokens: 0, requests: 0, failed_requests: 0,
    }
    d.spend += row.spend
    d.prompt_tokens += row.prompt_tokens
    d.completion_tokens += row.completion_tokens
    d.requests += 1
    if (row.status === 'failure') d.failed_requests += 1
    daily.set(k, d)
  }

  /** A record as a SQL store keeps it: a copy, timestamps in ISO, spend a number, a key's model_spend a map. */
  function stored(kind: EntityKind, record: Row): Row {
    const r = clone(record)
    for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k]
    r.created_at = iso(String(r.created_at ?? new Date(now()).toISOString()))
    if (kind !== 'model') {
      const spend = Number(r.spend ?? 0)
      if (!Number.isFinite(spend)) throw new TypeError(`${kind}: spend must be a number`)
      r.spend = spend
      r.budget_duration ??= null
      r.budget_reset_at = typeof r.budget_reset_at === 'string' ? iso(r.budget_reset_at) : null
    }
    if (kind === 'key') r.model_spend = { ...((r.model_spend ?? {}) as object) }
    return r
  }

  function newEndUser(id: string): Row {
    const ts = new Date(now()).toISOString()
    return {
      user_id: id, alias: null, blocked: false, allowed_model_region: null, default_model: null,
      max_budget: null, soft_budget: null, spend: 0, budget_duration: null, budget_reset_at: null, tpm_limit: null, rpm_limit: null,
      max_parallel_requests: null, budget_id: null, metadata: {}, created_at: ts, updated_at: ts,
    }
  }

  const store: MemoryStore = {
    kind: 'memory',
    calls,
    async open() {
      count('open')
      opened = true
    },
    async get(kind, id) {
      count('get')
      const r = table(kind).get(id)
      return r ? (clone(r) as never) : null
    },
    async list<K extends EntityKind>(kind: K, query: ListQuery = {}): Promise<ListResult<RecordOf[K]>> {
      count('list')
      const rows = [...table(kind).values()].filter((r) => matches(r, query.where, kind)).sort((a, b) => byCreation(a, b, kind))
      const offset = Math.max(0, Math.trunc(query.offset ?? 0))
      const limit = Math.min(Math.max(0, Math.trunc(query.limit ?? LIST_DEFAULT)), LIST_MAX)
      return { rows: clone(rows.slice(offset, offset + limit)) as RecordOf[K][], total: rows.length }
    },
    async insert(kind, record) {
      count('insert')
      const r = stored(kind, record as unknown as Row)
      const id = idOf(kind, r)
      if (table(kind).has(id)) throw new StoreConflictError(ID_FIELD[kind], `${kind} ${id} already exists`)
      checkUnique(kind, r, null)
      table(kind).set(id, r)
    },
    async update(kind, id, patch) {
      count('update')
      const r = table(kind).get(id)
      if (!r) return null
      const next: Row = { ...r }
      for (const [k, v] of Object.entries(clone(patch as Row))) if (v !== undefined && k !== ID_FIELD[kind]) next[k] = v
      Object.assign(next, stored(kind, next))
      checkUnique(kind, next, id)
      table(kind).set(id, next)
      return clone(next) as never
    },
    async upsert(kind, record) {
      count('upsert')
      const r = stored(kind, record as unknown as Row)
      const id = idOf(kind, r)
      checkUnique(kind, r, id)
      const before = table(kind).get(id)
      if (!before) return void table(kind).set(id, r)
      // An existing record keeps its spend and created_at (spend moves only by increments); a key keeps its
      // model_spend entries and gains new ones.
      const next: Row = { ...r, spend: before.spend, created_at: before.created_at }
      if (kind === 'key') next.model_spend = { ...((r.model_spend ?? {}) as object), ...((before.model_spend ?? {}) as object) }
      table(kind).set(id, next)
    },
    async delete(kind, id) {
      count('delete')
      return table(kind).delete(id)
    },
    async writeSpend(rows) {
      count('writeSpend')
      for (const row of rows) {
        if (logs.has(row.request_id)) continue
        logs.set(row.request_id, { ...clone(row), startTime: iso(row.startTime), endTime: iso(row.endTime) })
        const date = iso(row.startTime).slice(0, 10)
        if (row.api_key) {
          const k = table('key').get(row.api_key) as (Row & Partial<KeyRecord>) | undefined
          // A deleted key's rows stay; its spend goes nowhere.
          if (k && row.spend !== 0) {
            k.spend = (k.spend ?? 0) + row.spend
            const ms = { ...(k.model_spend ?? {}) }
            ms[row.model_group] = (ms[row.model_group] ?? 0) + row.spend
            k.model_spend = ms
          }
          addDaily(date, 'key', row.api_key, row)
        }
        for (const [kind, id] of [['team', row.team_id], ['user', row.user]] as const) {
          if (!id) continue
          const r = table(kind).get(id)
          if (r) r.spend = Number(r.spend ?? 0) + row.spend
          addDaily(date, kind, id, row)
        }
        if (row.end_user) {
          // A request's `user` creates its end user on first spend, as LiteLLM does.
          const users = table('end_user')
          const e = users.get(row.end_user) ?? newEndUser(row.end_user)
          e.spend = Number(e.spend ?? 0) + row.spend
          users.set(row.end_user, e)
          addDaily(date, 'end_user', row.end_user, row)
        }
      }
    },
    async spendLogs(q: SpendLogQuery) {
      count('spendLogs')
      const lo = q.start_date ? iso(q.start_date) : null
      // A date alone covers that whole (UTC) day.
      const hi = q.end_date ? (DATE_ONLY.test(q.end_date) ? new Date(Date.parse(iso(q.end_date)) + DAY_MS).toISOString() : iso(q.end_date)) : null
      const hiOpen = !!q.end_date && DATE_ONLY.test(q.end_date)
      const eq: Array<[keyof SpendLogRow, string | undefined]> = [
        ['api_key', q.api_key], ['team_id', q.team_id], ['user', q.user], ['end_user', q.end_user], ['request_id', q.request_id],
        ['model_group', q.model_group], ['status', q.status],
      ]
      const rows = [...logs.values()].filter((r) => {
        for (const [f, v] of eq) if (v !== undefined && v !== null && r[f] !== v) return false
        if (lo && r.startTime < lo) return false
        if (hi && (hiOpen ? r.startTime >= hi : r.startTime > hi)) return false
        return true
      })
      rows.sort((a, b) => (a.startTime !== b.startTime ? (a.startTime < b.startTime ? 1 : -1) : a.request_id < b.request_id ? 1 : a.request_id > b.request_id ? -1 : 0))
      const offset = Math.max(0, Math.trunc(q.offset ?? 0))
      const limit = Math.min(Math.max(0, Math.trunc(q.limit ?? LOGS_DEFAULT)), LOGS_MAX)
      return clone(rows.slice(offset, offset + limit))
    },
    async dailySpend(q: DailySpendQuery) {
      count('dailySpend')
      const from = q.start_date ? iso(q.start_date).slice(0, 10) : undefined
      const to = q.end_date ? iso(q.end_date).slice(0, 10) : undefined
      const out = [...daily.values()].filter((d) =>
        (!q.entity || d.entity === q.entity) &&
        (!q.entity_id || d.entity_id === q.entity_id) &&
        (!q.model_group || d.model_group === q.model_group) &&
        (from === undefined || d.date >= from) &&
        (to === undefined || d.date <= to))
      const key = (d: DailySpendRow) => `${d.date}\u0000${d.entity}\u0000${d.entity_id}\u0000${d.model_group}`
      out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
      return clone(out)
    },
    async resetSpend(kind: ResetKind, id, expected, nextResetAt, models) {
      count('resetSpend')
      const r = table(kind).get(id)
      const boundary = expected === null ? null : iso(expected)
      if (!r || (r.budget_reset_at ?? null) !== boundary) return false
      // The new period starts with the spend of calls that already ended in it (written between the boundary and
      // this sweep), so the stored spend agrees with a ledger that rolled over at the boundary itself.
      const field = LOG_FIELD[kind]
      let carried = 0
      if (field) {
        const from = boundary ? new Date(Date.parse(boundary) - DAY_MS).toISOString() : ''
        for (const l of logs.values()) if (l[field] === id && l.startTime >= from && l.endTime >= (boundary ?? '')) carried += l.spend
      }
      r.spend = carried
      r.budget_reset_at = nextResetAt === null ? null : iso(nextResetAt)
      if (kind === 'key') {
        const mmb = (r.model_max_budget ?? {}) as Record<string, { time_period?: string | null }>
        const names = models ?? Object.keys(mmb).filter((m) => mmb[m]?.time_period != null && mmb[m]?.time_period === r.budget_duration)
        const ms = { ...((r.model_spend ?? {}) as Record<string, number>) }
        for (const m of names) if (m in ms) ms[m] = 0
        r.model_spend = ms
      }
      return true
    },
    async dueForReset(nowIso) {
      count('dueForReset')
      const at = iso(nowIso)
      const out: Array<{ kind: ResetKind; id: string; budget_reset_at: string; budget_duration: string }> = []
      for (const kind of ['key', 'team', 'user', 'end_user', 'budget'] as const) {
        for (const [id, r] of table(kind)) {
          const reset = r.budget_reset_at
          if (typeof reset === 'string' && reset <= at) out.push({ kind, id, budget_reset_at: reset, budget_duration: (r.budget_duration as string | null) ?? '' })
        }
      }
      return out
    },
    async ping() {
      count('ping')
      if (!opened) throw new Error('memory store not opened')
    },
    async close() {
      count('close')
      opened = false
    },
  }
  return store
}

/** A plugin that registers `store` as the gateway's store (config name `store-memory`) and opens it at start. */
export function memoryStorePlugin(store: Store, name = 'store-memory'): GatewayPlugin {
  return definePlugin({
    name,
    register(container) {
      container.register({ store: asValue(store) })
    },
    async start() {
      await store.open()
    },
    async stop() {
      await store.close()
    },
  })
}
