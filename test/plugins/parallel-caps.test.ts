/**
 * LiteLLM's two gateway-level parallel settings, from an unchanged general_settings block:
 * - `max_parallel_requests`: per deployment that sets none of its own, so a group of two such deployments is a
 *   queue capacity of 2 (a deployment's own value still wins);
 * - `global_max_parallel_requests`: model calls in flight on the whole gateway; the one over it gets LiteLLM's 429.
 * Real gateway (the default chain from a LiteLLM config), official openai client, a fake upstream that holds calls.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, startUpstream } from '../helpers/upstream.js'
import { queueStatus } from './pq-upstream.js'

const up = await startUpstream(t)
const dep = (name: string, id: string, extra = '') =>
  `  - model_name: ${name}\n    litellm_params: { model: openai/${id}, api_base: ${up.url}, api_key: sk-up${extra} }\n    model_info: { id: ${id} }\n`
const gw = await startGateway(t, `
general_settings: { master_key: sk-master, max_parallel_requests: 1, global_max_parallel_requests: 3 }
model_list:
${dep('g', 'g1')}${dep('g', 'g2')}${dep('h', 'h1', ', max_parallel_requests: 5')}`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-master', maxRetries: 0 })
const messages = [{ role: 'user' as const, content: 'hi' }]

t.test('general_settings.max_parallel_requests is per deployment: a group of two has capacity 2; an own value wins', async (t) => {
  up.on('chat', defaultChat())
  await client.chat.completions.create({ model: 'g', messages })
  await client.chat.completions.create({ model: 'h', messages })
  t.equal((await queueStatus(gw.url, 'g', 'sk-master')).capacity, 2)
  t.equal((await queueStatus(gw.url, 'h', 'sk-master')).capacity, 5)
})

t.test('general_settings.global_max_parallel_requests: the 4th call in flight is refused with 429, the 3 others served', async (t) => {
  up.on('chat', delay(600, defaultChat()))
  // h takes 5 at once, so only the gateway-wide cap of 3 can refuse here.
  const calls = Array.from({ length: 4 }, () => client.chat.completions.create({ model: 'h', messages }).then(() => 'ok', (e: unknown) => e))
  const results = await Promise.all(calls)
  const refused = results.filter((r) => r instanceof OpenAI.RateLimitError) as InstanceType<typeof OpenAI.RateLimitError>[]
  t.equal(results.filter((r) => r === 'ok').length, 3)
  t.equal(refused.length, 1)
  t.match(refused[0]!.message, /Max parallel request limit reached/)
  t.match(refused[0]!.message, /global/)
  t.ok(Number(refused[0]!.headers?.get('retry-after')) >= 1, 'retry-after')
  // Freed when the calls end: a new call is served.
  up.on('chat', defaultChat())
  const after = await client.chat.completions.create({ model: 'h', messages })
  t.equal(after.choices[0]!.message.content, 'Hello from the fake upstream.')
})
