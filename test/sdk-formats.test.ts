/**
 * The SDK's `responses()` and `anthropicMessages()` (core/sdk-formats.ts), in process, no server: a fake OpenAI
 * upstream on 127.0.0.1 (test/helpers/upstream.ts, reached with api_base + api_key call options) answers the chat
 * call each one makes. Checked: the Response / Message objects and stream events (order, sequence numbers, the final
 * usage), tool calls both ways, mock_response with no network, upstream errors as the exported classes, bad
 * arguments as 400s, abort by signal, and that the same request through a running gateway (POST /v1/responses,
 * POST /v1/messages) gives the same output, ids and timestamps aside.
 */
import t, { type Test } from 'tap'
import type { ResponseInputItem as OpenAIInputItem, FunctionTool } from 'openai/resources/responses/responses'
import type { MessageParam, Tool } from '@anthropic-ai/sdk/resources/messages/messages'
import {
  responses, anthropicMessages, type ResponsesParams, type AnthropicMessagesParams, type ResponseObject,
  type ResponseStreamEvent, type AnthropicMessage, type AnthropicStreamEvent,
} from '../core/sdk-formats.js'
import { BadRequestError, GatewayError, RateLimitError, UnsupportedParamsError } from '../core/errors.js'
import { ResponsesStreamWriter } from '../core/formats/responses-reply.js'
import { AnthropicStreamWriter } from '../core/formats/anthropic-reply.js'
import { SseParser } from '../core/sse.js'
import type { ChatChunk } from '../core/openai/types.js'
import { startGateway } from './helpers/gateway.js'
import { closedPort, errorReply, midStreamError, sequence, slowStream, startUpstream, toolCallTurn, type Behaviour, type ReplyContext } from './helpers/upstream.js'

// ---- the fake upstream: fixed usage per scenario, so translated usage is checked exactly ----------------------

const TEXT_REPLY = 'Hello from the fake upstream.'
const FINAL_REPLY = 'Sunny and 21 degrees in Paris.'
const CALL_ID = 'call_weather_1'
const ARGS = '{"city":"Paris"}'
/** cached_tokens is part of prompt_tokens (OpenAI); Anthropic's input_tokens leaves it out. */
const TEXT_USAGE = { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17, prompt_tokens_details: { cached_tokens: 3 } }
const TOOL_USAGE = { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27 }
const FINAL_USAGE = { prompt_tokens: 40, completion_tokens: 9, total_tokens: 49 }

/** A text turn; the usage chunk only when the request asked for it (so a test sees that the SDK asks). */
function textTurn(ctx: ReplyContext, content: string, usage: object): void {
  const body = ctx.record.body
  const base = { id: 'chatcmpl-fake', created: 1_700_000_000, model: body.model, system_fingerprint: 'fp_fake' }
  if (body.stream !== true) {
    ctx.res.writeHead(200, { 'content-type': 'application/json' })
    ctx.res.end(JSON.stringify({
      ...base, object: 'chat.completion', usage,
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    }))
    return
  }
  const chunk = (delta: object, finish: string | null = null) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
  const sse = (o: object) => `data: ${JSON.stringify(o)}\n\n`
  ctx.res.writeHead(200, { 'content-type': 'text/event-stream' })
  ctx.res.write(sse(chunk({ role: 'assistant', content: '' })))
  for (const piece of content.match(/\S+\s*/g)!) ctx.res.write(sse(chunk({ content: piece })))
  ctx.res.write(sse(chunk({}, 'stop')))
  if (body.stream_options?.include_usage === true) ctx.res.write(sse({ ...base, object: 'chat.completion.chunk', choices: [], usage }))
  ctx.res.end('data: [DONE]\n\n')
}

/** After a tool message: the final text; with tools: a get_weather call; otherwise: TEXT_REPLY. */
const weatherChat: Behaviour = (ctx) => {
  const body = ctx.record.body
  if (body.messages.some((m: { role: string }) => m.role === 'tool')) return textTurn(ctx, FINAL_REPLY, FINAL_USAGE)
  if (Array.isArray(body.tools) && body.tools.length) {
    return toolCallTurn(ctx, { id: CALL_ID, name: 'get_weather', arguments: ARGS }, { usage: TOOL_USAGE, streamUsage: 'asked' })
  }
  textTurn(ctx, TEXT_REPLY, TEXT_USAGE)
}

