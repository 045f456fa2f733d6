/**
 * The mock provider as framework users test against it: OpenAI's `n`, `max_tokens` / `max_completion_tokens` and
 * tool calling (JSON and streamed, a full round trip with the official client), and LiteLLM's testing flags
 * (`mock_testing_rate_limit_error`, `mock_testing_fallbacks`, `mock_timeout`). Every body and chunk is checked
 * against OpenAI's spec, because the mock's promise is that unchanged client code runs against it.
 */
import t, { type Test } from 'tap'
import OpenAI, { APIError, BadRequestError } from 'openai'
import type { ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'
import { completion, GatewayError, Timeout } from '../../core/index.js'

const up = await startUpstream(t)
const gw = await startGateway(t, `
model_list:
  - model_name: mock
    litellm_params: { model: mock/mock-1 }
  - model_name: real
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up }
`, { env: { PATH: process.env.PATH } })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-none', maxRetries: 0, timeout: 10_000 })

const user = (content: string): ChatCompletionMessageParam[] => [{ role: 'user', content }]
/** 39 characters: 10 tokens by the mock's 4-characters-per-token estimate. */
const REPLY = 'one two three four five six seven eight'

const weather: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1 },
        detailed: { type: 'boolean' },
        where: { type: 'object', properties: { lat: { type: 'number' }, note: { type: 'string' } }, required: ['lat'] },
        optional_field: { type: 'string' },
      },
      required: ['city', 'unit', 'days', 'detailed', 'where'],
    },
  },
}
const time: ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
}
/** What the mock fills in from weather's schema: required properties only, placeholders by type. */
const WEATHER_ARGS = { city: 'mock', unit: 'celsius', days: 1, detailed: false, where: { lat: 0 } }

async function collect(stream: AsyncIterable<ChatCompletionChunk>, t: Test): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = []
  for await (const c of stream) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', c, `chunk ${chunks.length + 1} valid`)
    chunks.push(c)
  }
  return chunks
}

t.test('n: n choices, indexed 0..n-1, in JSON and streamed', async (t) => {
  const one = await client.chat.completions.create({ model: 'mock', messages: user('hi'), ...{ mock_response: REPLY } })
  const r = await client.chat.completions.create({ model: 'mock', messages: user('hi'), n: 3, ...{ mock_response: REPLY } })
  assertSchema(t, 'CreateChatCompletionResponse', r)
  t.same(r.choices.map((c) => c.index), [0, 1, 2])
  t.ok(r.choices.every((c) => c.message.content === REPLY && c.finish_reason === 'stop'))
  t.equal(r.usage!.completion_tokens, 3 * one.usage!.completion_tokens, 'every choice counts in usage')
  t.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens)

  const stream = await client.chat.completions.create({
    model: 'mock', messages: user('hi'), n: 2, stream: true, stream_options: { include_usage: true }, ...{ mock_response: REPLY },
  })
  const chunks = await collect(stream, t)
  const text = ['', '']
  const finish: Array<string | null> = [null, null]
  for (const c of chunks) {
    for (const ch of c.choices) {
      text[ch.index] += ch.delta.content ?? ''
      if (ch.finish_reason) finish[ch.index] = ch.finish_reason
    }
  }
  t.same(text, [REPLY, REPLY], 'each index streams the whole reply')
  t.same(finish, ['stop', 'stop'])
  t.ok(chunks.every((c) => c.choices.length <= 1), 'one choice per chunk, as OpenAI streams n > 1')
  t.equal(chunks.at(-1)!.usage!.completion_tokens, 2 * one.usage!.completion_tokens)

  const tooMany = await client.chat.completions.create({ model: 'mock', messages: user('hi'), n: 1000 }).catch((e: unknown) => e)
  t.ok(tooMany instanceof OpenAI.BadRequestError, 'n beyond OpenAI\'s 128 is a 400, not a huge allocation')
})

t.test('max_tokens / max_completion_tokens truncate the reply by the 4-characters-per-token estimate', async (t) => {
  const r = await client.chat.completions.create({ model: 'mock', messages: user('hi'), max_tokens: 3, ...{ mock_response: REPLY } })
  assertSchema(t, 'CreateChatCompletionResponse', r)
  t.equal(r.choices[0]!.message.content, REPLY.slice(0, 12))
  t.equal(r.choices[0]!.finish_reason, 'length')
  t.equal(r.usage!.completion_tokens, 3, 'usage counts what was sent')

  const m = await client.chat.completions.create({ model: 'mock', messages: user('hi'), max_completion_tokens: 2, ...{ mock_response: REPLY } })
  t.equal(m.choices[0]!.message.content, REPLY.slice(0, 8))
  t.equal(m.choices[0]!.finish_reason, 'length')
  t.equal(m.usage!.completion_tokens, 2)

  const roomy = await client.chat.completions.create({ model: 'mock', messages: user('hi'), max_tokens: 10, ...{ mock_response: REPLY } })
  t.equal(roomy.choices[0]!.message.content, REPLY, 'a limit the reply fits in changes nothing')
  t.equal(roomy.choices[0]!.finish_reason, 'stop')

  const stream = await client.chat.completions.create({
    model: 'mock', messages: user('hi'), max_tokens: 3, stream: true, stream_options: { include_usage: true }, ...{ mock_response: REPLY },
  })
  const chunks = await collect(stream, t)
  t.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), REPLY.slice(0, 12))
  t.equal(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, 'length')
  t.equal(chunks.at(-1)!.usage!.completion_tokens, 3)

  const legacy = await client.completions.create({ model: 'mock', prompt: 'hi', max_tokens: 2, ...{ mock_response: REPLY } })
  assertSchema(t, 'CreateCompletionResponse', legacy)
  t.equal(legacy.choices[0]!.text, REPLY.slice(0, 8))
  t.equal(legacy.choices[0]!.finish_reason, 'length')
})

