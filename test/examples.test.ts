/**
 * The examples run for real: each boots a gateway on 127.0.0.1 port 0 and is driven over HTTP, so a change in the
 * plugin or provider contract that breaks what the README shows fails here. Only the custom provider needs an
 * upstream; it gets a tiny node:http fake on 127.0.0.1 (no network leaves the machine, no key is needed).
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGateway, type Gateway } from '../core/gateway.js'
import { createLogger } from '../core/logger.js'
import { build, main, upstreamTiming } from '../examples/custom-gateway/main.js'
import { acme, buildGateway as buildAcmeGateway } from '../examples/custom-provider/adapter.js'

const examples = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples')
const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'hello there' }], ...extra })

async function listen(t: Test, gateway: Gateway): Promise<string> {
  const { url } = await gateway.listen(0, '127.0.0.1')
  t.teardown(() => gateway.stop())
  return url
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })
}

/** SSE body -> the JSON payloads of its data lines, and whether it ended with [DONE]. */
function sse(text: string): { events: any[]; done: boolean } {
  const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
  return { events: data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)), done: data.at(-1) === '[DONE]' }
}

t.test('custom-plugin: gateway.yaml loads plugin.ts from plugins: and places it in the pipeline', async (t) => {
  const logs: Array<Record<string, any>> = []
  const logger = createLogger({ level: 'info', write: (l) => void logs.push(JSON.parse(l)) })
  const gateway = await createGateway({ config: path.join(examples, 'custom-plugin', 'gateway.yaml'), logger })
  t.same(gateway.plugins.map((p) => p.plugin.name), ['request-id', 'tagger', 'router', 'retry'], 'config order is chain order')
  t.same(gateway.plugins[1]!.options, {
    team_header: 'x-team', tags_header: 'x-tags', max_tags: 4, response_header: 'x-switchyard-tags', default_team: 'unassigned',
  }, 'options from the yaml, defaults from the plugin schema')
  const url = await listen(t, gateway)
  const tagged = () => logs.filter((l) => l.msg === 'tagged request')

  t.test('tags a chat completion from x-team / x-tags', async (t) => {
    const res = await post(`${url}/v1/chat/completions`, chat(), { 'x-team': 'search', 'x-tags': 'beta, eu' })
    t.equal(res.status, 200)
    t.equal(res.headers.get('x-switchyard-tags'), 'team:search,beta,eu')
    const body = (await res.json()) as any
    t.equal(body.object, 'chat.completion')
    t.match(body.choices[0].message, { role: 'assistant', content: /mock response/ })
    const id = res.headers.get('x-request-id')
    for (let i = 0; i < 50 && !tagged().some((l) => l.requestId === id); i++) await new Promise((r) => setTimeout(r, 10))
    const log = tagged().find((l) => l.requestId === id)
    t.match(log, { team: 'search', tags: ['beta', 'eu'], model: 'mock', status: 200, usage: { total_tokens: Number } }, 'logged with usage')
  })

  t.test('a failed call is logged too (ctx.state.done runs where code after `await next()` would not)', async (t) => {
    const res = await post(`${url}/v1/chat/completions`, chat({ mock_response: 'litellm.RateLimitError: slow down' }), { 'x-team': 'ops' })
    t.equal(res.status, 429)
    await res.arrayBuffer()
    const id = res.headers.get('x-request-id')
    for (let i = 0; i < 50 && !tagged().some((l) => l.requestId === id); i++) await new Promise((r) => setTimeout(r, 10))
    t.match(tagged().find((l) => l.requestId === id), { team: 'ops', status: 429, error: 'GW_ERR_UPSTREAM_RATE_LIMIT' })
  })

  t.test('falls back to default_team and caps tags at max_tags', async (t) => {
    const res = await post(`${url}/v1/chat/completions`, chat(), { 'x-tags': 'a,b,,c,d,e,f' })
    t.equal(res.status, 200)
    t.equal(res.headers.get('x-switchyard-tags'), 'team:unassigned,a,b,c,d')
    await res.arrayBuffer()
  })

  t.test('streams: the header is sent with the SSE head, and after next() usage is final', async (t) => {
    const res = await post(`${url}/v1/chat/completions`, chat({ stream: true }), { 'x-team': 'ml' })
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^text\/event-stream/)
    t.equal(res.headers.get('x-switchyard-tags'), 'team:ml')
    const { events, done } = sse(await res.text())
    t.ok(done, 'ends with [DONE]')
    t.equal(events.map((e) => e.choices[0]?.delta?.content ?? '').join(''), 'This is a mock response from Switchyard.')
    const id = res.headers.get('x-request-id')
    // The log line is written once the stream has ended, before the response's close event; wait for it briefly.
    for (let i = 0; i < 50 && !tagged().some((l) => l.requestId === id); i++) await new Promise((r) => setTimeout(r, 10))
    const log = tagged().find((l) => l.requestId === id)
    t.ok(log?.usage?.completion_tokens > 0, 'stream usage seen by the plugin after await next()')
  })
})

