/**
 * Routes are declared, not mounted by hand: the core's own and every plugin's go through one registrar, so each
 * runs behind the same entry middleware (request id, scope, errors) and, unless public, the whole request chain.
 */
import type { GatewayMiddleware } from '../plugin.js'
import type { RequestKind } from '../state.js'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface RouteDef {
  method: HttpMethod
  /** One path or several aliases (`/v1/chat/completions`, `/chat/completions`). @koa/router syntax: `/x/:id`. */
  path: string | readonly string[]
  /** What the request is, for plugins that act on some kinds only (auth on all, budgets on model calls, ...). */
  kind: RequestKind
  /** The terminal handler: runs after the request chain. */
  handler: GatewayMiddleware
  /** Read the body as JSON into ctx.state.body before the chain (bounded by server.body_limit). */
  body?: boolean
  /** Skip the request chain: health checks, static assets. */
  public?: boolean
}

export interface RouteRegistrar {
  add(route: RouteDef): void
}

export function createRouteList(): { registrar: RouteRegistrar; routes: RouteDef[] } {
  const routes: RouteDef[] = []
  return { routes, registrar: { add: (r) => void routes.push(r) } }
}
