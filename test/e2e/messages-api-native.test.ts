/**
 * POST /v1/messages end to end on an Anthropic deployment: the NATIVE path. The official `@anthropic-ai/sdk` client
 * talks to a real gateway whose unchanged LiteLLM entry (`model: anthropic/claude-...`, `api_base` pointing here)
 * reaches a fake Messages API on 127.0.0.1 answering from the recordings in ../shared/data/anthropic. The fake
 * records what it received, so the tests assert the native contract: the client's body arrives unchanged except
 * `model` (a `cache_control` block, `top_k`, the `anthropic-beta` header survive; no OpenAI-only field appears),
 * and the reply goes back as the fake sent it.
 *
 * Validation: the recordings predate fields the current spec lists as required (`container`, `cache_creation`,
 * `citations`), so replies and events passed through from them are checked LENIENTLY (the spec with every
 * `required` list removed: types and shapes checked, presence not; ../shared/data/README.md "Validation"), plus an
 * exact comparison with the recording. Bodies the gateway makes itself (errors) are checked strictly. What the fake
 * receives is checked strictly against CreateMessageParams.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Anthropic from '@anthropic-ai/sdk'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { startGateway } from '../helpers/gateway.js'
import { assertAnthropicSchema, anthropicValidator, EVENT_SCHEMAS } from '../helpers/anthropic-openapi.js'
import { admin, eventually, generateKey, MASTER } from './helpers.js'

const data = (f: string) => fileURLToPath(new URL(`../../../shared/data/anthropic/${f}`, import.meta.url))
const recorded = JSON.parse(readFileSync(data('messages.tool_use.recorded.json'), 'utf8')) as { interactions: Array<{ body: any; response: any }> }
const textSse = readFileSync(data('stream.text.sse'), 'utf8')
const toolSse = readFileSync(data('stream.tool_use.sse'), 'utf8')
const earlyErrorSse = readFileSync(data('stream.error.sse'), 'utf8')
const spec = JSON.parse(readFileSync(data('openapi.yaml'), 'utf8')) as { components: unknown }

/** The data lines of a recorded SSE text, parsed, pings left out (the SDK skips them). */
const sseEvents = (text: string): any[] => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6))).filter((e) => e.type !== 'ping')

// ---- lenient validation of pass-through bodies ---------------------------------------------------------------------

/** The schema tree with every `required` list dropped (a property named `required` goes too: harmless here). */
function withoutRequired(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutRequired)
  if (!node || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) if (!(k === 'required' && Array.isArray(v))) out[k] = withoutRequired(v)
  return out
}
const lenientAjv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
lenientAjv.addSchema({ $id: 'lenient', components: withoutRequired(spec.components) })
function assertLenient(t: Test, name: string, body: unknown, message: string): void {
  const v = lenientAjv.getSchema(`lenient#/components/schemas/${name}`) as ValidateFunction
  t.ok(v(body), message, { errors: JSON.stringify(v.errors?.slice(0, 4)) })
}
const createMessageParams = anthropicValidator('CreateMessageParams')

// ---- the fake Messages API -----------------------------------------------------------------------------------------

interface Seen { path: string; headers: http.IncomingHttpHeaders; body: any }
const seen: Seen[] = []
const COUNTED = 1234
const errorBody = (type: string, message: string) => JSON.stringify({ type: 'error', error: { type, message }, request_id: 'req_fake' })

