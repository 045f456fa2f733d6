/**
 * The MCP tools of a chat request (plugins/mcp/inject.ts, loop.ts, tools.ts) and their Responses API items
 * (core/formats/responses-*.ts): `type: "mcp"` entries become function tools, the gateway's tool loop runs the
 * model's calls and calls it again, for JSON replies and streams, and a Response shows the lists and calls.
 *
 * Unit level, real code throughout: a registry object that implements McpRegistry with fixed tools (it records
 * calls and can fail them), and `again` functions that answer with scripted chat completions and chunk streams in
 * the shapes OpenAI documents (each checked against ../shared/data/openai/openapi.json). One test writes a loop's
 * stream through the real SSE writer to a real HTTP client on 127.0.0.1.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { gatewayError, GatewayError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { createState, type GatewayState, type Principal, type ToolCallRecord } from '../../core/state.js'
import type { ChatChunk, ChatCompletion, ChatMessage, Usage } from '../../core/openai/types.js'
import type { ProviderResult } from '../../providers/types.js'
import { inputItems, responsesToChat } from '../../core/formats/responses-request.js'
import { chatToResponse, responseId, ResponsesStreamWriter, type ResponseOptions } from '../../core/formats/responses-reply.js'
import { writeSse, type GatewayContext } from '../../core/http/respond.js'
import { SseParser } from '../../core/sse.js'
import { mcpMiddleware } from '../../plugins/mcp/inject.js'
import { addUsage, isToolCallEvent, TOOL_CALL_EVENT, type ToolCallEvent } from '../../plugins/mcp/loop.js'
import { modelToolName, resultText, toFunctionTool } from '../../plugins/mcp/tools.js'
import type { CallOptions, McpRegistry, McpServerSpec, McpTool } from '../../plugins/mcp/types.js'
import { assertSchema } from '../helpers/openapi.js'

type Obj = Record<string, any>

// ---------------------------------------------------------------------------------------------------------------
// Fixtures: servers, tools, a registry

function spec(name: string, extra: Partial<McpServerSpec> = {}): McpServerSpec {
  return {
    server_id: `id-${name}`, server_name: name, alias: null, description: null, transport: 'stdio', url: null,
    command: 'unused', args: [], env: {}, auth_type: null, auth_value: null, headers: {}, client_id: null,
    client_secret: null, token_url: null, scopes: [], allowed_tools: null, disallowed_tools: [], mcp_access_groups: [],
    allow_all_keys: false, max_concurrency: 10, timeout_ms: 60_000, mcp_info: null, source: 'config',
    created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z', created_by: null, updated_by: null,
    ...extra,
  }
}

function tool(server: McpServerSpec, name: string, inputSchema: Obj, extra: Partial<McpTool> = {}): McpTool {
  return { serverId: server.server_id, server: server.server_name, name, prefixed: `${server.server_name}-${name}`, description: `The ${name} tool.`, inputSchema, ...extra }
}

const ALPHA = spec('alpha', { alias: 'calc' })
const BETA = spec('beta')
const WEB = spec('web.tools')
const ADD_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#', type: 'object',
  properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'], additionalProperties: false,
}
const ADD = tool(ALPHA, 'add', ADD_SCHEMA)
const ECHO = tool(ALPHA, 'echo', { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] }, { annotations: { readOnlyHint: true } })
const SEARCH = tool(BETA, 'search', {}, { description: undefined, title: 'Search the web' })
const FETCH = tool(WEB, 'fetch', { type: 'object', properties: { url: { type: 'string' } } })

interface RecordedCall { serverId: string; tool: string; args: Obj; signal: AbortSignal | undefined }

/** An McpRegistry with fixed tools: records listings and calls; a tool's behaviour or a server's outage is set per test. */
class FakeRegistry implements McpRegistry {
  readonly separator = '-'
  readonly calls: RecordedCall[] = []
  readonly listings: string[] = []
  readonly behaviour = new Map<string, (args: Obj) => CallToolResult | Promise<CallToolResult>>()
  readonly down = new Set<string>()
  private readonly specs = [ALPHA, BETA, WEB]
  private readonly byServer = new Map([[ALPHA.server_id, [ADD, ECHO]], [BETA.server_id, [SEARCH]], [WEB.server_id, [FETCH]]])

  servers() {
    return this.specs
  }
  server(ref: string) {
    return this.specs.find((s) => s.server_id === ref) ?? this.specs.find((s) => s.server_name === ref) ?? this.specs.find((s) => s.alias === ref)
  }
  async put(): Promise<void> {
    throw new Error('not used here')
  }
  async remove(): Promise<boolean> {
    return false
  }
  async tools(serverId: string): Promise<McpTool[]> {
    this.listings.push(serverId)
    if (this.down.has(serverId)) {
      throw gatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', `MCP server ${serverId} is unavailable`, { openaiCode: 'mcp_server_unavailable' })
    }
    return this.byServer.get(serverId) ?? []
  }
  async call(serverId: string, name: string, args: Record<string, unknown>, opts?: CallOptions): Promise<CallToolResult> {
    this.calls.push({ serverId, tool: name, args, signal: opts?.signal })
    const b = this.behaviour.get(name)
    if (b) return b(args)
    if (name === 'add') return { content: [{ type: 'text', text: String((args.a as number) + (args.b as number)) }] }
    return { content: [{ type: 'text', text: `${name}: ${JSON.stringify(args)}` }] }
  }
  health() {
    return []
  }
  onToolsChanged() {
    return () => undefined
  }
  async close(): Promise<void> {}
}

const logs: Obj[] = []
const logger = createLogger({ level: 'debug', write: (line) => void logs.push(JSON.parse(line)) })

function newState(body: Obj, o: { principal?: Principal | null; signal?: AbortSignal; kind?: GatewayState['kind'] } = {}): GatewayState {
  const state = createState(() => {
    throw new Error('no scope in these tests')
  }, o.signal ?? new AbortController().signal, new Promise(() => undefined))
  state.kind = o.kind ?? 'chat'
  state.body = body
  state.principal = o.principal ?? null
  state.passthrough = true
  return state
}

/** Run the middleware on a state; resolves with whether it called next(). */
async function inject(state: GatewayState, reg: McpRegistry, maxIterations = 10): Promise<boolean> {
  let next = false
  await mcpMiddleware({ registry: reg, maxIterations, logger })({ state } as never, async () => {
    next = true
  })
  return next
}

async function rejected(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p
  } catch (e) {
    if (e instanceof GatewayError) return e
    throw e
  }
  throw new Error('expected a GatewayError, the call succeeded')
}

const USER = [{ role: 'user', content: 'What is 1 + 2?' }]
const MCP_NEVER = { type: 'mcp', server_label: 'alpha', server_url: 'litellm_proxy', require_approval: 'never' }
const CLIENT_FN = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }

const names = (body: Obj | null) => ((body?.tools ?? []) as Obj[]).map((x) => x.function?.name ?? x.type)

// ---------------------------------------------------------------------------------------------------------------
// tools.ts

t.test('modelToolName: valid names unchanged; others cleaned, cut to 64 and told apart by a hash', async (t) => {
  t.equal(modelToolName('alpha-add'), 'alpha-add')
  const dotted = modelToolName('web.tools-fetch')
  t.match(dotted, /^web_tools-fetch_[0-9a-f]{8}$/)
  t.equal(modelToolName('web.tools-fetch'), dotted, 'stable')
  const other = modelToolName('web/tools-fetch')
  t.not(other, dotted, 'two names that clean up alike differ by their hash')
  t.match(other, /^web_tools-fetch_[0-9a-f]{8}$/)
  const long = modelToolName(`server-${'x'.repeat(80)}`)
  t.equal(long.length, 64)
  t.match(long, /^[a-zA-Z0-9_-]{64}$/)
  t.not(modelToolName(`server-${'x'.repeat(80)}`), modelToolName(`server-${'x'.repeat(81)}`), 'cut names stay apart')
  t.equal(modelToolName('x'.repeat(64)), 'x'.repeat(64), '64 valid characters are kept')
})

