/**
 * Callbacks in code, as LiteLLM's `success_callback` / `failure_callback` functions: `onSuccess` / `onFailure` get one
 * event per call once it is over (a stream: once read to the end or cut off), with the request, the reply (a stream
 * assembled), usage, cost, the deployment and timings. They run off the call's path: a slow or throwing callback
 * never delays or fails the call (a throw is logged).
 */
import { definePlugin, type GatewayPlugin } from './plugin.js'
import type { Logger } from './logger.js'
import type { GatewayState, Outcome } from './state.js'
import { replyOf } from './openai/capture.js'
import { MODEL_OPERATIONS } from './openai/operations.js'

/** What a success or failure callback gets: LiteLLM's standard logging payload, the fields a callback uses. */
export interface CallEvent {
  requestId: string
  /** The operation: chat, embeddings, images, ... */
  callType: string
  /** The model group asked for. */
  model: string
  /** The deployment that served the call (the last one tried, on failure). */
  deployment: { id: string; provider: string; model: string } | null
  request: Record<string, unknown> | null
  /** The reply in OpenAI form (a stream assembled into its completion); null on failure. */
  response: unknown
  error: Error | null
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null
  /** USD. */
  cost: number
  startTime: Date
  endTime: Date
  /** Attempts made (1 = no retry), fallback groups entered, time in the priority queue. */
  attempts: number
  fallbacks: number
  queueMs: number
  stream: boolean
  /** The caller stopped reading (or aborted) before the reply was complete. */
  aborted: boolean
}

export interface Callbacks {
  /** Called when a call has succeeded (a stream: once read to the end). A throw is logged and ignored. */
  onSuccess?: (event: CallEvent) => void | Promise<void>
  /** Called when a call has failed (after its retries and fallbacks). */
  onFailure?: (event: CallEvent) => void | Promise<void>
}

/** The in-house plugin that calls onSuccess / onFailure when a call is over (a Router's, or the SDK's functions'). */
export function callbacksPlugin(o: Callbacks, logger: () => Logger | undefined): GatewayPlugin<Record<string, never>> {
  const onSuccess = o.onSuccess
  const onFailure = o.onFailure
  return definePlugin<Record<string, never>>({
    name: 'sdk-callbacks',
    middleware() {
      return function sdkCallbacks(ctx, next) {
        const state = ctx.state
        if (MODEL_OPERATIONS.has(state.kind)) {
          state.captureReply = true
          const startTime = new Date(state.startedAt)
          void state.done.then(async (outcome) => {
            const fn = outcome.error ? onFailure : onSuccess
            if (!fn) return
            try {
              await fn(callEvent(state, outcome, startTime))
            } catch (err) {
              logger()?.warn('Router callback failed', { requestId: state.requestId, err: (err as Error).message })
            }
          })
        }
        return next()
      }
    },
  })
}

function callEvent(state: GatewayState, outcome: Outcome, startTime: Date): CallEvent {
  const served = state.target ?? (state.attempts.length ? state.targets.find((t) => t.id === state.attempts.at(-1)!.targetId) : undefined)
  return {
    requestId: state.requestId,
    callType: state.kind,
    model: state.model,
    deployment: served ? { id: served.id, provider: served.provider, model: served.model } : null,
    request: state.body,
    response: outcome.error ? null : replyOf(state),
    error: outcome.error,
    usage: outcome.usage,
    cost: state.costUsd,
    startTime,
    endTime: new Date(),
    attempts: state.attempts.length,
    fallbacks: state.fallbacks,
    queueMs: state.timings.queue_ms ?? 0,
    stream: state.stream,
    aborted: outcome.aborted,
  }
}