const up = await startUpstream(t, { chat: weatherChat })
const MODEL = 'openai/gpt-4o-mini'
/** Call options every call takes: the fake upstream, no retries. */
const via = { api_base: up.url, api_key: 'sk-fake', num_retries: 0 }

const weatherTool = { type: 'function' as const, name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }
const anthropicTool = { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }

async function collect<T>(s: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const e of s) out.push(e)
  return out
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

function chatsSince(n: number) {
  return up.requestsTo('chat').slice(n)
}

// ---- responses() -----------------------------------------------------------------------------------------------

t.test('responses(): a Response object with the reply as a message item and the usage', async (t) => {
  const before = up.requestsTo('chat').length
  const r = await responses({ model: MODEL, input: 'Say hello', instructions: 'Be brief.', temperature: 0.5, max_output_tokens: 50, ...via })
  t.equal(r.object, 'response')
  t.match(r.id, /^resp_[0-9a-f]{48}$/)
  t.equal(r.status, 'completed')
  t.equal(r.model, MODEL, 'the model as asked for')
  t.equal(r.instructions, 'Be brief.')
  t.equal(r.temperature, 0.5)
  t.equal(r.max_output_tokens, 50)
  t.equal(r.store, false, 'nothing is stored in process, and the Response says so')
  t.equal(r.output.length, 1)
  const item = r.output[0]!
  t.equal(item.type, 'message')
  if (item.type !== 'message') return
  t.same(item.content, [{ type: 'output_text', text: TEXT_REPLY, annotations: [], logprobs: [] }])
  t.same(r.usage, {
    input_tokens: 11, input_tokens_details: { cached_tokens: 3, cache_write_tokens: 0 },
    output_tokens: 6, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 17,
  })
  const [sent] = chatsSince(before)
  t.same(sent!.body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }])
  t.equal(sent!.body.max_tokens, 50, 'max_output_tokens -> max_tokens')
  t.equal(sent!.body.temperature, 0.5)
  t.equal(sent!.headers.authorization, 'Bearer sk-fake', 'api_key went through as a call option')
  for (const k of ['api_base', 'api_key', 'num_retries', 'input', 'instructions', 'store', 'max_output_tokens']) {
    t.notOk(k in sent!.body, `${k} is not sent upstream`)
  }
  const hidden = (r as unknown as { _hidden_params?: { custom_llm_provider: string } })._hidden_params
  t.equal(hidden?.custom_llm_provider, 'openai', "completion()'s _hidden_params carried over")
  t.notOk('_hidden_params' in JSON.parse(JSON.stringify(r)))
})

t.test('responses() stream: the Responses events in order, numbered, ending in response.completed with the usage', async (t) => {
  const before = up.requestsTo('chat').length
  const s = await responses({ model: MODEL, input: [{ role: 'user', content: 'Say hello' }], stream: true, ...via })
  const events = await collect(s)
  t.same(events.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    ...TEXT_REPLY.match(/\S+\s*/g)!.map(() => 'response.output_text.delta'),
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
  ])
  t.same(events.map((e) => e.sequence_number), events.map((_, i) => i), 'sequence_number counts from 0')
  const deltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : []))
  t.equal(deltas.join(''), TEXT_REPLY)
  const created = events[0]!
  const done = events.at(-1)!
  if (created.type !== 'response.created' || done.type !== 'response.completed') throw new Error('unexpected event types')
  t.equal(created.response.status, 'in_progress')
  t.equal(done.response.id, created.response.id, 'one response id throughout')
  t.equal(done.response.status, 'completed')
  t.equal(done.response.usage?.input_tokens, 11)
  t.equal(done.response.usage?.output_tokens, 6)
  t.equal(done.response.usage?.input_tokens_details.cached_tokens, 3)
  const [sent] = chatsSince(before)
  t.same(sent!.body.stream_options, { include_usage: true }, 'the SDK asks completion() for the usage')
})

