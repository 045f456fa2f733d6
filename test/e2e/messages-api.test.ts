/**
 * POST /v1/messages end to end, for deployments that do NOT speak the Messages API: the official
 * `@anthropic-ai/sdk` client talks to a real gateway whose unchanged LiteLLM model_list entries point at an
 * OpenAI-format fake (test/helpers/upstream.ts, real HTTP on 127.0.0.1) and a fake Bedrock Converse (JSON and the
 * binary event stream from ../shared/data/bedrock/examples). The native Anthropic deployment is in
 * messages-api-native.test.ts.
 *
 * Every reply body and every stream event the gateway makes is validated STRICTLY against Anthropic's published
 * spec (test/helpers/anthropic-openapi.ts): these are the gateway's own translations, so the spec's "every field
 * required" applies. What went upstream is checked too: the OpenAI fake must get a valid chat request, Bedrock a
 * body valid against the API model's ConverseRequest.
 *
 * The gateway runs with a master key, so the default pipeline (embedded SQLite store, keys, spend, budgets) is on:
 * virtual keys sent as `x-api-key` (the Anthropic SDK's header), per-key model lists, budgets and spend logs are
 * exercised on this route as well.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Anthropic from '@anthropic-ai/sdk'
import { EventStreamCodec } from '@smithy/eventstream-codec'
import { fromUtf8, toUtf8 } from '@smithy/util-utf8'
import { startGateway } from '../helpers/gateway.js'
import { errorReply, midStreamError, startUpstream, type Behaviour, type ReplyContext } from '../helpers/upstream.js'
import { assertAnthropicSchema, EVENT_SCHEMAS } from '../helpers/anthropic-openapi.js'
import { assertSchema } from '../helpers/openapi.js'
import { bedrockShape, readExample, readFrames } from '../providers/bedrock-fixtures.js'
import { admin, eventually, generateKey, MASTER } from './helpers.js'

/** Per token, USD: exact in binary floating point, so the spend log's cost can be compared with `===`-ish care. */
const INPUT_PRICE = 0.001
const OUTPUT_PRICE = 0.002

// ---- the OpenAI-format fake: fixed usage per scenario, so the translated usage can be checked exactly --------------

/** Usage the fake reports. `cached` is part of prompt_tokens (OpenAI's convention); Anthropic's input excludes it. */
const USAGE = {
  text: { prompt: 31, cached: 8, completion: 7 },
  tool: { prompt: 88, cached: 0, completion: 19 },
  final: { prompt: 120, cached: 0, completion: 9 },
}
const TEXT_REPLY = 'Hello from the OpenAI fake.'
const FINAL_REPLY = 'It is 18 degrees and sunny in Paris.'
const TOOL_CALL_ID = 'call_Paris42'
const TOOL_ARGS = '{"location":"Paris"}'

function openaiUsage(u: { prompt: number; cached: number; completion: number }) {
  return {
    prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion,
    prompt_tokens_details: { cached_tokens: u.cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  }
}

/**
 * Tools offered and no tool answer yet: a tool call to get_weather; a tool answer present: the final text; no
 * tools: plain text. Streams send the tool call's arguments in three pieces, as OpenAI does.
 */
function openaiChat(): Behaviour {
  return (ctx: ReplyContext) => {
    const body = ctx.record.body
    const answered = body.messages.some((m: any) => m.role === 'tool')
    const kind = answered ? 'final' : Array.isArray(body.tools) ? 'tool' : 'text'
    const content = kind === 'tool' ? null : kind === 'final' ? FINAL_REPLY : TEXT_REPLY
    const toolCall = { id: TOOL_CALL_ID, type: 'function', function: { name: 'get_weather', arguments: TOOL_ARGS } }
    const finish = kind === 'tool' ? 'tool_calls' : 'stop'
    const base = { id: `chatcmpl-${kind}`, created: 1_700_000_000, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_fake', service_tier: 'default' }
    if (body.stream !== true) {
      const message = { role: 'assistant', content, refusal: null, annotations: [], ...(kind === 'tool' ? { tool_calls: [toolCall] } : {}) }
      const text = JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage: openaiUsage(USAGE[kind]) })
      ctx.res.writeHead(200, { 'content-type': 'application/json' })
      ctx.res.end(text)
      return
    }
    const chunk = (delta: object, finishReason: string | null = null) =>
      ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] })
    const chunks: object[] = [chunk({ role: 'assistant', content: kind === 'tool' ? null : '' })]
    if (kind === 'tool') {
      chunks.push(chunk({ tool_calls: [{ index: 0, id: TOOL_CALL_ID, type: 'function', function: { name: 'get_weather', arguments: '' } }] }))
      for (const piece of ['{"loca', 'tion":"Pa', 'ris"}']) chunks.push(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }))
    } else {
      for (const piece of content!.split(/(?<= )/)) chunks.push(chunk({ content: piece }))
    }
    chunks.push(chunk({}, finish))
    if (body.stream_options?.include_usage) chunks.push({ ...base, object: 'chat.completion.chunk', choices: [], usage: openaiUsage(USAGE[kind]) })
    ctx.res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const c of chunks) ctx.res.write(`data: ${JSON.stringify(c)}\n\n`)
    ctx.res.end('data: [DONE]\n\n')
  }
}

