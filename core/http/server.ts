/**
 * The Koa application: one entry middleware (request id, per-request scope, abort signal, error rendering), then
 * every declared route. Non-public routes run the request chain before their handler.
 */
import Koa from 'koa'
import Router from '@koa/router'
import compose from 'koa-compose'
import type { AwilixContainer } from 'awilix'
import type { Cradle } from '../container.js'
import { asGatewayError, gatewayError, toErrorBody } from '../errors.js'
import { anthropicErrorBody } from '../formats/anthropic-reply.js'
import type { Logger } from '../logger.js'
import type { ClientFormat, GatewayState } from '../state.js'
import { beginRequest } from '../request.js'
import type { GatewayMiddleware } from '../plugin.js'
import { chainTimings, composeRequestChain } from '../pipeline.js'
import { prepareModelRequest } from './handlers.js'
import { multiModel } from './multi.js'
import type { GatewayContext } from './respond.js'
import type { RouteDef } from './routes.js'
import type { Operation } from '../openai/types.js'

export interface InFlight {
  draining: boolean
  /** Resolvers waiting for the last active request to end. */
  idle: Array<() => void>
  /** Requests in progress: drain waits for them, and a shutdown deadline ends them properly (SSE error event, abort). */
  active: Set<ActiveRequest>
}

export interface ActiveRequest {
  ctx: GatewayContext
  abort: AbortController
}

export interface HttpAppOptions {
  container: AwilixContainer<Cradle>
  logger: Logger
  middleware: readonly GatewayMiddleware[]
  /** The plugin each middleware belongs to (per-plugin timings). */
  middlewareNames?: readonly string[]
  routes: readonly RouteDef[]
  bodyLimit: number
  inFlight: InFlight
  corsOrigins: readonly string[]
  /** One info line per request (id, route, model, deployment, status, attempts, latency, usage). Default on. */
  accessLog?: boolean
}

