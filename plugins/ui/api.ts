/**
 * The admin UI's own read-only endpoints, for what the management API has no single call for:
 *
 * - GET /ui/api/live: what the gateway is doing now (calls in flight, the priority queue, rate-limit windows,
 *   deployments with their cooldowns, usage this minute and latency), read from the plugins that keep it, each only
 *   when configured (a service looked up in the container, as /metrics does);
 * - GET /ui/api/usage: spend and tokens per day, key, team, model group and provider, from the spend logs;
 * - GET /ui/api/logs and /ui/api/logs/:request_id: the spend log rows, filtered and paged.
 *
 * All are admin-only (the master key, a proxy_admin's key or the UI session of either): 401 without credentials
 * (auth), 403 for any other key. Spend logs are read through the keys plugin's helpers (plugins/keys/spend.ts).
 */
import type { AwilixContainer } from 'awilix'
import type { Cradle } from '../../core/container.js'
import { gatewayError } from '../../core/errors.js'
import type { RouteDef } from '../../core/http/routes.js'
import type { GatewayContext } from '../../core/http/respond.js'
import type { GatewayMiddleware } from '../../core/plugin.js'
import type { SpendLogQuery, SpendLogRow, Store } from '../../core/store.js'
import { checkAccess } from '../keys/access.js'
import { queryDate, queryInt, queryString } from '../keys/input.js'
import { tokenOf } from '../keys/shared.js'
import { dayOf, daysBetween, requireDates, scan } from '../keys/spend.js'

const DAY_MS = 86_400_000
/** The usage page's window without dates: the last 30 days, as LiteLLM's spend views. */
const DEFAULT_DAYS = 30
const LOGS_DEFAULT_LIMIT = 50
const LOGS_MAX_LIMIT = 1000

/** What the live view reads from other plugins; each optional (the plugin may not be configured). */
interface QueueView { status(): Promise<Record<string, unknown>> }
interface CooldownView { status(): Promise<{ cooling: Array<{ id: string; until: number }> }> }
interface RouterStatsView { read(ids: readonly string[], now: number): Array<{ requests: number; tokens: number; latencyMs: number }> | null }
interface RateLimitView {
  snapshot(now: number): Array<{ scope: string; rpm: number | null; tpm: number | null; parallel: number | null; requests: number; tokens: number; inFlight: number }>
}

export interface LiveDeps {
  container: AwilixContainer<Cradle>
  /** Model calls in flight past auth (counted by the ui plugin's middleware). */
  inFlight(): number
  /** Per deployment, this minute's calls as the ui plugin counted them (used when the router keeps no stats). */
  usage: ReadonlyMap<string, { minute: number; requests: number; tokens: number; latencyMsTotal: number }>
}

function optional<T>(container: AwilixContainer<Cradle>, name: string): T | null {
  return container.hasRegistration(name) ? (container.resolve(name) as T) : null
}

function storeOf(ctx: GatewayContext, container: AwilixContainer<Cradle>): Store {
  const store = container.cradle.store
  if (!store) throw gatewayError('GW_ERR_NO_STORE', 'No connected db.')
  return store
}

