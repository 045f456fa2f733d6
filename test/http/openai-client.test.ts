/**
 * The official `openai` client (v6) against a running gateway whose deployments point at a fake OpenAI upstream
 * (real node:http servers on 127.0.0.1). Every body the client receives is checked against OpenAI's own OpenAPI
 * spec, because "LiteLLM-compatible" means unchanged OpenAI SDK code works, not just "returns some JSON".
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { DEFAULT_REPLY, defaultEmbeddings, expectedEmbedding, fromBase64Floats, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'

const up = await startUpstream(t)
const yaml = `
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: text-embedding-3-small
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: gpt-3.5-turbo-instruct
    litellm_params:
      model: openai/gpt-3.5-turbo-instruct
      api_base: ${up.url}
      api_key: sk-upstream
`
const gw = await startGateway(t, yaml)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })

/** Raw SSE body -> the `data:` payloads, in order. */
function sseData(text: string): string[] {
  return text.split(/\r?\n\r?\n/).filter((b) => b.trim()).map((b) =>
    b.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n'))
}

t.test('chat completion', async (t) => {
  const before = up.requests.length
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }] })
    .withResponse()
  assertSchema(t, 'CreateChatCompletionResponse', data)
  t.equal(data.object, 'chat.completion')
  t.equal(data.choices[0]!.message.content, DEFAULT_REPLY)
  t.equal(data.choices[0]!.finish_reason, 'stop')
  t.ok(data.usage && data.usage.total_tokens > 0, 'usage passed through')
  t.match(response.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'x-request-id echoed')

  t.equal(up.requests.length, before + 1, 'one upstream call')
  const seen = up.requests.at(-1)!
  t.equal(seen.path, '/v1/chat/completions')
  t.equal(seen.body.model, 'gpt-4o-mini', 'provider prefix stripped')
  t.same(seen.body.messages, [{ role: 'user', content: 'Say hello' }])
  t.equal(seen.headers.authorization, 'Bearer sk-upstream', 'upstream key sent, not the client key')
  t.notOk(seen.body.stream, 'not streamed')
})

t.test('streamed chat without include_usage: chunks, no usage chunk, [DONE]', async (t) => {
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream please' }], stream: true })
    .withResponse()
  t.ok(response.headers.get('x-request-id'), 'x-request-id on a stream')
  t.match(response.headers.get('content-type'), /^text\/event-stream/)
  let text = ''
  let n = 0
  let valid = true
  for await (const chunk of stream) {
    n++
    valid = assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `chunk ${n} is a valid CreateChatCompletionStreamResponse`) && valid
    t.notOk(chunk.usage, `chunk ${n} carries no usage`)
    t.ok(chunk.choices.length > 0, `chunk ${n} has choices`)
    text += chunk.choices[0]?.delta.content ?? ''
  }
  t.ok(n >= 3, `several chunks (${n})`)
  t.equal(text, DEFAULT_REPLY, 'content reassembles')
  const seen = up.requests.at(-1)!
  t.equal(seen.body.stream, true)
  t.same(seen.body.stream_options, { include_usage: true }, 'the gateway still asks upstream for usage (cost tracking)')
})

t.test('streamed chat with include_usage: a final usage chunk with empty choices', async (t) => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Count tokens' }], stream: true, stream_options: { include_usage: true },
  })
  const chunks = []
  for await (const chunk of stream) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `chunk ${chunks.length + 1} valid`)
    chunks.push(chunk)
  }
  const last = chunks.at(-1)!
  t.same(last.choices, [], 'usage chunk has empty choices')
  t.ok(last.usage && last.usage.total_tokens === last.usage.prompt_tokens + last.usage.completion_tokens, 'usage totals add up')
  t.equal(chunks.filter((c) => c.usage).length, 1, 'exactly one chunk carries usage')
})

