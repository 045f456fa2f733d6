/**
 * Routes are declared, not mounted by hand: the core's own and every plugin's go through one registrar, so each
 * runs behind the same entry middleware (request id, scope, errors) and, unless public, the whole request chain.
 */
import type { GatewayMiddleware } from '../plugin.js'
import type { ClientFormat, RequestKind } from '../state.js'
import type { GatewayContext } from './respond.js'

/**
 * A model route whose clients speak another format (/v1/messages, /v1/responses). Its body is turned into the
 * OpenAI form before the request chain, so every plugin (budgets, rate limits, routing) reads the one form; the
 * route's handler writes the reply in the client's format, and errors are written in it (core/http/server.ts).
 */
export interface RouteFormat {
  name: Exclude<ClientFormat, 'openai'>
  /** The client's body -> the OpenAI request the chain runs (validated as one afterwards). May throw a GatewayError. */
  toOpenAI(ctx: GatewayContext, body: Record<string, unknown>): Record<string, unknown> | Promise<Record<string, unknown>>
}

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
  /**
   * The client format of a route that does not speak OpenAI's: with body: true its body is translated (toOpenAI);
   * either way its errors are written in that format.
   */
  format?: RouteFormat
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
