/**
 * One implementation, two entry points: the same reliability cases run against the proxy (the official `openai`
 * client over HTTP) and against the in-process `Router` (core/router.ts), each on its own fresh fake upstreams, with
 * the same LiteLLM config (model_list + router_settings). For every call the outcome (status, content, the deployment
 * that answered, retries and fallbacks made) and, per case, the requests each upstream received must be the same,
 * and also what the case expects.
 *
 * Cases: a failing deployment retried; a deployment cooled down after allowed_fails and skipped while cooling; a
 * group that keeps failing falls back to another group (plain and streamed); a context-window error takes the
 * context_window_fallbacks; a 400 is neither retried nor fallen back from. Then priority: with a group at capacity,
 * priority-0 calls overtake a priority-100 backlog, through both entry points.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { Router, GatewayError } from '../../core/index.js'
import type { RawConfig } from '../../core/config/load.js'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, errorReply, sequence, startUpstream, type FakeUpstream } from '../helpers/upstream.js'

interface Observed {
  status: number
  content: string | null
  modelId: string | null
  retries: string | null
  fallbacks: string | null
}

interface Case {
  name: string
  config(a: FakeUpstream, b: FakeUpstream): RawConfig
  behave(a: FakeUpstream, b: FakeUpstream): void
  calls: Array<{ model: string; stream?: boolean; content?: string }>
  /** What every entry point must observe. */
  expect: Partial<Observed>[]
  /** Requests per upstream after all calls: [A, B]. */
  hits: [number, number]
}

const fail500 = errorReply(500, { message: 'upstream exploded' })
const fail429 = errorReply(429, { message: 'Rate limit reached' })
const ok = (content: string) => defaultChat({ content })

const deployment = (name: string, model: string, u: FakeUpstream, extra: Record<string, unknown> = {}) => ({
  model_name: name,
  litellm_params: { model: `openai/${model}`, api_base: u.url, api_key: 'sk-up', ...extra },
  model_info: { id: model },
})

const CASES: Case[] = [
  {
    name: 'a failing deployment is retried (num_retries) and answers',
    config: (a) => ({ model_list: [deployment('g', 'g-a', a)], router_settings: { num_retries: 2, retry_policy: {} } }),
    behave: (a) => a.on('chat', sequence(fail500, ok('second try'))),
    calls: [{ model: 'g' }],
    expect: [{ status: 200, content: 'second try', modelId: 'g-a', retries: '1', fallbacks: '0' }],
    hits: [2, 0],
  },
  {
    name: 'a deployment failing past allowed_fails cools down: the next calls go to the other one only',
    config: (a, b) => ({
      model_list: [deployment('g', 'g-a', a, { order: 1 }), deployment('g', 'g-b', b, { order: 2 })],
      router_settings: { num_retries: 1, allowed_fails: 1, cooldown_time: 60, enable_pre_call_checks: true },
    }),
    behave: (a, b) => {
      a.on('chat', fail500)
      b.on('chat', ok('from b'))
    },
    calls: [{ model: 'g' }, { model: 'g' }, { model: 'g' }, { model: 'g' }],
    expect: [
      { status: 200, content: 'from b', modelId: 'g-b' },
      { status: 200, content: 'from b', modelId: 'g-b' },
      { status: 200, content: 'from b', modelId: 'g-b', retries: '0' },
      { status: 200, content: 'from b', modelId: 'g-b', retries: '0' },
    ],
    // a: tried until its second failure cooled it (two calls' first attempts); never again while cooling.
    hits: [2, 4],
  },
  {
    name: 'a group that keeps failing falls back to the next group (fallbacks)',
    config: (a, b) => ({
      model_list: [deployment('g', 'g-a', a), deployment('rescue', 'rescue-b', b)],
      router_settings: { num_retries: 1, fallbacks: [{ g: ['rescue'] }], disable_cooldowns: true },
    }),
    behave: (a, b) => {
      a.on('chat', fail429)
      b.on('chat', ok('rescued'))
    },
    calls: [{ model: 'g' }, { model: 'g', stream: true }],
    expect: [
      { status: 200, content: 'rescued', modelId: 'rescue-b', fallbacks: '1' },
      { status: 200, content: 'rescued' },
    ],
    hits: [4, 2],
  },
  {
    name: 'a context-window error takes context_window_fallbacks, not retries',
    config: (a, b) => ({
      model_list: [deployment('small', 'small-a', a), deployment('big', 'big-b', b)],
      router_settings: { num_retries: 2, context_window_fallbacks: [{ small: ['big'] }], disable_cooldowns: true },
    }),
    behave: (a, b) => {
      a.on('chat', errorReply(400, { message: "This model's maximum context length is 8192 tokens.", code: 'context_length_exceeded' }))
      b.on('chat', ok('a bigger window'))
    },
    calls: [{ model: 'small' }],
    expect: [{ status: 200, content: 'a bigger window', modelId: 'big-b', fallbacks: '1' }],
    hits: [1, 1],
  },
  {
    name: 'a 400 from the upstream is the caller\'s: no retry, no fallback',
    config: (a, b) => ({
      model_list: [deployment('g', 'g-a', a), deployment('rescue', 'rescue-b', b)],
      router_settings: { num_retries: 3, fallbacks: [{ g: ['rescue'] }] },
    }),
    behave: (a) => a.on('chat', errorReply(400, { message: 'Invalid value for temperature', param: 'temperature' })),
    calls: [{ model: 'g' }],
    expect: [{ status: 400, content: null }],
    hits: [1, 0],
  },
]

