/**
 * What a call costs and how it is logged, through the running gateway with the embedded store: a stream the client
 * cuts off is priced on what it delivered; a model no price table knows is charged a fallback price and logged as
 * unpriced (never silently free); a per-model budget on a key stops that model only; a soft budget raises an alert,
 * not a block; a failed call leaves a failure row.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { errorReply, slowStream, startUpstream } from '../helpers/upstream.js'
import { admin, deployment, eventually, generateKey, MASTER } from './helpers.js'

const up = await startUpstream(t)
const broken = await startUpstream(t, { chat: errorReply(500, { message: 'upstream exploded', type: 'server_error' }) })
const slow = await startUpstream(t, { chat: slowStream({ intervalMs: 30, chunks: 400 }) })
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
model_list:
${deployment('gpt-4o-mini', up.url)}${deployment('slow', slow.url, 'gpt-4o-mini')}${deployment('broken', broken.url, 'gpt-4o-mini')}  - model_name: unknown-model
    litellm_params:
      model: mock/totally-unknown-model-xyz
`)

async function rowsOf(token: string, n: number): Promise<any[]> {
  return eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${token}`)
    return Array.isArray(r.body) && r.body.length >= n ? r.body : undefined
  }, 10_000, `${n} spend rows`)
}

t.test('a stream the client cuts off is priced on what it delivered', async (t) => {
  const k = await generateKey(t, gw.url, {})
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  const ac = new AbortController()
  const stream = await client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal: ac.signal })
  let text = ''
  try {
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? ''
      if (text.length > 40) ac.abort()
    }
  } catch {
    /* aborted by us */
  }
  t.ok(text.length > 40, 'some output arrived before the cut')
  const [row] = await rowsOf(k.token, 1)
  t.equal(row.cost_source, 'estimated', 'priced from the delivered output, marked as estimated')
  t.ok(row.completion_tokens > 0 && row.completion_tokens < 400, `completion tokens counted from what was sent (${row.completion_tokens})`)
  t.ok(row.spend > 0, `and charged (${row.spend})`)
  t.equal(row.metadata.client_aborted, true)
  const info = await eventually(async () => {
    const i = (await admin(gw.url, 'GET', `/key/info?key=${k.token}`)).body.info
    return i.spend > 0 ? i : undefined
  }, 5000, 'key spend')
  t.ok(Math.abs(info.spend - row.spend) < 1e-12, 'the key was charged the same')
})

t.test('a model no price table knows costs the fallback price and says so', async (t) => {
  const k = await generateKey(t, gw.url, {})
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  const { data, response } = await client.chat.completions.create({ model: 'unknown-model', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
  const expected = data.usage!.prompt_tokens * 2.5e-6 + data.usage!.completion_tokens * 10e-6
  t.equal(Number(response.headers.get('x-litellm-response-cost')), expected, 'never free: $2.50 / $10 per 1M tokens by default')
  const [row] = await rowsOf(k.token, 1)
  t.equal(row.cost_source, 'unpriced')
  t.equal(row.prompt_tokens, data.usage!.prompt_tokens, 'logged with its tokens')
})

t.test('a per-model budget on a key stops that model only; a soft budget alerts without blocking', async (t) => {
  const k = await generateKey(t, gw.url, { soft_budget: 0.02, model_max_budget: { slow: { budget_limit: 0.0001 }, 'gpt-4o-mini': { budget_limit: 0.03 } } })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  const call = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).then(() => 'ok', (e) => e)
  t.equal(await call(), 'ok')
  t.equal(await call(), 'ok', 'the second call passes the soft budget (0.034 > 0.02): still served')
  const third = await call()
  t.ok(third instanceof OpenAI.BadRequestError && /model=gpt-4o-mini/.test(third.message), `third call over the model budget: ${third?.message}`)
  await eventually(async () => gw.logs.some((l) => l.msg === 'soft budget crossed'), 5000, 'the soft-budget alert')
  t.ok(gw.logs.some((l) => l.msg === 'soft budget crossed' && !JSON.stringify(l).includes(k.key)), 'alert logged, without the key')
  const unknown = await client.chat.completions.create({ model: 'unknown-model', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(unknown.object, 'chat.completion', 'a model without its own budget still works')
})

t.test('a failed call leaves a failure row, at no cost', async (t) => {
  const k = await generateKey(t, gw.url, {})
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  const e = await client.chat.completions.create({ model: 'broken', messages: [{ role: 'user', content: 'hi' }] }).catch((x) => x)
  t.equal(e?.status, 500)
  const [row] = await rowsOf(k.token, 1)
  t.equal(row.status, 'failure')
  t.equal(row.spend, 0)
  t.match(row.error, /upstream exploded/)
})
