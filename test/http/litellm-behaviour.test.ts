/**
 * LiteLLM behaviour that used to be accepted but did nothing, through the real entry point (a gateway on
 * 127.0.0.1, the official openai client, fake upstreams that record what they receive): per-request timeouts and
 * retries, cost per call, LiteLLM's response headers, readiness fields, the info routes, the access log and the
 * upstream failure logs (never a secret), oversized headers, and draining.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { closedPort, defaultChat, delay, errorReply, sequence, slowStream, startUpstream } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'

const messages = [{ role: 'user' as const, content: 'hello there' }]
const SECRET = 'sk-upstream-secret-never-logged-42'

async function setup(t: Test, extra = '') {
  const up = await startUpstream(t)
  const dead = await closedPort()
  const gw = await startGateway(t, `
model_list:
  - model_name: priced
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: ${SECRET}
      input_cost_per_token: 0.000002
      output_cost_per_token: 0.00001
      timeout: 20
  - model_name: dead
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:${dead}/v1
      api_key: ${SECRET}
  - model_name: mocked
    litellm_params:
      model: mock/m1
${extra}`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 10_000 })
  return { up, gw, client, deadPort: dead }
}

t.test('a per-request timeout in the body or x-litellm-timeout replaces the deployment timeout', async (t) => {
  const { up, client } = await setup(t)
  up.on('chat', delay(1500, defaultChat()))
  const started = Date.now()
  const err = await client.chat.completions.create({ model: 'priced', messages, timeout: 0.3 } as never).catch((e: unknown) => e)
  t.ok(err instanceof OpenAI.APIError, 'the call failed')
  t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 408, 'a timeout (408)')
  t.ok(Date.now() - started < 5000, `it failed at the request's 0.3 s, not the deployment's 20 s (${Date.now() - started} ms)`)
  t.notOk('timeout' in (up.requestsTo('chat')[0]!.body as object), 'the timeout field is the gateway\'s, not sent upstream')

  const viaHeader = await client.chat.completions.create({ model: 'priced', messages }, { headers: { 'x-litellm-timeout': '0.25' } }).catch((e: unknown) => e)
  t.equal((viaHeader as InstanceType<typeof OpenAI.APIError>).status, 408, 'x-litellm-timeout too')
  t.equal((viaHeader as InstanceType<typeof OpenAI.APIError>).headers?.get('x-litellm-timeout'), '0.25', 'x-litellm-timeout says the timeout in force')

  up.on('chat', defaultChat())
  const ok = await client.chat.completions.create({ model: 'priced', messages }).withResponse()
  t.equal(ok.response.headers.get('x-litellm-timeout'), '20', 'without one, the deployment timeout is reported')

  const bad = await fetch(`${client.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'priced', messages, timeout: 'soon' }),
  })
  t.equal(bad.status, 400, 'a timeout that is not a number of seconds is a 400')
  t.equal(((await bad.json()) as { error: { param: string } }).error.param, 'timeout')
})

t.test('num_retries in the body (or x-litellm-num-retries) is honoured and reported', async (t) => {
  const { up, client } = await setup(t)
  up.on('chat', sequence(errorReply(500, { message: 'boom 1' }), errorReply(500, { message: 'boom 2' }), defaultChat()))
  const r = await client.chat.completions.create({ model: 'priced', messages, num_retries: 2 } as never).withResponse()
  t.equal(r.data.choices[0]!.message.content, 'Hello from the fake upstream.')
  t.equal(r.response.headers.get('x-litellm-attempted-retries'), '2')
  t.equal(r.response.headers.get('x-litellm-max-retries'), '2')
  t.equal(up.requestsTo('chat').length, 3, 'three upstream calls')
  t.notOk('num_retries' in (up.requestsTo('chat')[2]!.body as object), 'num_retries is not sent upstream')

  up.on('chat', sequence(errorReply(500, { message: 'boom 3' }), defaultChat()))
  const viaHeader = await client.chat.completions.create({ model: 'priced', messages }, { headers: { 'x-litellm-num-retries': '1' } }).withResponse()
  t.equal(viaHeader.response.headers.get('x-litellm-attempted-retries'), '1', 'the header works too')

  up.on('chat', sequence(errorReply(500, { message: 'boom 4' }), defaultChat()))
  const err = await client.chat.completions.create({ model: 'priced', messages }).catch((e: unknown) => e)
  t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 500, 'without it, no retry (the config has none)')
  t.equal((err as InstanceType<typeof OpenAI.APIError>).headers?.get('x-litellm-attempted-retries'), '0')
})

t.test('cost per call from input/output_cost_per_token, as x-litellm-response-cost and in the access log', async (t) => {
  const { client, gw } = await setup(t)
  const r = await client.chat.completions.create({ model: 'priced', messages }).withResponse()
  const u = r.data.usage!
  const expected = u.prompt_tokens * 0.000002 + u.completion_tokens * 0.00001
  t.ok(expected > 0)
  t.equal(Number(r.response.headers.get('x-litellm-response-cost')), Number(expected.toFixed(12)), 'the header carries the cost')

  const stream = await client.chat.completions.create({ model: 'priced', messages, stream: true })
  for await (const _ of stream) void _
  await new Promise((res) => setTimeout(res, 50))
  const line = gw.logs.filter((l) => l.msg === 'request' && l.model === 'priced' && l.stream === true).pop()
  t.ok(line, 'the stream has an access line')
  t.ok((line!.costUsd as number) > 0, 'streams are priced too (usage always asked upstream)')
  t.equal(line!.costUsd, (line!.promptTokens as number) * 0.000002 + (line!.completionTokens as number) * 0.00001)
})

t.test("LiteLLM's response headers: deployment, api base, version, retries, timeout", async (t) => {
  const { client, up } = await setup(t)
  const r = await client.chat.completions.create({ model: 'priced', messages }).withResponse()
  const h = r.response.headers
  t.match(h.get('x-litellm-model-id'), /\S/)
  t.equal(h.get('x-litellm-model-api-base'), up.url)
  t.match(h.get('x-litellm-version'), /^\d+\.\d+\.\d+/)
  t.equal(h.get('x-litellm-max-retries'), '0')
  t.equal(h.get('x-litellm-attempted-retries'), '0')
  t.ok(h.get('x-litellm-call-id'))
})

t.test('readiness carries LiteLLM fields; /health checks each deployment; /routes; model info routes', async (t) => {
  const { gw } = await setup(t)
  const ready = (await (await fetch(`${gw.url}/health/readiness`)).json()) as Record<string, unknown>
  t.equal(ready.status, 'healthy')
  t.match(ready.litellm_version, /^\d+\.\d+\.\d+/)
  t.same(ready.success_callbacks, [])
  t.equal(ready.db, 'connected', 'the default chain has the embedded store')
  t.ok('cache' in ready)

  const health = (await (await fetch(`${gw.url}/health`)).json()) as Record<string, any>
  t.equal(health.healthy_count, 2, 'the fake upstream and the mock answer')
  t.equal(health.unhealthy_count, 1, 'the dead port does not')
  t.equal(health.unhealthy_endpoints[0].model_name, 'dead')
  t.match(health.unhealthy_endpoints[0].error, /Connection error/)
  t.notMatch(JSON.stringify(health), SECRET, 'no key in the health report')
  const one = (await (await fetch(`${gw.url}/health?model=mocked`)).json()) as Record<string, any>
  t.equal(one.healthy_count, 1)
  t.equal(one.unhealthy_count, 0)

  const routes = (await (await fetch(`${gw.url}/routes`)).json()) as { routes: Array<{ path: string; methods: string[] }> }
  t.ok(routes.routes.some((r) => r.path === '/v1/chat/completions' && r.methods.includes('POST')))
  t.ok(routes.routes.some((r) => r.path === '/model/info'))

  for (const p of ['/model/info', '/v1/model/info']) {
    const info = (await (await fetch(`${gw.url}${p}`)).json()) as { data: Array<Record<string, any>> }
    t.equal(info.data.length, 3, `${p}: one entry per deployment`)
    const priced = info.data.find((d) => d.model_name === 'priced')!
    t.equal(priced.litellm_params.model, 'openai/gpt-4o-mini')
    t.equal(priced.model_info.input_cost_per_token, 0.000002)
    t.notMatch(JSON.stringify(info), SECRET, `${p}: no key`)
  }
  for (const p of ['/model_group/info', '/v1/model_group/info']) {
    const groups = (await (await fetch(`${gw.url}${p}`)).json()) as { data: Array<Record<string, any>> }
    t.same(groups.data.map((g) => g.model_group).sort(), ['dead', 'mocked', 'priced'])
    t.same(groups.data.find((g) => g.model_group === 'priced')!.providers, ['openai'])
  }
  const filtered = (await (await fetch(`${gw.url}/model_group/info?model_group=mocked`)).json()) as { data: unknown[] }
  t.equal(filtered.data.length, 1)
})

t.test('/health is for the admin when auth is on', async (t) => {
  const gw = await startGateway(t, `
pipeline: [request-id, { auth: { master_key: sk-master, keys: [sk-user] } }, router]
model_list: [{ model_name: m, litellm_params: { model: mock/m } }]
`)
  t.equal((await fetch(`${gw.url}/health`)).status, 401)
  t.equal((await fetch(`${gw.url}/health`, { headers: { authorization: 'Bearer sk-user' } })).status, 403)
  t.equal((await fetch(`${gw.url}/health`, { headers: { authorization: 'Bearer sk-master' } })).status, 200)
})

t.test('one access line per request; every failed attempt and retry logged with its cause; no secret in any line', async (t) => {
  const { client, gw, up } = await setup(t)
  await client.chat.completions.create({ model: 'priced', messages })
  up.on('chat', sequence(errorReply(503, { message: 'overloaded right now' }), defaultChat()))
  await client.chat.completions.create({ model: 'priced', messages, num_retries: 1 } as never)
  await client.chat.completions.create({ model: 'dead', messages }).catch(() => undefined)
  await new Promise((res) => setTimeout(res, 50))

  const access = gw.logs.filter((l) => l.msg === 'request' && l.route === '/v1/chat/completions')
  t.equal(access.length, 3, 'one line per request')
  t.equal(access[0]!.level, 'info')
  t.equal(access[0]!.status, 200)
  t.equal(access[0]!.model, 'priced')
  t.ok(access[0]!.deployment && access[0]!.provider === 'openai' && typeof access[0]!.latencyMs === 'number')
  t.ok((access[0]!.promptTokens as number) > 0, 'usage in the line')
  t.equal(access[1]!.attempts, 2, 'the retried call shows its two attempts')
  t.equal(access[2]!.status, 502)
  t.equal(access[2]!.error, 'GW_ERR_UPSTREAM_CONNECTION')

  const failed = gw.logs.filter((l) => l.msg === 'upstream attempt failed')
  t.ok(failed.some((l) => l.upstreamStatus === 503 && String(l.cause).includes('overloaded')), 'the 503 and its message')
  t.ok(failed.some((l) => l.code === 'GW_ERR_UPSTREAM_CONNECTION'), 'the connection failure')
  const retried = gw.logs.filter((l) => l.msg === 'retrying upstream call')
  t.equal(retried.length, 1)
  t.equal(retried[0]!.cause, 'GW_ERR_UPSTREAM_UNAVAILABLE')
  t.notMatch(JSON.stringify(gw.logs), SECRET, 'the upstream key is in no log line')
  t.notMatch(JSON.stringify(gw.logs), 'sk-client', 'nor the client key')
})

t.test('oversized headers get a 431 in the OpenAI error shape, not an empty body', async (t) => {
  const { gw } = await setup(t)
  const { port } = new URL(gw.url)
  const raw = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(Number(port), '127.0.0.1')
    let out = ''
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => (out += d))
    sock.on('end', () => resolve(out))
    sock.on('close', () => resolve(out))
    sock.on('error', reject)
    sock.write(`GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)
  })
  t.match(raw, /^HTTP\/1\.1 431 /)
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: Record<string, unknown> }
  assertSchema(t, 'ErrorResponse', body)
  t.equal(body.error.code, 'request_header_fields_too_large')
})

t.test('draining: readiness 503 and new model calls refused while a stream finishes; the listener stays for probes', async (t) => {
  const up = await startUpstream(t, { chat: slowStream({ intervalMs: 40, chunks: 10 }) })
  const gw = await startGateway(t, `
server: { shutdown_timeout: 10 }
model_list: [{ model_name: s, litellm_params: { model: openai/x, api_base: '${up.url}', api_key: sk-x } }]
`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 })
  const stream = await client.chat.completions.create({ model: 's', messages, stream: true })
  const it = stream[Symbol.asyncIterator]()
  await it.next()
  const stopped = gw.stop()
  await new Promise((r) => setTimeout(r, 30))
  const ready = await fetch(`${gw.url}/health/readiness`)
  t.equal(ready.status, 503, 'readiness says draining')
  t.equal(((await ready.json()) as { status: string }).status, 'draining')
  t.equal((await fetch(`${gw.url}/health/liveliness`)).status, 200, 'liveness still answers: the listener is open')
  const refused = await client.chat.completions.create({ model: 's', messages }).catch((e: unknown) => e)
  t.equal((refused as InstanceType<typeof OpenAI.APIError>).status, 503)
  t.equal((refused as InstanceType<typeof OpenAI.APIError>).code, 'shutting_down')
  let text = ''
  for (;;) {
    const step = await it.next()
    if (step.done) break
    text += step.value.choices[0]?.delta?.content ?? ''
  }
  t.match(text, /w9/, 'the open stream ran to its end')
  await stopped
})

t.test('a stream still open at the shutdown deadline ends with an SSE error event, not a bare close', async (t) => {
  const up = await startUpstream(t, { chat: slowStream({ intervalMs: 50, chunks: 400 }) })
  const gw = await startGateway(t, `
server: { shutdown_timeout: 0.3 }
model_list: [{ model_name: s, litellm_params: { model: openai/x, api_base: '${up.url}', api_key: sk-x } }]
`)
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 's', messages, stream: true }),
  })
  const reader = res.body!.getReader()
  const dec = new TextDecoder()
  let text = dec.decode((await reader.read()).value, { stream: true })
  const stopped = gw.stop()
  for (;;) {
    const step = await reader.read().catch(() => ({ done: true as const, value: undefined }))
    if (step.done) break
    text += dec.decode(step.value, { stream: true })
  }
  await stopped
  const events = text.split('\n\n').filter(Boolean)
  const last = JSON.parse(events[events.length - 1]!.slice(6)) as { error?: { code: string } }
  t.equal(last.error?.code, 'shutting_down', 'the last event is an error event')
  const upstreamCall = await up.waitClosed(0, 2000)
  t.equal(upstreamCall.aborted, true, 'and the upstream call was cancelled')
})

t.test("a deployment's litellm_params.num_retries is honoured (LiteLLM's name for max_retries)", async (t) => {
  const up = await startUpstream(t, { chat: sequence(errorReply(429, { message: 'slow down' }), defaultChat()) })
  const gw = await startGateway(t, `
model_list: [{ model_name: r, litellm_params: { model: openai/x, api_base: '${up.url}', api_key: sk-x, num_retries: 1 } }]
`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 })
  const r = await client.chat.completions.create({ model: 'r', messages }).withResponse()
  t.equal(r.response.headers.get('x-litellm-attempted-retries'), '1')
  t.equal(r.response.headers.get('x-litellm-max-retries'), '1')
  t.equal(up.requestsTo('chat').length, 2)
})

t.test('server.access_log: false turns the access line off', async (t) => {
  const gw = await startGateway(t, `
server: { access_log: false }
model_list: [{ model_name: m, litellm_params: { model: mock/m } }]
`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 })
  await client.chat.completions.create({ model: 'm', messages })
  await new Promise((res) => setTimeout(res, 30))
  t.equal(gw.logs.filter((l) => l.msg === 'request').length, 0)
})

t.test("model_info.mode picks the call /health makes (an embedding model gets an embeddings call)", async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `
model_list:
  - model_name: emb
    litellm_params: { model: openai/text-embedding-3-small, api_base: '${up.url}', api_key: sk-x }
    model_info: { mode: embedding }
`)
  const health = (await (await fetch(`${gw.url}/health`)).json()) as { healthy_count: number }
  t.equal(health.healthy_count, 1)
  t.equal(up.requestsTo('embeddings').length, 1, 'the embeddings route was called')
  t.equal(up.requestsTo('chat').length, 0, 'not chat')
  const groups = (await (await fetch(`${gw.url}/model_group/info`)).json()) as { data: Array<{ mode: string }> }
  t.equal(groups.data[0]!.mode, 'embedding')
})

t.test('deployment headers never carry credentials from an api_base and survive non-ASCII names', async (t) => {
  const up = await startUpstream(t)
  const { port } = new URL(up.url)
  const gw = await startGateway(t, `
model_list:
  - model_name: "modèle-é"
    litellm_params: { model: openai/x, api_base: 'http://user:pa55word@127.0.0.1:${port}/v1', api_key: sk-x }
    model_info: { id: "déploiement-1" }
`)
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'modèle-é', messages }),
  })
  t.equal(res.status, 200, 'a non-ASCII model name does not break the response headers')
  const base = res.headers.get('x-litellm-model-api-base')!
  t.equal(base, `http://127.0.0.1:${port}/v1`, 'no user:password')
  t.equal(res.headers.get('x-litellm-model-id'), encodeURIComponent('déploiement-1'))
})

t.test('server.litellm_headers: false leaves the per-call headers out (x-request-id stays)', async (t) => {
  const gw = await startGateway(t, `
server: { litellm_headers: false }
model_list: [{ model_name: m, litellm_params: { model: mock/m, input_cost_per_token: 0.001 } }]
`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 })
  const r = await client.chat.completions.create({ model: 'm', messages }).withResponse()
  for (const h of ['x-litellm-model-id', 'x-litellm-version', 'x-litellm-attempted-retries', 'x-litellm-timeout', 'x-litellm-response-cost']) {
    t.equal(r.response.headers.get(h), null, `${h} not sent`)
  }
  t.ok(r.response.headers.get('x-request-id'))
})