export function createHttpApp(o: HttpAppOptions): Koa<GatewayState> {
  const app = new Koa<GatewayState>()
  app.silent = true
  app.on('error', (err: unknown) => o.logger.debug('koa error', { err }))
  if (o.corsOrigins.length) app.use(cors(o.corsOrigins))
  app.use(gatewayEntry(o))

  const router = new Router<GatewayState>()
  // Routes without parameters are also found by an exact lookup, before @koa/router, which tests the path against
  // every route's pattern in turn (a tenth of a plain call's CPU with the management API's hundred-odd routes, by
  // profile). Anything else (a trailing slash, other letter case, HEAD, a path parameter) goes through the router.
  const exact = new Map<string, GatewayMiddleware>()
  for (const route of o.routes) {
    const stack: GatewayMiddleware[] = []
    if (route.body) stack.push(prepareModelRequest(route.kind as Operation, o.bodyLimit, () => o.inFlight.draining, route.format))
    else if (route.format) stack.push(clientFormat(route.format.name))
    const chain = route.public ? route.handler : composeRequestChain(o.middleware, markKind(route), o.middlewareNames)
    // Chat takes several models in one request (LiteLLM's batch completions): each runs the chain on its own.
    if (route.body && route.kind === 'chat' && !route.public && !route.format) stack.push(multiModel(chain, o.container, o.logger))
    stack.push(chain)
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete'
    const composed = stack.length === 1 ? stack[0]! : (compose(stack) as GatewayMiddleware)
    for (const p of typeof route.path === 'string' ? [route.path] : route.path) {
      ;(router[method] as (path: string, ...mw: GatewayMiddleware[]) => unknown)(p, ...stack)
      const key = `${route.method.toUpperCase()} ${p}`
      if (!/[:*(]/.test(p) && !exact.has(key)) exact.set(key, composed)
    }
  }
  app.use(function exactRoute(ctx, next) {
    const handler = exact.get(ctx.method + ' ' + ctx.path)
    return handler ? handler(ctx, next) : next()
  })
  app.use(router.routes() as unknown as GatewayMiddleware)
  app.use(async function noRoute(ctx) {
    // @koa/router records the layers whose path matched whatever the method: a match means 405, none 404.
    const matched = (ctx as unknown as { matched?: unknown[] }).matched
    if (matched && matched.length) {
      throw gatewayError('GW_ERR_METHOD_NOT_ALLOWED', `Method ${ctx.method} is not allowed on ${ctx.path}.`)
    }
    throw gatewayError('GW_ERR_ROUTE_NOT_FOUND', `Unknown request URL: ${ctx.method} ${ctx.path}.`)
  })
  return app
}

/** Response headers a browser client may read: the request id and LiteLLM's call headers. */
const EXPOSED_HEADERS = 'x-request-id, x-litellm-call-id, x-litellm-model-id, x-litellm-model-api-base, x-litellm-version, ' +
  'x-litellm-attempted-retries, x-litellm-attempted-fallbacks, x-litellm-max-retries, x-litellm-timeout, x-litellm-response-cost, ' +
  'x-litellm-key-spend, x-litellm-key-max-budget, x-litellm-overhead-duration-ms, x-litellm-response-duration-ms, retry-after'

/**
 * CORS for browser clients, as LiteLLM allows by default: preflights are answered here, before any auth, and
 * every response names the allowed origin.
 */
function cors(origins: readonly string[]): GatewayMiddleware {
  const any = origins.includes('*')
  const allowed = new Set(origins)
  return function cors(ctx, next) {
    const origin = ctx.get('origin')
    if (!origin || (!any && !allowed.has(origin))) return next()
    ctx.set('access-control-allow-origin', any ? '*' : origin)
    if (!any) ctx.vary('origin')
    ctx.set('access-control-expose-headers', EXPOSED_HEADERS)
    if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
      ctx.set('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
      ctx.set('access-control-allow-headers', ctx.get('access-control-request-headers') || '*')
      ctx.set('access-control-max-age', '600') // 10 min
      ctx.status = 204
      return
    }
    return next()
  }
}

/** A route in another client format that reads its own body (count_tokens): its errors, auth's included, in that format. */
function clientFormat(name: ClientFormat): GatewayMiddleware {
  return function clientFormat(ctx, next) {
    ctx.state.format = name
    return next()
  }
}

/** Set ctx.state.kind for non-model routes before the chain (model routes set it while reading the body). */
function markKind(route: RouteDef): GatewayMiddleware {
  if (route.body) return route.handler
  const kind = route.kind
  const handler = route.handler
  return function routeHandler(ctx, next) {
    ctx.state.kind = kind
    return handler(ctx, next)
  }
}

function gatewayEntry(o: HttpAppOptions): GatewayMiddleware {
  const { container, logger, inFlight } = o
  const accessLog = o.accessLog !== false
  return async function gatewayEntry(ctx: GatewayContext, next) {
    const ac = new AbortController()
    const request = beginRequest(container, logger, ac.signal)
    const state = request.state
    ctx.state = state
    ctx.set('x-request-id', state.requestId)
    ctx.set('x-litellm-call-id', state.requestId)
    const active: ActiveRequest = { ctx, abort: ac }
    inFlight.active.add(active)
    const res = ctx.res
    // `done` resolves once the response is closed AND the handler has returned: a stream's handler prices what was
    // used after the client went away, and budgets/spend logs must see that cost. A handler that does not return
    // within HANDLER_GRACE_MS of the close (an upstream ignoring the abort) does not hold `done` up forever.
    let closed: { status: number; aborted: boolean } | null = null
    let handled = false
    let ended = false
    const end = () => {
      if (ended || !closed || !handled) return
      ended = true
      request.end(closed)
      if (accessLog) logRequest(logger, ctx, closed.aborted)
    }
    res.once('close', () => {
      const aborted = !res.writableFinished
      if (aborted) ac.abort()
      inFlight.active.delete(active)
      if (inFlight.active.size === 0) for (const r of inFlight.idle.splice(0)) r()
      closed = { status: res.statusCode, aborted }
      if (!handled) {
        setTimeout(() => {
          handled = true
          end()
        }, HANDLER_GRACE_MS).unref()
      }
      end()
    })
    if (inFlight.draining) ctx.set('connection', 'close')
    try {
      await next()
    } catch (err) {
      const e = asGatewayError(err)
      state.error = e
      if (e.code === 'GW_ERR_INTERNAL') logger.error('request failed', { requestId: state.requestId, err: e.cause ?? e })
      else logger.debug('request error', { requestId: state.requestId, code: e.code, status: e.status })
      if (ctx.headerSent || !ctx.writable || e.status === 499) return
      ctx.status = e.status
      if (e.retryAfter !== undefined) ctx.set('retry-after', String(Math.ceil(e.retryAfter)))
      if (e.headers) ctx.set(e.headers)
      // The Messages API's clients (Anthropic's SDK) read errors in Anthropic's shape.
      ctx.body = state.format === 'anthropic' ? anthropicErrorBody(e, state.requestId) : toErrorBody(e)
    } finally {
      handled = true
      end()
    }
  }
}

/** How long `done` waits for a handler after its response closed, ms. */
const HANDLER_GRACE_MS = 30_000

/** Probes are frequent and say nothing about traffic: logged at debug only. */
const PROBES: ReadonlySet<string> = new Set(['/health/liveliness', '/health/liveness', '/health/readiness'])

/**
 * The access line, written once the response is over (streams included): what was asked, what answered, how it
 * went. Only ids, names and numbers: never a key, a header or a prompt.
 */
function logRequest(logger: Logger, ctx: GatewayContext, aborted: boolean): void {
  const state = ctx.state
  const probe = PROBES.has(ctx.path)
  if (probe ? logger.level !== 'debug' : logger.level === 'warn' || logger.level === 'error' || logger.level === 'silent') return
  const fields: Record<string, unknown> = {
    requestId: state.requestId,
    method: ctx.method,
    route: ctx.path,
    status: ctx.res.statusCode,
    latencyMs: Date.now() - state.startedAt,
  }
  if (state.model) {
    fields.model = state.model
    fields.stream = state.stream
    fields.attempts = state.attempts.length
    if (state.target) {
      fields.deployment = state.target.id
      fields.provider = state.target.provider
    }
    if (state.usage) {
      fields.promptTokens = state.usage.prompt_tokens
      fields.completionTokens = state.usage.completion_tokens
    }
    if (state.costUsd) fields.costUsd = state.costUsd
    if (state.timings.queue_ms !== undefined) fields.queueMs = state.timings.queue_ms
    if (state.timings.overhead_ms !== undefined) fields.overheadMs = state.timings.overhead_ms
    fields.upstreamMs = Math.round(state.upstreamMs * 1000) / 1000
    fields.pluginMs = chainTimings(state, state.timings.response_ms !== undefined ? state.startedHr + state.timings.response_ms : performance.now())
  }
  if (state.principal && state.principal.kind !== 'anonymous') fields.principal = state.principal.id
  if (state.error) fields.error = state.error.code
  if (aborted) fields.aborted = true
  if (probe) logger.debug('request', fields)
  else logger.info('request', fields)
}
