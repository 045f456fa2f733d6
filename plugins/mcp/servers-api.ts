/**
 * LiteLLM's MCP management API: servers added, changed and removed at runtime, stored with the keys (store kind
 * `mcp_server`, so they come back after a restart and reach every replica through the 'invalidate' event).
 *
 *   GET    /v1/mcp/server                  the servers the caller may use (admins: all), LiteLLM_MCPServerTable-shaped
 *   GET    /v1/mcp/server/{server_id}      one (id, name or alias)
 *   POST   /v1/mcp/server                  admins: add (201); secrets may come in `credentials`
 *   PUT    /v1/mcp/server                  admins: change by body `server_id` (202); omitted fields are kept
 *   DELETE /v1/mcp/server/{server_id}      admins: remove (202)
 *   GET    /v1/mcp/server/health           [{server_id, server_name, status, ...}] (`server_ids` narrows)
 *   GET    /v1/mcp/tools                   {"tools": [...]} every tool the caller may use, prefixed names
 *   GET    /v1/mcp/access_groups           {"access_groups": [...]}
 *
 * Servers from the config file are listed but not changed here (400: change the file). Secrets never come back:
 * `credentials` is null, env and header values are masked, and callers other than admins see no URL or command.
 */
import { gatewayError } from '../../core/errors.js'
import { readJsonBody } from '../../core/http/body.js'
import type { RouteDef } from '../../core/http/routes.js'
import type { GatewayMiddleware } from '../../core/plugin.js'
import type { Cradle } from '../../core/container.js'
import { StoreConflictError, StoreUnavailableError, type Store } from '../../core/store.js'
import type { Principal } from '../../core/state.js'
import { isAdmin, visibleServers } from './access.js'
import { catalogFor } from './catalog.js'
import { restTool, namedServer } from './rest-api.js'
import { parseServerSpec, publicView, recordFromSpec, serverNameWarning, type SpecDefaults } from './spec.js'
import type { McpRegistry, McpServerHealth, McpServerSpec } from './types.js'

export interface ServersApiDeps {
  cradle: Cradle
  registry: McpRegistry
  defaults: SpecDefaults
  bodyLimit: number
}

/** LiteLLM's health words: healthy, unhealthy, unknown (still connecting). */
function statusOf(h: McpServerHealth | undefined): string {
  return h?.status === 'healthy' ? 'healthy' : h?.status === 'unhealthy' ? 'unhealthy' : 'unknown'
}

/** A server as the API shows it. */
function view(spec: McpServerSpec, health: McpServerHealth | undefined, admin: boolean): Record<string, unknown> {
  const v: Record<string, unknown> = {
    ...publicView(spec),
    credentials: null,
    static_headers: publicView(spec).headers,
    status: statusOf(health),
    last_health_check: health?.last_connected_at ?? health?.last_error_at ?? null,
    health_check_error: health?.error ?? null,
    teams: [],
  }
  if (!admin) {
    for (const k of ['url', 'command', 'token_url']) v[k] = null
    v.args = []
    v.env = {}
    v.headers = {}
    v.static_headers = {}
  }
  return v
}

function forbidden(route: string): never {
  throw gatewayError('GW_ERR_FORBIDDEN', `Only proxy admins may call ${route}.`, { openaiCode: 'admin_only' })
}

function storeOf(cradle: Cradle): Store {
  const store = cradle.store
  if (!store) throw gatewayError('GW_ERR_NO_STORE', 'No connected db.')
  return store
}

function storeFailure(err: unknown): unknown {
  if (err instanceof StoreConflictError) return gatewayError('GW_ERR_CONFLICT', `MCP server ${err.field} already exists.`, { param: err.field })
  if (err instanceof StoreUnavailableError) return gatewayError('GW_ERR_STORE_UNAVAILABLE', 'The database cannot be reached; retry shortly.', { cause: err })
  return err
}

/** A store operation whose failures the client gets as a 409 (a taken name) or a 503 (the database is down). */
async function stored<T>(op: Promise<T>): Promise<T> {
  try {
    return await op
  } catch (err) {
    throw storeFailure(err)
  }
}

function queryList(v: string | string[] | undefined): string[] {
  if (v === undefined) return []
  return (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)
}

