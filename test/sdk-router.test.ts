/**
 * The in-process Router's own features, through its real plugins: onSuccess / onFailure callbacks (plain, streamed,
 * failed), a logging sink configured in code (a Langfuse receiver on 127.0.0.1 gets the trace), configureSdk() for
 * the plain functions, a virtual key's budget and spend in a SQLite store shared with a running proxy, and two
 * Routers sharing one cooldown through a real redis-server.
 */
import t from 'tap'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Router, completion, configureSdk, GatewayError, type CallEvent } from '../core/index.js'
import { startGateway } from './helpers/gateway.js'
import { jsonCall } from './helpers/http.js'
import { defaultChat, errorReply, startUpstream } from './helpers/upstream.js'
import { startRedis } from './helpers/redis.js'

const messages = [{ role: 'user' as const, content: 'hello there' }]

t.test('onSuccess / onFailure: one event per call, once it is over, with the reply, usage, cost and deployment', async (t) => {
  const up = await startUpstream(t)
  const events: CallEvent[] = []
  const router = new Router({
    modelList: [
      { model_name: 'g', litellm_params: { model: 'openai/gpt-4o-mini', api_base: up.url, api_key: 'sk-up' }, model_info: { id: 'dep-1' } },
      { model_name: 'broken', litellm_params: { model: 'openai/gpt-4o-mini', api_base: up.url, api_key: 'sk-up' } },
    ],
    numRetries: 0,
    onSuccess: (e) => void events.push(e),
    onFailure: (e) => void events.push(e),
  })
  t.teardown(() => router.close())
  const r = await router.completion({ model: 'g', messages, metadata: { tag: 'x' } })
  await waitFor(() => events.length === 1)
  const e = events[0]!
  t.equal(e.error, null)
  t.equal(e.model, 'g')
  t.same(e.deployment, { id: 'dep-1', provider: 'openai', model: 'gpt-4o-mini' })
  t.equal((e.response as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, r.choices[0]!.message.content)
  t.same(e.usage, r.usage, 'usage as the reply had it')
  t.ok(e.cost > 0, 'priced from the table')
  t.equal(e.cost, (r as unknown as { _hidden_params: { response_cost: number } })._hidden_params.response_cost, 'the same cost the result reports')
  t.ok(e.endTime.getTime() >= e.startTime.getTime())
  t.same(e.request?.metadata, { tag: 'x' })

  // A stream: the event comes once it was read to the end, with the chunks assembled.
  const s = await router.completion({ model: 'g', messages, stream: true })
  let text = ''
  await new Promise((r) => setTimeout(r, 50))
  t.equal(events.length, 1, 'not before the stream was read')
  for await (const c of s) text += c.choices[0]?.delta.content ?? ''
  await waitFor(() => events.length === 2)
  t.equal((events[1]!.response as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, text)
  t.equal(events[1]!.stream, true)
  t.ok(events[1]!.usage && events[1]!.usage.total_tokens > 0)

  up.on('chat', errorReply(503, { message: 'overloaded' }))
  const err = await router.completion({ model: 'broken', messages }).catch((x: unknown) => x)
  t.ok(err instanceof GatewayError && err.status === 503, 'the caller gets the error')
  await waitFor(() => events.length === 3)
  t.equal(events[2]!.error, err, 'onFailure gets the same error')
  t.equal(events[2]!.response, null)
  t.equal(events[2]!.attempts, 1)
})

t.test('a throwing callback never fails the call', async (t) => {
  const router = new Router({
    modelList: [{ model_name: 'm', litellm_params: { model: 'mock/x', mock_response: 'fine' } }],
    onSuccess: () => { throw new Error('callback bug') },
  })
  t.teardown(() => router.close())
  const r = await router.completion({ model: 'm', messages })
  t.equal(r.choices[0]!.message.content, 'fine')
})

t.test('logging sinks configured in code: a Router with callbacks [langfuse] ships to the receiver', async (t) => {
  const got: Array<{ url: string; auth: string | undefined; bytes: number }> = []
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (d: Buffer) => parts.push(d))
    req.on('end', () => {
      got.push({ url: req.url ?? '', auth: req.headers.authorization, bytes: Buffer.concat(parts).length })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const port = (server.address() as { port: number }).port
  const router = new Router({
    modelList: [{ model_name: 'm', litellm_params: { model: 'mock/x', mock_response: 'logged' } }],
    callbacks: ['langfuse'],
    environment: { LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-1', LANGFUSE_HOST: `http://127.0.0.1:${port}` },
  })
  await router.completion({ model: 'm', messages })
  await router.close()
  t.ok(got.length >= 1, 'the receiver got the trace (flushed at close at the latest)')
  t.equal(got[0]!.url, '/api/public/otel/v1/traces')
  t.equal(got[0]!.auth, 'Basic ' + Buffer.from('pk-lf-1:sk-lf-1').toString('base64'))
  t.ok(got[0]!.bytes > 0)
})

t.test('configureSdk: callbacks for the plain functions; replaced by the next settings', async (t) => {
  const seen: CallEvent[] = []
  await configureSdk({ onSuccess: (e) => void seen.push(e) })
  t.teardown(() => configureSdk({}))
  await completion({ model: 'mock/a', messages, mock_response: 'one' })
  await waitFor(() => seen.length === 1)
  t.equal(seen[0]!.model, 'mock/a')
  t.equal(seen[0]!.deployment?.provider, 'mock')
  await configureSdk({})
  await completion({ model: 'mock/a', messages, mock_response: 'two' })
  await new Promise((r) => setTimeout(r, 50))
  t.equal(seen.length, 1, 'no callback after the settings were replaced')
  // A callback this version does not ship to is ignored with a warning, as config.yaml's are; calls still work.
  await configureSdk({ callbacks: ['datadog'], logLevel: 'silent' })
  const r = await completion({ model: 'mock/a', messages, mock_response: 'still works' })
  t.equal(r.choices[0]!.message.content, 'still works')
  t.equal(seen.length, 1)
})

t.test('a store shared with the proxy: a virtual key\'s budget and spend hold for Router calls', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-router-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const up = await startUpstream(t, { chat: defaultChat({ content: 'paid answer' }) })
  const modelList = [{ model_name: 'paid', litellm_params: { model: 'openai/gpt-4o', api_base: up.url, api_key: 'sk-up', input_cost_per_token: 0.001, output_cost_per_token: 0.001 } }]
  const gw = await startGateway(t, { model_list: modelList, general_settings: { master_key: 'sk-master' } }, { env: { ...process.env, SWITCHYARD_DATA_DIR: dir } })
  const made = await jsonCall(gw.url, 'POST', '/key/generate', { max_budget: 0.005, models: ['paid'] }, 'sk-master')
  t.equal(made.status, 200)
  const key = (made.body as { key: string }).key

  const router = new Router({ modelList, sqlitePath: join(dir, 'switchyard.db'), masterKey: 'sk-master' })
  t.teardown(() => router.close())
  const first = await router.completion({ model: 'paid', messages, virtualKey: key })
  t.equal(first.choices[0]!.message.content, 'paid answer')
  const headers = (first as unknown as { _hidden_params: { additional_headers: Record<string, string> } })._hidden_params.additional_headers
  t.equal(headers['x-litellm-key-max-budget'], '0.005', 'the key\'s budget applied')
  // The first call (6 tokens x $0.001) cost more than the whole budget: the next one is refused, as by the proxy.
  const refused = await router.completion({ model: 'paid', messages, virtualKey: key }).catch((e: unknown) => e)
  t.ok(refused instanceof GatewayError && refused.status === 400 && /budget/i.test(refused.message), 'over budget: 400 budget_exceeded')
  const wrong = await router.completion({ model: 'paid', messages, virtualKey: 'sk-not-a-key' }).catch((e: unknown) => e)
  t.ok(wrong instanceof GatewayError && wrong.status === 401, 'an unknown virtual key: 401')
  const asMaster = await router.completion({ model: 'paid', messages })
  t.equal(asMaster.choices[0]!.message.content, 'paid answer', 'a call without a virtual key runs as the master key')
  await router.close()
  // The spend row the Router wrote is in the store the proxy reads.
  const logs = await waitForValue(async () => {
    const r = await jsonCall(gw.url, 'GET', '/spend/logs', undefined, 'sk-master')
    const rows = r.body as Array<{ model_group?: string; spend: number }>
    return Array.isArray(rows) && rows.some((x) => x.model_group === 'paid') ? rows : null
  })
  t.ok(logs.find((x) => x.model_group === 'paid')!.spend > 0, 'the Router\'s call is in /spend/logs, priced')
})

t.test('two Routers on one redis-server share a cooldown', async (t) => {
  const redis = await startRedis(t)
  const a = await startUpstream(t, { chat: errorReply(500, { message: 'down' }) })
  const b = await startUpstream(t, { chat: defaultChat({ content: 'from b' }) })
  const options = () => ({
    modelList: [
      { model_name: 'g', litellm_params: { model: 'openai/g-a', api_base: a.url, api_key: 'sk', order: 1 }, model_info: { id: 'g-a' } },
      { model_name: 'g', litellm_params: { model: 'openai/g-b', api_base: b.url, api_key: 'sk', order: 2 }, model_info: { id: 'g-b' } },
    ],
    numRetries: 1, allowedFails: 0, cooldownTime: 60, redis: { url: redis.url },
  })
  const one = new Router(options())
  const two = new Router(options())
  t.teardown(() => Promise.all([one.close(), two.close()]))
  const r1 = await one.completion({ model: 'g', messages })
  t.equal(r1.choices[0]!.message.content, 'from b', 'router one: a failed, b answered')
  t.equal(a.requestsTo('chat').length, 1)
  const r2 = await two.completion({ model: 'g', messages })
  t.equal(r2.choices[0]!.message.content, 'from b')
  t.equal(a.requestsTo('chat').length, 1, 'router two skipped the deployment router one cooled (shared in Redis)')
})

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function waitForValue<T>(get: () => Promise<T | null>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await get()
    if (v !== null) return v
    if (Date.now() > end) throw new Error('value not there in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('abort: a Router stream stops its upstream read; a queued call leaves the queue and never goes upstream', async (t) => {
  const { slowStream, delay } = await import('./helpers/upstream.js')
  const up = await startUpstream(t, { chat: slowStream({ intervalMs: 30, chunks: 400 }) })
  const router = new Router({
    modelList: [{ model_name: 'capped', litellm_params: { model: 'openai/capped', api_base: up.url, api_key: 'sk', max_parallel_requests: 1 } }],
  })
  t.teardown(() => router.close())
  const ac = new AbortController()
  const stream = await router.completion({ model: 'capped', messages, stream: true, signal: ac.signal })
  let n = 0
  const reading = (async () => {
    for await (const _ of stream) if (++n === 3) ac.abort()
  })()
  const err = await reading.then(() => null, (e: unknown) => e)
  t.ok(err instanceof GatewayError && err.status === 499, `the iteration ends with the abort (got ${String(err)})`)
  const rec = await up.waitClosed(0, 5000)
  t.ok(rec, 'the upstream request was closed')

  // The slot is free again: a long call takes it, a second call queues behind it and is aborted there.
  up.on('chat', delay(800, defaultChat()))
  const holder = router.completion({ model: 'capped', messages, priority: 1 })
  await up.waitForRequests(2, 5000)
  const ac2 = new AbortController()
  const queued = router.completion({ model: 'capped', messages, priority: 1, signal: ac2.signal }).catch((e: unknown) => e)
  await new Promise((r) => setTimeout(r, 100))
  const started = Date.now()
  ac2.abort()
  const qerr = await queued
  t.ok(qerr instanceof GatewayError && qerr.status === 499, 'the queued call rejects with the abort')
  t.ok(Date.now() - started < 500, 'at once, not when the slot frees')
  await holder
  t.equal(up.requestsTo('chat').length, 2, 'the aborted call never reached the upstream')
})

t.test('an in-house plugin in a Router: code after `await next()` runs once a stream was read, and sees its usage', async (t) => {
  const { definePlugin } = await import('../core/index.js')
  const seen: Array<{ stream: boolean; usage: number | null; at: string }> = []
  let reading = 'not yet'
  const probe = definePlugin({
    name: 'probe',
    middleware() {
      return async function probe(ctx, next) {
        await next()
        seen.push({ stream: ctx.state.stream, usage: ctx.state.usage?.total_tokens ?? null, at: reading })
      }
    },
  })
  const router = new Router({
    modelList: [{ model_name: 'm', litellm_params: { model: 'mock/x', mock_response: 'one two three' } }],
    plugins: [probe], pipeline: ['probe', 'router'],
  })
  t.teardown(() => router.close())
  const s = await router.completion({ model: 'm', messages, stream: true })
  await new Promise((r) => setTimeout(r, 30))
  t.equal(seen.length, 0, 'not while the stream is unread')
  reading = 'started'
  for await (const _ of s) reading = 'reading'
  reading = 'read'
  await waitFor(() => seen.length === 1)
  t.ok(seen[0]!.at === 'reading' || seen[0]!.at === 'read', `once the stream was read to the end (${seen[0]!.at})`)
  t.ok(seen[0]!.usage !== null && seen[0]!.usage > 0, 'with the stream\'s usage')
  await router.completion({ model: 'm', messages })
  t.equal(seen.length, 2)
  t.equal(seen[1]!.stream, false)
})

t.test('completion() per call: numRetries, timeout and fallbacks (camelCase and snake_case)', async (t) => {
  const up = await startUpstream(t, { chat: errorReply(503, { message: 'busy' }) })
  const r = await completion({
    model: 'openai/gpt-4o-mini', messages, apiBase: up.url, apiKey: 'sk-up', numRetries: 1, fallbacks: ['mock/backup'],
  })
  t.equal(up.requestsTo('chat').length, 2, 'the failing model was tried twice (numRetries: 1)')
  t.match(r.choices[0]!.message.content, /mock/, 'then the fallback model answered')
  t.equal((r as unknown as { _hidden_params: { custom_llm_provider: string } })._hidden_params.custom_llm_provider, 'mock')

  const { delay } = await import('./helpers/upstream.js')
  up.on('chat', delay(2000, defaultChat()))
  const started = Date.now()
  const slow = await completion({ model: 'openai/gpt-4o-mini', messages, api_base: up.url, api_key: 'sk-up', timeout: 0.3, num_retries: 0 }).catch((e: unknown) => e)
  t.ok(slow instanceof GatewayError && slow.status === 408, 'timeout (seconds): a 408 Timeout')
  t.ok(Date.now() - started < 1500, 'after about 0.3 s, not the upstream\'s 2 s')
})
