/**
 * The MCP registry: every configured server (config and db) with its live connection (connection.ts), looked up by
 * server_id, server_name or alias. `put` with the same connection settings keeps the connection and applies the
 * new filters and limits; with different ones it reconnects.
 */
import { gatewayError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import { connectionChanged, McpConnection } from './connection.js'
import type { CallOptions, McpRegistry, McpServerHealth, McpServerSpec, McpTool } from './types.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'

export interface RegistryOptions {
  /** Between server and tool name in prefixed tool names; '-' by default. */
  separator?: string | undefined
  /** How long connecting (initialize + tools/list) may take, and how long a call waits for a connection. */
  connectTimeoutMs: number
  logger: Logger
  /** The gateway's version, sent as `clientInfo.version` in `initialize` (read when a server connects). */
  version?: (() => string) | undefined
}

/** The registry, plus what tests and diagnostics need beyond the McpRegistry contract. */
export interface LocalMcpRegistry extends McpRegistry {
  /** A stdio server's process id; null for remote servers, unknown ids and while no process runs. */
  pid(serverId: string): number | null
}

interface Entry {
  spec: McpServerSpec
  conn: McpConnection
}

export function createRegistry(opts: RegistryOptions): LocalMcpRegistry {
  const separator = opts.separator ?? '-'
  const entries = new Map<string, Entry>()
  const listeners = new Set<(serverId: string) => void>()

  function changed(serverId: string): void {
    for (const l of [...listeners]) {
      try {
        l(serverId)
      } catch (err) {
        opts.logger.error('MCP onToolsChanged listener failed', { error: err })
      }
    }
  }

  function find(idOrName: string): Entry | undefined {
    const byId = entries.get(idOrName)
    if (byId) return byId
    for (const e of entries.values()) if (e.spec.server_name === idOrName) return e
    for (const e of entries.values()) if (e.spec.alias === idOrName) return e
    return undefined
  }

  function entry(idOrName: string): Entry {
    const e = find(idOrName)
    if (!e) throw gatewayError('GW_ERR_NOT_FOUND', `MCP server '${idOrName}' not found`, { openaiCode: 'mcp_server_not_found' })
    return e
  }

  function connect(spec: McpServerSpec): McpConnection {
    return new McpConnection(spec, {
      separator, connectTimeoutMs: opts.connectTimeoutMs, logger: opts.logger,
      clientInfo: { name: 'switchyard', version: opts.version?.() ?? '0.0.0' }, onToolsChanged: () => changed(spec.server_id),
    })
  }

  return {
    separator,
    servers: () => [...entries.values()].map((e) => e.spec),
    server: (idOrName) => find(idOrName)?.spec,
    async put(spec) {
      const old = entries.get(spec.server_id)
      if (old && !connectionChanged(old.spec, spec)) {
        old.spec = spec
        old.conn.update(spec)
        return
      }
      entries.set(spec.server_id, { spec, conn: connect(spec) })
      if (old) await old.conn.close()
      changed(spec.server_id)
    },
    async remove(serverId) {
      const e = entries.get(serverId)
      if (!e) return false
      entries.delete(serverId)
      await e.conn.close()
      changed(serverId)
      return true
    },
    async tools(serverId: string, signal?: AbortSignal): Promise<McpTool[]> {
      return entry(serverId).conn.tools(signal)
    },
    async call(serverId: string, tool: string, args: Record<string, unknown>, callOpts?: CallOptions): Promise<CallToolResult> {
      return entry(serverId).conn.call(tool, args, callOpts)
    },
    health: (): McpServerHealth[] => [...entries.values()].map((e) => e.conn.health()),
    onToolsChanged(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    async close() {
      const all = [...entries.values()]
      entries.clear()
      await Promise.all(all.map((e) => e.conn.close()))
    },
    pid: (serverId) => entries.get(serverId)?.conn.pid ?? null,
  }
}