/** message_start, some text, then an overloaded error: a failure after content, passed through as an event. */
const midStreamSse = [
  'event: message_start', `data: ${JSON.stringify(sseEvents(textSse)[0])}`, '',
  'event: content_block_start', 'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}', '',
  'event: content_block_delta', 'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Partial"}}', '',
  'event: error', 'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":null}', '', '',
].join('\n')

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
    if (req.url === '/v1/messages/count_tokens') return json(200, JSON.stringify({ input_tokens: COUNTED }))
    switch (body.model) {
      case 'claude-busy': return json(429, errorBody('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'), { 'retry-after': '9' })
      case 'claude-long': return json(400, errorBody('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'))
      case 'claude-flaky': return sse(earlyErrorSse)
      case 'claude-midstream': return sse(midStreamSse)
    }
    if (body.stream) return sse(body.tools ? toolSse : textSse)
    const answered = body.messages.some((m: any) => Array.isArray(m.content) && m.content.some((b: any) => b.type === 'tool_result'))
    return json(200, JSON.stringify(recorded.interactions[body.tools && !answered ? 0 : 1]!.response))
  })
})
await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => {
  fake.closeAllConnections()
  fake.close(() => resolve())
}))
const base = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`

const entry = (name: string, model: string) => `
  - model_name: ${name}
    litellm_params:
      model: anthropic/${model}
      api_base: ${base}
      api_key: sk-ant-deployment
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002`
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  num_retries: 0
  disable_cooldowns: true
model_list:${entry('claude', 'claude-opus-4-8')}${['claude-busy', 'claude-long', 'claude-flaky', 'claude-midstream'].map((m) => entry(m, m)).join('')}
`)
const clientWith = (apiKey: string) => new Anthropic({ baseURL: gw.url, apiKey, maxRetries: 0, timeout: 20_000 })
const client = clientWith(MASTER)

/** The last request the fake got: the deployment's credentials and version, a valid Messages body. */
function lastSent(t: Test, path = '/v1/messages'): Seen {
  const s = seen.at(-1)!
  t.equal(s.path, path, `POST ${path}`)
  t.equal(s.headers['x-api-key'], 'sk-ant-deployment', "the deployment's key, not the client's")
  t.equal(s.headers['anthropic-version'], '2023-06-01')
  t.notOk(s.headers.authorization, 'no Authorization header upstream')
  return s
}

/** Fields the OpenAI translation would add; none may appear on the native path. */
const OPENAI_ONLY = ['stream_options', 'max_completion_tokens', 'user', 'n', 'stop', 'response_format', 'parallel_tool_calls', 'functions', 'web_search_options']

const question = recorded.interactions[0]!.body.messages[0].content as string
const recordedTools = recorded.interactions[0]!.body.tools as Anthropic.Tool[]

t.test('plain: the body arrives unchanged except model; the reply is the recording, as sent', async (t) => {
  const params = {
    model: 'claude', max_tokens: 1000, top_k: 5, temperature: 0.3,
    system: [{ type: 'text' as const, text: 'You are a careful assistant.', cache_control: { type: 'ephemeral' as const } }],
    metadata: { user_id: 'user-7' },
    messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Say something', cache_control: { type: 'ephemeral' as const } }] }],
  }
  const msg = await client.messages.create(params, { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } })
  t.same(msg, recorded.interactions[1]!.response, 'the recorded reply, unchanged')
  assertLenient(t, 'Message', msg, 'a Message (lenient: the recording predates some required fields)')
  const s = lastSent(t)
  t.equal(s.headers['anthropic-beta'], 'prompt-caching-2024-07-31', 'anthropic-beta survives')
  t.same(s.body, { ...params, model: 'claude-opus-4-8' }, 'the client body, with only the deployment model swapped in')
  t.ok(createMessageParams(s.body), 'a valid CreateMessageParams upstream', { errors: JSON.stringify(createMessageParams.errors?.slice(0, 3)) })
  for (const k of OPENAI_ONLY) t.notOk(k in s.body, `no ${k}`)

  // The beta resource adds ?beta=true and sends `betas` as the header: the gateway serves that URL too.
  const beta = await client.beta.messages.create({ model: 'claude', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }], betas: ['token-efficient-tools-2025-02-19'] })
  t.equal(beta.id, recorded.interactions[1]!.response.id)
  t.equal(lastSent(t).headers['anthropic-beta'], 'token-efficient-tools-2025-02-19', 'betas -> anthropic-beta upstream')
})