/** A route only admins may call (auth has already refused callers without credentials). */
function adminRoute(path: string, name: string, run: (ctx: GatewayContext) => Promise<unknown>): RouteDef {
  const handler: GatewayMiddleware = async (ctx) => {
    checkAccess(ctx.state.principal, 'admin', path)
    ctx.set('cache-control', 'no-store')
    ctx.body = await run(ctx)
  }
  Object.defineProperty(handler, 'name', { value: name })
  return { method: 'GET', path, kind: 'management', handler }
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

/** 'key:<hash>' -> {scope: 'key', id: '<hash>'} (a key's per-model scope keeps ':model:<m>' in its id). */
function splitScope(s: string): { scope: string; id: string } {
  const i = s.indexOf(':')
  return i === -1 ? { scope: s, id: '' } : { scope: s.slice(0, i), id: s.slice(i + 1) }
}

function minuteUse(
  s: { requests: number; tokens: number; latencyMs: number } | undefined,
  own: { minute: number; requests: number; tokens: number; latencyMsTotal: number } | undefined, now: number,
): { rpm_used: number; tpm_used: number; latency_ms_avg: number | null } {
  if (s) return { rpm_used: s.requests, tpm_used: s.tokens, latency_ms_avg: s.latencyMs >= 0 ? Math.round(s.latencyMs * 1000) / 1000 : null }
  if (!own || own.minute !== Math.floor(now / 60_000)) return { rpm_used: 0, tpm_used: 0, latency_ms_avg: null }
  return { rpm_used: own.requests, tpm_used: own.tokens, latency_ms_avg: Math.round((own.latencyMsTotal / own.requests) * 1000) / 1000 }
}

/** Calls waiting in the priority queue, over every group of a /queue/status body. */
function queuedIn(queue: unknown): number {
  const groups = (queue as { models?: unknown } | null)?.models
  if (!groups || typeof groups !== 'object') return 0
  let n = 0
  for (const g of Object.values(groups as Record<string, unknown>)) {
    const q = (g as { queued?: unknown } | null)?.queued
    if (typeof q === 'number') n += q
  }
  return n
}

async function live(deps: LiveDeps): Promise<Record<string, unknown>> {
  const { container } = deps
  const { models, clock } = container.cradle
  const now = clock.now()
  const queue = await optional<QueueView>(container, 'priorityQueueStatus')?.status() ?? null
  const cooling = new Map<string, number>()
  for (const c of (await optional<CooldownView>(container, 'cooldownStatus')?.status())?.cooling ?? []) cooling.set(c.id, c.until)
  const targets = models.deployments()
  const stats = optional<RouterStatsView>(container, 'routerStatsView')?.read(targets.map((t) => t.id), now) ?? null
  const rateLimits = (optional<RateLimitView>(container, 'rateLimitStatus')?.snapshot(now) ?? []).map((w) => ({
    ...splitScope(w.scope),
    rpm_limit: w.rpm, rpm_used: w.requests, tpm_limit: w.tpm, tpm_used: w.tokens, parallel_limit: w.parallel, parallel_used: w.inFlight,
  }))
  // The count the ui plugin keeps is every model call in progress, waiting in the queue included: in flight is
  // what is past the queue (upstream, or being answered).
  const inProgress = deps.inFlight()
  const queued = queuedIn(queue)
  return {
    at: iso(now),
    in_flight: Math.max(0, inProgress - queued),
    queued,
    in_progress: inProgress,
    queue,
    rate_limits: rateLimits,
    deployments: targets.map((t, i) => {
      const until = cooling.get(t.id)
      const s = stats?.[i]
      return {
        model_group: t.modelName,
        id: t.id,
        provider: t.provider,
        model: t.model,
        cooling: until !== undefined && until > now,
        cooldown_until: until !== undefined && until > now ? iso(until) : null,
        // The router's counts when its strategy keeps them (shared between replicas with Redis), else this
        // replica's own for the current minute.
        ...minuteUse(s, deps.usage.get(t.id), now),
        rpm_limit: t.rpm ?? null,
        tpm_limit: t.tpm ?? null,
      }
    }),
  }
}

interface Totals { spend: number; prompt_tokens: number; completion_tokens: number; calls: number }

function zero(): Totals {
  return { spend: 0, prompt_tokens: 0, completion_tokens: 0, calls: 0 }
}

function addRow(t: Totals, r: SpendLogRow): void {
  t.spend += r.spend
  t.prompt_tokens += r.prompt_tokens
  t.completion_tokens += r.completion_tokens
  t.calls++
}

/** Totals per group, biggest spend first; `label` adds fields naming the group. */
function groupBy<L extends Record<string, unknown>>(rows: readonly SpendLogRow[], keyOf: (r: SpendLogRow) => string, label: (r: SpendLogRow) => L): Array<L & Totals> {
  const groups = new Map<string, L & Totals>()
  for (const r of rows) {
    const k = keyOf(r)
    let g = groups.get(k)
    if (!g) groups.set(k, (g = { ...label(r), ...zero() }))
    addRow(g, r)
  }
  return [...groups.values()].sort((a, b) => b.spend - a.spend || b.calls - a.calls)
}

/** The usage window: the dates given, else the last 30 days (UTC). */
function usageWindow(ctx: GatewayContext, now: number): [string, string] {
  const start = queryDate(ctx, 'start_date')
  const end = queryDate(ctx, 'end_date')
  if (start === undefined && end === undefined) {
    return [iso(now - (DEFAULT_DAYS - 1) * DAY_MS).slice(0, 10), iso(now).slice(0, 10)]
  }
  return requireDates(start ?? end, end ?? start)
}

async function usage(ctx: GatewayContext, container: AwilixContainer<Cradle>): Promise<Record<string, unknown>> {
  const store = storeOf(ctx, container)
  const [start, end] = usageWindow(ctx, container.cradle.clock.now())
  const rows = await scan(store, { start_date: start, end_date: end })
  const days = new Map<string, Totals>()
  const totals = zero()
  for (const r of rows) {
    const d = dayOf(r)
    let t = days.get(d)
    if (!t) days.set(d, (t = zero()))
    addRow(t, r)
    addRow(totals, r)
  }
  const teamAliases = new Map<string, string | null>()
  for (const r of rows) {
    if (r.team_id && !teamAliases.has(r.team_id)) teamAliases.set(r.team_id, (await store.get('team', r.team_id))?.team_alias ?? null)
  }
  return {
    start_date: start,
    end_date: end,
    days: daysBetween(start, end).map((date) => ({ date, ...(days.get(date) ?? zero()) })),
    by_key: groupBy(rows, (r) => r.api_key, (r) => ({ api_key: r.api_key, key_alias: r.key_alias })),
    by_team: groupBy(rows, (r) => r.team_id ?? '', (r) => ({ team_id: r.team_id, team_alias: r.team_id ? teamAliases.get(r.team_id) ?? null : null })),
    by_model: groupBy(rows, (r) => r.model_group, (r) => ({ model_group: r.model_group })),
    by_provider: groupBy(rows, (r) => r.custom_llm_provider ?? '', (r) => ({ provider: r.custom_llm_provider })),
    totals,
  }
}

/** The spend log filters of /ui/api/logs. */
function logQuery(ctx: GatewayContext): SpendLogQuery {
  const q: SpendLogQuery = {}
  const apiKey = queryString(ctx, 'api_key')
  if (apiKey !== undefined) q.api_key = tokenOf(apiKey)
  const teamId = queryString(ctx, 'team_id')
  if (teamId !== undefined) q.team_id = teamId
  const group = queryString(ctx, 'model_group')
  if (group !== undefined) q.model_group = group
  const status = queryString(ctx, 'status')
  if (status !== undefined) q.status = status
  const start = queryDate(ctx, 'start_date')
  const end = queryDate(ctx, 'end_date')
  if (start !== undefined && end !== undefined) requireDates(start, end)
  if (start !== undefined) q.start_date = start
  if (end !== undefined) q.end_date = end
  return q
}

async function logs(ctx: GatewayContext, container: AwilixContainer<Cradle>): Promise<{ rows: SpendLogRow[]; total: number }> {
  const store = storeOf(ctx, container)
  const q = logQuery(ctx)
  const offset = queryInt(ctx, 'offset', 0, Number.MAX_SAFE_INTEGER, 0)
  const limit = queryInt(ctx, 'limit', 1, LOGS_MAX_LIMIT, LOGS_DEFAULT_LIMIT)
  const rows = await store.spendLogs({ ...q, offset, limit })
  // A short first page is the whole answer; otherwise count the matching rows (the store has no count).
  const total = offset === 0 && rows.length < limit ? rows.length : (await scan(store, q)).length
  return { rows, total }
}

async function logDetail(ctx: GatewayContext, container: AwilixContainer<Cradle>): Promise<Record<string, unknown>> {
  const store = storeOf(ctx, container)
  const id = String(ctx.params.request_id ?? '')
  const [row] = await store.spendLogs({ request_id: id, limit: 1 })
  if (!row) throw gatewayError('GW_ERR_NOT_FOUND', `No spend log for request_id ${id}.`, { param: 'request_id' })
  const key = row.api_key ? await store.get('key', row.api_key) : null
  const team = row.team_id ? await store.get('team', row.team_id) : null
  return {
    ...row,
    key_name: key?.key_name ?? null,
    team_alias: team?.team_alias ?? null,
    duration_ms: Math.max(0, Date.parse(row.endTime) - Date.parse(row.startTime)),
  }
}

export function uiApiRoutes(deps: LiveDeps): RouteDef[] {
  const { container } = deps
  return [
    adminRoute('/ui/api/live', 'uiLive', () => live(deps)),
    adminRoute('/ui/api/usage', 'uiUsage', (ctx) => usage(ctx, container)),
    adminRoute('/ui/api/logs', 'uiLogs', (ctx) => logs(ctx, container)),
    adminRoute('/ui/api/logs/:request_id', 'uiLogDetail', (ctx) => logDetail(ctx, container)),
  ]
}