t.test('raw SSE: every event is a valid chunk and the stream ends with data: [DONE]', async (t) => {
  for (const includeUsage of [false, true]) {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-anything' },
      body: JSON.stringify({
        model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      }),
    })
    t.equal(res.status, 200)
    t.ok(res.headers.get('x-request-id'))
    const text = await res.text()
    t.ok(text.endsWith('data: [DONE]\n\n'), `last raw SSE line is data: [DONE] (include_usage=${includeUsage})`)
    const events = sseData(text)
    t.equal(events.at(-1), '[DONE]')
    t.equal(events.filter((e) => e === '[DONE]').length, 1, 'exactly one [DONE]')
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e))
    for (const [i, c] of chunks.entries()) assertSchema(t, 'CreateChatCompletionStreamResponse', c, `raw chunk ${i} valid`)
    const usageChunks = chunks.filter((c) => c.usage)
    t.equal(usageChunks.length, includeUsage ? 1 : 0, `usage chunks when include_usage=${includeUsage}`)
    if (!includeUsage) t.notOk(chunks.some((c) => 'usage' in c), 'no usage key at all when the client did not ask')
  }
})

t.test('embeddings, float', async (t) => {
  const { data, response } = await client.embeddings
    .create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float' })
    .withResponse()
  assertSchema(t, 'CreateEmbeddingResponse', data)
  t.ok(response.headers.get('x-request-id'))
  t.equal(data.data.length, 2)
  t.same(data.data[0]!.embedding, expectedEmbedding('alpha'), 'vector passed through exactly')
  t.same(data.data[1]!.embedding, expectedEmbedding('beta'))
  const seen = up.requests.at(-1)!
  t.equal(seen.path, '/v1/embeddings')
  t.equal(seen.body.model, 'text-embedding-3-small')
  t.equal(seen.body.encoding_format, 'float')
  t.equal(seen.headers.authorization, 'Bearer sk-upstream')
})

