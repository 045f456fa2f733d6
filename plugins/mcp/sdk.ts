/**
 * The MCP SDK's client modules, loaded on first use (a gateway without MCP servers never imports them), and the
 * one-line text of the errors they throw.
 */
import type { McpError } from '@modelcontextprotocol/sdk/types.js'

/** The SDK's client modules, loaded with the first connection: a gateway without MCP servers never imports them. */
export interface Sdk {
  Client: typeof import('@modelcontextprotocol/sdk/client/index.js').Client
  StdioClientTransport: typeof import('@modelcontextprotocol/sdk/client/stdio.js').StdioClientTransport
  StreamableHTTPClientTransport: typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js').StreamableHTTPClientTransport
  StreamableHTTPError: typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js').StreamableHTTPError
  SSEClientTransport: typeof import('@modelcontextprotocol/sdk/client/sse.js').SSEClientTransport
  SseError: typeof import('@modelcontextprotocol/sdk/client/sse.js').SseError
  types: typeof import('@modelcontextprotocol/sdk/types.js')
}
let sdk: Sdk | null = null
/** The SDK once loaded (null before the first connection). */
export function loadedSdk(): Sdk | null {
  return sdk
}
let loading: Promise<Sdk> | null = null

export function loadSdk(): Promise<Sdk> {
  loading ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'), import('@modelcontextprotocol/sdk/client/stdio.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'), import('@modelcontextprotocol/sdk/client/sse.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(([client, stdio, http, sse, types]) => (sdk = {
    Client: client.Client, StdioClientTransport: stdio.StdioClientTransport,
    StreamableHTTPClientTransport: http.StreamableHTTPClientTransport, StreamableHTTPError: http.StreamableHTTPError,
    SSEClientTransport: sse.SSEClientTransport, SseError: sse.SseError, types,
  }))
  return loading
}

/** The message of an McpError without the SDK's "MCP error <code>: " prefix. */
export function mcpMessage(err: McpError): string {
  return err.message.replace(/^MCP error -?\d+: /, '')
}

/** An error as one line; the SDK's HTTP errors keep their status out of the message, so it is put in front. */
export function errorText(err: unknown): string {
  if (sdk && (err instanceof sdk.StreamableHTTPError || err instanceof sdk.SseError) && err.code !== undefined) return `HTTP ${err.code}: ${err.message}`
  if (!(err instanceof Error)) return String(err)
  // fetch's "fetch failed" says why only in its cause (ECONNREFUSED ...).
  return err.cause instanceof Error && !err.message.includes(err.cause.message) ? `${err.message}: ${err.cause.message}` : err.message
}
