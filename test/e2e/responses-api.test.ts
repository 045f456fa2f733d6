/**
 * The OpenAI Responses API (/v1/responses) end to end over chat-only deployments: the official `openai` client (v6)
 * against a running gateway on an unchanged LiteLLM-style config (master key, embedded SQLite store, default chain),
 * whose deployments reach fake upstreams on 127.0.0.1: an OpenAI chat API (`openai/gpt-4o`, priced) and a small
 * Anthropic Messages API (`anthropic/claude-...`), so "any chat model" is shown on a non-OpenAI wire format too.
 *
 * The upstream records every request, so the tests assert what the gateway sent (the whole conversation rebuilt from
 * previous_response_id, instructions not inherited), not only what the client got back. Bodies are validated against
 * OpenAI's published spec (Response, ResponseStreamEvent, ResponseItemList). Restarts are in responses-api-store.test.ts.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { assertSchema } from '../helpers/openapi.js'
import { DEFAULT_REPLY, defaultChat, errorReply, midStreamError, startUpstream, toolCallTurn, type Behaviour, type RecordedRequest } from '../helpers/upstream.js'
import { admin, deployment, eventually, generateKey, INPUT_PRICE, MASTER, OUTPUT_PRICE } from './helpers.js'

// ---- fake upstreams --------------------------------------------------------------------------------------------

const CALL_ID = 'call_weather_1'
const WEATHER_ARGS = '{"city":"Paris"}'
const AFTER_TOOL = 'Sunny and 21 degrees in Paris.'


/**
 * The chat upstream: with tools and no tool message yet, it calls get_weather (as JSON or as a chunk stream); after
 * a tool message it answers AFTER_TOOL; otherwise the default text. One behaviour, so a test cannot pass by picking
 * the reply it expects.
 */
function toolAwareChat(): Behaviour {
  const plain = defaultChat()
  const afterTool = defaultChat({ content: AFTER_TOOL })
  return (ctx) => {
    const body = ctx.record.body
    const messages: any[] = Array.isArray(body?.messages) ? body.messages : []
    if (messages.some((m) => m.role === 'tool')) return afterTool(ctx)
    if (!Array.isArray(body?.tools) || body.tools.length === 0) return plain(ctx)
    toolCallTurn(ctx, { id: CALL_ID, name: 'get_weather', arguments: WEATHER_ARGS }, { usage: { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27 } })
  }
}

const up = await startUpstream(t, { chat: toolAwareChat() })
/** Fails mid-stream after two words ("one two "), as OpenAI does when generation breaks off. */
const breaking = await startUpstream(t, { chat: midStreamError({ message: 'generation failed', type: 'server_error' }, { after: 3 }) })
const refusing = await startUpstream(t, { chat: errorReply(400, { message: 'upstream says the prompt is bad', param: 'messages' }) })

/** The recorded Anthropic traffic (../shared/data/anthropic): a text reply and a text stream ("Hello there!"). */
const anthropicData = (f: string) => fileURLToPath(new URL(`../../../shared/data/anthropic/${f}`, import.meta.url))
const claudeReply = (JSON.parse(readFileSync(anthropicData('messages.tool_use.recorded.json'), 'utf8')) as { interactions: Array<{ response: any }> }).interactions[1]!.response
const claudeStream = readFileSync(anthropicData('stream.text.sse'), 'utf8')
const claudeSeen: Array<{ path: string; body: any }> = []
const claude = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c) => { raw += c })
  req.on('end', () => {
    const body = JSON.parse(raw)
    claudeSeen.push({ path: req.url ?? '', body })
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
      res.end(claudeStream)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(claudeReply))
  })
})
await new Promise<void>((resolve) => claude.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => claude.close(() => resolve())))

const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
model_list:
${deployment('gpt-4o', up.url)}${deployment('breaking', breaking.url, 'gpt-4o')}${deployment('refusing', refusing.url, 'gpt-4o')}  - model_name: claude
    litellm_params:
      model: anthropic/claude-opus-4-8
      api_base: http://127.0.0.1:${(claude.address() as AddressInfo).port}
      api_key: sk-ant-fake
  - model_name: mocked
    litellm_params:
      model: mock/any-model
      mock_response: Mocked reply.
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER, maxRetries: 0 })
const clientFor = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 })