t.test('custom-plugin: invalid options fail at boot with a coded error', async (t) => {
  const err = await createGateway({
    config: {
      plugins: { tagger: path.join(examples, 'custom-plugin', 'plugin.ts') },
      pipeline: [{ tagger: { max_tags: 'many', colour: 'red' } }],
      model_list: [{ model_name: 'mock', litellm_params: { model: 'mock/mock-1' } }],
    },
    logger: createLogger({ level: 'silent' }),
  }).then(() => null, (e: unknown) => e as { code: string; message: string })
  t.equal(err?.code, 'GW_ERR_PLUGIN_OPTIONS')
  t.match(err?.message, /unknown key 'colour'/)
  t.match(err?.message, /max_tags/)
})

t.test('custom-gateway: build() composes auth (bundled) with upstream-timing (in-house)', async (t) => {
  const gateway = await build({ masterKey: 'sk-example' })
  t.same(gateway.plugins.map((p) => p.plugin.name), ['request-id', 'auth', 'upstream-timing', 'router', 'retry'])
  t.equal(gateway.plugins.find((p) => p.plugin === upstreamTiming)?.options.header, 'x-switchyard-upstream-ms')
  const url = await listen(t, gateway)

  const denied = await post(`${url}/v1/chat/completions`, chat())
  t.equal(denied.status, 401)
  t.match(await denied.json(), { error: { type: 'authentication_error', code: 'invalid_api_key' } })
  t.equal(denied.headers.get('x-switchyard-upstream-ms'), null, 'rejected before any upstream attempt')

  const wrong = await post(`${url}/v1/chat/completions`, chat(), { authorization: 'Bearer sk-wrong' })
  t.equal(wrong.status, 401)
  await wrong.arrayBuffer()

  const ok = await post(`${url}/v1/chat/completions`, chat(), { authorization: 'Bearer sk-example' })
  t.equal(ok.status, 200)
  t.match(ok.headers.get('x-switchyard-upstream-ms'), /^\d+\.\d$/)
  t.match(ok.headers.get('server-timing'), /^upstream;dur=\d+\.\d$/)
  t.equal(((await ok.json()) as any).object, 'chat.completion')

  // A stream's head is written before the chain unwinds: the middleware must leave it alone, not fail.
  const streamed = await post(`${url}/v1/chat/completions`, chat({ stream: true }), { authorization: 'Bearer sk-example' })
  t.equal(streamed.status, 200)
  t.ok(sse(await streamed.text()).done)
})

t.test('custom-gateway: main() listens on --port, prints the URL, and stops', async (t) => {
  const printed = t.capture(console, 'log')
  const started = await main(['--port', '0'])
  t.teardown(() => started.gateway.stop())
  t.ok(started.port > 0)
  t.same(printed().map((c) => c.args[0]), [`custom gateway listening on ${started.url}`])
  const key = process.env.SWITCHYARD_MASTER_KEY ?? 'sk-demo'
  const res = await post(`${started.url}/v1/chat/completions`, chat(), { authorization: `Bearer ${key}` })
  t.equal(res.status, 200)
  await res.arrayBuffer()
  await started.gateway.stop()
  await t.rejects(fetch(`${started.url}/health/liveliness`), 'closed after stop()')
})

interface Seen { path: string; headers: http.IncomingHttpHeaders; body: any }