t.test('toFunctionTool: an object schema with properties, no $schema, the rest kept', async (t) => {
  t.same(toFunctionTool(ADD, 'alpha-add'), {
    type: 'function',
    function: {
      name: 'alpha-add', description: 'The add tool.',
      parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'], additionalProperties: false },
    },
  })
  t.same(toFunctionTool(SEARCH, 'beta-search'), {
    type: 'function', function: { name: 'beta-search', description: 'Search the web', parameters: { type: 'object', properties: {} } },
  }, 'empty schema filled; the title stands in for a missing description')
  const bare = toFunctionTool({ ...SEARCH, title: undefined }, 'n')
  t.notOk('description' in bare.function, 'no description at all: none sent')
  t.equal(ADD.inputSchema.$schema, ADD_SCHEMA.$schema, 'the tool itself is not changed')
})

t.test('resultText: text, media placeholders, resources, links, structured content', async (t) => {
  t.equal(resultText({
    content: [
      { type: 'text', text: 'line one' },
      { type: 'image', data: 'AAAA', mimeType: 'image/png' },
      { type: 'audio', data: 'AAAA', mimeType: 'audio/wav' },
      { type: 'resource', resource: { uri: 'file:///a.txt', text: 'embedded text' } },
      { type: 'resource', resource: { uri: 'file:///b.bin', blob: 'AAAA', mimeType: 'application/octet-stream' } },
      { type: 'resource_link', uri: 'https://example.com/doc', name: 'doc' },
    ],
  }), 'line one\n[image: image/png]\n[audio: audio/wav]\nembedded text\n[resource: file:///b.bin]\nhttps://example.com/doc')
  t.equal(resultText({ content: [], structuredContent: { sum: 3 } }), '{"sum":3}')
  t.equal(resultText({ content: [{ type: 'text', text: 'shown' }], structuredContent: { hidden: true } }), 'shown', 'parts win over structured content')
  t.equal(resultText({ content: [] }), '')
})

// ---------------------------------------------------------------------------------------------------------------
// inject.ts

t.test('injection: function tools named <server>-<tool> replace the mcp entry, client tools kept in place', async (t) => {
  const reg = new FakeRegistry()
  const tools = [CLIENT_FN, { type: 'mcp', server_label: 'anything', server_url: 'litellm_proxy' }, { type: 'function', function: { name: 'last' } }]
  const body = { model: 'gpt-4o', messages: USER, tools }
  const state = newState(body)
  t.ok(await inject(state, reg), 'next() called')
  const webName = modelToolName('web.tools-fetch')
  t.same(names(state.body), ['get_weather', 'alpha-add', 'alpha-echo', 'beta-search', webName, 'last'], 'an unknown label: every server')
  t.same((state.body!.tools as Obj[])[1], toFunctionTool(ADD, 'alpha-add'))
  t.not(state.body, body, 'the body is a copy')
  t.equal(body.tools, tools, 'the client body keeps its own list')
  t.equal(tools.length, 3, 'and that list is unchanged')
  t.same(state.toolLists.map((l) => [l.server, l.tools.map((x) => x.name)]), [['alpha', ['add', 'echo']], ['beta', ['search']], ['web.tools', ['fetch']]])
  t.same(state.toolLists[0]!.tools[1], { name: 'echo', description: 'The echo tool.', input_schema: ECHO.inputSchema, annotations: { readOnlyHint: true } })
  t.equal(state.toolLoop, null, 'require_approval absent (OpenAI default "always"): the calls go to the client')
  t.equal(state.passthrough, true, 'no loop: pass-through untouched')
})

t.test('injection: the fast path leaves the request alone', async (t) => {
  const reg = new FakeRegistry()
  for (const body of [{ model: 'm', messages: USER }, { model: 'm', messages: USER, tools: [CLIENT_FN] }, { model: 'm', messages: USER, tools: null }]) {
    const state = newState(body)
    t.ok(await inject(state, reg))
    t.equal(state.body, body, 'same body object')
  }
  const notChat = newState({ model: 'm', prompt: 'x', tools: [MCP_NEVER] }, { kind: 'completions' })
  await inject(notChat, reg)
  t.same(names(notChat.body), ['mcp'], 'only chat requests are rewritten')
  t.same(reg.listings, [], 'no server was asked for tools')
})

t.test('injection: server_url and server_label choose the servers', async (t) => {
  const reg = new FakeRegistry()
  const run = async (entry: Obj, principal: Principal | null = null) => {
    const state = newState({ model: 'm', messages: USER, tools: [entry] }, { principal })
    await inject(state, reg)
    return names(state.body)
  }
  t.same(await run({ type: 'mcp', server_label: 'beta', server_url: 'litellm_proxy' }), ['beta-search'], 'label = a server name')
  t.same(await run({ type: 'mcp', server_label: 'calc', server_url: 'litellm_proxy' }), ['alpha-add', 'alpha-echo'], 'label = an alias')
  t.same(await run({ type: 'mcp', server_label: 'id-beta', server_url: 'litellm_proxy/' }), ['beta-search'], 'label = an id')
  t.same(await run({ type: 'mcp', server_label: 'x', server_url: 'litellm_proxy/mcp/beta,alpha' }), ['beta-search', 'alpha-add', 'alpha-echo'], 'named in the URL, in its order')
  t.same(await run({ type: 'mcp', server_label: 'beta', server_url: 'litellm_proxy/mcp/alpha' }), ['alpha-add', 'alpha-echo'], 'the URL wins over the label')
  t.same(await run({ type: 'mcp', server_url: 'litellm_proxy/mcp' }), ['alpha-add', 'alpha-echo', 'beta-search', modelToolName('web.tools-fetch')], 'no label, no names: all')

  // A key granted alpha only: a label naming beta falls back to what it may use; a URL naming beta is refused.
  const onlyAlpha: Principal = { id: 'k1', kind: 'key', key: { object_permission: { mcp_servers: ['alpha'] } } as never }
  t.same(await run({ type: 'mcp', server_label: 'beta', server_url: 'litellm_proxy' }, onlyAlpha), ['alpha-add', 'alpha-echo'])
  const forbidden = await rejected(run({ type: 'mcp', server_label: 'b', server_url: 'litellm_proxy/mcp/beta' }, onlyAlpha))
  t.equal(forbidden.status, 403)
  t.equal(forbidden.code, 'GW_ERR_FORBIDDEN')
  t.equal(forbidden.param, 'tools[0].server_url')
  t.match(forbidden.message, /MCP server 'beta'/)

  const unknown = await rejected(run({ type: 'mcp', server_label: 'n', server_url: 'litellm_proxy/mcp/alpha,nope' }))
  t.equal(unknown.status, 400)
  t.equal(unknown.code, 'GW_ERR_VALIDATION')
  t.equal(unknown.param, 'tools[0].server_url')
  t.match(unknown.message, /'nope' does not exist/)

  for (const url of ['https://mcp.example.com/sse', 'litellm_proxy/other', undefined]) {
    const e = await rejected(run({ type: 'mcp', server_label: 'x', server_url: url }))
    t.equal(e.status, 400, `${url}: 400`)
    t.equal(e.message, 'MCP tools must use server_url "litellm_proxy" (the gateway\'s MCP servers).')
    t.equal(e.param, 'tools[0].server_url')
  }

  // The key's tool permissions narrow a server's tools.
  const echoOnly: Principal = { id: 'k2', kind: 'key', key: { object_permission: { mcp_tool_permissions: { alpha: ['echo'] } } } as never }
  t.same(await run({ type: 'mcp', server_label: 'alpha', server_url: 'litellm_proxy' }, echoOnly), ['alpha-echo'])
})

