/**
 * MCP registry against real servers: server-everything and server-memory over stdio (spawned by the registry),
 * server-everything over streamable HTTP and SSE (child processes), and an in-process SDK server for auth (bearer,
 * OAuth 2.0 client credentials), list_changed, JSON-RPC errors and cancellation. Covers discovery and calls,
 * allowed/disallowed filters, the concurrency gate, time limits, a killed stdio child (503 at once, restarted with
 * backoff), removal without orphans, and parseServerSpec's validation and LiteLLM field variants.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GatewayError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { createRegistry, type LocalMcpRegistry } from '../../plugins/mcp/registry.js'
import { parseServerSpec, publicView, recordFromSpec, serverNameWarning, specFromRecord } from '../../plugins/mcp/spec.js'
import type { McpServerHealth, McpServerSpec } from '../../plugins/mcp/types.js'
import { everythingBin, memoryBin, startEverythingHttp, startTestMcpServer } from '../helpers/mcp.js'
import { alive } from '../helpers/net.js'

const DEFAULTS = { timeoutMs: 10_000, maxConcurrency: 4 }
const NOW = '2025-01-01T00:00:00.000Z'

function spec(name: string, entry: Record<string, unknown>, source: 'config' | 'db' = 'config'): McpServerSpec {
  return parseServerSpec(name, entry, DEFAULTS, source, NOW)
}

/** A registry closed in teardown, logging at debug into `lines`. */
function registry(t: Test, connectTimeoutMs = 10_000, lines: string[] = []): LocalMcpRegistry {
  const reg = createRegistry({ connectTimeoutMs, logger: createLogger({ level: 'debug', write: (l) => void lines.push(l) }) })
  t.teardown(() => reg.close())
  return reg
}

/** Poll a condition (bounded). */
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

function health(reg: LocalMcpRegistry, id: string): McpServerHealth {
  const h = reg.health().find((x) => x.server_id === id)
  if (!h) throw new Error(`no health for ${id}`)
  return h
}

/** The GatewayError a promise rejected with; a failure when it resolved or threw something else. */
async function rejection(t: Test, p: Promise<unknown>, status: number, what: string): Promise<GatewayError | null> {
  try {
    await p
  } catch (e) {
    t.ok(e instanceof GatewayError, `${what}: a GatewayError`)
    t.equal((e as GatewayError).status, status, `${what}: ${status}`)
    return e as GatewayError
  }
  t.fail(`${what}: resolved, expected ${status}`)
  return null
}