t.test('responses(): a tool call is a function_call item, and its output goes back as function_call_output', async (t) => {
  const before = up.requestsTo('chat').length
  const first = await responses({ model: MODEL, input: 'Weather in Paris?', tools: [weatherTool], tool_choice: 'auto', ...via })
  t.equal(first.output.length, 1)
  const call = first.output[0]!
  t.equal(call.type, 'function_call')
  if (call.type !== 'function_call') return
  t.equal(call.call_id, CALL_ID)
  t.equal(call.name, 'get_weather')
  t.equal(call.arguments, ARGS)
  t.equal(first.usage?.total_tokens, 27)
  t.same(first.tools, [{ ...weatherTool, strict: true }], 'the tools echoed as OpenAI lists them')
  t.same(chatsSince(before)[0]!.body.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weatherTool.parameters } }])

  const input: ResponsesParams['input'] = [
    { role: 'user', content: 'Weather in Paris?' },
    ...first.output,
    { type: 'function_call_output', call_id: call.call_id, output: '{"temp":21,"sky":"sunny"}' },
  ]
  const second = await responses({ model: MODEL, input, tools: [weatherTool], ...via })
  const msg = second.output[0]!
  t.equal(msg.type === 'message' && msg.content[0]!.type === 'output_text' ? msg.content[0]!.text : null, FINAL_REPLY)
  t.same(chatsSince(before)[1]!.body.messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: CALL_ID, type: 'function', function: { name: 'get_weather', arguments: ARGS } }] },
    { role: 'tool', tool_call_id: CALL_ID, content: '{"temp":21,"sky":"sunny"}' },
  ], 'the conversation rebuilt for the chat model')
})

t.test('responses() stream with a tool call: function_call_arguments deltas join into the arguments', async (t) => {
  const events = await collect(await responses({ model: MODEL, input: 'Weather in Paris?', tools: [weatherTool], stream: true, ...via }))
  t.same(events.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added',
    'response.function_call_arguments.delta', 'response.function_call_arguments.delta',
    'response.function_call_arguments.done', 'response.output_item.done', 'response.completed',
  ])
  const args = events.flatMap((e) => (e.type === 'response.function_call_arguments.delta' ? [e.delta] : [])).join('')
  t.equal(args, ARGS)
  const done = events.at(-1)!
  if (done.type !== 'response.completed') throw new Error('no response.completed')
  t.match(done.response.output, [{ type: 'function_call', call_id: CALL_ID, name: 'get_weather', arguments: ARGS, status: 'completed' }])
  t.equal(done.response.usage?.total_tokens, 27, 'usage asked for and reported')
})

// ---- anthropicMessages() ---------------------------------------------------------------------------------------

t.test('anthropicMessages(): an Anthropic Message, usage in Anthropic terms', async (t) => {
  const before = up.requestsTo('chat').length
  const m = await anthropicMessages({
    model: MODEL, max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
    stop_sequences: ['END'], metadata: { user_id: 'user-7' }, ...via,
  })
  t.equal(m.type, 'message')
  t.equal(m.role, 'assistant')
  t.match(m.id, /^msg_[A-Za-z0-9]{24}$/)
  t.same(m.content, [{ type: 'text', text: TEXT_REPLY, citations: null }])
  t.equal(m.stop_reason, 'end_turn')
  t.same(m.usage, {
    input_tokens: 8, output_tokens: 6, cache_creation_input_tokens: 0, cache_read_input_tokens: 3,
    cache_creation: null, server_tool_use: null, service_tier: null,
  }, 'input_tokens leaves the cached 3 out')
  const [sent] = chatsSince(before)
  t.same(sent!.body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Say hello' }] }])
  t.equal(sent!.body.max_tokens, 100)
  t.same(sent!.body.stop, ['END'])
  t.equal(sent!.body.user, 'user-7', 'metadata.user_id -> user')
  for (const k of ['api_base', 'api_key', 'num_retries', 'metadata', 'system', 'stop_sequences']) t.notOk(k in sent!.body, `${k} is not sent upstream`)
})

t.test('anthropicMessages() stream: message_start ... message_stop, the usage in message_delta', async (t) => {
  const before = up.requestsTo('chat').length
  const events = await collect(await anthropicMessages({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }], stream: true, ...via }))
  const pieces = TEXT_REPLY.match(/\S+\s*/g)!
  t.same(events.map((e) => e.type), [
    'message_start', 'content_block_start', ...pieces.map(() => 'content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop',
  ])
  const text = events.flatMap((e) => (e.type === 'content_block_delta' && e.delta.type === 'text_delta' ? [e.delta.text] : [])).join('')
  t.equal(text, TEXT_REPLY)
  const start = events[0]!
  const delta = events.at(-2)!
  if (start.type !== 'message_start' || delta.type !== 'message_delta') throw new Error('unexpected event types')
  t.match(start.message, { type: 'message', role: 'assistant', content: [], stop_reason: null })
  t.same(delta.delta, { stop_reason: 'end_turn', stop_sequence: null })
  t.same(delta.usage, { input_tokens: 8, output_tokens: 6, cache_creation_input_tokens: 0, cache_read_input_tokens: 3, server_tool_use: null })
  t.same(chatsSince(before)[0]!.body.stream_options, { include_usage: true })
})