const messages = (content = 'hi') => [{ role: 'user' as const, content }]

async function viaProxy(t: Test, c: Case, a: FakeUpstream, b: FakeUpstream): Promise<Observed[]> {
  const gw = await startGateway(t, c.config(a, b))
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-none', maxRetries: 0 })
  const out: Observed[] = []
  for (const call of c.calls) {
    try {
      if (call.stream) {
        const { data, response } = await client.chat.completions.create({ model: call.model, messages: messages(), stream: true }).withResponse()
        let text = ''
        for await (const ch of data) text += ch.choices[0]?.delta.content ?? ''
        out.push(observed(200, text, (n) => response.headers.get(n)))
      } else {
        const { data, response } = await client.chat.completions.create({ model: call.model, messages: messages() }).withResponse()
        out.push(observed(200, data.choices[0]!.message.content, (n) => response.headers.get(n)))
      }
    } catch (e) {
      out.push(observed((e as InstanceType<typeof OpenAI.APIError>).status ?? -1, null, () => null))
    }
  }
  await gw.stop()
  return out
}

async function viaRouter(t: Test, c: Case, a: FakeUpstream, b: FakeUpstream): Promise<Observed[]> {
  const cfg = c.config(a, b)
  const router = new Router({ model_list: cfg.model_list as Record<string, unknown>[], router_settings: cfg.router_settings })
  t.teardown(() => router.close())
  const out: Observed[] = []
  for (const call of c.calls) {
    try {
      if (call.stream) {
        let text = ''
        for await (const ch of await router.completion({ model: call.model, messages: messages(), stream: true })) text += ch.choices[0]?.delta.content ?? ''
        out.push(observed(200, text, () => null))
      } else {
        const r = await router.completion({ model: call.model, messages: messages() })
        const headers = (r as unknown as { _hidden_params: { additional_headers: Record<string, string> } })._hidden_params.additional_headers
        out.push(observed(200, r.choices[0]!.message.content, (n) => headers[n] ?? null))
      }
    } catch (e) {
      if (!(e instanceof GatewayError)) throw e
      out.push(observed(e.status, null, () => null))
    }
  }
  await router.close()
  return out
}