function textOf(res: { content: unknown }): string {
  return (res.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join('')
}

t.test('stdio server-everything: discovery, calls, filters, gate, timeout, killed child, removal', async (t) => {
  const lines: string[] = []
  const reg = registry(t, 10_000, lines)
  const changes: string[] = []
  reg.onToolsChanged((id) => void changes.push(id))
  const base = { transport: 'stdio', command: everythingBin, args: ['stdio'] }
  await reg.put(spec('everything', base))
  t.equal(health(reg, 'everything').status, 'connecting', 'put resolves before the connection is up')

  const tools = await reg.tools('everything')
  const names = tools.map((x) => x.name)
  t.ok(names.includes('echo') && names.includes('get-sum') && names.includes('trigger-long-running-operation'), 'tools discovered')
  const echo = tools.find((x) => x.name === 'echo')!
  t.equal(echo.prefixed, 'everything-echo', 'prefixed with server name and separator')
  t.equal(echo.serverId, 'everything')
  t.match(echo.inputSchema, { type: 'object', properties: { message: { type: 'string' } } }, 'input schema kept')
  const h = health(reg, 'everything')
  t.match(h, { status: 'healthy', error: null, restarts: 0, tools: tools.length, in_flight: 0, queued: 0 }, 'healthy')
  t.ok(h.last_connected_at, 'last_connected_at set')
  t.ok(changes.includes('everything'), 'onToolsChanged fired for the first listing')
  const pid = reg.pid('everything')!
  t.ok(pid > 0 && alive(pid), 'stdio child running')
  t.ok(lines.some((l) => l.includes('"MCP server stderr"') && l.includes('Starting default (STDIO) server')), "the child's stderr logged at debug")

  t.equal(textOf(await reg.call('everything', 'echo', { message: 'hi there' })), 'Echo: hi there', 'echo')
  t.equal(textOf(await reg.call('everything', 'get-sum', { a: 2, b: 3 })), 'The sum of 2 and 3 is 5.', 'get-sum')
  const bad = await reg.call('everything', 'echo', { message: 5 })
  t.equal(bad.isError, true, "a tool's own error is a result, not a throw")
  t.equal(reg.server('everything')?.server_name, 'everything', 'server() by id')

  // Filters and limits apply to the live connection: same process, tools re-filtered.
  changes.length = 0
  await reg.put(spec('everything', {
    ...base, allowed_tools: ['echo', 'get-sum', 'trigger-long-running-operation'], disallowed_tools: ['get-sum'], max_concurrency: 1,
  }))
  t.equal(reg.pid('everything'), pid, 'no reconnect for a filter change')
  t.same(changes, ['everything'], 'onToolsChanged fired for the put')
  t.same((await reg.tools('everything')).map((x) => x.name).sort(), ['echo', 'trigger-long-running-operation'], 'filtered')
  t.equal(health(reg, 'everything').tools, 2, 'health counts offered tools')
  const hidden = await rejection(t, reg.call('everything', 'get-sum', { a: 1, b: 1 }), 404, 'disallowed tool')
  t.equal(hidden?.openaiCode, 'mcp_tool_not_found')
  await rejection(t, reg.call('everything', 'get-env', {}), 404, 'tool outside allowed_tools')

  // max_concurrency 1: the second call waits for the first.
  const slow = { duration: 0.6, steps: 1 }
  const t0 = Date.now()
  const both = Promise.all([reg.call('everything', 'trigger-long-running-operation', slow), reg.call('everything', 'trigger-long-running-operation', slow)])
  await until('one in flight, one queued', () => { const x = health(reg, 'everything'); return x.in_flight === 1 && x.queued === 1 })
  const results = await both
  t.ok(results.every((r) => textOf(r).includes('Long running operation completed')), 'both completed')
  t.ok(Date.now() - t0 >= 1150, `ran one after the other (${Date.now() - t0} ms)`)
  t.match(health(reg, 'everything'), { in_flight: 0, queued: 0 }, 'gate empty again')

  // Time limit: 408, and the gate is freed.
  const t1 = Date.now()
  const late = await rejection(t, reg.call('everything', 'trigger-long-running-operation', { duration: 5, steps: 1 }, { timeoutMs: 300 }), 408, 'timeout')
  t.equal(late?.code, 'GW_ERR_UPSTREAM_TIMEOUT')
  t.ok(Date.now() - t1 < 2000, 'timed out promptly')
  t.equal(textOf(await reg.call('everything', 'echo', { message: 'after timeout' })), 'Echo: after timeout', 'next call runs')

  // Kill the child mid-call: the call fails at once, the server is restarted.
  const running = reg.call('everything', 'trigger-long-running-operation', { duration: 10, steps: 1 })
  await until('call in flight', () => health(reg, 'everything').in_flight === 1)
  const t2 = Date.now()
  process.kill(pid, 'SIGKILL')
  const lost = await rejection(t, running, 503, 'call during a crash')
  t.ok(Date.now() - t2 < 1500, `failed at once (${Date.now() - t2} ms)`)
  t.match(lost?.message, /closed the connection during the call; it is being restarted/)
  t.equal(lost?.openaiCode, 'mcp_server_unavailable')
  t.match(health(reg, 'everything'), { status: 'unhealthy', error: /connection lost/ }, 'unhealthy after the crash')
  t.ok(health(reg, 'everything').last_error_at, 'last_error_at set')
  await until('healthy again', () => health(reg, 'everything').status === 'healthy')
  t.ok(health(reg, 'everything').restarts >= 1, 'restart counted')
  const pid2 = reg.pid('everything')!
  t.ok(pid2 !== pid && alive(pid2) && !alive(pid), 'a new process replaced the dead one')
  t.equal(textOf(await reg.call('everything', 'echo', { message: 'back' })), 'Echo: back', 'calls work again')

  // A changed connection field reconnects; the old process is gone once put resolves.
  await reg.put(spec('everything', { ...base, env: { EXTRA: '1' } }))
  t.notOk(alive(pid2), 'old process stopped by put')
  t.equal(textOf(await reg.call('everything', 'get-sum', { a: 1, b: 1 })), 'The sum of 1 and 1 is 2.', 'new connection, filters reset')
  const pid3 = reg.pid('everything')!
  t.ok(pid3 !== pid2 && alive(pid3), 'new process')

  changes.length = 0
  t.equal(await reg.remove('everything'), true, 'removed')
  t.notOk(alive(pid3), 'no process left after remove')
  t.same(changes, ['everything'], 'onToolsChanged fired for the removal')
  t.equal(await reg.remove('everything'), false, 'second remove: false')
  t.equal(reg.server('everything'), undefined, 'forgotten')
  await rejection(t, reg.tools('everything'), 404, 'tools of a removed server')
})

t.test('stdio server-memory: create_entities then read_graph', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-mcp-memory-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'memory.jsonl')
  const reg = registry(t)
  await reg.put(spec('memory', { command: memoryBin, env: { MEMORY_FILE_PATH: file }, alias: 'kg' }))
  t.equal(reg.server('kg')?.server_id, 'memory', 'server() by alias')
  const names = (await reg.tools('kg')).map((x) => x.prefixed)
  t.ok(names.includes('memory-create_entities') && names.includes('memory-read_graph'), 'memory tools listed')
  const created = await reg.call('memory', 'create_entities', { entities: [{ name: 'alice', entityType: 'person', observations: ['likes tea'] }] })
  t.match(created.structuredContent, { entities: [{ name: 'alice', entityType: 'person' }] }, 'created')
  const graph = await reg.call('memory', 'read_graph', {})
  t.match(graph.structuredContent, { entities: [{ name: 'alice', observations: ['likes tea'] }] }, 'read back')
  t.match(readFileSync(file, 'utf8'), /"alice"/, 'written to MEMORY_FILE_PATH')
})