t.test('anthropicMessages(): tool_use out, tool_result back, streamed and not', async (t) => {
  const before = up.requestsTo('chat').length
  const ask = { model: MODEL, max_tokens: 200, tools: [anthropicTool], tool_choice: { type: 'any' as const }, ...via }
  const question = { role: 'user' as const, content: 'Weather in Paris?' }
  const m = await anthropicMessages({ ...ask, messages: [question] })
  t.equal(m.stop_reason, 'tool_use')
  t.same(m.content, [{ type: 'tool_use', id: CALL_ID, name: 'get_weather', input: { city: 'Paris' } }])
  t.equal(m.usage.input_tokens, 20)
  t.equal(chatsSince(before)[0]!.body.tool_choice, 'required', "tool_choice any -> 'required'")

  const answer = await anthropicMessages({
    ...ask, messages: [question, { role: 'assistant', content: m.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: CALL_ID, content: '21 degrees, sunny' }] }],
  })
  t.same(answer.content, [{ type: 'text', text: FINAL_REPLY, citations: null }])
  t.same(chatsSince(before)[1]!.body.messages.slice(1), [
    { role: 'assistant', content: null, tool_calls: [{ id: CALL_ID, type: 'function', function: { name: 'get_weather', arguments: ARGS } }] },
    { role: 'tool', tool_call_id: CALL_ID, content: '21 degrees, sunny' },
  ])

  const events = await collect(await anthropicMessages({ ...ask, messages: [question], stream: true }))
  t.same(events.map((e) => e.type), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
  const open = events[1]!
  if (open.type !== 'content_block_start') throw new Error('no content_block_start')
  t.same(open.content_block, { type: 'tool_use', id: CALL_ID, name: 'get_weather', input: {} })
  const json = events.flatMap((e) => (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta' ? [e.delta.partial_json] : [])).join('')
  t.equal(json, ARGS)
  const delta = events.at(-2)!
  if (delta.type !== 'message_delta') throw new Error('no message_delta')
  t.equal(delta.delta.stop_reason, 'tool_use')
  t.equal(delta.usage.output_tokens, 7)
})

// ---- call options, errors ------------------------------------------------------------------------------------

t.test('mock_response answers both without a network call', async (t) => {
  const nowhere = `http://127.0.0.1:${await closedPort()}/v1`
  const before = up.requests.length
  const r = await responses({ model: MODEL, input: 'hi', mock_response: 'Mocked reply.', api_base: nowhere, api_key: 'sk-x' })
  t.match(r.output, [{ type: 'message', content: [{ type: 'output_text', text: 'Mocked reply.' }] }])
  const events = await collect(await responses({ model: MODEL, input: 'hi', mock_response: 'Mocked stream reply.', api_base: nowhere, stream: true }))
  t.equal(events.at(-1)!.type, 'response.completed')
  t.equal(events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join(''), 'Mocked stream reply.')
  const m = await anthropicMessages({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], mock_response: 'Mocked reply.', api_base: nowhere })
  t.same(m.content, [{ type: 'text', text: 'Mocked reply.', citations: null }])
  const mEvents = await collect(await anthropicMessages({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], mock_response: 'Mocked reply.', api_base: nowhere, stream: true }))
  t.equal(mEvents.at(-1)!.type, 'message_stop')
  t.equal(up.requests.length, before, 'the fake upstream saw nothing')
})

