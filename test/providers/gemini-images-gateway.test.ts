/**
 * Image generation on Gemini (AI Studio) and Vertex AI end to end: the official `openai` client
 * (`client.images.generate`) -> a real gateway configured with unchanged LiteLLM model_list entries
 * (`gemini/imagen-...`, `gemini/gemini-2.5-flash-image`, `vertex_ai/imagen-...`; the Gemini key from GEMINI_API_KEY,
 * Vertex's project, location and service-account key file from LiteLLM's environment variables) -> a fake Google
 * (node:http on 127.0.0.1 answering Imagen `:predict` and Gemini `:generateContent` as Google documents them, see
 * google-images-fixtures.ts, and recording what it was sent) plus a fake OAuth token endpoint for Vertex.
 * Checked: the URL, auth and spec-valid body the upstream got; the image bytes the client decodes; the cost in
 * x-litellm-response-cost (LiteLLM's per-image price for Imagen, per token for Gemini image models); and errors as
 * the client sees them (a safety refusal, Imagen filtering every image, a 429 with retry-after, `response_format: url`).
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { gemini } from '../../providers/gemini/index.js'
import { vertex_ai } from '../../providers/vertex/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertGeminiSchema } from './google-fixtures.js'
import { BLUE, geminiImageReply, IMAGEN_BLOCKED_400, IMAGEN_FILTERED, imagenReply, RED } from './google-images-fixtures.js'
import { serviceAccount, startTokenServer, writeJson } from './google-token-server.js'

const KEY = 'AIza-env-key-0123456789'
const REVISED = 'A tall white lighthouse on a rocky shore at dusk, warm light in the lamp room'
const VERTEX = '/v1/projects/demo-project/locations/us-central1/publishers/google/models'

interface Seen {
  url: string
  headers: http.IncomingHttpHeaders
  body: any
}

const tokens = await startTokenServer(t)
const keyFile = writeJson(t, 'service-account.json', serviceAccount(tokens))

const seen: Seen[] = []
const server = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c: string) => (raw += c))
  req.on('end', () => {
    const body = raw ? JSON.parse(raw) : null
    const url = req.url!
    seen.push({ url, headers: req.headers, body })
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers })
      res.end(JSON.stringify(payload))
    }
    // As many images as asked for: red, blue, red, ...
    const images = () => Array.from({ length: body.parameters.sampleCount as number }, (_v, i) => (i % 2 ? BLUE : RED))
    if (url === '/v1beta/models/imagen-4.0-generate-001:predict') return json(200, imagenReply(images(), REVISED))
    if (url === '/v1beta/models/gemini-2.5-flash-image:generateContent') return json(200, geminiImageReply(RED))
    if (url === '/blocked/v1beta/models/imagen-4.0-generate-001:predict') return json(400, IMAGEN_BLOCKED_400)
    if (url === '/filtered/v1beta/models/imagen-4.0-generate-001:predict') return json(200, IMAGEN_FILTERED)
    if (url === `${VERTEX}/imagen-3.0-generate-002:predict`) return json(200, imagenReply(images()))
    if (url === `/busy${VERTEX}/imagen-3.0-generate-002:predict`) {
      return json(429, { error: { code: 429, message: 'Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model.', status: 'RESOURCE_EXHAUSTED' } }, { 'retry-after': '7' })
    }
    json(404, { error: { code: 404, message: `no route ${url}`, status: 'NOT_FOUND' } })
  })
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => {
  server.closeAllConnections()
  server.close(() => r())
}))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

// LiteLLM's model_list entries, unchanged: api_base points each at the fake (a path prefix picks the fake's answer).
const entry = (name: string, model: string, apiBase: string) => `
  - model_name: ${name}
    litellm_params:
      model: ${model}
      api_base: ${apiBase}`
const yaml = `
pipeline: [router]
upstream: []
model_list:${entry('imagen', 'gemini/imagen-4.0-generate-001', `${base}/v1beta`)}${entry('nano-banana', 'gemini/gemini-2.5-flash-image', `${base}/v1beta`)}${entry('imagen-blocked', 'gemini/imagen-4.0-generate-001', `${base}/blocked/v1beta`)}${entry('imagen-filtered', 'gemini/imagen-4.0-generate-001', `${base}/filtered/v1beta`)}${entry('vertex-imagen', 'vertex_ai/imagen-3.0-generate-002', base)}${entry('vertex-busy', 'vertex_ai/imagen-3.0-generate-002', `${base}/busy`)}
`
const gw = await startGateway(t, yaml, {
  providers: [gemini, vertex_ai],
  env: { GEMINI_API_KEY: KEY, VERTEXAI_PROJECT: 'demo-project', VERTEXAI_LOCATION: 'us-central1', GOOGLE_APPLICATION_CREDENTIALS: keyFile },
})
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 10_000 })

/** The request the fake received last, with the checks every AI Studio call must pass. */
function lastGemini(t: Test, path: string): Seen {
  const s = seen.at(-1)!
  t.equal(s.url, path, 'the method URL')
  t.equal(s.headers['x-goog-api-key'], KEY, 'the key from GEMINI_API_KEY, in x-goog-api-key')
  t.notOk(s.headers.authorization, 'the client key is not forwarded')
  return s
}

function cost(response: Response): number {
  return Number(response.headers.get('x-litellm-response-cost'))
}

