/**
 * rate-limit: enforces the `rpm_limit`, `tpm_limit` and `max_parallel_requests` LiteLLM stores on keys, teams, users
 * (a key's user) and end users, and a key's per-model `model_rpm_limit` / `model_tpm_limit` (in its metadata, as
 * LiteLLM keeps them, or top-level), on model calls only (chat, completions, embeddings).
 *
 * - RPM: a call counts at admission, in fixed one-minute windows (LiteLLM's current minute).
 * - TPM: admission reserves an estimate (prompt estimate + max_tokens, else `default_max_tokens`); when the response
 *   is over (`state.done`: success, error, client abort, streams too) the estimate is replaced by the real total.
 * - Parallel: a slot taken at admission and freed when the response is over; in Redis a leased one (windows-redis.ts).
 * Admission is all-or-nothing: a call refused by one scope counts in none. Refused -> 429 with `retry-after` (the
 * next window for RPM/TPM, 1 s for parallel) and a message naming the scope and limit, as LiteLLM words it. Admitted
 * calls carry x-ratelimit-{limit,remaining}-{requests,tokens} for the tightest scope, set before `next()` because a
 * stream writes its headers early.
 *
 * Counters are shared through Redis when the state-redis plugin registered a client; while Redis does not answer,
 * this replica counts on its own (one warning per outage) and goes back to Redis once it answers again.
 */
import { randomUUID } from 'node:crypto'
import { asValue } from 'awilix'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import { gatewayError } from '../../core/errors.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import type { Cradle } from '../../core/container.js'
import type { Operation } from '../../core/openai/types.js'
import type { Principal } from '../../core/state.js'
import type { KeyRecord } from '../../core/store.js'
import { createLocalWindows, windowOf, WINDOW_MS, type AdmitResult, type ScopeLimits, type ScopeUse, type Ticket, type Windows } from './windows.js'
import { createRedisWindows } from './windows-redis.js'

interface Options {
  /** Parallel slot lease in Redis, ms: a crashed replica's slots free themselves after at most this long. */
  lease_ms: number
  /** Output tokens reserved for a call without max_tokens (replaced by the real count when it ends). */
  default_max_tokens: number
  /** Model calls in flight on the whole gateway (all replicas, with Redis), LiteLLM's general_settings.global_max_parallel_requests. */
  global_max_parallel_requests?: number
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS
/** After a Redis failure, calls count locally for 1 s before Redis is tried again. */
const RETRY_SHARED_MS = 1_000
/** Retry-After for a parallel refusal: a slot frees when any call ends, 1 s. */
const PARALLEL_RETRY_S = 1

const limiters = new WeakMap<object, ReturnType<typeof createLimiter>>()

declare module '../../core/container.js' {
  interface Cradle {
    /** Read-only: this process's windows (with Redis, only what it counted during an outage), for the admin UI. */
    rateLimitStatus?: { snapshot(now: number): ScopeUse[] }
  }
}

export default definePlugin<Options>({
  name: 'rate-limit',
  dependencies: ['auth'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      lease_ms: { type: 'integer', minimum: 100, default: 30_000 },
      default_max_tokens: { type: 'integer', minimum: 0, default: 256 },
      global_max_parallel_requests: { type: 'integer', minimum: 1 },
    },
  },
  register(container) {
    container.register({ rateLimitStatus: asValue({ snapshot: (now: number) => limiters.get(container.cradle)?.snapshot(now) ?? [] }) })
  },
  middleware(cradle, options) {
    return createLimiter(cradle, options).middleware
  },
  async stop(cradle) {
    await limiters.get(cradle)?.close()
  },
})

/** A limit as stored: a finite number, else none. */
const limitOf = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

function modelLimit(key: KeyRecord, field: 'model_rpm_limit' | 'model_tpm_limit', model: string): number | null {
  const fromMeta = key.metadata?.[field]
  if (fromMeta && typeof fromMeta === 'object') {
    const v = limitOf((fromMeta as Record<string, unknown>)[model])
    if (v !== null) return v
  }
  const top = key[field]
  return top && typeof top === 'object' ? limitOf((top as Record<string, unknown>)[model]) : null
}

