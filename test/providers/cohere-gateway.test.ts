/**
 * Cohere end to end: the official `openai` client -> a real gateway configured with unchanged LiteLLM model_list
 * entries (`cohere/...`, `cohere_chat/...`) -> a fake Cohere v2 API on 127.0.0.1 (a real node:http server on port
 * 0, answering /v2/chat and /v2/embed from the recorded examples in ../shared/data/cohere/). The fake records
 * every request, so the tests assert what the gateway sent: path, Bearer key, and a body that validates against
 * the Cohere request schema (cohere-schema.ts).
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { cohere, cohere_chat } from '../../providers/cohere/index.js'
import { startGateway } from '../helpers/gateway.js'
import { chatRequestErrors, describeErrors, embedRequestErrors } from './cohere-schema.js'
import { EMBED_REPLY, fixture, sseText } from './cohere-fixtures.js'

interface Seen {
  method: string
  path: string
  headers: http.IncomingHttpHeaders
  body: any
}

interface Reply {
  status: number
  body: unknown
  headers?: Record<string, string>
}

/**
 * The fake Cohere API. Chat: the recorded tool reply when the request has tools, else the text reply; as SSE when
 * `stream` is true. Embed: the reference example. `queue` holds replies (errors, cut streams) used first.
 */
async function fakeCohere(t: Test) {
  const seen: Seen[] = []
  const queue: Array<Reply | ((res: http.ServerResponse) => void)> = []
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (raw += c))
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : null
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body })
      const next = queue.shift()
      if (typeof next === 'function') return next(res)
      if (next) {
        res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers })
        return res.end(JSON.stringify(next.body))
      }
      if (req.url === '/v2/embed') {
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify(EMBED_REPLY))
      }
      if (req.url !== '/v2/chat') {
        res.writeHead(404, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ message: '404 page not found' }))
      }
      const name = body.tools ? 'tools' : 'text'
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.end(sseText(fixture(`${name}.stream`).response.stream!) + 'data: [DONE]\n\n')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(fixture(name).response.body))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, queue }
}

/** LiteLLM model_list entries as a LiteLLM user writes them: bare host, full endpoint, key from the environment. */
function liteLLMConfig(origin: string): string {
  return `
model_list:
  - model_name: command
    litellm_params:
      model: cohere/command-a-03-2025
      api_base: ${origin}
  - model_name: command-r
    litellm_params:
      model: cohere_chat/command-r
      api_base: ${origin}/v1/chat
      api_key: co-deployment-key
  - model_name: embed
    litellm_params:
      model: cohere/embed-v4.0
      api_base: ${origin}/v2/embed
`
}

const ENV = { COHERE_API_KEY: 'co-secret-from-env' }
const TOOLS = fixture('tools.stream').request.tools as OpenAI.Chat.Completions.ChatCompletionTool[]

/** One fake and one gateway for the file (booting is most of a test's time); each test starts with a clean record. */
const shared = (async () => {
  const up = await fakeCohere(t)
  const gw = await startGateway(t, liteLLMConfig(up.origin), { providers: [cohere, cohere_chat], env: ENV })
  // maxRetries 0: the test asserts the error the client gets, not the SDK's own retries.
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 })
  return { up, gw, client }
})()

async function setup(_t: Test) {
  const s = await shared
  s.up.seen.length = 0
  s.up.queue.length = 0
  return s
}

function validBody(t: Test, body: unknown): void {
  const errors = chatRequestErrors(body)
  t.same(errors, [], 'the gateway sent a valid Cohere v2 chat request', { detail: describeErrors(errors) })
}