t.test('server-everything over streamable HTTP and SSE', async (t) => {
  const [http, sse] = await Promise.all([startEverythingHttp(t, 'streamableHttp'), startEverythingHttp(t, 'sse')])
  const reg = registry(t)
  await reg.put(spec('remote', { url: http.url, transport: 'streamable_http' }))
  await reg.put(spec('legacy', { url: sse.url, transport: 'sse' }))
  for (const id of ['remote', 'legacy']) {
    const names = (await reg.tools(id)).map((x) => x.name)
    t.ok(names.includes('echo') && names.includes('get-sum'), `${id}: tools listed`)
    t.equal(textOf(await reg.call(id, 'echo', { message: id })), `Echo: ${id}`, `${id}: echo`)
    t.match(health(reg, id), { status: 'healthy', transport: id === 'remote' ? 'http' : 'sse' })
    t.equal(reg.pid(id), null, `${id}: no local process`)
  }
  // A remote server that goes away mid-call: the call fails with a 503 soon, not at its time limit.
  for (const [id, srv] of [['remote', http], ['legacy', sse]] as const) {
    const running = reg.call(id, 'trigger-long-running-operation', { duration: 10, steps: 1 })
    await until(`${id}: call in flight`, () => health(reg, id).in_flight === 1)
    const t0 = Date.now()
    const failed = rejection(t, running, 503, `${id}: call while the server died`)
    await srv.stop()
    const e = await failed
    t.match(e?.message, /closed the connection during the call/)
    t.ok(Date.now() - t0 < 3000, `${id}: failed within 3 s (${Date.now() - t0} ms)`)
    t.match(health(reg, id), { status: 'unhealthy', error: /connection lost/ }, `${id}: unhealthy`)
  }
})