function lastChat(): RecordedRequest {
  return up.requestsTo('chat').at(-1)!
}

/**
 * The SDK adds conveniences that are not in the wire body: `output_text`, and from the stream helper `output_parsed`
 * and `parsed` on each output_text part. Strip them to compare with raw bodies.
 */
function wire(r: object): Record<string, unknown> {
  const { output_text: _o, output_parsed: _p, ...rest } = r as Record<string, unknown>
  const output = (rest.output as Array<Record<string, unknown>>).map((item) => !Array.isArray(item.content) ? item : {
    ...item, content: item.content.map(({ parsed: _x, ...part }: Record<string, unknown>) => part),
  })
  return { ...rest, output }
}

/** The OpenAI error body: a 4xx with {error: {message, type, param, code}}. */
function assertClientError(t: Test, r: { status: number; body: any }, status: number, param: string | null, what: string): void {
  t.equal(r.status, status, `${what}: ${status}${r.status === status ? '' : ` (got ${r.status}: ${JSON.stringify(r.body)})`}`)
  t.equal(typeof r.body?.error?.message, 'string', `${what}: error.message`)
  t.equal(r.body?.error?.type, 'invalid_request_error', `${what}: error.type`)
  if (param !== null) t.equal(r.body?.error?.param, param, `${what}: error.param`)
}

// ---- tests -----------------------------------------------------------------------------------------------------

t.test('responses.create, plain: a completed Response built from a chat completion', async (t) => {
  const r = await client.responses.create({ model: 'gpt-4o', input: 'Say hello', instructions: 'Be brief.' })
  t.match(r.id, /^resp_[0-9a-f]{20,}$/, 'id resp_<hex>')
  t.equal(r.object, 'response')
  t.equal(r.status, 'completed')
  t.equal(r.model, 'gpt-4o')
  t.equal(r.output_text, DEFAULT_REPLY, 'output_text is the upstream\'s reply')
  t.equal(r.instructions, 'Be brief.', 'instructions echoed')
  t.equal(r.output.length, 1, 'one output item')
  t.match(r.output[0], { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: DEFAULT_REPLY }] })
  const sent = lastChat().body
  t.equal(lastChat().path, '/v1/chat/completions', 'served by the chat endpoint')
  t.same(sent.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }], 'instructions -> system, input -> user')
  for (const k of ['input', 'instructions', 'store', 'previous_response_id']) t.notOk(k in sent, `Responses-only field ${k} not forwarded`)
  // The fake counts ceil(chars / 4) tokens: "Be brief.\nSay hello" = 19 chars -> 5; the reply (29 chars) -> 8.
  t.same(r.usage, {
    input_tokens: 5, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: 8, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 13,
  }, 'usage from the chat usage')

  const raw = await jsonCall(gw.url, 'POST', '/v1/responses', { model: 'gpt-4o', input: [{ role: 'user', content: 'Hi' }], temperature: 0.5, metadata: { topic: 'greeting' } }, MASTER)
  t.equal(raw.status, 200)
  assertSchema(t, 'Response', raw.body, 'the raw POST body is a valid Response')
  t.equal(raw.body.temperature, 0.5, 'temperature echoed')
  t.equal(lastChat().body.temperature, 0.5, 'and forwarded')
  t.same(raw.body.metadata, { topic: 'greeting' }, 'metadata echoed')
  t.notOk('metadata' in lastChat().body, 'metadata is the gateway\'s, not sent upstream')
  const got = await jsonCall(gw.url, 'GET', `/v1/responses/${raw.body.id}`, undefined, MASTER)
  t.equal(got.status, 200)
  t.same(got.body, raw.body, 'GET returns the stored Response as created')
  assertSchema(t, 'Response', got.body, 'the GET body is a valid Response')
})

