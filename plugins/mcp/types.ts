/**
 * The MCP gateway's shared types: a server's spec (LiteLLM's `mcp_servers` entry and /v1/mcp/server record), a
 * discovered tool, a server's health, and the registry that owns the connections (registry.ts).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'

export type McpTransport = 'stdio' | 'http' | 'sse'

/** How the gateway authenticates to a remote server (LiteLLM's `auth_type`). */
export type McpAuthType = 'none' | 'bearer_token' | 'api_key' | 'basic' | 'authorization' | 'oauth2'

/**
 * One MCP server, in LiteLLM's field names: a config.yaml `mcp_servers` entry (the map key is its `server_name`
 * and `server_id`) or a record created through /v1/mcp/server (a UUID `server_id`). Stored as is (store kind
 * `mcp_server`); secrets (`auth_value`, `client_secret`, `env`, header values) never leave through the API.
 */
export interface McpServerSpec {
  server_id: string
  /** The tool prefix (`<server_name>-<tool>`); SEP-986 characters: letters, digits, `_`, `-`, `.`; 1 to 64. */
  server_name: string
  alias: string | null
  description: string | null
  transport: McpTransport
  /** http / sse: the endpoint. */
  url: string | null
  /** stdio: the program, its arguments and extra environment. */
  command: string | null
  args: string[]
  env: Record<string, string>
  auth_type: McpAuthType | null
  /** The token, key or credentials `auth_type` sends. */
  auth_value: string | null
  /** Static headers sent on every request to the server. */
  headers: Record<string, string>
  /** oauth2 (client credentials): where and how a token is fetched. */
  client_id: string | null
  client_secret: string | null
  token_url: string | null
  scopes: string[]
  /** Tools offered from this server: only these (null = all), never these. Unprefixed names. */
  allowed_tools: string[] | null
  disallowed_tools: string[]
  /** Access groups that grant this server (object_permission.mcp_access_groups). */
  mcp_access_groups: string[]
  /** Every key may use it, whatever its grants (LiteLLM's `allow_all_keys`). */
  allow_all_keys: boolean
  /** Calls in flight to this server at once; more wait in order. */
  max_concurrency: number
  /** A tool call's time limit, ms. */
  timeout_ms: number
  /**
   * LiteLLM's `mcp_info` as given (description, logo_url, `mcp_server_cost_info`: `default_cost_per_query` and
   * `tool_name_to_cost_per_query`, USD per call); null when none.
   */
  mcp_info: Record<string, unknown> | null
  /** Where it came from: config servers cannot be changed through the API. */
  source: 'config' | 'db'
  created_at: string
  updated_at: string
  created_by: string | null
  updated_by: string | null
}

/** One tool as the gateway offers it. */
export interface McpTool {
  serverId: string
  /** The server's name (the prefix). */
  server: string
  /** The tool's own name on its server. */
  name: string
  /** `<server_name><separator><name>`: unique across servers. */
  prefixed: string
  title?: string | undefined
  description?: string | undefined
  inputSchema: Record<string, unknown>
  outputSchema?: Record<string, unknown> | undefined
  annotations?: Record<string, unknown> | undefined
}

export type McpServerStatus = 'connecting' | 'healthy' | 'unhealthy' | 'stopped'

export interface McpServerHealth {
  server_id: string
  server_name: string
  transport: McpTransport
  status: McpServerStatus
  /** The last connection or listing error; null when healthy. */
  error: string | null
  /** Times the connection was re-established after it was lost (a stdio process restarted). */
  restarts: number
  /** Tools offered (after allowed/disallowed), -1 before the first listing. */
  tools: number
  in_flight: number
  queued: number
  last_connected_at: string | null
  last_error_at: string | null
}

export interface CallOptions {
  signal?: AbortSignal | undefined
  /** Overrides the server's timeout_ms. */
  timeoutMs?: number | undefined
}

/**
 * The connections to every configured server. Servers connect in the background when added; a stdio server that
 * exits is restarted with backoff; a remote one that fails is retried the same way. Errors are GatewayErrors:
 * 503 (`mcp_server_unavailable`) when the server cannot be reached in time, 404 (`mcp_tool_not_found`) for a tool
 * the server does not offer (or that allowed/disallowed hide), 408 (`timeout`) past the time limit, 400 for a
 * JSON-RPC error the server returned (bad arguments). A tool's own failure (`isError: true`) is a result, not a throw.
 */
export interface McpRegistry {
  /** Between server name and tool name in prefixed names ('-' unless configured). */
  readonly separator: string
  servers(): McpServerSpec[]
  /** By server_id, else by server_name, else by alias. */
  server(idOrName: string): McpServerSpec | undefined
  /** Add or replace a server (a changed spec reconnects). Resolves once it is registered, not connected. */
  put(spec: McpServerSpec): Promise<void>
  /** Disconnect and forget a server (a stdio process is stopped). false when there was none. */
  remove(serverId: string): Promise<boolean>
  /** The server's tools after allowed/disallowed, cached; refreshed on `notifications/tools/list_changed`. */
  tools(serverId: string, signal?: AbortSignal): Promise<McpTool[]>
  call(serverId: string, tool: string, args: Record<string, unknown>, opts?: CallOptions): Promise<CallToolResult>
  health(): McpServerHealth[]
  /** Called with a server_id whenever that server's tool list changed (or it was added / removed). */
  onToolsChanged(listener: (serverId: string) => void): () => void
  close(): Promise<void>
}
