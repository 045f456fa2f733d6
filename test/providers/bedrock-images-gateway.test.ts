/**
 * Bedrock image generation end to end: the official `openai` client (`images.generate`) -> a real gateway
 * configured with unchanged LiteLLM `model_list` entries (`bedrock/amazon.nova-canvas-v1:0`,
 * `bedrock/amazon.titan-image-generator-v2:0`, `bedrock/stability.*`) -> a fake Bedrock Runtime on 127.0.0.1 that
 * answers InvokeModel in each family's documented shape with real PNG bytes.
 *
 * The fake checks what AWS checks: it recomputes the SigV4 signature from what it received (method, raw path, the
 * signed headers, the body bytes) with the known secret and verifies x-amz-content-sha256, answering 403
 * InvalidSignatureException when they differ; it validates the body against the family's documented request schema
 * (bedrock-images-fixtures.ts) and answers 400 ValidationException when it fails. The test asserts the body Bedrock
 * got, the image bytes the client decodes, and the x-litellm-response-cost header (LiteLLM's per-image prices).
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import { bedrock } from '../../providers/bedrock/index.js'
import { startGateway } from '../helpers/gateway.js'
import { assertSchema } from '../helpers/openapi.js'
import { parseAuthorization } from './bedrock-fixtures.js'
import { BLUE, GREEN, NOVA_BLOCKED, RED, REPLIES, imageRequestSchema, type SCHEMAS } from './bedrock-images-fixtures.js'

const KEY_ID = 'AKIDIMAGESTEST'
const SECRET = 'img/Secret+Key/EXAMPLE0123456789abcdefgh'
const TOKEN = 'IQoJb3JpZ2luX2VjIMAGESESSIONTOKEN'
/** Bedrock refuses a request signed more than 5 minutes away from its clock. */
const MAX_SKEW_MS = 5 * 60 * 1000
/** Images the fake makes for Nova / Titan, in order (numberOfImages of them). */
const PALETTE = [RED, BLUE, GREEN]

interface Seen {
  path: string
  modelId: string
  headers: http.IncomingHttpHeaders
  body: any
  verified: boolean
  region?: string
}

function send(res: http.ServerResponse, status: number, body: unknown, errorType?: string, extra: Record<string, string> = {}): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-amzn-requestid': 'req-fake', ...extra }
  if (errorType) headers['x-amzn-errortype'] = `${errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/`
  res.writeHead(status, headers)
  res.end(JSON.stringify(body))
}

/** Recompute the signature as AWS does; error null when it checks out. */
async function verify(req: http.IncomingMessage, raw: Buffer, port: number): Promise<{ error: string | null; region?: string }> {
  const auth = parseAuthorization(String(req.headers.authorization ?? ''))
  if (!auth) return { error: 'missing or malformed Authorization' }
  if (auth.accessKeyId !== KEY_ID || auth.service !== 'bedrock') return { error: 'wrong key or service' }
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(req.headers['x-amz-date'] ?? ''))
  if (!m) return { error: 'no x-amz-date' }
  const when = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`)
  if (Math.abs(Date.now() - when.getTime()) > MAX_SKEW_MS) return { error: 'signature expired' }
  if (req.headers['x-amz-content-sha256'] !== createHash('sha256').update(raw).digest('hex')) return { error: 'body hash mismatch' }
  const headers: Record<string, string> = {}
  for (const h of auth.signedHeaders) {
    const v = req.headers[h]
    if (typeof v !== 'string') return { error: `signed header ${h} missing` }
    headers[h] = v
  }
  const signer = new SignatureV4({
    service: 'bedrock', region: auth.region, sha256: Hash.bind(null, 'sha256'),
    credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET, sessionToken: TOKEN },
  })
  const expected = await signer.sign({ method: req.method!, protocol: 'http:', hostname: '127.0.0.1', port, path: req.url!, query: {}, headers, body: raw.toString('utf8') }, { signingDate: when })
  return expected.headers.authorization === req.headers.authorization ? { error: null, region: auth.region } : { error: 'signature mismatch' }
}

function familyOf(modelId: string): keyof typeof SCHEMAS | null {
  if (modelId.includes('amazon.nova-canvas')) return 'nova'
  if (modelId.includes('amazon.titan-image')) return 'titan'
  if (modelId.includes('stability.sd3')) return 'sd3'
  if (modelId.includes('stability.stable-image-')) return 'stable-image'
  if (modelId.includes('stability.stable-diffusion-xl')) return 'sdxl'
  return null
}

function promptOf(body: any): string {
  return String(body?.textToImageParams?.text ?? body?.prompt ?? body?.text_prompts?.[0]?.text ?? '')
}

async function fakeBedrock(t: Test): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = []
  let port = 0
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => void (async () => {
      const raw = Buffer.concat(parts)
      const m = /^\/model\/([^/]+)\/invoke$/.exec(req.url ?? '')
      let body: any = null
      try {
        body = JSON.parse(raw.toString('utf8'))
      } catch { /* recorded as null */ }
      const check = await verify(req, raw, port)
      const s: Seen = { path: req.url!, modelId: m ? decodeURIComponent(m[1]!) : '', headers: req.headers, body, verified: check.error === null, ...(check.region ? { region: check.region } : {}) }
      seen.push(s)
      if (check.error) return send(res, 403, { message: `The request signature we calculated does not match the signature you provided (${check.error}).` }, 'InvalidSignatureException')
      const family = m ? familyOf(s.modelId) : null
      if (!family) return send(res, 404, { message: 'Could not resolve the foundation model from the provided model identifier.' }, 'ResourceNotFoundException')
      const validate = imageRequestSchema(family)
      if (!validate(body)) return send(res, 400, { message: `Malformed input request: ${JSON.stringify(validate.errors?.[0])}, please reformat your input and try again.` }, 'ValidationException')
      const prompt = promptOf(body)
      if (prompt.includes('BLOCKED')) return send(res, 400, { message: NOVA_BLOCKED }, 'ValidationException')
      if (prompt.includes('THROTTLE')) return send(res, 429, { message: 'Too many requests, please wait before trying again.' }, 'ThrottlingException', { 'retry-after': '3' })
      if (prompt.includes('FILTERED')) return send(res, 200, REPLIES.stability3Filtered())
      if (family === 'nova' || family === 'titan') return send(res, 200, REPLIES.amazon(PALETTE.slice(0, s.body.imageGenerationConfig?.numberOfImages ?? 1)))
      if (family === 'sdxl') return send(res, 200, REPLIES.sdxl([GREEN]))
      return send(res, 200, REPLIES.stability3([BLUE]))
    })())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { base: `http://127.0.0.1:${port}`, seen }
}

