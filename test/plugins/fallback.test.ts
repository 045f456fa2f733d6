/**
 * fallback: each kind fires on its trigger (regular after retries, default_fallbacks, context_window_fallbacks,
 * content_policy_fallbacks, a request's own `fallbacks`), for JSON and streams, with LiteLLM's
 * x-litellm-attempted-fallbacks and the fallback deployment's x-litellm-model-id; the fallback deployment's model is
 * what goes upstream; a 400/401 does not fall back. Real gateway, official openai client, two real fake upstreams:
 * `primary` serves the requested groups, `backup` every fallback group.
 */
import t from 'tap'
import OpenAI from 'openai'
import fallback from '../../plugins/fallback/index.js'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, errorReply, sequence, startUpstream } from '../helpers/upstream.js'

const primary = await startUpstream(t)
const backup = await startUpstream(t)
const dep = (name: string, model: string, id: string, base: string) =>
  `  - model_name: ${name}\n    litellm_params: { model: openai/${model}, api_base: ${base}, api_key: sk-up }\n    model_info: { id: ${id} }\n`
const gw = await startGateway(t, `
pipeline: [request-id, router]
upstream:
  - fallback:
      fallbacks: [{ gpt-4: [missing-group, gpt-3.5-turbo] }]
      default_fallbacks: [default-fb]
      context_window_fallbacks: [{ gpt-4: [big] }]
      content_policy_fallbacks: [{ gpt-4: [lenient] }]
  - retry: { num_retries: 1, initial_backoff_ms: 0 }
model_list:
${dep('gpt-4', 'gpt-4-0613', 'primary-gpt4', primary.url)}${dep('other', 'other-real', 'primary-other', primary.url)}${dep('gpt-3.5-turbo', 'gpt-3.5-turbo-0125', 'fb-35', backup.url)}${dep('default-fb', 'default-real', 'fb-default', backup.url)}${dep('big', 'gpt-4-128k', 'fb-big', backup.url)}${dep('lenient', 'lenient-real', 'fb-lenient', backup.url)}${dep('req-fb', 'req-real', 'fb-req', backup.url)}`,
{ plugins: [fallback] })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })
const messages = [{ role: 'user' as const, content: 'hi' }]

const counts = () => ({ p: primary.requestsTo('chat').length, b: backup.requestsTo('chat').length })
const lastBackup = () => backup.requestsTo('chat').at(-1)!.body

