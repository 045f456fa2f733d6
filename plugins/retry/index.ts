/**
 * retry: an attempt-chain interceptor. A retryable failure (408, 429, 5xx, timeout, connection error) is tried
 * again, on the next deployment of the model group when it has several (as LiteLLM's router does), with
 * exponential backoff and full jitter. An upstream `retry-after` is honoured up to `max_retry_after`.
 * The number of retries is the request's own (`num_retries` in the body or `x-litellm-num-retries`, as LiteLLM
 * takes them), else the deployment's `max_retries` / `num_retries`, else this plugin's `num_retries`, default 0.
 * `retry_policy` (LiteLLM's RetryPolicy) sets the retries per error class, overriding the number above for that
 * class, also for classes that are not retried otherwise (a 400 with `BadRequestErrorRetries: 1` is tried twice);
 * `model_group_retry_policy` does the same per model group and wins over `retry_policy`. The most specific class
 * decides (a content-policy error is a BadRequestError too; its own entry comes first).
 * Every retry is logged with its cause.
 * A stream is retried only until its first event reached the client: dispatch primes streams for this.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { definePlugin } from '../../core/plugin.js'
import {
  AuthenticationError, BadRequestError, ContentPolicyViolationError, GatewayError, InternalServerError, RateLimitError, Timeout,
} from '../../core/errors.js'

/** LiteLLM's RetryPolicy fields: retries for one error class. */
export interface RetryPolicy {
  BadRequestErrorRetries?: number
  AuthenticationErrorRetries?: number
  TimeoutErrorRetries?: number
  RateLimitErrorRetries?: number
  ContentPolicyViolationErrorRetries?: number
  InternalServerErrorRetries?: number
}

type PolicyField = keyof RetryPolicy
/** Most specific class first: ContentPolicyViolationError extends BadRequestError. */
const POLICY_CLASSES: ReadonlyArray<readonly [abstract new (...a: never[]) => GatewayError, PolicyField]> = [
  [ContentPolicyViolationError, 'ContentPolicyViolationErrorRetries'],
  [BadRequestError, 'BadRequestErrorRetries'],
  [AuthenticationError, 'AuthenticationErrorRetries'],
  [Timeout, 'TimeoutErrorRetries'],
  [RateLimitError, 'RateLimitErrorRetries'],
  [InternalServerError, 'InternalServerErrorRetries'],
]

/** The policy's retries for this error, or undefined when the policy says nothing about its class. */
export function policyRetries(err: GatewayError, policy: RetryPolicy | undefined): number | undefined {
  if (!policy) return undefined
  for (const [cls, field] of POLICY_CLASSES) if (err instanceof cls) return policy[field]
  return undefined
}

const policySchema = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(POLICY_CLASSES.map(([, f]) => [f, { type: 'integer', minimum: 0 }])),
}

interface Options {
  num_retries: number
  /** Milliseconds before the first retry; doubles each time. */
  initial_backoff_ms: number
  /** Milliseconds, cap for one backoff. */
  max_backoff_ms: number
  /** Seconds: a longer upstream retry-after is not waited for; the error goes back to the client. */
  max_retry_after: number
  retry_policy?: RetryPolicy
  /** Per model group: { "gpt-4": { RateLimitErrorRetries: 5 } }. */
  model_group_retry_policy: Record<string, RetryPolicy>
}

export default definePlugin<Options>({
  name: 'retry',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      num_retries: { type: 'integer', minimum: 0, default: 0 },
      initial_backoff_ms: { type: 'integer', minimum: 0, default: 250 },
      max_backoff_ms: { type: 'integer', minimum: 0, default: 8000 },
      max_retry_after: { type: 'number', minimum: 0, default: 30 },
      retry_policy: policySchema,
      model_group_retry_policy: { type: 'object', additionalProperties: policySchema, default: {} },
    },
  },
  interceptor({ logger }, o) {
    const groupPolicies = new Map(Object.entries(o.model_group_retry_policy))
    const hasPolicy = o.retry_policy !== undefined || groupPolicies.size > 0
    return (next) => async function retry(attempt) {
      const state = attempt.state
      const targets = state.targets
      const start = Math.max(0, targets.indexOf(attempt.target))
      const max = state.numRetries ?? attempt.target.maxRetries ?? o.num_retries
      const policy = hasPolicy ? groupPolicies.get(attempt.target.modelName) ?? o.retry_policy : undefined
      state.maxRetries = max
      for (let i = 0; ; i++) {
        const target = targets.length > 1 ? targets[(start + i) % targets.length]! : attempt.target
        try {
          return await next(i === 0 ? attempt : { ...attempt, target, number: attempt.number + i })
        } catch (err) {
          if (!(err instanceof GatewayError) || attempt.state.signal.aborted) throw err
          // The group was refused before any call (state.routeError: pre-call checks, a full queue): trying it again
          // would only be refused again. The error goes on to the fallback plugin at once.
          if (err === state.routeError) throw err
          const allowed = policyRetries(err, policy)
          if (allowed === undefined ? !err.retryable || i >= max : i >= allowed) throw err
          if (err.retryAfter !== undefined && err.retryAfter > o.max_retry_after) throw err
          const backoff = Math.min(o.max_backoff_ms, o.initial_backoff_ms * 2 ** i) * Math.random()
          const wait = err.retryAfter !== undefined ? Math.max(err.retryAfter * 1000, backoff) : backoff
          const nextTarget = targets.length > 1 ? targets[(start + i + 1) % targets.length]! : attempt.target
          logger.info('retrying upstream call', {
            requestId: state.requestId, retry: i + 1, of: allowed ?? max, waitMs: Math.round(wait), cause: err.code, status: err.status,
            failedDeployment: (targets.length > 1 ? targets[(start + i) % targets.length]! : attempt.target).id, nextDeployment: nextTarget.id,
          })
          try {
            await sleep(wait, undefined, { signal: attempt.state.signal })
          } catch {
            throw err
          }
        }
      }
    }
  },
})