t.test('responses.stream: event order, deltas, and the stored final response', async (t) => {
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'Stream please' })
  const events: any[] = []
  for await (const e of stream) events.push(e)
  const final = await stream.finalResponse()
  const types = events.map((e) => e.type)
  t.equal(types[0], 'response.created', 'response.created first')
  t.equal(types[1], 'response.in_progress', 'then response.in_progress')
  t.equal(types.at(-1), 'response.completed', 'response.completed last')
  t.same(events.map((e) => e.sequence_number), events.map((_, i) => i), 'sequence_number counts from 0 without gaps')
  for (const type of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done']) {
    t.equal(types.filter((x) => x === type).length, 1, `one ${type}`)
  }
  t.ok(types.indexOf('response.output_item.added') < types.indexOf('response.output_text.delta'), 'item added before its deltas')
  t.ok(types.lastIndexOf('response.output_text.delta') < types.indexOf('response.output_text.done'), 'deltas before done')
  const deltas = events.filter((e) => e.type === 'response.output_text.delta')
  t.ok(deltas.length > 1, `text arrives in pieces (${deltas.length})`)
  t.equal(deltas.map((e) => e.delta).join(''), DEFAULT_REPLY, 'the deltas join to the text')
  let bad = 0
  for (const e of events) if (!assertSchema(t, 'ResponseStreamEvent', e, `${e.type} #${e.sequence_number} is a valid ResponseStreamEvent`)) bad++
  t.equal(bad, 0, 'every event valid')

  t.equal(final.status, 'completed')
  t.equal(final.output_text, DEFAULT_REPLY)
  t.ok(final.usage && final.usage.output_tokens === 8, 'usage in the final response (the gateway asked for include_usage)')
  t.same(lastChat().body.stream_options, { include_usage: true }, 'stream_options.include_usage sent upstream')
  t.equal(lastChat().body.stream, true)
  const stored = await jsonCall(gw.url, 'GET', `/v1/responses/${final.id}`, undefined, MASTER)
  t.equal(stored.status, 200, 'the streamed response was stored')
  t.same(stored.body, wire(final), 'finalResponse() equals the stored response')
  t.same(stored.body, events.at(-1).response, 'and the response.completed event\'s response')
  t.equal(events[0].response.id, final.id, 'one id from created to completed')
})

const weatherTool = {
  type: 'function' as const, name: 'get_weather', description: 'Current weather for a city', strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

t.test('a function tool: function_call out, function_call_output in with previous_response_id', async (t) => {
  const r1 = await client.responses.create({ model: 'gpt-4o', input: 'Weather in Paris?', tools: [weatherTool] })
  t.same(lastChat().body.tools, [{ type: 'function', function: { name: 'get_weather', description: weatherTool.description, parameters: weatherTool.parameters, strict: false } }], 'the tool in chat form')
  t.equal(r1.status, 'completed')
  t.equal(r1.output_text, '', 'no text')
  const calls = r1.output.filter((o) => o.type === 'function_call')
  t.equal(calls.length, 1, 'one function_call item')
  t.match(calls[0], { type: 'function_call', name: 'get_weather', call_id: CALL_ID, arguments: WEATHER_ARGS, status: 'completed' })
  t.match((calls[0] as { id: string }).id, /^fc_/, 'the item has its own id')
  assertSchema(t, 'Response', wire(r1))

  const r2 = await client.responses.create({
    model: 'gpt-4o', previous_response_id: r1.id, tools: [weatherTool],
    input: [{ type: 'function_call_output', call_id: CALL_ID, output: '{"temp_c":21}' }],
  })
  t.same(lastChat().body.messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: CALL_ID, type: 'function', function: { name: 'get_weather', arguments: WEATHER_ARGS } }] },
    { role: 'tool', tool_call_id: CALL_ID, content: '{"temp_c":21}' },
  ], 'the upstream received the whole conversation: user, assistant tool_calls (same id), tool result')
  t.equal(r2.output_text, AFTER_TOOL, 'the final text')
  t.equal(r2.previous_response_id, r1.id, 'previous_response_id echoed')
})

