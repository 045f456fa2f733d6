/**
 * Upstream hardening (issue 13), through a real gateway and real fake upstreams on 127.0.0.1:
 * - the upstream pool does not cap concurrency by default; a configured cap is announced when reached;
 * - non-JSON error pages never reach the client as the message;
 * - a 200 without `choices` / `data` (or stream events without `choices`) is a 502 that retry can act on;
 * - client keys named after Object.prototype members (`constructor`, `__proto__`, ...) never crash a request;
 * - LiteLLM's own request fields never reach the provider, OpenAI's always do.
 */
import t from 'tap'
import OpenAI from 'openai'
import { Agent, request } from 'undici'
import { startGateway } from '../helpers/gateway.js'
import {
  chatChunks, defaultChat, defaultCompletion, defaultEmbeddings, delay, errorReply, jsonReply, sequence, slowStream, startUpstream, type Behaviour,
} from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'
import { createAgent } from '../../core/upstream/agent.js'
import { createDispatch } from '../../core/upstream/dispatch.js'
import { createLogger } from '../../core/logger.js'
import { createState, type GatewayState, type Outcome } from '../../core/state.js'
import { buildTarget } from '../../core/models.js'
import { createProviderRegistry } from '../../providers/registry.js'
import { GATEWAY_FIELDS } from '../../providers/param-map.js'
import type { Target } from '../../providers/types.js'

const up = await startUpstream(t)
const gw = await startGateway(t, `
model_list:
  - model_name: up
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: mock
    litellm_params:
      model: mock/any
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000 })
const messages = [{ role: 'user' as const, content: 'hello' }]

/** POST a raw JSON text (the openai client would not send prototype-named keys). */
async function rawPost(path: string, json: string, url = gw.url): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json })
  return { status: res.status, text: await res.text() }
}

async function clientError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(() => null, (e: unknown) => e)
  if (!(err instanceof OpenAI.APIError)) throw new Error(`expected an openai APIError, got ${String(err)}`)
  return err
}

/** An SSE reply of the given event payloads, then [DONE]. */
function sseReply(events: unknown[]): Behaviour {
  return (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const e of events) ctx.res.write(`data: ${JSON.stringify(e)}\n\n`)
    ctx.res.end('data: [DONE]\n\n')
  }
}

// ---- 1. the upstream pool ------------------------------------------------------------------------------------

/**
 * Holds every call until `n` have arrived (or `maxWaitMs` passed), then answers them all: with a socket cap below
 * `n` on the way, the rest never arrive while the first ones are held, whatever the machine's speed.
 */
function barrier(n: number, maxWaitMs: number, then: Behaviour): Behaviour {
  let arrived = 0
  let open!: () => void
  const all = new Promise<void>((resolve) => (open = resolve))
  return async (ctx) => {
    if (++arrived === n) open()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs)))])
    clearTimeout(timer)
    return then(ctx)
  }
}

t.test('the default agent does not cap concurrent calls to one provider (the old 256 did)', async (t) => {
  const n = 300
  const slow = await startUpstream(t)
  // No dispatcher passed: the gateway builds its own with createAgent()'s defaults.
  const pgw = await startGateway(t, `
model_list:
  - model_name: slow
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${slow.url}, api_key: sk-upstream }
`)
  // The test's own client must not be the bottleneck: a socket per call.
  const pool = new Agent({ connections: null })
  t.teardown(() => pool.close())
  const call = async () => {
    const r = await request(`${pgw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages }),
      dispatcher: pool,
    })
    await r.body.arrayBuffer()
    return r.statusCode
  }
  t.equal(await call(), 200, 'warm-up call')
  const warm = slow.requests.length

  slow.on('chat', barrier(n, 8000, delay(300, defaultChat())))
  const started = Date.now()
  const statuses = await Promise.all(Array.from({ length: n }, call))
  const elapsed = Date.now() - started
  t.same(new Set(statuses), new Set([200]), 'every call succeeded')
  const held = slow.requests.slice(warm)
  t.equal(held.length, n)
  const firstClosed = Math.min(...held.map((r) => r.closedAt ?? Infinity))
  const arrivedBefore = held.filter((r) => r.receivedAt <= firstClosed).length
  t.equal(arrivedBefore, n, `all ${n} calls were open upstream at once (${arrivedBefore}): none queued in the gateway`)
  // Timing is only reported: this machine may be shared. Under a 256 cap the barrier holds until 8 s.
  t.ok(elapsed < 8000, `${n} concurrent calls took ${elapsed} ms`)
})

