/**
 * Ollama end to end: the official `openai` client -> a real gateway configured with unchanged LiteLLM model_list
 * entries (`ollama_chat/llama3.2`, `ollama/embeddinggemma`) -> a fake Ollama server (node:http on 127.0.0.1) that
 * answers from the recorded examples in ../shared/data/ollama. The fake records what the gateway sent, so the
 * native request (path, body, `stream: false`, Bearer key) is checked too, against Ollama's own spec.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { ollama, ollama_chat } from '../../providers/ollama/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertOllamaSchema, fixture, fixtureText } from './ollama-fixtures.js'

interface Seen {
  path: string
  headers: http.IncomingHttpHeaders
  body: any
}

/** Write NDJSON lines, each cut in two writes, so the gateway's decoder meets lines split across socket reads. */
async function writeLines(res: http.ServerResponse, lines: string[]): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' })
  for (const line of lines) {
    const half = Math.floor(line.length / 2)
    res.write(line.slice(0, half))
    await new Promise((r) => setImmediate(r))
    res.write(line.slice(half) + '\n')
    await new Promise((r) => setImmediate(r))
  }
  res.end()
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

const ndjson = (name: string) => fixtureText(name).split('\n').filter((l) => l.trim())

/** A deterministic vector per input, as an embedding model would give. */
const vector = (s: string) => [s.length / 10, 0.25, -0.5, 0.125]

async function chatReply(body: any, res: http.ServerResponse): Promise<void> {
  switch (body.model) {
    case 'missing':
      return json(res, 404, { error: "model 'missing' not found" })
    case 'tiny-ctx':
      return json(res, 400, { error: 'the input length exceeds the context length' })
    case 'flaky':
      return writeLines(res, ['{"model":"flaky","message":{"role":"assistant","content":"The"},"done":false}', '{"error":"an error was encountered while running the model: unexpected EOF"}'])
  }
  const tools = Array.isArray(body.tools)
  if (body.stream === true) return writeLines(res, ndjson(tools ? 'chat.tools.stream.response.ndjson' : 'chat.stream.response.ndjson'))
  return json(res, 200, fixture(tools ? 'chat.tools.response.json' : 'chat.response.json'))
}

const seen: Seen[] = []
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null')
    seen.push({ path: req.url ?? '', headers: req.headers, body })
    if (req.url === '/api/chat') {
      chatReply(body, res).catch(() => res.destroy())
    } else if (req.url === '/api/embed') {
      const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input]
      json(res, 200, { model: body.model, embeddings: inputs.map(vector), total_duration: 14143917, load_duration: 1019500, prompt_eval_count: 8 })
    } else {
      json(res, 404, { error: `unknown path ${req.url}` })
    }
  })
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => {
  server.close(() => resolve())
  server.closeAllConnections()
}))
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

// Unchanged LiteLLM entries: `ollama/...` takes its base from OLLAMA_API_BASE, as LiteLLM does.
const yaml = `
model_list:
  - model_name: llama
    litellm_params:
      model: ollama_chat/llama3.2
      api_base: ${origin}
  - model_name: embed
    litellm_params:
      model: ollama/embeddinggemma
  - model_name: missing
    litellm_params:
      model: ollama_chat/missing
      api_base: ${origin}
  - model_name: tiny
    litellm_params:
      model: ollama_chat/tiny-ctx
      api_base: ${origin}
  - model_name: flaky
    litellm_params:
      model: ollama_chat/flaky
      api_base: ${origin}
  - model_name: llama-long
    litellm_params:
      model: ollama_chat/llama3.2
      api_base: ${origin}/api/chat
      num_ctx: 8192
      keep_alive: 10m
      temperature: 0.1
`
const gw = await startGateway(t, yaml, { providers: [ollama, ollama_chat], env: { OLLAMA_API_BASE: origin, OLLAMA_API_KEY: 'ollama-secret' } })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })

t.test('chat', async (t) => {
  const before = seen.length
  const res = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'why is the sky blue?' }], temperature: 0.3 })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.equal(res.choices[0]!.message.content, 'Hello! How are you today?')
  t.equal(res.choices[0]!.finish_reason, 'stop')
  t.equal(res.model, 'llama3.2')
  t.same(res.usage, { prompt_tokens: 26, completion_tokens: 298, total_tokens: 324 }, 'usage from prompt_eval_count / eval_count')

  t.equal(seen.length, before + 1, 'one upstream call')
  const call = seen.at(-1)!
  t.equal(call.path, '/api/chat')
  t.equal(call.headers.authorization, 'Bearer ollama-secret', 'OLLAMA_API_KEY sent as a Bearer token, not the client key')
  t.same(call.body, { model: 'llama3.2', messages: [{ role: 'user', content: 'why is the sky blue?' }], options: { temperature: 0.3 }, stream: false })
  assertOllamaSchema(t, 'ChatRequest', call.body)
})

