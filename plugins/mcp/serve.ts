/**
 * The gateway as an MCP server: `POST /mcp` (streamable HTTP, stateless) lists and calls every tool the caller's key
 * may use, across servers, by prefixed name (`everything-echo`). `/mcp/{servers}` and `/{servers}/mcp` (LiteLLM's
 * per-server URL; names, aliases or access groups, comma-separated) and the `x-mcp-servers` header narrow it.
 *
 * Stateless: each POST gets its own SDK server and transport, so any replica answers any request and no session is
 * kept; the key is checked on every request (auth runs first: no key or a wrong one is a 401). GET (a server-sent
 * notification stream) and DELETE (ending a session) are 405, as the transport spec allows without sessions.
 * A tool the caller may not use is an `isError` result naming it, as LiteLLM answers; an unknown tool a JSON-RPC
 * error; a server that is down or too slow an `isError` result with the reason.
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js'
import { gatewayError, GatewayError } from '../../core/errors.js'
import { readJsonBody } from '../../core/http/body.js'
import type { RouteDef } from '../../core/http/routes.js'
import type { GatewayContext } from '../../core/http/respond.js'
import type { Logger } from '../../core/logger.js'
import type { GatewayMiddleware } from '../../core/plugin.js'
import { toolAllowed, visibleServers } from './access.js'
import { catalogFor, runTool } from './catalog.js'
import type { McpRegistry, McpTool } from './types.js'

export interface ServeDeps {
  registry: McpRegistry
  logger: Logger
  bodyLimit: number
  /** The gateway's version, for `serverInfo` (known once the gateway started). */
  version: () => string
}

/** The SDK's server modules, loaded by the first /mcp request (a gateway nobody reaches over MCP never imports them). */
interface ServerSdk {
  Server: typeof import('@modelcontextprotocol/sdk/server/index.js').Server
  StreamableHTTPServerTransport: typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js').StreamableHTTPServerTransport
  types: typeof import('@modelcontextprotocol/sdk/types.js')
}
let loading: Promise<ServerSdk> | null = null

