/**
 * Bedrock end to end: the official `openai` client -> a real gateway configured with unchanged LiteLLM
 * `model_list` entries (`bedrock/us.anthropic...`, `bedrock/converse/arn:...`, `bedrock/amazon.titan-embed...`) ->
 * a fake Bedrock Runtime on 127.0.0.1 speaking the real wire format (Converse JSON, the binary event stream from
 * the recorded frames, InvokeModel, AWS error headers).
 *
 * The fake checks what AWS checks: it recomputes the SigV4 signature from what it received (method, raw path,
 * the signed headers, the body bytes) with the known secret, verifies x-amz-content-sha256 against the body and
 * validates the body against the API model's ConverseRequest, answering 403 InvalidSignatureException / 400
 * ValidationException as Bedrock does; a deployment with a wrong secret is refused.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import { EventStreamCodec } from '@smithy/eventstream-codec'
import { fromUtf8, toUtf8 } from '@smithy/util-utf8'
import { bedrock } from '../../providers/bedrock/index.js'
import { startGateway } from '../helpers/gateway.js'
import { bedrockShape, parseAuthorization, readExample, readFrames } from './bedrock-fixtures.js'

const KEY_ID = 'AKIDGATEWAYTEST'
const SECRET = 'gw/Secret+Key/EXAMPLE0123456789abcdefgh'
const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN'
/** Bedrock refuses a request signed more than 5 minutes away from its clock. */
const MAX_SKEW_MS = 5 * 60 * 1000

interface Seen {
  path: string
  modelId: string
  action: string
  headers: http.IncomingHttpHeaders
  body: any
  /** The signature checked out (recomputed with the known secret and session token). */
  verified: boolean
  region?: string
}

const converseRequest = bedrockShape('ConverseRequest')
const codec = new EventStreamCodec(toUtf8, fromUtf8)

function send(res: http.ServerResponse, status: number, body: unknown, errorType?: string, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-amzn-requestid': 'req-fake', ...extra }
  if (errorType) headers['x-amzn-errortype'] = `${errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/`
  res.writeHead(status, headers)
  res.end(text)
}

/** Recompute the signature as AWS does; null when it checks out, else why not. */
async function verify(req: http.IncomingMessage, raw: Buffer, port: number): Promise<{ error: string | null; region?: string }> {
  const auth = parseAuthorization(String(req.headers.authorization ?? ''))
  if (!auth) return { error: 'missing or malformed Authorization' }
  if (auth.accessKeyId !== KEY_ID) return { error: 'unknown access key' }
  if (auth.service !== 'bedrock') return { error: `wrong service ${auth.service}` }
  const amzDate = String(req.headers['x-amz-date'] ?? '')
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
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
  if (expected.headers.authorization !== req.headers.authorization) return { error: 'signature mismatch' }
  return { error: null, region: auth.region }
}

/** Write frames in uneven pieces, as a network would deliver them. */
async function writeFrames(res: http.ServerResponse, bytes: Uint8Array): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'req-fake' })
  for (let i = 0, step = 37; i < bytes.length; i += step, step = step === 37 ? 101 : 37) {
    res.write(bytes.subarray(i, i + step))
    await new Promise((r) => setImmediate(r))
  }
  res.end()
}

function frame(eventType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  })
}

const lastUserText = (body: any): string => {
  const m = body?.messages?.at?.(-1)
  return (m?.content ?? []).map((b: any) => b.text ?? '').join('')
}

