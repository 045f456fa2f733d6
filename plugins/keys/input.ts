/**
 * Request input for the management routes: JSON bodies checked against JSON Schemas (ajv, compiled once at module
 * load) and query parameters read with their types. Every refusal is 400 GW_ERR_VALIDATION naming the field in
 * `param`, so a script sees which value was wrong. Unknown body fields pass through (LiteLLM keeps them), only
 * fields this API knows are type-checked.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { gatewayError } from '../../core/errors.js'
import { parseDuration } from '../../core/duration.js'
import { readJsonBody } from '../../core/http/body.js'
import type { GatewayContext } from '../../core/http/respond.js'

// coerceTypes off: `"max_budget": "10"` is a wrong type to report, not a value to guess at.
const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false })
ajv.addFormat('duration', { type: 'string', validate: (s: string) => parseDuration(s) !== null })
ajv.addFormat('timestamp', { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) })
// A key's `duration` also takes LiteLLM's "-1" (never expires).
ajv.addFormat('key-duration', { type: 'string', validate: (s: string) => s === '-1' || parseDuration(s) !== null })

const DURATION_HINT = "must be a duration such as '30s', '5m', '1h', '7d', '2w', '1mo' or '1y'"

/**
 * Most ids (or members) one request may name: each costs a store round trip, so an unbounded list is a way to keep
 * the gateway busy for minutes with one call. 1000 is also the store's page size.
 */
export const MAX_IDS = 1000

/** Schema pieces shared by the resources. */
export const S = {
  id: { type: 'string', minLength: 1, maxLength: 512 },
  idOrNull: { type: ['string', 'null'], minLength: 1, maxLength: 512 },
  text: { type: ['string', 'null'] },
  money: { type: ['number', 'null'], minimum: 0 },
  count: { type: ['integer', 'null'], minimum: 0 },
  duration: { type: ['string', 'null'], format: 'duration' },
  strings: { type: ['array', 'null'], items: { type: 'string' } },
  ids: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: MAX_IDS },
  object: { type: ['object', 'null'] },
  bool: { type: ['boolean', 'null'] },
  /** An ISO-8601 date or date-time. */
  timestamp: { type: ['string', 'null'], format: 'timestamp' },
  role: { enum: ['proxy_admin', 'proxy_admin_viewer', 'internal_user', 'internal_user_viewer', null] },
  /** LiteLLM's BudgetConfig per model: {budget_limit, time_period} (or its aliases max_budget, budget_duration). */
  modelMaxBudget: {
    type: ['object', 'null'],
    additionalProperties: {
      type: 'object',
      properties: {
        budget_limit: { type: ['number', 'null'], minimum: 0 },
        max_budget: { type: ['number', 'null'], minimum: 0 },
        time_period: { type: ['string', 'null'], format: 'duration' },
        budget_duration: { type: ['string', 'null'], format: 'duration' },
      },
    },
  },
} as const

/** The budget and limit fields keys, teams, users, customers and budgets share. */
export const BUDGET_PROPS = {
  max_budget: S.money,
  soft_budget: S.money,
  spend: { type: 'number', minimum: 0 },
  budget_duration: S.duration,
  tpm_limit: S.count,
  rpm_limit: S.count,
  max_parallel_requests: S.count,
  budget_id: S.idOrNull,
  metadata: S.object,
} as const

function paramOf(e: ErrorObject): string {
  const base = e.instancePath.replace(/^\//, '').replace(/\//g, '.')
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty?: unknown }).missingProperty)
    return base ? `${base}.${missing}` : missing
  }
  return base || 'body'
}

function messageOf(e: ErrorObject, param: string): string {
  if (e.keyword === 'required') return `Missing required field '${param}'.`
  if (e.keyword === 'format') {
    const format = (e.params as { format?: string }).format
    return `Invalid '${param}': ${format === 'timestamp' ? 'must be an ISO-8601 date-time' : DURATION_HINT}.`
  }
  if (e.keyword === 'maxItems') return `Invalid '${param}': at most ${(e.params as { limit?: number }).limit} items per request.`
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? []
    return `Invalid '${param}': must be one of ${allowed.filter((v) => v !== null).map((v) => JSON.stringify(v)).join(', ')}.`
  }
  return `Invalid '${param}': ${e.message ?? 'wrong value'}.`
}

export type BodyCheck<T> = (body: Record<string, unknown>) => T

/**
 * Compile a body schema once, on its first use (the management routes' many schemas would otherwise cost every
 * process start a few hundred ms of ajv code generation); the returned check throws 400 GW_ERR_VALIDATION naming
 * the first bad field.
 */
export function bodySchema<T = Record<string, unknown>>(properties: Record<string, unknown>, required: readonly string[] = []): BodyCheck<T> {
  let validate: ValidateFunction | null = null
  return (body) => {
    validate ??= ajv.compile({ type: 'object', properties, required })
    if (validate(body)) return body as T
    const e = validate.errors![0]!
    const param = paramOf(e)
    throw gatewayError('GW_ERR_VALIDATION', messageOf(e, param), { param })
  }
}

/** The request's JSON body (bounded by server.body_limit). */
export function readBody(ctx: GatewayContext, limit: number): Promise<Record<string, unknown>> {
  return readJsonBody(ctx.req, limit)
}

function raw(ctx: GatewayContext, name: string): string | undefined {
  const v = ctx.query[name]
  if (Array.isArray(v)) return v[v.length - 1]
  return v === undefined || v === '' ? undefined : v
}

/** A query parameter as a string; undefined when absent or empty. */
export function queryString(ctx: GatewayContext, name: string): string | undefined {
  return raw(ctx, name)
}

/** A required query parameter. */
export function queryRequired(ctx: GatewayContext, name: string): string {
  const v = raw(ctx, name)
  if (v === undefined) throw gatewayError('GW_ERR_VALIDATION', `Missing required query parameter '${name}'.`, { param: name })
  return v
}

const INT = /^\s*-?\d+\s*$/

/** An integer query parameter within [min, max]; `fallback` when absent. */
export function queryInt(ctx: GatewayContext, name: string, min: number, max: number, fallback: number): number
export function queryInt(ctx: GatewayContext, name: string, min: number, max: number, fallback?: number): number | undefined
export function queryInt(ctx: GatewayContext, name: string, min: number, max: number, fallback?: number): number | undefined {
  const v = raw(ctx, name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!INT.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid '${name}': expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}.`, { param: name })
  }
  return n
}

/** A boolean query parameter ('true'/'false', as FastAPI reads them, also 1/0, yes/no). */
export function queryBool(ctx: GatewayContext, name: string, fallback: boolean): boolean {
  const v = raw(ctx, name)
  if (v === undefined) return fallback
  const s = v.toLowerCase()
  if (s === 'true' || s === '1' || s === 'yes' || s === 'on') return true
  if (s === 'false' || s === '0' || s === 'no' || s === 'off') return false
  throw gatewayError('GW_ERR_VALIDATION', `Invalid '${name}': expected true or false, got ${JSON.stringify(v)}.`, { param: name })
}

const DATE = /^\d{4}-\d{2}-\d{2}$/

/** A 'YYYY-MM-DD' query parameter (LiteLLM's start_date / end_date format). */
export function queryDate(ctx: GatewayContext, name: string): string | undefined {
  const v = raw(ctx, name)
  if (v === undefined) return undefined
  if (!DATE.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`)) || new Date(`${v}T00:00:00Z`).toISOString().slice(0, 10) !== v) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid '${name}': expected a date as YYYY-MM-DD, got ${JSON.stringify(v)}.`, { param: name })
  }
  return v
}
