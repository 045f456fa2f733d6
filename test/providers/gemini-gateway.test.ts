/**
 * Gemini end to end: the official `openai` client -> a real gateway configured with unchanged LiteLLM model_list
 * entries (`gemini/<model>`, key from GEMINI_API_KEY) -> a fake Gemini API (a node:http server on 127.0.0.1 that
 * answers with Google's recorded traffic, ../shared/data/gemini/recordings, and records what it was sent).
 * Checked: what the gateway sent (path, x-goog-api-key, no key in the URL, a spec-valid body), what the client got
 * (content, tool calls reassembled from stream deltas, usage, embeddings), and errors as the client sees them.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { gemini } from '../../providers/gemini/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertGeminiSchema, recording, REC, sseBody } from './google-fixtures.js'

const KEY = 'AIza-env-key-0123456789'

interface Seen {
  url: string
  headers: http.IncomingHttpHeaders
  body: any
}

const generate = recording(REC.generate)[0]!
const textStream = recording(REC.stream)[0]!
const toolStream = recording(REC.functionStream)
const notFound = recording(REC.notFound)[0]!

/** Deterministic vectors a float32 holds exactly, so the client's base64 decoding can be compared as is. */
const vector = (i: number) => [0.5 * (i + 1), -0.25, 0.125, 1]