t.test('streaming chat with tools: the client reassembles the tool call', async (t) => {
  const tools = fixture('chat.tools.stream.request.json').request.tools
  const stream = client.chat.completions.stream({
    model: 'llama',
    messages: [{ role: 'user', content: 'what is the weather in tokyo?' }],
    tools,
    stream_options: { include_usage: true },
  })
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = []
  for await (const chunk of stream) {
    chunks.push(chunk)
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `chunk ${chunks.length} is valid`)
  }
  const final = await stream.finalChatCompletion()
  const call = final.choices[0]!.message.tool_calls![0]!
  t.equal(call.type, 'function')
  if (call.type === 'function') {
    t.equal(call.function.name, 'get_weather')
    t.same(JSON.parse(call.function.arguments), { city: 'Tokyo' })
  }
  t.match(call.id, /^call_/)
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
  const last = chunks.at(-1)!
  t.same(last.choices, [], 'the last chunk is the usage-only one')
  t.same(last.usage, { prompt_tokens: 169, completion_tokens: 15, total_tokens: 184 })

  const sent = seen.at(-1)!
  t.equal(sent.body.stream, true)
  t.same(sent.body.tools, tools, 'tools sent as Ollama takes them')
  t.notOk('stream_options' in sent.body, 'no OpenAI-only fields upstream')
  assertOllamaSchema(t, 'ChatRequest', sent.body)
})

t.test('streaming chat without usage asked: no usage chunk', async (t) => {
  const stream = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'why is the sky blue?' }], stream: true })
  let text = ''
  let finish: string | null = null
  for await (const chunk of stream) {
    t.notOk(chunk.usage, 'no usage')
    text += chunk.choices[0]?.delta.content ?? ''
    finish = chunk.choices[0]?.finish_reason ?? finish
  }
  t.equal(text, 'The')
  t.equal(finish, 'stop')
})

t.test('embeddings (ollama/, base from OLLAMA_API_BASE, no key)', async (t) => {
  const res = await client.embeddings.create({ model: 'embed', input: ['Why is the sky blue?', 'Why is the grass green?'] })
  assertSchema(t, 'CreateEmbeddingResponse', res)
  t.equal(res.data.length, 2)
  t.same(res.data[0]!.embedding, vector('Why is the sky blue?'), 'float32-exact values survive the base64 the client asked for')
  t.same(res.usage, { prompt_tokens: 8, total_tokens: 8 })
  const call = seen.at(-1)!
  t.equal(call.path, '/api/embed')
  t.same(call.body, { model: 'embeddinggemma', input: ['Why is the sky blue?', 'Why is the grass green?'] })
  t.notOk(call.headers.authorization, 'LiteLLM reads no key variable for ollama/: none is sent')
  assertOllamaSchema(t, 'EmbedRequest', call.body)
})

t.test('deployment settings from litellm_params: num_ctx, keep_alive, a default temperature', async (t) => {
  await client.chat.completions.create({ model: 'llama-long', messages: [{ role: 'user', content: 'why is the sky blue?' }], max_tokens: 20 })
  const call = seen.at(-1)!
  t.equal(call.path, '/api/chat', 'an api_base ending in /api/chat, as LiteLLM accepts it')
  t.same(call.body, {
    model: 'llama3.2', messages: [{ role: 'user', content: 'why is the sky blue?' }],
    options: { temperature: 0.1, num_predict: 20, num_ctx: 8192 }, stream: false, keep_alive: '10m',
  })
  assertOllamaSchema(t, 'ChatRequest', call.body)
})

t.test('upstream errors reach the client mapped', async (t) => {
  await t.rejects(client.chat.completions.create({ model: 'missing', messages: [{ role: 'user', content: 'hi' }] }),
    { constructor: OpenAI.NotFoundError, status: 404, message: /model 'missing' not found/ }, 'unknown model: 404')
  const ctx = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
  t.ok(ctx instanceof OpenAI.BadRequestError, 'context window: 400')
  t.match(ctx, { status: 400, code: 'context_length_exceeded', message: /exceeds the context length/ })
  const before = seen.length
  await t.rejects(client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }], user: 'u-1' }),
    { constructor: OpenAI.BadRequestError, status: 400, message: /does not support parameters: user/ }, 'an unsupported param: 400, nothing sent')
  t.equal(seen.length, before, 'no upstream call for a refused param')
})

t.test('an error line mid-stream ends the stream with an error', async (t) => {
  const stream = await client.chat.completions.create({ model: 'flaky', messages: [{ role: 'user', content: 'hi' }], stream: true })
  let text = ''
  const err = await (async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
  })().catch((e: unknown) => e)
  t.equal(text, 'The', 'content before the error arrived')
  t.ok(err instanceof OpenAI.APIError, 'the client raises')
  t.match((err as Error).message, /unexpected EOF/)
})
