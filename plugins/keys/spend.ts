/**
 * Spend reports, as LiteLLM's /spend/logs and /global/spend/* routes, computed from the store's spend log rows
 * (`store.spendLogs`). LiteLLM answers several of these from SQL views over the last 30 days; the same windows and
 * shapes are kept here.
 */
import type { SpendLogQuery, SpendLogRow, Store } from '../../core/store.js'
import { queryDate, queryInt, queryString } from './input.js'
import { invalid, tokenOf, type Api, type Deps } from './shared.js'

/** Rows per store page: the store's maximum. */
const PAGE = 10_000
/** Most rows one report reads: 1,000,000 (a bound on memory and time; past it the report covers the newest rows). */
const MAX_SCAN_ROWS = 1_000_000
/** LiteLLM's "last 30 days" views. */
const WINDOW_DAYS = 30
const DAY_MS = 86_400_000
const GROUP_BY: ReadonlySet<string> = new Set(['team', 'customer', 'api_key'])

/** Every row matching `q` (newest first), page by page up to MAX_SCAN_ROWS. */
export async function scan(store: Store, q: SpendLogQuery): Promise<SpendLogRow[]> {
  const out: SpendLogRow[] = []
  while (out.length < MAX_SCAN_ROWS) {
    const rows = await store.spendLogs({ ...q, offset: out.length, limit: PAGE })
    out.push(...rows)
    if (rows.length < PAGE) break
  }
  return out
}

export function dayOf(row: SpendLogRow): string {
  return row.startTime.slice(0, 10)
}

/** Every 'YYYY-MM-DD' from start to end, inclusive. */
export function daysBetween(start: string, end: string): string[] {
  const out: string[] = []
  for (let t = Date.parse(`${start}T00:00:00Z`), last = Date.parse(`${end}T00:00:00Z`); t <= last; t += DAY_MS) out.push(new Date(t).toISOString().slice(0, 10))
  return out
}

/**
 * A name -> amount map without a prototype: the names are data (end users, models, team aliases), and in a plain
 * object `constructor` would start from Object's function and `__proto__` would not be stored at all.
 */
function tally(): Record<string, number> {
  return Object.create(null) as Record<string, number>
}

function add(map: Record<string, number>, k: string, v: number): void {
  map[k] = (map[k] ?? 0) + v
}

/** Python's round(x, 2), as LiteLLM rounds the team totals. */
function round2(x: number): number {
  return Math.round(x * 100) / 100
}

function windowStart(deps: Deps): string {
  return new Date(deps.now() - WINDOW_DAYS * DAY_MS).toISOString().slice(0, 10)
}

/** /spend/logs with start_date and end_date: spend per day, per key, user and model. */
function perDay(rows: readonly SpendLogRow[], start: string, end: string): Array<Record<string, unknown>> {
  const days = new Map<string, { spend: number; users: Record<string, number>; models: Record<string, number>; keys: Record<string, number> }>()
  for (const r of rows) {
    const d = dayOf(r)
    let e = days.get(d)
    if (!e) days.set(d, (e = { spend: 0, users: tally(), models: tally(), keys: tally() }))
    e.spend += r.spend
    add(e.keys, r.api_key, r.spend)
    add(e.users, r.user ?? 'null', r.spend)
    add(e.models, r.model, r.spend)
  }
  return daysBetween(start, end).map((d) => {
    const e = days.get(d)
    return e ? { ...e.keys, spend: e.spend, users: e.users, models: e.models, startTime: d } : { startTime: d, spend: 0, users: {}, models: {} }
  })
}

interface Usage { spend: number; tokens: number }

