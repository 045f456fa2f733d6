/**
 * Upstream failures as the official openai client sees them: the upstream's status and error code come back in
 * OpenAI's error shape (so `catch (e) { if (e instanceof RateLimitError) ... }` works through the gateway), transport
 * failures become 502/408, a failure after a stream started arrives as an SSE error event, and a client that hangs
 * up cancels the upstream call. The upstreams are real node:http servers on 127.0.0.1.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import {
  closedPort, defaultChat, delay, errorReply, jsonReply, midStreamError, sequence, slowStream, startUpstream,
} from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'

const up = await startUpstream(t)
const deadPort = await closedPort()
const gw = await startGateway(t, `
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: dead
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:${deadPort}/v1
      api_key: sk-upstream
  - model_name: slow
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-upstream
      timeout: 0.3
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })
const messages = [{ role: 'user' as const, content: 'hello' }]

interface ErrorShape {
  error: { message: string; type: string; param: string | null; code: string | null }
}

async function rawChat(model: string, extra: Record<string, unknown> = {}, url = gw.url): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages, ...extra }),
  })
}

/** Status + a spec-valid OpenAI error body. */
async function expectErrorBody(t: Test, res: Response, status: number): Promise<ErrorShape> {
  t.equal(res.status, status, `status ${status}`)
  t.ok(res.headers.get('x-request-id'), 'x-request-id on errors')
  const body = await res.json() as ErrorShape
  assertSchema(t, 'ErrorResponse', body)
  return body
}

async function clientError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(() => null, (e: unknown) => e)
  if (!(err instanceof OpenAI.APIError)) throw new Error(`expected an openai APIError, got ${String(err)}`)
  return err
}

t.test('upstream 429 with retry-after -> 429, RateLimitError, retry-after header', async (t) => {
  up.on('chat', errorReply(429, { message: 'Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM).', code: 'rate_limit_exceeded' }, { 'retry-after': '7' }))
  const err = await clientError(client.chat.completions.create({ model: 'gpt-4o-mini', messages }))
  t.ok(err instanceof OpenAI.RateLimitError, 'openai RateLimitError')
  t.equal(err.status, 429)
  t.equal(err.headers?.get('retry-after'), '7', 'retry-after passed on')
  t.match(err.message, /Rate limit reached/)
  t.equal(err.code, 'rate_limit_exceeded')
  t.equal(err.type, 'rate_limit_error')

  const body = await expectErrorBody(t, await rawChat('gpt-4o-mini'), 429)
  t.match(body.error.message, /Rate limit reached/)
})

t.test('upstream 401 -> 401 AuthenticationError', async (t) => {
  up.on('chat', errorReply(401, { message: 'Incorrect API key provided: sk-upst****eam.', code: 'invalid_api_key' }))
  const err = await clientError(client.chat.completions.create({ model: 'gpt-4o-mini', messages }))
  t.ok(err instanceof OpenAI.AuthenticationError)
  t.equal(err.status, 401)
  t.equal(err.code, 'invalid_api_key')
  const body = await expectErrorBody(t, await rawChat('gpt-4o-mini'), 401)
  t.equal(body.error.type, 'authentication_error')
})

t.test('upstream 500 -> 500 InternalServerError', async (t) => {
  up.on('chat', errorReply(500, { message: 'The server had an error while processing your request. Sorry about that!' }))
  const err = await clientError(client.chat.completions.create({ model: 'gpt-4o-mini', messages }))
  t.ok(err instanceof OpenAI.InternalServerError)
  t.equal(err.status, 500)
  t.match(err.message, /server had an error/)
  await expectErrorBody(t, await rawChat('gpt-4o-mini'), 500)
})

t.test('upstream 400 context_length_exceeded -> 400 with that code', async (t) => {
  up.on('chat', errorReply(400, {
    message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
    param: 'messages',
    code: 'context_length_exceeded',
  }))
  const err = await clientError(client.chat.completions.create({ model: 'gpt-4o-mini', messages }))
  t.ok(err instanceof OpenAI.BadRequestError)
  t.equal(err.status, 400)
  t.equal(err.code, 'context_length_exceeded')
  t.equal(err.param, 'messages')
  const body = await expectErrorBody(t, await rawChat('gpt-4o-mini'), 400)
  t.equal(body.error.code, 'context_length_exceeded')
  t.equal(body.error.type, 'invalid_request_error')
  t.match(body.error.message, /maximum context length/)

  // Streaming requests fail the same way before the stream starts: a JSON error, not an SSE body.
  const streamed = await rawChat('gpt-4o-mini', { stream: true })
  t.match(streamed.headers.get('content-type'), /application\/json/)
  const sbody = await expectErrorBody(t, streamed, 400)
  t.equal(sbody.error.code, 'context_length_exceeded')
})

