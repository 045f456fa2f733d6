/**
 * Azure through the running gateway: the official `openai` client calls a gateway configured with unchanged LiteLLM
 * `model_list` entries (`azure/<deployment>` with api_base, api_key, api_version; Entra client credentials;
 * `azure_ai/<model>`), whose upstream is a fake Azure OpenAI on 127.0.0.1 (a real node:http server answering from
 * Microsoft's recorded samples, test/providers/fixtures/azure). Each request the gateway sends is recorded, so the
 * tests check the path, the api-version, the auth header and the body Azure received, not only the reply.
 *
 * The fake answers 401 as Azure does to a call without the right `api-key` (or Entra Bearer token), so a wrong
 * header cannot pass unnoticed.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import OpenAI, { toFile } from 'openai'
import { Agent } from 'undici'
import { azure, azure_ai } from '../../providers/azure/index.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { createDispatch } from '../../core/upstream/dispatch.js'
import { buildTarget } from '../../core/models.js'
import type { GatewayState } from '../../core/state.js'
import type { ChatChunk } from '../../core/openai/types.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { fromBase64Floats } from '../helpers/upstream.js'

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`./fixtures/azure/${name}`, import.meta.url)), 'utf8')

const AZURE_KEY = 'azure-key-123'
const AI_KEY = 'ai-key-456'
/** The word that makes the fake answer with Azure's content-filter 400. */
const FILTERED = 'trigger-the-content-filter'

interface Seen {
  path: string
  query: URLSearchParams
  headers: http.IncomingHttpHeaders
  body: any
}

function floatsToBase64(v: number[]): string {
  const f = new Float32Array(v)
  return Buffer.from(f.buffer).toString('base64')
}

/** A multipart body's fields, files as { filename, type, data }. */
async function formOf(raw: Buffer, type: string): Promise<Record<string, unknown>> {
  const fd = await new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': type }, body: raw }).formData()
  const out: Record<string, unknown> = {}
  for (const [name, value] of fd) {
    out[name] = typeof value === 'string' ? value : { filename: value.name, type: value.type, data: Buffer.from(await value.arrayBuffer()) }
  }
  return out
}

/** Deterministic "audio" for a speech input, so the bytes the client gets can be compared exactly. */
function speechBytes(input: string): Buffer {
  const out = Buffer.alloc(4096)
  for (let i = 0; i < out.length; i++) out[i] = (input.charCodeAt(i % input.length) * 31 + i) & 0xff
  out.write('ID3', 0, 'ascii')
  return out
}

/** A real WAV: 16-bit mono PCM at 8 kHz, 0.25 s of a 440 Hz tone. */
function makeWav(): Buffer {
  const rate = 8000
  const samples = rate / 4
  const b = Buffer.alloc(44 + samples * 2)
  b.write('RIFF', 0, 'ascii')
  b.writeUInt32LE(36 + samples * 2, 4)
  b.write('WAVEfmt ', 8, 'ascii')
  b.writeUInt32LE(16, 16)
  b.writeUInt16LE(1, 20) // PCM
  b.writeUInt16LE(1, 22) // mono
  b.writeUInt32LE(rate, 24)
  b.writeUInt32LE(rate * 2, 28) // byte rate
  b.writeUInt16LE(2, 32) // block align
  b.writeUInt16LE(16, 34) // bits per sample
  b.write('data', 36, 'ascii')
  b.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) b.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 8000), 44 + i * 2)
  return b
}

