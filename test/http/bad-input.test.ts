/**
 * Bad client input is the client's fault: a 4xx in OpenAI's error shape ({error:{message,type,param,code}}, valid
 * against the spec's ErrorResponse), never a 500, and never a call upstream. Checked with raw fetch (exact status and
 * body) and with the official openai client (its error classes are what users catch).
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'

const up = await startUpstream(t)
const gw = await startGateway(t, `
server:
  body_limit: 1mb
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-upstream
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })

interface ErrorShape {
  error: { message: string; type: string; param: string | null; code: string | null }
}

/** Send a raw request and check what every bad-input reply must satisfy; returns the parsed error body. */
async function expectError(t: Test, init: { method?: string; path?: string; body?: string | Buffer; headers?: Record<string, string> }, status: number) {
  const res = await fetch(`${gw.url}${init.path ?? '/v1/chat/completions'}`, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  })
  t.equal(res.status, status, `status ${status}`)
  t.ok(res.status < 500, 'a client error, not a server error')
  t.match(res.headers.get('content-type'), /application\/json/)
  t.ok(res.headers.get('x-request-id'), 'x-request-id on errors')
  const body = await res.json() as ErrorShape
  assertSchema(t, 'ErrorResponse', body)
  t.same(Object.keys(body), ['error'])
  t.same(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'], 'exactly message, type, param, code')
  t.type(body.error.message, 'string')
  t.ok(body.error.message.length > 0, 'a message')
  return body
}

const chat = (body: unknown) => JSON.stringify(body)

t.test('malformed JSON -> 400', async (t) => {
  const body = await expectError(t, { body: '{"model": "gpt-4o-mini", "messages": [' }, 400)
  t.equal(body.error.type, 'invalid_request_error')
  t.equal(body.error.code, 'invalid_json')
})

t.test('a JSON body that is not an object -> 400', async (t) => {
  const body = await expectError(t, { body: '[1,2,3]' }, 400)
  t.equal(body.error.type, 'invalid_request_error')
})

t.test('messages not an array -> 400 naming messages', async (t) => {
  const body = await expectError(t, { body: chat({ model: 'gpt-4o-mini', messages: 'hello' }) }, 400)
  t.equal(body.error.param, 'messages')
  t.equal(body.error.code, 'invalid_type')
  t.match(body.error.message, /messages/)

  // The same through the openai client: the type system forbids it, users with plain JS still send it.
  const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: 'hello' as never }).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.BadRequestError, 'openai BadRequestError')
  const e = err as InstanceType<typeof OpenAI.BadRequestError>
  t.equal(e.status, 400)
  t.equal(e.param, 'messages')
  t.equal(e.type, 'invalid_request_error')
})

t.test('missing messages -> 400', async (t) => {
  const body = await expectError(t, { body: chat({ model: 'gpt-4o-mini' }) }, 400)
  t.equal(body.error.param, 'messages')
  t.match(body.error.message, /messages/)
  t.equal(body.error.code, 'missing_required_parameter')

  const err = await client.chat.completions.create({ model: 'gpt-4o-mini' } as never).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.BadRequestError, 'openai BadRequestError')
  t.match(err, { status: 400, param: 'messages', code: 'missing_required_parameter' })
})

t.test('empty messages and a bad role -> 400 naming the field', async (t) => {
  const empty = await expectError(t, { body: chat({ model: 'gpt-4o-mini', messages: [] }) }, 400)
  t.equal(empty.error.param, 'messages')
  const role = await expectError(t, { body: chat({ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'x' }] }) }, 400)
  t.equal(role.error.param, 'messages[0].role')
})

t.test('5 MB body over a 1mb body_limit -> 413', async (t) => {
  const big = chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] })
  const body = await expectError(t, { body: big }, 413)
  t.equal(body.error.type, 'invalid_request_error')
  t.equal(body.error.code, 'request_too_large')

  const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] })
    .catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.APIError, 'openai APIError')
  t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 413)
})

t.test("unknown model -> 400 'Invalid model name passed in model=...', as the LiteLLM proxy answers", async (t) => {
  const body = await expectError(t, { body: chat({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }) }, 400)
  t.equal(body.error.code, 'model_not_found')
  t.equal(body.error.param, 'model')
  t.match(body.error.message, 'Invalid model name passed in model=gpt-9. Call `/v1/models` to view available models for your key.')

  const err = await client.chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.BadRequestError, 'openai BadRequestError')
  t.equal((err as InstanceType<typeof OpenAI.BadRequestError>).code, 'model_not_found')
  await t.rejects(client.embeddings.create({ model: 'gpt-9', input: 'x' }), { status: 400, code: 'model_not_found' }, 'embeddings too')
  await t.rejects(client.models.retrieve('gpt-9'), { status: 404, code: 'model_not_found' }, 'GET /v1/models/{id} for an unknown id stays a 404, as OpenAI answers')
})

t.test('unknown route -> 404', async (t) => {
  const body = await expectError(t, { path: '/v1/chat/complete', body: chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }) }, 404)
  t.equal(body.error.code, 'unknown_url')
  await expectError(t, { method: 'GET', path: '/nope' }, 404)
})

t.test('wrong method -> 405', async (t) => {
  const body = await expectError(t, { method: 'GET', path: '/v1/chat/completions' }, 405)
  t.equal(body.error.code, 'method_not_allowed')
  await expectError(t, { method: 'DELETE', path: '/v1/embeddings' }, 405)
  await expectError(t, { method: 'POST', path: '/v1/models' }, 405)
})

t.test('bad input never reaches the upstream', async (t) => {
  t.equal(up.requests.length, 0, 'no upstream call for any of the above')
  // And the gateway still serves a good request afterwards (the 413 closed only its own connection).
  const ok = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'fine' }] })
  assertSchema(t, 'CreateChatCompletionResponse', ok)
  t.equal(up.requests.length, 1)
})
