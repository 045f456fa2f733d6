/**
 * One MCP server's live connection, through the official SDK client: stdio (a child process), streamable HTTP or
 * SSE, with the spec's auth and static headers on every HTTP request.
 *
 * Lifecycle: it connects in the background when created (`connecting`), is `healthy` once `initialize` and the
 * first `tools/list` succeeded, `unhealthy` (error recorded) when that fails or the connection is lost later (a stdio
 * process exits, an SSE stream drops, an HTTP request cannot reach the server). Then it reconnects with backoff
 * (250 ms, doubling, at most 30 s; back to 250 ms when the lost connection had lasted a minute), counting
 * `restarts`. Calls in flight when the connection is lost fail at once with a 503. `close()` stops all of it and
 * the stdio child with it.
 *
 * Tools: listed (every page) after each connect, listed again on `notifications/tools/list_changed`, offered after
 * the spec's allowed/disallowed filters. Calls: a per-server gate (`max_concurrency` in flight, the rest wait in
 * order), the spec's time limit (408, the request is cancelled on the server), JSON-RPC errors as 400s.
 */
import { createInterface } from 'node:readline'
import type { PassThrough } from 'node:stream'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js'
import { gatewayError, GatewayError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import { Gate } from './gate.js'
import { createTokenSource, type TokenSource } from './oauth.js'
import { errorText, loadedSdk, loadSdk, mcpMessage, type Sdk } from './sdk.js'
import type { CallOptions, McpServerHealth, McpServerSpec, McpServerStatus, McpTool } from './types.js'

/** Reconnect backoff: first delay, growth, cap; a connection that lasted RESET_AFTER_MS starts over at the first. */
const BACKOFF_START_MS = 250
const BACKOFF_MAX_MS = 30_000
const RESET_AFTER_MS = 60_000
/**
 * Streamable HTTP: a dropped SSE stream is re-opened twice (250 ms, then 500 ms later) before the connection counts
 * as lost, at which point the SDK reports the error STREAM_GONE matches.
 */
const STREAM_RETRY = { initialReconnectionDelay: 250, reconnectionDelayGrowFactor: 2, maxReconnectionDelay: 2_000, maxRetries: 2 }
const STREAM_GONE = /^Maximum reconnection attempts/
/** tools/list pages read at most (a server repeating its cursor must not loop forever). */
const MAX_PAGES = 100

export interface ConnectionOptions {
  /** Between server name and tool name in McpTool.prefixed. */
  separator: string
  /** How long `initialize` and `tools/list` may take, and how long a call waits for a connection. */
  connectTimeoutMs: number
  logger: Logger
  /** `clientInfo` sent in `initialize`. */
  clientInfo: { name: string; version: string }
  /** Called whenever the offered tool list may have changed (listed, re-listed, filters changed). */
  onToolsChanged: () => void
}

/** The spec fields that need a new connection when they change (the others apply to the live one). */
const CONNECTION_FIELDS = [
  'transport', 'url', 'command', 'args', 'env', 'auth_type', 'auth_value', 'headers', 'client_id', 'client_secret', 'token_url', 'scopes',
] as const satisfies ReadonlyArray<keyof McpServerSpec>

/** Whether going from `a` to `b` needs a new connection. */
export function connectionChanged(a: McpServerSpec, b: McpServerSpec): boolean {
  return CONNECTION_FIELDS.some((f) => JSON.stringify(a[f]) !== JSON.stringify(b[f]))
}

/** Headers `auth_type` sends, besides oauth2 (whose bearer is fetched per request). */
function authHeaders(spec: McpServerSpec): Record<string, string> {
  const v = spec.auth_value
  if (v === null) return {}
  switch (spec.auth_type) {
    case 'bearer_token': return { Authorization: `Bearer ${v}` }
    case 'api_key': return { 'X-API-Key': v }
    // "user:pass" is encoded here; anything else is taken as already base64.
    case 'basic': return { Authorization: `Basic ${v.includes(':') ? Buffer.from(v).toString('base64') : v}` }
    case 'authorization': return { Authorization: v }
    default: return {}
  }
}

export class McpConnection {
  private spec: McpServerSpec
  private log: Logger
  private readonly gate: Gate
  private readonly tokens: TokenSource | null
  private status: McpServerStatus = 'connecting'
  private error: string | null = null
  private restarts = 0
  private connectedAt: number | null = null
  private everConnected = false
  private lastErrorAt: number | null = null
  /** The server's own list (unfiltered); null before the first listing. */
  private rawTools: Tool[] | null = null
  /** The current client: connecting or connected (`ready`). null while waiting to reconnect and once closed. */
  private client: Client | null = null
  private transport: Transport | null = null
  private ready = false
  private stopped = false
  private backoffMs = BACKOFF_START_MS
  private retryTimer: NodeJS.Timeout | null = null
  /** Connection attempts that failed before the server was ready (a waiter gives up after one of them). */
  private failedAttempts = 0
  /** When retryTimer fires (epoch ms). */
  private nextAttemptAt = 0
  /** Woken when the connection becomes ready or is stopped. */
  private readonly waiters = new Set<() => void>()
  /** Fail functions of the calls in flight, for a lost connection. */
  private readonly inFlight = new Set<(err: GatewayError) => void>()
  /** Clients being closed in the background (after a failure); close() waits for them, so no child outlives it. */
  private readonly closing = new Set<Promise<void>>()
  /** Re-listings run one after the other. */
  private relisting: Promise<void> = Promise.resolve()

  constructor(spec: McpServerSpec, private readonly opts: ConnectionOptions) {
    this.spec = spec
    this.log = opts.logger.child({ mcp_server: spec.server_name })
    this.gate = new Gate(spec.max_concurrency)
    this.tokens = spec.auth_type === 'oauth2' ? createTokenSource(spec) : null
    void this.connect()
  }

  /** The stdio server's process id; null for remote servers and while no process runs. */
  get pid(): number | null {
    const sdk = loadedSdk()
    return sdk && this.transport instanceof sdk.StdioClientTransport ? this.transport.pid : null
  }

  /** Apply a spec whose connection fields are unchanged (see connectionChanged): filters, limits, names. */
  update(spec: McpServerSpec): void {
    this.spec = spec
    this.log = this.opts.logger.child({ mcp_server: spec.server_name })
    this.gate.setLimit(spec.max_concurrency)
    this.opts.onToolsChanged()
  }

  /**
   * The tools offered; waits up to connectTimeoutMs for the first listing (a cached list is served while reconnecting).
   * A server that never connected and has failed to is unavailable at once: a dead server must not slow every listing.
   */
  async tools(signal?: AbortSignal): Promise<McpTool[]> {
    if (this.rawTools === null) {
      if (this.failedAttempts > 0 && !this.ready) throw this.unavailable()
      await this.whenReady(signal)
    }
    return this.offered()
  }

  async call(tool: string, args: Record<string, unknown>, opts: CallOptions = {}): Promise<CallToolResult> {
    const { signal } = opts
    if (!(await this.tools(signal)).some((t) => t.name === tool)) {
      throw gatewayError('GW_ERR_NOT_FOUND', `MCP server '${this.spec.server_name}' has no tool '${tool}'`, { openaiCode: 'mcp_tool_not_found' })
    }
    const release = await this.gate.acquire(signal, () => this.clientClosed())
    try {
      const client = await this.whenReady(signal)
      return await this.invoke(client, tool, args, opts.timeoutMs ?? this.spec.timeout_ms, signal)
    } finally {
      release()
    }
  }

  health(): McpServerHealth {
    return {
      server_id: this.spec.server_id,
      server_name: this.spec.server_name,
      transport: this.spec.transport,
      status: this.status,
      error: this.error,
      restarts: this.restarts,
      tools: this.rawTools === null ? -1 : this.offered().length,
      in_flight: this.gate.active,
      queued: this.gate.waiting,
      last_connected_at: this.connectedAt === null ? null : new Date(this.connectedAt).toISOString(),
      last_error_at: this.lastErrorAt === null ? null : new Date(this.lastErrorAt).toISOString(),
    }
  }

  /** Stop reconnecting, fail what is in flight or waiting, and close the client (a stdio child is stopped). */
  async close(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.status = 'stopped'
    this.error = null
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    const { client, transport } = this
    this.client = null
    this.transport = null
    this.ready = false
    this.failInFlight(gatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', `MCP server '${this.spec.server_name}' was stopped during the call`, { openaiCode: 'mcp_server_unavailable' }))
    this.wake()
    // A streamable HTTP session is ended on the server too (DELETE), if it answers within a second.
    const sdk = loadedSdk()
    if (sdk && transport instanceof sdk.StreamableHTTPClientTransport && transport.sessionId) {
      await Promise.race([transport.terminateSession().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())])
    }
    if (client) await client.close().catch(() => {})
    await Promise.all([...this.closing])
  }

  // ---- connection ----

  private buildTransport(sdk: Sdk): Transport {
    const { StdioClientTransport, SSEClientTransport, StreamableHTTPClientTransport } = sdk
    const spec = this.spec
    if (spec.transport === 'stdio') {
      const env: Record<string, string> = {}
      for (const k of ['PATH', 'HOME']) if (process.env[k] !== undefined) env[k] = process.env[k]!
      const t = new StdioClientTransport({ command: spec.command!, args: spec.args, env: { ...env, ...spec.env }, stderr: 'pipe' })
      // stderr: 'pipe' gives a PassThrough at once, before the process starts.
      const lines = createInterface({ input: t.stderr as PassThrough })
      lines.on('line', (line) => this.log.debug('MCP server stderr', { line }))
      return t
    }
    const fixed = { ...spec.headers, ...authHeaders(spec) }
    const tokens = this.tokens
    // Every HTTP request of the transport (POSTs, the SSE GET) goes through here: static and auth headers first,
    // the SDK's own on top; an oauth2 bearer that gets a 401 is fetched again once.
    const withAuth: FetchLike = async (url, init) => {
      const headers = new Headers(fixed)
      new Headers(init?.headers).forEach((v, k) => headers.set(k, v))
      if (tokens) headers.set('authorization', `Bearer ${await tokens.token()}`)
      const res = await fetch(url, { ...init, headers })
      if (res.status !== 401 || !tokens) return res
      await res.body?.cancel()
      tokens.invalidate()
      headers.set('authorization', `Bearer ${await tokens.token()}`)
      return fetch(url, { ...init, headers })
    }
    const url = new URL(spec.url!)
    return spec.transport === 'sse'
      ? new SSEClientTransport(url, { fetch: withAuth })
      : new StreamableHTTPClientTransport(url, { fetch: withAuth, reconnectionOptions: STREAM_RETRY })
  }

  /** One connection attempt: initialize, list the tools, then healthy; on failure `down()` schedules the next. */
  private async connect(): Promise<void> {
    this.retryTimer = null
    if (this.stopped) return
    const sdk = await loadSdk()
    if (this.stopped) return
    const client = new sdk.Client(this.opts.clientInfo, { capabilities: {} })
    let transport: Transport
    try {
      transport = this.buildTransport(sdk)
    } catch (err) {
      this.client = client
      return this.down(client, errorText(err))
    }
    this.client = client
    this.transport = transport
    this.ready = false
    // Before it is ready a failed connect() rejects with the real reason (and closes the client): handled below.
    client.onclose = () => {
      if (this.ready) this.down(client, this.spec.transport === 'stdio' ? 'the server process exited' : 'the connection closed')
    }
    client.onerror = (err) => {
      this.log.debug('MCP transport error', { error: errorText(err) })
      if (!this.ready) return
      // The SDK does not close the client when the server goes away: an SSE transport's stream errors, and a
      // streamable HTTP transport gives up re-opening a dropped stream. Either way the connection is gone.
      if (this.spec.transport === 'sse') this.down(client, `the SSE stream failed: ${errorText(err)}`)
      else if (STREAM_GONE.test(err.message)) this.down(client, `a dropped HTTP stream could not be re-opened: ${errorText(err)}`)
    }
    client.setNotificationHandler(sdk.types.ToolListChangedNotificationSchema, () => {
      this.relisting = this.relisting.then(() => this.relist(client))
    })
    try {
      await client.connect(transport, { timeout: this.opts.connectTimeoutMs })
      const tools = await this.listAll(client)
      if (this.client !== client) return
      this.setTools(tools)
      if (this.everConnected) this.restarts++
      this.everConnected = true
      this.ready = true
      this.status = 'healthy'
      this.error = null
      this.connectedAt = Date.now()
      this.log.info('MCP server connected', { tools: tools.length, restarts: this.restarts, pid: this.pid ?? undefined })
      this.wake()
    } catch (err) {
      this.down(client, errorText(err))
    }
  }

  /**
   * `client` is gone (failed to connect, or lost): unless it was already replaced, fail its calls, record the error,
   * close it, and schedule the next attempt.
   */
  private down(client: Client, reason: string): void {
    if (this.client !== client || this.stopped) return
    const wasReady = this.ready
    this.client = null
    this.transport = null
    this.ready = false
    if (wasReady && this.connectedAt !== null && Date.now() - this.connectedAt >= RESET_AFTER_MS) this.backoffMs = BACKOFF_START_MS
    const message = wasReady ? `connection lost: ${reason}` : `cannot connect: ${reason}`
    if (message !== this.error) this.log.warn(`MCP server ${message}`, { retry_in_ms: this.backoffMs })
    this.status = 'unhealthy'
    this.error = message
    this.lastErrorAt = Date.now()
    if (!wasReady) this.failedAttempts++
    this.failInFlight(gatewayError('GW_ERR_UPSTREAM_UNAVAILABLE',
      `MCP server '${this.spec.server_name}' closed the connection during the call; it is being restarted`, { openaiCode: 'mcp_server_unavailable' }))
    const closed: Promise<void> = client.close().catch(() => {}).finally(() => this.closing.delete(closed))
    this.closing.add(closed)
    this.retryTimer = setTimeout(() => void this.connect(), this.backoffMs)
    this.retryTimer.unref()
    this.nextAttemptAt = Date.now() + this.backoffMs
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS)
    this.wake()
  }

  /** Waiting for a connection is pointless: the next attempt starts after connectTimeoutMs from now. */
  private hopeless(): boolean {
    return this.retryTimer !== null && this.nextAttemptAt > Date.now() + this.opts.connectTimeoutMs
  }

  /**
   * Resolves with the connected client; 503 after connectTimeoutMs, or at once when stopped or when the next
   * connection attempt is due later than that (a server failing for a while, its backoff grown), or as soon as one
   * connection attempt fails while waiting (a refused connection answers in milliseconds, not after the time limit).
   */
  private whenReady(signal: AbortSignal | undefined): Promise<Client> {
    if (this.ready && this.client) return Promise.resolve(this.client)
    if (this.stopped || this.hopeless()) return Promise.reject(this.unavailable())
    if (signal?.aborted) return Promise.reject(this.clientClosed())
    const failedBefore = this.failedAttempts
    return new Promise((resolve, reject) => {
      const finish = (err: GatewayError | null) => {
        clearTimeout(timer)
        this.waiters.delete(check)
        signal?.removeEventListener('abort', onAbort)
        if (err) reject(err)
        else resolve(this.client!)
      }
      const check = () => {
        if (this.ready && this.client) finish(null)
        else if (this.stopped || this.hopeless() || this.failedAttempts > failedBefore) finish(this.unavailable())
      }
      const onAbort = () => finish(this.clientClosed())
      const timer = setTimeout(() => finish(this.unavailable()), this.opts.connectTimeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(check)
    })
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }

  // ---- tools ----

  private async listAll(client: Client): Promise<Tool[]> {
    if (!client.getServerCapabilities()?.tools) return []
    const tools: Tool[] = []
    let cursor: string | undefined
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await client.listTools(cursor === undefined ? undefined : { cursor }, { timeout: this.opts.connectTimeoutMs })
      tools.push(...res.tools)
      cursor = res.nextCursor
      if (!cursor) break
    }
    return tools
  }

  /** After `notifications/tools/list_changed`: list again (a failure keeps the old list, logged). */
  private async relist(client: Client): Promise<void> {
    if (this.client !== client) return
    try {
      const tools = await this.listAll(client)
      if (this.client === client) this.setTools(tools)
    } catch (err) {
      this.log.warn('MCP tools/list after list_changed failed', { error: errorText(err) })
    }
  }

  private setTools(tools: Tool[]): void {
    const before = this.rawTools
    this.rawTools = tools
    if (before === null || JSON.stringify(before) !== JSON.stringify(tools)) this.opts.onToolsChanged()
  }

  private offered(): McpTool[] {
    const { allowed_tools: allowed, disallowed_tools: disallowed, server_id: serverId, server_name: server } = this.spec
    const out: McpTool[] = []
    for (const t of this.rawTools ?? []) {
      if ((allowed !== null && !allowed.includes(t.name)) || disallowed.includes(t.name)) continue
      out.push({
        serverId,
        server,
        name: t.name,
        prefixed: `${server}${this.opts.separator}${t.name}`,
        title: t.title,
        description: t.description,
        inputSchema: t.inputSchema,
        outputSchema: t.outputSchema,
        annotations: t.annotations,
      })
    }
    return out
  }

  // ---- calls ----

  private invoke(client: Client, tool: string, args: Record<string, unknown>, timeoutMs: number, signal: AbortSignal | undefined): Promise<CallToolResult> {
    return new Promise((resolve, reject) => {
      const fail = (err: GatewayError) => {
        this.inFlight.delete(fail)
        reject(err)
      }
      this.inFlight.add(fail)
      client.callTool({ name: tool, arguments: args }, undefined, { signal, timeout: timeoutMs }).then(
        (res) => {
          this.inFlight.delete(fail)
          resolve(res as CallToolResult)
        },
        (err: unknown) => fail(this.callError(err, client, tool, timeoutMs, signal)),
      )
    })
  }

  private callError(err: unknown, client: Client, tool: string, timeoutMs: number, signal: AbortSignal | undefined): GatewayError {
    const name = this.spec.server_name
    if (signal?.aborted) return signal.reason instanceof GatewayError ? signal.reason : this.clientClosed()
    const sdk = loadedSdk()
    if (sdk && err instanceof sdk.types.McpError) {
      if (err.code === sdk.types.ErrorCode.RequestTimeout) {
        return gatewayError('GW_ERR_UPSTREAM_TIMEOUT', `MCP server '${name}' did not finish tool '${tool}' within ${timeoutMs} ms`)
      }
      return gatewayError('GW_ERR_UPSTREAM_BAD_REQUEST', `MCP server '${name}' rejected the call to '${tool}': ${mcpMessage(err)}`, { cause: err })
    }
    if (err instanceof Error && err.name === 'ZodError') {
      return gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `MCP server '${name}' answered the call to '${tool}' with an invalid result`, { cause: err })
    }
    // Anything else is the transport failing (the server unreachable, its HTTP session gone): reconnect.
    this.down(client, errorText(err))
    return gatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', `MCP server '${name}' could not be reached: ${errorText(err)}`, { openaiCode: 'mcp_server_unavailable', cause: err })
  }

  private failInFlight(err: GatewayError): void {
    for (const fail of [...this.inFlight]) fail(err)
  }

  private unavailable(): GatewayError {
    const why = this.stopped ? ' (stopped)' : this.error ? `: ${this.error}` : ` (still connecting after ${this.opts.connectTimeoutMs} ms)`
    return gatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', `MCP server '${this.spec.server_name}' is not available${why}`, { openaiCode: 'mcp_server_unavailable' })
  }

  private clientClosed(): GatewayError {
    return gatewayError('GW_ERR_CLIENT_CLOSED', `The client closed the request to MCP server '${this.spec.server_name}'`)
  }
}