t.test('tools: a deterministic tool call for required, a named function and auto; text for none', async (t) => {
  const r = await client.chat.completions.create({ model: 'mock', messages: user('weather in Paris?'), tools: [weather, time], tool_choice: 'required' })
  assertSchema(t, 'CreateChatCompletionResponse', r)
  const choice = r.choices[0]!
  t.equal(choice.finish_reason, 'tool_calls')
  t.equal(choice.message.content, null)
  t.equal(choice.message.tool_calls!.length, 1)
  const call = choice.message.tool_calls![0]!
  t.equal(call.id, 'call_mock_1')
  t.equal(call.type, 'function')
  t.ok(call.type === 'function' && call.function.name === 'get_weather', 'the first tool')
  t.same(call.type === 'function' && JSON.parse(call.function.arguments), WEATHER_ARGS, 'required properties, placeholders by type')
  t.ok(r.usage!.completion_tokens > 0)

  const named = await client.chat.completions.create({
    model: 'mock', messages: user('time?'), tools: [weather, time], tool_choice: { type: 'function', function: { name: 'get_time' } },
  })
  const namedCall = named.choices[0]!.message.tool_calls![0]!
  t.ok(namedCall.type === 'function' && namedCall.function.name === 'get_time', 'the named tool')
  t.same(namedCall.type === 'function' && JSON.parse(namedCall.function.arguments), { zone: 'mock' })

  const auto = await client.chat.completions.create({ model: 'mock', messages: user('weather?'), tools: [weather] })
  t.equal(auto.choices[0]!.finish_reason, 'tool_calls', 'tool_choice defaults to auto: the user asked, the tool is called')

  const none = await client.chat.completions.create({ model: 'mock', messages: user('weather?'), tools: [weather], tool_choice: 'none' })
  t.equal(none.choices[0]!.finish_reason, 'stop')
  t.equal(typeof none.choices[0]!.message.content, 'string')
  t.notOk(none.choices[0]!.message.tool_calls)

  const twice = await client.chat.completions.create({ model: 'mock', messages: user('weather?'), tools: [weather], tool_choice: 'required', n: 2 })
  t.same(twice.choices.map((c) => c.message.tool_calls![0]!.id), ['call_mock_1', 'call_mock_2'], 'distinct ids per choice')

  const unknown = await client.chat.completions.create({
    model: 'mock', messages: user('x'), tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } },
  }).catch((e: unknown) => e)
  t.ok(unknown instanceof OpenAI.BadRequestError, 'naming a function that is not in tools is a 400')
  t.equal((unknown as BadRequestError).param, 'tool_choice')
})

t.test('a full tool-calling round trip: call, tool result, text answer', async (t) => {
  const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: 'You can look up weather.' }, ...user('weather in Paris?')]
  const first = await client.chat.completions.create({ model: 'mock', messages, tools: [weather] })
  const call = first.choices[0]!.message.tool_calls![0]!
  t.ok(call.type === 'function')
  if (call.type !== 'function') return
  const args = JSON.parse(call.function.arguments) as typeof WEATHER_ARGS
  messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ city: args.city, temp: 21 }) })

  const second = await client.chat.completions.create({ model: 'mock', messages, tools: [weather] })
  assertSchema(t, 'CreateChatCompletionResponse', second)
  t.equal(second.choices[0]!.finish_reason, 'stop', 'after the tool result, auto answers in text')
  t.ok(second.choices[0]!.message.content!.length > 0)
  t.notOk(second.choices[0]!.message.tool_calls)

  // The user asks again: a new call, with an id not used earlier in the conversation.
  messages.push(second.choices[0]!.message, ...user('and tomorrow?'))
  const third = await client.chat.completions.create({ model: 'mock', messages, tools: [weather] })
  t.equal(third.choices[0]!.message.tool_calls![0]!.id, 'call_mock_2')

  // The client's own tool loop drives the same exchange to a text answer.
  let ran = 0
  const runner = client.chat.completions.runTools({
    model: 'mock',
    messages: user('weather in Paris?'),
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather', description: 'Current weather in a city', parameters: weather.type === 'function' ? weather.function.parameters! : {},
        function: (a: typeof WEATHER_ARGS) => { ran++; return { city: a.city, temp: 21 } },
        parse: JSON.parse,
      },
    }],
  })
  const content = await runner.finalContent()
  t.equal(ran, 1, 'runTools ran the tool once')
  t.equal(content, 'This is a mock response from Switchyard.')
})

