/**
 * A fallback group is entered as the requested group is (core/pipeline.ts GroupEntry): ranked by the router's
 * strategy and `order`, filtered by its pre-call checks, and held to its own capacity by the priority queue (in
 * priority order; a call with no priority is refused at once and the fallback moves on). Real gateway, official
 * openai client, two fake upstreams: `primary` fails every requested group, `backup` serves the fallback groups.
 */
import t from 'tap'
import OpenAI from 'openai'
import fallback from '../../plugins/fallback/index.js'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, errorReply, startUpstream } from '../helpers/upstream.js'

const primary = await startUpstream(t)
const backup = await startUpstream(t)
primary.on('chat', errorReply(500, { message: 'primary down' }))
const dep = (name: string, model: string, id: string, base: string, extra = '', info = '') =>
  `  - model_name: ${name}\n    litellm_params: { model: openai/${model}, api_base: ${base}, api_key: sk-up${extra} }\n    model_info: { id: ${id}${info} }\n`
const gw = await startGateway(t, `
pipeline: [request-id, priority-queue, { router: { enable_pre_call_checks: true } }]
upstream:
  - fallback:
      fallbacks: [{ a: [b] }, { x: [tiny, c] }, { y: [c] }]
  - retry: { num_retries: 0 }
model_list:
${dep('a', 'a-real', 'pa', primary.url)}${dep('x', 'x-real', 'px', primary.url)}${dep('y', 'y-real', 'py', primary.url)}\
${dep('b', 'b-late', 'b-late', backup.url, ', order: 2')}${dep('b', 'b-early', 'b-early', backup.url, ', order: 1')}\
${dep('tiny', 'tiny-real', 'tiny', backup.url, '', ', max_input_tokens: 5')}\
${dep('c', 'c-real', 'c1', backup.url, ', max_parallel_requests: 1')}`,
{ plugins: [fallback] })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })
const say = (content: string) => [{ role: 'user' as const, content }]

t.test("a fallback group is tried in the router's order (`order` 1 before 2), not config order", async (t) => {
  backup.on('chat', defaultChat())
  const { data, response } = await client.chat.completions.create({ model: 'a', messages: say('hi') }).withResponse()
  t.equal(data.choices[0]!.message.content, 'Hello from the fake upstream.')
  t.equal(response.headers.get('x-litellm-model-id'), 'b-early', 'the order-1 deployment, listed second')
  t.equal(backup.requestsTo('chat').at(-1)!.body.model, 'b-early')
})

t.test("a fallback group the pre-call checks empty is skipped for the next one", async (t) => {
  backup.on('chat', defaultChat())
  const before = backup.requestsTo('chat').length
  const long = 'word '.repeat(40)
  const { response } = await client.chat.completions.create({ model: 'x', messages: say(long) }).withResponse()
  t.equal(response.headers.get('x-litellm-model-id'), 'c1', 'tiny (5-token window) skipped, c served')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1', 'only the group that was called counts')
  const sent = backup.requestsTo('chat').slice(before)
  t.same(sent.map((r) => r.body.model), ['c-real'], 'nothing went to the tiny deployment')
  t.ok(gw.logs.some((l) => l.msg === 'fallback group cannot take the call; skipped' && l.fallback === 'tiny' && l.cause === 'GW_ERR_CONTEXT_WINDOW'))
})

t.test('a fallback group is held to its own capacity: a priority call waits for the slot, a call without one is refused at once', async (t) => {
  backup.on('chat', delay(700, defaultChat()))
  const before = backup.requestsTo('chat').length
  // c takes one call at a time: a direct call holds its slot for 700 ms.
  const direct = client.chat.completions.create({ model: 'c', messages: say('direct') })
  await until(() => backup.requestsTo('chat').length > before)
  // y fails on primary and falls back to c: with a priority it queues behind the direct call...
  const queued = client.chat.completions.create({ model: 'y', messages: say('queued'), priority: 0 } as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse()
  // ...without one it is refused at once (the fallback's 429), nothing sent to c.
  const refused = await client.chat.completions.create({ model: 'y', messages: say('no priority') }).then(() => null, (e: unknown) => e)
  t.ok(refused instanceof OpenAI.RateLimitError, 'no priority, group full: 429')
  await direct
  const { response } = await queued
  t.equal(response.headers.get('x-litellm-model-id'), 'c1')
  const sent = backup.requestsTo('chat').slice(before)
  t.equal(sent.length, 2, 'the direct call and the queued fallback; the refused one never reached c')
  t.ok(sent[1]!.receivedAt >= sent[0]!.closedAt!, 'the fallback call reached c only after the direct call had finished (never 2 at once)')
})

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}