t.test('injection: allowed_tools filters by own or prefixed name, or read_only', async (t) => {
  const reg = new FakeRegistry()
  const run = async (allowed: unknown) => {
    const state = newState({ model: 'm', messages: USER, tools: [{ type: 'mcp', server_label: 'x', server_url: 'litellm_proxy/mcp/alpha,beta', allowed_tools: allowed }] })
    await inject(state, reg)
    return { names: names(state.body), lists: state.toolLists.map((l) => l.server) }
  }
  t.same((await run(['add', 'beta-search'])).names, ['alpha-add', 'beta-search'])
  t.same((await run({ tool_names: ['echo'] })).names, ['alpha-echo'])
  t.same((await run({ read_only: true })).names, ['alpha-echo'], 'only tools annotated readOnlyHint')
  t.same((await run(null)).names, ['alpha-add', 'alpha-echo', 'beta-search'])
  t.same(await run(['nothing-matches']), { names: [], lists: [] }, 'no tools: no tools field, no lists')
})

t.test('injection: an emptied tools list takes the tool settings with it', async (t) => {
  const reg = new FakeRegistry()
  const state = newState({ model: 'm', messages: USER, tool_choice: 'required', parallel_tool_calls: false, tools: [{ type: 'mcp', server_label: 'x', server_url: 'litellm_proxy', allowed_tools: [] }] })
  await inject(state, reg)
  t.notOk('tools' in state.body!)
  t.notOk('tool_choice' in state.body!)
  t.notOk('parallel_tool_calls' in state.body!)
})

t.test('injection: a name collision, bad shapes and an unreachable server are errors', async (t) => {
  const reg = new FakeRegistry()
  const run = (tools: unknown[]) => inject(newState({ model: 'm', messages: USER, tools }), reg)
  const clash = await rejected(run([{ type: 'function', function: { name: 'alpha-add' } }, MCP_NEVER]))
  t.equal(clash.status, 400)
  t.equal(clash.param, 'tools[1]')
  t.match(clash.message, /'alpha-add' has the same name as a function tool/)

  const cases: Array<[string, Obj, string]> = [
    ['server_label a number', { server_label: 3 }, 'tools[0].server_label'],
    ['headers with a number', { headers: { 'x-a': 1 } }, 'tools[0].headers'],
    ['allowed_tools a number', { allowed_tools: 5 }, 'tools[0].allowed_tools'],
    ['allowed_tools with a number', { allowed_tools: ['a', 1] }, 'tools[0].allowed_tools'],
    ['allowed_tools unknown filter field', { allowed_tools: { names: ['a'] } }, 'tools[0].allowed_tools.names'],
    ['tool_names not a list', { allowed_tools: { tool_names: 'add' } }, 'tools[0].allowed_tools.tool_names'],
    ['read_only a string', { allowed_tools: { read_only: 'yes' } }, 'tools[0].allowed_tools.read_only'],
    ['require_approval unknown mode', { require_approval: 'sometimes' }, 'tools[0].require_approval'],
    ['require_approval unknown field', { require_approval: { maybe: {} } }, 'tools[0].require_approval.maybe'],
    ['require_approval.never not a filter', { require_approval: { never: ['add'] } }, 'tools[0].require_approval.never'],
  ]
  for (const [name, extra, param] of cases) {
    const e = await rejected(run([{ ...MCP_NEVER, ...extra }]))
    t.equal(e.status, 400, `${name}: 400`)
    t.equal(e.param, param, `${name}: ${param}`)
  }

  reg.down.add(BETA.server_id)
  const down = await rejected(run([{ type: 'mcp', server_label: 'beta', server_url: 'litellm_proxy' }]))
  t.equal(down.status, 503, 'the server the client asked for cannot be reached: the request fails')
  t.equal(down.openaiCode, 'mcp_server_unavailable')
})

t.test('injection: require_approval never (or naming the tool) sets the loop', async (t) => {
  const reg = new FakeRegistry()
  const state = newState({ model: 'm', messages: USER, tools: [MCP_NEVER] })
  await inject(state, reg)
  t.ok(state.toolLoop, 'a tool loop')
  t.equal(state.passthrough, false, 'the loop reads every reply')

  for (const ra of ['always', { always: { tool_names: ['add'] } }, { never: { tool_names: ['nothing'] } }]) {
    const s = newState({ model: 'm', messages: USER, tools: [{ ...MCP_NEVER, require_approval: ra }] })
    await inject(s, reg)
    t.equal(s.toolLoop, null, `${JSON.stringify(ra)}: no loop`)
  }
})

// ---------------------------------------------------------------------------------------------------------------
// The JSON loop

const CREATED = 1_760_000_000
let serial = 0

function usage(prompt: number, completion: number, cached = 0, reasoning = 0): Usage {
  return {
    prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  } as Usage
}

function call(id: string, name: string, args: unknown) {
  return { id, type: 'function' as const, function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } }
}

/** A ChatCompletion as OpenAI returns it. */
function completion(message: Obj, finish: ChatCompletion['choices'][number]['finish_reason'], u: Usage): ChatCompletion {
  return {
    id: `chatcmpl-${++serial}`, object: 'chat.completion', created: CREATED + serial, model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, annotations: [], ...message }, logprobs: null, finish_reason: finish }],
    usage: u, service_tier: 'default', system_fingerprint: 'fp_1',
  }
}

function json(body: ChatCompletion): ProviderResult {
  return { kind: 'json', body, usage: body.usage ?? null }
}

/** An `again` that answers from a script and keeps every request it was given. */
function scripted(replies: ProviderResult[]): { again: (b: Obj) => Promise<ProviderResult>; requests: Obj[] } {
  const requests: Obj[] = []
  return {
    requests,
    again: async (b) => {
      requests.push(b)
      const r = replies.shift()
      if (!r) throw new Error('the script has no more replies')
      return r
    },
  }
}

async function loopState(t: Test, body: Obj, reg: McpRegistry, maxIterations = 10, signal?: AbortSignal): Promise<GatewayState> {
  const state = newState(body, signal ? { signal } : {})
  await inject(state, reg, maxIterations)
  t.ok(state.toolLoop, 'a loop was set')
  return state
}

