/**
 * retry: an attempt-chain interceptor. A retryable failure (408, 429, 5xx, timeout, connection error) is tried
 * again, on the next deployment of the model group when it has several (as LiteLLM's router does), with
 * exponential backoff and full jitter. An upstream `retry-after` is honoured up to `max_retry_after`.
 * The number of retries is the request's own (`num_retries` in the body or `x-litellm-num-retries`, as LiteLLM
 * takes them), else the deployment's `max_retries` / `num_retries`, else this plugin's `num_retries`, default 0.
 * Every retry is logged with its cause.
 * A stream is retried only until its first event reached the client: dispatch primes streams for this.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { definePlugin } from '../../core/plugin.js'
import { GatewayError } from '../../core/errors.js'

interface Options {
  num_retries: number
  /** Milliseconds before the first retry; doubles each time. */
  initial_backoff_ms: number
  /** Milliseconds, cap for one backoff. */
  max_backoff_ms: number
  /** Seconds: a longer upstream retry-after is not waited for; the error goes back to the client. */
  max_retry_after: number
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
    },
  },
  interceptor({ logger }, o) {
    return (next) => async function retry(attempt) {
      const state = attempt.state
      const targets = state.targets
      const start = Math.max(0, targets.indexOf(attempt.target))
      const max = state.numRetries ?? attempt.target.maxRetries ?? o.num_retries
      state.maxRetries = max
      for (let i = 0; ; i++) {
        const target = targets.length > 1 ? targets[(start + i) % targets.length]! : attempt.target
        try {
          return await next(i === 0 ? attempt : { ...attempt, target, number: attempt.number + i })
        } catch (err) {
          if (!(err instanceof GatewayError) || !err.retryable || i >= max || attempt.state.signal.aborted) throw err
          if (err.retryAfter !== undefined && err.retryAfter > o.max_retry_after) throw err
          const backoff = Math.min(o.max_backoff_ms, o.initial_backoff_ms * 2 ** i) * Math.random()
          const wait = err.retryAfter !== undefined ? Math.max(err.retryAfter * 1000, backoff) : backoff
          const nextTarget = targets.length > 1 ? targets[(start + i + 1) % targets.length]! : attempt.target
          logger.info('retrying upstream call', {
            requestId: state.requestId, retry: i + 1, of: max, waitMs: Math.round(wait), cause: err.code, status: err.status,
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