// ---- the Bedrock fake ----------------------------------------------------------------------------------------------

interface BedrockSeen { path: string; action: string; headers: http.IncomingHttpHeaders; body: any; valid: boolean }

const converseRequest = bedrockShape('ConverseRequest')
/** Gap between the two writes of the mid-stream case, so the gateway reads them separately; ms. */
const SECOND_READ_DELAY_MS = 30
const codec = new EventStreamCodec(toUtf8, fromUtf8)

function eventFrame(eventType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  })
}

/**
 * Converse and ConverseStream from the recorded examples. The signature is not recomputed here (bedrock-gateway.test.ts
 * does that); the body is validated against the API model, as Bedrock would with a ValidationException.
 */
async function fakeBedrock(t: Test): Promise<{ base: string; seen: BedrockSeen[] }> {
  const seen: BedrockSeen[] = []
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const m = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(req.url ?? '')
      let body: any = null
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'))
      } catch { /* recorded as null */ }
      const valid = converseRequest(body) as boolean
      seen.push({ path: req.url ?? '', action: m?.[2] ?? '', headers: req.headers, body, valid })
      const json = (status: number, payload: unknown, errorType?: string) => {
        res.writeHead(status, { 'content-type': 'application/json', ...(errorType ? { 'x-amzn-errortype': `${errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/` } : {}) })
        res.end(JSON.stringify(payload))
      }
      if (!m) return json(404, { message: 'Unknown operation' }, 'UnknownOperationException')
      if (!valid) return json(400, { message: `1 validation error detected: ${JSON.stringify(converseRequest.errors?.[0])}` }, 'ValidationException')
      const last = body.messages.at(-1)
      const answered = last.content.some((b: any) => b.toolResult)
      const text = last.content.map((b: any) => b.text ?? '').join('')
      const tools = body.toolConfig && !answered
      if (m[2] === 'converse') return json(200, readExample(tools ? 'converse.tool_use.response.json' : 'converse.text.response.json'))
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' })
      if (text.includes('MIDSTREAM')) {
        // Content, then Bedrock's throttling exception frame: the client must see the text, then an error event.
        // Two network reads: the second holds a content delta AND the exception frame, as a coalesced TCP read can.
        res.write(Buffer.concat([eventFrame('messageStart', { role: 'assistant' }), eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hel' } })]))
        setTimeout(() => res.end(Buffer.concat([eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'lo' } }),
          readFrames('converse-stream.throttling-exception.eventstream.bin')])), SECOND_READ_DELAY_MS)
        return
      }
      res.end(readFrames(tools ? 'converse-stream.tool_use.eventstream.bin' : 'converse-stream.text.eventstream.bin'))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

// ---- the gateway ---------------------------------------------------------------------------------------------------