t.test('an upstream 429 is a RateLimitError with status 429; num_retries passes through', async (t) => {
  const limited = await startUpstream(t, { chat: errorReply(429, { message: 'Rate limit reached for gpt-4o-mini', code: 'rate_limit_exceeded' }, { 'retry-after': '0' }) })
  const opts = { api_base: limited.url, api_key: 'sk-fake', num_retries: 0 }
  const e1 = await caught(responses({ model: MODEL, input: 'hi', ...opts }))
  t.ok(e1 instanceof RateLimitError, 'responses(): RateLimitError')
  t.equal((e1 as GatewayError).status, 429)
  const e2 = await caught(anthropicMessages({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], stream: true, ...opts }))
  t.ok(e2 instanceof RateLimitError, 'anthropicMessages() stream: RateLimitError before any event')
  t.equal((e2 as GatewayError).status, 429)
  t.equal(limited.requestsTo('chat').length, 2, 'num_retries: 0, one request each')

  limited.on('chat', sequence(errorReply(429, { message: 'slow down' }, { 'retry-after': '0' }), weatherChat))
  const r = await responses({ model: MODEL, input: 'hi', ...opts, num_retries: 1 })
  t.equal(r.status, 'completed', 'retried once, then answered')
  t.equal(limited.requestsTo('chat').length, 4)
})

t.test('a failure mid-stream is thrown from the iteration as a GatewayError, after the events so far', async (t) => {
  const breaking = await startUpstream(t, { chat: midStreamError({ message: 'generation failed', type: 'server_error' }, { after: 3 }) })
  const opts = { api_base: breaking.url, api_key: 'sk-fake', num_retries: 0 }
  const seen: string[] = []
  const e1 = await caught((async () => {
    for await (const e of await responses({ model: MODEL, input: 'hi', stream: true, ...opts })) seen.push(e.type)
  })())
  t.ok(e1 instanceof GatewayError, 'responses(): a GatewayError', { got: e1 })
  t.match((e1 as Error).message, /generation failed/)
  t.ok(seen.includes('response.output_text.delta'), 'the text before the failure was delivered')
  t.notOk(seen.includes('response.completed'))
  const kinds: string[] = []
  const e2 = await caught((async () => {
    for await (const e of await anthropicMessages({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], stream: true, ...opts })) kinds.push(e.type)
  })())
  t.ok(e2 instanceof GatewayError, 'anthropicMessages(): a GatewayError', { got: e2 })
  t.ok(kinds.includes('content_block_delta'))
  t.notOk(kinds.includes('message_stop'))
})