async function fakeBedrock(t: Test): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = []
  let port = 0
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => void (async () => {
      const raw = Buffer.concat(parts)
      const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/.exec(req.url ?? '')
      let body: any = null
      try {
        body = JSON.parse(raw.toString('utf8'))
      } catch { /* recorded as null */ }
      const check = await verify(req, raw, port)
      const s: Seen = { path: req.url!, modelId: m ? decodeURIComponent(m[1]!) : '', action: m?.[2] ?? '', headers: req.headers, body, verified: check.error === null, ...(check.region ? { region: check.region } : {}) }
      seen.push(s)
      if (check.error) {
        send(res, 403, { message: `The request signature we calculated does not match the signature you provided (${check.error}).` }, 'InvalidSignatureException')
        return
      }
      if (!m) return send(res, 404, { message: 'Unknown operation' }, 'UnknownOperationException')
      if (s.action === 'invoke') return send(res, 200, { embedding: [0.5, -0.25, 0.125], inputTextTokenCount: 2 })
      if (!(converseRequest(body) as boolean)) return send(res, 400, { message: `1 validation error detected: ${JSON.stringify(converseRequest.errors?.[0])}` }, 'ValidationException')
      const text = lastUserText(body)
      if (text.includes('TOO LONG')) return send(res, 400, { message: 'Input is too long for requested model.' }, 'ValidationException')
      if (text.includes('THROTTLE') && s.action === 'converse') {
        return send(res, 429, { message: 'Too many requests, please wait before trying again.' }, 'ThrottlingException', { 'retry-after': '3' })
      }
      if (s.action === 'converse') return send(res, 200, readExample(body.toolConfig ? 'converse.tool_use.response.json' : 'converse.text.response.json'))
      if (text.includes('THROTTLE')) return writeFrames(res, readFrames('converse-stream.throttling-exception.eventstream.bin'))
      if (text.includes('MIDSTREAM')) {
        const exception = readFrames('converse-stream.throttling-exception.eventstream.bin')
        return writeFrames(res, Buffer.concat([frame('messageStart', { role: 'assistant' }), frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hel' } }), exception]))
      }
      return writeFrames(res, readFrames(body.toolConfig ? 'converse-stream.tool_use.eventstream.bin' : 'converse-stream.text.eventstream.bin'))
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

const ARN = 'arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/a1b2c3d4e5f6'

async function setup(t: Test) {
  const up = await fakeBedrock(t)
  // Unchanged LiteLLM entries; the endpoint override is LiteLLM's own setting (aws_bedrock_runtime_endpoint) or api_base.
  const yaml = `
pipeline: [router]
upstream: []
model_list:
  - model_name: claude
    litellm_params:
      model: bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: ${up.base}
  - model_name: claude-arn
    litellm_params:
      model: bedrock/converse/${ARN}
      api_base: ${up.base}
  - model_name: titan
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      api_base: ${up.base}
  - model_name: wrong-secret
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      api_base: ${up.base}
      aws_secret_access_key: not-the-secret
`
  const env = { AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET, AWS_SESSION_TOKEN: TOKEN, AWS_REGION_NAME: 'us-west-2' }
  const gw = await startGateway(t, yaml, { providers: [bedrock], env })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-unused', maxRetries: 0 })
  return { up, client }
}

const weatherTool = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Get the current weather for a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } },
}

t.test('chat: a signed Converse call, the recorded answer back as a chat.completion', async (t) => {
  const { up, client } = await setup(t)
  const res = await client.chat.completions.create({
    model: 'claude', max_tokens: 50, temperature: 0.2,
    messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Hi' }],
  })
  t.equal(res.choices[0]!.message.content, 'Hello! How can I assist you today?')
  t.equal(res.choices[0]!.finish_reason, 'stop')
  t.match(res.usage, { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 })
  t.equal(up.seen.length, 1)
  const s = up.seen[0]!
  t.ok(s.verified, 'the signature verifies with the known secret and session token')
  t.equal(s.path, '/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse', 'the model id URL-encoded in the path')
  t.equal(s.region, 'us-east-1', 'aws_region_name from litellm_params signs the call')
  t.equal(s.headers['x-amz-security-token'], TOKEN, 'AWS_SESSION_TOKEN sent')
  t.equal(s.headers['content-type'], 'application/json')
  t.same(s.body, { messages: [{ role: 'user', content: [{ text: 'Hi' }] }], system: [{ text: 'Be kind.' }], inferenceConfig: { maxTokens: 50, temperature: 0.2 } })
})

t.test('streaming chat with tools on an ARN deployment: tool-call deltas reassembled by the client, usage at the end', async (t) => {
  const { up, client } = await setup(t)
  const stream = client.chat.completions.stream({
    model: 'claude-arn', messages: [{ role: 'user', content: 'What is the weather in Paris?' }], tools: [weatherTool], stream_options: { include_usage: true },
  })
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = []
  stream.on('chunk', (c) => void chunks.push(c))
  const final = await stream.finalChatCompletion()
  const msg = final.choices[0]!.message
  t.equal(msg.content, "I'll check the current weather in Paris for you.")
  t.equal(msg.tool_calls?.length, 1)
  const call = msg.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall
  t.equal(call.id, 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q')
  t.equal(call.function.name, 'get_weather')
  t.same(JSON.parse(call.function.arguments), { location: 'Paris' }, 'argument fragments joined')
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
  t.ok(chunks.filter((c) => c.choices[0]?.delta.tool_calls).length >= 3, 'the call came as several deltas')
  t.match(chunks.at(-1)!.usage, { prompt_tokens: 377, completion_tokens: 65, total_tokens: 442 }, 'usage chunk last')
  const s = up.seen[0]!
  t.ok(s.verified, 'signature verified')
  t.equal(s.action, 'converse-stream')
  t.equal(s.modelId, ARN, 'the ARN, `converse/` route removed')
  t.equal(s.path, `/model/${encodeURIComponent(ARN)}/converse-stream`, 'the ARN with `/` and `:` escaped')
  t.equal(s.region, 'eu-west-1', "the ARN's region beats AWS_REGION_NAME")
  t.equal(s.headers.accept, 'application/vnd.amazon.eventstream')
  t.same(s.body.toolConfig.tools[0].toolSpec.name, 'get_weather')
})

t.test('embeddings: InvokeModel on Titan, floats round-trip through the base64 the client asks for', async (t) => {
  const { up, client } = await setup(t)
  const res = await client.embeddings.create({ model: 'titan', input: 'hello world', dimensions: 256 })
  t.same(res.data[0]!.embedding, [0.5, -0.25, 0.125])
  t.equal(res.usage.prompt_tokens, 2)
  const s = up.seen[0]!
  t.ok(s.verified)
  t.equal(s.path, '/model/amazon.titan-embed-text-v2%3A0/invoke')
  t.same(s.body, { inputText: 'hello world', dimensions: 256 })
})

t.test('upstream errors reach the client with the right status and type', async (t) => {
  const { up, client } = await setup(t)
  const ask = (model: string, content: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content }] })
  const tooLong = await ask('claude', 'TOO LONG').catch((e) => e)
  t.ok(tooLong instanceof OpenAI.BadRequestError, 'context window: 400')
  t.equal(tooLong.code, 'context_length_exceeded')
  t.match(tooLong.message, /Input is too long/)
  const throttled = await ask('claude', 'THROTTLE').catch((e) => e)
  t.ok(throttled instanceof OpenAI.RateLimitError, 'ThrottlingException: 429')
  t.equal(throttled.headers?.get('retry-after'), '3', 'retry-after kept')
  const streamThrottled = await client.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: 'THROTTLE' }] }).catch((e) => e)
  t.ok(streamThrottled instanceof OpenAI.RateLimitError, 'an exception frame first in the stream: a 429 before any byte')
  const wrong = await ask('wrong-secret', 'hi').catch((e) => e)
  t.ok(wrong instanceof OpenAI.AuthenticationError, 'a wrong secret: the fake refuses the signature, the client gets 401')
  t.notOk(up.seen.at(-1)!.verified, 'the fake did reject the signature')
  t.notMatch(wrong.message, /not-the-secret/, 'the secret never appears')
  const seed = await client.chat.completions.create({ model: 'claude', seed: 1, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
  t.ok(seed instanceof OpenAI.BadRequestError)
  t.match(seed.message, /seed/)
  t.equal(up.seen.filter((s) => s.body?.messages?.[0]?.content?.[0]?.text === 'x').length, 0, 'an unsupported param is refused before any call')
  t.ok(up.seen.filter((s) => s.path.includes('claude-3-5')).every((s) => s.verified), 'every other call verified')
})

t.test('an exception frame after content ends the stream with an error the client raises', async (t) => {
  const { client } = await setup(t)
  const stream = await client.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: 'MIDSTREAM' }] })
  let text = ''
  const err = await (async () => {
    for await (const c of stream) text += c.choices[0]?.delta.content ?? ''
  })().catch((e) => e)
  t.equal(text, 'Hel', 'the content before the error arrived')
  t.ok(err instanceof OpenAI.APIError, 'then the client raised')
  t.match(String(err?.message), /Too many requests/)
})
