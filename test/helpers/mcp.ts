/**
 * MCP servers for tests, all on 127.0.0.1 and stopped in teardown:
 * - the reference servers from node_modules/.bin (`everythingBin`, `memoryBin`; stdio ones are spawned by the code
 *   under test), and server-everything over streamable HTTP or SSE as a child process (`startEverythingHttp`);
 * - `startTestMcpServer`: an in-process streamable HTTP server built on the SDK's low-level Server, with tools a test
 *   controls (sleep, whoami, strict, added at runtime with list_changed), optional bearer or OAuth 2.0
 *   client-credentials auth (its own token endpoint), and a log of every request's headers.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js'
import { alive, freePort } from './net.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const everythingBin = path.join(ROOT, 'node_modules', '.bin', 'mcp-server-everything')
export const memoryBin = path.join(ROOT, 'node_modules', '.bin', 'mcp-server-memory')

/** How long a child server may take to accept connections: 15 s. */
const START_TIMEOUT_MS = 15_000


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    const done = (ok: boolean) => { sock.destroy(); resolve(ok) }
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

/** Kills `serverPid` within a second of this test process's death (a test killed on timeout skips its teardown). */
function watchdog(serverPid: number): ChildProcess {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${serverPid} 2>/dev/null`
  // Its own process group: whatever kills the test's group must not take the watchdog with it.
  const w = spawn('/bin/sh', ['-c', script], { stdio: 'ignore', detached: true })
  w.unref()
  return w
}

export interface ChildServer {
  url: string
  pid: number
  stop(): Promise<void>
}

/**
 * server-everything over streamable HTTP (`http://127.0.0.1:<port>/mcp`) or SSE (`http://127.0.0.1:<port>/sse`, its
 * messages on /message), as its transports/*.js serve them; killed by PID in teardown.
 */
export async function startEverythingHttp(t: Test, mode: 'streamableHttp' | 'sse'): Promise<ChildServer> {
  const port = await freePort()
  const child = spawn(everythingBin, [mode], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let output = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { output += d })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  const pid = child.pid!
  const guard = watchdog(pid)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopped = false
  const stop = async () => {
    if (stopped) return exited
    stopped = true
    if (guard.pid !== undefined && alive(guard.pid)) process.kill(guard.pid, 'SIGKILL')
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
    await exited
  }
  t.teardown(stop)
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`mcp-server-everything ${mode} exited (${child.exitCode}): ${output}`)
    if (Date.now() > deadline) throw new Error(`mcp-server-everything ${mode} did not listen on ${port}: ${output}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return { url: `http://127.0.0.1:${port}/${mode === 'sse' ? 'sse' : 'mcp'}`, pid, stop }
}

export interface TestMcpOptions {
  /** Require `Authorization: Bearer <bearer>` on /mcp. */
  bearer?: string | undefined
  /** Require a bearer issued by /token (client credentials `oauth.clientId` / `oauth.clientSecret`). */
  oauth?: { clientId: string; clientSecret: string; expiresIn?: number | undefined } | undefined
}

export interface TestMcpServer {
  /** The streamable HTTP endpoint. */
  url: string
  /** The OAuth token endpoint. */
  tokenUrl: string
  /** Every /mcp request, in order (lower-case header names). */
  requests: Array<{ method: string; headers: Record<string, string | string[] | undefined> }>
  /** Form bodies posted to /token. */
  tokenRequests: URLSearchParams[]
  /** /mcp requests refused with 401. */
  refused(): number
  /** Add a tool at runtime and send notifications/tools/list_changed on every session. */
  addTool(name: string): Promise<void>
  /** Make every issued token invalid (the next /mcp request with one gets a 401). */
  revokeTokens(): void
  close(): Promise<void>
}