t.test('bad arguments are 400 BadRequestErrors naming the field, before any upstream call', async (t) => {
  const before = up.requests.length
  const bad = async (p: Promise<unknown>, param: string | null, what: string) => {
    const e = await caught(p)
    t.ok(e instanceof BadRequestError, `${what}: BadRequestError`, { got: e })
    t.equal((e as GatewayError).status, 400, `${what}: 400`)
    if (param !== null) t.equal((e as GatewayError & { param?: string }).param, param, `${what}: param ${param}`)
    return e as GatewayError
  }
  await bad(responses({ input: 'hi', ...via } as unknown as ResponsesParams), 'model', 'no model')
  await bad(responses({ model: MODEL, input: 42, ...via } as unknown as ResponsesParams), 'input', 'input not text or items')
  await bad(responses({ model: MODEL, input: [{ role: 'robot', content: 'x' }], ...via }), 'input.0.role', 'unknown role')
  await bad(responses({ model: MODEL, input: 'hi', store: 'yes', ...via } as unknown as ResponsesParams), 'store', 'store not boolean')
  const prev = await bad(responses({ model: MODEL, input: 'more', previous_response_id: 'resp_abc', ...via }), 'previous_response_id', 'previous_response_id')
  t.match(prev.message, /needs the proxy/)
  const mcp = await bad(responses({ model: MODEL, input: 'hi', tools: [{ type: 'mcp', server_label: 'x' }], ...via }), 'tools.0', 'MCP tool')
  t.ok(mcp instanceof UnsupportedParamsError)
  await bad(responses(null as unknown as ResponsesParams), null, 'null params')
  await bad(anthropicMessages({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...via } as unknown as AnthropicMessagesParams), 'max_tokens', 'no max_tokens')
  await bad(anthropicMessages({ model: MODEL, max_tokens: 10, temperature: 2, messages: [{ role: 'user', content: 'hi' }], ...via }), 'temperature', 'temperature above 1')
  await bad(anthropicMessages({ model: MODEL, max_tokens: 10, messages: [], ...via }), 'messages', 'no messages')
  await bad(anthropicMessages({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'tool_result' }] }], ...via }), 'messages.0.content.0.tool_use_id', 'tool_result without id')
  await bad(anthropicMessages('hi' as unknown as AnthropicMessagesParams), null, 'a string for params')
  await bad(anthropicMessages({ model: 'nosuchprovider/x', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), 'model', 'unknown provider (completion()\'s check)')
  t.equal(up.requests.length, before, 'no upstream call')
})

t.test('signal aborts: a stream mid-way, and a call still waiting for its reply', async (t) => {
  const slow = await startUpstream(t, { chat: slowStream({ intervalMs: 40, chunks: 200 }) })
  const ac = new AbortController()
  const s = await responses({ model: MODEL, input: 'count', stream: true, signal: ac.signal, api_base: slow.url, api_key: 'sk-fake', num_retries: 0 })
  const seen: ResponseStreamEvent[] = []
  const err = await caught((async () => {
    for await (const e of s) {
      seen.push(e)
      if (e.type === 'response.output_text.delta' && seen.length > 5) ac.abort()
    }
  })())
  t.ok(err instanceof GatewayError, 'the iteration throws a GatewayError', { got: err })
  t.ok(seen.length < 50, 'stopped early')
  t.notOk(seen.some((e) => e.type === 'response.completed'))
  const rec = await slow.waitClosed(0, 3000, 'chat')
  t.ok(rec.aborted, 'the upstream request was cut')

  const ac2 = new AbortController()
  const p = anthropicMessages({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], stream: true, signal: ac2.signal, api_base: slow.url, api_key: 'sk-fake', num_retries: 0 })
  const events = await p
  const it = events[Symbol.asyncIterator]()
  t.equal((await it.next()).value?.type, 'message_start')
  ac2.abort()
  const e2 = await caught((async () => { for (;;) if ((await it.next()).done) break })())
  t.ok(e2 instanceof GatewayError, 'anthropicMessages() stream: GatewayError after abort')
  await slow.waitClosed(1, 3000, 'chat')

  const hang = await startUpstream(t, { chat: () => {} })
  const ac3 = new AbortController()
  const waiting = responses({ model: MODEL, input: 'hi', signal: ac3.signal, api_base: hang.url, api_key: 'sk-fake', num_retries: 0 })
  await hang.waitForRequests(1)
  const started = Date.now()
  ac3.abort()
  const e3 = await caught(waiting)
  t.ok(e3 instanceof GatewayError, 'a pending call rejects with a GatewayError')
  t.ok(Date.now() - started < 2000, 'promptly')
})

// ---- the object-level writer API matches the proxy's SSE bytes -------------------------------------------------