/** Fake Azure OpenAI + Azure AI + Entra token endpoint, one server. */
async function fakeAzure(t: Test) {
  const seen: Seen[] = []
  const tokens: URLSearchParams[] = []
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', async () => {
      const bytes = Buffer.concat(parts)
      const raw = bytes.toString('utf8')
      const u = new URL(req.url!, 'http://fake')
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', 'apim-request-id': 'fake-apim-id' })
        res.end(JSON.stringify(body))
      }
      if (u.pathname.endsWith('/oauth2/v2.0/token')) {
        const form = new URLSearchParams(raw)
        tokens.push(form)
        if (form.get('client_secret') !== 'gw-secret') return reply(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' })
        return reply(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: `entra-tok-${tokens.length}` })
      }
      const multipart = String(req.headers['content-type'] ?? '').startsWith('multipart/form-data')
      const body = multipart ? await formOf(bytes, String(req.headers['content-type'])) : raw ? JSON.parse(raw) : null
      seen.push({ path: u.pathname, query: u.searchParams, headers: req.headers, body })
      const isAI = !u.pathname.startsWith('/openai/')
      const authorized = isAI
        ? req.headers.authorization === `Bearer ${AI_KEY}`
        : req.headers['api-key'] === AZURE_KEY || req.headers['api-key'] === 'env-azure-key' || /^Bearer entra-tok-\d+$/.test(req.headers.authorization ?? '')
      if (!authorized) {
        return reply(401, { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint.' } })
      }
      if (u.pathname.endsWith('/embeddings')) {
        const emb = JSON.parse(fixture('embeddings.response.json'))
        if (body.encoding_format === 'base64') emb.data[0].embedding = floatsToBase64(emb.data[0].embedding)
        return reply(200, emb)
      }
      if (u.pathname.endsWith('/images/generations')) return reply(200, JSON.parse(fixture('images.response.json')))
      if (u.pathname.endsWith('/audio/transcriptions')) {
        if (body.response_format === 'text') {
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
          return res.end(`${JSON.parse(fixture('transcription.response.json')).text}\n`)
        }
        return reply(200, JSON.parse(fixture('transcription.response.json')))
      }
      if (u.pathname.endsWith('/audio/speech')) {
        res.writeHead(200, { 'content-type': 'audio/mpeg', 'transfer-encoding': 'chunked' })
        const audio = speechBytes(String(body.input))
        res.write(audio.subarray(0, 1000))
        return res.end(audio.subarray(1000))
      }
      if (!u.pathname.endsWith('/chat/completions')) return reply(404, { error: { code: '404', message: 'Resource not found' } })
      if (JSON.stringify(body.messages).includes(FILTERED)) return reply(400, JSON.parse(fixture('error.content_filter.json')))
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const file = body.tools ? 'stream.tool_calls.sse' : 'stream.blocked.sse'
        // Sent in a few uneven pieces, as a network delivers it: events split across reads.
        const text = fixture(file)
        for (let i = 0; i < text.length; i += 700) res.write(text.slice(i, i + 700))
        return res.end()
      }
      return reply(200, JSON.parse(fixture(body.tools ? 'chat.tool_calls.response.json' : 'chat.response.json')))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, tokens }
}

const az = await fakeAzure(t)
const yaml = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: ${az.base}
      api_key: ${AZURE_KEY}
      api_version: "2024-10-21"
  - model_name: text-embedding-3-small
    litellm_params:
      model: azure/my-embedding-deployment
      api_base: ${az.base}
      api_key: ${AZURE_KEY}
      api_version: "2024-10-21"
  - model_name: gpt-4o-entra
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: ${az.base}
      api_version: "2024-10-21"
      tenant_id: my-tenant
      client_id: my-client
      client_secret: os.environ/AZURE_CLIENT_SECRET
  - model_name: gpt-4o-v1
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: ${az.base}
      api_key: ${AZURE_KEY}
      api_version: v1
  - model_name: dall-e-3
    litellm_params:
      model: azure/my-dalle3
      api_base: ${az.base}
      api_key: ${AZURE_KEY}
      api_version: "2024-10-21"
  - model_name: whisper
    litellm_params:
      model: azure/my-whisper
      api_base: ${az.base}
      api_key: ${AZURE_KEY}
      api_version: "2024-10-21"
  - model_name: tts
    litellm_params:
      model: azure/my-tts
      api_base: ${az.base}
      api_key: ${AZURE_KEY}
      api_version: "2025-03-01-preview"
  - model_name: mistral-large
    litellm_params:
      model: azure_ai/Mistral-large-2407
      api_base: ${az.base}
      api_key: ${AI_KEY}