t.test('a streamed function call: argument deltas, and the call in the final response', async (t) => {
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'Weather in Paris?', tools: [weatherTool] })
  const events: any[] = []
  for await (const e of stream) events.push(e)
  const final = await stream.finalResponse()
  const types = events.map((e) => e.type)
  t.same(events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta), ['{"city":', '"Paris"}'], 'argument deltas as sent')
  t.match(events.find((e) => e.type === 'response.function_call_arguments.done'), { arguments: WEATHER_ARGS, name: 'get_weather' })
  t.equal(types.at(-1), 'response.completed')
  t.match(final.output, [{ type: 'function_call', call_id: CALL_ID, name: 'get_weather', arguments: WEATHER_ARGS }])
  t.match(final.usage, { input_tokens: 20, output_tokens: 7, total_tokens: 27 })
  const r2 = await client.responses.create({
    model: 'gpt-4o', previous_response_id: final.id, input: [{ type: 'function_call_output', call_id: CALL_ID, output: 'sunny' }],
  })
  t.equal(r2.output_text, AFTER_TOOL, 'the streamed call can be answered')
  t.match(lastChat().body.messages[1], { role: 'assistant', tool_calls: [{ id: CALL_ID }] })
})

t.test('previous_response_id: earlier turns reach the upstream, instructions do not carry over', async (t) => {
  const r1 = await client.responses.create({ model: 'gpt-4o', input: 'My name is Ada.', instructions: 'Answer in French.' })
  const r2 = await client.responses.create({ model: 'gpt-4o', previous_response_id: r1.id, input: 'What is my name?' })
  t.same(lastChat().body.messages, [
    { role: 'user', content: 'My name is Ada.' },
    { role: 'assistant', content: DEFAULT_REPLY },
    { role: 'user', content: 'What is my name?' },
  ], 'turn 2 sent turn 1 (user and assistant), without turn 1\'s instructions')
  t.equal(r2.instructions, null, 'turn 2 has no instructions of its own')
  const r3 = await client.responses.create({ model: 'gpt-4o', previous_response_id: r2.id, input: 'Thanks.', instructions: 'Be terse.' })
  const sent = lastChat().body.messages
  t.equal(sent.length, 6, 'three turns: 2 + 2 + 2 (system, user)')
  t.same(sent[0], { role: 'system', content: 'Be terse.' }, 'this turn\'s instructions first, once')
  t.equal(sent.filter((m: any) => m.role === 'system').length, 1, 'no earlier instructions')
  t.equal(r3.previous_response_id, r2.id)

  // The input items of turn 3: the whole conversation it answered, newest first by default.
  const items = await jsonCall(gw.url, 'GET', `/v1/responses/${r3.id}/input_items`, undefined, MASTER)
  t.equal(items.status, 200)
  assertSchema(t, 'ResponseItemList', items.body)
  const texts = (list: any[]) => list.map((it) => it.content[0].text)
  t.same(texts(items.body.data), ['Thanks.', DEFAULT_REPLY, 'What is my name?', DEFAULT_REPLY, 'My name is Ada.'], 'order desc by default')
  t.equal(items.body.has_more, false)
  t.equal(items.body.first_id, items.body.data[0].id)
  t.equal(items.body.last_id, items.body.data.at(-1).id)
  const asc = await jsonCall(gw.url, 'GET', `/v1/responses/${r3.id}/input_items?order=asc`, undefined, MASTER)
  t.same(texts(asc.body.data), ['My name is Ada.', DEFAULT_REPLY, 'What is my name?', DEFAULT_REPLY, 'Thanks.'], 'order=asc')
  const page = await jsonCall(gw.url, 'GET', `/v1/responses/${r3.id}/input_items?order=asc&limit=2`, undefined, MASTER)
  t.same(texts(page.body.data), ['My name is Ada.', DEFAULT_REPLY], 'limit=2')
  t.equal(page.body.has_more, true, 'has_more with more left')
  const next = await jsonCall(gw.url, 'GET', `/v1/responses/${r3.id}/input_items?order=asc&limit=2&after=${page.body.last_id}`, undefined, MASTER)
  t.same(texts(next.body.data), ['What is my name?', DEFAULT_REPLY], 'after=<last_id> gives the next page')
  // The SDK pages through the same list.
  const all: any[] = []
  for await (const it of client.responses.inputItems.list(r3.id, { order: 'asc', limit: 2 })) all.push(it)
  t.same(texts(all), texts(asc.body.data), 'the SDK\'s auto-pagination walks every item once')
})