t.test("the writers' event objects are exactly what their SSE text carries", async (t) => {
  const base = { id: 'c', object: 'chat.completion.chunk' as const, created: 1, model: 'm' }
  const chunks: ChatChunk[] = [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', reasoning_content: 'thinking...' }, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { content: 'Hi ' }, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { content: 'there' }, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a"' } }] }, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }, finish_reason: 'tool_calls' }] },
    { ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 } },
  ]
  const asSse = (events: Array<{ type: string }>) => events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('')

  const a1 = new AnthropicStreamWriter('m', 'msg_same')
  const a2 = new AnthropicStreamWriter('m', 'msg_same')
  let text = ''
  let objects = ''
  for (const c of chunks) {
    text += a1.chunk(c)
    objects += asSse(a2.chunkEvents(c))
  }
  text += a1.end(null)
  objects += asSse(a2.endEvents(null))
  t.equal(objects, text, 'Anthropic: same bytes')
  t.ok(text.includes('tool_use') && text.includes('thinking_delta'))

  const o = { id: 'resp_same', createdAt: 1, model: 'm', request: { model: 'm', input: 'x' }, now: () => 5000 }
  const r1 = new ResponsesStreamWriter(o)
  const r2 = new ResponsesStreamWriter(o)
  text = r1.start()
  objects = asSse(r2.startEvents())
  for (const c of chunks) {
    text += r1.chunk(c)
    objects += asSse(r2.chunkEvents(c))
  }
  const e1 = r1.end(null)
  const e2 = r2.endEvents(null)
  text += e1.text
  objects += asSse(e2.events)
  // Item ids are random per writer: numbered by first appearance, the rest must match byte for byte.
  const ids = (s: string) => {
    const seen = new Map<string, string>()
    return s.replace(/\b(msg|fc|rs)_[0-9a-f]{48}\b/g, (id) => seen.get(id) ?? (seen.set(id, `<id${seen.size}>`), seen.get(id)!))
  }
  t.equal(ids(objects), ids(text), 'Responses: same bytes, sequence numbers included')
  t.same(JSON.parse(ids(JSON.stringify(e2.response))), JSON.parse(ids(JSON.stringify(e1.response))), 'same final Response')
  const parsed = new SseParser().push(text)
  t.same(parsed.map((e) => e.event), parsed.map((e) => (JSON.parse(e.data) as { type: string }).type), 'each event line names its data type')
  t.ok(parsed.length > 15, 'a whole reply: reasoning, text and a tool call')
})

// ---- the same request through a running gateway --------------------------------------------------------------

/** Ids numbered by first appearance (structure kept: a repeated id stays the same placeholder), timestamps zeroed. */
function normalize(v: unknown, seen = new Map<string, string>()): unknown {
  if (Array.isArray(v)) return v.map((x) => normalize(x, seen))
  if (v === null || typeof v !== 'object') return v
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) {
    if ((k === 'created_at' || k === 'completed_at') && typeof x === 'number') out[k] = 0
    else if (typeof x === 'string' && /^(resp|msg|fc|rs)_[0-9a-zA-Z]{24,48}$/.test(x)) {
      if (!seen.has(x)) seen.set(x, `<${x.split('_')[0]}${seen.size}>`)
      out[k] = seen.get(x)
    } else out[k] = normalize(x, seen)
  }
  return out
}

async function proxyJson(url: string, path: string, body: object): Promise<any> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-any' }, body: JSON.stringify(body) })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

/** A proxy stream's events: each `data` parsed, after checking the `event:` line names the same type. */
async function proxyEvents(t: Test, url: string, path: string, body: object): Promise<Array<{ type: string }>> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal(res.status, 200)
  const parser = new SseParser()
  const events = [...parser.push(await res.text()), ...parser.end()]
  return events.filter((e) => e.data !== '[DONE]').map((e) => {
    const data = JSON.parse(e.data) as { type: string }
    if (e.event !== undefined) t.equal(e.event, data.type)
    return data
  })
}