t.test('chat: the openai client gets a chat.completion from Cohere v2', async (t) => {
  const { up, client } = await setup(t)
  const res = await client.chat.completions.create({
    model: 'command',
    messages: [{ role: 'system', content: 'Be helpful.' }, { role: 'user', content: 'Tell me about LLMs' }],
    temperature: 0.3, max_tokens: 500, top_p: 0.8, stop: ['\n\n\n'],
  })
  t.match(res.choices[0]!.message.content, /^LLMs stand for Large Language Models/)
  t.equal(res.choices[0]!.finish_reason, 'stop')
  t.equal(res.model, 'command-a-03-2025')
  t.match(res.usage, { prompt_tokens: 71, completion_tokens: 418, total_tokens: 489 })
  t.equal(up.seen.length, 1)
  const s = up.seen[0]!
  t.equal(s.method, 'POST')
  t.equal(s.path, '/v2/chat')
  t.equal(s.headers.authorization, 'Bearer co-secret-from-env', 'key from COHERE_API_KEY')
  t.match(s.headers['content-type'], /^application\/json/)
  t.same(s.body, {
    model: 'command-a-03-2025',
    messages: [{ role: 'system', content: 'Be helpful.' }, { role: 'user', content: 'Tell me about LLMs' }],
    temperature: 0.3, max_tokens: 500, p: 0.8, stop_sequences: ['\n\n\n'],
  })
  validBody(t, s.body)
})

t.test('streaming chat with tools: the client reassembles the tool calls', async (t) => {
  const { up, client } = await setup(t)
  const stream = client.chat.completions.stream({
    model: 'command',
    messages: [{ role: 'user', content: fixture('tools.stream').request.messages[0]!.content as string }],
    tools: TOOLS, tool_choice: 'required', stream_options: { include_usage: true },
  })
  let chunks = 0
  stream.on('chunk', () => chunks++)
  const done = await stream.finalChatCompletion()
  const msg = done.choices[0]!.message
  t.equal(done.choices[0]!.finish_reason, 'tool_calls')
  t.same(msg.tool_calls!.map((c) => c.type === 'function' ? [c.id, c.function.name, JSON.parse(c.function.arguments)] : null), [
    ['query_daily_sales_report_j3f0adww9pmr', 'query_daily_sales_report', { day: '2023-09-29' }],
    ['query_product_catalog_c66nf11r6s8g', 'query_product_catalog', { category: 'Electronics' }],
  ])
  t.match(done.usage, { prompt_tokens: 1589, completion_tokens: 135, total_tokens: 1724 }, 'usage chunk from message-end')
  t.ok(chunks > 30, `streamed chunk by chunk (${chunks} chunks)`)
  const s = up.seen[0]!
  t.equal(s.path, '/v2/chat')
  t.equal(s.body.stream, true)
  t.equal(s.body.tool_choice, 'REQUIRED')
  t.notOk('stream_options' in s.body, 'stream_options is the gateway\'s, not sent')
  t.same(s.body.tools, TOOLS)
  validBody(t, s.body)

  // The next turn: the assistant's tool calls and the tool results go back in Cohere's shape.
  await client.chat.completions.create({
    model: 'command',
    messages: [
      { role: 'user', content: 'sales?' },
      { role: 'assistant', content: null, tool_calls: msg.tool_calls! },
      { role: 'tool', tool_call_id: 'query_daily_sales_report_j3f0adww9pmr', content: '{"total": 10}' },
      { role: 'tool', tool_call_id: 'query_product_catalog_c66nf11r6s8g', content: '{"items": []}' },
    ],
    tools: TOOLS,
  })
  const second = up.seen[1]!.body
  t.same(second.messages[1], { role: 'assistant', tool_calls: msg.tool_calls!.map((c) => ({ id: c.id, type: 'function', function: (c as { function: unknown }).function })) })
  t.same(second.messages[2], { role: 'tool', tool_call_id: 'query_daily_sales_report_j3f0adww9pmr', content: '{"total": 10}' })
  validBody(t, second)
})

t.test('cohere_chat/ with a LiteLLM full-endpoint api_base and its own key; plain streaming text', async (t) => {
  const { up, client } = await setup(t)
  const stream = await client.chat.completions.create({ model: 'command-r', messages: [{ role: 'user', content: 'Tell me about LLMs' }], stream: true })
  let text = ''
  let finish: string | null = null
  for await (const c of stream) {
    text += c.choices[0]?.delta.content ?? ''
    finish = c.choices[0]?.finish_reason ?? finish
  }
  t.equal(text, 'LLMs stand for Large Language Models, which are a type of neural network model specialized in processing and generating human language.')
  t.equal(finish, 'stop')
  t.equal(up.seen[0]!.path, '/v2/chat', '".../v1/chat" as api_base still reaches /v2/chat')
  t.equal(up.seen[0]!.headers.authorization, 'Bearer co-deployment-key', 'api_key in litellm_params wins over the environment')
  t.equal(up.seen[0]!.body.model, 'command-r')
})