/** A body's 'close' (which releases its slot) is emitted a tick after its end: let it run before the next call. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A minimal attempt for createDispatch, outside a gateway (the cap is not wired into createGateway yet). */
function attemptFor(target: Target, stream: boolean, body: Record<string, unknown> = {}) {
  const ac = new AbortController()
  const state: GatewayState = createState(() => {
    throw new Error('no scope in this test')
  }, ac.signal, new Promise<Outcome>(() => {}))
  state.requestId = 'req-test'
  return { op: 'chat' as const, target, request: { model: 'x', messages, ...body, ...(stream ? { stream: true } : {}) }, stream, state, number: 0 }
}

t.test('a configured connection cap logs a warning (once per 10 s) when reached, and counts streams until they end', async (t) => {
  const slow = await startUpstream(t, { chat: delay(200, defaultChat()) })
  const providers = createProviderRegistry()
  const target = buildTarget({ model_name: 'slow', litellm_params: { model: 'openai/gpt-4o-mini', api_base: slow.url, api_key: 'sk-x' } } as never,
    providers, { dropParams: false, requestTimeout: 30, streamTimeout: 30, env: {} })
  const logs: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: 'debug', write: (line) => void logs.push(JSON.parse(line)) })
  const capWarnings = () => logs.filter((l) => l.level === 'warn' && /connection cap/.test(String(l.msg)))

  // Cap 2: sequential calls (JSON, a stream read to its end, an upstream error, a stream abandoned after one chunk)
  // each release their slot, so in-flight never reaches 2.
  const agent = createAgent({ connections: 2 })
  t.teardown(() => agent.close())
  const dispatch = createDispatch({ dispatcher: agent, providers, logger, maxConnections: 2 })
  t.equal((await dispatch(attemptFor(target, false))).kind, 'json')
  await settle()
  const s = await dispatch(attemptFor(target, true))
  if (s.kind !== 'stream') throw new Error('expected a stream')
  let chunks = 0
  for await (const _c of s.chunks) chunks++
  t.ok(chunks > 2, 'stream read to its end')
  await settle()
  slow.on('chat', errorReply(500, { message: 'boom' }))
  await t.rejects(dispatch(attemptFor(target, false)), { code: 'GW_ERR_UPSTREAM_SERVER', status: 500 })
  await settle()
  slow.on('chat', slowStream({ intervalMs: 20, chunks: 50 }))
  const cut = await dispatch(attemptFor(target, true))
  if (cut.kind !== 'stream') throw new Error('expected a stream')
  for await (const _c of cut.chunks) break
  await slow.waitClosed(slow.requests.length - 1, 2000)
  t.equal(slow.requests.at(-1)!.aborted, true, 'the abandoned stream was cut upstream')
  await settle()
  slow.on('chat', defaultChat())
  t.equal((await dispatch(attemptFor(target, false))).kind, 'json')
  t.same(capWarnings(), [], 'no warning while calls finish one by one: every kind of call released its slot')

  // Now 2 at once: the cap is reached.
  slow.on('chat', delay(200, defaultChat()))
  await Promise.all([dispatch(attemptFor(target, false)), dispatch(attemptFor(target, false))])
  const warned = capWarnings()
  t.equal(warned.length, 1, 'one warning')
  t.equal(warned[0]!.msg, `upstream ${slow.origin}: 2 calls in flight, at the connection cap of 2; further calls queue until one finishes. ` +
    'Raise server.upstream_max_connections')
  t.equal(warned[0]!.origin, slow.origin)

  // 6 more at once, within 10 s: still one warning for this origin.
  await Promise.all(Array.from({ length: 6 }, () => dispatch(attemptFor(target, false))))
  t.equal(capWarnings().length, 1, 'not repeated within 10 s')

  // A stream holds its slot until its body ends: one open stream + one call reach a cap of 2.
  const logs2: Array<Record<string, unknown>> = []
  const streamDispatch = createDispatch({
    dispatcher: agent, providers, maxConnections: 2,
    logger: createLogger({ level: 'debug', write: (line) => void logs2.push(JSON.parse(line)) }),
  })
  slow.on('chat', slowStream({ intervalMs: 20, chunks: 100 }))
  const open = await streamDispatch(attemptFor(target, true))
  if (open.kind !== 'stream') throw new Error('expected a stream')
  const it = open.chunks[Symbol.asyncIterator]()
  await it.next()
  slow.on('chat', defaultChat())
  await streamDispatch(attemptFor(target, false))
  t.match(logs2.map((l) => l.msg), [/2 calls in flight, at the connection cap of 2/], 'the open stream still counted')
  await it.return!()

  // Without a cap, nothing is counted or logged.
  const free = createDispatch({ dispatcher: agent, providers, logger })
  await Promise.all(Array.from({ length: 4 }, () => free(attemptFor(target, false))))
  t.equal(capWarnings().length, 1)
})