function byApiKey(rows: readonly SpendLogRow[]): Array<Record<string, unknown>> {
  const keys = new Map<string, Map<string, { cost: number; input: number; output: number }>>()
  for (const r of rows) {
    let models = keys.get(r.api_key)
    if (!models) keys.set(r.api_key, (models = new Map()))
    const m = models.get(r.model) ?? { cost: 0, input: 0, output: 0 }
    m.cost += r.spend
    m.input += r.prompt_tokens
    m.output += r.completion_tokens
    models.set(r.model, m)
  }
  const out = [...keys.entries()].map(([apiKey, models]) => {
    const details = [...models.entries()].map(([model, m]) => ({ model, total_cost: m.cost, total_input_tokens: m.input, total_output_tokens: m.output }))
    return {
      api_key: apiKey,
      total_cost: details.reduce((s, d) => s + d.total_cost, 0),
      total_input_tokens: details.reduce((s, d) => s + d.total_input_tokens, 0),
      total_output_tokens: details.reduce((s, d) => s + d.total_output_tokens, 0),
      model_details: details,
    }
  })
  return out.sort((a, b) => b.total_cost - a.total_cost)
}

/** Per day, per group (a team's alias or a customer), the spend and its model x key breakdown. */
function byDayAndGroup(rows: readonly SpendLogRow[], groupOf: (r: SpendLogRow) => string, groupField: string, listField: string) {
  const days = new Map<string, Map<string, Map<string, Usage & { model: string; api_key: string }>>>()
  for (const r of rows) {
    const d = dayOf(r)
    let groups = days.get(d)
    if (!groups) days.set(d, (groups = new Map()))
    const g = groupOf(r)
    let cells = groups.get(g)
    if (!cells) groups.set(g, (cells = new Map()))
    const k = `${r.model}\u0000${r.api_key}`
    const c = cells.get(k) ?? { model: r.model, api_key: r.api_key, spend: 0, tokens: 0 }
    c.spend += r.spend
    c.tokens += r.total_tokens
    cells.set(k, c)
  }
  return [...days.keys()].sort().map((d) => ({
    // LiteLLM's date_trunc('day', ...) comes back as a timestamp.
    group_by_day: `${d}T00:00:00+00:00`,
    [listField]: [...days.get(d)!.entries()].map(([g, cells]) => {
      const metadata = [...cells.values()].map((c) => ({ model: c.model, api_key: c.api_key, spend: c.spend, total_tokens: c.tokens }))
      return { [groupField]: g, total_spend: metadata.reduce((s, m) => s + m.spend, 0), metadata }
    }),
  }))
}