t.test('JSON loop: two tool turns, then the answer; messages, usage and records', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'gpt-4o', messages: USER, tools: [CLIENT_FN, MCP_NEVER] }, reg)
  const first = completion({ tool_calls: [call('call_1', 'alpha-add', { a: 1, b: 2 }), call('call_2', 'alpha-echo', { message: 'hi' })] }, 'tool_calls', usage(100, 20, 10, 5))
  const second = completion({ content: 'Checking once more.', tool_calls: [call('call_3', 'alpha-add', { a: 3, b: 4 })] }, 'tool_calls', usage(150, 10, 50))
  const last = completion({ content: '1 + 2 = 3' }, 'stop', usage(170, 8))
  for (const c of [first, second, last]) assertSchema(t, 'CreateChatCompletionResponse', c)
  const { again, requests } = scripted([json(second), json(last)])
  const out = await state.toolLoop!.run(json(first), again)

  t.equal(out.kind, 'json')
  const body = (out as Extract<ProviderResult, { kind: 'json' }>).body as ChatCompletion
  t.equal(body.id, last.id, 'the last turn answers')
  t.equal(body.choices[0]!.message.content, '1 + 2 = 3')
  const sum = {
    prompt_tokens: 420, completion_tokens: 38, total_tokens: 458,
    prompt_tokens_details: { cached_tokens: 60, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 5, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  }
  t.same(body.usage, sum, 'usage summed over the three turns, details too')
  t.same((out as { usage: Usage }).usage, sum, 'and given as the result usage (what is priced)')
  assertSchema(t, 'CreateChatCompletionResponse', body)

  t.equal(requests.length, 2)
  const m1 = requests[0]!.messages as ChatMessage[]
  t.same(m1, [
    USER[0],
    { role: 'assistant', content: null, tool_calls: first.choices[0]!.message.tool_calls },
    { role: 'tool', tool_call_id: 'call_1', content: '3' },
    { role: 'tool', tool_call_id: 'call_2', content: 'echo: {"message":"hi"}' },
  ])
  t.same(names(requests[0]!), names(state.body), 'the same tools every turn')
  t.equal(requests[0]!.model, 'gpt-4o')
  const m2 = requests[1]!.messages as ChatMessage[]
  t.same(m2.slice(0, 4), m1, 'the second turn builds on the first')
  t.same(m2.slice(4), [
    { role: 'assistant', content: 'Checking once more.', tool_calls: second.choices[0]!.message.tool_calls },
    { role: 'tool', tool_call_id: 'call_3', content: '7' },
  ])
  t.equal((state.body!.messages as unknown[]).length, 1, 'the request body itself is not changed')

  t.same(reg.calls.map((c) => [c.serverId, c.tool, c.args]), [['id-alpha', 'add', { a: 1, b: 2 }], ['id-alpha', 'echo', { message: 'hi' }], ['id-alpha', 'add', { a: 3, b: 4 }]])
  t.ok(reg.calls.every((c) => c.signal === state.signal), 'calls carry the request signal')
  t.same(state.toolCalls.map((r) => [r.id, r.name, r.server, r.serverId, r.tool, r.arguments, r.output, r.error, r.costUsd]), [
    ['call_1', 'alpha-add', 'alpha', 'id-alpha', 'add', '{"a":1,"b":2}', '3', null, 0],
    ['call_2', 'alpha-echo', 'alpha', 'id-alpha', 'echo', '{"message":"hi"}', 'echo: {"message":"hi"}', null, 0],
    ['call_3', 'alpha-add', 'alpha', 'id-alpha', 'add', '{"a":3,"b":4}', '7', null, 0],
  ])
  t.ok(state.toolCalls.every((r) => r.startedAt > 0 && r.durationMs >= 0))
})

t.test('JSON loop: calls run in parallel', async (t) => {
  const reg = new FakeRegistry()
  let inFlight = 0
  let most = 0
  reg.behaviour.set('echo', async () => {
    most = Math.max(most, ++inFlight)
    await new Promise((r) => setTimeout(r, 30))
    inFlight--
    return { content: [{ type: 'text', text: 'ok' }] }
  })
  const state = await loopState(t, { model: 'm', messages: USER, tools: [MCP_NEVER] }, reg)
  const first = completion({ tool_calls: [1, 2, 3].map((i) => call(`c${i}`, 'alpha-echo', { message: String(i) })) }, 'tool_calls', usage(1, 1))
  const { again } = scripted([json(completion({ content: 'done' }, 'stop', usage(1, 1)))])
  await state.toolLoop!.run(json(first), again)
  t.equal(most, 3, 'all three at once')
  t.same(state.toolCalls.map((r) => r.id), ['c1', 'c2', 'c3'], 'recorded in call order')
})

t.test('JSON loop: failures reach the model as "Error: ..."', async (t) => {
  const reg = new FakeRegistry()
  reg.behaviour.set('add', () => {
    throw gatewayError('GW_ERR_UPSTREAM_TIMEOUT', 'MCP tool add timed out after 50 ms', { openaiCode: 'timeout' })
  })
  reg.behaviour.set('echo', () => ({ content: [{ type: 'text', text: 'message too long' }], isError: true }))
  const state = await loopState(t, { model: 'm', messages: USER, tools: [MCP_NEVER] }, reg)
  const first = completion({
    tool_calls: [call('c1', 'alpha-add', { a: 1, b: 2 }), call('c2', 'alpha-echo', { message: 'x' }), call('c3', 'alpha-echo', '{"message": '), call('c4', 'alpha-echo', '[1]'), call('c5', 'alpha-echo', '')],
  }, 'tool_calls', usage(1, 1))
  const { again, requests } = scripted([json(completion({ content: 'Sorry.' }, 'stop', usage(1, 1)))])
  await state.toolLoop!.run(json(first), again)
  const tools = (requests[0]!.messages as ChatMessage[]).filter((m) => m.role === 'tool')
  t.same(tools.map((m) => [m.tool_call_id, m.content]), [
    ['c1', 'Error: MCP tool add timed out after 50 ms'],
    ['c2', 'Error: message too long'],
    ['c3', 'Error: The tool call arguments are not valid JSON.'],
    ['c4', 'Error: The tool call arguments must be a JSON object.'],
    ['c5', 'Error: message too long'],
  ])
  t.same(reg.calls.map((c) => [c.tool, c.args]), [['add', { a: 1, b: 2 }], ['echo', { message: 'x' }], ['echo', {}]], 'bad arguments are not sent; empty ones are {}')
  t.same(state.toolCalls.map((r) => [r.output, r.error]), [
    [null, 'MCP tool add timed out after 50 ms'], [null, 'message too long'], [null, 'The tool call arguments are not valid JSON.'],
    [null, 'The tool call arguments must be a JSON object.'], [null, 'message too long'],
  ])
  t.ok(logs.some((l) => l.msg === 'MCP tool call failed' && l.tool === 'add' && l.level === 'warn'), 'a thrown failure is logged')
})

t.test('JSON loop: maxIterations bounds the model turns; the last reply goes out as is', async (t) => {
  const reg = new FakeRegistry()
  // LiteLLM's own example sends tool_choice 'required' with an MCP tool: kept on the first turn only.
  const state = await loopState(t, { model: 'm', messages: USER, tools: [MCP_NEVER], tool_choice: 'required' }, reg, 3)
  t.equal(state.body!.tool_choice, 'required', 'the first turn keeps the client\'s tool_choice')
  const again = scripted([1, 2, 3, 4].map((i) => json(completion({ tool_calls: [call(`c${i + 1}`, 'alpha-add', { a: i, b: i })] }, 'tool_calls', usage(10, 1)))))
  const out = await state.toolLoop!.run(json(completion({ tool_calls: [call('c1', 'alpha-add', { a: 0, b: 0 })] }, 'tool_calls', usage(10, 1))), again.again)
  t.equal(again.requests.length, 2, 'three model turns in all')
  t.notOk('tool_choice' in again.requests[0]!, 'a follow-up turn drops it (a forced call every turn could never end)')
  t.equal(again.requests[1]!.tool_choice, 'none', 'the last turn allowed is asked to answer in text')
  t.ok(Array.isArray(again.requests[1]!.tools) && (again.requests[1]!.tools as unknown[]).length > 0, 'with the tools still declared')
  t.equal(reg.calls.length, 2, 'the last turn\'s calls are not run')
  const body = (out as { body: ChatCompletion }).body
  t.same(body.choices[0]!.message.tool_calls!.map((c) => c.id), ['c3'], 'its calls go to the client')
  t.equal(body.choices[0]!.finish_reason, 'tool_calls')
  t.equal(body.usage!.prompt_tokens, 30, 'usage of all three turns')
})

