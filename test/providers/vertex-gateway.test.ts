/**
 * Vertex AI end to end: the official `openai` client -> a real gateway with unchanged LiteLLM model_list entries
 * (`vertex_ai/gemini-...`, `vertex_ai/claude-...`, `vertex_ai/text-embedding-...`; project, location and the
 * service-account key file from litellm_params or LiteLLM's environment variables) -> a fake Vertex AI
 * (node:http on 127.0.0.1, answering with recorded Google and Anthropic traffic) and a fake OAuth token endpoint
 * that verifies the service account's signed JWT. Checked: the token is fetched once and sent as a bearer token on
 * every call, the paths and bodies sent, what the client gets (chat, streams with tool calls reassembled,
 * embeddings, Claude), and a Vertex error as the client sees it.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { vertex_ai } from '../../providers/vertex/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertGeminiSchema, recording, REC, sseBody } from './google-fixtures.js'
import { serviceAccount, startTokenServer, writeJson } from './google-token-server.js'

const anthropicFile = (name: string) => readFileSync(fileURLToPath(new URL(`../../../shared/data/anthropic/${name}`, import.meta.url)), 'utf8')
const claudeAnswer = JSON.parse(anthropicFile('messages.tool_use.recorded.json')).interactions[0].response
const claudeStream = anthropicFile('stream.tool_use.sse')

const generate = recording(REC.generateVertex)[0]!
const textStream = recording(REC.streamVertex)[0]!
const toolStream = recording(REC.functionStream)[0]!
const embedding = recording(REC.embedVertex)[0]!

interface Seen {
  url: string
  headers: http.IncomingHttpHeaders
  body: any
}

const tokens = await startTokenServer(t)
const keyFile = writeJson(t, 'service-account.json', serviceAccount(tokens))

const GOOGLE = '/v1/projects/demo-project/locations/us-central1/publishers/google/models'
const ANTHROPIC = '/v1/projects/demo-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514'
const seen: Seen[] = []
const server = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c: string) => (raw += c))
  req.on('end', () => {
    const body = raw ? JSON.parse(raw) : null
    const url = req.url!
    seen.push({ url, headers: req.headers, body })
    const json = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' })
      res.end(JSON.stringify(payload))
    }
    const sse = (text: string) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(text)
    }
    if (url === `${GOOGLE}/gemini-2.5-flash:generateContent`) return json(200, generate.response.bodySegments[0])
    if (url === `${GOOGLE}/gemini-2.5-flash:streamGenerateContent?alt=sse`) return sse(sseBody(textStream.response.bodySegments))
    if (url === `${GOOGLE}/gemini-2.0-flash:streamGenerateContent?alt=sse`) return sse(sseBody(toolStream.response.bodySegments))
    if (url === `${GOOGLE}/text-embedding-004:predict`) {
      const values = embedding.response.bodySegments[0].predictions[0].embeddings.values as number[]
      return json(200, { predictions: body.instances.map((_i: unknown, n: number) => ({ embeddings: { values: values.slice(n, n + 4), statistics: { token_count: 2, truncated: false } } })) })
    }
    if (url === `${ANTHROPIC}:rawPredict`) return json(200, claudeAnswer)
    if (url === `${ANTHROPIC}:streamRawPredict`) return sse(claudeStream)
    json(404, { error: { code: 404, message: `Publisher Model \`${url.split('/models/')[1]?.split(':')[0]}\` was not found or your project does not have access to it.`, status: 'NOT_FOUND' } })
  })
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => {
  server.closeAllConnections()
  server.close(() => r())
}))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

// LiteLLM model_list entries as they are written for Vertex; api_base points the host at the fake. The Gemini
// entries take project, location and key file from VERTEXAI_PROJECT / VERTEXAI_LOCATION /
// GOOGLE_APPLICATION_CREDENTIALS; the Claude entry names its own, as litellm_params.
const yaml = `
pipeline: [router]
upstream: []
model_list:
  - model_name: vertex-gemini
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      api_base: ${base}
  - model_name: vertex-tools
    litellm_params:
      model: vertex_ai/gemini-2.0-flash
      api_base: ${base}
  - model_name: vertex-embed
    litellm_params:
      model: vertex_ai/text-embedding-004
      api_base: ${base}
  - model_name: vertex-missing
    litellm_params:
      model: vertex_ai/gemini-0.1-nope
      api_base: ${base}
  - model_name: vertex-claude
    litellm_params:
      model: vertex_ai/claude-sonnet-4@20250514
      vertex_project: demo-project
      vertex_location: us-east5
      vertex_credentials: ${keyFile}
      api_base: ${base}
`
const gw = await startGateway(t, yaml, {
  providers: [vertex_ai],
  env: { VERTEXAI_PROJECT: 'demo-project', VERTEXAI_LOCATION: 'us-central1', GOOGLE_APPLICATION_CREDENTIALS: keyFile },
})
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 10_000 })

function lastSeen(t: Test, path: string): Seen {
  const s = seen.at(-1)!
  t.equal(s.url, path, 'the Vertex method URL')
  t.equal(s.headers.authorization, 'Bearer ya29.token-1', 'the OAuth token from the service account')
  return s
}

t.test('Gemini on Vertex: chat', async (t) => {
  const res = await client.chat.completions.create({ model: 'vertex-gemini', messages: [{ role: 'user', content: 'why is the sky blue?' }], max_tokens: 200 })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.equal(res.choices[0]!.message.content, generate.response.bodySegments[0].candidates[0].content.parts[0].text)
  t.same(res.usage, { prompt_tokens: 6, completion_tokens: 197, total_tokens: 203, completion_tokens_details: { reasoning_tokens: 42 } })
  const s = lastSeen(t, `${GOOGLE}/gemini-2.5-flash:generateContent`)
  assertGeminiSchema(t, 'GenerateContentRequest', s.body)
  t.same(s.body.generationConfig, { maxOutputTokens: 200 })
})

t.test('Gemini on Vertex: streams, with tool calls reassembled by the client', async (t) => {
  const stream = await client.chat.completions.create({ model: 'vertex-gemini', messages: [{ role: 'user', content: 'why is the sky blue?' }], stream: true })
  let text = ''
  for await (const c of stream) text += c.choices[0]?.delta.content ?? ''
  t.equal(text, textStream.response.bodySegments.map((s: any) => s.candidates[0].content.parts[0].text).join(''))
  lastSeen(t, `${GOOGLE}/gemini-2.5-flash:streamGenerateContent?alt=sse`)

  const runner = client.chat.completions.stream({
    model: 'vertex-tools',
    messages: [{ role: 'user', content: 'what is the result of 100/2' }],
    tools: [{ type: 'function', function: { name: 'customDivide', description: 'Custom divide function', parameters: { type: 'object', properties: { numerator: { type: 'number' }, denominator: { type: 'number' } } } } }],
  })
  const final = await runner.finalChatCompletion()
  const call = final.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall
  t.equal(call.function.name, 'customDivide')
  t.same(JSON.parse(call.function.arguments), { numerator: 100, denominator: 2 })
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
  const s = lastSeen(t, `${GOOGLE}/gemini-2.0-flash:streamGenerateContent?alt=sse`)
  t.same(s.body.tools, toolStream.request.bodySegments[0].tools)
})

t.test('text embeddings through :predict', async (t) => {
  const res = await client.embeddings.create({ model: 'vertex-embed', input: ['Hello world', 'Hi'], dimensions: 4, encoding_format: 'float' })
  t.equal(res.data.length, 2)
  t.equal(res.data[1]!.embedding.length, 4)
  t.same(res.usage, { prompt_tokens: 4, total_tokens: 4 }, 'token counts summed')
  const s = lastSeen(t, `${GOOGLE}/text-embedding-004:predict`)
  t.same(s.body, { instances: [{ content: 'Hello world' }, { content: 'Hi' }], parameters: { outputDimensionality: 4 } })
})

t.test('Claude on Vertex: rawPredict and streamRawPredict', async (t) => {
  const res = await client.chat.completions.create({ model: 'vertex-claude', messages: [{ role: 'user', content: 'Use the test_tool with value "test"' }], max_tokens: 1000,
    tools: [{ type: 'function', function: { name: 'test_tool', description: 'A test tool', parameters: { type: 'object', properties: { value: { type: 'string' } }, required: ['value'] } } }] })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  const call = res.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall
  t.equal(call.function.name, 'test_tool')
  t.equal(res.choices[0]!.finish_reason, 'tool_calls')
  const s = lastSeen(t, `${ANTHROPIC}:rawPredict`)
  t.equal(s.body.anthropic_version, 'vertex-2023-10-16')
  t.notOk('model' in s.body, 'the model is in the URL only')
  t.notOk(s.headers['x-api-key'], 'no Anthropic key header: Google auth')

  const runner = client.chat.completions.stream({ model: 'vertex-claude', messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }] })
  const final = await runner.finalChatCompletion()
  const streamed = final.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall
  t.equal(streamed.function.name, 'get_weather')
  t.same(JSON.parse(streamed.function.arguments), { location: 'Paris' }, 'input_json_delta fragments reassembled by the client')
  t.equal(lastSeen(t, `${ANTHROPIC}:streamRawPredict`).body.stream, true)
})

t.test('a Vertex error as the client sees it; one token for every call', async (t) => {
  const err = await client.chat.completions.create({ model: 'vertex-missing', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.NotFoundError, '404 NOT_FOUND -> NotFoundError')
  t.match((err as Error).message, /Publisher Model `gemini-0.1-nope` was not found/)
  lastSeen(t, `${GOOGLE}/gemini-0.1-nope:generateContent`)
  t.equal(tokens.issued.length, 1, 'the token was fetched once for all calls')
  t.equal(tokens.refused.length, 0, 'every JWT verified')
  t.ok(seen.length >= 7 && seen.every((s) => s.headers.authorization === 'Bearer ya29.token-1'))
})