t.test('upstream bodies that are not OpenAI JSON', async (t) => {
  up.on('chat', (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'application/json' })
    ctx.res.end('<html>oops</html>')
  })
  let body = await expectErrorBody(t, await rawChat('gpt-4o-mini'), 502)
  t.equal(body.error.code, 'bad_upstream_response', '200 with a non-JSON body -> 502')

  up.on('chat', jsonReply(200, 'just a string'))
  body = await expectErrorBody(t, await rawChat('gpt-4o-mini'), 502)
  t.equal(body.error.code, 'bad_upstream_response', '200 with a JSON string -> 502, not passed through as text')

  up.on('chat', (ctx) => {
    ctx.res.writeHead(503, { 'content-type': 'text/html' })
    ctx.res.end('<html><body>503 Service Temporarily Unavailable</body></html>')
  })
  body = await expectErrorBody(t, await rawChat('gpt-4o-mini'), 503)
  t.equal(body.error.type, 'service_unavailable_error')
  t.match(body.error.message, /openai returned HTTP 503 Service Unavailable \(non-JSON body\)/, 'an HTML error page yields a status message')
  t.notMatch(body.error.message, /<html/i, 'the page itself is not passed on')
})

t.test('upstream refusing connections -> 502 api_connection_error', async (t) => {
  const body = await expectErrorBody(t, await rawChat('dead'), 502)
  t.equal(body.error.type, 'api_connection_error')
  t.equal(body.error.code, 'connection_error')
  const err = await clientError(client.chat.completions.create({ model: 'dead', messages }))
  t.equal(err.status, 502, 'the client sees a 502 from the gateway, not its own connection error')
  t.notOk(err instanceof OpenAI.APIConnectionError, 'the gateway itself answered')
  t.equal(err.type, 'api_connection_error')
})

t.test('deployment timeout 0.3 s with a slow upstream -> 408', async (t) => {
  up.on('chat', delay(3000, defaultChat()))
  const before = up.requests.length
  const started = Date.now()
  const body = await expectErrorBody(t, await rawChat('slow'), 408)
  const elapsed = Date.now() - started
  t.ok(elapsed >= 250 && elapsed < 2000, `answered after the 0.3 s timeout, not the upstream's 3 s (${elapsed} ms)`)
  t.equal(body.error.type, 'timeout_error')
  t.equal(body.error.code, 'timeout')
  const record = await up.waitClosed(before, 1000)
  t.equal(record.aborted, true, 'the timed-out upstream request was cancelled')

  const err = await clientError(client.chat.completions.create({ model: 'slow', messages }))
  t.equal(err.status, 408)
})

t.test('error event mid-stream -> the client iteration throws; raw SSE carries the error event and ends', async (t) => {
  up.on('chat', midStreamError({ message: 'The model produced invalid content.', type: 'server_error' }, { after: 3 }))
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
  const received: unknown[] = []
  const err = await (async () => {
    for await (const chunk of stream) received.push(chunk)
  })().then(() => null, (e: unknown) => e)
  t.ok(err instanceof OpenAI.APIError, 'stream iteration throws an openai APIError')
  t.match((err as Error).message, /The model produced invalid content\./)
  t.equal(received.length, 3, 'the chunks before the error were delivered')
  for (const c of received) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  const res = await rawChat('gpt-4o-mini', { stream: true })
  t.equal(res.status, 200, 'headers were already sent: 200')
  const text = await res.text()
  const events = text.split('\n\n').filter(Boolean)
  const last = events.at(-1)!
  t.match(last, /^data: \{"error":/, 'last event is data: {"error":...}')
  const payload = JSON.parse(last.slice('data: '.length)) as ErrorShape
  assertSchema(t, 'ErrorResponse', payload)
  t.match(payload.error.message, /invalid content/)
  t.notOk(text.includes('[DONE]'), 'no [DONE] after an error')
  t.equal(events.length, 4, 'three chunks, then the error, then the end')
})

t.test('an error event before the first chunk -> a JSON error, not a 200 stream', async (t) => {
  up.on('chat', midStreamError({ message: 'Upstream overloaded', type: 'server_error' }, { after: 0 }))
  const res = await rawChat('gpt-4o-mini', { stream: true })
  t.match(res.headers.get('content-type'), /application\/json/)
  const body = await expectErrorBody(t, res, 500)
  t.match(body.error.message, /Upstream overloaded/)
  const err = await clientError(client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }))
  t.ok(err instanceof OpenAI.InternalServerError, 'the client gets the error from create(), before iterating')
})