async function setup(t: Test) {
  const up = await fakeBedrock(t)
  // Unchanged LiteLLM entries; the endpoint override is LiteLLM's own setting (aws_bedrock_runtime_endpoint) or api_base.
  const yaml = `
pipeline: [router]
upstream: []
model_list:
  - model_name: canvas
    litellm_params:
      model: bedrock/amazon.nova-canvas-v1:0
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: ${up.base}
    model_info:
      mode: image_generation
  - model_name: titan-image
    litellm_params:
      model: bedrock/amazon.titan-image-generator-v2:0
      api_base: ${up.base}
  - model_name: sd35
    litellm_params:
      model: bedrock/stability.sd3-5-large-v1:0
      api_base: ${up.base}
  - model_name: ultra
    litellm_params:
      model: bedrock/stability.stable-image-ultra-v1:1
      api_base: ${up.base}
  - model_name: sdxl
    litellm_params:
      model: bedrock/stability.stable-diffusion-xl-v1
      api_base: ${up.base}
  - model_name: wrong-secret
    litellm_params:
      model: bedrock/amazon.nova-canvas-v1:0
      api_base: ${up.base}
      aws_secret_access_key: not-the-secret
  - model_name: titan-embed
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      api_base: ${up.base}
`
  const env = { AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET, AWS_SESSION_TOKEN: TOKEN, AWS_REGION_NAME: 'us-west-2' }
  const gw = await startGateway(t, yaml, { providers: [bedrock], env })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-unused', maxRetries: 0 })
  return { up, client }
}

type Params = OpenAI.Images.ImageGenerateParamsNonStreaming

/** images.generate with the raw response (for the cost header); `extra` carries Bedrock's own params. */
async function generate(client: OpenAI, params: Params, extra: Record<string, unknown> = {}) {
  const { data, response } = await client.images.generate({ ...params, ...extra } as Params).withResponse()
  return { res: data, cost: Number(response.headers.get('x-litellm-response-cost')) }
}

const bytes = (res: OpenAI.Images.ImagesResponse): Buffer[] => (res.data ?? []).map((d) => Buffer.from(d.b64_json ?? '', 'base64'))
const near = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9

t.test('Nova Canvas: a signed InvokeModel, two PNGs back, priced per image', async (t) => {
  const { up, client } = await setup(t)
  const { res, cost } = await generate(client, { model: 'canvas', prompt: 'A lighthouse at dusk', n: 2, size: '1280x720', quality: 'hd', response_format: 'b64_json' }, { seed: 42, negativeText: 'fog' })
  t.same(bytes(res), [RED, BLUE], 'the PNG bytes Bedrock made, in order')
  assertSchema(t, 'ImagesResponse', res)
  t.ok(near(cost, 2 * 0.06), `x-litellm-response-cost: 2 x $0.06 (got ${cost})`)
  t.equal(up.seen.length, 1)
  const s = up.seen[0]!
  t.ok(s.verified, 'the signature verifies with the known secret and session token')
  t.equal(s.path, '/model/amazon.nova-canvas-v1%3A0/invoke', 'InvokeModel, the model id URL-encoded')
  t.equal(s.region, 'us-east-1', 'aws_region_name from litellm_params signs the call')
  t.equal(s.headers['x-amz-security-token'], TOKEN, 'AWS_SESSION_TOKEN sent')
  t.same(s.body, {
    taskType: 'TEXT_IMAGE',
    textToImageParams: { text: 'A lighthouse at dusk', negativeText: 'fog' },
    imageGenerationConfig: { numberOfImages: 2, width: 1280, height: 720, quality: 'premium', seed: 42 },
  })
})