/** A tiny OpenAI-compatible fake on 127.0.0.1: records requests, answers with `reply`. */
async function fakeUpstream(t: Test, reply: (seen: Seen, res: http.ServerResponse) => void): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => (raw += c))
    req.on('end', () => {
      const s = { path: req.url ?? '', headers: req.headers, body: raw ? JSON.parse(raw) : null }
      seen.push(s)
      reply(s, res)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen }
}

const completionBody = (model: string, content: string) => ({
  id: 'chatcmpl-acme-1', object: 'chat.completion', created: 1700000000, model,
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
})

t.test('custom-provider: createOpenAICompatible row passed via createGateway({ providers })', async (t) => {
  t.equal(acme.name, 'acme')
  t.same([...acme.operations].sort(), ['chat', 'embeddings'])

  const up = await fakeUpstream(t, (s, res) => {
    if (s.body?.messages?.[0]?.content === 'rate me') {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' })
      res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded' } }))
      return
    }
    if (s.body?.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const base = { id: 'c1', object: 'chat.completion.chunk', created: 1700000000, model: s.body.model }
      for (const piece of ['Hel', 'lo']) res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`)
      res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`)
      res.end('data: [DONE]\n\n')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(completionBody(s.body.model, 'Hello from acme')))
  })
  // The key and the base come from the adapter's env names, as a deployment without api_key/api_base would use.
  const gateway = await buildAcmeGateway(undefined, { ACME_API_KEY: 'acme-key', ACME_API_BASE: up.base })
  const url = await listen(t, gateway)
  const ask = (extra: Record<string, unknown> = {}, content = 'hi') =>
    post(`${url}/v1/chat/completions`, JSON.stringify({ model: 'acme-chat', messages: [{ role: 'user', content }], ...extra }))

  const res = await ask({ temperature: 0.2 })
  t.equal(res.status, 200)
  t.match(await res.json(), { model: 'acme-large-2', choices: [{ message: { content: 'Hello from acme' } }], usage: { total_tokens: 5 } })
  t.equal(up.seen.length, 1)
  t.equal(up.seen[0]!.path, '/v1/chat/completions')
  t.equal(up.seen[0]!.headers.authorization, 'Bearer acme-key')
  t.match(up.seen[0]!.body, { model: 'acme-large-2', temperature: 0.2, messages: [{ role: 'user', content: 'hi' }] })

  const streamed = await ask({ stream: true })
  t.equal(streamed.status, 200)
  const { events, done } = sse(await streamed.text())
  t.ok(done)
  t.equal(events.map((e) => e.choices[0]?.delta?.content ?? '').join(''), 'Hello')
  t.notOk(events.some((e) => e.usage), 'usage chunk withheld: the client did not ask for it')
  t.match(up.seen[1]!.body, { stream: true, stream_options: { include_usage: true } }, 'upstream always asked for usage')

  const rejected = await ask({ logit_bias: { '50256': -100 } })
  t.equal(rejected.status, 400)
  t.match(await rejected.json(), { error: { code: 'unsupported_parameter', param: 'logit_bias', message: /acme does not support parameters: logit_bias/ } })
  t.equal(up.seen.length, 2, 'an unsupported param never reaches the upstream')

  const limited = await ask({}, 'rate me')
  t.equal(limited.status, 429)
  t.equal(limited.headers.get('retry-after'), '7')
  t.match(await limited.json(), { error: { type: 'rate_limit_error', message: 'slow down', code: 'rate_limit_exceeded' } })
})

t.test('custom-provider: a deployment api_base wins over the adapter default', async (t) => {
  const up = await fakeUpstream(t, (s, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(completionBody(s.body.model, 'via api_base')))
  })
  const url = await listen(t, await buildAcmeGateway(up.base, {}))
  const res = await post(`${url}/v1/chat/completions`, JSON.stringify({ model: 'acme-chat', messages: [{ role: 'user', content: 'x' }] }))
  t.equal(res.status, 200)
  t.equal(((await res.json()) as any).choices[0].message.content, 'via api_base')
  t.equal(up.seen[0]!.headers.authorization, undefined, 'no key configured, none sent')
})