t.test('store: GET, DELETE, and store: false', async (t) => {
  const r = await client.responses.create({ model: 'gpt-4o', input: 'Keep this' })
  t.same(wire(await client.responses.retrieve(r.id)), wire(r), 'retrieve returns it')
  const del = await jsonCall(gw.url, 'DELETE', `/v1/responses/${r.id}`, undefined, MASTER)
  t.same(del, { status: 200, body: { id: r.id, object: 'response', deleted: true } }, 'DELETE confirms')
  const gone = await client.responses.retrieve(r.id).catch((e) => e)
  t.ok(gone instanceof OpenAI.NotFoundError, `GET after DELETE -> 404 (${gone?.status})`)
  const again = await jsonCall(gw.url, 'DELETE', `/v1/responses/${r.id}`, undefined, MASTER)
  t.equal(again.status, 404, 'a second DELETE -> 404')
  const cont = await client.responses.create({ model: 'gpt-4o', previous_response_id: r.id, input: 'more' }).catch((e) => e)
  t.ok(cont instanceof OpenAI.BadRequestError, `continuing a deleted response -> 400 (${cont?.status})`)

  const sdkDeleted = await client.responses.create({ model: 'gpt-4o', input: 'Delete via SDK' })
  await client.responses.delete(sdkDeleted.id)
  t.equal((await jsonCall(gw.url, 'GET', `/v1/responses/${sdkDeleted.id}`, undefined, MASTER)).status, 404, 'the SDK\'s delete works')

  const unstored = await client.responses.create({ model: 'gpt-4o', input: 'Forget this', store: false })
  // The SDK's Response type has no `store`; the wire body does.
  t.equal((unstored as unknown as { store: boolean }).store, false, 'store: false echoed')
  t.equal(unstored.output_text, DEFAULT_REPLY, 'still answered')
  const get = await client.responses.retrieve(unstored.id).catch((e) => e)
  t.ok(get instanceof OpenAI.NotFoundError, `store: false -> GET 404 (${get?.status})`)
  const prev = await client.responses.create({ model: 'gpt-4o', previous_response_id: unstored.id, input: 'more' }).catch((e) => e)
  t.ok(prev instanceof OpenAI.BadRequestError, `previous_response_id of an unstored response -> 400 (${prev?.status})`)
  t.equal(prev?.param, 'previous_response_id')

  const streamedUnstored = client.responses.stream({ model: 'gpt-4o', input: 'Forget this too', store: false })
  const fin = await streamedUnstored.finalResponse()
  t.equal((await jsonCall(gw.url, 'GET', `/v1/responses/${fin.id}`, undefined, MASTER)).status, 404, 'a streamed store: false is not stored either')
})

t.test('any model: an Anthropic deployment and the mock provider', async (t) => {
  const before = claudeSeen.length
  const r1 = await client.responses.create({ model: 'claude', input: 'Hello', instructions: 'Be nice.', max_output_tokens: 100 })
  t.equal(claudeSeen.length, before + 1, 'one call to the Messages API')
  const sent = claudeSeen.at(-1)!
  t.equal(sent.path, '/v1/messages')
  t.equal(sent.body.max_tokens, 100, 'max_output_tokens -> max_tokens')
  t.match(JSON.stringify(sent.body.system), /Be nice\./, 'instructions -> system')
  t.equal(sent.body.messages.length, 1)
  t.match(JSON.stringify(sent.body.messages[0]), /Hello/)
  t.equal(r1.status, 'completed')
  t.equal(r1.output_text, claudeReply.content[0].text, 'the Messages API\'s text')
  t.match(r1.usage, { input_tokens: 505, output_tokens: 41, total_tokens: 546 })
  assertSchema(t, 'Response', wire(r1))

  const stream = client.responses.stream({ model: 'claude', previous_response_id: r1.id, input: 'Again' })
  let text = ''
  stream.on('response.output_text.delta', (e) => { text += e.delta })
  const final = await stream.finalResponse()
  t.equal(text, 'Hello there!', 'the Anthropic stream as Responses deltas')
  t.equal(final.output_text, 'Hello there!')
  const turn2 = claudeSeen.at(-1)!.body
  t.equal(turn2.stream, true)
  t.equal(turn2.messages.length, 3, 'user, assistant, user')
  t.equal(turn2.messages[1].role, 'assistant')
  t.match(JSON.stringify(turn2.messages[1].content), /successfully executed/, 'turn 1\'s reply is sent back')
  t.notOk(turn2.system, 'turn 1\'s instructions are not inherited')
  t.equal((await jsonCall(gw.url, 'GET', `/v1/responses/${final.id}`, undefined, MASTER)).body.output[0].content[0].text, 'Hello there!', 'stored')

  const mocked = await client.responses.create({ model: 'mocked', input: 'anything' })
  t.equal(mocked.output_text, 'Mocked reply.', 'the mock provider\'s mock_response')
})

