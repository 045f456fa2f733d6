/**
 * Mistral end to end: the official `openai` client -> a real gateway configured with unchanged LiteLLM model_list
 * entries (`mistral/mistral-small-latest`, key from MISTRAL_API_KEY, an api_base without `/v1` as LiteLLM allows)
 * -> a fake Mistral server (node:http on 127.0.0.1) answering with the spec-checked replies of mistral-fixtures.ts.
 * The fake records what the gateway sent; each body is checked against Mistral's closed request schemas.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { mistral } from '../../providers/mistral/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertMistralSchema, chatResponse, magistralChunks, magistralResponse, sse, textChunks, toolChunks, toolResponse } from './mistral-fixtures.js'

interface Seen {
  path: string
  headers: http.IncomingHttpHeaders
  body: any
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

function chatReply(body: any, res: http.ServerResponse): void {
  switch (body.model) {
    case 'strict-model':
      return json(res, 422, { detail: [{ type: 'extra_forbidden', loc: ['body', 'messages', 0, 'name'], msg: 'Extra inputs are not permitted', input: 'x' }] })
    case 'limited':
      return json(res, 429, { message: 'Requests rate limit exceeded' }, { 'retry-after': '3' })
    case 'tiny':
      return json(res, 400, { object: 'error', message: 'Prompt contains 40005 tokens and 0 draft tokens, too large for model with 32768 maximum context length', type: 'invalid_request_message_error', param: null, code: null })
  }
  const magistral = body.model.startsWith('magistral')
  const tools = Array.isArray(body.tools)
  if (body.stream === true) {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.end(sse(magistral ? magistralChunks : tools ? toolChunks : textChunks))
    return
  }
  json(res, 200, magistral ? magistralResponse : tools ? toolResponse : chatResponse)
}

/** A deterministic vector per input. */
const vector = (s: string, dims: number) => Array.from({ length: dims }, (_, i) => (s.length + i) / 64)

const seen: Seen[] = []
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null')
    seen.push({ path: req.url ?? '', headers: req.headers, body })
    if (req.url === '/v1/chat/completions') return chatReply(body, res)
    if (req.url === '/v1/embeddings') {
      const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input]
      return json(res, 200, {
        id: 'emb-1', object: 'list', model: body.model,
        data: inputs.map((s, index) => ({ object: 'embedding', index, embedding: vector(s, body.output_dimension ?? 4) })),
        usage: { prompt_tokens: 15, completion_tokens: 0, total_tokens: 15 },
      })
    }
    json(res, 404, { detail: 'Not Found' })
  })
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => {
  server.close(() => resolve())
  server.closeAllConnections()
}))
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

const entry = (name: string, model: string) => `
  - model_name: ${name}
    litellm_params:
      model: mistral/${model}
      api_base: ${origin}`
const yaml = `model_list:${entry('small', 'mistral-small-latest')}${entry('magistral', 'magistral-medium-latest')}${entry('embed', 'codestral-embed')}${entry('strict', 'strict-model')}${entry('limited', 'limited')}${entry('tiny', 'tiny')}
`
const gw = await startGateway(t, yaml, { providers: [mistral], env: { MISTRAL_API_KEY: 'mistral-secret' } })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })
const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [{
  type: 'function',
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}]

t.test('chat', async (t) => {
  const res = await client.chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'Why is the sky blue?', name: 'alice' }], seed: 7 })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.equal(res.choices[0]!.message.content, chatResponse.choices[0]!.message.content)
  t.same(res.usage, chatResponse.usage)
  const call = seen.at(-1)!
  t.equal(call.path, '/v1/chat/completions', '/v1 added to the api_base, as LiteLLM does')
  t.equal(call.headers.authorization, 'Bearer mistral-secret', 'MISTRAL_API_KEY, not the client key')
  t.same(call.body, { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'Why is the sky blue?' }], random_seed: 7 })
  assertMistralSchema(t, 'ChatCompletionRequest', call.body)
})