t.test('bearer and static headers reach the server; without them 401 makes it unhealthy', async (t) => {
  const srv = await startTestMcpServer(t, { bearer: 'sekret' })
  const reg = registry(t, 1500)
  await reg.put(spec('open', { url: srv.url }))
  await reg.put(spec('keyed', { url: srv.url, auth_type: 'bearer_token', auth_value: 'sekret', static_headers: { 'X-Static': 'yes' } }))
  await reg.put(spec('verbatim', { url: srv.url, auth_type: 'authorization', auth_value: 'Bearer sekret' }))

  const refused = await rejection(t, reg.tools('open'), 503, 'tools of a server that refuses us')
  t.match(refused?.message, /not available: cannot connect: .*401/, 'the error names the 401')
  t.match(health(reg, 'open'), { status: 'unhealthy', error: /401/ })

  t.equal(textOf(await reg.call('keyed', 'whoami', {})), 'Bearer sekret', 'bearer_token sent')
  t.ok(srv.requests.some((r) => r.headers['x-static'] === 'yes' && r.headers.authorization === 'Bearer sekret'), 'static header sent with the bearer')
  t.equal(textOf(await reg.call('verbatim', 'whoami', {})), 'Bearer sekret', 'authorization sent verbatim')
  t.equal(health(reg, 'keyed').status, 'healthy')
})

t.test('oauth2 client credentials: token fetched, cached, renewed after a 401; bad secret is a clear error', async (t) => {
  const srv = await startTestMcpServer(t, { oauth: { clientId: 'cid', clientSecret: 'cs' } })
  const reg = registry(t, 1500)
  const oauth = { url: srv.url, auth_type: 'oauth2', token_url: srv.tokenUrl, client_id: 'cid', client_secret: 'cs', scopes: 'read write' }
  await reg.put(spec('oauth', oauth))
  await reg.put(spec('wrong', { ...oauth, client_secret: 'nope' }))

  t.equal(textOf(await reg.call('oauth', 'whoami', {})), 'Bearer tok-1', 'bearer from the token endpoint')
  t.equal(textOf(await reg.call('oauth', 'whoami', {})), 'Bearer tok-1', 'cached')
  const good = srv.tokenRequests.filter((f) => f.get('client_secret') === 'cs')
  t.equal(good.length, 1, 'one token request for several HTTP requests')
  t.match(Object.fromEntries(good[0]!), { grant_type: 'client_credentials', client_id: 'cid', scope: 'read write' }, 'form fields')

  srv.revokeTokens()
  const before = srv.refused()
  t.equal(textOf(await reg.call('oauth', 'whoami', {})), 'Bearer tok-2', 'a 401 fetched a new token and retried')
  t.ok(srv.refused() > before, 'the old token was refused first')

  await until('wrong secret unhealthy', () => health(reg, 'wrong').status === 'unhealthy')
  t.match(health(reg, 'wrong').error, /OAuth token request to .* failed: HTTP 401/, 'clear error')
})

