/**
 * The two chains.
 *
 * The request chain is Koa middleware composed once per route at boot (koa-compose's semantics, plus per-step
 * timestamps): the plugins' middleware in config order, then the route's terminal handler.
 *
 * The attempt chain wraps the terminal upstream dispatch the way undici interceptors wrap a dispatcher: each
 * interceptor gets `next` and returns a handler. The request chain refuses a second `next()`, so anything that tries
 * again (retry, fallback) lives here instead.
 */
import type { GatewayState } from './state.js'
import type { GatewayMiddleware, LoadedPlugin } from './plugin.js'
import type { Cradle } from './container.js'
import type { Operation, ProviderResult, Target } from '../providers/types.js'

export interface Attempt {
  op: Operation
  target: Target
  /** The OpenAI-format request body (validated). Interceptors may replace it on the attempt they pass on. */
  request: Record<string, unknown>
  stream: boolean
  state: GatewayState
  /** How many attempts ran before this one, for this request. */
  number: number
}

export type AttemptHandler = (attempt: Attempt) => Promise<ProviderResult>
export type AttemptInterceptor = (next: AttemptHandler) => AttemptHandler

/**
 * Entering a model group other than the one the request chain routed (a fallback group). The request-chain plugins
 * that act on a group (the priority queue's capacity, the router's strategy and pre-call checks) each register one
 * in `cradle.groupEntries` when their middleware is built, so a fallback group is gated and ordered as the requested
 * group was. They run in chain order, each given the previous one's targets (the model table's group array first);
 * the result is the order to try the group in. A GatewayError thrown means the group cannot take the call now (full,
 * every deployment filtered out): the fallback plugin moves on to the next group.
 */
export type GroupEntry = (state: GatewayState, group: string, targets: readonly Target[]) => readonly Target[] | Promise<readonly Target[]>

export function composeAttemptChain(interceptors: readonly AttemptInterceptor[], terminal: AttemptHandler): AttemptHandler {
  let handler = terminal
  for (let i = interceptors.length - 1; i >= 0; i--) handler = interceptors[i]!(handler)
  return handler
}

/** Instantiate each plugin's middleware and interceptor once, in config order. */
export function buildChains(loaded: readonly LoadedPlugin[], cradle: Cradle): {
  middleware: GatewayMiddleware[]
  /** The plugin each middleware belongs to, in the same order (per-plugin timings name them). */
  names: string[]
  interceptors: AttemptInterceptor[]
} {
  const middleware: GatewayMiddleware[] = []
  const names: string[] = []
  const interceptors: AttemptInterceptor[] = []
  for (const { plugin, options } of loaded) {
    if (plugin.middleware) {
      middleware.push(plugin.middleware(cradle, options))
      names.push(plugin.name)
    }
    if (plugin.interceptor) interceptors.push(plugin.interceptor(cradle, options))
  }
  return { middleware, names, interceptors }
}

/**
 * The request chain for one route: plugins first, the route's own handler last. Koa's compose semantics (each
 * `next()` once, errors as rejections), plus a timestamp as each step is entered (`state.chainMarks`): the time
 * from entering plugin i to entering the step after it is what plugin i spent before passing the request on
 * (lookups, reservations, a queue wait). The log record reports it per plugin (chainTimings).
 */
export function composeRequestChain(middleware: readonly GatewayMiddleware[], terminal: GatewayMiddleware, names: readonly string[] = []): GatewayMiddleware {
  const steps = [...middleware, terminal]
  const n = steps.length
  const stepNames = [...middleware.map((_, i) => names[i] ?? `middleware-${i}`), 'handler']
  return function requestChain(ctx, last) {
    const state = ctx.state
    state.chainNames = stepNames
    const marks = state.chainMarks
    marks.length = 0
    let index = -1
    function dispatch(i: number): Promise<void> {
      if (i <= index) return Promise.reject(new Error('next() called multiple times'))
      index = i
      marks.push(performance.now())
      const fn = i < n ? steps[i]! : last
      if (!fn) return Promise.resolve()
      try {
        return Promise.resolve(fn(ctx, () => dispatch(i + 1)))
      } catch (err) {
        return Promise.reject(err)
      }
    }
    return dispatch(0)
  }
}

/**
 * What each step of the request chain spent before passing the request on, ms (3 decimals), by plugin name; the
 * last step (the route handler) until the response headers were set. Empty when no chain ran.
 */
export function chainTimings(state: GatewayState, endHr: number): Record<string, number> {
  const out: Record<string, number> = {}
  const marks = state.chainMarks
  const names = state.chainNames
  if (!names) return out
  for (let i = 0; i < marks.length && i < names.length; i++) {
    const until = i + 1 < marks.length ? marks[i + 1]! : endHr
    out[names[i]!] = Math.round((until - marks[i]!) * 1000) / 1000
  }
  return out
}