function observed(status: number, content: string | null, header: (name: string) => string | null): Observed {
  return {
    status, content,
    modelId: header('x-litellm-model-id'),
    retries: header('x-litellm-attempted-retries'),
    fallbacks: header('x-litellm-attempted-fallbacks'),
  }
}

/** Only the fields both entry points report for this call (a stream's headers are not the Router's to give). */
function comparable(o: Observed, like: Observed): Partial<Observed> {
  const out: Partial<Observed> = { status: o.status, content: o.content }
  for (const k of ['modelId', 'retries', 'fallbacks'] as const) if (like[k] !== null && o[k] !== null) out[k] = o[k]
  return out
}

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const results: Record<string, { obs: Observed[]; hits: [number, number] }> = {}
    for (const [entry, run] of [['proxy', viaProxy], ['Router', viaRouter]] as const) {
      const a = await startUpstream(t)
      const b = await startUpstream(t)
      c.behave(a, b)
      const obs = await run(t, c, a, b)
      const hits: [number, number] = [a.requestsTo('chat').length, b.requestsTo('chat').length]
      results[entry] = { obs, hits }
      obs.forEach((o, i) => t.match(o, c.expect[i]!, `${entry}: call ${i + 1}`))
      t.same(hits, c.hits, `${entry}: upstream requests [A, B]`)
    }
    const p = results.proxy!
    const r = results.Router!
    t.same(r.obs.map((o, i) => comparable(o, p.obs[i]!)), p.obs.map((o, i) => comparable(o, r.obs[i]!)), 'the Router observed what the proxy did')
    t.same(r.hits, p.hits, 'and the upstreams saw the same requests')
  })
}

t.test('priority: at capacity, priority-0 calls overtake a priority-100 backlog (proxy and Router)', async (t) => {
  const config = (u: FakeUpstream): RawConfig => ({
    model_list: [{ model_name: 'capped', litellm_params: { model: 'openai/capped', api_base: u.url, api_key: 'sk-up', max_parallel_requests: 1 } }],
  })
  const label = (u: FakeUpstream) => u.requestsTo('chat').map((r) => (r.body?.messages as Array<{ content: string }>)[0]!.content)
  async function scenario(entry: string, call: (content: string, priority: number) => Promise<unknown>, u: FakeUpstream) {
    const low = Array.from({ length: 6 }, (_, i) => call(`low-${i}`, 100))
    // The first low call holds the one slot; the rest of the backlog queues behind it.
    await u.waitForRequests(1, 10_000)
    await new Promise((r) => setTimeout(r, 100))
    const high = Array.from({ length: 3 }, (_, i) => call(`high-${i}`, 0))
    const settled = await Promise.allSettled([...low, ...high])
    t.ok(settled.every((s) => s.status === 'fulfilled'), `${entry}: every call answered`)
    const order = label(u)
    t.equal(order.length, 9, `${entry}: nine upstream calls`)
    const highAt = order.flatMap((l, i) => (l.startsWith('high') ? [i] : []))
    t.same(highAt, [1, 2, 3], `${entry}: the priority-0 calls went next, ahead of the backlog (order ${order.join(' ')})`)
  }

  const u1 = await startUpstream(t, { chat: delay(150, defaultChat()) })
  const gw = await startGateway(t, config(u1))
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-none', maxRetries: 0 })
  await scenario('proxy', (content, priority) =>
    client.chat.completions.create({ model: 'capped', messages: messages(content), priority } as never), u1)

  const u2 = await startUpstream(t, { chat: delay(150, defaultChat()) })
  const router = new Router({ modelList: config(u2).model_list as Record<string, unknown>[] })
  t.teardown(() => router.close())
  await scenario('Router', (content, priority) => router.completion({ model: 'capped', messages: messages(content), priority }), u2)
})