function add(out: ScopeLimits[] | null, scope: string, rpm: unknown, tpm: unknown, parallel: unknown): ScopeLimits[] | null {
  const r = limitOf(rpm)
  const t = limitOf(tpm)
  const p = limitOf(parallel)
  if (r === null && t === null && p === null) return out
  const s: ScopeLimits = { scope, rpm: r, tpm: t, parallel: p }
  if (out === null) return [s]
  out.push(s)
  return out
}

/** The limited scopes of a call; null when none is limited (then the call costs nothing here). */
export function scopesOf(p: Principal, model: string): ScopeLimits[] | null {
  let out: ScopeLimits[] | null = null
  const key = p.key
  if (key && p.token) {
    out = add(out, `key:${p.token}`, key.rpm_limit, key.tpm_limit, key.max_parallel_requests)
    const mr = modelLimit(key, 'model_rpm_limit', model)
    const mt = modelLimit(key, 'model_tpm_limit', model)
    if (mr !== null || mt !== null) out = add(out, `key:${p.token}:model:${model}`, mr, mt, null)
  }
  const team = p.team
  if (team) out = add(out, `team:${team.team_id}`, team.rpm_limit, team.tpm_limit, team.max_parallel_requests)
  const user = p.user
  if (user) out = add(out, `user:${user.user_id}`, user.rpm_limit, user.tpm_limit, user.max_parallel_requests)
  const endUser = p.endUser
  if (endUser && p.endUserId) out = add(out, `end_user:${p.endUserId}`, endUser.rpm_limit, endUser.tpm_limit, endUser.max_parallel_requests)
  return out
}

/** Which scope, in LiteLLM's words, never printing a key's hash in full. */
function describe(scope: string): string {
  const i = scope.indexOf(':')
  const kind = scope.slice(0, i)
  const id = scope.slice(i + 1)
  if (kind === 'key') {
    const m = id.indexOf(':model:')
    return m === -1 ? `api_key: ${id.slice(0, 12)}...` : `api_key: ${id.slice(0, 12)}... model: ${id.slice(m + 7)}`
  }
  return `${kind}: ${id}`
}

