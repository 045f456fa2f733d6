/**
 * rate-limit, in process: a real gateway (SQLite store, auth, keys, rate-limit, router) in front of a fake upstream,
 * called through the official openai client with keys made by /key/generate. Time is a fake clock handed to the
 * gateway, so "the next minute" is a clock step, not a sleep.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, errorReply, startUpstream, type Behaviour, type ReplyContext } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'
import { tempDb } from './keys-harness.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import rateLimit from '../../plugins/rate-limit/index.js'
import { refused } from '../helpers/assert.js'

const MASTER = 'sk-master-rl-1234'
/** 00:00:05 of some minute: 55 s are left in the window. */
let now = Date.UTC(2030, 0, 1, 0, 0, 5)
const clock = { now: () => now }

const up = await startUpstream(t)
const gw = await startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(tempDb(t))} }
  - auth: { master_key: ${MASTER} }
  - keys
  - rate-limit
  - router
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up }
  - model_name: other
    litellm_params: { model: openai/other, api_base: ${up.url}, api_key: sk-up }
`, { plugins: [rateLimit], clock })

const admin = (path: string, body: unknown) => jsonCall(gw.url, 'POST', path, body, MASTER)
async function newKey(body: Record<string, unknown>): Promise<string> {
  const r = await admin('/key/generate', body)
  if (r.status !== 200) throw new Error(`key/generate: ${JSON.stringify(r.body)}`)
  return r.body.key
}
const client = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 })
const HI = [{ role: 'user' as const, content: 'hi' }]
/** The fake upstream's usage for "hi" and its default reply: 1 prompt + 8 completion tokens. */
const CALL_TOKENS = 9

async function chat(key: string, extra: Record<string, unknown> = {}) {
  const { data, response } = await client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, ...extra } as any).withResponse()
  return { data: data as any, headers: response.headers }
}


t.test('rpm_limit 3: three calls, then 429 with retry-after; the next minute admits again', async (t) => {
  const key = await newKey({ rpm_limit: 3 })
  const remaining: string[] = []
  for (let i = 0; i < 3; i++) {
    const r = await chat(key)
    t.equal(r.headers.get('x-ratelimit-limit-requests'), '3')
    remaining.push(r.headers.get('x-ratelimit-remaining-requests')!)
  }
  t.same(remaining, ['2', '1', '0'], 'remaining requests decrease')
  const e = await refused(t, chat(key), 'fourth call')
  t.ok(e instanceof OpenAI.RateLimitError, 'the client raises RateLimitError')
  t.equal(e.headers.get('retry-after'), '55', 'retry-after: seconds to the next minute')
  t.equal(e.error?.type, 'rate_limit_error')
  t.equal(e.error?.code, 'rate_limit_exceeded')
  t.match(e.error?.message, /Rate limit exceeded for api_key: .*rpm_limit: 3, current_rpm: 3/)
  now += 55_000
  const r = await chat(key)
  t.equal(r.headers.get('x-ratelimit-remaining-requests'), '2', 'a new window')
})

t.test('tpm_limit: admission reserves an estimate, the real usage replaces it', async (t) => {
  const limit = 40
  const key = await newKey({ tpm_limit: limit })
  const est = promptTokensEstimate('chat', { model: 'gpt-4o-mini', messages: HI, max_tokens: 5 }) + 5
  let used = 0
  let admitted = 0
  for (;;) {
    const fits = used === 0 || used + est <= limit
    if (!fits) break
    const r = await chat(key, { max_tokens: 5 })
    t.equal(r.data.usage.total_tokens, CALL_TOKENS)
    t.equal(r.headers.get('x-ratelimit-limit-tokens'), String(limit))
    t.equal(r.headers.get('x-ratelimit-remaining-tokens'), String(Math.max(0, limit - used - est)),
      `call ${admitted + 1}: remaining = limit - real usage so far - this call's estimate`)
    used += CALL_TOKENS
    admitted++
  }
  t.ok(admitted >= 2, `several calls fit (${admitted})`)
  const e = await refused(t, chat(key, { max_tokens: 5 }), 'a call whose estimate does not fit')
  t.match(e.error?.message, new RegExp(`tpm_limit: ${limit}, current_tpm: ${used}`))
})

/** Holds chat replies until released, to keep calls in flight. */
function gate() {
  const waiting: Array<() => void> = []
  const behaviour: Behaviour = async (ctx: ReplyContext) => {
    await new Promise<void>((resolve) => waiting.push(resolve))
    await defaultChat()(ctx)
  }
  return { behaviour, waiting, releaseOne: () => waiting.shift()?.(), releaseAll: () => { for (const r of waiting.splice(0)) r() } }
}