`
// AZURE_AUTHORITY_HOST (azure-identity's variable) points the Entra token request at the fake.
const gw = await startGateway(t, yaml, { providers: [azure, azure_ai], env: { AZURE_AUTHORITY_HOST: az.base, AZURE_CLIENT_SECRET: 'gw-secret' } })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_current_weather',
    description: 'Get the current weather in a given location',
    parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] },
  },
}

t.test('chat: the deployment URL, api-version and api-key Azure receives; Azure\'s reply as the client gets it', async (t) => {
  const before = az.seen.length
  const res = await client.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'system', content: 'you talk like a pirate' }, { role: 'user', content: 'can you tell me how to care for a parrot?' }],
    temperature: 0.5,
  })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.match(res.choices[0]!.message.content, /^Ahoy matey!/)
  t.equal(res.choices[0]!.finish_reason, 'stop')
  t.same(res.usage!.total_tokens, 590)
  t.ok((res as unknown as { prompt_filter_results: unknown[] }).prompt_filter_results.length, 'Azure\'s prompt_filter_results reach the client')
  t.equal(az.seen.length, before + 1, 'one upstream call')
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/deployments/my-gpt4o-deployment/chat/completions')
  t.equal(s.query.get('api-version'), '2024-10-21')
  t.equal(s.headers['api-key'], AZURE_KEY)
  t.notOk(s.headers.authorization, 'the client\'s key is not forwarded')
  t.equal(s.body.model, 'my-gpt4o-deployment')
  t.equal(s.body.temperature, 0.5)
  assertSchema(t, 'CreateChatCompletionRequest', s.body, 'Azure received a valid chat request')
})

t.test('streaming chat with tools: Azure\'s stream, empty-choices first event included, reassembled by the client', async (t) => {
  const stream = client.chat.completions.stream({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather in Boston?' }], tools: [weatherTool], tool_choice: 'auto',
    stream_options: { include_usage: true },
  })
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = []
  stream.on('chunk', (c) => chunks.push(c))
  const final = await stream.finalChatCompletion()
  const call = final.choices[0]!.message.tool_calls![0]!
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
  t.equal(call.id, 'call_9yQ2pUq4bxTtVwLm3n0ZkA1s')
  t.equal(call.type, 'function')
  t.equal(call.type === 'function' && call.function.name, 'get_current_weather')
  t.same(call.type === 'function' && JSON.parse(call.function.arguments), { location: 'Boston, MA', unit: 'celsius' })
  t.same(chunks[0]!.choices, [], 'the first chunk is Azure\'s prompt-filter event')
  t.same(chunks.at(-1)!.usage, {
    completion_tokens: 21, prompt_tokens: 1124, total_tokens: 1145, prompt_tokens_details: { cached_tokens: 1024 },
    completion_tokens_details: { reasoning_tokens: 0 },
  }, 'usage, with cached tokens, as asked for')
  const s = az.seen.at(-1)!
  t.equal(s.body.stream, true)
  t.same(s.body.stream_options, { include_usage: true })
  t.equal(s.body.tool_choice, 'auto')
  t.same(s.body.tools, [weatherTool])
})

t.test('streaming: a reply cut by Azure\'s filter ends with finish_reason content_filter; no usage unless asked', async (t) => {
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Tell me the lyrics to "Hey Jude".' }], stream: true })
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = []
  for await (const c of stream) chunks.push(c)
  t.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hey Jude, better')
  t.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'content_filter')
  t.notOk(chunks.some((c) => c.usage), 'the client did not ask for usage')
  t.same(az.seen.at(-1)!.body.stream_options, { include_usage: true }, 'the gateway asked Azure for usage all the same')
})

t.test('embeddings: base64 (the client\'s default) and float', async (t) => {
  const expected = JSON.parse(fixture('embeddings.response.json')).data[0].embedding as number[]
  const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'this is a test' })
  t.equal(b64.data.length, 1)
  const got = b64.data[0]!.embedding
  t.equal(got.length, expected.length)
  for (let i = 0; i < expected.length; i++) t.ok(Math.abs(got[i]! - expected[i]!) < 1e-7, `value ${i}`)
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/deployments/my-embedding-deployment/embeddings')
  t.equal(s.query.get('api-version'), '2024-10-21')
  t.equal(s.body.model, 'my-embedding-deployment')
  assertSchema(t, 'CreateEmbeddingRequest', s.body)

  const raw = await fetch(`${gw.url}/v1/embeddings`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input: ['this is a test'], encoding_format: 'float' }),
  })
  const floats = (await raw.json()) as { data: Array<{ embedding: number[] }>; usage: { prompt_tokens: number } }
  assertSchema(t, 'CreateEmbeddingResponse', floats)
  t.same(floats.data[0]!.embedding, expected)
  t.equal(floats.usage.prompt_tokens, 4)
  t.same(fromBase64Floats(floatsToBase64(expected)).length, expected.length)
})

t.test('a prompt blocked by Azure\'s content filter: 400 content policy, Azure\'s message kept', async (t) => {
  const err = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: FILTERED }] }).catch((e) => e)
  t.ok(err instanceof OpenAI.BadRequestError, 'a BadRequestError')
  t.equal(err.status, 400)
  t.equal(err.code, 'content_filter')
  t.equal(err.type, 'invalid_request_error')
  t.match(err.message, /Azure Content management policy/)
  t.notMatch(err.message, new RegExp(AZURE_KEY), 'no key in the message')
  const streamed = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: FILTERED }], stream: true }).catch((e) => e)
  t.ok(streamed instanceof OpenAI.BadRequestError, 'a stream refused before it started is the same error')
})

t.test('Entra ID client credentials: one token for several calls, sent as Bearer', async (t) => {
  const before = az.tokens.length
  for (let i = 0; i < 3; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-4o-entra', messages: [{ role: 'user', content: `hello ${i}` }] })
    t.match(r.choices[0]!.message.content, /^Ahoy/)
    const s = az.seen.at(-1)!
    t.equal(s.headers.authorization, `Bearer entra-tok-${before + 1}`)
    t.notOk(s.headers['api-key'], 'no api-key header')
  }
  t.equal(az.tokens.length, before + 1, 'one token request for three calls')
  const form = az.tokens.at(-1)!
  t.same(Object.fromEntries(form), {
    grant_type: 'client_credentials', client_id: 'my-client', client_secret: 'gw-secret', scope: 'https://cognitiveservices.azure.com/.default',
  }, 'client_secret from os.environ/AZURE_CLIENT_SECRET')
})

t.test('api_version v1: the v1 API path, the deployment as model', async (t) => {
  await client.chat.completions.create({ model: 'gpt-4o-v1', messages: [{ role: 'user', content: 'hi' }] })
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/v1/chat/completions')
  t.equal(s.query.get('api-version'), null, 'no dated api-version')
  t.equal(s.body.model, 'my-gpt4o-deployment')
})

t.test('azure_ai: /chat/completions with a Bearer key; text parts flattened', async (t) => {
  const r = await client.chat.completions.create({
    model: 'mistral-large', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'there' }] }],
  })
  assertSchema(t, 'CreateChatCompletionResponse', r)
  const s = az.seen.at(-1)!
  t.equal(s.path, '/chat/completions')
  t.equal(s.headers.authorization, `Bearer ${AI_KEY}`)
  t.equal(s.body.model, 'Mistral-large-2407')
  t.same(s.body.messages, [{ role: 'user', content: 'Hello there' }])
  const completion = await client.completions.create({ model: 'mistral-large', prompt: 'Say hi' })
  t.equal(completion.object, 'text_completion', 'legacy completions are served through chat')
  t.equal(az.seen.at(-1)!.path, '/chat/completions')
})

t.test('images: the DALL-E deployment, Azure\'s per-image filter results passed on', async (t) => {
  const expected = JSON.parse(fixture('images.response.json'))
  const r = await client.images.generate({
    model: 'dall-e-3', prompt: 'In the style of WordArt, Microsoft Clippy wearing a cowboy hat.', n: 1, quality: 'standard', style: 'natural',
  })
  assertSchema(t, 'ImagesResponse', r)
  t.equal(r.data![0]!.url, expected.data[0].url)
  t.equal(r.data![0]!.revised_prompt, expected.data[0].revised_prompt)
  t.ok((r.data![0] as unknown as { content_filter_results: unknown }).content_filter_results, 'filter results kept')
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/deployments/my-dalle3/images/generations')
  t.equal(s.query.get('api-version'), '2024-10-21')
  t.equal(s.headers['api-key'], AZURE_KEY)
  t.same(s.body, { model: 'my-dalle3', prompt: 'In the style of WordArt, Microsoft Clippy wearing a cowboy hat.', n: 1, quality: 'standard', style: 'natural' })
})

t.test('transcription: a real WAV uploaded to the Whisper deployment as multipart', async (t) => {
  const wav = makeWav()
  const r = await client.audio.transcriptions.create({ model: 'whisper', file: await toFile(wav, 'hello.wav', { type: 'audio/wav' }) })
  t.equal(r.text, JSON.parse(fixture('transcription.response.json')).text)
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/deployments/my-whisper/audio/transcriptions')
  t.equal(s.query.get('api-version'), '2024-10-21')
  t.equal(s.headers['api-key'], AZURE_KEY)
  t.match(String(s.headers['content-type']), /^multipart\/form-data; boundary=/)
  t.equal(s.body.model, 'my-whisper', 'the deployment in the form')
  t.equal(s.body.file.filename, 'hello.wav')
  t.ok(Buffer.compare(s.body.file.data, wav) === 0, 'the WAV bytes arrive unchanged')

  const text = await client.audio.transcriptions.create({ model: 'whisper', file: await toFile(wav, 'hello.wav'), response_format: 'text' })
  t.equal(String(text).trim(), JSON.parse(fixture('transcription.response.json')).text, 'text format comes back as text')
})

t.test('speech: the TTS deployment\'s audio bytes, streamed through', async (t) => {
  const res = await client.audio.speech.create({ model: 'tts', voice: 'alloy', input: 'Hello from Azure' })
  t.equal(res.headers.get('content-type'), 'audio/mpeg')
  const got = Buffer.from(await res.arrayBuffer())
  t.ok(Buffer.compare(got, speechBytes('Hello from Azure')) === 0, 'the bytes Azure sent')
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/deployments/my-tts/audio/speech')
  t.equal(s.query.get('api-version'), '2025-03-01-preview')
  t.same(s.body, { model: 'my-tts', voice: 'alloy', input: 'Hello from Azure' })
})

t.test('key, base and api-version from AZURE_API_KEY, AZURE_API_BASE, AZURE_API_VERSION', async (t) => {
  const envGw = await startGateway(t, `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/env-deployment