t.test('ownership: a key sees its own responses only; the master key sees all', async (t) => {
  const a = await generateKey(t, gw.url, { key_alias: 'resp-a' })
  const b = await generateKey(t, gw.url, { key_alias: 'resp-b' })
  const ca = clientFor(a.key)
  const cb = clientFor(b.key)
  const r = await ca.responses.create({ model: 'gpt-4o', input: 'A\'s secret' })
  t.equal((await ca.responses.retrieve(r.id)).id, r.id, 'A reads its own')
  const bGet = await cb.responses.retrieve(r.id).catch((e) => e)
  t.ok(bGet instanceof OpenAI.NotFoundError, `B GET -> 404 (${bGet?.status})`)
  const bItems = await jsonCall(gw.url, 'GET', `/v1/responses/${r.id}/input_items`, undefined, b.key)
  t.equal(bItems.status, 404, 'B input_items -> 404')
  const upstreamCalls = up.requestsTo('chat').length
  const bCont = await cb.responses.create({ model: 'gpt-4o', previous_response_id: r.id, input: 'tell me' }).catch((e) => e)
  t.ok(bCont instanceof OpenAI.BadRequestError, `B continuing A's response -> 400 (${bCont?.status})`)
  t.equal(bCont?.param, 'previous_response_id')
  t.notOk(String(bCont?.message).includes('secret'), 'nothing of A\'s conversation leaks in the error')
  t.equal(up.requestsTo('chat').length, upstreamCalls, 'and nothing reached the upstream')
  const bDel = await jsonCall(gw.url, 'DELETE', `/v1/responses/${r.id}`, undefined, b.key)
  t.equal(bDel.status, 404, 'B DELETE -> 404')
  t.equal((await client.responses.retrieve(r.id)).id, r.id, 'still there; the master key reads it')
  const aCont = await ca.responses.create({ model: 'gpt-4o', previous_response_id: r.id, input: 'go on' })
  t.equal(aCont.status, 'completed', 'A continues its own')
  const mCont = await client.responses.create({ model: 'gpt-4o', previous_response_id: r.id, input: 'admin' })
  t.equal(mCont.status, 'completed', 'the master key continues it')
  const mDel = await jsonCall(gw.url, 'DELETE', `/v1/responses/${r.id}`, undefined, MASTER)
  t.equal(mDel.status, 200, 'the master key deletes it')
  const noKey = await jsonCall(gw.url, 'GET', `/v1/responses/${aCont.id}`, undefined, null)
  t.equal(noKey.status, 401, 'no key -> 401')

  // A response the master key created is the master key's: a virtual key may not read, continue or delete it.
  const m = await client.responses.create({ model: 'gpt-4o', input: 'the admin\'s conversation' })
  const bOnMaster = await jsonCall(gw.url, 'GET', `/v1/responses/${m.id}`, undefined, b.key)
  // A master-key response is owned by "master" (core/http/responses.ts ownerOf), not open to all.
  t.equal(bOnMaster.status, 404, `key B GET of the master key's response -> 404 (got ${bOnMaster.status})`)
  const bContMaster = await jsonCall(gw.url, 'POST', '/v1/responses', { model: 'gpt-4o', previous_response_id: m.id, input: 'x' }, b.key)
  t.equal(bContMaster.status, 400, `key B continuing the master key's response -> 400 (got ${bContMaster.status})`)
  const bDelMaster = await jsonCall(gw.url, 'DELETE', `/v1/responses/${m.id}`, undefined, b.key)
  t.equal(bDelMaster.status, 404, `key B DELETE of the master key's response -> 404 (got ${bDelMaster.status})`)
})

