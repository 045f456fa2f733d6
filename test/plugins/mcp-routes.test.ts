/**
 * The mcp plugin's routes beyond the end-to-end scenario (test/e2e/mcp-gateway.test.ts): a native pipeline
 * (store-sqlite, auth, keys, mcp) with server-everything over stdio, an in-process streamable-HTTP server (a `sleep`
 * tool past its 300 ms limit) and a server nothing listens for. Covered: the separator from MCP_TOOL_PREFIX_SEPARATOR,
 * config aliases, `x-mcp-servers` and `/mcp/{alias}` narrowing (never granting), a down server left out of lists,
 * an unknown tool as a JSON-RPC error, timeouts and unreachable servers on /mcp (isError) and REST (408 / 503),
 * 405 with Allow, bad and oversized bodies, what a plain key sees of /v1/mcp/*, validation errors, replicas' remote
 * invalidations reloading a server from the store, a bad config entry failing the boot, and no store.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import { startGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { everythingBin, startTestMcpServer } from '../helpers/mcp.js'
import { freePort } from '../helpers/net.js'
import { eventually, generateKey, MASTER } from '../e2e/helpers.js'
import { parseServerSpec, recordFromSpec } from '../../plugins/mcp/spec.js'
import type { McpRegistry } from '../../plugins/mcp/types.js'

const dir = mkdtempSync(join(tmpdir(), 'sy-mcp-routes-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const slow = await startTestMcpServer(t)
const ghostUrl = `http://127.0.0.1:${await freePort()}/mcp`

const config = `
server: { body_limit: 64kb }
pipeline:
  - store-sqlite: { path: ${JSON.stringify(join(dir, 'sy.db'))} }
  - auth: { master_key: ${MASTER} }
  - keys
  - mcp:
      connect_timeout_ms: 20000
      aliases: { ev: everything }
      servers:
        everything: { command: ${JSON.stringify(everythingBin)}, args: [stdio] }
        slow: { url: ${JSON.stringify(slow.url)}, timeout_ms: 300, mcp_access_groups: [team-tools] }
        ghost: { url: ${JSON.stringify(ghostUrl)} }
`

const gw = await startGateway(t, config, { env: { ...process.env, SWITCHYARD_DATA_DIR: dir, MCP_TOOL_PREFIX_SEPARATOR: '__' } })
const registry = gw.gateway.container.cradle.mcpRegistry as McpRegistry
await eventually(async () => ['everything', 'slow'].every((id) => registry.health().find((h) => h.server_id === id)?.status === 'healthy'),
  60_000, 'everything and slow healthy')

async function mcpClient(t: Test, path: string, key: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'mcp-routes-test', version: '1.0.0' })
  const requestInit = { headers: { authorization: `Bearer ${key}`, ...headers } }
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}${path}`), { requestInit }))
  t.teardown(() => client.close())
  return client
}

const names = async (c: Client): Promise<string[]> => (await c.listTools()).tools.map((x) => x.name)
const text = (r: any): string => (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('')
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

async function rawMcp(path: string, body: string, method = 'POST'): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    ...(method === 'POST' ? { body } : {}),
  })
}

t.test('/mcp: env separator, a down server left out, unknown tools, time limits, narrowing', async (t) => {
  const admin = await mcpClient(t, '/mcp', MASTER)
  const all = await names(admin)
  t.ok(all.includes('everything__echo') && all.includes('slow__sleep'), 'MCP_TOOL_PREFIX_SEPARATOR=__ names the tools')
  t.notOk(all.some((n) => n.startsWith('ghost')), 'the unreachable server offers nothing')
  t.ok(gw.logs.some((l) => l.msg === 'MCP server left out of tools/list' && l.server === 'ghost'), 'and is logged')

  const unknown = await admin.callTool({ name: 'everything__no_such_tool', arguments: {} }).catch((e: unknown) => e)
  t.ok(unknown instanceof McpError && unknown.code === ErrorCode.InvalidParams, 'an unknown tool: a JSON-RPC invalid-params error')
  t.match(String(unknown), /everything__no_such_tool not found/)
  const late = await admin.callTool({ name: 'slow__sleep', arguments: { ms: 3000 } })
  t.equal(late.isError, true, 'past the server\'s time limit: an isError result')
  t.match(text(late), /did not finish tool 'sleep' within 300 ms/)
  t.equal(text(await admin.callTool({ name: 'slow__sleep', arguments: { ms: 10 } })), 'slept 10')

  const byHeader = await mcpClient(t, '/mcp', MASTER, { 'x-mcp-servers': 'slow' })
  t.same((await names(byHeader)).sort(), ['slow__sleep', 'slow__strict', 'slow__whoami'], 'x-mcp-servers narrows')
  const byAlias = await names(await mcpClient(t, '/mcp/ev', MASTER))
  t.ok(byAlias.length > 5 && byAlias.every((n) => n.startsWith('everything__')), '/mcp/{alias} narrows to the aliased server')
  const byGroup = await names(await mcpClient(t, '/team-tools/mcp', MASTER))
  t.ok(byGroup.length === 3 && byGroup.every((n) => n.startsWith('slow__')), '/{access group}/mcp narrows to the group')

  const { key } = await generateKey(t, gw.url, { object_permission: { mcp_servers: ['everything'] } })
  t.same(await names(await mcpClient(t, '/slow/mcp', key)), [], 'narrowing to a server the key lacks grants nothing')
  const unknownServer = await rawMcp('/mcp/nope', JSON.stringify(initialize))
  t.equal(unknownServer.status, 404, 'an unknown server in the path: 404')
  t.match(await unknownServer.json(), { error: { code: 'mcp_server_not_found' } })
})

t.test('/mcp: methods and bodies', async (t) => {
  for (const [method, path] of [['GET', '/mcp'], ['DELETE', '/mcp/'], ['GET', '/ev/mcp']] as const) {
    const r = await rawMcp(path, '', method)
    t.equal(r.status, 405, `${method} ${path}`)
    t.equal(r.headers.get('allow'), 'POST', 'Allow names POST')
  }
  const bad = await rawMcp('/mcp', '{"jsonrpc": "2.0", ')
  t.equal(bad.status, 400)
  t.match(await bad.json(), { error: { code: 'invalid_json' } })
  const big = await rawMcp('/mcp', JSON.stringify({ ...initialize, pad: 'x'.repeat(200_000) }))
  t.equal(big.status, 413, 'over server.body_limit')
  const ok = await rawMcp('/mcp', JSON.stringify(initialize))
  t.equal(ok.status, 200)
  t.match(await ok.json(), { jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'switchyard' }, capabilities: { tools: {} } } })
})

t.test('REST: time limits, unreachable servers, partial lists, aliases', async (t) => {
  const call = (body: unknown) => jsonCall(gw.url, 'POST', '/mcp-rest/tools/call', body, MASTER)
  const late = await call({ name: 'slow__sleep', arguments: { ms: 3000 } })
  t.equal(late.status, 408)
  t.match(late.body, { error: { code: 'timeout', type: 'timeout_error' } })
  const down = await call({ server_id: 'ghost', name: 'anything', arguments: {} })
  t.equal(down.status, 503)
  t.match(down.body.error.message, /ghost/)
  t.equal((await call('{nope')).status, 400, 'bad JSON')
  t.match((await call({ name: 42 })).body, { error: { param: 'name' } })
  t.match((await call({ name: 'echo', server_id: '' })).body, { error: { param: 'server_id' } })

  const list = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list', undefined, MASTER)
  t.equal(list.status, 200)
  t.equal(list.body.error, 'partial_failure', 'one server could not be listed')
  t.match(list.body.message, /'ghost'/)
  t.ok(list.body.tools.some((x: any) => x.mcp_info.server_name === 'everything'))
  const ghost = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list?server_id=ghost', undefined, MASTER)
  t.match(ghost.body, { tools: [], error: 'server_error' })
  const ev = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list?server_id=ev', undefined, MASTER)
  t.ok(ev.body.tools.length > 5 && ev.body.tools.every((x: any) => x.mcp_info.server_id === 'everything'), 'server_id may be an alias')
  t.equal(ev.body.error, null)
})

t.test('management API: what a plain key sees, validation, config servers', async (t) => {
  const { key } = await generateKey(t, gw.url, { object_permission: { mcp_servers: ['everything'] } })
  const get = (path: string, k = key) => jsonCall(gw.url, 'GET', path, undefined, k)
  const listed = await get('/v1/mcp/server')
  t.same(listed.body.map((s: any) => s.server_id), ['everything'], 'a granted key lists its servers only')
  t.match(listed.body[0], { server_name: 'everything', alias: 'ev', command: null, args: [], status: 'healthy', credentials: null })
  const asAdmin = await get('/v1/mcp/server', MASTER)
  t.same(asAdmin.body.map((s: any) => s.server_id).sort(), ['everything', 'ghost', 'slow'])
  t.match(asAdmin.body.find((s: any) => s.server_id === 'ghost'), { status: 'unhealthy', health_check_error: String })
  t.equal((await get('/v1/mcp/server/slow')).status, 403, 'a server the key lacks')
  t.equal((await get('/v1/mcp/server/ev')).status, 200, 'by alias')
  t.equal((await get('/v1/mcp/server/nope')).status, 404)
  const tools = await get('/v1/mcp/tools')
  t.ok(tools.body.tools.length > 5 && tools.body.tools.every((x: any) => x.name.startsWith('everything__')), '/v1/mcp/tools: prefixed, the key\'s only')
  t.same((await get('/v1/mcp/server/health')).body.map((h: any) => h.server_id), ['everything'])
  t.same((await get('/v1/mcp/access_groups', MASTER)).body, { access_groups: ['team-tools'] })
  t.same((await get('/v1/mcp/access_groups')).body, { access_groups: [] })
  t.equal((await jsonCall(gw.url, 'PUT', '/v1/mcp/server', { server_id: 'everything' }, key)).status, 403)

  const post = (body: unknown) => jsonCall(gw.url, 'POST', '/v1/mcp/server', body, MASTER)
  t.match((await post({ server_name: 'x' })).body, { error: { param: 'url' } }, 'neither url nor command')
  t.match((await post({ server_name: 'bad name!', url: slow.url })).body, { error: { param: 'server_name' } })
  t.match((await post({ server_name: 'x', url: 'ftp://h/' })).body, { error: { param: 'url' } })
  const dup = await post({ server_name: 'slow', url: slow.url })
  t.equal(dup.status, 400, 'a config server\'s name')
  t.match(dup.body, { error: { param: 'server_name' } })
  t.equal((await jsonCall(gw.url, 'DELETE', '/v1/mcp/server/everything', undefined, MASTER)).status, 400, 'config servers are removed in the file')
  t.equal((await jsonCall(gw.url, 'PUT', '/v1/mcp/server', { server_id: 'nope', description: 'x' }, MASTER)).status, 404)
  t.match((await jsonCall(gw.url, 'PUT', '/v1/mcp/server', { description: 'x' }, MASTER)).body, { error: { param: 'server_id' } })
})

t.test('a replica\'s change (remote invalidate) reloads the server from the store', async (t) => {
  const { store, events } = gw.gateway.container.cradle
  const now = new Date().toISOString()
  const spec = parseServerSpec(null, { server_name: 'replica', url: slow.url }, { timeoutMs: 60_000, maxConcurrency: 10 }, 'db', now)
  await store!.insert('mcp_server', recordFromSpec(spec))
  events.emit('invalidate', { kind: 'mcp_server', id: spec.server_id })
  await new Promise((r) => setTimeout(r, 100))
  t.equal(registry.server('replica'), undefined, 'a local event is not reloaded (the API already applied it)')
  events.emit('invalidate', { kind: 'mcp_server', id: spec.server_id, remote: true })
  await eventually(async () => registry.server('replica'), 5000, 'replica server loaded')
  const admin = await mcpClient(t, '/replica/mcp', MASTER)
  t.equal(text(await admin.callTool({ name: 'replica__sleep', arguments: { ms: 1 } })), 'slept 1', 'and used')
  await store!.delete('mcp_server', spec.server_id)
  events.emit('invalidate', { kind: 'mcp_server', id: spec.server_id, remote: true })
  await eventually(async () => registry.server('replica') === undefined, 5000, 'replica server removed')
  t.equal((await jsonCall(gw.url, 'GET', '/v1/mcp/server/replica', undefined, MASTER)).status, 404, 'gone once the store no longer has it')
})

t.test('boot: a bad config entry names its field; without a store the API says so', async (t) => {
  const bad = `pipeline:\n  - auth: { master_key: ${MASTER} }\n  - mcp: { servers: { broken: { transport: http, url: 'not a url' } } }\n`
  const failed = await startGateway(t, bad).then(() => null, (e: unknown) => e as { code?: string; message: string })
  t.equal(failed?.code, 'GW_ERR_PLUGIN_OPTIONS')
  t.match(failed?.message, /servers\.broken\.url/)

  const bare = await startGateway(t, `pipeline:\n  - auth: { master_key: ${MASTER} }\n  - mcp\n`)
  const r = await jsonCall(bare.url, 'POST', '/v1/mcp/server', { server_name: 'x', url: slow.url }, MASTER)
  t.equal(r.status, 400)
  t.match(r.body, { error: { code: 'no_database', message: 'No connected db.' } })
  t.same((await jsonCall(bare.url, 'GET', '/v1/mcp/server', undefined, MASTER)).body, [], 'no servers, an empty list')
})