`, { providers: [azure, azure_ai], env: { AZURE_API_KEY: 'env-azure-key', AZURE_API_BASE: az.base, AZURE_API_VERSION: '2024-06-01' } })
  const c = new OpenAI({ baseURL: `${envGw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })
  await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
  const s = az.seen.at(-1)!
  t.equal(s.path, '/openai/deployments/env-deployment/chat/completions')
  t.equal(s.query.get('api-version'), '2024-06-01')
  t.equal(s.headers['api-key'], 'env-azure-key')
})

t.test('the translated (non pass-through) stream path accepts Azure\'s empty-choices first event', async (t) => {
  // The SDK and plugins that read content take this path: every event parsed, checked (checkChunk) and re-made.
  const agent = new Agent()
  t.teardown(() => agent.close())
  const providers = createProviderRegistry([...builtinProviders(), azure, azure_ai])
  const dispatch = createDispatch({ dispatcher: agent, providers })
  const target = buildTarget(
    { model_name: 'gpt-4o', litellm_params: { model: 'azure/my-gpt4o-deployment', api_base: az.base, api_key: AZURE_KEY, api_version: '2024-10-21' } },
    providers, { dropParams: false, requestTimeout: 10, streamTimeout: 10, env: {} },
  )
  const state = { requestId: 'r1', startedAt: Date.now(), signal: new AbortController().signal, passthrough: false, upstreamMs: 0 } as unknown as GatewayState
  const result = await dispatch({
    op: 'chat', target, stream: true, state, number: 0,
    request: { model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather?' }], tools: [weatherTool], stream: true },
  })
  t.equal(result.kind, 'stream')
  const chunks: ChatChunk[] = []
  if (result.kind === 'stream') for await (const c of result.chunks) chunks.push(c as ChatChunk)
  t.same(chunks[0]!.choices, [], 'the prompt-filter event is a chunk with empty choices')
  t.equal(chunks.filter((c) => c.choices[0]?.finish_reason === 'tool_calls').length, 1)
  t.equal(chunks.at(-1)!.usage!.prompt_tokens_details!.cached_tokens, 1024, 'usage read from the stream')
})