t.test('streamed tool calls: id, type and name first, then the arguments in pieces', async (t) => {
  const stream = await client.chat.completions.create({
    model: 'mock', messages: user('weather?'), tools: [weather], tool_choice: 'required', stream: true, stream_options: { include_usage: true },
  })
  const chunks = await collect(stream, t)
  const deltas = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta.tool_calls ?? []))
  t.ok(deltas.length > 2, 'arguments arrive in several pieces')
  t.match(deltas[0], { index: 0, id: 'call_mock_1', type: 'function', function: { name: 'get_weather', arguments: '' } })
  t.ok(deltas.slice(1).every((d) => d.index === 0 && d.id === undefined && d.function?.name === undefined), 'later pieces carry only arguments')
  t.same(JSON.parse(deltas.map((d) => d.function?.arguments ?? '').join('')), WEATHER_ARGS)
  t.equal(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, 'tool_calls')
  t.ok(chunks.at(-1)!.usage!.completion_tokens > 0)

  // The client's stream helper assembles the same call.
  const helper = client.chat.completions.stream({ model: 'mock', messages: user('weather?'), tools: [weather], tool_choice: 'required' })
  const final = await helper.finalChatCompletion()
  const call = final.choices[0]!.message.tool_calls![0]!
  t.equal(call.id, 'call_mock_1')
  t.same(JSON.parse(call.function.arguments), WEATHER_ARGS)
})

t.test('LiteLLM testing flags fail the call as asked, on any model, without calling upstream', async (t) => {
  const before = up.requests.length
  const body = (extra: Record<string, unknown>) => ({ model: 'real', messages: user('hi'), ...extra })

  const rl = await client.chat.completions.create(body({ mock_testing_rate_limit_error: true }) as never).catch((e: unknown) => e)
  t.ok(rl instanceof OpenAI.RateLimitError, 'RateLimitError')
  t.equal((rl as APIError).status, 429)
  t.match((rl as Error).message, /This is a mock rate limit error/)

  const fb = await client.chat.completions.create(body({ mock_testing_fallbacks: true }) as never).catch((e: unknown) => e)
  t.ok(fb instanceof OpenAI.InternalServerError, 'InternalServerError')
  t.equal((fb as APIError).status, 500)

  const started = Date.now()
  const to = await client.chat.completions.create(body({ mock_timeout: true, timeout: 0.3 }) as never).catch((e: unknown) => e)
  const waited = Date.now() - started
  t.ok(to instanceof APIError, 'an API error')
  t.equal((to as APIError).status, 408)
  t.match((to as Error).message, /mock timeout/)
  t.ok(waited >= 280 && waited < 3000, `waited the request's timeout (${waited} ms)`)

  const off = await client.chat.completions.create(body({ mock_testing_rate_limit_error: false }) as never) as OpenAI.ChatCompletion
  t.equal(off.choices[0]!.message.content, 'Hello from the fake upstream.', 'a false flag is no flag')
  t.equal(up.requests.length, before + 1, 'only the unflagged call reached the upstream')
})

t.test('SDK: mock_timeout defaults to 1 s, honours timeout, and ends early on abort', async (t) => {
  let started = Date.now()
  const dflt = await completion({ model: 'mock/x', messages: user('hi'), mock_timeout: true }).catch((e: unknown) => e)
  t.ok(dflt instanceof Timeout, 'Timeout')
  t.ok(Date.now() - started >= 950, 'waited the 1 s default')

  started = Date.now()
  const short = await completion({ model: 'mock/x', messages: user('hi'), mock_timeout: true, timeout: 0.1 }).catch((e: unknown) => e)
  t.ok(short instanceof Timeout)
  t.ok(Date.now() - started < 900, 'the SDK timeout option is the wait')

  const ac = new AbortController()
  setTimeout(() => ac.abort(), 50)
  started = Date.now()
  const aborted = await completion({ model: 'mock/x', messages: user('hi'), mock_timeout: true, timeout: 30, signal: ac.signal }).catch((e: unknown) => e)
  t.ok(aborted instanceof GatewayError, 'a GatewayError')
  t.notOk(aborted instanceof Timeout, 'not reported as the timeout')
  t.equal((aborted as GatewayError).code, 'GW_ERR_CLIENT_CLOSED')
  t.ok(Date.now() - started < 2000, 'the abort ended the wait')
})