t.test('JSON loop: replies that need nothing, or mix in client calls, are returned as they are', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, tools: [CLIENT_FN, MCP_NEVER] }, reg)
  const { again, requests } = scripted([])
  const plain = json(completion({ content: 'Hi' }, 'stop', usage(1, 1)))
  t.equal(await state.toolLoop!.run(plain, again), plain, 'no calls: the same result')
  const mixed = json(completion({ tool_calls: [call('c1', 'alpha-add', { a: 1, b: 1 }), call('c2', 'get_weather', {})] }, 'tool_calls', usage(1, 1)))
  t.equal(await state.toolLoop!.run(mixed, again), mixed, 'mixed: the same result')
  const clientOnly = json(completion({ tool_calls: [call('c3', 'get_weather', {})] }, 'tool_calls', usage(1, 1)))
  t.equal(await state.toolLoop!.run(clientOnly, again), clientOnly)
  t.equal(requests.length, 0)
  t.equal(reg.calls.length, 0)
  t.same(state.toolCalls, [])
})

t.test('JSON loop: only the tools require_approval lets the gateway run are run', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, tools: [{ ...MCP_NEVER, require_approval: { never: { tool_names: ['echo'] } } }] }, reg)
  const { again } = scripted([json(completion({ content: 'ok' }, 'stop', usage(1, 1)))])
  const asks = json(completion({ tool_calls: [call('c1', 'alpha-add', { a: 1, b: 1 })] }, 'tool_calls', usage(1, 1)))
  t.equal(await state.toolLoop!.run(asks, again), asks, 'add needs approval: back to the client')
  const out = await state.toolLoop!.run(json(completion({ tool_calls: [call('c2', 'alpha-echo', { message: 'm' })] }, 'tool_calls', usage(1, 1))), again)
  t.equal((out as { body: ChatCompletion }).body.choices[0]!.message.content, 'ok', 'echo runs')
  t.same(reg.calls.map((c) => c.tool), ['echo'])
})

t.test('JSON loop: a tool whose model name was cleaned up is still found', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, tools: [{ type: 'mcp', server_label: 'web.tools', server_url: 'litellm_proxy', require_approval: 'never' }] }, reg)
  const name = modelToolName('web.tools-fetch')
  t.same(names(state.body), [name])
  const { again } = scripted([json(completion({ content: 'fetched' }, 'stop', usage(1, 1)))])
  await state.toolLoop!.run(json(completion({ tool_calls: [call('c1', name, { url: 'https://example.com' })] }, 'tool_calls', usage(1, 1))), again)
  t.same(reg.calls.map((c) => [c.serverId, c.tool]), [['id-web.tools', 'fetch']])
  t.match(state.toolCalls[0], { name, server: 'web.tools', tool: 'fetch' })
})

t.test('JSON loop: an upstream failure of a later turn fails the request; a client gone stops it', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, tools: [MCP_NEVER] }, reg)
  const asks = () => json(completion({ tool_calls: [call('c1', 'alpha-add', { a: 1, b: 1 })] }, 'tool_calls', usage(1, 1)))
  const e = await rejected(state.toolLoop!.run(asks(), async () => {
    throw gatewayError('GW_ERR_UPSTREAM_RATE_LIMIT', 'slow down')
  }))
  t.equal(e.status, 429)

  const ac = new AbortController()
  const gone = await loopState(t, { model: 'm', messages: USER, tools: [MCP_NEVER] }, reg, 10, ac.signal)
  reg.behaviour.set('add', () => {
    ac.abort()
    return { content: [{ type: 'text', text: '2' }] }
  })
  const { again, requests } = scripted([])
  const closed = await rejected(gone.toolLoop!.run(asks(), again))
  t.equal(closed.code, 'GW_ERR_CLIENT_CLOSED')
  t.equal(requests.length, 0, 'no model call after the client went away')
})

t.test('addUsage: numbers and details summed, neither argument changed', async (t) => {
  const a = usage(1, 2, 3, 4)
  const b = { ...usage(10, 20), cache_creation_input_tokens: 7, note: 'x' }
  const s = addUsage(addUsage(null, a), b)!
  t.same(s, { ...usage(11, 22, 3, 4), cache_creation_input_tokens: 7, note: 'x' })
  t.same(a, usage(1, 2, 3, 4))
  t.equal(addUsage(a, null), a)
})

// ---------------------------------------------------------------------------------------------------------------
// The stream loop

/** A chat.completion.chunk as OpenAI streams it with include_usage (`usage: null` on content chunks). */
function chunk(id: string, delta: Obj, finish: ChatChunk['choices'][number]['finish_reason'] = null, created = CREATED): ChatChunk {
  return { id, object: 'chat.completion.chunk', created, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_1', service_tier: 'default', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null }
}
function usageChunk(id: string, u: Usage, created = CREATED): ChatChunk {
  return { id, object: 'chat.completion.chunk', created, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_1', service_tier: 'default', choices: [], usage: u }
}

interface Tracked { pulled: number; finished: boolean; closed: boolean }

/** The chunks as an upstream stream; `gate` holds it after `gateAt` chunks until released. */
function upstream(chunks: ChatChunk[], track: Tracked = { pulled: 0, finished: false, closed: false }, gate?: { at: number; open: Promise<void> }): AsyncIterable<ChatChunk> {
  return (async function* () {
    try {
      for (let i = 0; i < chunks.length; i++) {
        if (gate && i === gate.at) await gate.open
        track.pulled++
        yield chunks[i]!
      }
      track.finished = true
    } finally {
      track.closed = true
    }
  })()
}

function streamOf(chunks: ChatChunk[], track?: Tracked, gate?: { at: number; open: Promise<void> }): ProviderResult {
  return { kind: 'stream', chunks: upstream(chunks, track, gate) }
}

async function drain(r: ProviderResult): Promise<Array<ChatChunk | ToolCallEvent>> {
  const out: Array<ChatChunk | ToolCallEvent> = []
  for await (const c of (r as { chunks: AsyncIterable<ChatChunk | ToolCallEvent> }).chunks) out.push(c)
  return out
}

/** Turn 1 as OpenAI streams a reply that says something, then calls two tools (arguments in pieces). */
function toolTurn(id: string): ChatChunk[] {
  return [
    chunk(id, { role: 'assistant', content: '', refusal: null }),
    chunk(id, { content: 'Let me ' }),
    chunk(id, { content: 'check.' }),
    chunk(id, { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'alpha-add', arguments: '' } }] }),
    chunk(id, { tool_calls: [{ index: 0, function: { arguments: '{"a":1,' } }] }),
    chunk(id, { tool_calls: [{ index: 0, function: { arguments: '"b":2}' } }] }),
    chunk(id, { tool_calls: [{ index: 1, id: 'call_e', type: 'function', function: { name: 'alpha-echo', arguments: '{"message":"x"}' } }] }),
    chunk(id, {}, 'tool_calls'),
    usageChunk(id, usage(100, 30, 20)),
  ]
}

function answerTurn(id: string, created: number): ChatChunk[] {
  return [
    chunk(id, { role: 'assistant', content: '' }, null, created),
    chunk(id, { content: '1 + 2 = ' }, null, created),
    chunk(id, { content: '3' }, null, created),
    chunk(id, {}, 'stop', created),
    usageChunk(id, usage(160, 6, 100), created),
  ]
}

const isChunk = (c: ChatChunk | ToolCallEvent): c is ChatChunk => !isToolCallEvent(c)

