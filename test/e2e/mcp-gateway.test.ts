/**
 * The gateway as an MCP server and its management, end to end: an unchanged LiteLLM config (master key, embedded
 * SQLite, `mcp_servers` with the real server-everything and server-memory over stdio), the official MCP SDK client
 * at /mcp with virtual keys, LiteLLM's REST API (/mcp-rest/*) and /v1/mcp/server with a streamable-HTTP
 * server-everything added at runtime, kept across a restart. A stdio server killed mid-call is restarted.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { everythingBin, memoryBin, startEverythingHttp } from '../helpers/mcp.js'
import { alive } from '../helpers/net.js'
import { eventually, generateKey, MASTER } from './helpers.js'
import type { LocalMcpRegistry } from '../../plugins/mcp/registry.js'

const dataDir = mkdtempSync(join(tmpdir(), 'sy-mcp-gw-'))
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
const env = { ...process.env, SWITCHYARD_DATA_DIR: dataDir }

const config = `
general_settings:
  master_key: ${MASTER}
model_list: []
mcp_servers:
  everything:
    transport: stdio
    command: ${everythingBin}
    args: [stdio]
  memory:
    command: ${memoryBin}
    mcp_info:
      mcp_server_cost_info: { default_cost_per_query: 0.0005 }
    env:
      MEMORY_FILE_PATH: ${join(dataDir, 'memory.jsonl')}
`

async function boot(t: Test): Promise<{ gw: TestGateway; registry: LocalMcpRegistry }> {
  const gw = await startGateway(t, config, { env })
  const registry = gw.gateway.container.cradle.mcpRegistry as LocalMcpRegistry
  await eventually(async () => registry.health().every((h) => h.status === 'healthy') && registry.health().length >= 2, 30_000, 'MCP servers healthy')
  return { gw, registry }
}

/** An MCP SDK client on the gateway's /mcp (or another path), with the key in the header LiteLLM documents. */
async function mcpClient(t: Test, url: string, key: string | null, path = '/mcp', header = 'x-litellm-api-key'): Promise<Client> {
  const client = new Client({ name: 'switchyard-test', version: '1.0.0' })
  const headers: Record<string, string> = key === null ? {} : { [header]: header === 'authorization' ? `Bearer ${key}` : key }
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}${path}`), { requestInit: { headers } }))
  t.teardown(() => client.close())
  return client
}

const text = (r: any): string => (r.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join('')

const { gw, registry } = await boot(t)

t.test('MCP SDK client at /mcp: every tool the key may use, by prefixed name, and calls through', async (t) => {
  const admin = await mcpClient(t, gw.url, MASTER, '/mcp', 'authorization')
  const names = (await admin.listTools()).tools.map((x) => x.name)
  t.ok(names.includes('everything-echo') && names.includes('everything-get-sum'), 'server-everything tools')
  t.ok(names.includes('memory-read_graph') && names.includes('memory-create_entities'), 'server-memory tools')
  t.equal(text(await admin.callTool({ name: 'everything-echo', arguments: { message: 'hi' } })), 'Echo: hi')
  const created = await admin.callTool({ name: 'memory-create_entities', arguments: { entities: [{ name: 'Switchyard', entityType: 'gateway', observations: ['speaks MCP'] }] } })
  t.notOk(created.isError)
  t.match(text(await admin.callTool({ name: 'memory-read_graph', arguments: {} })), /Switchyard/)

  const { key: everythingOnly } = await generateKey(t, gw.url, { object_permission: { mcp_servers: ['everything'] } })
  const a = await mcpClient(t, gw.url, everythingOnly)
  const aNames = (await a.listTools()).tools.map((x) => x.name)
  t.ok(aNames.length > 5 && aNames.every((n) => n.startsWith('everything-')), 'a key granted one server sees only its tools')
  const refused = await a.callTool({ name: 'memory-read_graph', arguments: {} })
  t.equal(refused.isError, true)
  t.match(text(refused), /not allowed for your key\/team on server 'memory'/)
  t.equal(text(await a.callTool({ name: 'everything-echo', arguments: { message: 'a' } })), 'Echo: a')

  const { key: readGraph } = await generateKey(t, gw.url, { object_permission: { mcp_tool_permissions: { memory: ['read_graph'] } } })
  const b = await mcpClient(t, gw.url, readGraph, '/mcp', 'authorization')
  t.same((await b.listTools()).tools.map((x) => x.name), ['memory-read_graph'], 'tool permissions: one tool of one server')
  t.equal((await b.callTool({ name: 'memory-create_entities', arguments: { entities: [] } })).isError, true)

  const narrowed = await mcpClient(t, gw.url, MASTER, '/memory/mcp')
  t.ok((await narrowed.listTools()).tools.every((x) => x.name.startsWith('memory-')), '/{server}/mcp narrows')

  const noKey = await mcpClient(t, gw.url, null).then(() => null, (e: unknown) => e as Error & { code?: number })
  t.equal(noKey?.code, 401, 'no key: the connection is refused with a 401')
  t.match(String(noKey), /No api key passed/)
  const badKey = await mcpClient(t, gw.url, 'sk-not-a-key').then(() => null, (e: unknown) => e as Error & { code?: number })
  t.equal(badKey?.code, 401, 'a wrong key: 401')
  t.equal((await jsonCall(gw.url, 'GET', '/mcp', undefined, MASTER)).status, 405, 'stateless: no GET stream')
})

t.test('REST API: list and call as LiteLLM shapes them, with its status codes', async (t) => {
  const list = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list', undefined, MASTER)
  t.equal(list.status, 200)
  t.match(list.body, { error: null, message: 'Successfully retrieved tools' })
  const echo = list.body.tools.find((x: any) => x.name === 'echo')
  t.match(echo, { name: 'echo', inputSchema: { type: 'object' }, mcp_info: { server_name: 'everything', server_id: 'everything' } })
  const one = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list?server_id=memory', undefined, MASTER)
  t.ok(one.body.tools.length > 0 && one.body.tools.every((x: any) => x.mcp_info.server_name === 'memory'))

  const call = await jsonCall(gw.url, 'POST', '/mcp-rest/tools/call', { server_id: 'everything', name: 'get-sum', arguments: { a: 2, b: 3 } }, MASTER)
  t.equal(call.status, 200)
  t.match(text(call.body), /5/)
  const prefixed = await jsonCall(gw.url, 'POST', '/mcp-rest/tools/call', { name: 'everything-echo', arguments: { message: 'p' } }, MASTER)
  t.equal(text(prefixed.body), 'Echo: p')

  const { key } = await generateKey(t, gw.url, { object_permission: { mcp_servers: ['everything'] } })
  const cases: Array<[string, string, unknown, number, RegExp | string]> = [
    ['GET', '/mcp-rest/tools/list?server_id=memory', undefined, 403, 'access_denied'],
    ['GET', '/mcp-rest/tools/list?server_id=nope', undefined, 404, 'server_not_found'],
    ['POST', '/mcp-rest/tools/call', { server_id: 'memory', name: 'read_graph', arguments: {} }, 403, 'access_denied'],
    ['POST', '/mcp-rest/tools/call', { name: 'echo', arguments: {} }, 400, 'missing_parameter'],
    ['POST', '/mcp-rest/tools/call', { server_id: 'everything', name: 'memory-read_graph', arguments: {} }, 403, 'tool_server_mismatch'],
    ['POST', '/mcp-rest/tools/call', { server_id: 'everything', name: 'no-such-tool', arguments: {} }, 404, 'mcp_tool_not_found'],
    ['POST', '/mcp-rest/tools/call', { server_id: 'everything', name: 'echo', arguments: null }, 400, /arguments/],
  ]
  for (const [method, path, body, status, code] of cases) {
    const r = await jsonCall(gw.url, method, path, body, key)
    t.equal(r.status, status, `${method} ${path} ${JSON.stringify(body ?? '')}`)
    t.match(r.body, { error: { message: String, type: String } })
    t.match(typeof code === 'string' ? r.body.error.code : r.body.error.message, code)
  }
  t.equal((await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list', undefined, null)).status, 401, 'no key: 401')
  // LiteLLM's `mcp_routes` group: a key limited to it reaches the MCP routes and nothing else.
  const { key: mcpOnly } = await generateKey(t, gw.url, { allowed_routes: ['mcp_routes'] })
  t.equal((await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list', undefined, mcpOnly)).status, 200, 'mcp_routes admits /mcp-rest')
  t.equal((await jsonCall(gw.url, 'GET', '/v1/models', undefined, mcpOnly)).status, 403, 'and nothing else')

  // Each direct call is a spend row of its own, as LiteLLM logs MCP tool calls; the memory server's price applies.
  const { key: spender, token } = await generateKey(t, gw.url, {})
  const paid = await jsonCall(gw.url, 'POST', '/mcp-rest/tools/call', { server_id: 'memory', name: 'read_graph', arguments: {} }, spender)
  t.equal(paid.status, 200)
  const rows = await eventually(async () => {
    const r = await jsonCall(gw.url, 'GET', `/spend/logs?api_key=${token}`, undefined, MASTER)
    return Array.isArray(r.body) && r.body.length > 0 ? r.body : null
  }, 10_000, 'the tool call\'s spend row')
  t.match(rows[0], { call_type: 'call_mcp_tool', model: 'memory-read_graph', model_group: 'memory', spend: 0.0005, status: 'success' })
})

t.test('/v1/mcp/server: a streamable-HTTP server added, narrowed, removed; admins only; kept across a restart', async (t) => {
  const remote = await startEverythingHttp(t, 'streamableHttp')
  const { key } = await generateKey(t, gw.url, {})
  const body = { server_name: 'remote', url: remote.url, transport: 'http', description: 'everything over HTTP' }
  t.equal((await jsonCall(gw.url, 'POST', '/v1/mcp/server', body, key)).status, 403, 'a plain key may not add servers')
  const created = await jsonCall(gw.url, 'POST', '/v1/mcp/server', body, MASTER)
  t.equal(created.status, 201)
  t.match(created.body, { server_name: 'remote', transport: 'http', url: remote.url, credentials: null })
  const id = created.body.server_id as string
  t.match(id, /^[0-9a-f-]{36}$/, 'a UUID server_id')
  t.equal((await jsonCall(gw.url, 'POST', '/v1/mcp/server', body, MASTER)).status, 400, 'the same name twice')

  await eventually(async () => {
    const r = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list?server_id=remote', undefined, MASTER)
    return r.body.tools?.length > 5 ? r : null
  }, 20_000, 'remote tools listed')
  const health = await jsonCall(gw.url, 'GET', `/v1/mcp/server/health?server_ids=${id}`, undefined, MASTER)
  t.match(health.body, [{ server_id: id, server_name: 'remote', status: 'healthy' }])

  const updated = await jsonCall(gw.url, 'PUT', '/v1/mcp/server', { server_id: id, allowed_tools: ['echo'] }, MASTER)
  t.equal(updated.status, 202)
  t.same(updated.body.allowed_tools, ['echo'])
  t.equal(updated.body.url, remote.url, 'omitted fields kept')
  const narrowed = await jsonCall(gw.url, 'GET', '/mcp-rest/tools/list?server_id=remote', undefined, MASTER)
  t.same(narrowed.body.tools.map((x: any) => x.name), ['echo'])
  const viaMcp = await mcpClient(t, gw.url, MASTER)
  t.equal(text(await viaMcp.callTool({ name: 'remote-echo', arguments: { message: 'over http' } })), 'Echo: over http')

  const listed = await jsonCall(gw.url, 'GET', '/v1/mcp/server', undefined, key)
  t.notOk(listed.body.some((s: any) => s.url), 'no URL for a plain key')
  t.equal((await jsonCall(gw.url, 'PUT', '/v1/mcp/server', { server_id: 'everything', description: 'x' }, MASTER)).status, 400, 'config servers are changed in the file')

  // Restart on the same database: the stored server comes back.
  await gw.stop()
  const { gw: again, registry: reg2 } = await boot(t)
  const back = await jsonCall(again.url, 'GET', `/v1/mcp/server/${id}`, undefined, MASTER)
  t.equal(back.status, 200)
  t.match(back.body, { server_id: id, server_name: 'remote', allowed_tools: ['echo'] })
  await eventually(async () => reg2.health().find((h) => h.server_id === id)?.status === 'healthy', 20_000, 'remote healthy after restart')

  t.equal((await jsonCall(again.url, 'DELETE', `/v1/mcp/server/${id}`, undefined, key)).status, 403)
  t.equal((await jsonCall(again.url, 'DELETE', `/v1/mcp/server/${id}`, undefined, MASTER)).status, 202)
  t.equal((await jsonCall(again.url, 'GET', `/v1/mcp/server/${id}`, undefined, MASTER)).status, 404)
  t.equal((await jsonCall(again.url, 'DELETE', `/v1/mcp/server/${id}`, undefined, MASTER)).status, 404)
  t.end()
})

t.test('a stdio server killed mid-call: a clear error, a restart, and the next call works within seconds', async (t) => {
  const gw2 = await startGateway(t, config, { env: { ...process.env, SWITCHYARD_DATA_DIR: mkdtempSync(join(tmpdir(), 'sy-mcp-kill-')) } })
  const reg = gw2.gateway.container.cradle.mcpRegistry as LocalMcpRegistry
  await eventually(async () => reg.health().every((h) => h.status === 'healthy') && reg.health().length >= 2, 30_000, 'healthy')
  const client = await mcpClient(t, gw2.url, MASTER)
  const pid = reg.pid('everything')!
  t.ok(pid > 0 && alive(pid))
  const pending = client.callTool({ name: 'everything-trigger-long-running-operation', arguments: { duration: 5, steps: 5 } })
  await new Promise((r) => setTimeout(r, 300))
  process.kill(pid, 'SIGKILL')
  const started = Date.now()
  const failed = await pending
  t.equal(failed.isError, true)
  t.match(text(failed), /everything.*(closed|restart)/i, 'the error says what happened')
  t.ok(Date.now() - started < 3000, 'fails at once, not at the end of the operation')
  const ok = await eventually(async () => {
    const r = await client.callTool({ name: 'everything-echo', arguments: { message: 'back' } })
    return r.isError ? null : r
  }, 10_000, 'echo works again')
  t.equal(text(ok), 'Echo: back')
  t.ok(Date.now() - started < 10_000, `back within ${Date.now() - started} ms`)
  const h = reg.health().find((x) => x.server_id === 'everything')!
  t.ok(h.restarts >= 1, 'restart counted')
  t.not(reg.pid('everything'), pid, 'a new process')
})