const seen: Seen[] = []
let toolTurn = 0
const server = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c: string) => (raw += c))
  req.on('end', () => {
    const body = raw ? JSON.parse(raw) : null
    seen.push({ url: req.url!, headers: req.headers, body })
    const url = req.url!
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers })
      res.end(JSON.stringify(payload))
    }
    const sse = (segments: unknown[]) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(sseBody(segments))
    }
    if (url === '/v1beta/models/gemini-2.5-flash:generateContent') return json(200, generate.response.bodySegments[0])
    if (url === '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse') return sse(textStream.response.bodySegments)
    if (url === '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse') return sse(toolStream[toolTurn++ % 2]!.response.bodySegments)
    if (url.startsWith('/v1beta/models/custom-gemini-2.0-flash:')) {
      res.writeHead(notFound.response.statusCode, { 'content-type': notFound.response.headers['Content-Type']! })
      return res.end(JSON.stringify(notFound.response.bodySegments[0]))
    }
    if (url === '/v1beta/models/gemini-limited:generateContent') {
      return json(429, { error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } }, { 'retry-after': '7' })
    }
    if (url === '/v1beta/models/gemini-long:generateContent') {
      return json(400, { error: { code: 400, message: 'The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).', status: 'INVALID_ARGUMENT' } })
    }
    if (url === '/v1beta/models/gemini-blocked:generateContent') {
      return json(200, { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 }, responseId: 'b1' })
    }
    if (url === '/v1beta/models/text-embedding-004:batchEmbedContents') {
      return json(200, { embeddings: (body.requests as unknown[]).map((_r, i) => ({ values: vector(i) })) })
    }
    json(404, { error: { code: 404, message: `no route ${url}`, status: 'NOT_FOUND' } })
  })
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => {
  server.closeAllConnections()
  server.close(() => r())
}))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1beta`

const entry = (name: string, model: string) => `
  - model_name: ${name}
    litellm_params:
      model: gemini/${model}
      api_base: ${base}`
// The model_list entries are LiteLLM's, unchanged; the key comes from GEMINI_API_KEY as LiteLLM reads it. No retry
// chain: each client call is one upstream call, so the counts below are exact.
const yaml = `
pipeline: [router]
upstream: []
model_list:${entry('gemini-flash', 'gemini-2.5-flash')}${entry('gemini-tools', 'gemini-2.0-flash')}${entry('gemini-embed', 'text-embedding-004')}${entry('gemini-missing', 'custom-gemini-2.0-flash')}${entry('gemini-limited', 'gemini-limited')}${entry('gemini-long', 'gemini-long')}${entry('gemini-blocked', 'gemini-blocked')}
`
const gw = await startGateway(t, yaml, { providers: [gemini], env: { GEMINI_API_KEY: KEY } })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 10_000 })

/** The request the fake received last, with the checks every Gemini call must pass. */
function lastSeen(t: Test, path: string): Seen {
  const s = seen.at(-1)!
  t.equal(s.url, path, 'the Gemini method URL')
  t.equal(s.headers['x-goog-api-key'], KEY, 'the key from GEMINI_API_KEY, in x-goog-api-key')
  t.notOk(s.headers.authorization, 'the client key is not forwarded')
  t.notMatch(s.url, /key=|AIza/, 'no key in the URL')
  return s
}

t.test('chat: recorded generateContent answer, thoughts counted as reasoning tokens', async (t) => {
  const res = await client.chat.completions.create({ model: 'gemini-flash', messages: [{ role: 'user', content: 'why is the sky blue?' }], n: 1, max_tokens: 200 })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.equal(res.choices[0]!.message.content, generate.response.bodySegments[0].candidates[0].content.parts[0].text)
  t.equal(res.choices[0]!.finish_reason, 'length')
  t.equal(res.model, 'gemini-2.5-flash')
  t.same(res.usage, { prompt_tokens: 7, completion_tokens: 197, total_tokens: 204, completion_tokens_details: { reasoning_tokens: 48 } })
  const s = lastSeen(t, '/v1beta/models/gemini-2.5-flash:generateContent')
  t.same(s.body, { contents: [{ role: 'user', parts: [{ text: 'why is the sky blue?' }] }], generationConfig: { candidateCount: 1, maxOutputTokens: 200 } })
  assertGeminiSchema(t, 'GenerateContentRequest', s.body)
})

t.test('streaming chat: content deltas reassemble, usage arrives last when asked for', async (t) => {
  const stream = await client.chat.completions.create({ model: 'gemini-flash', messages: [{ role: 'user', content: 'why is the sky blue?' }], stream: true, stream_options: { include_usage: true } })
  let text = ''
  let usage: OpenAI.CompletionUsage | null | undefined
  const finishes: string[] = []
  for await (const chunk of stream) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk)
    text += chunk.choices[0]?.delta.content ?? ''
    if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason)
    if (chunk.usage) usage = chunk.usage
  }
  t.equal(text, textStream.response.bodySegments.map((s: any) => s.candidates[0].content.parts[0].text).join(''))
  t.same(finishes, ['length'])
  t.same(usage, { prompt_tokens: 7, completion_tokens: 198, total_tokens: 205, completion_tokens_details: { reasoning_tokens: 45 } })
  lastSeen(t, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse')
})

t.test('streaming chat with tools: the client reassembles the tool call; the result goes back as functionResponse', async (t) => {
  const tools: OpenAI.ChatCompletionTool[] = [{
    type: 'function',
    function: {
      name: 'customDivide', description: 'Custom divide function',
      parameters: { type: 'object', properties: { numerator: { type: 'number' }, denominator: { type: 'number' } } },
    },
  }]
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'what is the result of 100/2' }]
  const runner = client.chat.completions.stream({ model: 'gemini-tools', messages, tools, stream_options: { include_usage: true } })
  const final = await runner.finalChatCompletion()
  const call = final.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall
  t.equal(call.function.name, 'customDivide')
  t.same(JSON.parse(call.function.arguments), { numerator: 100, denominator: 2 })
  t.match(call.id, /^call_/)
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
  t.same(final.usage, { prompt_tokens: 21, completion_tokens: 6, total_tokens: 27 })
  const first = lastSeen(t, '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse')
  t.same(first.body.tools, toolStream[0]!.request.bodySegments[0].tools, 'the tools the recorded SDK sent')
  assertGeminiSchema(t, 'GenerateContentRequest', first.body)

  const followUp = await client.chat.completions.create({
    model: 'gemini-tools', stream: true, tools,
    messages: [...messages, final.choices[0]!.message as OpenAI.ChatCompletionMessageParam, { role: 'tool', tool_call_id: call.id, content: '50' }],
  })
  for await (const _c of followUp) { /* drain */ }
  const second = lastSeen(t, '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse')
  t.same(second.body.contents.slice(1), [
    { role: 'model', parts: [{ functionCall: { name: 'customDivide', args: { numerator: 100, denominator: 2 } } }] },
    { role: 'user', parts: [{ functionResponse: { name: 'customDivide', response: { content: '50' } } }] },
  ], 'the tool call and its result, named after the call')
  assertGeminiSchema(t, 'GenerateContentRequest', second.body)
})

t.test('embeddings: one batchEmbedContents call for the list, dimensions passed on', async (t) => {
  const res = await client.embeddings.create({ model: 'gemini-embed', input: ['alpha', 'beta'], dimensions: 4 })
  t.equal(res.data.length, 2)
  t.same(res.data.map((d) => d.embedding), [vector(0), vector(1)], 'vectors in input order (decoded from base64 by the client)')
  t.equal(res.model, 'text-embedding-004')
  const s = lastSeen(t, '/v1beta/models/text-embedding-004:batchEmbedContents')
  t.same(s.body.requests.map((r: any) => [r.content.parts[0].text, r.outputDimensionality, r.model]), [['alpha', 4, 'models/text-embedding-004'], ['beta', 4, 'models/text-embedding-004']])
  assertGeminiSchema(t, 'BatchEmbedContentsRequest', s.body)
})

t.test('upstream errors as the client sees them', async (t) => {
  const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })
  const missing = await ask('gemini-missing').catch((e: unknown) => e)
  t.ok(missing instanceof OpenAI.NotFoundError, 'recorded 404 -> NotFoundError')
  t.match((missing as Error).message, /models\/custom-gemini-2.0-flash is not found/, "Gemini's message kept")

  const limited = await ask('gemini-limited').catch((e: unknown) => e)
  t.ok(limited instanceof OpenAI.RateLimitError, '429 -> RateLimitError')
  t.equal((limited as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after'), '7', 'retry-after kept')

  const long = await ask('gemini-long').catch((e: unknown) => e) as InstanceType<typeof OpenAI.APIError>
  t.ok(long instanceof OpenAI.BadRequestError)
  t.equal(long.code, 'context_length_exceeded', 'token limit -> context window error')

  const blocked = await ask('gemini-blocked').catch((e: unknown) => e) as InstanceType<typeof OpenAI.APIError>
  t.ok(blocked instanceof OpenAI.BadRequestError)
  t.equal(blocked.code, 'content_policy_violation', 'a blocked prompt -> content policy error')

  const streamed = await client.chat.completions.create({ model: 'gemini-missing', messages: [{ role: 'user', content: 'hi' }], stream: true }).catch((e: unknown) => e)
  t.ok(streamed instanceof OpenAI.NotFoundError, 'a stream that fails before its first event: the HTTP error')
  for (const e of [missing, limited, long, blocked]) t.notMatch((e as Error).message, /AIza/, 'no key in any message')

  const unsupported = await client.chat.completions.create({ model: 'gemini-flash', messages: [{ role: 'user', content: 'hi' }], logit_bias: { 1: 1 } }).catch((e: unknown) => e) as InstanceType<typeof OpenAI.APIError>
  t.ok(unsupported instanceof OpenAI.BadRequestError)
  t.equal(unsupported.param, 'logit_bias', 'a param Gemini lacks: 400 naming it, nothing sent')
})