t.test('stream loop: text forwarded under one id, tool deltas withheld, markers between turns, one summed usage chunk', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, stream_options: { include_usage: true }, tools: [MCP_NEVER] }, reg)
  const turn1 = toolTurn('chatcmpl-T1')
  const turn2 = answerTurn('chatcmpl-T2', CREATED + 5)
  for (const c of [...turn1, ...turn2]) assertSchema(t, 'CreateChatCompletionStreamResponse', c)
  const { again, requests } = scripted([streamOf(turn2)])
  const out = await drain(await state.toolLoop!.run(streamOf(turn1), again))

  const chunks = out.filter(isChunk)
  for (const c of chunks) assertSchema(t, 'CreateChatCompletionStreamResponse', c, `${JSON.stringify(c.choices[0]?.delta ?? 'usage')} is a valid chunk`)
  t.ok(chunks.every((c) => c.id === 'chatcmpl-T1' && c.created === CREATED), 'every chunk carries the first turn\'s id and created')
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')
  t.equal(text, 'Let me check.1 + 2 = 3')
  t.notOk(chunks.some((c) => c.choices[0]?.delta?.tool_calls), 'no tool call deltas reach the client')
  t.same(chunks.map((c) => c.choices[0]?.finish_reason).filter((f) => f), ['stop'], 'one finish: the last turn\'s')

  const markers = out.filter(isToolCallEvent)
  t.same(markers.map((m) => m.object), [TOOL_CALL_EVENT, TOOL_CALL_EVENT])
  t.same(markers.map((m) => [m.call.id, m.call.name, m.call.arguments, m.call.output]), [['call_a', 'alpha-add', '{"a":1,"b":2}', '3'], ['call_e', 'alpha-echo', '{"message":"x"}', 'echo: {"message":"x"}']])
  t.same(markers.map((m) => m.call), state.toolCalls, 'the markers are the recorded calls')
  const firstMarker = out.findIndex(isToolCallEvent)
  t.ok(out.slice(0, firstMarker).some((c) => isChunk(c) && c.choices[0]?.delta?.content === 'check.'), 'turn 1 text comes before the markers')
  t.ok(out.slice(firstMarker).some((c) => isChunk(c) && c.choices[0]?.delta?.content === '3'), 'turn 2 text after')

  const usages = chunks.filter((c) => c.usage)
  t.equal(usages.length, 1, 'one usage chunk')
  t.equal(out[out.length - 1], usages[0], 'and it is last')
  t.same(usages[0]!.choices, [])
  t.same(usages[0]!.usage, {
    prompt_tokens: 260, completion_tokens: 36, total_tokens: 296,
    prompt_tokens_details: { cached_tokens: 120, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  })

  t.same(requests[0]!.messages, [
    USER[0],
    { role: 'assistant', content: 'Let me check.', tool_calls: [call('call_a', 'alpha-add', '{"a":1,"b":2}'), call('call_e', 'alpha-echo', '{"message":"x"}')] },
    { role: 'tool', tool_call_id: 'call_a', content: '3' },
    { role: 'tool', tool_call_id: 'call_e', content: 'echo: {"message":"x"}' },
  ], 'the next turn gets the streamed call, assembled')
  t.equal(requests[0]!.stream, true)
  t.same(requests[0]!.stream_options, { include_usage: true })
})

t.test('stream loop: a follow-up drops the client\'s tool_choice; the last turn allowed gets \'none\'', async (t) => {
  for (const max of [2, 3]) {
    const reg = new FakeRegistry()
    const state = await loopState(t, { model: 'm', messages: USER, stream: true, tool_choice: 'required', tools: [MCP_NEVER] }, reg, max)
    const replies = max === 2 ? [streamOf(answerTurn('chatcmpl-T2', CREATED + 5))] : [streamOf(toolTurn('chatcmpl-T2')), streamOf(answerTurn('chatcmpl-T3', CREATED + 9))]
    const { again, requests } = scripted(replies)
    const out = await drain(await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-T1')), again))
    t.equal(out.filter(isChunk).map((c) => c.choices[0]?.delta?.content ?? '').join('').endsWith('1 + 2 = 3'), true, `max ${max}: the answer streams`)
    t.same(requests.map((r) => r.tool_choice), max === 2 ? ['none'] : [undefined, 'none'], `max ${max}: tool_choice per follow-up turn`)
    t.ok(requests.every((r) => Array.isArray(r.tools)), 'the tools stay declared')
  }
})

t.test('stream loop: text reaches the client before the turn is over', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg)
  let release!: () => void
  const track: Tracked = { pulled: 0, finished: false, closed: false }
  const { again, requests } = scripted([streamOf(answerTurn('chatcmpl-B', CREATED))])
  const r = await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-A'), track, { at: 3, open: new Promise<void>((res) => (release = res)) }), again)
  const it = (r as { chunks: AsyncIterable<ChatChunk> }).chunks[Symbol.asyncIterator]()
  const got: string[] = []
  for (let i = 0; i < 3; i++) got.push(((await it.next()).value as ChatChunk).choices[0]!.delta.content ?? '')
  t.same(got, ['', 'Let me ', 'check.'])
  t.equal(track.pulled, 3, 'the upstream is held: the tool calls have not even arrived')
  t.equal(requests.length, 0)
  release()
  let rest = 0
  for (;;) {
    const step = await it.next()
    if (step.done) break
    rest++
  }
  t.ok(rest > 0)
  t.equal(requests.length, 1)
  t.ok(track.finished)
})

t.test('stream loop: calls mixed with the client\'s go out whole, and nothing runs', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [CLIENT_FN, MCP_NEVER] }, reg)
  const id = 'chatcmpl-M'
  const turn = [
    chunk(id, { role: 'assistant', content: null }),
    chunk(id, { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'alpha-add', arguments: '{"a":1,' } }] }),
    chunk(id, { tool_calls: [{ index: 0, function: { arguments: '"b":2}' } }] }),
    chunk(id, { tool_calls: [{ index: 1, id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }),
    chunk(id, {}, 'tool_calls'),
    usageChunk(id, usage(5, 5)),
  ]
  const { again, requests } = scripted([])
  const out = (await drain(await state.toolLoop!.run(streamOf(turn), again))) as ChatChunk[]
  for (const c of out) assertSchema(t, 'CreateChatCompletionStreamResponse', c)
  t.equal(out.filter(isToolCallEvent).length, 0)
  // A client's accumulator: arguments by index.
  const calls = new Map<number, { id?: string; name?: string; args: string }>()
  for (const c of out) {
    for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
      const acc = calls.get(tc.index) ?? { args: '' }
      if (tc.id) acc.id = tc.id
      if (tc.function?.name) acc.name = tc.function.name
      acc.args += tc.function?.arguments ?? ''
      calls.set(tc.index, acc)
    }
  }
  t.same([...calls.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v), [
    { id: 'call_a', name: 'alpha-add', args: '{"a":1,"b":2}' }, { id: 'call_w', name: 'get_weather', args: '{}' },
  ], 'both calls, whole')
  const finishes = out.map((c) => c.choices[0]?.finish_reason).filter((f) => f)
  t.same(finishes, ['tool_calls'])
  t.ok(out.findIndex((c) => c.choices[0]?.finish_reason) > out.findLastIndex((c) => c.choices[0]?.delta?.tool_calls), 'the finish comes after every call delta')
  t.equal(requests.length, 0)
  t.equal(reg.calls.length, 0)
})

t.test('stream loop: maxIterations 1 forwards the first turn as the model sent it', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg, 1)
  const out = (await drain(await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-X')), scripted([]).again))) as ChatChunk[]
  t.equal(out.filter((c) => c.choices[0]?.delta?.tool_calls).length, 4, 'the tool deltas are there')
  t.same(out.map((c) => c.choices[0]?.finish_reason).filter((f) => f), ['tool_calls'])
  t.equal(reg.calls.length, 0)
})

t.test('stream loop: a client that goes away stops the stream and closes the upstream', async (t) => {
  const reg = new FakeRegistry()
  const ac = new AbortController()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg, 10, ac.signal)
  const track: Tracked = { pulled: 0, finished: false, closed: false }
  const { again, requests } = scripted([])
  const r = await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-Z'), track), again)
  const it = (r as { chunks: AsyncIterable<ChatChunk> }).chunks[Symbol.asyncIterator]()
  await it.next()
  ac.abort()
  t.same(await it.next(), { done: true, value: undefined }, 'the stream ends')
  t.ok(track.closed, 'the upstream iterator was closed')
  t.notOk(track.finished, 'before its end')
  t.equal(requests.length, 0)
  t.equal(reg.calls.length, 0)
})