t.test('a Router checks its options at construction and starts nothing until the first call', async (t) => {
  t.throws(() => new Router({}), { status: 500, message: /modelList/ })
  t.throws(() => new Router({ modelList: [{ model_name: 'x', litellm_params: { model: 'openai/x' } }], routingStratgy: 'x' }), { message: /unknown option 'routing_stratgy'/ })
  const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length
  const router = new Router({ modelList: [{ modelName: 'x', litellmParams: { model: 'mock/x', mockResponse: 'camel' } }] })
  t.equal(process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length, before, 'no socket, timer or file yet')
  const r = await router.completion({ model: 'x', messages: messages() })
  t.equal(r.choices[0]!.message.content, 'camel', 'camelCase model list entries')
  const bad = await router.completion({ model: 'nope', messages: messages() }).catch((e: unknown) => e)
  t.ok(bad instanceof GatewayError && bad.status === 400, 'an unknown model group: 400, as the proxy answers')
  await router.close()
  const closed = await router.completion({ model: 'x', messages: messages() }).catch((e: unknown) => e)
  t.ok(closed instanceof GatewayError && closed.status === 503, 'a closed Router refuses calls')
})

t.test('the same upstream failure is the same error through the proxy, completion() and the Router', async (t) => {
  const { completion } = await import('../../core/index.js')
  const failures = [
    { name: '429 with retry-after', reply: errorReply(429, { message: 'Rate limit reached for gpt-4o-mini', code: 'rate_limit_exceeded' }, { 'retry-after': '7' }) },
    { name: '401', reply: errorReply(401, { message: 'Incorrect API key provided: sk-up.', code: 'invalid_api_key' }) },
    { name: 'context window', reply: errorReply(400, { message: "This model's maximum context length is 8192 tokens.", code: 'context_length_exceeded', param: 'messages' }) },
    { name: '500', reply: errorReply(500, { message: 'The server had an error while processing your request.' }) },
    { name: 'bad param', reply: errorReply(400, { message: "Invalid value for 'temperature'.", param: 'temperature', code: 'invalid_value' }) },
  ]
  const up = await startUpstream(t)
  const model_list = [{ model_name: 'g', litellm_params: { model: 'openai/gpt-4o-mini', api_base: up.url, api_key: 'sk-up' } }]
  const gw = await startGateway(t, { model_list, router_settings: { num_retries: 0, disable_cooldowns: true } })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-none', maxRetries: 0 })
  const router = new Router({ model_list, numRetries: 0, disableCooldowns: true })
  t.teardown(() => router.close())
  for (const f of failures) {
    up.on('chat', f.reply)
    const viaProxy = await client.chat.completions.create({ model: 'g', messages: messages() }).catch((e: InstanceType<typeof OpenAI.APIError>) => e)
    const viaSdk = await completion({ model: 'openai/gpt-4o-mini', messages: messages(), api_base: up.url, api_key: 'sk-up', num_retries: 0 }).catch((e: unknown) => e)
    const viaRouter = await router.completion({ model: 'g', messages: messages() }).catch((e: unknown) => e)
    t.ok(viaProxy instanceof OpenAI.APIError, `${f.name}: the proxy's client got an APIError`)
    const p = viaProxy as InstanceType<typeof OpenAI.APIError>
    const proxySide = { status: p.status, message: p.message.replace(/^\d+ /, ''), type: p.type, code: p.code, param: p.param ?? null, retryAfter: p.headers?.get('retry-after') ?? null }
    for (const [entry, e] of [['completion()', viaSdk], ['Router', viaRouter]] as const) {
      t.ok(e instanceof GatewayError, `${f.name}: ${entry} threw a GatewayError`)
      const g = e as GatewayError
      t.same({ status: g.status, message: g.message, type: g.type, code: g.openaiCode, param: g.param, retryAfter: g.retryAfter === undefined ? null : String(Math.ceil(g.retryAfter)) },
        proxySide, `${f.name}: ${entry}'s error is the proxy's`)
      t.equal(g.provider, 'openai', `${f.name}: ${entry}: provider`)
      t.equal(g.model, 'gpt-4o-mini', `${f.name}: ${entry}: model`)
    }
  }
})