function near(t: Test, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} = ${expected}`)
}

t.test('gemini/imagen: two images, size as aspect ratio, priced per image', async (t) => {
  const { data, response } = await client.images.generate({ model: 'imagen', prompt: 'A lighthouse at dusk', n: 2, size: '1792x1024' }).withResponse()
  assertSchema(t, 'ImagesResponse', data)
  t.same(data.data!.map((d) => Buffer.from(d.b64_json!, 'base64')), [RED, BLUE], 'the PNG bytes Imagen made, in order')
  t.equal(data.data![0]!.revised_prompt, REVISED, "Imagen's rewritten prompt")
  t.equal(data.output_format, 'png')
  near(t, cost(response), 2 * 0.04, 'gemini/imagen-4.0-generate-001: 2 x $0.04 (LiteLLM table)')
  const s = lastGemini(t, '/v1beta/models/imagen-4.0-generate-001:predict')
  t.same(s.body, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 2, aspectRatio: '16:9' } })
  assertGeminiSchema(t, 'PredictRequest', s.body)
})

t.test('gemini/imagen: no n -> one image, as OpenAI (not the four Imagen defaults to)', async (t) => {
  const { data, response } = await client.images.generate({ model: 'imagen', prompt: 'A lighthouse at dusk', response_format: 'b64_json' }).withResponse()
  t.equal(data.data!.length, 1)
  near(t, cost(response), 0.04, 'one image')
  t.same(lastGemini(t, '/v1beta/models/imagen-4.0-generate-001:predict').body.parameters, { sampleCount: 1 })
})

t.test('gemini/gemini-2.5-flash-image: generateContent with image output, priced per token', async (t) => {
  const { data, response } = await client.images.generate({ model: 'nano-banana', prompt: 'A lighthouse at dusk', size: '1024x1024' }).withResponse()
  assertSchema(t, 'ImagesResponse', data)
  t.equal(data.data!.length, 1)
  t.ok(Buffer.from(data.data![0]!.b64_json!, 'base64').equals(RED), 'the inlineData bytes')
  t.same(data.usage, { input_tokens: 7, output_tokens: 1290, total_tokens: 1297, input_tokens_details: { text_tokens: 7, image_tokens: 0 }, output_tokens_details: { text_tokens: 0, image_tokens: 1290 } })
  // LiteLLM's gemini/gemini-2.5-flash-image: input $3e-7 a token, output image $3e-5 a token.
  near(t, cost(response), 7 * 3e-7 + 1290 * 3e-5, 'prompt tokens + image tokens')
  const s = lastGemini(t, '/v1beta/models/gemini-2.5-flash-image:generateContent')
  t.same(s.body, {
    contents: [{ role: 'user', parts: [{ text: 'A lighthouse at dusk' }] }],
    generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '1:1' } },
  })
  assertGeminiSchema(t, 'GenerateContentRequest', s.body)
})

t.test('vertex_ai/imagen: the service-account token, the Vertex URL, the same body', async (t) => {
  const { data, response } = await client.images.generate({ model: 'vertex-imagen', prompt: 'A lighthouse at dusk', size: '1024x1792' }).withResponse()
  assertSchema(t, 'ImagesResponse', data)
  t.ok(Buffer.from(data.data![0]!.b64_json!, 'base64').equals(RED))
  near(t, cost(response), 0.04, 'vertex_ai/imagen-3.0-generate-002: $0.04 (LiteLLM table)')
  const s = seen.at(-1)!
  t.equal(s.url, `${VERTEX}/imagen-3.0-generate-002:predict`)
  t.equal(s.headers.authorization, 'Bearer ya29.token-1', 'the OAuth token made from GOOGLE_APPLICATION_CREDENTIALS')
  t.notOk(s.headers['x-goog-api-key'])
  t.same(s.body, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1, aspectRatio: '9:16' } })
  assertGeminiSchema(t, 'PredictRequest', s.body)
  t.equal(tokens.issued.length, 1, 'one token fetched')
})

t.test('errors as the client sees them', async (t) => {
  /** The error the client raised (every call here must fail). */
  const ask = (model: string, extra: Record<string, unknown> = {}): Promise<InstanceType<typeof OpenAI.APIError>> =>
    client.images.generate({ model, prompt: 'A lighthouse at dusk', ...extra }).then(
      () => { throw new Error(`${model}: expected an error`) },
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    )

  const blocked = await ask('imagen-blocked')
  t.ok(blocked instanceof OpenAI.BadRequestError, 'a safety refusal (400) -> BadRequestError')
  t.equal(blocked.code, 'content_policy_violation')
  t.match(blocked.message, /may violate our policies/, "Google's message kept")
  t.equal(seen.at(-1)!.url, '/blocked/v1beta/models/imagen-4.0-generate-001:predict')

  const filtered = await ask('imagen-filtered')
  t.ok(filtered instanceof OpenAI.BadRequestError, 'every image filtered (a 200 without images) -> BadRequestError')
  t.equal(filtered.code, 'content_policy_violation')
  t.match(filtered.message, /contained people/)

  const busy = await ask('vertex-busy')
  t.ok(busy instanceof OpenAI.RateLimitError, '429 -> RateLimitError')
  t.equal(busy.headers?.get('retry-after'), '7', 'retry-after kept')
  t.equal(seen.at(-1)!.url, `/busy${VERTEX}/imagen-3.0-generate-002:predict`)

  const before = seen.length
  const url = await ask('imagen', { response_format: 'url' })
  t.ok(url instanceof OpenAI.BadRequestError, "response_format url -> 400: Google's APIs answer bytes only")
  t.equal(url.param, 'response_format')
  const quality = await ask('imagen', { quality: 'hd' })
  t.ok(quality instanceof OpenAI.BadRequestError)
  t.equal(quality.param, 'quality', 'an unsupported param is named')
  t.equal(seen.length, before, 'nothing was sent for either')
  for (const e of [blocked, filtered, busy, url, quality]) t.notMatch(e.message, /AIza|ya29/, 'no key or token in any message')
})