t.test('embeddings, the client default (base64)', async (t) => {
  // openai v6 asks for base64 when encoding_format is unset and decodes Float32 LE itself.
  const data = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'gamma' })
  t.equal(up.requests.at(-1)!.body.encoding_format, 'base64', 'client asked for base64, passed through')
  t.same(Array.from(data.data[0]!.embedding), expectedEmbedding('gamma'), 'decoded vector is exact')
  assertSchema(t, 'CreateEmbeddingResponse', { ...data, data: data.data.map((d) => ({ ...d, embedding: Array.from(d.embedding) })) })

  // The raw body: the spec documents only the float form, so check the base64 string decodes to it.
  const res = await fetch(`${gw.url}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input: 'gamma', encoding_format: 'base64' }),
  })
  t.equal(res.status, 200)
  const raw = await res.json() as { data: Array<{ embedding: unknown }> }
  t.type(raw.data[0]!.embedding, 'string', 'base64 string on the wire')
  t.same(fromBase64Floats(raw.data[0]!.embedding as string), expectedEmbedding('gamma'))
  assertSchema(t, 'CreateEmbeddingResponse', { ...raw, data: raw.data.map((d) => ({ ...d, embedding: fromBase64Floats(d.embedding as string) })) })
})

t.test('embeddings: base64 asked, upstream answers floats anyway -> the gateway encodes', async (t) => {
  // Some OpenAI-compatible hosts ignore encoding_format; the official SDK would then try to base64-decode an array.
  const floatsOnly: Behaviour = (ctx) =>
    defaultEmbeddings()({ ...ctx, record: { ...ctx.record, body: { ...ctx.record.body, encoding_format: 'float' } } })
  up.on('embeddings', floatsOnly)
  t.teardown(() => up.on('embeddings', defaultEmbeddings()))
  const data = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'delta' })
  t.equal(up.requests.at(-1)!.body.encoding_format, 'base64', 'upstream was asked for base64')
  t.same(Array.from(data.data[0]!.embedding), expectedEmbedding('delta'), 'client decodes the gateway-encoded vector exactly')
})

t.test('legacy completions', async (t) => {
  const { data, response } = await client.completions
    .create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say this is a test', max_tokens: 7 })
    .withResponse()
  assertSchema(t, 'CreateCompletionResponse', data)
  t.ok(response.headers.get('x-request-id'))
  t.equal(data.object, 'text_completion')
  t.equal(data.choices[0]!.text, ' This is indeed a test.')
  const seen = up.requests.at(-1)!
  t.equal(seen.path, '/v1/completions')
  t.equal(seen.body.model, 'gpt-3.5-turbo-instruct')
  t.equal(seen.body.prompt, 'Say this is a test')
  t.equal(seen.body.max_tokens, 7, 'params forwarded')
})

t.test('legacy completions, streamed', async (t) => {
  const stream = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say this is a test', stream: true })
  let text = ''
  let n = 0
  for await (const chunk of stream) {
    n++
    // The spec shares one schema between completion objects and stream chunks, but types finish_reason as a
    // non-null string; OpenAI's own streams send null until the last chunk. Check everything else.
    const asFinal = { ...chunk, choices: chunk.choices.map((c) => ({ ...c, finish_reason: c.finish_reason ?? 'stop' })) }
    assertSchema(t, 'CreateCompletionResponse', asFinal, `completion chunk ${n} valid`)
    t.equal(chunk.object, 'text_completion')
    t.notOk(chunk.usage, 'no usage chunk when not asked')
    text += chunk.choices[0]?.text ?? ''
  }
  t.ok(n > 2, 'several chunks')
  t.equal(text, ' This is indeed a test.')
  t.same(up.requests.at(-1)!.body.stream_options, { include_usage: true }, 'gateway asked upstream for usage')
})

t.test('a trusted incoming x-request-id is echoed', async (t) => {
  const { response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-request-id': 'trace-abc.123' } })
    .withResponse()
  t.equal(response.headers.get('x-request-id'), 'trace-abc.123')
})

t.test('models: list and retrieve', async (t) => {
  const upstreamCalls = up.requests.length
  const page = await client.models.list()
  const ids = page.data.map((m) => m.id).sort()
  t.same(ids, ['gpt-3.5-turbo-instruct', 'gpt-4o-mini', 'text-embedding-3-small'])
  const res = await fetch(`${gw.url}/v1/models`)
  t.ok(res.headers.get('x-request-id'))
  assertSchema(t, 'ListModelsResponse', await res.json())

  const { data: model, response } = await client.models.retrieve('gpt-4o-mini').withResponse()
  assertSchema(t, 'Model', model)
  t.equal(model.id, 'gpt-4o-mini')
  t.ok(response.headers.get('x-request-id'))
  t.equal(up.requests.length, upstreamCalls, 'models are served by the gateway, not fetched upstream')

  const err = await client.models.retrieve('no-such-model').catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.NotFoundError, 'unknown model id -> NotFoundError')
  assertSchema(t, 'ErrorResponse', { error: (err as InstanceType<typeof OpenAI.NotFoundError>).error })
})

t.test('an error body from the gateway validates as ErrorResponse', async (t) => {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
  })
  t.equal(res.status, 400, "an unknown model: 400, as LiteLLM answers")
  t.ok(res.headers.get('x-request-id'), 'errors carry x-request-id too')
  assertSchema(t, 'ErrorResponse', await res.json())
})

t.test('mock_response in the request body answers without calling the upstream (as LiteLLM allows)', async (t) => {
  const before = up.requests.length
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], mock_response: 'canned reply' }
  const r = await client.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming)
  assertSchema(t, 'CreateChatCompletionResponse', r)
  t.equal(r.choices[0]!.message.content, 'canned reply')
  const s = await client.chat.completions.create({ ...params, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming)
  let text = ''
  for await (const c of s) text += c.choices[0]?.delta?.content ?? ''
  t.equal(text, 'canned reply')
  t.equal(up.requests.length, before, 'the upstream saw nothing')
})
