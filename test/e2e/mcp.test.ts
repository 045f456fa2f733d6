/**
 * MCP tools from any model, end to end: an unchanged LiteLLM config (master key, `mcp_servers` with the real
 * server-everything and server-memory over stdio, embedded SQLite) and the official `openai` client. The model is a
 * fake upstream on 127.0.0.1 that asks for `everything-echo` when it is offered, then answers with what the tool
 * returned; an Anthropic-format fake does the same with tool_use blocks, so the tools are shown translated for
 * another provider. What the upstream received is asserted as well as what the client got.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { defaultChat, startUpstream, toolCallTurn, type Behaviour } from '../helpers/upstream.js'
import { deployment, eventually, generateKey, INPUT_PRICE, MASTER, OUTPUT_PRICE } from './helpers.js'

const ECHO = 'everything-echo'
const MESSAGE = 'ping-4242'

/**
 * The model: after a tool message it answers "Tool said: <the tool's text>"; offered `everything-echo` (and no tool
 * result yet) it calls it, as JSON or as a chunk stream; otherwise the default reply.
 */
function echoingModel(): Behaviour {
  const plain = defaultChat()
  return (ctx) => {
    const body = ctx.record.body
    const messages: any[] = Array.isArray(body?.messages) ? body.messages : []
    const toolMsg = [...messages].reverse().find((m) => m.role === 'tool')
    if (toolMsg) return defaultChat({ content: `Tool said: ${toolMsg.content}` })(ctx)
    const names: string[] = Array.isArray(body?.tools) ? body.tools.map((x: any) => x.function?.name) : []
    if (!names.includes(ECHO)) return plain(ctx)
    toolCallTurn(ctx, { id: 'call_echo_1', name: ECHO, arguments: JSON.stringify({ message: MESSAGE }) },
      { usage: { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60 }, lead: 'Let me check. ', streamUsage: 'asked' })
  }
}

const up = await startUpstream(t, { chat: echoingModel() })

/** An Anthropic Messages API that calls everything-echo with tool_use, then answers with the tool_result's text. */
const claudeSeen: any[] = []
const claude = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c) => { raw += c })
  req.on('end', () => {
    const body = JSON.parse(raw)
    claudeSeen.push(body)
    const last = body.messages[body.messages.length - 1]
    const result = Array.isArray(last.content) ? last.content.find((b: any) => b.type === 'tool_result') : undefined
    const usage = { input_tokens: 40, output_tokens: 9 }
    const reply = result
      ? { content: [{ type: 'text', text: `Claude saw: ${typeof result.content === 'string' ? result.content : result.content.map((p: any) => p.text).join('')}` }], stop_reason: 'end_turn' }
      : { content: [{ type: 'tool_use', id: 'toolu_01', name: ECHO, input: { message: MESSAGE } }], stop_reason: 'tool_use' }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: 'msg_01', type: 'message', role: 'assistant', model: body.model, stop_sequence: null, usage, ...reply }))
  })
})
await new Promise<void>((resolve) => claude.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => claude.close(() => resolve())))

const memoryDir = mkdtempSync(join(tmpdir(), 'sy-mcp-mem-'))
t.teardown(() => rmSync(memoryDir, { recursive: true, force: true }))
const bin = (name: string) => join(process.cwd(), 'node_modules', '.bin', name)

const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
model_list:
${deployment('gpt-4o', up.url)}  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: http://127.0.0.1:${(claude.address() as AddressInfo).port}
      api_key: sk-ant-fake
mcp_servers:
  everything:
    transport: stdio
    command: ${bin('mcp-server-everything')}
    args: [stdio]
    description: The MCP reference server
    mcp_info:
      mcp_server_cost_info:
        default_cost_per_query: 0.002
  memory:
    transport: stdio
    command: ${bin('mcp-server-memory')}
    env:
      MEMORY_FILE_PATH: ${join(memoryDir, 'memory.jsonl')}
`)
const client = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 })
const mcpTool = (extra: Record<string, unknown> = {}) => ({ type: 'mcp', server_label: 'everything', server_url: 'litellm_proxy', require_approval: 'never', ...extra })

// The servers connect in the background: wait until both list their tools.
const registry = gw.gateway.container.cradle.mcpRegistry!
await eventually(async () => {
  const list = registry.health()
  return list.length === 2 && list.every((s) => s.status === 'healthy') ? list : null
}, 30_000, 'both MCP servers healthy')

t.test('chat: the model calls an MCP tool, the gateway runs it and the client gets the final answer', async (t) => {
  const before = up.requests.length
  const { data: res, response } = await client.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'Echo something' }], tools: [mcpTool() as any],
  }).withResponse()
  t.equal(res.choices[0]!.message.content, `Tool said: Echo: ${MESSAGE}`)
  t.equal(res.choices[0]!.finish_reason, 'stop')
  t.notOk(res.choices[0]!.message.tool_calls?.length, 'no tool call reaches the client')
  const sent = up.requests.slice(before)
  t.equal(sent.length, 2, 'two model turns')
  const offered: string[] = sent[0]!.body.tools.map((x: any) => x.function.name)
  t.ok(offered.includes(ECHO) && offered.includes('everything-get-sum'), 'everything tools offered with prefixed names')
  t.notOk(offered.some((n) => n.startsWith('memory-')), 'server_label narrows to that server')
  t.ok(sent[0]!.body.tools.every((x: any) => x.type === 'function' && x.function.parameters?.type === 'object'), 'as OpenAI function tools')
  const turn2 = sent[1]!.body.messages
  t.equal(turn2.at(-2).tool_calls[0].function.name, ECHO, 'the assistant turn with its call is sent back')
  t.match(turn2.at(-1), { role: 'tool', tool_call_id: 'call_echo_1', content: `Echo: ${MESSAGE}` })
  // Usage covers both turns (the first reports 50 + 10); the cost includes the server's per-query price, $0.002.
  t.ok(res.usage!.prompt_tokens > 50 && res.usage!.completion_tokens > 10, 'usage summed over the turns')
  t.equal(res.usage!.total_tokens, res.usage!.prompt_tokens + res.usage!.completion_tokens)
  const cost = Number(response.headers.get('x-litellm-response-cost'))
  const expected = res.usage!.prompt_tokens * INPUT_PRICE + res.usage!.completion_tokens * OUTPUT_PRICE + 0.002
  t.ok(Math.abs(cost - expected) < 1e-6, `cost ${cost} = both turns' tokens + one tool call (${expected})`)
})