function createLimiter(cradle: Cradle, options: Options) {
  const { clock, logger } = cradle
  const now = () => clock.now()
  const local = createLocalWindows({ now })
  const shared: Windows | null = cradle.redis ? createRedisWindows({ redis: cradle.redis, now, leaseMs: options.lease_ms }) : null
  const globalScope: ScopeLimits | null = options.global_max_parallel_requests === undefined ? null
    : { scope: 'global:proxy', rpm: null, tpm: null, parallel: options.global_max_parallel_requests }
  const slotPrefix = `${randomUUID().slice(0, 8)}:`
  let slotSeq = 0
  let sharedUsable = true
  /** An outage was announced and Redis has not answered since. */
  let outage = false

  function sharedFailed(err: unknown): void {
    if (!outage) {
      outage = true
      logger.warn('rate-limit: Redis unreachable; counting on this replica only until it is back', { cause: (err as Error).message })
    }
    if (sharedUsable) {
      sharedUsable = false
      setTimeout(() => (sharedUsable = true), RETRY_SHARED_MS).unref()
    }
  }

  /** The call's token reservation: prompt estimate + its output cap (embeddings have no output). */
  function estimate(op: Operation, body: Record<string, unknown> | null): number {
    if (!body) return 0
    const prompt = promptTokensEstimate(op, body)
    // Only chat and text completions have an output cap to reserve; embeddings and media calls are their input.
    if (op !== 'chat' && op !== 'completions') return prompt
    const max = limitOf(body.max_tokens) ?? limitOf(body.max_completion_tokens) ?? options.default_max_tokens
    return Math.ceil(prompt + max)
  }

  function refuse(r: Extract<AdmitResult, { ok: false }>, scopes: readonly ScopeLimits[], at: number): never {
    const who = describe(scopes[r.index]!.scope)
    if (r.kind === 'parallel') {
      throw gatewayError('GW_ERR_RATE_LIMIT',
        `Max parallel request limit reached. Hit limit for ${who}. max_parallel_requests: ${r.limit}, current_parallel_requests: ${r.current}`,
        { retryAfter: PARALLEL_RETRY_S })
    }
    const reset = (windowOf(at) + 1) * WINDOW_MS
    const retryAfter = Math.max(1, Math.ceil((reset - at) / 1000))
    const requests = r.kind === 'rpm'
    const headers: Record<string, string> = requests
      ? { 'x-ratelimit-limit-requests': String(r.limit), 'x-ratelimit-remaining-requests': '0' }
      : { 'x-ratelimit-limit-tokens': String(r.limit), 'x-ratelimit-remaining-tokens': '0' }
    throw gatewayError('GW_ERR_RATE_LIMIT',
      `Rate limit exceeded for ${who}. Limit type: ${requests ? 'requests' : 'tokens'}. ` +
      `${requests ? `rpm_limit: ${r.limit}, current_rpm: ${r.current}` : `tpm_limit: ${r.limit}, current_tpm: ${r.current}`}. ` +
      `Limit resets at: ${new Date(reset).toISOString()}`,
      { retryAfter, headers })
  }

  async function finish(on: Windows, scopes: readonly ScopeLimits[], ticket: Ticket, tokens: number): Promise<void> {
    try {
      await on.finish(scopes, ticket, now(), tokens)
    } catch (err) {
      // Redis went away mid-call: the parallel slot frees with its lease, the tokens are not counted.
      logger.debug('rate-limit: could not finish a call on Redis; its slot frees with the lease', { cause: (err as Error).message })
    }
  }

  const middleware = async function rateLimit(ctx, next) {
    const state = ctx.state
    const p = state.principal
    if (!MODEL_KINDS.has(state.kind)) return next()
    let scopes = p === null ? null : scopesOf(p, state.model)
    // The gateway-wide cap holds for every model call, with or without a key.
    if (globalScope !== null) scopes = scopes === null ? [globalScope] : [...scopes, globalScope]
    if (scopes === null) return next()
    let tokens = 0
    for (const s of scopes) {
      if (s.tpm !== null) {
        tokens = estimate(state.kind as Operation, state.body)
        break
      }
    }
    const at = now()
    const slot = slotPrefix + (slotSeq++).toString(36)
    let on: Windows = local
    let r: AdmitResult | null = null
    if (shared !== null && sharedUsable) {
      try {
        r = await shared.admit(scopes, at, tokens, slot)
        on = shared
        if (outage) {
          outage = false
          logger.info('rate-limit: Redis answers again; counting there')
        }
      } catch (err) {
        sharedFailed(err)
      }
    }
    r ??= await local.admit(scopes, at, tokens, slot)
    if (!r.ok) refuse(r, scopes, at)

    // The tightest scope per dimension: the least remaining.
    let limR = -1
    let remR = Infinity
    let limT = -1
    let remT = Infinity
    for (let i = 0; i < scopes.length; i++) {
      const s = scopes[i]!
      if (s.rpm !== null) {
        const rem = Math.max(0, s.rpm - r.requests[i]!)
        if (rem < remR) { remR = rem; limR = s.rpm }
      }
      if (s.tpm !== null) {
        const rem = Math.max(0, s.tpm - r.tokens[i]!)
        if (rem < remT) { remT = rem; limT = s.tpm }
      }
    }
    if (limR >= 0) {
      ctx.set('x-ratelimit-limit-requests', String(limR))
      ctx.set('x-ratelimit-remaining-requests', String(remR))
    }
    if (limT >= 0) {
      ctx.set('x-ratelimit-limit-tokens', String(limT))
      ctx.set('x-ratelimit-remaining-tokens', String(remT))
    }
    const ticket = r.ticket
    const windows = on
    void state.done.then(() => finish(windows, scopes, ticket, state.usage?.total_tokens ?? 0))
    return next()
  } as GatewayMiddleware

  const self = {
    middleware,
    snapshot: (at: number) => local.snapshot(at),
    async close() {
      await local.close()
      await shared?.close()
    },
  }
  limiters.set(cradle, self)
  return self
}