t.test('streaming text: the recorded events pass through, the SDK assembles them', async (t) => {
  const events: any[] = []
  const stream = client.messages.stream({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] })
  stream.on('streamEvent', (ev) => void events.push(structuredClone(ev)))
  const final = await stream.finalMessage()
  t.same(events, sseEvents(textSse), 'every recorded event, in order, unchanged')
  for (const ev of events) assertLenient(t, EVENT_SCHEMAS[ev.type]!, ev, `${ev.type} is a valid ${EVENT_SCHEMAS[ev.type]} (lenient)`)
  t.equal((final.content[0] as Anthropic.TextBlock).text, 'Hello there!')
  t.match(final.usage, { input_tokens: 11, output_tokens: 6 }, "the upstream's usage")
  const s = lastSent(t)
  t.equal(s.body.stream, true)
  t.equal(s.headers.accept, 'text/event-stream')
  for (const k of OPENAI_ONLY) t.notOk(k in s.body, `no ${k}`)
})

t.test('tool_use round trip, plain: the recorded traffic both ways', async (t) => {
  const first = await client.messages.create({ model: 'claude', max_tokens: 1000, tools: recordedTools, messages: [{ role: 'user', content: question }] })
  t.same(first, recorded.interactions[0]!.response)
  t.equal(first.stop_reason, 'tool_use')
  t.match(first.usage, { input_tokens: 415, output_tokens: 76 })
  t.same(lastSent(t).body.tools, recordedTools, 'tools exactly as given (custom type, $schema and all)')
  const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!
  const messages = recorded.interactions[1]!.body.messages as Anthropic.MessageParam[]
  t.equal((messages[2]!.content as any)[0].tool_use_id, use.id, 'the recording answers this tool_use')
  const second = await client.messages.create({ model: 'claude', max_tokens: 1000, tools: recordedTools, messages })
  t.same(second, recorded.interactions[1]!.response)
  t.equal(second.stop_reason, 'end_turn')
  const s = lastSent(t)
  t.same(s.body.messages, messages, 'the tool_use and tool_result turns unchanged')
  t.ok(createMessageParams(s.body), 'a valid CreateMessageParams', { errors: JSON.stringify(createMessageParams.errors?.slice(0, 3)) })
})

t.test('tool_use, streaming: input_json_delta passed through and joined by the SDK', async (t) => {
  const events: any[] = []
  const stream = client.messages.stream({ model: 'claude', max_tokens: 500, tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } }], messages: [{ role: 'user', content: 'Weather in Paris?' }] })
  stream.on('streamEvent', (ev) => void events.push(structuredClone(ev)))
  const final = await stream.finalMessage()
  t.same(events, sseEvents(toolSse), 'the recorded events, unchanged')
  t.equal(final.stop_reason, 'tool_use')
  t.match(final.content[1], { type: 'tool_use', id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', name: 'get_weather', input: { location: 'Paris' } })
  t.match(final.usage, { input_tokens: 377, output_tokens: 65 })
})

t.test('count_tokens: the deployment answers; the body goes up without max_tokens', async (t) => {
  const r = await client.messages.countTokens({ model: 'claude', system: 'Be brief.', tools: recordedTools, messages: [{ role: 'user', content: question }] })
  t.same(r, { input_tokens: COUNTED }, "the fake's count, as is")
  assertAnthropicSchema(t, 'CountMessageTokensResponse', r)
  const s = lastSent(t, '/v1/messages/count_tokens')
  t.same(s.body, { model: 'claude-opus-4-8', system: 'Be brief.', tools: recordedTools, messages: [{ role: 'user', content: question }] }, 'the body with the deployment model, nothing added')
  t.notOk('max_tokens' in s.body, 'no max_tokens (count_tokens refuses it)')
  t.notOk('stream' in s.body, 'no stream')
})