function loadSdk(): Promise<ServerSdk> {
  loading ??= Promise.all([
    import('@modelcontextprotocol/sdk/server/index.js'), import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(([server, http, types]) => ({ Server: server.Server, StreamableHTTPServerTransport: http.StreamableHTTPServerTransport, types }))
  return loading
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v.join(',') : v
  return s && s.trim() !== '' ? s : undefined
}

/** The tool as MCP clients see it from the gateway: its prefixed name, the rest as its server gave it. */
function listed(tool: McpTool): Tool {
  const t: Tool = { name: tool.prefixed, inputSchema: tool.inputSchema as Tool['inputSchema'] }
  if (tool.title !== undefined) t.title = tool.title
  if (tool.description !== undefined) t.description = tool.description
  if (tool.outputSchema !== undefined) t.outputSchema = tool.outputSchema as Tool['outputSchema']
  if (tool.annotations !== undefined) t.annotations = tool.annotations as Tool['annotations']
  return t
}

function errorResult(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true }
}

/** The SDK server for one request: tools/list and tools/call over what this caller may use. */
function serverFor(sdk: ServerSdk, ctx: GatewayContext, deps: ServeDeps, selector: string | undefined): Server {
  const { Server, types } = sdk
  const { registry, logger } = deps
  const state = ctx.state
  const p = state.principal
  const catalog = catalogFor(p, registry, selector)
  const server = new Server({ name: 'switchyard', version: deps.version() }, { capabilities: { tools: { listChanged: false } } })
  server.setRequestHandler(types.ListToolsRequestSchema, async () => {
    const { tools, failed } = await catalog.tools(state.signal)
    for (const f of failed) logger.warn('MCP server left out of tools/list', { requestId: state.requestId, server: f.spec.server_name, cause: f.error })
    return { tools: tools.map((x) => listed(x.tool)) }
  })
  server.setRequestHandler(types.CallToolRequestSchema, async (req) => {
    const name = req.params.name
    const args = (req.params.arguments ?? {}) as Record<string, unknown>
    const { tools } = await catalog.tools(state.signal)
    const found = tools.find((x) => x.tool.prefixed === name)
    if (!found) {
      // A tool that exists but is not this key's gets LiteLLM's refusal; anything else is unknown.
      for (const spec of registry.servers()) {
        const prefix = spec.server_name + registry.separator
        if (!name.startsWith(prefix)) continue
        const tool = name.slice(prefix.length)
        const visible = visibleServers(p, registry).some((s) => s.server_id === spec.server_id)
        if (!visible || !toolAllowed(p, spec, tool)) {
          return errorResult(`Tool '${tool}' is not allowed for your key/team on server '${spec.server_name}'. Contact proxy admin for access.`)
        }
      }
      throw new types.McpError(types.ErrorCode.InvalidParams, `Tool ${name} not found`)
    }
    try {
      return await runTool(state, registry, logger, found.tool, args)
    } catch (err) {
      if (err instanceof GatewayError) return errorResult(err.message)
      throw err
    }
  })
  return server
}

/** Why a body is not one JSON-RPC 2.0 message (a request, a notification, or a response to the server); null if it is. */
function messageProblem(m: Record<string, unknown>): string | null {
  if (m.jsonrpc !== '2.0') return `'jsonrpc' must be "2.0".`
  const id = m.id
  if (id !== undefined && typeof id !== 'string' && !(typeof id === 'number' && Number.isInteger(id))) return `'id' must be a string or an integer.`
  if (m.method !== undefined) {
    if (typeof m.method !== 'string' || m.method === '') return `'method' must be a non-empty string.`
    if (m.params !== undefined && (m.params === null || typeof m.params !== 'object' || Array.isArray(m.params))) return `'params' must be an object.`
    return null
  }
  if (id === undefined || (m.result === undefined && m.error === undefined)) return `'method' is required.`
  return null
}

/** A JSON-RPC error response that is also an OpenAI-shaped error body. */
function rpcError(ctx: GatewayContext, status: number, code: number, message: string, param: string | null): void {
  ctx.status = status
  ctx.body = { jsonrpc: '2.0', error: { code, message, type: 'invalid_request_error', param }, id: null }
}

export function serveRoutes(deps: ServeDeps): RouteDef[] {
  const post: GatewayMiddleware = async function mcpServer(ctx) {
    const params = (ctx as unknown as { params?: Record<string, string> }).params
    const selector = params?.servers ?? headerValue(ctx.req.headers['x-mcp-servers'])
    // What the SDK transport would refuse is refused here first, in a body both JSON-RPC clients and OpenAI-style
    // ones read: a JSON-RPC error object that also has OpenAI's `type` and `param`.
    const accept = String(ctx.req.headers.accept ?? '')
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return rpcError(ctx, 406, -32000, 'Not Acceptable: the client must accept both application/json and text/event-stream.', 'accept')
    }
    const body = await readJsonBody(ctx.req, deps.bodyLimit)
    const problem = messageProblem(body)
    if (problem) return rpcError(ctx, 400, -32600, `Invalid Request: ${problem}`, problem.split(' ')[0]!.replace(/'/g, ''))
    const sdk = await loadSdk()
    const server = serverFor(sdk, ctx, deps, selector)
    const transport = new sdk.StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    await server.connect(transport)
    ctx.respond = false
    ctx.res.on('close', () => {
      void transport.close().catch(() => undefined)
      void server.close().catch(() => undefined)
    })
    await transport.handleRequest(ctx.req, ctx.res, body)
  }
  const notAllowed: GatewayMiddleware = async function mcpNoSession(ctx) {
    ctx.set('allow', 'POST')
    throw gatewayError('GW_ERR_METHOD_NOT_ALLOWED', 'This MCP endpoint is stateless: POST JSON-RPC messages; there is no session stream to GET or DELETE.')
  }
  const paths = ['/mcp', '/mcp/', '/mcp/:servers', '/:servers/mcp']
  return [
    { method: 'POST', path: paths, kind: 'other', handler: post },
    { method: 'GET', path: paths, kind: 'other', handler: notAllowed },
    { method: 'DELETE', path: paths, kind: 'other', handler: notAllowed },
  ]
}