t.test('Titan Image v2: defaults, one image at $0.008', async (t) => {
  const { up, client } = await setup(t)
  const { res, cost } = await generate(client, { model: 'titan-image', prompt: 'A red fox', size: '512x512', quality: 'standard' })
  t.same(bytes(res), [RED])
  t.ok(near(cost, 0.008), `x-litellm-response-cost: $0.008 (got ${cost})`)
  const s = up.seen[0]!
  t.ok(s.verified)
  t.equal(s.region, 'us-west-2', 'the region from AWS_REGION_NAME')
  t.equal(s.path, '/model/amazon.titan-image-generator-v2%3A0/invoke')
  t.same(s.body, { taskType: 'TEXT_IMAGE', textToImageParams: { text: 'A red fox' }, imageGenerationConfig: { width: 512, height: 512, quality: 'standard' } })
})

t.test('SD3.5 Large and Stable Image Ultra: prompt, aspect ratio, format; priced from the table', async (t) => {
  const { up, client } = await setup(t)
  const sd = await generate(client, { model: 'sd35', prompt: 'A castle', size: '1792x1024', n: 1 }, { negative_prompt: 'blur', seed: 9 })
  t.same(bytes(sd.res), [BLUE])
  t.equal((sd.res as any).output_format, 'png')
  t.ok(near(sd.cost, 0.08), `sd3.5 large: $0.08 (got ${sd.cost})`)
  t.same(up.seen[0]!.body, { prompt: 'A castle', aspect_ratio: '16:9', negative_prompt: 'blur', seed: 9, mode: 'text-to-image', output_format: 'png' })
  const ultra = await generate(client, { model: 'ultra', prompt: 'A castle', size: '1024x1536', output_format: 'jpeg' })
  t.equal((ultra.res as any).output_format, 'jpeg', 'the format asked for is reported')
  t.ok(near(ultra.cost, 0.14), `ultra: $0.14 (got ${ultra.cost})`)
  t.same(up.seen[1]!.body, { prompt: 'A castle', aspect_ratio: '2:3', output_format: 'jpeg' })
  t.equal(up.seen[1]!.path, '/model/stability.stable-image-ultra-v1%3A1/invoke')
  t.ok(up.seen.every((s) => s.verified), 'both calls signed')
})

t.test('SDXL: text_prompts with a negative prompt, artifacts back', async (t) => {
  const { up, client } = await setup(t)
  const { res } = await generate(client, { model: 'sdxl', prompt: 'A forest', size: '1024x1024' }, { negative_prompt: 'people', steps: 30 })
  t.same(bytes(res), [GREEN])
  t.same(up.seen[0]!.body, { text_prompts: [{ text: 'A forest', weight: 1 }, { text: 'people', weight: -1 }], width: 1024, height: 1024, steps: 30 })
})

t.test('errors reach the client with the right status and type', async (t) => {
  const { up, client } = await setup(t)
  const gen = (model: string, prompt: string, extra: Record<string, unknown> = {}) => client.images.generate({ model, prompt, ...extra } as Params).catch((e) => e)

  const blocked = await gen('canvas', 'BLOCKED scene')
  t.ok(blocked instanceof OpenAI.BadRequestError, 'a content-filter refusal: 400')
  t.equal(blocked.code, 'content_policy_violation')
  t.match(blocked.message, /blocked by our content filters/, "Bedrock's message kept")

  const filtered = await gen('sd35', 'FILTERED scene')
  t.ok(filtered instanceof OpenAI.BadRequestError, 'a Stability filter reason in a 200: 400')
  t.equal(filtered.code, 'content_policy_violation')

  const throttled = await gen('titan-image', 'THROTTLE')
  t.ok(throttled instanceof OpenAI.RateLimitError, 'ThrottlingException: 429')
  t.equal(throttled.headers?.get('retry-after'), '3', 'retry-after kept')

  const wrong = await gen('wrong-secret', 'hi')
  t.ok(wrong instanceof OpenAI.AuthenticationError, 'a wrong secret: the fake refuses the signature, the client gets 401')
  t.notOk(up.seen.at(-1)!.verified, 'the fake did reject the signature')
  t.notMatch(wrong.message, /not-the-secret/, 'the secret never appears')

  const calls = up.seen.length
  const style = await gen('canvas', 'a cat', { style: 'vivid' })
  t.ok(style instanceof OpenAI.BadRequestError, 'an OpenAI param Nova lacks: 400')
  t.match(style.message, /does not support parameters: style/)
  const tooMany = await gen('sd35', 'a cat', { n: 3 })
  t.ok(tooMany instanceof OpenAI.BadRequestError, 'n > 1 on a Stability model: 400')
  t.match(tooMany.message, /\bn\b/)
  const embed = await gen('titan-embed', 'a cat')
  t.ok(embed instanceof OpenAI.BadRequestError, 'an embedding model asked for an image: 400')
  t.match(embed.message, /image generation supports/)
  t.equal(up.seen.length, calls, 'refused before any upstream call')
})
