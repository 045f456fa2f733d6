/**
 * cooldown: an attempt-chain interceptor that takes a failing deployment out of its model group for a while, as
 * LiteLLM's router does (router_settings.allowed_fails, cooldown_time).
 *
 * - Which failures count (LiteLLM's `_is_cooldown_required`): 429, 401, 404, 408 (timeouts) and every 5xx (server
 *   errors, connection errors). Other 4xx are the request's fault, and a client that went away (499) is no one's.
 * - A deployment cools for `cooldown_time` seconds once it failed more than `allowed_fails` times in the current
 *   minute; a status in `cool_at_once` (default 429, 401, 404: rate-limited, or misconfigured, so another call
 *   within seconds cannot help) cools it at once.
 * - `allowed_fails_policy` (LiteLLM's, per error class: BadRequestErrorAllowedFails, RateLimitErrorAllowedFails, ...)
 *   gives a class its own count instead (a class it names counts even when the status alone would not).
 * - A group of one deployment is never cooled: there is nothing to send its traffic to instead.
 * - While cooling, a deployment is left out of `state.targets` for the attempts of this group (retry iterates what
 *   is left). When the whole group cools, the call fails at once with 429 "No deployments available for selected
 *   model" and a retry-after until the first comes back, as LiteLLM answers; a fallback plugin before this one then
 *   moves on to the fallback groups. (GW_ERR_RATE_LIMIT, not GW_ERR_NO_DEPLOYMENT: LiteLLM's status is 429, and
 *   OpenAI clients wait out a 429's retry-after where a 503 is retried blind.)
 * - Shared between replicas through `cradle.redis` when a state-redis plugin is configured (store-redis.ts), in
 *   process otherwise or while Redis is down.
 *
 * Place it after `fallback` and before `retry` (`upstream: [fallback, cooldown, retry]`): it filters each group
 * once, then records every attempt of that group (from `state.attempts`) when the group's retries are over.
 */
import { asValue } from 'awilix'
import { definePlugin } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import type { AttemptRecord } from '../../core/state.js'
import type { Logger } from '../../core/logger.js'
import type { Target } from '../../providers/types.js'
import { redisCooldowns } from './store-redis.js'

export interface CooldownOptions {
  /** Failures per minute a deployment may have before it cools (LiteLLM default 3). */
  allowed_fails: number
  /** Seconds a deployment stays out (LiteLLM default 5). */
  cooldown_time: number
  /** Statuses that cool a deployment at the first failure. */
  cool_at_once: number[]
  /**
   * LiteLLM's `allowed_fails_policy`: failures of one class a deployment may have in a minute before it cools,
   * replacing `allowed_fails` and `cool_at_once` for that class (and making a class count that otherwise does not,
   * such as 400s).
   */
  allowed_fails_policy?: Partial<Record<PolicyClass, number>>
}

/** LiteLLM's allowed_fails_policy keys. */
export type PolicyClass = 'BadRequestErrorAllowedFails' | 'AuthenticationErrorAllowedFails' | 'TimeoutErrorAllowedFails' |
  'RateLimitErrorAllowedFails' | 'ContentPolicyViolationErrorAllowedFails' | 'InternalServerErrorAllowedFails'
const POLICY_CLASSES: readonly PolicyClass[] = ['BadRequestErrorAllowedFails', 'AuthenticationErrorAllowedFails', 'TimeoutErrorAllowedFails',
  'RateLimitErrorAllowedFails', 'ContentPolicyViolationErrorAllowedFails', 'InternalServerErrorAllowedFails']

/** The policy class of a failed attempt, as LiteLLM's exception types divide them. */
export function policyClass(status: number, code: string | undefined): PolicyClass | null {
  if (code === 'GW_ERR_CONTENT_POLICY') return 'ContentPolicyViolationErrorAllowedFails'
  if (status === 429) return 'RateLimitErrorAllowedFails'
  if (status === 401) return 'AuthenticationErrorAllowedFails'
  if (status === 408) return 'TimeoutErrorAllowedFails'
  if (status >= 500) return 'InternalServerErrorAllowedFails'
  if (status === 400) return 'BadRequestErrorAllowedFails'
  return null
}

export interface CooldownParams {
  allowedFails: number
  cooldownMs: number
  /** Length of the failure-counting window, ms. */
  windowMs: number
}

/** A local and a Redis implementation behind the same two methods. Times are ms since the epoch. */
export interface CooldownStore {
  /**
   * Record a failure of deployment `id`; returns when it cools until, or 0 when it does not cool. `allowed`: the
   * failures this minute it may have (default: the store's allowed_fails).
   */
  fail(id: string, now: number, immediate: boolean, allowed?: number): Promise<number>
  /** Per id, when it cools until (0 or a past time = available). */
  until(ids: readonly string[], now: number): Promise<number[]>
}

/** LiteLLM counts failures per minute: 60 s. */
const WINDOW_MS = 60_000

export function localCooldowns(p: CooldownParams): CooldownStore {
  // Both maps hold at most one entry per deployment.
  const fails = new Map<string, { window: number; count: number }>()
  const cooling = new Map<string, number>()
  return {
    async fail(id, now, immediate, allowed = p.allowedFails) {
      const window = Math.floor(now / p.windowMs)
      let f = fails.get(id)
      if (!f || f.window !== window) fails.set(id, (f = { window, count: 0 }))
      f.count++
      if (!immediate && f.count <= allowed) return 0
      const until = now + p.cooldownMs
      cooling.set(id, until)
      return until
    },
    async until(ids, now) {
      if (cooling.size === 0) return ids.map(() => 0)
      return ids.map((id) => {
        const u = cooling.get(id)
        if (u === undefined) return 0
        if (u <= now) {
          cooling.delete(id)
          return 0
        }
        return u
      })
    },
  }
}