t.test('embeddings: Cohere floats reach the client (which asks for base64) intact', async (t) => {
  const { up, client } = await setup(t)
  const res = await client.embeddings.create({ model: 'embed', input: ['hello', 'goodbye'] })
  t.equal(res.data.length, 2)
  for (let i = 0; i < 2; i++) {
    const want = Array.from(new Float32Array(EMBED_REPLY.embeddings.float[i]!))
    t.same(res.data[i]!.embedding, want, `vector ${i}, through base64 as the SDK decodes it`)
  }
  t.match(res.usage, { prompt_tokens: 2, total_tokens: 2 })
  const s = up.seen[0]!
  t.equal(s.path, '/v2/embed')
  t.equal(s.headers.authorization, 'Bearer co-secret-from-env')
  t.same(s.body, { model: 'embed-v4.0', texts: ['hello', 'goodbye'], input_type: 'search_document', embedding_types: ['float'] })
  t.same(embedRequestErrors(s.body), [], 'a valid Cohere v2 embed request')
})

t.test('upstream errors reach the client with the right status and type', async (t) => {
  const { up, client } = await setup(t)
  const messages = [{ role: 'user' as const, content: 'hi' }]
  const cases: Array<{ reply: Reply; status: number; type: string; code?: string; message: RegExp; cls: new (...a: any[]) => Error }> = [
    { reply: { status: 400, body: { id: 'e', message: 'too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292.' } }, status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', message: /too many tokens/, cls: OpenAI.BadRequestError },
    { reply: { status: 401, body: { message: 'invalid api token' } }, status: 401, type: 'authentication_error', message: /invalid api token/, cls: OpenAI.AuthenticationError },
    { reply: { status: 404, body: { message: "model 'nope' not found" } }, status: 404, type: 'invalid_request_error', message: /not found/, cls: OpenAI.NotFoundError },
    { reply: { status: 429, body: { message: 'You are past the per minute request limit' }, headers: { 'retry-after': '3' } }, status: 429, type: 'rate_limit_error', message: /per minute/, cls: OpenAI.RateLimitError },
    { reply: { status: 503, body: { message: 'service unavailable' } }, status: 503, type: 'service_unavailable_error', message: /unavailable/, cls: OpenAI.InternalServerError },
  ]
  for (const c of cases) {
    up.queue.length = 0
    // Enough copies for any retry the gateway's default policy makes: each sees the same failure.
    for (let i = 0; i < 5; i++) up.queue.push(c.reply)
    const err = await client.chat.completions.create({ model: 'command', messages }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof c.cls, `${c.reply.status}: ${c.cls.name}`)
    const e = err as InstanceType<typeof OpenAI.APIError>
    t.equal(e.status, c.status, `${c.reply.status} -> ${c.status}`)
    t.equal((e.error as { type?: string }).type, c.type)
    if (c.code) t.equal(e.code, c.code)
    t.match(e.message, c.message, 'Cohere\'s message kept')
    t.notMatch(e.message, /co-secret-from-env/, 'the key never appears')
    if (c.status === 429) t.equal(e.headers?.get('retry-after'), '3', 'retry-after kept')
  }
  up.queue.length = 0

  // A failure reported inside the stream, after content began: an error event the SDK raises.
  up.queue.push((res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const events = fixture('text.stream').response.stream!.slice(0, 4)
    res.end(sseText([...events, { event: 'message-end', data: { type: 'message-end', delta: { finish_reason: 'ERROR', error: 'internal generation failure' } } }]))
  })
  const stream = await client.chat.completions.create({ model: 'command', messages, stream: true })
  let got = ''
  const err = await (async () => {
    for await (const c of stream) got += c.choices[0]?.delta.content ?? ''
  })().then(() => null, (e: unknown) => e)
  t.equal(got, 'LLMs', 'content before the failure arrived')
  t.ok(err instanceof OpenAI.APIError, 'the SDK raises the mid-stream error')
  t.match((err as Error).message, /internal generation failure/)
})
