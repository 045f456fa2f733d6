/**
 * Overhead made visible: every model response carries LiteLLM's `x-litellm-overhead-duration-ms` (time in the
 * gateway, provider calls excluded) and `x-litellm-response-duration-ms`; the access log line has the same figures
 * and what each plugin of the request chain spent (pluginMs). A fake upstream that takes a known time, and an
 * in-test plugin that takes a known time, pin both sides of the split.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, errorReply, startUpstream } from '../helpers/upstream.js'
import { definePlugin } from '../../core/plugin.js'

const UPSTREAM_MS = 150
const PLUGIN_MS = 60
const up = await startUpstream(t, { chat: delay(UPSTREAM_MS, defaultChat()) })
const slow = definePlugin({
  name: 'slow-step',
  middleware: () => async function slowStep(_ctx, next) {
    await new Promise((r) => setTimeout(r, PLUGIN_MS))
    return next()
  },
})
const gw = await startGateway(t, `
pipeline: [request-id, auth, slow-step, router]
upstream: [retry]
model_list:
  - model_name: gpt
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up }
`, { plugins: [slow] })
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'none', maxRetries: 0 })

function lastAccess(): Record<string, any> {
  return gw.logs.filter((l) => l.msg === 'request' && l.route === '/v1/chat/completions').at(-1)!
}

t.test('a JSON response: overhead counts the plugin, not the upstream', async (t) => {
  const { response } = await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
  const overhead = Number(response.headers.get('x-litellm-overhead-duration-ms'))
  const total = Number(response.headers.get('x-litellm-response-duration-ms'))
  t.ok(Number.isFinite(overhead) && Number.isFinite(total), `both headers are numbers (${overhead}, ${total})`)
  t.ok(total >= UPSTREAM_MS + PLUGIN_MS - 5, `response duration ${total} ms covers upstream and plugin`)
  t.ok(overhead >= PLUGIN_MS - 5, `overhead ${overhead} ms includes the ${PLUGIN_MS} ms plugin`)
  await new Promise((r) => setTimeout(r, 20))
  const line = lastAccess()
  t.equal(line.overheadMs, overhead, 'the access line has the same overhead')
  t.ok(line.upstreamMs >= UPSTREAM_MS - 5, `upstreamMs ${line.upstreamMs} covers the ${UPSTREAM_MS} ms upstream`)
  // However loaded the machine, the split is exact: overhead is the response time less the provider call's.
  t.ok(Math.abs(overhead + line.upstreamMs - total) < 0.01, `overhead ${overhead} + upstream ${line.upstreamMs} = response ${total}`)
  t.same(Object.keys(line.pluginMs), ['request-id', 'auth', 'slow-step', 'router', 'handler'], 'one timing per step, in chain order')
  t.ok(line.pluginMs['slow-step'] >= PLUGIN_MS - 5, `slow-step took ${line.pluginMs['slow-step']} ms`)
  t.ok(line.pluginMs.auth < PLUGIN_MS, 'the others are not charged for it')
})

t.test('a stream: the headers are sent with the first event and carry the figures', async (t) => {
  const { data: stream, response } = await client.chat.completions.create({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse()
  const overhead = Number(response.headers.get('x-litellm-overhead-duration-ms'))
  const total = Number(response.headers.get('x-litellm-response-duration-ms'))
  t.ok(overhead >= PLUGIN_MS - 5, `stream overhead ${overhead} ms includes the plugin`)
  t.ok(total - overhead >= UPSTREAM_MS - 5, `and leaves out the upstream's ${UPSTREAM_MS} ms to the first event (${total} - ${overhead})`)
  let text = ''
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''
  t.ok(text.length > 0)
})

t.test('an upstream error still carries the overhead header', async (t) => {
  up.on('chat', errorReply(500, { message: 'boom', type: 'server_error' }))
  t.teardown(() => up.on('chat', delay(UPSTREAM_MS, defaultChat())))
  const err = await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: any) => e)
  t.equal(err?.status, 500)
  t.ok(Number(err.headers?.get?.('x-litellm-overhead-duration-ms')) >= PLUGIN_MS - 5, 'overhead on the error response')
})
