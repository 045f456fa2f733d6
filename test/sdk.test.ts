/**
 * The in-process SDK (`completion`, `embedding` from the package entry), no server. The mock provider answers
 * `mock/...` in process; a node:http fake on 127.0.0.1 stands in for an OpenAI upstream (api_base + api_key),
 * its behaviour chosen by the key the test sends.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  completion, embedding, textCompletion, GatewayError, RateLimitError, AuthenticationError, BadRequestError,
  ContextWindowExceededError, Timeout, type ChatChunk, type TextCompletion, type HiddenParams,
} from '../core/index.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const messages = [{ role: 'user' as const, content: 'hello there' }]

interface Seen { url: string; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }
const seen: Seen[] = []
let tries429 = 0

const upstream = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c: string) => (raw += c))
  req.on('end', () => {
    const body = JSON.parse(raw || '{}') as Record<string, unknown>
    seen.push({ url: req.url!, headers: req.headers, body })
    const key = String(req.headers.authorization ?? '').replace(/^Bearer /, '')
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(payload))
    }
    if (key === 'sk-bad') {
      return json(401, { error: { message: 'Incorrect API key provided: sk-bad.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } })
    }
    if (key === 'sk-ctx') {
      return json(400, { error: { message: "This model's maximum context length is 8192 tokens.", type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } })
    }
    if (key === 'sk-429-once' && tries429++ === 0) {
      return json(429, { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }, { 'retry-after': '0' })
    }
    if (key === 'sk-hang') return // never answers: the SDK's timeout must end the call
    if (req.url!.endsWith('/embeddings')) {
      const dims = typeof body.dimensions === 'number' ? body.dimensions : 3
      return json(200, { object: 'list', model: body.model, data: [{ object: 'embedding', index: 0, embedding: Array(dims).fill(0.5) }], usage: { prompt_tokens: 1, total_tokens: 1 } })
    }
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const base = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model }
      for (const piece of ['Up', 'stream', ' reply']) {
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`)
      }
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`)
      res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } })}\n\n`)
      return void res.end('data: [DONE]\n\n')
    }
    json(200, {
      id: 'chatcmpl-up', object: 'chat.completion', created: 1, model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'upstream says hi' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
    })
  })
})
// Long keep-alive on purpose: the SDK's pooled sockets to it must still not hold the process open.
upstream.keepAliveTimeout = 60_000
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`
t.teardown(() => new Promise<void>((r) => {
  upstream.closeAllConnections()
  upstream.close(() => r())
}))

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

t.test('completion on mock/x returns a chat.completion', async (t) => {
  const r = await completion({ model: 'mock/x', messages })
  t.equal(r.object, 'chat.completion')
  t.equal(r.model, 'x')
  t.equal(r.choices[0]!.message.role, 'assistant')
  t.equal(typeof r.choices[0]!.message.content, 'string')
  t.ok((r.choices[0]!.message.content as string).length > 0)
  t.ok(r.usage && r.usage.total_tokens > 0, 'usage reported')
  const canned = await completion({ model: 'mock/x', messages, mock_response: 'canned answer' })
  t.equal(canned.choices[0]!.message.content, 'canned answer')
})

t.test("input/output_cost_per_token price the call: result._hidden_params.response_cost, as LiteLLM's SDK reports it", async (t) => {
  const r = await completion({ model: 'mock/x', messages, input_cost_per_token: 0.000002, output_cost_per_token: 0.00001 })
  const hidden = (r as unknown as { _hidden_params: HiddenParams })._hidden_params
  t.equal(hidden.response_cost, r.usage!.prompt_tokens * 0.000002 + r.usage!.completion_tokens * 0.00001)
  t.ok(hidden.response_cost > 0)
  t.equal(hidden.custom_llm_provider, 'mock')
  t.notOk('_hidden_params' in JSON.parse(JSON.stringify(r)), 'never serialised')
  const free = await completion({ model: 'mock/x', messages })
  t.equal((free as unknown as { _hidden_params: HiddenParams })._hidden_params.response_cost,
    free.usage!.prompt_tokens * 2.5e-6 + free.usage!.completion_tokens * 10e-6, 'no prices anywhere: the unpriced fallback, never free')
  const e = await embedding({ model: 'mock/e', input: 'abc', input_cost_per_token: 0.001, encoding_format: 'base64' })
  t.ok((e as unknown as { _hidden_params: HiddenParams })._hidden_params.response_cost > 0, 'embeddings too (base64 as well)')
})

t.test('stream: true returns an AsyncIterable of chunks whose contents join into the reply', async (t) => {
  const stream = await completion({ model: 'mock/x', messages, stream: true, mock_response: 'one two three four' })
  t.equal(typeof stream[Symbol.asyncIterator], 'function')
  const chunks: ChatChunk[] = []
  for await (const c of stream) chunks.push(c)
  t.ok(chunks.length > 3, 'several chunks')
  t.ok(chunks.every((c) => c.object === 'chat.completion.chunk'))
  t.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'one two three four')
  t.ok(chunks.at(-1)!.usage && chunks.at(-1)!.usage!.completion_tokens > 0, 'the last chunk carries usage')
  t.ok(chunks.slice(0, -1).every((c) => c.usage === undefined || c.usage === null), 'and only the last')

  const without = await completion({ model: 'mock/x', messages, stream: true, stream_options: { include_usage: false }, mock_response: 'a b' })
  const all: ChatChunk[] = []
  for await (const c of without) all.push(c)
  t.ok(all.length > 1 && all.every((c) => c.usage === undefined || c.usage === null), 'no usage when include_usage is false')
})

t.test('a fake OpenAI upstream via api_base + api_key', async (t) => {
  seen.length = 0
  const r = await completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-good', temperature: 0.1, mock_response: undefined })
  t.equal(r.choices[0]!.message.content, 'upstream says hi')
  t.equal(seen.length, 1)
  t.equal(seen[0]!.url, '/v1/chat/completions')
  t.equal(seen[0]!.headers.authorization, 'Bearer sk-good')
  t.equal(seen[0]!.body.model, 'gpt-4o', 'the provider prefix is not sent')
  t.equal(seen[0]!.body.temperature, 0.1)
  for (const k of ['api_base', 'api_key']) t.notOk(k in seen[0]!.body, `${k} is not sent in the body`)

  const plain = await completion({ model: 'gpt-4o-mini', messages, api_base: base, api_key: 'sk-good' })
  t.equal(plain.choices[0]!.message.content, 'upstream says hi', 'no prefix -> openai')
  t.equal(seen[1]!.body.model, 'gpt-4o-mini')

  const stream = await completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-good', stream: true })
  let text = ''
  for await (const c of stream) text += c.choices[0]?.delta.content ?? ''
  t.equal(text, 'Upstream reply')
  t.same(seen[2]!.body.stream_options, { include_usage: true })
})

t.test('errors are the exported classes, with status', async (t) => {
  const rl = await caught(completion({ model: 'mock/x', messages, mock_response: 'litellm.RateLimitError' }))
  t.ok(rl instanceof RateLimitError, 'RateLimitError')
  t.ok(rl instanceof GatewayError)
  t.equal((rl as RateLimitError).status, 429)

  const auth = await caught(completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-bad' }))
  t.ok(auth instanceof AuthenticationError, 'AuthenticationError')
  t.equal((auth as AuthenticationError).status, 401)
  t.match((auth as Error).message, /Incorrect API key/)

  const ctx = await caught(completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-ctx' }))
  t.ok(ctx instanceof ContextWindowExceededError, 'ContextWindowExceededError')
  t.ok(ctx instanceof BadRequestError, 'also a BadRequestError')
  t.equal((ctx as GatewayError).status, 400)
  t.equal((ctx as GatewayError).openaiCode, 'context_length_exceeded')

  const bad = await caught(completion({ model: 'mock/x', messages: 'not an array' as never }))
  t.ok(bad instanceof BadRequestError, 'request validation happens in the SDK too')
  t.equal((bad as GatewayError).status, 400)
})

t.test('num_retries retries a 429 on the SDK path', async (t) => {
  seen.length = 0
  tries429 = 0
  const r = await completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-429-once', num_retries: 1 })
  t.equal(r.choices[0]!.message.content, 'upstream says hi')
  t.equal(seen.length, 2, 'one failure, one retry')
  tries429 = 0
  const e = await caught(completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-429-once' }))
  t.ok(e instanceof RateLimitError, 'no retries by default')
})

t.test('timeout (seconds) ends a call that gets no answer', async (t) => {
  const started = Date.now()
  const e = await caught(completion({ model: 'openai/gpt-4o', messages, api_base: base, api_key: 'sk-hang', timeout: 0.2 }))
  t.ok(e instanceof Timeout, 'Timeout')
  t.equal((e as GatewayError).status, 408)
  t.ok(Date.now() - started < 3000, 'ended by the timeout')
})

t.test('unknown provider prefix', async (t) => {
  seen.length = 0
  // An unknown prefix is part of an OpenAI(-compatible) model id, as in LiteLLM.
  const r = await completion({ model: 'acme-corp/model-1', messages, api_base: base, api_key: 'sk-good' })
  t.equal(r.choices[0]!.message.content, 'upstream says hi')
  t.equal(seen[0]!.body.model, 'acme-corp/model-1')
  // Naming a provider that does not exist is the caller's mistake: a 400 that names it (LiteLLM raises BadRequestError).
  const e = await caught(completion({ model: 'model-1', messages, custom_llm_provider: 'acme-corp' }))
  t.ok(e instanceof BadRequestError)
  t.equal((e as GatewayError).status, 400)
  t.equal((e as GatewayError).code, 'GW_ERR_VALIDATION')
  t.equal(((e as GatewayError).cause as GatewayError).code, 'GW_ERR_PROVIDER_UNKNOWN')
  t.match((e as Error).message, /acme-corp/)
  const viaCustom = await completion({ model: 'llama', messages, custom_llm_provider: 'groq', api_base: base, api_key: 'sk-good' })
  t.equal(viaCustom.choices[0]!.message.content, 'upstream says hi', 'custom_llm_provider picks the adapter')
})

t.test('embedding returns vectors of the requested dimensions', async (t) => {
  const r = await embedding({ model: 'mock/embed', input: ['a', 'b', 'c'], dimensions: 16 })
  t.equal(r.object, 'list')
  t.equal(r.data.length, 3)
  for (const d of r.data) {
    t.equal((d.embedding as number[]).length, 16)
    const norm = Math.sqrt((d.embedding as number[]).reduce((s, v) => s + v * v, 0))
    t.ok(Math.abs(norm - 1) < 1e-9, 'unit length')
  }
  t.same(r.data.map((d) => d.index), [0, 1, 2])
  const again = await embedding({ model: 'mock/embed', input: 'a', dimensions: 16 })
  t.same(again.data[0]!.embedding, r.data[0]!.embedding, 'deterministic per input')
  const dflt = await embedding({ model: 'mock/embed', input: 'x' })
  t.equal((dflt.data[0]!.embedding as number[]).length, 1536)

  const b64 = await embedding({ model: 'mock/embed', input: 'a', dimensions: 4, encoding_format: 'base64' })
  const buf = Buffer.from(b64.data[0]!.embedding as string, 'base64')
  t.equal(buf.length, 16, '4 float32 values')

  seen.length = 0
  const up = await embedding({ model: 'openai/text-embedding-3-small', input: 'x', dimensions: 5, api_base: base, api_key: 'sk-good' })
  t.equal((up.data[0]!.embedding as number[]).length, 5)
  t.equal(seen[0]!.url, '/v1/embeddings')
  t.equal(seen[0]!.body.dimensions, 5)
})

t.test('a script that used the SDK against a keep-alive upstream exits on its own', async (t) => {
  // The shared engine keeps a pooled keep-alive dispatcher; idle pooled sockets must not keep Node running.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-sdk-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const script = path.join(dir, 'use-sdk.mts')
  const entry = path.resolve(here, '../core/index.ts')
  await writeFile(script, `
import { completion } from ${JSON.stringify(entry)}
const r = await completion({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'x' }], api_base: ${JSON.stringify(base)}, api_key: 'sk-good' })
const m = await completion({ model: 'mock/x', messages: [{ role: 'user', content: 'x' }] })
console.log(r.choices[0].message.content + '|' + m.object)
`)
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: path.resolve(here, '..'), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d))
  child.stderr.on('data', (d: Buffer) => (err += d))
  // Generous: the script's own start (tsx compiling the core) takes seconds on a loaded CI machine; a script that
  // exits on its own does so at once after its output, and one kept alive by a socket never does.
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  t.teardown(() => {
    clearTimeout(killer)
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  t.equal(code, 0, `exited by itself with 0 (stderr: ${err.slice(0, 500)})`)
  t.equal(out.trim(), 'upstream says hi|chat.completion')
})

t.test('textCompletion over a chat-only path: the mock answers text_completion objects, streamed too', async (t) => {
  const r = (await textCompletion({ model: 'mock/x', prompt: 'Say hi', mock_response: 'hi there' })) as TextCompletion
  t.equal(r.object, 'text_completion')
  t.equal(r.choices[0]!.text, 'hi there')
  const s = (await textCompletion({ model: 'mock/x', prompt: 'Say hi', mock_response: 'hi there', stream: true })) as AsyncIterable<TextCompletion>
  let text = ''
  for await (const c of s) {
    t.equal(c.object, 'text_completion')
    text += c.choices[0]?.text ?? ''
  }
  t.equal(text, 'hi there')
})

t.test('an SDK stream closed early (abort + return) is done afterwards', async (t) => {
  const ac = new AbortController()
  const s = await completion({ model: 'mock/x', messages, stream: true, signal: ac.signal, mock_response: 'one two three four' })
  const it = s[Symbol.asyncIterator]()
  t.ok((await it.next()).value, 'first chunk arrives')
  ac.abort()
  await it.return?.()
  t.same(await it.next(), { done: true, value: undefined }, 'the stream is over after abort and return')
})
