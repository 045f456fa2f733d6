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

/** Fields that must be unique (when set) besides the id, per kind, as the SQL stores index them. */
const UNIQUE: Partial<Record<EntityKind, string>> = { key: 'key_alias', team: 'team_alias' }
const LIST_DEFAULT = 100
const LIST_MAX = 1000
const LOGS_DEFAULT = 100
const LOGS_MAX = 10_000

type Row = Record<string, unknown>
type ResetKind = 'key' | 'team' | 'user' | 'end_user' | 'budget'

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
      if (!(FILTER_FIELDS[kind] as readonly string[]).includes(f)) throw new Error(`cannot filter ${kind} on ${f}`)
      const have = r[f] ?? null
      if (have !== v) return false
    }
    return true
  }

  /** ISO bounds of a query date: a date alone covers that whole UTC day. */
  function lowerBound(s: string): string {
    return s.length === 10 ? `${s}T00:00:00.000Z` : new Date(s).toISOString()
  }
  function upperBound(s: string): string {
    return s.length === 10 ? `${s}T23:59:59.999Z` : new Date(s).toISOString()
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
      const rows = [...table(kind).values()].filter((r) => matches(r, query.where, kind))
      const offset = Math.max(0, query.offset ?? 0)
      const limit = Math.min(Math.max(1, query.limit ?? LIST_DEFAULT), LIST_MAX)
      return { rows: clone(rows.slice(offset, offset + limit)) as RecordOf[K][], total: rows.length }
    },
    async insert(kind, record) {
      count('insert')
      const r = record as unknown as Row
      const id = String(r[ID_FIELD[kind]])
      if (table(kind).has(id)) throw new StoreConflictError(ID_FIELD[kind], `${kind} ${id} already exists`)
      checkUnique(kind, r, null)
      table(kind).set(id, clone(r))
    },
    async update(kind, id, patch) {
      count('update')
      const r = table(kind).get(id)
      if (!r) return null
      const next = { ...r, ...clone(patch as Row) }
      next[ID_FIELD[kind]] = id
      checkUnique(kind, next, id)
      table(kind).set(id, next)
      return clone(next) as never
    },
    async upsert(kind, record) {
      count('upsert')
      const r = record as unknown as Row
      const id = String(r[ID_FIELD[kind]])
      checkUnique(kind, r, id)
      table(kind).set(id, { ...(table(kind).get(id) ?? {}), ...clone(r) })
    },
    async delete(kind, id) {
      count('delete')
      return table(kind).delete(id)
    },
    async writeSpend(rows) {
      count('writeSpend')
      for (const row of rows) {
        if (logs.has(row.request_id)) continue
        logs.set(row.request_id, clone(row))
        const date = row.startTime.slice(0, 10)
        if (row.api_key) {
          const k = table('key').get(row.api_key) as (Row & Partial<KeyRecord>) | undefined
          if (k) {
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
      const lo = q.start_date ? lowerBound(q.start_date) : null
      const hi = q.end_date ? upperBound(q.end_date) : null
      const eq: Array<[keyof SpendLogRow, string | undefined]> = [
        ['api_key', q.api_key], ['team_id', q.team_id], ['user', q.user], ['end_user', q.end_user], ['request_id', q.request_id],
        ['model_group', q.model_group], ['status', q.status],
      ]
      const rows = [...logs.values()].filter((r) => {
        for (const [f, v] of eq) if (v !== undefined && r[f] !== v) return false
        if (lo && r.startTime < lo) return false
        if (hi && r.startTime > hi) return false
        return true
      })
      rows.sort((a, b) => (a.startTime < b.startTime ? 1 : a.startTime > b.startTime ? -1 : 0))
      const offset = Math.max(0, q.offset ?? 0)
      const limit = Math.min(Math.max(1, q.limit ?? LOGS_DEFAULT), LOGS_MAX)
      return clone(rows.slice(offset, offset + limit))
    },
    async dailySpend(q: DailySpendQuery) {
      count('dailySpend')
      const out = [...daily.values()].filter((d) =>
        (q.entity === undefined || d.entity === q.entity) &&
        (q.entity_id === undefined || d.entity_id === q.entity_id) &&
        (q.model_group === undefined || d.model_group === q.model_group) &&
        (q.start_date === undefined || d.date >= q.start_date.slice(0, 10)) &&
        (q.end_date === undefined || d.date <= q.end_date.slice(0, 10)))
      out.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0))
      return clone(out)
    },
    async resetSpend(kind: ResetKind, id, expected, nextResetAt) {
      count('resetSpend')
      const r = table(kind).get(id)
      if (!r || (r.budget_reset_at ?? null) !== expected) return false
      r.spend = 0
      r.budget_reset_at = nextResetAt
      if (kind === 'key') {
        // Per-model spend whose budget shares the key's period rolls over with it.
        const mmb = (r.model_max_budget ?? {}) as Record<string, { time_period?: string | null }>
        const ms = { ...((r.model_spend ?? {}) as Record<string, number>) }
        for (const [m, b] of Object.entries(mmb)) if ((b.time_period ?? null) === (r.budget_duration ?? null)) ms[m] = 0
        r.model_spend = ms
      }
      return true
    },
    async dueForReset(nowIso) {
      count('dueForReset')
      const out: Array<{ kind: ResetKind; id: string; budget_reset_at: string; budget_duration: string }> = []
      for (const kind of ['key', 'team', 'user', 'end_user', 'budget'] as const) {
        for (const [id, r] of table(kind)) {
          const at = r.budget_reset_at
          const dur = r.budget_duration
          if (typeof at === 'string' && typeof dur === 'string' && at <= nowIso) out.push({ kind, id, budget_reset_at: at, budget_duration: dur })
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