t.test('the request chain holds: rate limit, spend, spend logs', async (t) => {
  const limited = await generateKey(t, gw.url, { rpm_limit: 1 })
  const cl = clientFor(limited.key)
  t.equal((await cl.responses.create({ model: 'gpt-4o', input: 'one' })).status, 'completed', 'first call passes')
  const second = await cl.responses.create({ model: 'gpt-4o', input: 'two' }).catch((e) => e)
  t.ok(second instanceof OpenAI.RateLimitError, `second call within the minute -> 429 (${second?.status})`)
  const streamed = await jsonCall(gw.url, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'three', stream: true }, limited.key)
  t.equal(streamed.status, 429, 'a streamed call too')
  t.equal(streamed.body?.error?.type, 'rate_limit_error', 'as an OpenAI error body')

  const budgeted = await generateKey(t, gw.url, { max_budget: 10 })
  const cb = clientFor(budgeted.key)
  const { data, response } = await cb.responses.create({ model: 'gpt-4o', input: 'priced' }).withResponse()
  const cost = data.usage!.input_tokens * INPUT_PRICE + data.usage!.output_tokens * OUTPUT_PRICE
  t.ok(cost > 0, `the call costs ${cost}`)
  t.equal(Number(response.headers.get('x-litellm-response-cost')), cost, 'the cost header carries the call\'s price')
  const info = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/key/info?key=${encodeURIComponent(budgeted.key)}`)
    return r.body?.info?.spend > 0 ? r.body.info : undefined
  }, 10_000, 'spend on the key')
  t.ok(Math.abs(info.spend - cost) < 1e-9, `key spend ${info.spend} = the call's cost`)
  const rows = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${budgeted.token}`)
    return Array.isArray(r.body) && r.body.length >= 1 ? r.body : undefined
  }, 10_000, 'a spend row')
  t.equal(rows.length, 1, 'one row')
  t.match(rows[0], { call_type: 'responses', model_group: 'gpt-4o', status: 'success', prompt_tokens: data.usage!.input_tokens, completion_tokens: data.usage!.output_tokens })
  t.ok(Math.abs(rows[0].spend - cost) < 1e-9, 'the row\'s spend')

  // A streamed call is priced too (usage from the include_usage chunk the gateway asked for).
  const s = cb.responses.stream({ model: 'gpt-4o', input: 'priced stream' })
  const fin = await s.finalResponse()
  const streamCost = fin.usage!.input_tokens * INPUT_PRICE + fin.usage!.output_tokens * OUTPUT_PRICE
  const after = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/key/info?key=${encodeURIComponent(budgeted.key)}`)
    return r.body?.info?.spend > cost + 1e-12 ? r.body.info : undefined
  }, 10_000, 'spend from the stream')
  t.ok(Math.abs(after.spend - (cost + streamCost)) < 1e-9, `streamed call charged (${after.spend})`)
})

t.test('upstream failures: the upstream\'s 400 passes through; a stream that breaks ends in response.failed', async (t) => {
  const refused = await jsonCall(gw.url, 'POST', '/v1/responses', { model: 'refusing', input: 'hi' }, MASTER)
  assertClientError(t, refused, 400, 'messages', 'the upstream\'s 400')
  t.equal(refused.body.error.message, 'upstream says the prompt is bad', 'with its message')

  const stream = client.responses.stream({ model: 'breaking', input: 'hi' })
  const events: any[] = []
  const err = await (async () => {
    for await (const e of stream) events.push(e)
  })().then(() => null, (e) => e)
  const types = events.map((e) => e.type)
  t.equal(types[0], 'response.created', 'the stream opened')
  t.same(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'one two ', 'the text sent before the failure')
  t.equal(types.at(-1), 'response.failed', `response.failed last (${types.join(', ')})`)
  const failed = events.at(-1)
  t.match(failed?.response, { status: 'failed', error: { code: 'server_error', message: /generation failed/ } })
  assertSchema(t, 'ResponseStreamEvent', failed, 'response.failed is a valid event')
  t.notOk(types.includes('response.completed'), 'never completed')
  t.ok(err === null || err instanceof Error, `the SDK ends the stream (${err?.message ?? 'no error'})`)
})