// ---- 2. error bodies that are not JSON -----------------------------------------------------------------------

t.test('an HTML or plain-text error page never reaches the client; a JSON error message does', async (t) => {
  up.on('chat', (ctx) => {
    ctx.res.writeHead(503, { 'content-type': 'text/html' })
    ctx.res.end('<html><body><h1>503 Service Temporarily Unavailable</h1><p>nginx</p></body></html>')
  })
  let err = await clientError(client.chat.completions.create({ model: 'up', messages }))
  t.equal(err.status, 503, 'the status mapping is kept')
  t.ok(err instanceof OpenAI.InternalServerError)
  t.notMatch(err.message, /<html/i)
  t.notMatch(err.message, /nginx/)
  t.match(err.message, /openai returned HTTP 503 Service Unavailable \(non-JSON body\)/)

  up.on('chat', (ctx) => {
    ctx.res.writeHead(502, { 'content-type': 'text/plain' })
    ctx.res.end('upstream connect error or disconnect/reset before headers. reset reason: overflow')
  })
  err = await clientError(client.chat.completions.create({ model: 'up', messages }))
  t.equal(err.status, 502)
  t.notMatch(err.message, /reset reason/)
  t.match(err.message, /openai returned HTTP 502 Bad Gateway \(non-JSON body\)/)

  up.on('chat', errorReply(503, { message: 'The engine is currently overloaded, please try again later' }))
  err = await clientError(client.chat.completions.create({ model: 'up', messages }))
  t.equal(err.status, 503)
  t.match(err.message, /engine is currently overloaded/, 'a JSON error body still passes its message through')

  up.on('chat', jsonReply(500, { error: 'worker crashed' }))
  err = await clientError(client.chat.completions.create({ model: 'up', messages }))
  t.match(err.message, /worker crashed/, '{"error": "..."} is JSON too: its text is the message')
  up.on('chat', defaultChat())
})

// ---- 3. 200s that are no OpenAI response ---------------------------------------------------------------------

t.test('a 200 without choices / data is a 502 naming the provider and the field, streamed or not', async (t) => {
  for (const body of [{}, { id: 'x', object: 'chat.completion' }]) {
    up.on('chat', jsonReply(200, body))
    const err = await clientError(client.chat.completions.create({ model: 'up', messages }))
    t.equal(err.status, 502)
    t.equal(err.code, 'bad_upstream_response')
    t.match(err.message, /openai/)
    t.match(err.message, /choices/)

    // A stream request answered with that JSON: the same error, before any SSE.
    const res = await rawPost('/v1/chat/completions', JSON.stringify({ model: 'up', messages, stream: true }))
    t.equal(res.status, 502, 'stream request answered with JSON {} -> 502')
    t.match(res.text, /choices/)
  }

  up.on('embeddings', jsonReply(200, { object: 'list', model: 'text-embedding-3-small' }))
  const err = await clientError(client.embeddings.create({ model: 'up', input: 'hi' }))
  t.equal(err.status, 502)
  t.match(err.message, /openai returned a embeddings response without a `data` list|`data`/)

  // Legacy completions too.
  up.on('completions', jsonReply(200, {}))
  const cerr = await clientError(client.completions.create({ model: 'up', prompt: 'hi' }))
  t.equal(cerr.status, 502)
  t.match(cerr.message, /choices/)
  up.on('embeddings', defaultEmbeddings())
  up.on('completions', defaultCompletion())
  up.on('chat', defaultChat())
})