t.test('stream loop: a failing later turn throws from the stream', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg)
  const r = await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-F')), async () => {
    throw gatewayError('GW_ERR_UPSTREAM_SERVER', 'upstream broke')
  })
  const seen: Array<ChatChunk | ToolCallEvent> = []
  const e = await rejected((async () => {
    for await (const c of (r as { chunks: AsyncIterable<ChatChunk | ToolCallEvent> }).chunks) seen.push(c)
  })())
  t.equal(e.status, 500)
  t.equal(seen.filter(isToolCallEvent).length, 2, 'the calls that ran were reported first')
})

t.test('stream loop: streamed thinking blocks come back joined with the call', async (t) => {
  const reg = new FakeRegistry()
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg)
  const id = 'chatcmpl-K'
  const turn = [
    chunk(id, { reasoning_content: 'Add ', thinking_blocks: [{ type: 'thinking', thinking: 'Add ' }] }),
    chunk(id, { reasoning_content: 'them.', thinking_blocks: [{ type: 'thinking', thinking: 'them.' }] }),
    chunk(id, { thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig1' }] }),
    chunk(id, { tool_calls: [{ index: 0, id: 'call_k', type: 'function', function: { name: 'alpha-add', arguments: '{"a":1,"b":1}' } }] }),
    chunk(id, {}, 'tool_calls'),
  ]
  const { again, requests } = scripted([streamOf(answerTurn('chatcmpl-K2', CREATED))])
  const out = await drain(await state.toolLoop!.run(streamOf(turn), again))
  t.same((requests[0]!.messages as ChatMessage[])[1], {
    role: 'assistant', content: null, tool_calls: [call('call_k', 'alpha-add', '{"a":1,"b":1}')],
    thinking_blocks: [{ type: 'thinking', thinking: 'Add them.', signature: 'sig1' }],
  })
  t.ok(out.some((c) => isChunk(c) && c.choices[0]?.delta?.reasoning_content === 'Add '), 'reasoning is forwarded')
})

t.test('the SSE writer skips the markers; usage goes out summed, once, when asked for', async (t) => {
  const reg = new FakeRegistry()
  const served: GatewayState[] = []
  const server = createServer((req, res) => {
    const includeUsage = req.url === '/usage'
    void (async () => {
      const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg)
      served.push(state)
      const result = await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-S')), scripted([streamOf(answerTurn('chatcmpl-S2', CREATED + 1))]).again)
      await writeSse({ res, state, respond: true, status: 404 } as unknown as GatewayContext, result as never, includeUsage)
    })()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  for (const path of ['/usage', '/plain']) {
    const res = await fetch(base + path)
    t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
    const text = await res.text()
    t.notOk(text.includes(TOOL_CALL_EVENT), `${path}: no marker in the SSE`)
    const p = new SseParser()
    const data = [...p.push(text), ...p.end()].map((e) => e.data)
    t.equal(data[data.length - 1], '[DONE]')
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as ChatChunk)
    t.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Let me check.1 + 2 = 3')
    const usages = chunks.filter((c) => c.usage)
    t.equal(usages.length, path === '/usage' ? 1 : 0, `${path}: usage only when asked for`)
    if (path === '/usage') t.equal(usages[0]!.usage!.total_tokens, 296)
    t.equal(served[served.length - 1]!.usage?.total_tokens, 296, `${path}: the summed usage is recorded either way`)
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Responses API

t.test('Responses request: mcp tools pass into the chat body; their shapes are checked', async (t) => {
  const mcp = { type: 'mcp', server_label: 'alpha', server_url: 'litellm_proxy', allowed_tools: { tool_names: ['add'] }, require_approval: 'never' }
  const body = { model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }, mcp] }
  const chat = responsesToChat(body, [], inputItems(body))
  t.same(chat.tools, [{ type: 'function', function: { name: 'f' } }, mcp], 'the mcp entry unchanged, in place')
  t.equal(chat.tools![1], mcp as never)

  const cases: Array<[Obj, string]> = [
    [{ server_url: 'litellm_proxy' }, 'tools.0.server_label'],
    [{ server_label: 'a', server_url: 5 }, 'tools.0.server_url'],
    [{ server_label: 'a', allowed_tools: 'add' }, 'tools.0.allowed_tools'],
    [{ server_label: 'a', allowed_tools: ['add', 2] }, 'tools.0.allowed_tools'],
    [{ server_label: 'a', require_approval: 'sometimes' }, 'tools.0.require_approval'],
  ]
  for (const [fields, param] of cases) {
    let err: unknown = null
    try {
      inputItems({ model: 'm', input: 'x', tools: [{ type: 'mcp', ...fields }] })
    } catch (e) {
      err = e
    }
    t.ok(err instanceof GatewayError && err.status === 400 && err.param === param, `${JSON.stringify(fields)}: 400 at ${param}`)
  }
})

t.test('Responses request: echoed mcp_call items become a call and its result; lists are skipped', async (t) => {
  const body = {
    model: 'm',
    input: [
      { role: 'user', content: 'Add 1 and 2' },
      { type: 'mcp_list_tools', id: 'mcpl_1', server_label: 'alpha', tools: [{ name: 'add', input_schema: {} }], error: null },
      { type: 'mcp_call', id: 'mcp_1', server_label: 'alpha', name: 'add', arguments: '{"a":1,"b":2}', output: '3', error: null, status: 'completed' },
      { type: 'mcp_call', id: 'mcp_2', server_label: 'web.tools', name: 'fetch', arguments: '{}', output: null, error: { type: 'mcp_tool_execution_error', content: [{ type: 'text', text: 'boom' }] }, status: 'failed' },
      { type: 'mcp_call', id: 'mcp_3', server_label: 'alpha', name: 'echo', arguments: '{}', error: 'plain failure' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'It is 3.' }] },
    ],
  }
  t.same(responsesToChat(body, [], inputItems(body)).messages, [
    { role: 'user', content: 'Add 1 and 2' },
    { role: 'assistant', content: null, tool_calls: [call('mcp_1', 'alpha-add', '{"a":1,"b":2}')] },
    { role: 'tool', tool_call_id: 'mcp_1', content: '3' },
    { role: 'assistant', content: null, tool_calls: [call('mcp_2', 'web_tools-fetch', '{}')] },
    { role: 'tool', tool_call_id: 'mcp_2', content: 'Error: boom' },
    { role: 'assistant', content: null, tool_calls: [call('mcp_3', 'alpha-echo', '{}')] },
    { role: 'tool', tool_call_id: 'mcp_3', content: 'Error: plain failure' },
    { role: 'assistant', content: 'It is 3.' },
  ])
  const afterText = {
    model: 'm',
    input: [
      { role: 'user', content: 'Add' },
      { role: 'assistant', content: 'Let me add.' },
      { type: 'mcp_call', id: 'mcp_9', server_label: 'alpha', name: 'add', arguments: '{}', output: '0' },
    ],
  }
  t.same(responsesToChat(afterText, [], inputItems(afterText)).messages.slice(1), [
    { role: 'assistant', content: 'Let me add.', tool_calls: [call('mcp_9', 'alpha-add', '{}')] },
    { role: 'tool', tool_call_id: 'mcp_9', content: '0' },
  ], 'a call right after the turn\'s text joins its message')
  let err: unknown = null
  try {
    inputItems({ model: 'm', input: [{ type: 'mcp_call', id: 'mcp_1', server_label: 'a', name: 'add' }] })
  } catch (e) {
    err = e
  }
  t.ok(err instanceof GatewayError && err.param === 'input.0.arguments', 'an mcp_call without arguments: 400')
})