const up = await startUpstream(t, { chat: openaiChat() })
const busy = await startUpstream(t, { chat: errorReply(429, { message: 'Rate limit reached for gpt-4o', type: 'requests', code: 'rate_limit_exceeded' }, { 'retry-after': '4' }) })
const flaky = await startUpstream(t, { chat: midStreamError({ message: 'The server had an error while processing your request.', type: 'server_error' }, { after: 3 }) })
const bedrock = await fakeBedrock(t)

const priced = `
      input_cost_per_token: ${INPUT_PRICE}
      output_cost_per_token: ${OUTPUT_PRICE}`
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  num_retries: 0
  disable_cooldowns: true
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o
      api_base: ${up.url}
      api_key: sk-upstream-openai${priced}
  - model_name: gpt-busy
    litellm_params:
      model: openai/gpt-4o
      api_base: ${busy.url}
      api_key: sk-upstream-openai
  - model_name: gpt-flaky
    litellm_params:
      model: openai/gpt-4o
      api_base: ${flaky.url}
      api_key: sk-upstream-openai
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: ${bedrock.base}${priced}
`, { env: { AWS_ACCESS_KEY_ID: 'AKIDMESSAGESTEST', AWS_SECRET_ACCESS_KEY: 'messages/secret/EXAMPLE' } })

const clientWith = (apiKey: string) => new Anthropic({ baseURL: gw.url, apiKey, maxRetries: 0, timeout: 20_000 })
const client = clientWith(MASTER)

// ---- shared checks -------------------------------------------------------------------------------------------------

/** A streamed call through the SDK: every raw event validated against its schema, then the final message. */
async function streamed(t: Test, c: Anthropic, params: Anthropic.MessageCreateParamsNonStreaming): Promise<{ events: any[]; final: Anthropic.Message }> {
  const events: any[] = []
  const stream = c.messages.stream(params)
  stream.on('streamEvent', (ev) => {
    events.push(structuredClone(ev))
  })
  const final = await stream.finalMessage()
  for (const [i, ev] of events.entries()) {
    const schema = EVENT_SCHEMAS[ev.type]
    if (!t.ok(schema, `event ${i} has a known type (${ev.type})`)) continue
    assertAnthropicSchema(t, schema!, ev, `event ${i} (${ev.type}) is a valid ${schema}`)
  }
  t.equal(events[0]?.type, 'message_start', 'message_start first')
  t.equal(events.at(-1)?.type, 'message_stop', 'message_stop last')
  t.equal(events.filter((e) => e.type === 'message_delta').length, 1, 'one message_delta')
  return { events, final }
}

const weatherTool: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
}
const question: Anthropic.MessageParam = { role: 'user', content: 'What is the weather in Paris?' }

/** Both turns of a tool_use round trip; returns the second call's message. */
async function toolRoundTrip(t: Test, model: string, expect: { id: string; input: unknown }): Promise<{ first: Anthropic.Message; second: Anthropic.Message }> {
  const first = await client.messages.create({ model, max_tokens: 300, tools: [weatherTool], messages: [question] })
  assertAnthropicSchema(t, 'Message', first)
  t.equal(first.stop_reason, 'tool_use', 'stop_reason tool_use')
  const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')
  t.match(use, { type: 'tool_use', id: expect.id, name: 'get_weather' }, 'a tool_use block')
  t.same(use?.input, expect.input, 'its input parsed')
  const second = await client.messages.create({
    model, max_tokens: 300, tools: [weatherTool],
    messages: [question, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use!.id, content: '18 C, sunny' }] }],
  })
  assertAnthropicSchema(t, 'Message', second)
  t.equal(second.stop_reason, 'end_turn')
  return { first, second }
}

// ---- OpenAI-format deployment -----------------------------------------------------------------------------------

t.test('OpenAI deployment: plain message, usage translated, a valid chat request upstream', async (t) => {
  const before = up.requests.length
  const msg = await client.messages.create({
    model: 'gpt', max_tokens: 256, temperature: 0.5, system: 'Be brief.', stop_sequences: ['END'],
    metadata: { user_id: 'user-42' },
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
    // `temperature` is still in the Messages API, but this SDK version's types no longer list it.
  } as Anthropic.MessageCreateParamsNonStreaming)
  assertAnthropicSchema(t, 'Message', msg)
  t.match(msg, { type: 'message', role: 'assistant', stop_reason: 'end_turn', stop_sequence: null })
  t.equal(msg.model, 'gpt-4o-2024-08-06', "the upstream's model name, as /v1/chat/completions reports it")
  t.match(msg.id, /^msg_[A-Za-z0-9]{24}$/, 'an Anthropic-shaped id')
  t.same(msg.content, [{ type: 'text', text: TEXT_REPLY, citations: null }])
  t.match(msg.usage, {
    input_tokens: USAGE.text.prompt - USAGE.text.cached, output_tokens: USAGE.text.completion,
    cache_read_input_tokens: USAGE.text.cached, cache_creation_input_tokens: 0,
  }, 'usage: input excludes cache reads, as Anthropic counts it')

  t.equal(up.requests.length, before + 1, 'one upstream call')
  const sent = up.requests.at(-1)!
  t.equal(sent.path, '/v1/chat/completions')
  t.equal(sent.headers.authorization, 'Bearer sk-upstream-openai', "the deployment's key, not the client's")
  t.notOk(sent.headers['x-api-key'], 'no x-api-key upstream')
  assertSchema(t, 'CreateChatCompletionRequest', sent.body, 'a valid OpenAI chat request')
  t.equal(sent.body.model, 'gpt-4o')
  t.same(sent.body.messages[0], { role: 'system', content: 'Be brief.' }, 'the system prompt as a system message')
  t.equal(sent.body.messages[1].role, 'user')
  t.equal(sent.body.temperature, 0.5)
  t.same(sent.body.stop, ['END'], 'stop_sequences -> stop')
  t.equal(sent.body.user, 'user-42', 'metadata.user_id -> user')
  t.equal(sent.body.max_tokens ?? sent.body.max_completion_tokens, 256, 'max_tokens kept')
  for (const k of ['system', 'stop_sequences', 'metadata', 'top_k', 'anthropic_version']) t.notOk(k in sent.body, `no Anthropic field ${k} upstream`)
})

t.test('OpenAI deployment: streaming through messages.stream(), events strictly valid', async (t) => {
  const { events, final } = await streamed(t, client, { model: 'gpt', max_tokens: 256, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello' }] })
  assertAnthropicSchema(t, 'Message', final, 'the SDK-assembled message is valid')
  t.equal(final.content.length, 1)
  t.equal((final.content[0] as Anthropic.TextBlock).text, TEXT_REPLY, 'text deltas joined')
  t.equal(final.stop_reason, 'end_turn')
  t.ok(events.filter((e) => e.type === 'content_block_delta').length >= 3, 'several text deltas')
  const delta = events.find((e) => e.type === 'message_delta')
  t.equal(delta.usage.output_tokens, USAGE.text.completion, 'message_delta: output tokens as the upstream reported')
  t.equal(delta.usage.input_tokens, USAGE.text.prompt - USAGE.text.cached, 'message_delta: input tokens as the upstream reported')
  t.equal(final.usage.output_tokens, USAGE.text.completion)
  const sent = up.requests.at(-1)!
  t.equal(sent.body.stream, true)
  t.same(sent.body.stream_options, { include_usage: true }, 'the gateway asks for the usage chunk')
  assertSchema(t, 'CreateChatCompletionRequest', sent.body)

  // create({stream: true}) is the same wire; the raw iterator sees the same event sequence.
  const raw = await client.messages.create({ model: 'gpt', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'Say hello' }] })
  const types: string[] = []
  for await (const ev of raw) types.push(ev.type)
  t.same(types.filter((x, i) => x !== types[i - 1]), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
})

t.test('OpenAI deployment: tool_use round trip (plain), tools as functions and the tool message upstream', async (t) => {
  const before = up.requests.length
  const { first, second } = await toolRoundTrip(t, 'gpt', { id: TOOL_CALL_ID, input: { location: 'Paris' } })
  t.match(first.usage, { input_tokens: USAGE.tool.prompt, output_tokens: USAGE.tool.completion })
  t.same(second.content, [{ type: 'text', text: FINAL_REPLY, citations: null }])
  t.match(second.usage, { input_tokens: USAGE.final.prompt, output_tokens: USAGE.final.completion })
  const [a, b] = up.requests.slice(before)
  assertSchema(t, 'CreateChatCompletionRequest', a!.body, 'first request valid')
  assertSchema(t, 'CreateChatCompletionRequest', b!.body, 'second request valid')
  t.same(a!.body.tools, [{ type: 'function', function: { name: 'get_weather', description: weatherTool.description, parameters: weatherTool.input_schema } }], 'tools as functions')
  const msgs = b!.body.messages
  t.match(msgs[1], { role: 'assistant', tool_calls: [{ id: TOOL_CALL_ID, type: 'function', function: { name: 'get_weather' } }] }, 'the assistant turn as tool_calls')
  t.same(JSON.parse(msgs[1].tool_calls[0].function.arguments), { location: 'Paris' })
  t.same(msgs[2], { role: 'tool', tool_call_id: TOOL_CALL_ID, content: '18 C, sunny' }, 'tool_result -> a tool message with tool_call_id')
  t.equal(msgs.length, 3, 'no empty user message after the tool answer')
})

t.test('OpenAI deployment: tool_use round trip (streaming)', async (t) => {
  const { events, final } = await streamed(t, client, { model: 'gpt', max_tokens: 300, tools: [weatherTool], messages: [question] })
  t.equal(final.stop_reason, 'tool_use')
  const use = final.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')
  t.match(use, { id: TOOL_CALL_ID, name: 'get_weather' })
  t.same(use?.input, { location: 'Paris' }, 'input_json_delta pieces joined by the SDK')
  t.ok(events.filter((e) => e.delta?.type === 'input_json_delta').length >= 3, 'arguments arrive as input_json_delta pieces')
  t.equal(final.usage.output_tokens, USAGE.tool.completion)
  const { final: answer } = await streamed(t, client, {
    model: 'gpt', max_tokens: 300, tools: [weatherTool],
    messages: [question, { role: 'assistant', content: final.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use!.id, content: [{ type: 'text', text: '18 C, sunny' }] }] }],
  })
  t.equal((answer.content[0] as Anthropic.TextBlock).text, FINAL_REPLY)
  t.equal(answer.stop_reason, 'end_turn')
  t.same(up.requests.at(-1)!.body.messages.at(-1), { role: 'tool', tool_call_id: TOOL_CALL_ID, content: '18 C, sunny' })
})

// ---- Bedrock deployment --------------------------------------------------------------------------------------------

t.test('Bedrock deployment: plain, streaming and a tool_use round trip over Converse', async (t) => {
  const before = bedrock.seen.length
  const msg = await client.messages.create({ model: 'claude-bedrock', max_tokens: 50, system: [{ type: 'text', text: 'Be kind.' }], messages: [{ role: 'user', content: 'Hi' }] })
  assertAnthropicSchema(t, 'Message', msg)
  t.same(msg.content, [{ type: 'text', text: 'Hello! How can I assist you today?', citations: null }])
  t.match(msg.usage, { input_tokens: 12, output_tokens: 10 }, "Converse's usage")
  t.equal(msg.model, 'anthropic.claude-3-5-sonnet-20240620-v1:0', "the deployment's model name")
  const s = bedrock.seen[before]!
  t.equal(s.action, 'converse')
  t.equal(s.path, '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse')
  t.match(String(s.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIDMESSAGESTEST\/\d{8}\/us-east-1\/bedrock\/aws4_request/, 'SigV4-signed')
  t.ok(s.valid, 'a valid ConverseRequest', { errors: JSON.stringify(converseRequest.errors?.slice(0, 3)) })
  t.same(s.body, { messages: [{ role: 'user', content: [{ text: 'Hi' }] }], system: [{ text: 'Be kind.' }], inferenceConfig: { maxTokens: 50 } })

  const { final } = await streamed(t, client, { model: 'claude-bedrock', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] })
  t.equal((final.content[0] as Anthropic.TextBlock).text, 'Hello there!')
  t.match(final.usage, { input_tokens: 11, output_tokens: 6 }, 'the metadata frame usage')
  t.equal(bedrock.seen.at(-1)!.action, 'converse-stream')

  const { second } = await toolRoundTrip(t, 'claude-bedrock', { id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', input: { location: 'Paris' } })
  t.equal((second.content[0] as Anthropic.TextBlock).text, 'Hello! How can I assist you today?')
  const [a, b] = bedrock.seen.slice(-2)
  t.ok(a!.valid && b!.valid, 'both Converse bodies valid')
  t.equal(a!.body.toolConfig.tools[0].toolSpec.name, 'get_weather')
  t.same(a!.body.toolConfig.tools[0].toolSpec.inputSchema, { json: weatherTool.input_schema })
  t.match(b!.body.messages[1].content, [{ text: "I'll check the current weather in Paris for you." }, { toolUse: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'get_weather', input: { location: 'Paris' } } }])
  t.match(b!.body.messages[2], { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', content: [{ text: '18 C, sunny' }] } }] }, 'tool_result -> toolResult')

  const { final: streamedTool } = await streamed(t, client, { model: 'claude-bedrock', max_tokens: 300, tools: [weatherTool], messages: [question] })
  t.equal(streamedTool.stop_reason, 'tool_use')
  t.match(streamedTool.content, [{ type: 'text', text: "I'll check the current weather in Paris for you." }, { type: 'tool_use', id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'get_weather', input: { location: 'Paris' } }])
  t.match(streamedTool.usage, { input_tokens: 377, output_tokens: 65 })
})

// ---- errors ----------------------------------------------------------------------------------------------------------

/** The error a call was refused with, its body validated as an Anthropic ErrorResponse. */
async function refusal(t: Test, p: Promise<unknown>, cls: abstract new (...args: never[]) => InstanceType<typeof Anthropic.APIError>, status: number, type: string): Promise<InstanceType<typeof Anthropic.APIError> | null> {
  const e = await p.then(() => null, (err: unknown) => err)
  if (!t.ok(e instanceof cls, `an ${cls.name}`, { got: String(e) })) return null
  const err = e as InstanceType<typeof Anthropic.APIError>
  t.equal(err.status, status, `status ${status}`)
  t.equal(err.type, type, `type ${type}`)
  assertAnthropicSchema(t, 'ErrorResponse', err.error, 'an Anthropic ErrorResponse body')
  t.ok((err.error as any)?.error?.message, 'with a message')
  return err
}

t.test('errors on /v1/messages are Anthropic-shaped and raise the SDK classes', async (t) => {
  const before = up.requests.length
  const unknown = await refusal(t, client.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [question] }), Anthropic.BadRequestError, 400, 'invalid_request_error')
  t.match(unknown?.apiMessage, /no-such-model/, 'names the model')

  const noMax = await refusal(t, client.messages.create({ model: 'gpt', messages: [question] } as never), Anthropic.BadRequestError, 400, 'invalid_request_error')
  t.match(noMax?.apiMessage, /max_tokens/, 'says max_tokens is missing')
  const badRole = await refusal(t, client.messages.create({ model: 'gpt', max_tokens: 10, messages: [{ role: 'system', content: 'x' }] } as never), Anthropic.BadRequestError, 400, 'invalid_request_error')
  t.match(badRole?.apiMessage, /messages\.0\.role/, 'names the offending path')
  await refusal(t, client.messages.create({ model: 'gpt', max_tokens: 10, temperature: 1.5, messages: [question] } as Anthropic.MessageCreateParamsNonStreaming), Anthropic.BadRequestError, 400, 'invalid_request_error')
  t.equal(up.requests.length, before, 'nothing reached the upstream')

  await refusal(t, clientWith('sk-wrong').messages.create({ model: 'gpt', max_tokens: 10, messages: [question] }), Anthropic.AuthenticationError, 401, 'authentication_error')

  const limited = await refusal(t, client.messages.create({ model: 'gpt-busy', max_tokens: 10, messages: [question] }), Anthropic.RateLimitError, 429, 'rate_limit_error')
  t.equal(limited?.headers?.get('retry-after'), '4', 'retry-after passed on')
  t.equal(busy.requests.length, 1, 'one upstream call (no retries configured)')
  await refusal(t, client.messages.create({ model: 'gpt-busy', max_tokens: 10, stream: true, messages: [question] }), Anthropic.RateLimitError, 429, 'rate_limit_error')
  t.equal(busy.requests.at(-1)!.body.stream, true, 'a stream refused before its first byte is an HTTP 429')
})

t.test('a mid-stream upstream failure arrives as an `error` event the SDK raises', async (t) => {
  const events: any[] = []
  const stream = client.messages.stream({ model: 'gpt-flaky', max_tokens: 50, messages: [question] })
  stream.on('streamEvent', (ev) => void events.push(structuredClone(ev)))
  const err = await stream.finalMessage().then(() => null, (e: unknown) => e)
  t.ok(err instanceof Anthropic.APIError, 'the SDK raised an APIError', { got: String(err) })
  t.equal((err as InstanceType<typeof Anthropic.APIError>).type, 'api_error', 'type api_error (the upstream 500)')
  assertAnthropicSchema(t, 'ErrorResponse', (err as InstanceType<typeof Anthropic.APIError>).error, 'the error event is a valid ErrorResponse')
  t.match(String((err as Error).message), /server had an error/)
  t.equal(events[0]?.type, 'message_start', 'the stream had started')
  t.ok(events.some((e) => e.delta?.type === 'text_delta'), 'some text arrived before the error')
  for (const ev of events) assertAnthropicSchema(t, EVENT_SCHEMAS[ev.type]!, ev, `${ev.type} before the error is valid`)

  // Bedrock's exception frame after content: the same, from the binary event stream.
  const bedrockEvents: any[] = []
  const bs = client.messages.stream({ model: 'claude-bedrock', max_tokens: 50, messages: [{ role: 'user', content: 'MIDSTREAM' }] })
  bs.on('streamEvent', (ev) => void bedrockEvents.push(ev))
  const berr = await bs.finalMessage().then(() => null, (e: unknown) => e)
  t.ok(berr instanceof Anthropic.APIError, 'Bedrock: the SDK raised')
  t.equal((berr as InstanceType<typeof Anthropic.APIError>).type, 'rate_limit_error', 'a throttlingException is a rate_limit_error')
  const text = bedrockEvents.filter((e) => e.delta?.type === 'text_delta').map((e) => e.delta.text).join('')
  t.equal(bedrockEvents[0]?.type, 'message_start', 'Bedrock: the stream had started (the error came as an event)')
  // The 'lo' delta shares a network read with the exception frame: it is delivered before the exception.
  t.equal(text, 'Hello', 'Bedrock: every delta sent before the exception arrived')
})

// ---- keys, budgets, spend ----------------------------------------------------------------------------------------

t.test('virtual keys via x-api-key: model lists enforced, 403 permission_error', async (t) => {
  const k = await generateKey(t, gw.url, { models: ['gpt'] })
  const c = clientWith(k.key)
  const ok = await c.messages.create({ model: 'gpt', max_tokens: 20, messages: [question] })
  t.equal((ok.content[0] as Anthropic.TextBlock).text, TEXT_REPLY, 'the key works as x-api-key')
  t.notOk(up.requests.at(-1)!.headers['x-api-key'], 'the virtual key is not forwarded')
  await refusal(t, c.messages.create({ model: 'claude-bedrock', max_tokens: 20, messages: [question] }), Anthropic.PermissionDeniedError, 403, 'permission_error')
  await refusal(t, c.messages.countTokens({ model: 'claude-bedrock', messages: [question] }), Anthropic.PermissionDeniedError, 403, 'permission_error')
  // Also over the raw header (not only through the SDK), to pin the header the gateway reads.
  const raw = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': k.key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify({ model: 'gpt', max_tokens: 5, messages: [question] }) })
  t.equal(raw.status, 200, 'x-api-key alone authenticates')
})

t.test('a budget holds on /v1/messages; spend logs show the call with cost and tokens', async (t) => {
  // One plain call costs 23*0.001 + 7*0.002 + cache reads: far above 0.001.
  const k = await generateKey(t, gw.url, { max_budget: 0.001 })
  const c = clientWith(k.key)
  const msg = await c.messages.create({ model: 'gpt', max_tokens: 20, messages: [{ role: 'user', content: 'Say hello' }] })
  t.equal(msg.usage.output_tokens, USAGE.text.completion)
  const rows = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${k.token}`)
    return Array.isArray(r.body) && r.body.length >= 1 ? r.body : undefined
  }, 10_000, 'the spend row')
  const row = rows[0]
  t.equal(row.call_type, 'anthropic_messages', "logged under LiteLLM's call type for /v1/messages")
  t.equal(row.model_group, 'gpt')
  t.equal(row.status, 'success')
  t.equal(row.prompt_tokens, USAGE.text.prompt, 'prompt tokens as the upstream reported')
  t.equal(row.completion_tokens, USAGE.text.completion)
  t.ok(row.spend > 0.001, `charged (${row.spend})`)
  // Cache reads may be discounted (the price table's cache ratio), never charged above the input price: the cost
  // lies between "cache reads free" and "cache reads at full price".
  const floor = (USAGE.text.prompt - USAGE.text.cached) * INPUT_PRICE + USAGE.text.completion * OUTPUT_PRICE
  const ceiling = USAGE.text.prompt * INPUT_PRICE + USAGE.text.completion * OUTPUT_PRICE
  t.ok(row.spend > floor - 1e-9 && row.spend < ceiling + 1e-9, `priced from the deployment's per-token prices: ${floor} <= ${row.spend} <= ${ceiling}`)

  const over = await eventually(async () => {
    const e = await c.messages.create({ model: 'gpt', max_tokens: 20, messages: [question] }).then(() => null, (err: unknown) => err)
    return e ?? undefined
  }, 5000, 'the budget refusal')
  t.ok(over instanceof Anthropic.BadRequestError, 'over budget: 400', { got: String(over) })
  assertAnthropicSchema(t, 'ErrorResponse', (over as InstanceType<typeof Anthropic.APIError>).error)
  t.match((over as InstanceType<typeof Anthropic.APIError>).apiMessage, /budget/i, 'says why')
  const overStream = await c.messages.create({ model: 'claude-bedrock', max_tokens: 20, stream: true, messages: [question] }).then(() => null, (err: unknown) => err)
  t.ok(overStream instanceof Anthropic.BadRequestError, 'the budget holds for a stream on another deployment too')
})

t.test('count_tokens on an OpenAI deployment: the gateway estimate, no spend, no upstream call', async (t) => {
  const before = up.requests.length
  const small = await client.messages.countTokens({ model: 'gpt', messages: [{ role: 'user', content: 'Hi' }] })
  assertAnthropicSchema(t, 'CountMessageTokensResponse', small)
  t.ok(small.input_tokens > 0, `an estimate (${small.input_tokens})`)
  const big = await client.messages.countTokens({ model: 'gpt', system: 'You are a weather bot. '.repeat(20), tools: [weatherTool], messages: [question] })
  t.ok(big.input_tokens > small.input_tokens + 50, `grows with the prompt (${big.input_tokens} > ${small.input_tokens})`)
  t.equal(up.requests.length, before, 'no upstream call')
  await refusal(t, client.messages.countTokens({ model: 'gpt', messages: [] }), Anthropic.BadRequestError, 400, 'invalid_request_error')
  // The same answer as /v1/messages gives for a model the gateway does not serve.
  await refusal(t, client.messages.countTokens({ model: 'no-such-model', messages: [question] }), Anthropic.BadRequestError, 400, 'invalid_request_error')
})