async function chat(model: string, extra: Record<string, unknown> = {}) {
  return client.chat.completions.create({ model, messages, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse()
}

async function stream(model: string) {
  const { data, response } = await client.chat.completions.create({ model, messages, stream: true }).withResponse()
  let text = ''
  for await (const c of data) text += c.choices[0]?.delta?.content ?? ''
  return { text, response }
}

t.test('regular fallback after retries (JSON): the fallback deployment answers, with its own model upstream', async (t) => {
  primary.on('chat', errorReply(500, { message: 'primary down' }))
  const before = counts()
  const { data, response } = await chat('gpt-4')
  t.equal(data.choices[0]!.message.content, 'Hello from the fake upstream.')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1', 'one fallback group tried (the unknown one is skipped)')
  t.equal(response.headers.get('x-litellm-model-id'), 'fb-35')
  t.equal(counts().p - before.p, 2, 'the requested group was tried with its retry first')
  t.equal(counts().b - before.b, 1)
  t.equal(lastBackup().model, 'gpt-3.5-turbo-0125', 'the deployment model goes upstream, not the alias')
  t.ok(gw.logs.some((l) => l.msg === 'falling back to another model group' && l.fallback === 'gpt-3.5-turbo' && l.cause === 'GW_ERR_UPSTREAM_SERVER'), 'logged')
  t.ok(gw.logs.some((l) => l.msg === 'fallback group cannot be resolved; skipped' && l.fallback === 'missing-group'), 'unknown group logged and skipped')
})

t.test('regular fallback for a stream failing before its first byte', async (t) => {
  primary.on('chat', errorReply(429, { message: 'slow down', code: 'rate_limit_exceeded' }))
  const { text, response } = await stream('gpt-4')
  t.equal(text, 'Hello from the fake upstream.')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1')
  t.equal(response.headers.get('x-litellm-model-id'), 'fb-35')
  t.equal(lastBackup().stream, true)
})

t.test('default_fallbacks for a group without its own list', async (t) => {
  primary.on('chat', errorReply(503, { message: 'overloaded' }))
  const { response } = await chat('other')
  t.equal(response.headers.get('x-litellm-model-id'), 'fb-default')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1')
  t.equal(lastBackup().model, 'default-real')
})

t.test('context_window_fallbacks on a context-window error, JSON and stream; no retry of the 400', async (t) => {
  primary.on('chat', errorReply(400, { message: "This model's maximum context length is 8192 tokens.", code: 'context_length_exceeded' }))
  const before = counts()
  const { response } = await chat('gpt-4')
  t.equal(response.headers.get('x-litellm-model-id'), 'fb-big')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1')
  t.equal(lastBackup().model, 'gpt-4-128k')
  t.equal(counts().p - before.p, 1, 'a 400 is not retried')
  const s = await stream('gpt-4')
  t.equal(s.response.headers.get('x-litellm-model-id'), 'fb-big')
  t.equal(s.text, 'Hello from the fake upstream.')
})

t.test('content_policy_fallbacks on a content-policy error, JSON and stream', async (t) => {
  primary.on('chat', errorReply(400, { message: 'flagged', code: 'content_policy_violation' }))
  const { response } = await chat('gpt-4')
  t.equal(response.headers.get('x-litellm-model-id'), 'fb-lenient')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1')
  const s = await stream('gpt-4')
  t.equal(s.response.headers.get('x-litellm-model-id'), 'fb-lenient')
  t.equal(s.response.headers.get('x-litellm-attempted-fallbacks'), '1')
})

t.test("a request's own fallbacks replace the config's, and are not sent upstream", async (t) => {
  primary.on('chat', errorReply(500, { message: 'primary down' }))
  const { response } = await chat('gpt-4', { fallbacks: ['req-fb'] })
  t.equal(response.headers.get('x-litellm-model-id'), 'fb-req')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1')
  t.notOk('fallbacks' in lastBackup(), 'the gateway field is stripped')
  t.notOk('fallbacks' in primary.requestsTo('chat').at(-1)!.body, 'stripped on the first group too')
})

t.test('no fallback for 401 or a plain 400, nor with disable_fallbacks', async (t) => {
  const before = counts()
  primary.on('chat', errorReply(401, { message: 'bad key' }))
  let err = await chat('gpt-4').catch((e: InstanceType<typeof OpenAI.APIError>) => e) as InstanceType<typeof OpenAI.APIError>
  t.equal(err.status, 401)
  t.equal(err.headers?.get('x-litellm-attempted-fallbacks'), '0')
  primary.on('chat', errorReply(400, { message: 'bad param' }))
  err = await chat('gpt-4').catch((e) => e)
  t.equal(err.status, 400)
  primary.on('chat', errorReply(500, { message: 'down' }))
  err = await chat('gpt-4', { disable_fallbacks: true }).catch((e) => e)
  t.equal(err.status, 500)
  t.equal(counts().b, before.b, 'the backup upstream never called')
})

t.test('every fallback fails: the last error, after each group was tried', async (t) => {
  primary.on('chat', errorReply(500, { message: 'primary down' }))
  backup.on('chat', errorReply(503, { message: 'backup down too' }))
  t.teardown(() => backup.on('chat', defaultChat()))
  const err = await chat('gpt-4').catch((e) => e) as InstanceType<typeof OpenAI.APIError>
  t.equal(err.status, 503)
  t.match(err.message, /backup down too/)
  t.equal(err.headers?.get('x-litellm-attempted-fallbacks'), '1')
})

t.test('retries then success inside the group: no fallback', async (t) => {
  primary.on('chat', sequence(errorReply(500, { message: 'blip' }), defaultChat()))
  const { response } = await chat('gpt-4')
  t.equal(response.headers.get('x-litellm-model-id'), 'primary-gpt4')
  t.equal(response.headers.get('x-litellm-attempted-retries'), '1')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '0')
})

t.test("the request's own timeout holds for the fallback group too", async (t) => {
  primary.on('chat', errorReply(500, { message: 'primary down' }))
  backup.on('chat', delay(3000, defaultChat()))
  t.teardown(() => {
    primary.on('chat', defaultChat())
    backup.on('chat', defaultChat())
  })
  const started = Date.now()
  const err = await chat('gpt-4', { timeout: 0.3 }).catch((e) => e)
  const took = Date.now() - started
  t.equal(err?.status, 408, `the slow fallback deployment timed out (${err?.status} ${err?.message})`)
  t.ok(took < 2500, `after the request's 0.3 s, not the deployment's 600 s (${took} ms)`)
})