t.test('streaming chat with tools: the client reassembles the tool call', async (t) => {
  const stream = client.chat.completions.stream({
    model: 'small', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'required', stream_options: { include_usage: true },
  })
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = []
  for await (const chunk of stream) {
    chunks.push(chunk)
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `chunk ${chunks.length} is valid`)
  }
  const final = await stream.finalChatCompletion()
  const call = final.choices[0]!.message.tool_calls![0]!
  t.match(call, { id: 'D681PevKs', type: 'function', function: { name: 'get_weather' } })
  if (call.type === 'function') t.same(JSON.parse(call.function.arguments), { city: 'Paris' })
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
  t.same(chunks.at(-1)!.choices, [], 'usage arrives in its own last chunk')
  t.same(chunks.at(-1)!.usage, { prompt_tokens: 82, completion_tokens: 21, total_tokens: 103 })

  const sent = seen.at(-1)!
  t.equal(sent.body.stream, true)
  t.equal(sent.body.tool_choice, 'any', "'required' is Mistral's 'any'")
  t.notOk('stream_options' in sent.body, 'no stream_options: not in Mistral\'s request')
  assertMistralSchema(t, 'ChatCompletionRequest', sent.body)
})

t.test('Magistral thinking arrives as reasoning_content, streamed or not', async (t) => {
  const res = await client.chat.completions.create({ model: 'magistral', messages: [{ role: 'user', content: '6*7?' }], reasoning_effort: 'high' })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.equal(res.choices[0]!.message.content, '42')
  t.equal((res.choices[0]!.message as unknown as { reasoning_content?: string }).reasoning_content, 'Six times seven is 42.')
  t.equal(seen.at(-1)!.body.prompt_mode, 'reasoning')

  const stream = await client.chat.completions.create({ model: 'magistral', messages: [{ role: 'user', content: '6*7?' }], stream: true })
  let content = ''
  let reasoning = ''
  for await (const chunk of stream) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk)
    const d = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined
    content += d?.content ?? ''
    reasoning += d?.reasoning_content ?? ''
  }
  t.equal(content, '42')
  t.equal(reasoning, 'Six times seven.')
})

t.test('embeddings: dimensions is output_dimension', async (t) => {
  const res = await client.embeddings.create({ model: 'embed', input: ['Embed this sentence.', 'As well as this one.'], dimensions: 3 })
  assertSchema(t, 'CreateEmbeddingResponse', res)
  t.same(res.data.map((d) => d.embedding), [vector('Embed this sentence.', 3), vector('As well as this one.', 3)], 'values survive the base64 the client asked for')
  t.same(res.usage, { prompt_tokens: 15, total_tokens: 15 })
  const call = seen.at(-1)!
  t.equal(call.path, '/v1/embeddings')
  t.same(call.body, { model: 'codestral-embed', input: ['Embed this sentence.', 'As well as this one.'], output_dimension: 3 })
  assertMistralSchema(t, 'EmbeddingRequest', call.body)
})

t.test('upstream errors reach the client mapped', async (t) => {
  const msg = [{ role: 'user' as const, content: 'hi' }]
  const unprocessable = await client.chat.completions.create({ model: 'strict', messages: msg }).catch((e: unknown) => e)
  t.ok(unprocessable instanceof OpenAI.UnprocessableEntityError, '422')
  t.match(unprocessable, { status: 422, message: /body\.messages\.0\.name: Extra inputs are not permitted/ })

  const limited = await client.chat.completions.create({ model: 'limited', messages: msg }).catch((e: unknown) => e)
  t.ok(limited instanceof OpenAI.RateLimitError, '429')
  t.equal((limited as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after'), '3', 'retry-after passed on')

  const tiny = await client.chat.completions.create({ model: 'tiny', messages: msg }).catch((e: unknown) => e)
  t.ok(tiny instanceof OpenAI.BadRequestError, 'context window: 400')
  t.match(tiny, { status: 400, code: 'context_length_exceeded', message: /maximum context length/ })

  const before = seen.length
  await t.rejects(client.chat.completions.create({ model: 'small', messages: msg, logprobs: true }),
    { constructor: OpenAI.BadRequestError, status: 400, message: /does not support parameters: logprobs/ })
  t.equal(seen.length, before, 'nothing sent for a refused param')
})