t.test('stream events without choices: a 502 up front, an error event mid-stream; usage-only chunks are accepted', async (t) => {
  up.on('chat', sseReply([{}, {}]))
  let res = await rawPost('/v1/chat/completions', JSON.stringify({ model: 'up', messages, stream: true }))
  t.equal(res.status, 502, 'first event without choices -> a JSON 502, not a 200 stream')
  t.match(res.text, /openai sent a stream event without a `choices` list/)

  up.on('chat', sseReply([null]))
  res = await rawPost('/v1/chat/completions', JSON.stringify({ model: 'up', messages, stream: true }))
  t.equal(res.status, 502, 'a `data: null` event -> 502, not a connection error')
  t.match(res.text, /bad_upstream_response/)

  // Mid-stream: the chunks before it arrive, then the error event.
  up.on('chat', (ctx) => sseReply([...chatChunks(ctx.record.body, 'one two').slice(0, 2), { object: 'chat.completion.chunk' }])(ctx))
  const stream = await client.chat.completions.create({ model: 'up', messages, stream: true })
  let got = 0
  const midErr = await (async () => {
    for await (const _c of stream) got++
  })().then(() => null, (e: unknown) => e)
  t.equal(got, 2)
  t.match((midErr as Error | null)?.message, /without a `choices` list/)

  // A usage-only chunk without `choices` is the usage chunk, normalised to `choices: []`.
  up.on('chat', (ctx) => {
    const chunks = chatChunks({ ...ctx.record.body, stream_options: undefined }, 'fine')
    const usage = { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }
    return sseReply([...chunks, { id: 'chatcmpl-u', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', usage }])(ctx)
  })
  const s2 = await client.chat.completions.create({ model: 'up', messages, stream: true, stream_options: { include_usage: true } })
  let text = ''
  let usageChunk: unknown = null
  for await (const c of s2) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', c)
    text += c.choices[0]?.delta?.content ?? ''
    if (c.usage) usageChunk = c
  }
  t.equal(text, 'fine')
  t.match(usageChunk, { choices: [], usage: { total_tokens: 4 } }, 'usage chunk delivered with choices: []')
  up.on('chat', defaultChat())
})

t.test('retry acts on a 200 {}: it is a 5xx', async (t) => {
  const flaky = await startUpstream(t)
  const rgw = await startGateway(t, `
upstream:
  - retry: { num_retries: 1, initial_backoff_ms: 10 }
model_list:
  - model_name: up
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${flaky.url}, api_key: sk-upstream }
`)
  const rclient = new OpenAI({ baseURL: `${rgw.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 })
  flaky.on('chat', sequence(jsonReply(200, {}), defaultChat()))
  const r = await rclient.chat.completions.create({ model: 'up', messages })
  t.equal(r.choices[0]?.message.content, 'Hello from the fake upstream.')
  t.equal(flaky.requests.length, 2, 'the empty 200 was retried')
})

// ---- 4. prototype-named keys ---------------------------------------------------------------------------------

const PROTO_KEYS = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', 'propertyIsEnumerable', '__defineGetter__']
const MSG = '[{"role":"user","content":"hi"}]'

t.test('prototype-named keys (top level, nested, as values): never a 500; forwarded upstream as plain fields', async (t) => {
  up.on('chat', defaultChat())
  for (const key of PROTO_KEYS) {
    for (const [label, value] of [['object', '{"a":1}'], ['string', '"x"'], ['null', 'null'], ['number', '7']] as const) {
      for (const model of ['mock', 'up']) {
        const before = up.requests.length
        const res = await rawPost('/v1/chat/completions', `{"model":"${model}","messages":${MSG},"${key}":${value}}`)
        t.equal(res.status, 200, `${model}: ${key}: ${label} -> 200 (${res.text.slice(0, 120)})`)
        if (model !== 'up') continue
        const rec = up.requests[before]!
        t.ok(Object.hasOwn(rec.body, key), `${key} (${label}) arrived upstream as a field`)
        t.same(rec.body[key], JSON.parse(value))
        t.equal(Object.getPrototypeOf(rec.body), Object.prototype)
        t.equal(rec.body.model, 'gpt-4o-mini')
      }
    }
  }
  // Streams, legacy completions and embeddings take the same path.
  for (const key of PROTO_KEYS) {
    let res = await rawPost('/v1/chat/completions', `{"model":"up","stream":true,"messages":${MSG},"${key}":{"a":1}}`)
    t.equal(res.status, 200, `stream with ${key}`)
    t.match(res.text, /data: \[DONE\]/)
    res = await rawPost('/v1/completions', `{"model":"up","prompt":"hi","${key}":1}`)
    t.equal(res.status, 200, `completions with ${key}`)
    res = await rawPost('/v1/embeddings', `{"model":"up","input":"hi","${key}":1}`)
    t.equal(res.status, 200, `embeddings with ${key}: ${res.text.slice(0, 100)}`)
    res = await rawPost('/v1/completions', `{"model":"mock","prompt":"hi","${key}":1}`)
    t.equal(res.status, 200, `mock completions with ${key}`)
  }

  // Fuzz-ish: the same names as values and in nested objects.
  for (const key of PROTO_KEYS) {
    for (const model of ['mock', 'up']) {
      const cases: Array<[string, string]> = [
        ['response_format', `{"model":"${model}","messages":${MSG},"response_format":{"type":"json_object","${key}":{"a":1}}}`],
        ['messages[0]', `{"model":"${model}","messages":[{"role":"user","content":"hi","${key}":1}]}`],
        ['stream_options', `{"model":"${model}","stream":true,"messages":${MSG},"stream_options":{"include_usage":true,"${key}":1}}`],
        ['metadata', `{"model":"${model}","messages":${MSG},"metadata":{"${key}":1}}`],
        ['tools', `{"model":"${model}","messages":${MSG},"tools":[{"type":"function","function":{"name":"f","parameters":{"${key}":1}}}]}`],
      ]
      for (const [where, json] of cases) {
        const res = await rawPost('/v1/chat/completions', json)
        t.equal(res.status, 200, `${model}: ${key} in ${where} -> 200 (${res.text.slice(0, 120)})`)
      }
    }
    // As the model name: an unknown model (LiteLLM's 400), never a prototype member found by name.
    for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) {
      const res = await rawPost(path, `{"model":"${key}","messages":${MSG},"prompt":"hi","input":"hi"}`)
      t.equal(res.status, 400, `model "${key}" on ${path} -> unknown model (400, as LiteLLM)`)
    }
    // As a message role or the response_format type: a 400, not a 500.
    let res = await rawPost('/v1/chat/completions', `{"model":"up","messages":[{"role":"${key}","content":"hi"}]}`)
    t.equal(res.status, 400, `role "${key}" -> 400`)
    res = await rawPost('/v1/chat/completions', `{"model":"up","messages":${MSG},"response_format":{"${key}":"json_object"}}`)
    t.equal(res.status, 400, `response_format without type, with "${key}" -> 400`)
  }
  // The upstream got the nested keys as they were sent.
  const rec = up.requests.find((r) => r.body?.response_format && Object.hasOwn(r.body.response_format, '__proto__'))
  t.ok(rec, 'a nested __proto__ key reached the upstream as a field')
})

// ---- 5. LiteLLM-only fields ----------------------------------------------------------------------------------

/** Values that make no gateway feature act (a mock flag set to true would answer without calling upstream). */
function neutralValue(name: string): unknown {
  if (name.startsWith('mock_') || name === 'caching' || name === 'disable_fallbacks' || name === 'no-log') return false
  if (name === 'mock_response') return null
  if (name === 'timeout' || name === 'stream_timeout' || name === 'request_timeout') return 60
  if (name === 'num_retries' || name === 'max_retries' || name === 'priority') return 0
  if (name.endsWith('fallbacks') || name === 'tags' || name === 'guardrails' || name === 'additional_drop_params') return []
  if (name === 'metadata' || name === 'litellm_metadata' || name === 'cache') return {}
  if (name === 'drop_params') return false
  return 'x'
}

t.test('LiteLLM-only request fields never reach the provider; OpenAI params do', async (t) => {
  up.on('chat', defaultChat())
  const stripped = [...GATEWAY_FIELDS, 'user_api_key', 'user_api_key_alias', 'user_api_key_team_id', 'user_api_key_user_id']
  // The names the issue lists, whatever the set holds.
  for (const must of ['metadata', 'litellm_metadata', 'priority', 'fallbacks', 'context_window_fallbacks', 'content_policy_fallbacks',
    'tags', 'num_retries', 'timeout', 'mock_response', 'mock_timeout', 'mock_testing_rate_limit_error', 'mock_testing_fallbacks',
    'mock_tool_calls', 'caching', 'cache', 'guardrails', 'disable_fallbacks', 'max_retries', 'request_timeout', 'api_key',
    'api_base', 'base_url', 'api_version', 'organization']) {
    t.ok(stripped.includes(must), `${must} is stripped`)
  }
  t.ok(stripped.length > 100, `${stripped.length} names`)
  const openaiParams = {
    temperature: 0.2, top_p: 0.9, n: 1, seed: 42, user: 'end-user-1', stop: ['\n'], max_tokens: 50, max_completion_tokens: 50,
    presence_penalty: 0, frequency_penalty: 0, logit_bias: { 50256: -100 }, logprobs: false, response_format: { type: 'text' },
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }], tool_choice: 'auto',
    parallel_tool_calls: true, store: false, service_tier: 'auto', reasoning_effort: 'low', prediction: null, modalities: ['text'],
  }
  const body: Record<string, unknown> = { model: 'up', messages, ...openaiParams }
  for (const name of stripped) body[name] = neutralValue(name)

  for (const stream of [false, true]) {
    const before = up.requests.length
    const res = await rawPost('/v1/chat/completions', JSON.stringify({ ...body, stream }))
    t.equal(res.status, 200, `stream=${stream}: ${res.text.slice(0, 200)}`)
    const got = up.requests[before]!.body as Record<string, unknown>
    const leaked = stripped.filter((k) => Object.hasOwn(got, k))
    t.same(leaked, [], `stream=${stream}: no LiteLLM-only field arrived upstream`)
    for (const [k, v] of Object.entries(openaiParams)) t.same(got[k], v, `${k} arrived`)
    t.equal(got.model, 'gpt-4o-mini')
    t.same(got.messages, messages)
    t.equal(got.stream, stream)
    t.notOk('api_key' in got || 'authorization' in got)
    t.equal(up.requests[before]!.headers.authorization, 'Bearer sk-upstream', 'the deployment key is the one used')
  }

  // The flags the issue names, one at a time, with the values that used to reach the provider.
  for (const [k, v] of [['mock_testing_rate_limit_error', false], ['mock_testing_fallbacks', false], ['fallbacks', ['other']],
    ['api_base', 'http://127.0.0.1:9/v1'], ['user_api_key_metadata', { a: 1 }]] as const) {
    const before = up.requests.length
    const res = await rawPost('/v1/chat/completions', JSON.stringify({ model: 'up', messages, [k]: v }))
    t.equal(res.status, 200, `${k}: ${res.text.slice(0, 120)}`)
    t.notOk(Object.hasOwn(up.requests[before]!.body, k), `${k} not forwarded`)
  }

  // Embeddings take the same filter.
  const before = up.requests.length
  const res = await rawPost('/v1/embeddings', JSON.stringify({ model: 'up', input: 'hi', user: 'u', dimensions: 4, metadata: {}, tags: [], api_key: 'x' }))
  t.equal(res.status, 200)
  const got = up.requests[before]!.body
  t.same(Object.keys(got).sort(), ['dimensions', 'input', 'model', 'user'])
})