/** The tools every test server starts with. */
const BASE_TOOLS: Tool[] = [
  { name: 'sleep', description: 'Wait ms milliseconds', inputSchema: { type: 'object', properties: { ms: { type: 'number' } }, required: ['ms'] } },
  { name: 'whoami', description: 'The Authorization header this call came with', inputSchema: { type: 'object', properties: {} } },
  { name: 'strict', description: 'Refuses every call with a JSON-RPC invalid-params error', inputSchema: { type: 'object', properties: {} } },
]

function text(s: string): CallToolResult {
  return { content: [{ type: 'text', text: s }] }
}

/** A streamable HTTP MCP server on 127.0.0.1:0 (one SDK Server per session); closed in teardown. */
export async function startTestMcpServer(t: Test, opts: TestMcpOptions = {}): Promise<TestMcpServer> {
  const tools: Tool[] = [...BASE_TOOLS]
  const sessions = new Map<string, { server: Server; transport: StreamableHTTPServerTransport }>()
  const requests: TestMcpServer['requests'] = []
  const tokenRequests: URLSearchParams[] = []
  const tokens = new Set<string>()
  let issued = 0
  let refusedCount = 0

  function newSession(): StreamableHTTPServerTransport {
    const server = new Server({ name: 'test-mcp', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } })
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }))
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      const args = req.params.arguments ?? {}
      switch (req.params.name) {
        case 'sleep': {
          const ms = Number(args.ms)
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms)
            extra.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
          })
          return text(`slept ${ms}`)
        }
        case 'whoami': return text(String(extra.requestInfo?.headers.authorization ?? ''))
        case 'strict': throw new McpError(ErrorCode.InvalidParams, 'strict refuses every argument')
        default:
          if (tools.some((x) => x.name === req.params.name)) return text(`${req.params.name} ran`)
          throw new McpError(ErrorCode.InvalidParams, `no tool ${req.params.name}`)
      }
    })
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, { server, transport }),
    })
    transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId) }
    void server.connect(transport)
    return transport
  }

  function authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization ?? ''
    if (opts.bearer !== undefined) return auth === `Bearer ${opts.bearer}`
    if (opts.oauth) return auth.startsWith('Bearer ') && tokens.has(auth.slice(7))
    return true
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = ''
    for await (const chunk of req) body += chunk
    const form = new URLSearchParams(body)
    tokenRequests.push(form)
    const o = opts.oauth
    if (!o || form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== o.clientId || form.get('client_secret') !== o.clientSecret) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_client' }))
      return
    }
    const tok = `tok-${++issued}`
    tokens.add(tok)
    res.writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ access_token: tok, token_type: 'Bearer', expires_in: o.expiresIn ?? 3600 }))
  }

  const http = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      if (url.pathname === '/token' && req.method === 'POST') return token(req, res)
      if (url.pathname !== '/mcp') return void res.writeHead(404).end()
      requests.push({ method: req.method ?? '', headers: { ...req.headers } })
      if (!authorized(req)) {
        refusedCount++
        return void res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }))
      }
      const id = req.headers['mcp-session-id']
      const session = typeof id === 'string' ? sessions.get(id) : undefined
      if (typeof id === 'string' && !session) return void res.writeHead(404).end()
      await (session?.transport ?? newSession()).handleRequest(req, res)
    })().catch((err: unknown) => { if (!res.headersSent) res.writeHead(500).end(String(err)) })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as { port: number }
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await Promise.all([...sessions.values()].map((s) => s.server.close().catch(() => {})))
    http.closeAllConnections()
    await new Promise<void>((resolve) => http.close(() => resolve()))
  }
  t.teardown(close)
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    tokenUrl: `http://127.0.0.1:${port}/token`,
    requests,
    tokenRequests,
    refused: () => refusedCount,
    async addTool(name) {
      tools.push({ name, description: `added at runtime: ${name}`, inputSchema: { type: 'object', properties: {} } })
      await Promise.all([...sessions.values()].map((s) => s.server.sendToolListChanged()))
    },
    revokeTokens: () => tokens.clear(),
    close,
  }
}