const LISTS = [
  { server: 'alpha', tools: [{ name: 'add', description: 'The add tool.', input_schema: ADD_SCHEMA, annotations: undefined }, { name: 'echo', description: undefined, input_schema: ECHO.inputSchema, annotations: { readOnlyHint: true } }] },
]
function record(id: string, tool: string, output: string | null, error: string | null): ToolCallRecord {
  return { id, name: `alpha-${tool}`, server: 'alpha', serverId: 'id-alpha', tool, arguments: '{"a":1,"b":2}', output, error, startedAt: 1, durationMs: 2, costUsd: 0 }
}

function opts(request: Obj, extra: Partial<ResponseOptions> = {}): ResponseOptions {
  return { id: responseId(), createdAt: CREATED, model: String(request.model), request, now: () => CREATED * 1000 + 3000, ...extra }
}

t.test('Responses reply: mcp_list_tools and mcp_call items lead the output, valid against the spec', async (t) => {
  const request = { model: 'm', input: 'x', tools: [MCP_NEVER] }
  const calls = [record('call_1', 'add', '3', null), record('call_2', 'add', null, 'MCP tool add timed out')]
  const r = chatToResponse(completion({ content: 'It is 3.' }, 'stop', usage(10, 2)), opts(request, { toolLists: LISTS, toolCalls: calls }))
  assertSchema(t, 'Response', r)
  const out = r.output as Obj[]
  t.same(out.map((i) => i.type), ['mcp_list_tools', 'mcp_call', 'mcp_call', 'message'])
  t.match(out[0], {
    id: /^mcpl_[0-9a-f]{48}$/, server_label: 'alpha', error: null,
    tools: [{ name: 'add', description: 'The add tool.', input_schema: ADD_SCHEMA, annotations: null }, { name: 'echo', description: null, annotations: { readOnlyHint: true } }],
  })
  t.same({ ...out[1], id: 'x' }, { type: 'mcp_call', id: 'x', server_label: 'alpha', name: 'add', arguments: '{"a":1,"b":2}', output: '3', error: null, status: 'completed', approval_request_id: null })
  t.match(out[1]!.id, /^mcp_[0-9a-f]{48}$/)
  t.same(out[2]!.error, { type: 'mcp_tool_execution_error', content: [{ type: 'text', text: 'MCP tool add timed out' }] })
  t.equal(out[2]!.status, 'failed')
  t.equal(out[2]!.output, null)
  const plain = chatToResponse(completion({ content: 'Hi' }, 'stop', usage(1, 1)), opts({ model: 'm', input: 'x' }))
  t.same((plain.output as Obj[]).map((i) => i.type), ['message'], 'without MCP: as before')

  // The stored output, sent back as input, is accepted and translated.
  const next = { model: 'm', input: [{ role: 'user', content: 'x' }, ...out, { role: 'user', content: 'and now?' }] }
  const messages = responsesToChat(next, [], inputItems(next)).messages
  t.same(messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'user'])
  t.equal(messages[4]!.content, 'Error: MCP tool add timed out')
})

const EVENT_SCHEMAS: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.completed': 'ResponseCompletedEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.mcp_list_tools.in_progress': 'ResponseMCPListToolsInProgressEvent',
  'response.mcp_list_tools.completed': 'ResponseMCPListToolsCompletedEvent',
  'response.mcp_call.in_progress': 'ResponseMCPCallInProgressEvent',
  'response.mcp_call_arguments.delta': 'ResponseMCPCallArgumentsDeltaEvent',
  'response.mcp_call_arguments.done': 'ResponseMCPCallArgumentsDoneEvent',
  'response.mcp_call.completed': 'ResponseMCPCallCompletedEvent',
  'response.mcp_call.failed': 'ResponseMCPCallFailedEvent',
}

function events(t: Test, sse: string): Obj[] {
  const p = new SseParser()
  const out: Obj[] = []
  for (const e of [...p.push(sse), ...p.end()]) {
    const data = JSON.parse(e.data) as Obj
    t.equal(e.event, data.type)
    const schema = EVENT_SCHEMAS[data.type]
    if (!schema) t.fail(`unexpected event type ${data.type}`)
    else assertSchema(t, schema, data, `${data.type} #${data.sequence_number} is a valid ${schema}`)
    out.push(data)
  }
  t.same(out.map((e) => e.sequence_number), out.map((_, i) => i), 'sequence numbers count up from 0')
  return out
}

t.test('Responses stream: lists first, each call as an mcp_call item in order, a later turn\'s text as a new message', async (t) => {
  const reg = new FakeRegistry()
  reg.behaviour.set('echo', () => ({ content: [{ type: 'text', text: 'no' }], isError: true }))
  const state = await loopState(t, { model: 'm', messages: USER, stream: true, tools: [MCP_NEVER] }, reg)
  const result = await state.toolLoop!.run(streamOf(toolTurn('chatcmpl-R')), scripted([streamOf(answerTurn('chatcmpl-R2', CREATED))]).again)
  const request = { model: 'm', input: 'x', stream: true, tools: [MCP_NEVER] }
  const w = new ResponsesStreamWriter(opts(request, { toolLists: state.toolLists, toolCalls: state.toolCalls }))
  let sse = w.start()
  let lastUsage: Usage | null = null
  for await (const c of (result as { chunks: AsyncIterable<ChatChunk | ToolCallEvent> }).chunks) {
    if (isToolCallEvent(c)) sse += w.toolCall(c.call)
    else {
      if (c.usage) lastUsage = c.usage
      sse += w.chunk(c)
    }
  }
  const end = w.end(lastUsage)
  sse += end.text
  const evs = events(t, sse)
  t.same(evs.map((e) => e.type), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.mcp_list_tools.in_progress', 'response.mcp_list_tools.completed', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.output_item.added', 'response.mcp_call.in_progress', 'response.mcp_call_arguments.delta', 'response.mcp_call_arguments.done', 'response.mcp_call.completed', 'response.output_item.done',
    'response.output_item.added', 'response.mcp_call.in_progress', 'response.mcp_call_arguments.delta', 'response.mcp_call_arguments.done', 'response.mcp_call.failed', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.completed',
  ])
  const response = end.response
  assertSchema(t, 'Response', response)
  const out = response.output as Obj[]
  t.same(out.map((i) => i.type), ['mcp_list_tools', 'message', 'mcp_call', 'mcp_call', 'message'])
  t.same(out.map((i) => i.content?.[0]?.text ?? i.name ?? i.server_label), ['alpha', 'Let me check.', 'add', 'echo', '1 + 2 = 3'])
  t.same(out.slice(2, 4).map((i) => [i.status, i.output, i.error]), [['completed', '3', null], ['failed', null, { type: 'mcp_tool_execution_error', content: [{ type: 'text', text: 'no' }] }]])
  const added = evs.filter((e) => e.type === 'response.output_item.added')
  t.same(added.map((e) => e.output_index), [0, 1, 2, 3, 4])
  t.same(added.map((e) => e.item.id), out.map((i) => i.id), 'item ids agree')
  t.same(added[0]!.item.tools, [], 'a list opens empty')
  t.same(added[2]!.item.status, 'in_progress')
  t.same(evs.filter((e) => e.type === 'response.output_item.done').map((e) => e.item), out, 'each item is done as it ends up')
  t.equal((response.usage as Obj).total_tokens, 296, 'usage of both turns')
  t.same(evs[evs.length - 1]!.response, response)

  // The official SDK reads the stream to the same Response.
  const client = new OpenAI({
    apiKey: 'sk-test', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0,
    fetch: async () => new Response(sse, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
  })
  const final = await client.responses.stream(request as never).finalResponse()
  t.same(final.output.map((i) => i.type), ['mcp_list_tools', 'message', 'mcp_call', 'mcp_call', 'message'])
  t.equal(final.output_text, 'Let me check.1 + 2 = 3')
})