t.test('errors: upstream 429 and 400 mapped, an early error event is an HTTP error, a late one an event', async (t) => {
  const busy = await client.messages.create({ model: 'claude-busy', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
  t.ok(busy instanceof Anthropic.RateLimitError, 'a RateLimitError')
  const b = busy as InstanceType<typeof Anthropic.RateLimitError>
  t.equal(b.type, 'rate_limit_error')
  t.equal(b.headers?.get('retry-after'), '9', 'retry-after passed on')
  assertAnthropicSchema(t, 'ErrorResponse', b.error, 'a valid ErrorResponse')
  t.match(b.apiMessage, /rate limit/)
  t.notMatch(JSON.stringify(b.error), /sk-ant-/, 'no key in the body')

  const long = await client.messages.create({ model: 'claude-long', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
  t.ok(long instanceof Anthropic.BadRequestError, 'a BadRequestError')
  t.equal((long as InstanceType<typeof Anthropic.APIError>).type, 'invalid_request_error')
  t.match((long as InstanceType<typeof Anthropic.APIError>).apiMessage, /prompt is too long/, "Anthropic's message kept")
  assertAnthropicSchema(t, 'ErrorResponse', (long as InstanceType<typeof Anthropic.APIError>).error)

  // message_start, then overloaded_error: nothing was delivered, so the client gets an HTTP error it can retry.
  const early = await client.messages.create({ model: 'claude-flaky', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
  t.ok(early instanceof Anthropic.APIError && (early as InstanceType<typeof Anthropic.APIError>).status! >= 500, `an HTTP 5xx (${(early as any)?.status})`)
  t.equal((early as InstanceType<typeof Anthropic.APIError>).type, 'overloaded_error', 'type overloaded_error')
  assertAnthropicSchema(t, 'ErrorResponse', (early as InstanceType<typeof Anthropic.APIError>).error)

  const events: any[] = []
  const stream = client.messages.stream({ model: 'claude-midstream', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
  stream.on('streamEvent', (ev) => void events.push(ev))
  const late = await stream.finalMessage().then(() => null, (e: unknown) => e)
  t.ok(late instanceof Anthropic.APIError, 'the SDK raised the error event')
  t.equal((late as InstanceType<typeof Anthropic.APIError>).type, 'overloaded_error')
  t.ok(events.some((e) => e.delta?.text === 'Partial'), 'after the content sent before it')

  const noMax = await client.messages.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] } as never).then(() => null, (e: unknown) => e)
  t.ok(noMax instanceof Anthropic.BadRequestError, 'missing max_tokens: 400 from the gateway, whatever the deployment')
  t.match((noMax as InstanceType<typeof Anthropic.APIError>).apiMessage, /max_tokens/)
  assertAnthropicSchema(t, 'ErrorResponse', (noMax as InstanceType<typeof Anthropic.APIError>).error)
})

t.test('native calls are priced and logged from the upstream usage (plain and stream)', async (t) => {
  const k = await generateKey(t, gw.url, {})
  const c = clientWith(k.key)
  await c.messages.create({ model: 'claude', max_tokens: 1000, tools: recordedTools, messages: [{ role: 'user', content: question }] })
  await c.messages.stream({ model: 'claude', max_tokens: 500, tools: recordedTools, messages: [{ role: 'user', content: 'Weather?' }] }).finalMessage()
  const rows = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${k.token}`)
    return Array.isArray(r.body) && r.body.length >= 2 ? r.body : undefined
  }, 10_000, 'two spend rows')
  const plain = rows.find((r: any) => r.prompt_tokens === 415)
  const streamedRow = rows.find((r: any) => r.prompt_tokens === 377)
  t.ok(plain, 'the plain call logged with the recorded input tokens', { rows: JSON.stringify(rows.map((r: any) => [r.prompt_tokens, r.completion_tokens])) })
  t.ok(streamedRow, 'the stream logged with message_start input tokens')
  t.equal(plain?.completion_tokens, 76)
  t.equal(streamedRow?.completion_tokens, 65, "message_delta's output count")
  t.equal(plain?.call_type, 'anthropic_messages')
  t.ok(Math.abs(plain?.spend - (415 * 0.001 + 76 * 0.002)) < 1e-9, `plain priced exactly (${plain?.spend})`)
  t.ok(Math.abs(streamedRow?.spend - (377 * 0.001 + 65 * 0.002)) < 1e-9, `stream priced exactly (${streamedRow?.spend})`)
})
