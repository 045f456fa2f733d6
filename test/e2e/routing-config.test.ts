/**
 * Routing from an unchanged LiteLLM config, through the official openai client: `routing_strategy: least-busy` with
 * `enable_pre_call_checks` (a prompt too long for the small deployment goes to the big one; too long for the whole
 * group, it moves to `context_window_fallbacks` without a call to the small model), and a group whose pre-call rpm
 * check leaves nothing falls back to the `fallbacks` group instead of a 429; so does a call the priority queue refuses
 * (its group at max_parallel_requests, no priority to queue with), and without a fallback that refusal is an
 * immediate 429 however many retries are configured.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, startUpstream } from '../helpers/upstream.js'
import { MASTER } from './helpers.js'

const small = await startUpstream(t)
const big = await startUpstream(t)
const huge = await startUpstream(t)
const capped = await startUpstream(t)
const spare = await startUpstream(t)
const slow = await startUpstream(t, { chat: delay(1_500, defaultChat()) })
const dep = (name: string, url: string, model: string, extra = '') => `  - model_name: ${name}
    litellm_params: { model: openai/${model}, api_base: ${url}, api_key: sk-up${extra} }
`
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  routing_strategy: least-busy
  enable_pre_call_checks: true
  context_window_fallbacks: [{ chat: [long-chat] }]
  fallbacks: [{ limited: [spare] }, { busy: [spare] }]
  num_retries: 3
model_list:
${dep('chat', small.url, 'small-model')}    model_info: { max_input_tokens: 60 }
${dep('chat', big.url, 'big-model')}    model_info: { max_input_tokens: 400 }
${dep('long-chat', huge.url, 'huge-model')}    model_info: { max_input_tokens: 100000 }
${dep('limited', capped.url, 'capped-model', ', rpm: 2')}${dep('spare', spare.url, 'spare-model')}${dep('busy', slow.url, 'slow-model', ', max_parallel_requests: 1')}${dep('busy-alone', slow.url, 'slow-model', ', max_parallel_requests: 1')}`)

const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER, maxRetries: 0, timeout: 20_000 })
const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(' ')
const ask = (model: string, content: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content }] })

t.test('a prompt too long for the small deployment is sent to the big one of the group', async (t) => {
  const before = small.requests.length
  for (let i = 0; i < 4; i++) {
    const r = await ask('chat', words(60))   // ~120+ tokens: over 60, under 400
    t.equal(r.model, 'big-model')
  }
  t.equal(small.requests.length, before, 'the small deployment never got the long prompt')
  const short = await Promise.all(Array.from({ length: 6 }, () => ask('chat', 'hi')))
  t.ok(short.some((r) => r.model === 'small-model'), 'short prompts still use the small deployment')
})

t.test('a prompt too long for the whole group moves to context_window_fallbacks', async (t) => {
  const before = small.requests.length + big.requests.length
  const r = await ask('chat', words(400))
  t.equal(r.model, 'huge-model', 'served by the fallback group')
  t.equal(small.requests.length + big.requests.length, before, 'nothing was sent to the group that cannot take it')
  const raw = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: words(400) }] }).withResponse()
  t.equal(raw.response.headers.get('x-litellm-attempted-fallbacks'), '1')
})

t.test('a group whose rpm is used up falls back instead of answering 429', async (t) => {
  // rpm counts clock minutes: keep the four calls inside one.
  const left = 60_000 - (Date.now() % 60_000)
  if (left < 5_000) await new Promise((r) => setTimeout(r, left + 50))
  const served = []
  for (let i = 0; i < 4; i++) served.push((await ask('limited', 'hi')).model)
  t.same(served.slice(0, 2), ['capped-model', 'capped-model'], 'the first two within its rpm')
  t.same(served.slice(2), ['spare-model', 'spare-model'], 'then the fallback group, without a call over the rpm')
  t.equal(capped.requests.length, 2, 'the rpm-capped deployment got exactly its 2 calls')
})

t.test('a full group refuses a call with no priority: it falls back, or gets an immediate 429 without one', async (t) => {
  const held = ask('busy', 'hold')                 // takes busy's only slot for 1.5 s
  const heldAlone = ask('busy-alone', 'hold')
  await slow.waitForRequests(2)
  const started = Date.now()
  const r = await ask('busy', 'hi')
  t.equal(r.model, 'spare-model', 'served by the fallback group')
  const refused = await ask('busy-alone', 'hi').catch((e) => e)
  t.equal(refused.status, 429, 'no fallback: 429')
  t.ok(Number(refused.headers?.get('retry-after')) >= 1, 'with retry-after')
  t.ok(Date.now() - started < 1_000, `both at once, no retry waits (num_retries: 3): ${Date.now() - started} ms`)
  t.equal(slow.requests.length, 2, 'the full group was never called beyond its capacity')
  await Promise.all([held, heldAlone])
})