t.test('chat stream: every turn streams; the executed call stays inside the gateway', async (t) => {
  const before = up.requests.length
  const stream = await client.chat.completions.create({
    model: 'gpt-4o', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Echo something' }], tools: [mcpTool() as any],
  })
  let text = ''
  let toolDeltas = 0
  const finishes: string[] = []
  let usage: any = null
  const ids = new Set<string>()
  for await (const c of stream) {
    ids.add(c.id)
    if (c.usage) usage = c.usage
    for (const ch of c.choices) {
      text += ch.delta.content ?? ''
      toolDeltas += ch.delta.tool_calls?.length ?? 0
      if (ch.finish_reason) finishes.push(ch.finish_reason)
    }
  }
  t.equal(text, `Let me check. Tool said: Echo: ${MESSAGE}`)
  t.equal(toolDeltas, 0)
  t.same(finishes, ['stop'], 'one finish, at the end')
  t.equal(ids.size, 1, 'one completion id across turns')
  t.ok(usage && usage.prompt_tokens > 50, 'one usage chunk summing the turns')
  t.equal(up.requests.length - before, 2)
})

t.test('approval required: the tool call goes back to the client', async (t) => {
  const before = up.requests.length
  const res = await client.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'Echo something' }], tools: [mcpTool({ require_approval: 'always' }) as any],
  })
  t.equal(res.choices[0]!.finish_reason, 'tool_calls')
  const call = res.choices[0]!.message.tool_calls![0] as any
  t.equal(call.function.name, ECHO)
  t.same(JSON.parse(call.function.arguments), { message: MESSAGE })
  t.equal(up.requests.length - before, 1, 'one model turn only')
})

t.test('any model: the MCP tools reach an Anthropic deployment as Anthropic tools', async (t) => {
  claudeSeen.length = 0
  const res = await client.chat.completions.create({
    model: 'claude', max_tokens: 200, messages: [{ role: 'user', content: 'Echo something' }], tools: [mcpTool() as any],
  })
  t.equal(res.choices[0]!.message.content, `Claude saw: Echo: ${MESSAGE}`)
  t.equal(claudeSeen.length, 2)
  const echo = claudeSeen[0].tools.find((x: any) => x.name === ECHO)
  t.match(echo, { name: ECHO, input_schema: { type: 'object', properties: { message: { type: 'string' } } } })
  const results = claudeSeen[1].messages.at(-1).content
  t.match(results[0], { type: 'tool_result', tool_use_id: 'toolu_01' })
})

t.test('Responses API: mcp_list_tools and mcp_call output items, then the answer', async (t) => {
  const r = await client.responses.create({ model: 'gpt-4o', input: 'Echo something', tools: [mcpTool() as any] })
  const types = r.output.map((o) => o.type)
  t.same(types, ['mcp_list_tools', 'mcp_call', 'message'])
  const list = r.output[0] as any
  t.equal(list.server_label, 'everything')
  t.ok(list.tools.some((x: any) => x.name === 'echo' && x.input_schema), 'tools listed by their own names')
  const call = r.output[1] as any
  t.match(call, { type: 'mcp_call', server_label: 'everything', name: 'echo', output: `Echo: ${MESSAGE}`, error: null })
  t.equal(r.output_text, `Tool said: Echo: ${MESSAGE}`)
})

t.test('a key without a grant for the server cannot use its tools in a chat', async (t) => {
  const { key } = await generateKey(t, gw.url, { object_permission: { mcp_servers: ['memory'] } })
  const keyed = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
  const err = await keyed.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'Echo something' }], tools: [mcpTool({ server_url: 'litellm_proxy/mcp/everything' }) as any],
  }).catch((e) => e)
  t.ok(err instanceof OpenAI.APIError, 'refused')
  t.equal(err.status, 403)
  // With `litellm_proxy` and no label, the key gets only what it may use.
  const before = up.requests.length
  await keyed.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'mcp', server_label: 'tools', server_url: 'litellm_proxy', require_approval: 'never' } as any],
  })
  const offered: string[] = up.requests[before]!.body.tools.map((x: any) => x.function.name)
  t.ok(offered.length > 0 && offered.every((n) => n.startsWith('memory-')), 'only the memory server\'s tools')
})

t.test('bad MCP tool entries get OpenAI-shaped 400s', async (t) => {
  for (const [tool, param] of [
    [{ type: 'mcp', server_label: 'x', server_url: 'https://example.com/mcp', require_approval: 'never' }, /server_url/],
    [{ type: 'mcp', server_label: 'nope', server_url: 'litellm_proxy/mcp/nope' }, /server_url/],
  ] as const) {
    const r = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], tools: [tool] }, MASTER)
    t.equal(r.status, 400, JSON.stringify(tool))
    t.match(r.body, { error: { message: String, type: 'invalid_request_error', param } })
  }
})