t.test('a client that hangs up on a slow non-streaming call cancels the upstream request', async (t) => {
  up.on('chat', delay(5000, defaultChat()))
  const before = up.requests.length
  const ac = new AbortController()
  const pending = client.chat.completions.create({ model: 'gpt-4o-mini', messages }, { signal: ac.signal }).catch((e: unknown) => e)
  await up.waitForRequests(before + 1)
  const at = Date.now()
  ac.abort()
  t.ok(await pending instanceof OpenAI.APIUserAbortError, 'client side: aborted')
  const record = await up.waitClosed(before, 1000)
  t.equal(record.aborted, true, 'upstream request cut')
  t.ok(record.closedAt! - at < 1000, `within a second (${record.closedAt! - at} ms)`)
})

t.test('a client that aborts a slow stream cancels the upstream request', async (t) => {
  up.on('chat', slowStream({ intervalMs: 50, chunks: 200 })) // ~10 s if nobody hangs up
  const before = up.requests.length
  const ac = new AbortController()
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { signal: ac.signal })
  let n = 0
  let abortedAt = 0
  for await (const _chunk of stream) {
    if (++n === 3) {
      abortedAt = Date.now()
      ac.abort()
    }
  }
  t.equal(n, 3, 'stopped after the abort')
  const record = await up.waitClosed(before, 1000)
  t.equal(record.aborted, true, 'upstream response was cut, not finished')
  t.ok(record.closedAt! - abortedAt < 1000, `upstream saw the close ${record.closedAt! - abortedAt} ms after the abort`)

  // The same with a raw fetch whose body is cancelled mid-stream.
  const ac2 = new AbortController()
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true }),
    signal: ac2.signal,
  })
  const reader = res.body!.getReader()
  await reader.read()
  const at = Date.now()
  ac2.abort()
  const rec2 = await up.waitClosed(before + 1, 1000)
  t.equal(rec2.aborted, true)
  t.ok(rec2.closedAt! - at < 1000, 'upstream closed within a second')

  // The gateway is still healthy afterwards.
  up.on('chat', defaultChat())
  const ok = await client.chat.completions.create({ model: 'gpt-4o-mini', messages })
  t.equal(ok.object, 'chat.completion')
})

t.test('retry plugin: one 500, then success -> 200 after 2 upstream requests', async (t) => {
  const flaky = await startUpstream(t)
  const rgw = await startGateway(t, `
upstream:
  - retry: { num_retries: 1, initial_backoff_ms: 10 }
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${flaky.url}
      api_key: sk-upstream
`)
  const rclient = new OpenAI({ baseURL: `${rgw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 })
  flaky.on('chat', sequence(errorReply(500, { message: 'transient' }), defaultChat()))
  const res = await rclient.chat.completions.create({ model: 'gpt-4o-mini', messages })
  assertSchema(t, 'CreateChatCompletionResponse', res)
  t.equal(flaky.requests.length, 2, 'upstream saw 2 requests')
  t.same(flaky.requests[1]!.body, flaky.requests[0]!.body, 'the retry sends the same body')

  // A stream that fails before its first event is retried too.
  flaky.on('chat', sequence(errorReply(503, { message: 'overloaded' }), defaultChat()))
  const stream = await rclient.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
  let chunks = 0
  for await (const _c of stream) chunks++
  t.ok(chunks > 0, 'stream delivered after a retry')
  t.equal(flaky.requests.length, 4)

  // A 400 is the caller's problem: not retried.
  flaky.on('chat', sequence(errorReply(400, { message: 'bad', param: 'temperature', code: 'invalid_value' }), defaultChat()))
  const err = await clientError(rclient.chat.completions.create({ model: 'gpt-4o-mini', messages }))
  t.equal(err.status, 400)
  t.equal(flaky.requests.length, 5, 'a 400 is not retried')

  // Retries run out: two 500s -> the second one is the answer.
  flaky.on('chat', errorReply(500, { message: 'still down' }))
  const err2 = await clientError(rclient.chat.completions.create({ model: 'gpt-4o-mini', messages }))
  t.equal(err2.status, 500)
  t.equal(flaky.requests.length, 7, 'num_retries: 1 -> two attempts in all')
})

t.test('an upstream that ignores stream: true and answers JSON is replayed as a stream, not an empty one', async (t) => {
  const plain = defaultChat({ content: 'whole answer' })
  // The fake answers JSON even though the body asks for a stream.
  up.on('chat', (ctx) => plain({ ...ctx, record: { ...ctx.record, body: { ...ctx.record.body, stream: false } } }))
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true },
  })
  let text = ''
  let finish: string | null = null
  let usage = 0
  for await (const chunk of stream) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk)
    text += chunk.choices[0]?.delta?.content ?? ''
    finish = chunk.choices[0]?.finish_reason ?? finish
    if (chunk.usage) usage++
  }
  t.equal(text, 'whole answer')
  t.equal(finish, 'stop')
  t.equal(usage, 1, 'the usage of the JSON answer arrives as the usage chunk')
  up.on('chat', defaultChat())
})
