/**
 * What one caller may use, as the /mcp endpoint and the REST API list and call it: the visible servers (narrowed by
 * a path or `x-mcp-servers`), their tools after the key's tool permissions, and running one with its record kept
 * in state.toolCalls (for spend rows, `call_mcp_tool`, and logs).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { gatewayError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import type { GatewayState, Principal } from '../../core/state.js'
import { toolAllowed, visibleServers } from './access.js'
import { executeTool, toolRecord } from './tools.js'
import type { McpRegistry, McpServerSpec, McpTool } from './types.js'

export interface Catalog {
  servers: McpServerSpec[]
  /** Every tool of those servers the caller may call; servers that could not be listed are in `failed`. */
  tools(signal?: AbortSignal): Promise<{ tools: Array<{ spec: McpServerSpec; tool: McpTool }>; failed: Array<{ spec: McpServerSpec; error: string }> }>
}

/** The names a selector (`a,b`) gives: server ids, names, aliases or access groups. */
function selected(registry: McpRegistry, visible: McpServerSpec[], selector: string): McpServerSpec[] {
  const out = new Map<string, McpServerSpec>()
  for (const raw of selector.split(',')) {
    const name = raw.trim()
    if (name === '') continue
    const spec = registry.server(name)
    const group = registry.servers().filter((s) => s.mcp_access_groups.includes(name))
    if (!spec && group.length === 0) {
      throw gatewayError('GW_ERR_NOT_FOUND', `MCP server or access group '${name}' not found.`, { openaiCode: 'mcp_server_not_found' })
    }
    // Narrowing never grants: a named server the caller may not use is left out.
    for (const s of spec ? [spec] : group) if (visible.some((v) => v.server_id === s.server_id)) out.set(s.server_id, s)
  }
  return [...out.values()]
}

/** The caller's catalog; `selector` (a path segment or `x-mcp-servers`) narrows it. */
export function catalogFor(p: Principal | null, registry: McpRegistry, selector?: string | undefined): Catalog {
  const visible = visibleServers(p, registry)
  const servers = selector ? selected(registry, visible, selector) : visible
  return {
    servers,
    async tools(signal) {
      const listed = await Promise.allSettled(servers.map((s) => registry.tools(s.server_id, signal)))
      const tools: Array<{ spec: McpServerSpec; tool: McpTool }> = []
      const failed: Array<{ spec: McpServerSpec; error: string }> = []
      listed.forEach((r, i) => {
        const spec = servers[i]!
        if (r.status === 'rejected') {
          failed.push({ spec, error: r.reason instanceof Error ? r.reason.message : String(r.reason) })
          return
        }
        for (const tool of r.value) if (toolAllowed(p, spec, tool.name)) tools.push({ spec, tool })
      })
      return { tools, failed }
    },
  }
}

/**
 * Run one tool for a caller that may use it, keeping its record in state.toolCalls. Registry errors (503, 408, 400,
 * 404) are thrown after being recorded; a tool's own failure (`isError`) is a result.
 */
export async function runTool(
  state: GatewayState, registry: McpRegistry, logger: Logger, tool: McpTool, args: Record<string, unknown>,
): Promise<CallToolResult> {
  const rec = toolRecord(`${state.requestId}-${state.toolCalls.length}`, tool.prefixed, tool, JSON.stringify(args))
  state.toolCalls.push(rec)
  const out = await executeTool(state, registry, logger, rec, tool, args)
  if (out.result === undefined) throw out.thrown
  return out.result
}
