/**
 * The bundled default preset (examples/default-preset/config.yaml) answers the official openai client with no
 * provider key at all: chat, a streamed chat, an embedding. Bodies are checked against OpenAI's spec, because the
 * preset's promise is "unchanged OpenAI client code runs against it".
 */
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'

const presetPath = fileURLToPath(new URL('../../examples/default-preset/config.yaml', import.meta.url))
// No provider keys in the environment: the preset must not need any.
const env: Record<string, string | undefined> = { PATH: process.env.PATH }
const gw = await startGateway(t, await readFile(presetPath, 'utf8'), { env })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-none', maxRetries: 0, timeout: 10_000 })

t.test('boots with no warnings', async (t) => {
  t.same(gw.logs.filter((l) => l.level === 'warn'), [], 'the bundled preset is clean')
  t.same((await client.models.list()).data.map((m) => m.id).sort(), ['gpt-4o-mini', 'mock', 'mock-embedding', 'text-embedding-3-small'])
})

t.test('chat completion', async (t) => {
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] })
    .withResponse()
  assertSchema(t, 'CreateChatCompletionResponse', data)
  t.equal(data.object, 'chat.completion')
  t.type(data.choices[0]!.message.content, 'string')
  t.ok(data.choices[0]!.message.content!.length > 0, 'non-empty reply')
  t.equal(data.choices[0]!.finish_reason, 'stop')
  t.ok(data.usage && data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0, 'usage reported')
  t.ok(response.headers.get('x-request-id'))
})

t.test('streamed chat, without and with include_usage', async (t) => {
  const plain = await client.chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'stream it' }], stream: true })
  let text = ''
  let n = 0
  for await (const chunk of plain) {
    n++
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `chunk ${n} valid`)
    t.notOk(chunk.usage, `chunk ${n} has no usage when not asked`)
    text += chunk.choices[0]?.delta.content ?? ''
  }
  t.ok(n > 1, 'streamed in several chunks')
  t.ok(text.length > 0, 'text streamed')

  const withUsage = await client.chat.completions.create({
    model: 'mock', messages: [{ role: 'user', content: 'stream it' }], stream: true, stream_options: { include_usage: true },
  })
  const chunks = []
  for await (const chunk of withUsage) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `usage stream chunk ${chunks.length + 1} valid`)
    chunks.push(chunk)
  }
  const last = chunks.at(-1)!
  t.same(last.choices, [], 'last chunk: empty choices')
  t.ok(last.usage && last.usage.total_tokens > 0, 'last chunk: usage')
  t.equal(chunks.slice(0, -1).map((c) => c.choices[0]?.delta.content ?? '').join(''), text, 'same text either way')
})

t.test('raw stream ends with data: [DONE]', async (t) => {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'x' }], stream: true }),
  })
  t.equal(res.status, 200)
  t.ok((await res.text()).endsWith('data: [DONE]\n\n'))
})

t.test('embedding, float and the client default (base64)', async (t) => {
  const float = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello', encoding_format: 'float' })
  assertSchema(t, 'CreateEmbeddingResponse', float)
  const v = float.data[0]!.embedding
  t.equal(v.length, 1536, 'text-embedding-3-small width')
  t.ok(v.every((x) => typeof x === 'number' && Number.isFinite(x)), 'numbers')

  const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' })
  const decoded = Array.from(b64.data[0]!.embedding)
  t.equal(decoded.length, 1536, 'base64 decodes to the same width')
  t.ok(decoded.every((x, i) => Math.abs(x - v[i]!) < 1e-6), 'base64 decodes to the float vector (float32 precision)')
  assertSchema(t, 'CreateEmbeddingResponse', { ...b64, data: b64.data.map((d) => ({ ...d, embedding: Array.from(d.embedding) })) })
})

t.test('embeddings ignore a stray stream: true and still answer with JSON', async (t) => {
  const res = await fetch(`${gw.url}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock', input: 'hello', stream: true }),
  })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /application\/json/)
  const body = await res.json()
  assertSchema(t, 'CreateEmbeddingResponse', body)
})

t.test('a model name with a slash is retrievable at /v1/models/{id}', async (t) => {
  const g = await startGateway(t, `
model_list:
  - model_name: team-a/fast
    litellm_params: { model: mock/fast }
`, { env })
  const c = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'sk-none', maxRetries: 0 })
  const m = await c.models.retrieve('team-a/fast')
  assertSchema(t, 'Model', m)
  t.equal(m.id, 'team-a/fast')
  const r = await c.chat.completions.create({ model: 'team-a/fast', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(r.object, 'chat.completion')
})