t.test('the same request through the proxy and through the SDK gives the same output', async (t) => {
  const gw = await startGateway(t, `
model_list:
  - model_name: ${MODEL}
    litellm_params:
      model: ${MODEL}
      api_base: ${up.url}
      api_key: sk-fake
`)
  const cases: Array<[string, Record<string, unknown>]> = [
    ['text', { model: MODEL, input: 'Say hello', instructions: 'Be brief.', max_output_tokens: 64, store: false, metadata: { run: 'cmp' } }],
    ['tool call', { model: MODEL, input: 'Weather in Paris?', tools: [weatherTool], tool_choice: 'required', store: false }],
    ['tool answer', {
      model: MODEL, store: false, tools: [weatherTool], input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: CALL_ID, name: 'get_weather', arguments: ARGS },
        { type: 'function_call_output', call_id: CALL_ID, output: '21 degrees' },
      ],
    }],
  ]
  for (const [name, body] of cases) {
    const viaProxy = await proxyJson(gw.url, '/v1/responses', body)
    const viaSdk = await responses({ ...body, ...via } as ResponsesParams & { stream?: false })
    t.same(normalize(viaSdk), normalize(viaProxy), `responses ${name}`)
    const proxyStream = await proxyEvents(t, gw.url, '/v1/responses', { ...body, stream: true })
    const sdkStream = await collect(await responses({ ...body, ...via, stream: true } as ResponsesParams & { stream: true }))
    t.same(normalize(sdkStream), normalize(proxyStream), `responses ${name}, streamed`)
  }

  const messages: Array<[string, Record<string, unknown>]> = [
    ['text', { model: MODEL, max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello' }] }],
    ['tool_use', { model: MODEL, max_tokens: 64, tools: [anthropicTool], messages: [{ role: 'user', content: 'Weather in Paris?' }] }],
    ['tool_result', {
      model: MODEL, max_tokens: 64, tools: [anthropicTool], messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: CALL_ID, name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: CALL_ID, content: '21 degrees' }] },
      ],
    }],
  ]
  for (const [name, body] of messages) {
    const viaProxy = await proxyJson(gw.url, '/v1/messages', body)
    const viaSdk = await anthropicMessages({ ...body, ...via } as AnthropicMessagesParams & { stream?: false })
    t.same(normalize(viaSdk), normalize(viaProxy), `messages ${name}`)
    const proxyStream = await proxyEvents(t, gw.url, '/v1/messages', { ...body, stream: true })
    const sdkStream = await collect(await anthropicMessages({ ...body, ...via, stream: true } as AnthropicMessagesParams & { stream: true }))
    t.same(normalize(sdkStream), normalize(proxyStream), `messages ${name}, streamed`)
  }
})

// ---- types ---------------------------------------------------------------------------------------------------

/** Never called: the type checker is the assertion (the project's `tsc --noEmit` covers this file). */
export async function typeChecks(): Promise<void> {
  // The official clients' own types go in as they are.
  const items: OpenAIInputItem[] = [{ role: 'user', content: 'hi' }, { type: 'function_call_output', call_id: 'c', output: 'x' }]
  const tools: FunctionTool[] = [{ type: 'function', name: 'f', parameters: {}, strict: true }]
  const r: ResponseObject = await responses({ model: MODEL, input: items, tools })
  void r.usage?.input_tokens
  const s: AsyncIterable<ResponseStreamEvent> = await responses({ model: MODEL, input: 'hi', stream: true })
  for await (const e of s) if (e.type === 'response.output_text.delta') void e.delta.length
  const params: MessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]
  const atools: Tool[] = [{ name: 'f', input_schema: { type: 'object' } }]
  const m: AnthropicMessage = await anthropicMessages({ model: MODEL, max_tokens: 1, messages: params, tools: atools })
  void m.content
  const ms: AsyncIterable<AnthropicStreamEvent> = await anthropicMessages({ model: MODEL, max_tokens: 1, messages: params, stream: true })
  for await (const e of ms) if (e.type === 'message_delta') void e.usage.output_tokens

  // @ts-expect-error input is required
  void responses({ model: MODEL })
  // @ts-expect-error model is required
  void responses({ input: 'hi' })
  // @ts-expect-error input is text or items
  void responses({ model: MODEL, input: 42 })
  // @ts-expect-error max_tokens is required
  void anthropicMessages({ model: MODEL, messages: params })
  // @ts-expect-error content is text or blocks
  void anthropicMessages({ model: MODEL, max_tokens: 1, messages: [{ role: 'user', content: 42 }] })
  // @ts-expect-error a stream is not a Response
  const notAResponse: ResponseObject = await responses({ model: MODEL, input: 'hi', stream: true })
  void notAResponse
}
