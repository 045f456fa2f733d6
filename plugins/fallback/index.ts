/**
 * fallback: the outermost attempt-chain interceptor. When the requested model group fails (after its retries), the
 * request moves to other model groups, in order, as LiteLLM's router does:
 *
 * - a retryable failure (408, 429, 5xx, timeouts, connection errors, every deployment cooling) tries the request's
 *   own `fallbacks: ["model-b"]` body field if given, else the group's entry in `fallbacks`
 *   (`[{ "gpt-4": ["gpt-3.5-turbo"] }]`), else `default_fallbacks` (a `"*"` entry in `fallbacks` is the same);
 * - a context-window error (GW_ERR_CONTEXT_WINDOW) tries the group's `context_window_fallbacks`, a content-policy
 *   error (GW_ERR_CONTENT_POLICY) its `content_policy_fallbacks`, and nothing else (LiteLLM raises them as they are
 *   when the group has no such list: a bigger or more lenient model is what they need, not any model);
 * - any other error (400, 401, 403, 404, a client that went away) goes back to the client as it is.
 *
 * For each fallback group: it is entered as the request chain entered the requested group (`cradle.groupEntries`:
 * the priority queue's capacity, the router's order and pre-call checks; a group that cannot take the call is skipped
 * for the next), its deployments in that order become `state.targets`, the attempt goes to the first (the retry and
 * cooldown plugins after this one work on that group), `state.fallbacks` counts it (LiteLLM's
 * x-litellm-attempted-fallbacks) and the fallback is logged. The deployment's own model is what goes upstream.
 * A stream falls back only before its first byte reached the client: dispatch primes streams, so a failure before
 * the first event is a thrown attempt, and a later one is not seen here. A body's `disable_fallbacks: true` turns
 * it off for that request. At most `max_fallbacks` groups are tried (LiteLLM default 5); the last error is returned.
 * The request's own timeouts (`timeout`, `stream_timeout`) hold for the fallback groups too.
 */
import { definePlugin } from '../../core/plugin.js'
import { GatewayError } from '../../core/errors.js'
import type { Attempt } from '../../core/pipeline.js'
import { withRequestTimeouts } from '../../core/models.js'
import type { Target } from '../../providers/types.js'

type GroupMap = Array<Record<string, string[]>>

export interface FallbackOptions {
  fallbacks: GroupMap
  default_fallbacks: string[]
  context_window_fallbacks: GroupMap
  content_policy_fallbacks: GroupMap
  max_fallbacks: number
}

const groupMap = {
  type: 'array',
  items: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string', minLength: 1 } } },
  default: [],
} as const

/** `[{a: [b]}, {c: [d]}]` -> Map a -> [b], c -> [d], built once at boot. */
function toMap(list: GroupMap): ReadonlyMap<string, readonly string[]> {
  const m = new Map<string, string[]>()
  for (const entry of list) for (const [k, v] of Object.entries(entry)) m.set(k, [...(m.get(k) ?? []), ...v])
  return m
}

/** The body's `fallbacks`: model names, or LiteLLM's `{ model: ... }` objects; anything else is ignored. */
function requestFallbacks(body: Record<string, unknown> | null): string[] | undefined {
  const v = body?.fallbacks
  if (!Array.isArray(v)) return undefined
  const out: string[] = []
  for (const x of v) {
    if (typeof x === 'string' && x) out.push(x)
    else if (x && typeof x === 'object' && typeof (x as { model?: unknown }).model === 'string') out.push((x as { model: string }).model)
  }
  return out
}

export default definePlugin<FallbackOptions>({
  name: 'fallback',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      fallbacks: groupMap,
      default_fallbacks: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
      context_window_fallbacks: groupMap,
      content_policy_fallbacks: groupMap,
      max_fallbacks: { type: 'integer', minimum: 0, default: 5 },
    },
  },
  interceptor({ models, logger, groupEntries }, o) {
    const regular = toMap(o.fallbacks)
    const contextWindow = toMap(o.context_window_fallbacks)
    const contentPolicy = toMap(o.content_policy_fallbacks)
    const defaults = o.default_fallbacks.length ? o.default_fallbacks : regular.get('*') ?? []

    function groupsFor(err: GatewayError, group: string, body: Record<string, unknown> | null): readonly string[] {
      if (err.code === 'GW_ERR_CONTEXT_WINDOW') return contextWindow.get(group) ?? []
      if (err.code === 'GW_ERR_CONTENT_POLICY') return contentPolicy.get(group) ?? []
      if (!err.retryable) return []
      return requestFallbacks(body) ?? regular.get(group) ?? defaults
    }

    return (next) => async function fallback(attempt: Attempt) {
      const state = attempt.state
      try {
        return await next(attempt)
      } catch (first) {
        if (!(first instanceof GatewayError) || state.body?.disable_fallbacks === true) throw first
        const group = attempt.target.modelName
        const groups = groupsFor(first, group, state.body)
        let last: unknown = first
        for (const name of groups.slice(0, o.max_fallbacks)) {
          if (name === group || state.signal.aborted) continue
          let group0
          try {
            group0 = models.resolve(name)
          } catch (err) {
            logger.warn('fallback group cannot be resolved; skipped', { requestId: state.requestId, modelGroup: group, fallback: name, err: (err as Error).message })
            continue
          }
          if (group0.length === 0) continue
          // The group's gate and order, as the request chain gave the requested group (queue capacity, strategy,
          // pre-call checks). A group that cannot take the call now is this fallback failing: on to the next.
          let entered: readonly Target[] = group0
          try {
            for (const enter of groupEntries) entered = await enter(state, name, entered)
          } catch (err) {
            if (!(err instanceof GatewayError)) throw err
            logger.info('fallback group cannot take the call; skipped', { requestId: state.requestId, modelGroup: group, fallback: name, cause: err.code })
            last = err
            continue
          }
          if (entered.length === 0) continue
          const targets = withRequestTimeouts(entered.slice(), state.requestTimeouts)
          state.targets = targets
          state.fallbacks++
          const cause = last as GatewayError
          logger.info('falling back to another model group', {
            requestId: state.requestId, modelGroup: group, fallback: name, attempt: state.fallbacks, cause: cause.code, status: cause.status,
          })
          try {
            return await next({ ...attempt, target: targets[0]!, number: state.attempts.length })
          } catch (err) {
            last = err
            // A fallback group failing for the request's own fault (400, 401) would fail the same way everywhere.
            if (!(err instanceof GatewayError) || !(err.retryable || err.code === first.code)) throw err
          }
        }
        throw last
      }
    }
  },
})