/** team_id -> team_alias (null when the team has none or is gone), looked up once per report. */
async function teamAliases(store: Store, rows: readonly SpendLogRow[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>()
  for (const r of rows) {
    if (!r.team_id || out.has(r.team_id)) continue
    out.set(r.team_id, (await store.get('team', r.team_id))?.team_alias ?? null)
  }
  return out
}

export function requireDates(start: string | undefined, end: string | undefined): [string, string] {
  if (start === undefined || end === undefined) throw invalid('Please provide start_date and end_date', start === undefined ? 'start_date' : 'end_date')
  if (start > end) throw invalid(`start_date ${start} is after end_date ${end}.`, 'start_date')
  return [start, end]
}

export function spendApis(deps: Deps): Api[] {
  return [
    {
      method: 'GET', path: '/spend/logs', access: 'read', name: 'spendLogs',
      async run(call) {
        const ctx = call.ctx
        const apiKey = queryString(ctx, 'api_key')
        const userId = queryString(ctx, 'user_id')
        const requestId = queryString(ctx, 'request_id')
        const start = queryDate(ctx, 'start_date')
        const end = queryDate(ctx, 'end_date')
        // One filter, in LiteLLM's order of precedence: api_key, then request_id, then user_id.
        const q: SpendLogQuery = {}
        if (apiKey !== undefined) q.api_key = tokenOf(apiKey)
        else if (requestId !== undefined) q.request_id = requestId
        else if (userId !== undefined) q.user = userId
        if (start !== undefined && end !== undefined) {
          const [s, e] = requireDates(start, end)
          const rows = await scan(call.store, { ...q, start_date: s, end_date: e })
          return rows.length ? perDay(rows, s, e) : []
        }
        // The newest rows, one store page (LiteLLM returns every row; a page bounds the response).
        return call.store.spendLogs({ ...q, limit: PAGE })
      },
    },
    {
      method: 'GET', path: '/global/spend/report', access: 'read', name: 'globalSpendReport',
      async run(call) {
        const ctx = call.ctx
        const [start, end] = requireDates(queryDate(ctx, 'start_date'), queryDate(ctx, 'end_date'))
        const groupBy = queryString(ctx, 'group_by') ?? 'team'
        if (!GROUP_BY.has(groupBy)) throw invalid(`Invalid 'group_by': must be one of "team", "customer", "api_key".`, 'group_by')
        const apiKey = queryString(ctx, 'api_key')
        const userId = queryString(ctx, 'internal_user_id')
        const q: SpendLogQuery = { start_date: start, end_date: end }
        if (apiKey !== undefined) q.api_key = tokenOf(apiKey)
        if (userId !== undefined) q.user = userId
        const teamId = queryString(ctx, 'team_id')
        const customerId = queryString(ctx, 'customer_id')
        if (teamId !== undefined) q.team_id = teamId
        if (customerId !== undefined) q.end_user = customerId
        const rows = await scan(call.store, q)
        if (apiKey !== undefined || userId !== undefined || groupBy === 'api_key') return byApiKey(rows)
        if (groupBy === 'customer') return byDayAndGroup(rows, (r) => r.end_user ?? 'null', 'customer', 'customers')
        const aliases = await teamAliases(call.store, rows)
        return byDayAndGroup(rows, (r) => (r.team_id ? aliases.get(r.team_id) : null) ?? 'Unassigned Team', 'team_name', 'teams')
      },
    },
    {
      method: 'GET', path: '/global/spend/keys', access: 'read', name: 'globalSpendKeys',
      async run(call) {
        const limit = queryInt(call.ctx, 'limit', 1, 1_000_000)
        const totals = tally()
        for (const r of await scan(call.store, { start_date: windowStart(deps) })) add(totals, r.api_key, r.spend)
        const top = Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, limit)
        const out = []
        for (const [apiKey, total] of top) {
          const k = apiKey ? await call.store.get('key', apiKey) : null
          out.push({ api_key: apiKey, key_alias: k?.key_alias ?? null, key_name: k?.key_name ?? null, total_spend: total })
        }
        return out
      },
    },
    {
      method: 'GET', path: '/global/spend/teams', access: 'read', name: 'globalSpendTeams',
      async run(call) {
        const rows = await scan(call.store, { start_date: windowStart(deps) })
        const aliases = await teamAliases(call.store, rows)
        const daily = new Map<string, Record<string, number>>()
        const totals = tally()
        for (const r of rows) {
          const alias = (r.team_id ? aliases.get(r.team_id) : null) ?? 'Unassigned'
          let day = daily.get(dayOf(r))
          if (!day) daily.set(dayOf(r), (day = tally()))
          add(day, alias, r.spend)
          add(totals, alias, r.spend)
        }
        const days = [...daily.keys()].sort()
        return {
          daily_spend: days.map((d) => {
            const row = Object.create(null) as Record<string, unknown>
            row.date = d
            for (const [alias, spend] of Object.entries(daily.get(d)!)) row[alias] = round2(spend)
            return row
          }),
          teams: Object.keys(totals),
          total_spend_per_team: Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([alias, spend]) => ({ team_id: alias, total_spend: round2(spend) })),
        }
      },
    },
    {
      method: 'GET', path: '/global/spend/models', access: 'read', name: 'globalSpendModels',
      async run(call) {
        const limit = queryInt(call.ctx, 'limit', 1, 1_000_000, 10)
        const totals = tally()
        for (const r of await scan(call.store, { start_date: windowStart(deps) })) add(totals, r.model, r.spend)
        return Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, limit).map(([model, total]) => ({ model, total_spend: total }))
      },
    },
  ]
}
