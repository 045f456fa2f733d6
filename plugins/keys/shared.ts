/**
 * What the management routes share: the route shape each resource file declares, key hashing, timestamps and
 * budget periods, store paging, events, and the mapping of store failures to client errors.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Cradle } from '../../core/container.js'
import { gatewayError, GatewayError } from '../../core/errors.js'
import { addDuration, nextReset, parseDuration } from '../../core/duration.js'
import type { GatewayContext } from '../../core/http/respond.js'
import type { Principal } from '../../core/state.js'
import {
  StoreConflictError, StoreUnavailableError,
  type EntityKind, type ListQuery, type ModelBudget, type RecordOf, type Store,
} from '../../core/store.js'
import type { Access } from './access.js'

export interface KeysOptions {
  /** LiteLLM's STORE_MODEL_IN_DB: /model/new, /model/update and /model/delete change the served models. */
  store_model_in_db: boolean
}

export interface Deps {
  cradle: Cradle
  options: KeysOptions
  /** Clock (ms since the epoch), injectable for tests. */
  now: () => number
}

/** One call of a management route. */
export interface Call {
  ctx: GatewayContext
  store: Store
  principal: Principal | null
  /** The JSON body (read on demand, bounded by server.body_limit). */
  body(): Promise<Record<string, unknown>>
  /** The JSON body, or {} when the request has none (routes whose body is optional). */
  optionalBody(): Promise<Record<string, unknown>>
}

/** A management route as a resource file declares it; index.ts adds access checks, the store and the response. */
export interface Api {
  method: 'GET' | 'POST'
  path: string | readonly string[]
  access: Access
  /** The handler's name, shown by /routes and in stack traces. */
  name: string
  /** Returns the response body (an object, an array or a number), always sent with 200. */
  run(call: Call): Promise<unknown>
}

/** SHA-256 hex of a virtual key: its id in the store, as LiteLLM's hash_token. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** A key given as input, clear ('sk-...') or already hashed, as its store id (LiteLLM's _hash_token_if_needed). */
export function tokenOf(key: string): string {
  return key.startsWith('sk-') ? hashKey(key) : key
}

/** How a key is shown: 'sk-...' + its last 4 characters (LiteLLM's key_name). */
export function keyName(key: string): string {
  return `sk-...${key.slice(-4)}`
}

/** A key given as input, shown without giving it away (for error messages). */
export function shownKey(key: string): string {
  return key.startsWith('sk-') ? keyName(key) : key
}

export function iso(ms: number): string {
  return new Date(ms).toISOString()
}

export function newId(): string {
  return randomUUID()
}

/** `duration` ('30d'; null or '-1' = never) -> the expiry instant (ISO) counted from `now`. */
export function expiresAt(duration: unknown, now: number): string | null {
  if (duration === null || duration === undefined || duration === '-1') return null
  const d = parseDuration(duration)
  return d ? iso(addDuration(now, d)) : null
}

/** When a budget period that starts now ends; null without a duration. */
export function resetAt(duration: unknown, now: number): string | null {
  return typeof duration === 'string' ? nextReset(duration, now) : null
}

/** LiteLLM's model_max_budget in the store's shape: {model: {budget_limit, time_period}} (aliases accepted). */
export function modelBudgets(v: unknown): Record<string, ModelBudget> {
  const out: Record<string, ModelBudget> = {}
  if (!v || typeof v !== 'object') return out
  for (const [model, raw] of Object.entries(v as Record<string, Record<string, unknown>>)) {
    const limit = raw.budget_limit ?? raw.max_budget
    const period = raw.time_period ?? raw.budget_duration ?? null
    if (typeof limit !== 'number') {
      throw gatewayError('GW_ERR_VALIDATION', `Invalid 'model_max_budget.${model}': budget_limit (USD) is required.`, { param: `model_max_budget.${model}` })
    }
    out[model] = { budget_limit: limit, time_period: typeof period === 'string' ? period : null }
  }
  return out
}

/** The fields of `body` not in `known` (LiteLLM keeps fields it does not act on). */
export function extras(body: Record<string, unknown>, known: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(body)) if (!known.has(k) && v !== undefined) out[k] = v
  return out
}

/** Copy the fields of `body` named in `fields` that are present (null included) into `into`. */
export function copyPresent(into: Record<string, unknown>, body: Record<string, unknown>, fields: readonly string[]): void {
  for (const f of fields) if (body[f] !== undefined) into[f] = body[f]
}