t.test('list_changed refresh, JSON-RPC errors, cancellation in flight and in the queue', async (t) => {
  const srv = await startTestMcpServer(t)
  const reg = registry(t)
  await reg.put(spec('local', { url: srv.url, max_concurrency: 1, timeout: 5 }))
  t.equal(reg.server('local')?.timeout_ms, 5000, 'timeout in seconds')
  t.notOk((await reg.tools('local')).some((x) => x.name === 'added'), 'not there yet')
  const changes: string[] = []
  reg.onToolsChanged((id) => void changes.push(id))
  await srv.addTool('added')
  await until('list_changed refresh', () => changes.includes('local'))
  t.ok((await reg.tools('local')).some((x) => x.prefixed === 'local-added'), 'new tool listed')
  t.equal(textOf(await reg.call('local', 'added', {})), 'added ran', 'and callable')

  const refused = await rejection(t, reg.call('local', 'strict', {}), 400, 'JSON-RPC error')
  t.equal(refused?.code, 'GW_ERR_UPSTREAM_BAD_REQUEST')
  t.match(refused?.message, /strict refuses every argument/, "the server's message")

  const first = new AbortController()
  const queued = new AbortController()
  const inFlight = reg.call('local', 'sleep', { ms: 5000 }, { signal: first.signal })
  const waiting = reg.call('local', 'sleep', { ms: 10 }, { signal: queued.signal })
  await until('one in flight, one queued', () => { const x = health(reg, 'local'); return x.in_flight === 1 && x.queued === 1 })
  queued.abort()
  await rejection(t, waiting, 499, 'queued call aborted')
  t.equal(health(reg, 'local').queued, 0, 'left the queue')
  const t0 = Date.now()
  first.abort()
  await rejection(t, inFlight, 499, 'in-flight call aborted')
  t.ok(Date.now() - t0 < 1000, 'aborted at once')
  t.equal(textOf(await reg.call('local', 'sleep', { ms: 1 })), 'slept 1', 'gate free again')

  const session = srv.requests.at(-1)!.headers['mcp-session-id']
  t.equal(await reg.remove('local'), true)
  t.ok(srv.requests.some((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === session), 'the HTTP session was ended on removal')
  await rejection(t, reg.call('local', 'sleep', { ms: 1 }), 404, 'removed server')
})

t.test('a stdio command that cannot start is unhealthy; listing and calling it fail at once, not at the time limit', async (t) => {
  const reg = registry(t, 5_000)
  await reg.put(spec('ghost', { command: '/nonexistent/mcp-server' }))
  // The spawn fails at once (ENOENT). A waiter gives up on the first failed attempt; once one has failed, a server that
  // never connected is not waited for at all (one dead server must not slow every tools/list by the connect timeout).
  const t0 = Date.now()
  const e = await rejection(t, reg.tools('ghost'), 503, 'tools of a server that never started')
  t.ok(Date.now() - t0 < 2_000, `not the 5 s connect timeout (${Date.now() - t0} ms)`)
  t.equal(e?.openaiCode, 'mcp_server_unavailable')
  t.match(e?.message, /not available: cannot connect: .*ENOENT/)
  t.match(health(reg, 'ghost'), { status: 'unhealthy', error: /ENOENT/, restarts: 0, tools: -1 })
  const t1 = Date.now()
  await rejection(t, reg.call('ghost', 'anything', {}), 503, 'call to a server that never started')
  t.ok(Date.now() - t1 < 100, `answered at once (${Date.now() - t1} ms)`)
})

t.test('parseServerSpec: LiteLLM variants and defaults', async (t) => {
  const http = spec('github', {
    url: 'https://mcp.example/mcp', transport: 'streamable-http', alias: 'gh', mcp_info: { description: 'GitHub' },
    auth_type: 'api_key', auth_value: 'k', headers: { 'X-A': 'a' }, extra_headers: { 'X-B': 2 }, access_groups: ['dev'],
    allow_all_keys: true, timeout_ms: 1234, unknown_field: 'ignored',
  })
  t.match(http, {
    server_id: 'github', server_name: 'github', alias: 'gh', description: 'GitHub', transport: 'http', url: 'https://mcp.example/mcp',
    command: null, args: [], env: {}, auth_type: 'api_key', auth_value: 'k', headers: { 'X-A': 'a', 'X-B': '2' },
    mcp_access_groups: ['dev'], allow_all_keys: true, allowed_tools: null, disallowed_tools: [], max_concurrency: 4,
    timeout_ms: 1234, source: 'config', created_at: NOW, updated_at: NOW, created_by: null,
  })
  t.notOk('unknown_field' in http, 'unknown fields ignored')
  t.match(spec('s', { command: 'x', args: ['a'], env: { PORT: 3000 } }), { transport: 'stdio', command: 'x', url: null, env: { PORT: '3000' } }, 'stdio implied by command')
  t.equal(spec('u', { url: 'http://h/mcp' }).transport, 'http', 'http implied by url')
  t.equal(spec('u', { url: 'http://h/sse', transport: 'SSE' }).transport, 'sse')
  t.match(spec('n', { server_name: 'named', url: 'http://h' }), { server_name: 'named', server_id: 'named' }, 'server_name over the key')
  t.same(spec('o', { url: 'http://h', auth_type: 'oauth2', token_url: 'http://h/t', client_id: 'i', client_secret: 's', scopes: ['a', 'b'] }).scopes, ['a', 'b'])
  const db = parseServerSpec(null, { server_name: 'fromapi', url: 'http://h' }, DEFAULTS, 'db', NOW)
  t.match(db.server_id, /^[0-9a-f-]{36}$/, 'db server without an id gets a UUID')
  t.equal(parseServerSpec(null, { server_id: 'given', server_name: 'x', url: 'http://h' }, DEFAULTS, 'db', NOW).server_id, 'given')
  t.match(serverNameWarning('my-server', '-'), /ambiguous/, "'-' in a name is warned about")
  t.equal(serverNameWarning('my_server', '-'), null)

  const secret = spec('sec', { command: 'x', env: { TOKEN: 't' }, headers: { Authorization: 'Bearer z' }, auth_type: 'bearer_token', auth_value: 'z' })
  const view = publicView(secret)
  t.notOk('auth_value' in view || 'client_secret' in view, 'secrets left out')
  t.same([view.env, view.headers], [{ TOKEN: '****' }, { Authorization: '****' }], 'env and header values masked')
  const record = recordFromSpec({ ...db, auth_type: 'bearer_token', auth_value: 'v' })
  t.equal(record.auth_value, 'v', 'the record keeps secrets')
  t.same(specFromRecord(record), { ...db, auth_type: 'bearer_token', auth_value: 'v' }, 'record round trip')
})

t.test('parseServerSpec: bad input is a 400 naming the field', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['unknown transport', { url: 'http://h', transport: 'websocket' }, 'transport'],
    ['stdio without command', { transport: 'stdio' }, 'command'],
    ['http without url', { transport: 'http' }, 'url'],
    ['neither url nor command', {}, 'url'],
    ['not an http url', { url: 'ftp://h/x' }, 'url'],
    ['not a url', { url: 'nope', transport: 'sse' }, 'url'],
    ['bad server_name', { server_name: 'a b', url: 'http://h' }, 'server_name'],
    ['server_name too long', { server_name: 'x'.repeat(65), url: 'http://h' }, 'server_name'],
    ['oauth2 without token_url', { url: 'http://h', auth_type: 'oauth2', client_id: 'i', client_secret: 's' }, 'token_url'],
    ['oauth2 without client_id', { url: 'http://h', auth_type: 'oauth2', token_url: 'http://h/t', client_secret: 's' }, 'client_id'],
    ['oauth2 without client_secret', { url: 'http://h', auth_type: 'oauth2', token_url: 'http://h/t', client_id: 'i' }, 'client_secret'],
    ['bearer without value', { url: 'http://h', auth_type: 'bearer_token' }, 'auth_value'],
    ['unknown auth_type', { url: 'http://h', auth_type: 'magic' }, 'auth_type'],
    ['non-string args', { command: 'x', args: ['a', 1] }, 'args'],
    ['env not an object', { command: 'x', env: ['A=1'] }, 'env'],
    ['env value an object', { command: 'x', env: { A: { b: 1 } } }, 'env.A'],
    ['allowed_tools not a list', { url: 'http://h', allowed_tools: 'echo' }, 'allowed_tools'],
    ['max_concurrency zero', { url: 'http://h', max_concurrency: 0 }, 'max_concurrency'],
    ['timeout negative', { url: 'http://h', timeout: -1 }, 'timeout'],
    ['allow_all_keys not boolean', { url: 'http://h', allow_all_keys: 'yes' }, 'allow_all_keys'],
  ]
  const refuses = (what: string, parse: () => unknown, param: string) => {
    try {
      parse()
      t.fail(`${what}: accepted`)
    } catch (e) {
      t.match(e, { status: 400, code: 'GW_ERR_VALIDATION', param }, what)
    }
  }
  for (const [what, entry, param] of cases) refuses(what, () => parseServerSpec('srv', entry, DEFAULTS, 'config', NOW), param)
  refuses('no name at all', () => parseServerSpec(null, { url: 'http://h' }, DEFAULTS, 'db', NOW), 'server_name')
  refuses('entry not an object', () => parseServerSpec('x', 'a string', DEFAULTS, 'config', NOW), 'x')
})