t.test('bad input: OpenAI-shaped 4xx, never a 500', async (t) => {
  const post = (body: unknown) => jsonCall(gw.url, 'POST', '/v1/responses', body, MASTER)
  assertClientError(t, await post({ model: 'gpt-4o' }), 400, 'input', 'missing input')
  assertClientError(t, await post({ input: 'hi' }), 400, 'model', 'missing model')
  assertClientError(t, await post({ model: 'gpt-4o', input: 42 }), 400, 'input', 'input of the wrong type')
  assertClientError(t, await post({ model: 'gpt-4o', input: [{ type: 'message', role: 'wizard', content: 'x' }] }), 400, 'input.0.role', 'an unknown role')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', previous_response_id: 'resp_doesnotexist' }), 400, 'previous_response_id', 'unknown previous_response_id')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', previous_response_id: 42 }), 400, 'previous_response_id', 'previous_response_id not a string')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', tools: [{ type: 'computer_use_preview', display_width: 1, display_height: 1, environment: 'linux' }] }), 400, 'tools.0', 'an unsupported tool type')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', tools: [{ type: 'function' }] }), 400, 'tools.0.name', 'a function tool without a name')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', max_output_tokens: 0 }), 400, 'max_output_tokens', 'max_output_tokens 0')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', stream: 'yes' }), 400, 'stream', 'stream not a boolean')
  assertClientError(t, await post({ model: 'gpt-4o', input: 'hi', store: 'no' }), 400, 'store', 'store not a boolean')
  const badMeta = await post({ model: 'gpt-4o', input: 'hi', metadata: 5 })
  // Echoed in the Response, where the spec requires an object: a number must not get through.
  assertClientError(t, badMeta, 400, 'metadata', 'metadata not an object')
  const notJson = await jsonCall(gw.url, 'POST', '/v1/responses', '{"model": "gpt-4o", "input": ', MASTER)
  t.equal(notJson.status, 400, 'malformed JSON -> 400')
  const unknownModel = await post({ model: 'no-such-model', input: 'hi' })
  t.ok(unknownModel.status >= 400 && unknownModel.status < 500, `an unknown model -> 4xx (${unknownModel.status})`)
  t.equal(typeof unknownModel.body?.error?.message, 'string')

  const getUnknown = await jsonCall(gw.url, 'GET', '/v1/responses/resp_unknown0000', undefined, MASTER)
  t.equal(getUnknown.status, 404, 'GET of an unknown id -> 404')
  t.equal(getUnknown.body?.error?.param, 'response_id')
  t.equal((await jsonCall(gw.url, 'GET', '/v1/responses/resp_unknown0000/input_items', undefined, MASTER)).status, 404, 'input_items of an unknown id -> 404')
  t.equal((await jsonCall(gw.url, 'DELETE', '/v1/responses/resp_unknown0000', undefined, MASTER)).status, 404, 'DELETE of an unknown id -> 404')
  const sdk = await client.responses.retrieve('resp_unknown0000').catch((e) => e)
  t.ok(sdk instanceof OpenAI.NotFoundError, 'the SDK raises NotFoundError')

  const r = await client.responses.create({ model: 'gpt-4o', input: 'for paging' })
  assertClientError(t, await jsonCall(gw.url, 'GET', `/v1/responses/${r.id}/input_items?order=sideways`, undefined, MASTER), 400, 'order', 'a bad order')
  assertClientError(t, await jsonCall(gw.url, 'GET', `/v1/responses/${r.id}/input_items?limit=0`, undefined, MASTER), 400, 'limit', 'limit 0')
  assertClientError(t, await jsonCall(gw.url, 'GET', `/v1/responses/${r.id}/input_items?limit=101`, undefined, MASTER), 400, 'limit', 'limit 101')
  t.notOk(gw.logs.some((l) => l.level === 'error'), 'no error was logged by the gateway')
})