export function serversApiRoutes(deps: ServersApiDeps): RouteDef[] {
  const { cradle, registry } = deps
  const healthOf = () => new Map(registry.health().map((h) => [h.server_id, h]))
  const visibleTo = (p: Principal | null) => (isAdmin(p) ? registry.servers() : visibleServers(p, registry))
  const now = () => new Date(cradle.clock.now()).toISOString()

  /** One name may serve one server: a second with the same name (or id) is a conflict. */
  function checkFree(spec: McpServerSpec, self: string | null): void {
    for (const s of registry.servers()) {
      if (s.server_id === self) continue
      if (s.server_id === spec.server_id) throw gatewayError('GW_ERR_CONFLICT', `MCP server with server_id '${spec.server_id}' already exists.`, { param: 'server_id' })
      if (s.server_name === spec.server_name) throw gatewayError('GW_ERR_CONFLICT', `MCP server with server_name '${spec.server_name}' already exists.`, { param: 'server_name' })
    }
  }

  const route = (method: RouteDef['method'], path: string, handler: GatewayMiddleware): RouteDef => ({ method, path, kind: 'management', handler })

  return [
    route('GET', '/v1/mcp/server', async function listMcpServers(ctx) {
      const p = ctx.state.principal
      const health = healthOf()
      ctx.body = visibleTo(p).map((s) => view(s, health.get(s.server_id), isAdmin(p)))
    }),
    route('GET', '/v1/mcp/server/health', async function mcpServerHealth(ctx) {
      const wanted = new Set(queryList(ctx.query.server_ids as string | string[] | undefined))
      const visible = new Set(visibleTo(ctx.state.principal).map((s) => s.server_id))
      ctx.body = registry.health()
        .filter((h) => visible.has(h.server_id) && (wanted.size === 0 || wanted.has(h.server_id) || wanted.has(h.server_name)))
        .map((h) => ({ ...h, status: statusOf(h) }))
    }),
    route('GET', '/v1/mcp/tools', async function listMcpTools(ctx) {
      const { tools } = await catalogFor(ctx.state.principal, registry).tools(ctx.state.signal)
      ctx.body = { tools: tools.map((x) => restTool(x.spec, x.tool, x.tool.prefixed)) }
    }),
    route('GET', '/v1/mcp/access_groups', async function listMcpAccessGroups(ctx) {
      const groups = new Set<string>()
      for (const s of visibleTo(ctx.state.principal)) for (const g of s.mcp_access_groups) groups.add(g)
      ctx.body = { access_groups: [...groups].sort() }
    }),
    route('GET', '/v1/mcp/server/:server_id', async function getMcpServer(ctx) {
      const p = ctx.state.principal
      const id = (ctx as unknown as { params: { server_id: string } }).params.server_id
      if (!registry.server(id)) throw gatewayError('GW_ERR_NOT_FOUND', `MCP Server with id ${id} not found`, { param: 'server_id' })
      const spec = isAdmin(p) ? registry.server(id)! : namedServer(p, registry, id)
      ctx.body = view(spec, healthOf().get(spec.server_id), isAdmin(p))
    }),
    route('POST', '/v1/mcp/server', async function addMcpServer(ctx) {
      const p = ctx.state.principal
      if (!isAdmin(p)) forbidden('POST /v1/mcp/server')
      const store = storeOf(cradle)
      const body = await readJsonBody(ctx.req, deps.bodyLimit)
      const at = now()
      const spec = parseServerSpec(null, { ...body, created_at: at, updated_at: at, created_by: p?.userId ?? null, updated_by: p?.userId ?? null }, deps.defaults, 'db', at)
      checkFree(spec, null)
      const warning = serverNameWarning(spec.server_name, registry.separator)
      if (warning) cradle.logger.warn(warning)
      await stored(store.insert('mcp_server', recordFromSpec(spec)))
      await registry.put(spec)
      cradle.events.emit('invalidate', { kind: 'mcp_server', id: spec.server_id })
      ctx.status = 201
      ctx.body = view(spec, healthOf().get(spec.server_id), true)
    }),
    route('PUT', '/v1/mcp/server', async function updateMcpServer(ctx) {
      const p = ctx.state.principal
      if (!isAdmin(p)) forbidden('PUT /v1/mcp/server')
      const store = storeOf(cradle)
      const body = await readJsonBody(ctx.req, deps.bodyLimit)
      const id = body.server_id
      if (typeof id !== 'string' || id === '') {
        throw gatewayError('GW_ERR_VALIDATION', "Missing required parameter: 'server_id'.", { param: 'server_id' })
      }
      const current = registry.server(id)
      if (current?.source === 'config') {
        throw gatewayError('GW_ERR_VALIDATION', `MCP server '${current.server_name}' is defined in the config file; change it there.`, { param: 'server_id' })
      }
      const record = await stored(store.get('mcp_server', current?.server_id ?? id))
      if (!record) throw gatewayError('GW_ERR_NOT_FOUND', `MCP Server not found, passed server_id=${id}`, { param: 'server_id' })
      // Omitted fields keep their values; `credentials` merge over the stored secrets.
      const creds = body.credentials && typeof body.credentials === 'object' ? body.credentials as Record<string, unknown> : {}
      const { credentials: _c, ...fields } = body
      const merged = { ...record, ...creds, ...fields, server_id: record.server_id, created_at: record.created_at, updated_at: now(), updated_by: p?.userId ?? null }
      const spec = parseServerSpec(null, merged, deps.defaults, 'db', now())
      checkFree(spec, record.server_id)
      const updated = await stored(store.update('mcp_server', record.server_id, recordFromSpec(spec)))
      if (!updated) throw gatewayError('GW_ERR_NOT_FOUND', `MCP Server not found, passed server_id=${id}`, { param: 'server_id' })
      await registry.put(spec)
      cradle.events.emit('invalidate', { kind: 'mcp_server', id: spec.server_id })
      ctx.status = 202
      ctx.body = view(spec, healthOf().get(spec.server_id), true)
    }),
    route('DELETE', '/v1/mcp/server/:server_id', async function deleteMcpServer(ctx) {
      const p = ctx.state.principal
      if (!isAdmin(p)) forbidden('DELETE /v1/mcp/server')
      const store = storeOf(cradle)
      const id = (ctx as unknown as { params: { server_id: string } }).params.server_id
      const current = registry.server(id)
      if (current?.source === 'config') {
        throw gatewayError('GW_ERR_VALIDATION', `MCP server '${current.server_name}' is defined in the config file; remove it there.`, { param: 'server_id' })
      }
      const serverId = current?.server_id ?? id
      const deleted = await stored(store.delete('mcp_server', serverId))
      const removed = await registry.remove(serverId)
      if (!deleted && !removed) throw gatewayError('GW_ERR_NOT_FOUND', `MCP Server not found, passed server_id=${id}`, { param: 'server_id' })
      cradle.events.emit('invalidate', { kind: 'mcp_server', id: serverId })
      ctx.status = 202
      ctx.body = { server_id: serverId, deleted: true }
    }),
  ]
}