/** LiteLLM's `_is_cooldown_required`, by status. */
export function countsForCooldown(status: number): boolean {
  return status === 429 || status === 401 || status === 404 || status === 408 || status >= 500
}

/** What /metrics reads (cooldownStatus): deployments cooling now, and how often each was cooled, per status. */
export interface CooldownStatus {
  cooling: Array<{ id: string; until: number }>
  cooledDown: Array<{ id: string; status: number; count: number }>
}

declare module '../../core/container.js' {
  interface Cradle {
    /** Read-only cooldown state for /metrics (registered only with the cooldown plugin). */
    cooldownStatus?: { status(): Promise<CooldownStatus> }
  }
}

/** Per gateway (cradle): the store the interceptor uses, and cooldowns this replica started, by `id \u0000 status`. */
interface CooldownState {
  store: CooldownStore | null
  cooled: Map<string, { id: string; status: number; count: number }>
}
const states = new WeakMap<object, CooldownState>()

function stateOf(cradle: object): CooldownState {
  let st = states.get(cradle)
  if (!st) states.set(cradle, (st = { store: null, cooled: new Map() }))
  return st
}

function countCooled(st: CooldownState, id: string, status: number): void {
  const k = `${id}\u0000${status}`
  const c = st.cooled.get(k)
  if (c) c.count++
  else st.cooled.set(k, { id, status, count: 1 })
}

async function recordFailures(
  store: CooldownStore, records: readonly AttemptRecord[], from: number, now: number, atOnce: ReadonlySet<number>,
  policy: CooldownOptions['allowed_fails_policy'], logger: Logger, requestId: string, st?: CooldownState,
): Promise<void> {
  for (let i = from; i < records.length; i++) {
    const r = records[i]!
    if (r.status === 200) continue
    const cls = policy ? policyClass(r.status, r.errorCode) : null
    const allowed = cls ? policy![cls] : undefined
    let until
    if (allowed !== undefined) until = await store.fail(r.targetId, now, false, allowed)
    else if (countsForCooldown(r.status)) until = await store.fail(r.targetId, now, atOnce.has(r.status))
    else continue
    if (until > 0) {
      if (st) countCooled(st, r.targetId, r.status)
      logger.warn('deployment cooling down', { requestId, deployment: r.targetId, status: r.status, cause: r.errorCode, cooldownSeconds: (until - now) / 1000 })
    }
  }
}

export default definePlugin<CooldownOptions>({
  name: 'cooldown',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowed_fails: { type: 'integer', minimum: 0, default: 3 },
      cooldown_time: { type: 'number', exclusiveMinimum: 0, default: 5 },
      cool_at_once: { type: 'array', items: { type: 'integer', minimum: 400, maximum: 599 }, default: [429, 401, 404] },
      allowed_fails_policy: {
        type: 'object',
        additionalProperties: false,
        properties: Object.fromEntries(POLICY_CLASSES.map((k) => [k, { type: 'integer', minimum: 0 }])),
      },
    },
  },
  register(container) {
    const status = async (): Promise<CooldownStatus> => {
      const cradle = container.cradle
      const st = stateOf(cradle)
      const cooledDown = [...st.cooled.values()].map((c) => ({ ...c }))
      if (!st.store) return { cooling: [], cooledDown }
      const now = cradle.clock.now()
      const ids = cradle.models.deployments().map((t) => t.id)
      const until = await st.store.until(ids, now)
      const cooling: CooldownStatus['cooling'] = []
      ids.forEach((id, i) => {
        if (until[i]! > now) cooling.push({ id, until: until[i]! })
      })
      return { cooling, cooledDown }
    }
    container.register({ cooldownStatus: asValue({ status }) })
  },
  interceptor(cradle, o) {
    const { logger, clock, redis } = cradle
    const params: CooldownParams = { allowedFails: o.allowed_fails, cooldownMs: o.cooldown_time * 1000, windowMs: WINDOW_MS }
    const local = localCooldowns(params)
    const store = redis ? redisCooldowns(redis, local, params, logger) : local
    const st = stateOf(cradle)
    st.store = store
    const atOnce: ReadonlySet<number> = new Set(o.cool_at_once)
    return (next) => async function cooldown(attempt) {
      const state = attempt.state
      const group: readonly Target[] = state.targets.length > 0 ? state.targets : [attempt.target]
      if (group.length < 2) return next(attempt)
      const now = clock.now()
      const until = await store.until(group.map((t) => t.id), now)
      let target = attempt.target
      if (until.some((u) => u > now)) {
        const open = group.filter((_, i) => until[i]! <= now)
        if (open.length === 0) {
          const back = Math.max(1, Math.ceil((Math.min(...until) - now) / 1000))
          throw gatewayError('GW_ERR_RATE_LIMIT',
            `No deployments available for selected model, Try again in ${back} seconds. Passed model=${target.modelName}. ` +
            `Every deployment of the group is cooling down after failures.`, { retryAfter: back })
        }
        state.targets = open
        if (!open.some((t) => t.id === target.id)) target = open[0]!
        logger.debug('cooldown: skipping cooling deployments', {
          requestId: state.requestId, modelGroup: target.modelName, cooling: group.filter((_, i) => until[i]! > now).map((t) => t.id),
        })
      }
      const from = state.attempts.length
      try {
        return await next(target === attempt.target ? attempt : { ...attempt, target })
      } finally {
        // Only a failed attempt costs a store call; a clean success returns without one.
        if (state.attempts.length > from) await recordFailures(store, state.attempts, from, clock.now(), atOnce, o.allowed_fails_policy, logger, state.requestId, st)
      }
    }
  },
})
