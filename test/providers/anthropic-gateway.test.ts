/**
 * The Anthropic adapter through a running gateway: the official `openai` client talks to the gateway, whose
 * unchanged LiteLLM model_list entries (`model: anthropic/claude-...`, `api_base` pointing here) reach a fake
 * Messages API on 127.0.0.1 that answers from the recorded traffic in ../shared/data/anthropic. Every request the
 * fake receives is recorded, so the tests assert what the gateway sent (path, x-api-key, anthropic-version, a body
 * valid against the Messages API schema), not only what the client got back.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { anthropic } from '../../providers/anthropic/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'

const data = (f: string) => fileURLToPath(new URL(`../../../shared/data/anthropic/${f}`, import.meta.url))
const recorded = JSON.parse(readFileSync(data('messages.tool_use.recorded.json'), 'utf8')) as { interactions: Array<{ body: any; response: any }> }
const textSse = readFileSync(data('stream.text.sse'), 'utf8')
const toolSse = readFileSync(data('stream.tool_use.sse'), 'utf8')
const errorSse = readFileSync(data('stream.error.sse'), 'utf8')
const spec = JSON.parse(readFileSync(data('openapi.yaml'), 'utf8')) as { components: unknown }
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
ajv.addSchema({ $id: 'https://switchyard.test/anthropic.json', components: spec.components })
const createMessage = ajv.getSchema('https://switchyard.test/anthropic.json#/components/schemas/CreateMessageParams') as ValidateFunction

interface Seen { path: string; headers: http.IncomingHttpHeaders; body: any }
const seen: Seen[] = []
const anthropicError = (type: string, message: string) => JSON.stringify({ type: 'error', error: { type, message }, request_id: 'req_fake' })

/** The fake Messages API: the upstream model id picks the behaviour. */
const fake = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c) => { raw += c })
  req.on('end', () => {
    const body = JSON.parse(raw)
    seen.push({ path: req.url ?? '', headers: req.headers, body })
    const json = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(text)
    }
    const sse = (text: string) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
      res.end(text)
    }
    switch (body.model) {
      case 'claude-overloaded': return json(529, anthropicError('overloaded_error', 'Overloaded'))
      case 'claude-long': return json(400, anthropicError('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'))
      case 'claude-busy': return json(429, anthropicError('rate_limit_error', 'Number of request tokens has exceeded your rate limit'), { 'retry-after': '7' })
      case 'claude-nope': return json(404, anthropicError('not_found_error', 'model: claude-nope'))
      case 'claude-flaky': return sse(errorSse)
    }
    if (body.stream) return sse(body.tools ? toolSse : textSse)
    const answered = body.messages.some((m: any) => m.content.some((b: any) => b.type === 'tool_result'))
    // With tools and no result yet: the recorded tool_use turn; otherwise the recorded final text turn.
    return json(200, JSON.stringify(recorded.interactions[body.tools && !answered ? 0 : 1]!.response))
  })
})
await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => fake.close(() => resolve())))
const base = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`

const entry = (name: string, model: string, extra = '') => `
  - model_name: ${name}
    litellm_params:
      model: anthropic/${model}
      api_base: ${base}${extra}`
const gw = await startGateway(t, `
model_list:${entry('claude', 'claude-opus-4-8')}${['claude-overloaded', 'claude-long', 'claude-busy', 'claude-nope', 'claude-flaky'].map((m) => entry(m, m, '\n      api_key: sk-ant-config')).join('')}
`, { providers: [anthropic], env: { ANTHROPIC_API_KEY: 'sk-ant-env' } })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 30_000 })

const tools = [{ type: 'function' as const, function: { name: 'test_tool', description: 'A test tool', parameters: recorded.interactions[0]!.body.tools[0].input_schema } }]
const question = recorded.interactions[0]!.body.messages[0].content as string

function lastSent(t: Test): Seen {
  const s = seen.at(-1)!
  t.equal(s.path, '/v1/messages', 'POST /v1/messages')
  t.equal(s.headers['x-api-key'], 'sk-ant-env', 'ANTHROPIC_API_KEY as x-api-key')
  t.equal(s.headers['anthropic-version'], '2023-06-01')
  t.notOk(s.headers.authorization, 'the client\'s key is not forwarded')
  t.ok(createMessage(s.body), 'the body is a valid CreateMessageParams', { errors: JSON.stringify(createMessage.errors?.slice(0, 4)) })
  return s
}

t.test('chat with tools, then the tool result: the recorded round trip', async (t) => {
  const first = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: question }], tools, max_tokens: 1000 })
  assertSchema(t, 'CreateChatCompletionResponse', first)
  const call = first.choices[0]!.message.tool_calls![0]!
  t.match(call, { id: 'toolu_011LF2VkWpAfJnTKJcmh1PNf', type: 'function', function: { name: 'test_tool', arguments: '{"value":"test"}' } })
  t.equal(first.choices[0]!.finish_reason, 'tool_calls')
  t.match(first.usage, { prompt_tokens: 415, completion_tokens: 76, total_tokens: 491 })
  t.equal(first.model, 'claude-opus-4-8')
  const sent = lastSent(t)
  t.same(sent.body.tools, [{ name: 'test_tool', description: 'A test tool', input_schema: tools[0]!.function.parameters }])
  t.equal(sent.body.max_tokens, 1000)

  const second = await client.chat.completions.create({
    model: 'claude', tools, max_tokens: 1000,
    messages: [{ role: 'user', content: question }, first.choices[0]!.message as never, { role: 'tool', tool_call_id: call.id, content: 'Tool result' }],
  })
  t.equal(second.choices[0]!.message.content, recorded.interactions[1]!.response.content[0].text)
  t.equal(second.choices[0]!.finish_reason, 'stop')
  t.same(lastSent(t).body.messages.slice(1), recorded.interactions[1]!.body.messages.slice(1), 'tool_use and tool_result turns as Anthropic\'s SDK sent them')
})

t.test('streaming chat with tools: the client reassembles the tool call', async (t) => {
  const stream = client.chat.completions.stream({ model: 'claude', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, stream_options: { include_usage: true } })
  let chunks = 0
  stream.on('chunk', (c) => {
    chunks++
    assertSchema(t, 'CreateChatCompletionStreamResponse', c, `chunk ${chunks} is valid`)
  })
  const done = await stream.finalChatCompletion()
  const msg = done.choices[0]!.message
  t.equal(msg.content, 'I\'ll check the current weather in Paris for you.')
  t.match(msg.tool_calls, [{ id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', type: 'function', function: { name: 'get_weather', arguments: '{"location": "Paris"}' } }])
  t.equal(done.choices[0]!.finish_reason, 'tool_calls')
  t.match(done.usage, { prompt_tokens: 377, completion_tokens: 65, total_tokens: 442 }, 'usage chunk when asked for')
  t.ok(chunks >= 8, `chunk by chunk (${chunks})`)
  const sent = lastSent(t)
  t.equal(sent.body.stream, true)
  t.notOk('stream_options' in sent.body, 'stream_options is OpenAI\'s, not sent')
  t.equal(sent.body.max_tokens, 4096, 'LiteLLM\'s default max_tokens')
})

t.test('streaming text, and the legacy completions route through chat', async (t) => {
  let text = ''
  let usage = false
  for await (const c of await client.chat.completions.create({ model: 'claude', messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Hi' }], stream: true })) {
    text += c.choices[0]?.delta.content ?? ''
    usage ||= !!c.usage
  }
  t.equal(text, 'Hello there!')
  t.notOk(usage, 'no usage chunk unless asked for')
  t.same(lastSent(t).body.system, [{ type: 'text', text: 'Be kind.' }], 'the system prompt goes top-level')

  const done = await client.completions.create({ model: 'claude', prompt: 'Say something' })
  t.equal(done.choices[0]!.text, recorded.interactions[1]!.response.content[0].text)
  t.same(lastSent(t).body.messages, [{ role: 'user', content: [{ type: 'text', text: 'Say something' }] }])
})

t.test('upstream errors reach the client mapped', async (t) => {
  const cases: Array<{ model: string; status: number; type: string; code?: string | null; retryAfter?: string; stream?: boolean }> = [
    { model: 'claude-overloaded', status: 503, type: 'service_unavailable_error' },
    { model: 'claude-long', status: 400, type: 'invalid_request_error', code: 'context_length_exceeded' },
    { model: 'claude-busy', status: 429, type: 'rate_limit_error', retryAfter: '7' },
    { model: 'claude-nope', status: 404, type: 'invalid_request_error' },
    // message_start, then overloaded_error: the stream fails before its first chunk, so as an HTTP error.
    { model: 'claude-flaky', status: 503, type: 'service_unavailable_error', stream: true },
  ]
  for (const c of cases) {
    const before = seen.length
    let err: unknown
    try {
      await client.chat.completions.create({ model: c.model, messages: [{ role: 'user', content: 'hi' }], stream: c.stream ?? false })
    } catch (e) {
      err = e
    }
    t.ok(err instanceof OpenAI.APIError, `${c.model}: an APIError`)
    const e = err as InstanceType<typeof OpenAI.APIError>
    t.equal(e.status, c.status, `${c.model}: status ${c.status}`)
    t.equal(e.type, c.type, `${c.model}: type ${c.type}`)
    if (c.code !== undefined) t.equal(e.code, c.code, `${c.model}: code`)
    if (c.retryAfter) t.equal(e.headers?.get('retry-after'), c.retryAfter, `${c.model}: retry-after kept`)
    t.equal(seen.length, before + 1, `${c.model}: one upstream call`)
    t.equal(seen.at(-1)!.headers['x-api-key'], 'sk-ant-config', `${c.model}: the deployment's api_key`)
    t.notMatch(e.message, /sk-ant-/, `${c.model}: no key in the message`)
  }

  const before = seen.length
  const unsupported = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], seed: 1 }).catch((e: unknown) => e)
  t.ok(unsupported instanceof OpenAI.BadRequestError, 'an unsupported param: 400')
  t.match((unsupported as Error).message, /does not support parameters: seed/)
  t.equal(seen.length, before, 'nothing sent upstream')
})