t.test('max_parallel_requests 2: the third concurrent call is refused; after one finishes a new one passes', async (t) => {
  const key = await newKey({ max_parallel_requests: 2 })
  const g = gate()
  up.on('chat', g.behaviour)
  t.teardown(() => { g.releaseAll(); up.on('chat', defaultChat()) })
  const before = up.requestsTo('chat').length
  const a = chat(key)
  const b = chat(key)
  while (g.waiting.length < 2) await new Promise((r) => setTimeout(r, 5))
  const e = await refused(t, chat(key), 'third concurrent call')
  t.match(e.error?.message, /Max parallel request limit reached.*max_parallel_requests: 2/)
  t.equal(e.headers.get('retry-after'), '1')
  g.releaseOne()
  await a
  const c = chat(key)
  while (g.waiting.length < 2) await new Promise((r) => setTimeout(r, 5))
  g.releaseAll()
  await Promise.all([b, c])
  t.equal(up.requestsTo('chat').length - before, 3, 'the refused call never reached upstream')
})

t.test('a failed call frees its parallel slot', async (t) => {
  const key = await newKey({ max_parallel_requests: 1 })
  up.on('chat', errorReply(500, { message: 'boom', type: 'server_error' }))
  t.teardown(() => up.on('chat', defaultChat()))
  for (let i = 0; i < 3; i++) {
    const status = await chat(key).then(() => 'ok', (e: any) => e?.status)
    t.equal(status, 500, `call ${i + 1} fails upstream, not on the limit`)
  }
})

t.test('team limit, all-or-nothing: a call refused by the key counts nowhere', async (t) => {
  const team = await admin('/team/new', { team_alias: 'rl', rpm_limit: 2 })
  t.equal(team.status, 200)
  const tight = await newKey({ team_id: team.body.team_id, rpm_limit: 1 })
  const loose = await newKey({ team_id: team.body.team_id, rpm_limit: 10 })
  await chat(tight)
  const e = await refused(t, chat(tight), 'second call on the 1-RPM key')
  t.match(e.error?.message, /api_key: .*rpm_limit: 1/)
  const r = await chat(loose)
  t.equal(r.headers.get('x-ratelimit-remaining-requests'), '0', 'the team has one left after the refused call: none now')
  const e2 = await refused(t, chat(loose), 'the team is at its limit')
  t.match(e2.error?.message, /team: .*rpm_limit: 2, current_rpm: 2/)
})

t.test('end-user limits', async (t) => {
  const c = await admin('/customer/new', { user_id: 'eu-rl', rpm_limit: 1 })
  t.equal(c.status, 200, JSON.stringify(c.body))
  const key = await newKey({})
  await chat(key, { user: 'eu-rl' })
  const e = await refused(t, chat(key, { user: 'eu-rl' }), 'the end user at its limit')
  t.match(e.error?.message, /end_user: eu-rl.*rpm_limit: 1/)
  await chat(key, { user: 'someone-else' })
  await chat(key)
  t.pass('other end users and calls without one pass')
})

t.test('per-model limits on a key (metadata.model_rpm_limit, and top-level model_tpm_limit)', async (t) => {
  const key = await newKey({ metadata: { model_rpm_limit: { 'gpt-4o-mini': 1 } } })
  await chat(key)
  const e = await refused(t, chat(key), 'second call to the limited model')
  t.match(e.error?.message, /model: gpt-4o-mini.*rpm_limit: 1/)
  await client(key).chat.completions.create({ model: 'other', messages: HI })
  t.pass('another model passes')
  const k2 = await newKey({ model_tpm_limit: { other: 5 } })
  const { response } = await client(k2).chat.completions.create({ model: 'other', messages: HI, max_tokens: 2 }).withResponse()
  t.equal(response.headers.get('x-ratelimit-limit-tokens'), '5')
  await refused(t, client(k2).chat.completions.create({ model: 'other', messages: HI, max_tokens: 2 }), 'model tpm reached')
  await chat(k2)
  t.pass('the key\'s other model is not limited')
})

t.test('streams count: requests at admission, real tokens when the stream ends', async (t) => {
  const key = await newKey({ rpm_limit: 2, tpm_limit: 1000 })
  const s = await client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true, stream_options: { include_usage: true }, max_tokens: 5 }).withResponse()
  t.equal(s.response.headers.get('x-ratelimit-remaining-requests'), '1', 'headers on a stream')
  let usage: any = null
  for await (const chunk of s.data) if (chunk.usage) usage = chunk.usage
  t.equal(usage?.total_tokens, CALL_TOKENS)
  const est = promptTokensEstimate('chat', { model: 'gpt-4o-mini', messages: HI, max_tokens: 5 }) + 5
  const r = await chat(key, { max_tokens: 5 })
  t.equal(r.headers.get('x-ratelimit-remaining-tokens'), String(1000 - CALL_TOKENS - est), 'the stream\'s real tokens counted')
  await refused(t, client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true }), 'a third call (a stream)')
})

t.test('only model calls are limited; keys without limits get no headers', async (t) => {
  const key = await newKey({ rpm_limit: 1 })
  await chat(key)
  await refused(t, chat(key), 'second model call')
  const models = await jsonCall(gw.url, 'GET', '/v1/models', undefined, key)
  t.equal(models.status, 200, '/v1/models passes')
  const free = await newKey({})
  const r = await chat(free)
  t.equal(r.headers.get('x-ratelimit-limit-requests'), null)
})