/** Every record matching `where`, paging through the store (a list is at most 1000 rows per call). */
export async function allRows<K extends EntityKind>(store: Store, kind: K, where?: ListQuery['where']): Promise<RecordOf[K][]> {
  const out: RecordOf[K][] = []
  const PAGE = 1000 // the store's largest page
  for (;;) {
    const { rows, total } = await store.list(kind, { where, offset: out.length, limit: PAGE })
    out.push(...rows)
    if (rows.length === 0 || out.length >= total) return out
  }
}

export function notFound(message: string, param: string): GatewayError {
  return gatewayError('GW_ERR_NOT_FOUND', message, { param })
}

export function invalid(message: string, param: string): GatewayError {
  return gatewayError('GW_ERR_VALIDATION', message, { param })
}

export function conflict(message: string, param: string): GatewayError {
  return gatewayError('GW_ERR_CONFLICT', message, { param })
}

/** Tell auth (and other replicas, through a relay) that a record changed. */
export function invalidate(deps: Deps, kind: EntityKind, id: string): void {
  deps.cradle.events.emit('invalidate', { kind, id })
}

/** An admin set spend or a new budget period: budget counters follow. */
export function spendSet(deps: Deps, kind: EntityKind, record: { spend?: unknown; budget_reset_at?: unknown }, id: string): void {
  const spend = typeof record.spend === 'number' ? record.spend : 0
  const at = typeof record.budget_reset_at === 'string' ? record.budget_reset_at : null
  deps.cradle.events.emit('spend.set', { kind, id, spend, resetAt: at })
}

/** Store failures as client errors: a taken id or alias is 400 (LiteLLM's status), a lost database 503. */
export function storeError(err: unknown): unknown {
  if (err instanceof StoreConflictError) {
    return gatewayError('GW_ERR_CONFLICT', `${err.field} already exists: ${err.message}. Use a different ${err.field}.`, { param: err.field })
  }
  if (err instanceof StoreUnavailableError) {
    return gatewayError('GW_ERR_STORE_UNAVAILABLE', 'The database cannot be reached; retry shortly.', { cause: err })
  }
  return err
}

/** Who made a change, as LiteLLM records created_by / updated_by. */
export function actor(p: Principal | null): string | null {
  return p?.userId ?? null
}

/** Python's str() of a list of strings, for LiteLLM messages that embed one (['a', 'b']). */
export function pyList(items: readonly string[]): string {
  return `[${items.map((s) => `'${s}'`).join(', ')}]`
}

/** The budget fields every budgeted record starts with, from a create request. */
export function budgetFields(body: Record<string, unknown>, now: number): Record<string, unknown> {
  const ts = iso(now)
  return {
    max_budget: body.max_budget ?? null,
    soft_budget: body.soft_budget ?? null,
    spend: body.spend ?? 0,
    budget_duration: body.budget_duration ?? null,
    budget_reset_at: resetAt(body.budget_duration, now),
    tpm_limit: body.tpm_limit ?? null,
    rpm_limit: body.rpm_limit ?? null,
    max_parallel_requests: body.max_parallel_requests ?? null,
    budget_id: body.budget_id ?? null,
    metadata: body.metadata ?? {},
    created_at: ts,
    updated_at: ts,
  }
}

const BUDGET_FIELDS = ['max_budget', 'soft_budget', 'spend', 'tpm_limit', 'rpm_limit', 'max_parallel_requests', 'budget_id'] as const

/**
 * Apply the budget fields an update request carries to `patch`. A new budget_duration starts a new period now
 * (budget_reset_at recomputed); null removes the period. Returns whether spend or the period was set explicitly,
 * which budget counters must hear about ('spend.set').
 */
export function budgetPatch(patch: Record<string, unknown>, body: Record<string, unknown>, now: number): boolean {
  copyPresent(patch, body, BUDGET_FIELDS)
  if (body.metadata !== undefined) patch.metadata = body.metadata ?? {}
  let periodSet = false
  if (body.budget_duration !== undefined) {
    patch.budget_duration = body.budget_duration
    patch.budget_reset_at = resetAt(body.budget_duration, now)
    periodSet = true
  }
  return periodSet || body.spend !== undefined
}
