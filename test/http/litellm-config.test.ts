/**
 * A LiteLLM proxy config.yaml, exactly as a LiteLLM user writes it (no `pipeline:`), loads and serves: the master
 * key guards the OpenAI routes, `os.environ/` keys are read from the environment given to the gateway, an
 * OpenAI-compatible preset (groq) gets its bare model id, drop_params drops what groq rejects, and the one LiteLLM
 * setting this version ignores is named once at boot instead of silently.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'

const openaiUp = await startUpstream(t)
const groqUp = await startUpstream(t)

const yaml = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: ${openaiUp.url}
      api_key: os.environ/FAKE_KEY
  - model_name: llama-3.1-8b-instant
    litellm_params:
      model: groq/llama-3.1-8b-instant
      api_base: ${groqUp.url}
      api_key: os.environ/FAKE_KEY

litellm_settings:
  drop_params: true
  success_callback: ["datadog"]

general_settings:
  master_key: sk-1234
`
const gw = await startGateway(t, yaml, { env: { FAKE_KEY: 'sk-fake-from-env' } })
const messages = [{ role: 'user' as const, content: 'Hello' }]
const client = (apiKey: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 })

t.test('boot: exactly one warning names litellm_settings.success_callback', async (t) => {
  const warnings = gw.logs.filter((l) => l.level === 'warn')
  const naming = warnings.filter((l) => JSON.stringify(l).includes('success_callback'))
  t.equal(naming.length, 1, 'named in exactly one boot warning')
  t.match(String(naming[0]?.msg), /litellm_settings\.success_callback/)
  t.notMatch(JSON.stringify(warnings), /drop_params|master_key|FAKE_KEY/, 'supported keys and the set env var are not warned about')
  t.equal(gw.gateway.config.settings.drop_params, true, 'litellm_settings.drop_params mapped')
  t.same(gw.gateway.config.pipeline.map((p) => p.name), ['request-id', 'store-sqlite', 'auth', 'keys', 'ui', 'spend', 'rate-limit', 'priority-queue', 'budget', 'mcp', 'router'], 'default chain without a pipeline: key')
})

t.test('no key -> 401 in OpenAI error shape', async (t) => {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages }),
  })
  t.equal(res.status, 401)
  t.ok(res.headers.get('x-request-id'))
  const body = await res.json() as { error: { type: string; code: string | null } }
  assertSchema(t, 'ErrorResponse', body)
  t.equal(body.error.type, 'authentication_error')

  // The openai client insists on an apiKey; a null default header removes the Authorization it would send.
  const keyless = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', defaultHeaders: { Authorization: null }, maxRetries: 0 })
  const err = await keyless.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.AuthenticationError, 'openai AuthenticationError')
  t.equal((err as InstanceType<typeof OpenAI.AuthenticationError>).status, 401)
  t.match((err as Error).message, /No api key passed in/, 'the gateway saw no key at all')

  const models = await fetch(`${gw.url}/v1/models`)
  t.equal(models.status, 401, '/v1/models needs the key too')
  assertSchema(t, 'ErrorResponse', await models.json())
  t.equal(openaiUp.requests.length + groqUp.requests.length, 0, 'nothing reached an upstream')
})

t.test('wrong key -> 401', async (t) => {
  const err = await client('sk-wrong').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.AuthenticationError, 'openai AuthenticationError')
  const e = err as InstanceType<typeof OpenAI.AuthenticationError>
  t.equal(e.status, 401)
  t.equal(e.type, 'authentication_error')
  t.equal(e.code, 'invalid_api_key')
  assertSchema(t, 'ErrorResponse', { error: e.error })
  await t.rejects(client('sk-wrong').embeddings.create({ model: 'gpt-4o', input: 'x' }), { status: 401, code: 'invalid_api_key' })
  t.equal(openaiUp.requests.length + groqUp.requests.length, 0, 'nothing reached an upstream')
})

t.test('master key -> 200 for both models', async (t) => {
  const c = client('sk-1234')
  const a = await c.chat.completions.create({ model: 'gpt-4o', messages })
  assertSchema(t, 'CreateChatCompletionResponse', a)
  t.equal(openaiUp.requests.length, 1)
  t.equal(openaiUp.requests[0]!.body.model, 'gpt-4o')
  t.equal(openaiUp.requests[0]!.headers.authorization, 'Bearer sk-fake-from-env', 'os.environ/FAKE_KEY read from env')

  const b = await c.chat.completions.create({ model: 'llama-3.1-8b-instant', messages })
  assertSchema(t, 'CreateChatCompletionResponse', b)
  t.equal(groqUp.requests.length, 1)
  const seen = groqUp.requests[0]!
  t.equal(seen.path, '/v1/chat/completions', 'groq preset honours api_base')
  t.equal(seen.body.model, 'llama-3.1-8b-instant', 'groq/ prefix stripped')
  t.equal(seen.headers.authorization, 'Bearer sk-fake-from-env')
  t.equal(openaiUp.requests.length, 1, 'the groq call did not go to the openai upstream')

  const stream = await c.chat.completions.create({ model: 'llama-3.1-8b-instant', messages, stream: true })
  let n = 0
  for await (const chunk of stream) {
    n++
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk, `groq chunk ${n} valid`)
  }
  t.ok(n > 1, 'streams through the preset')

  const list = await c.models.list()
  t.same(list.data.map((m) => m.id).sort(), ['gpt-4o', 'llama-3.1-8b-instant'])
})

t.test('drop_params: true drops what groq does not support instead of failing', async (t) => {
  const before = groqUp.requests.length
  const res = await client('sk-1234').chat.completions.create({ model: 'llama-3.1-8b-instant', messages, logprobs: true, temperature: 0.2 })
  t.equal(res.object, 'chat.completion')
  const seen = groqUp.requests[before]!
  t.notOk('logprobs' in seen.body, 'logprobs dropped for groq')
  t.equal(seen.body.temperature, 0.2, 'supported params kept')
})

t.test('the key is accepted from the headers other SDKs use', async (t) => {
  for (const header of ['x-litellm-api-key', 'api-key', 'x-api-key']) {
    const res = await fetch(`${gw.url}/v1/models`, { headers: { [header]: 'sk-1234' } })
    t.equal(res.status, 200, header)
  }
})

t.test('/health/liveliness works without a key', async (t) => {
  const res = await fetch(`${gw.url}/health/liveliness`)
  t.equal(res.status, 200)
  t.equal(await res.json(), "I'm alive!")
  const readiness = await fetch(`${gw.url}/health/readiness`)
  t.equal(readiness.status, 200, 'readiness is public too')
})

t.test('CORS: a browser preflight is answered before auth; responses name the allowed origin', async (t) => {
  const pre = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  })
  t.equal(pre.status, 204, 'no key needed for a preflight')
  t.equal(pre.headers.get('access-control-allow-origin'), '*')
  t.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/)
  t.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type')
  const denied = await fetch(`${gw.url}/v1/models`, { headers: { origin: 'https://app.example' } })
  t.equal(denied.status, 401, 'the real request still needs the key')
  t.equal(denied.headers.get('access-control-allow-origin'), '*', 'and its error is readable by the page')
  t.match(denied.headers.get('access-control-expose-headers') ?? '', /x-request-id/)
})

t.test('CORS restricted to listed origins, or off', async (t) => {
  const only = await startGateway(t, 'server: { cors_origins: ["https://ok.example"] }\nmodel_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n')
  const ok = await fetch(`${only.url}/v1/models`, { headers: { origin: 'https://ok.example' } })
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://ok.example')
  t.match(ok.headers.get('vary') ?? '', /origin/i)
  const other = await fetch(`${only.url}/v1/models`, { headers: { origin: 'https://evil.example' } })
  t.equal(other.headers.get('access-control-allow-origin'), null)
  const off = await startGateway(t, 'server: { cors_origins: [] }\nmodel_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n')
  const res = await fetch(`${off.url}/v1/models`, { headers: { origin: 'https://ok.example' } })
  t.equal(res.headers.get('access-control-allow-origin'), null)
})
