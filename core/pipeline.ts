/**
 * The two chains.
 *
 * The request chain is Koa middleware composed with koa-compose, once per route at boot: the plugins' middleware
 * in config order, then the route's terminal handler.
 *
 * The attempt chain wraps the terminal upstream dispatch the way undici interceptors wrap a dispatcher: each
 * interceptor gets `next` and returns a handler. koa-compose refuses a second `next()`, so anything that tries
 * again (retry, fallback) lives here instead.
 */
import compose from 'koa-compose'
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

export function composeAttemptChain(interceptors: readonly AttemptInterceptor[], terminal: AttemptHandler): AttemptHandler {
  let handler = terminal
  for (let i = interceptors.length - 1; i >= 0; i--) handler = interceptors[i]!(handler)
  return handler
}

/** Instantiate each plugin's middleware and interceptor once, in config order. */
export function buildChains(loaded: readonly LoadedPlugin[], cradle: Cradle): {
  middleware: GatewayMiddleware[]
  interceptors: AttemptInterceptor[]
} {
  const middleware: GatewayMiddleware[] = []
  const interceptors: AttemptInterceptor[] = []
  for (const { plugin, options } of loaded) {
    if (plugin.middleware) middleware.push(plugin.middleware(cradle, options))
    if (plugin.interceptor) interceptors.push(plugin.interceptor(cradle, options))
  }
  return { middleware, interceptors }
}

/** The request chain for one route: plugins first, the route's own handler last. */
export function composeRequestChain(middleware: readonly GatewayMiddleware[], terminal: GatewayMiddleware): GatewayMiddleware {
  return compose([...middleware, terminal]) as GatewayMiddleware
}
