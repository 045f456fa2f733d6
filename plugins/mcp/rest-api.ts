/**
 * LiteLLM's MCP REST API, for calling tools without an LLM or an MCP client:
 *
 *   GET  /mcp-rest/tools/list[?server_id=...]   {"tools": [{name, description, inputSchema, mcp_info}], "error", "message"}
 *   POST /mcp-rest/tools/call                   {"server_id", "name", "arguments"} -> the tool's CallToolResult
 *
 * Tools are listed by their own names with `mcp_info.server_name` / `server_id` saying where they live (LiteLLM's
 * shape); a call names the tool by its own name with `server_id`, or by its prefixed name alone. A server the key
 * may not use is a 403, an unknown one a 404; a server that is down a 503, a slow tool a 408.
 */
import { gatewayError } from '../../core/errors.js'
import { readJsonBody } from '../../core/http/body.js'
import type { RouteDef } from '../../core/http/routes.js'
import type { Logger } from '../../core/logger.js'
import type { Principal } from '../../core/state.js'
import { serverVisible, toolAllowed } from './access.js'
import { catalogFor, runTool } from './catalog.js'
import type { McpRegistry, McpServerSpec, McpTool } from './types.js'

export interface RestDeps {
  registry: McpRegistry
  logger: Logger
  bodyLimit: number
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The server a request names, checked against the caller: 404 unknown, 403 not theirs. */
export function namedServer(p: Principal | null, registry: McpRegistry, ref: string, param = 'server_id'): McpServerSpec {
  const spec = registry.server(ref)
  if (!spec) throw gatewayError('GW_ERR_NOT_FOUND', `MCP server '${ref}' not found.`, { param, openaiCode: 'server_not_found' })
  if (!serverVisible(p, registry, spec.server_id)) {
    throw gatewayError('GW_ERR_FORBIDDEN', `The key is not allowed to access server ${spec.server_name}.`, { param, openaiCode: 'access_denied' })
  }
  return spec
}

/** A tool in LiteLLM's REST shape. */
export function restTool(spec: McpServerSpec, tool: McpTool, name: string): Record<string, unknown> {
  const out: Record<string, unknown> = { name, description: tool.description ?? '', inputSchema: tool.inputSchema }
  if (tool.title !== undefined) out.title = tool.title
  if (tool.annotations !== undefined) out.annotations = tool.annotations
  out.mcp_info = { server_name: spec.server_name, server_id: spec.server_id, description: spec.description }
  return out
}

export function restRoutes(deps: RestDeps): RouteDef[] {
  const { registry, logger } = deps
  return [
    {
      method: 'GET', path: '/mcp-rest/tools/list', kind: 'other',
      handler: async function mcpRestList(ctx) {
        const p = ctx.state.principal
        const q = ctx.query.server_id
        const ref = Array.isArray(q) ? q[q.length - 1] : q
        const catalog = catalogFor(p, registry)
        const only = ref ? namedServer(p, registry, ref) : null
        const { tools, failed } = await catalog.tools(ctx.state.signal)
        const picked = only ? tools.filter((x) => x.spec.server_id === only.server_id) : tools
        const broken = only ? failed.filter((f) => f.spec.server_id === only.server_id) : failed
        ctx.body = {
          tools: picked.map((x) => restTool(x.spec, x.tool, x.tool.name)),
          error: broken.length === 0 ? null : picked.length === 0 ? 'server_error' : 'partial_failure',
          message: broken.length === 0
            ? 'Successfully retrieved tools'
            : `Could not list tools from ${broken.map((f) => `'${f.spec.server_name}' (${f.error})`).join(', ')}`,
        }
      },
    },
    {
      method: 'POST', path: '/mcp-rest/tools/call', kind: 'other',
      handler: async function mcpRestCall(ctx) {
        const state = ctx.state
        const p = state.principal
        const body = await readJsonBody(ctx.req, deps.bodyLimit)
        const name = body.name
        if (typeof name !== 'string' || name === '') {
          throw gatewayError('GW_ERR_VALIDATION', "Missing required parameter: 'name' (the tool to call).", { param: 'name', openaiCode: 'missing_parameter' })
        }
        const args = body.arguments === undefined ? {} : body.arguments
        if (!isObj(args)) throw gatewayError('GW_ERR_VALIDATION', "Invalid 'arguments': expected a JSON object.", { param: 'arguments' })
        if (body.server_id !== undefined && (typeof body.server_id !== 'string' || body.server_id === '')) {
          throw gatewayError('GW_ERR_VALIDATION', "Invalid 'server_id': expected a server id, name or alias.", { param: 'server_id' })
        }
        // The server: as named, else the prefix of a prefixed tool name.
        let spec: McpServerSpec | undefined
        let tool = name
        // The longest server name that prefixes the tool name ('a-b-tool' is server 'a-b' when both exist).
        const prefixedOf = registry.servers().filter((s) => name.startsWith(s.server_name + registry.separator))
          .sort((a, b) => b.server_name.length - a.server_name.length)[0]
        if (typeof body.server_id === 'string') {
          spec = namedServer(p, registry, body.server_id)
          if (name.startsWith(spec.server_name + registry.separator)) tool = name.slice(spec.server_name.length + registry.separator.length)
          else if (prefixedOf && prefixedOf.server_id !== spec.server_id) {
            throw gatewayError('GW_ERR_FORBIDDEN',
              `Tool '${name}' belongs to MCP server '${prefixedOf.server_name}' but request specified server_id for '${spec.server_name}'.`,
              { param: 'server_id', openaiCode: 'tool_server_mismatch' })
          }
        } else if (prefixedOf) {
          spec = namedServer(p, registry, prefixedOf.server_id, 'name')
          tool = name.slice(prefixedOf.server_name.length + registry.separator.length)
        } else {
          throw gatewayError('GW_ERR_VALIDATION',
            `Missing required parameter: 'server_id' (or name the tool with its server prefix, '<server>${registry.separator}${name}').`,
            { param: 'server_id', openaiCode: 'missing_parameter' })
        }
        if (!toolAllowed(p, spec, tool)) {
          throw gatewayError('GW_ERR_FORBIDDEN', `Tool '${tool}' is not allowed for your key/team on server '${spec.server_name}'. Contact proxy admin for access.`,
            { param: 'name', openaiCode: 'access_denied' })
        }
        const found = (await registry.tools(spec.server_id, state.signal)).find((t) => t.name === tool)
        if (!found) {
          throw gatewayError('GW_ERR_NOT_FOUND', `Tool '${tool}' not found on MCP server '${spec.server_name}'.`, { param: 'name', openaiCode: 'mcp_tool_not_found' })
        }
        ctx.body = await runTool(state, registry, logger, found, args)
      },
    },
  ]
}
