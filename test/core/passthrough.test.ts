/**
 * Streaming pass-through (core/upstream/passthrough.ts): OpenAI-format upstream events reach the client byte for
 * byte, while usage, errors and output size are still read off them. Through a real gateway, a fake upstream that
 * writes its SSE text by hand (compact as OpenAI's, and spaced as Python's json.dumps), the official openai client
 * and raw HTTP for the bytes.
 */
import t from 'tap'
import OpenAI from 'openai'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream, type Behaviour } from '../helpers/upstream.js'
import { scanEvent } from '../../core/upstream/passthrough.js'

t.test('scanEvent reads an event without parsing it', async (t) => {
  const plain = '{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi \\"x\\" \\u00e9"},"finish_reason":null}],"usage":null}'
  const ev = scanEvent(plain)!
  t.ok(ev, 'an ordinary content event passes')
  t.equal(ev.chunk, null)
  t.equal(ev.chars, 8, 'content characters, an escape counted as one')
  t.equal(plain.slice(0, ev.nullUsageFrom) + plain.slice(ev.nullUsageTo), plain.replace(',"usage":null', ''), 'the null usage member is cut with its comma')
  t.same(JSON.parse(plain.slice(0, ev.nullUsageFrom) + plain.slice(ev.nullUsageTo)).usage, undefined)

  const first = '{"usage": null, "choices": [{"index": 0, "delta": {"content": "ab"}}]}'
  const f = scanEvent(first)!
  const cut = first.slice(0, f.nullUsageFrom) + first.slice(f.nullUsageTo)
  t.same(JSON.parse(cut), { choices: [{ index: 0, delta: { content: 'ab' } }] }, 'usage first in the object: cut with the comma after it')
  t.equal(f.chars, 2)

  const tools = '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":1}"}}],"reasoning_content":"hm"}}]}'
  t.equal(scanEvent(tools)!.chars, 7 + 2, 'tool arguments and reasoning count')
  t.equal(scanEvent('{"choices":[{"text":"abc","index":0}]}', 'completions')!.chars, 3, 'legacy text counts for completions')
  t.equal(scanEvent('{"choices":[{"index":0,"delta":{"content":"usage"}}]}')!.nullUsageFrom, -1, 'a value "usage" is not a key')

  t.equal(scanEvent('{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'), null, 'a usage object is parsed')
  t.equal(scanEvent('{"error":{"message":"boom"}}'), null, 'an error is parsed')
  t.equal(scanEvent('{"id":"x","choices":null}'), null, 'no choices list: parsed (and normalised or refused there)')
  t.equal(scanEvent('[1,2]'), null, 'not an object: parsed (and refused there)')
  t.equal(scanEvent('{"choices":[{"delta":{}}]'), null, 'not closed: parsed (and refused there)')
})

const COMPACT = [
  '{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"gpt-x","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}',
  '{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"gpt-x","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hello \\u00e9 \\"world\\""},"logprobs":null,"finish_reason":null}],"usage":null}',
  '{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"gpt-x","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}',
  '{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"gpt-x","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5,"total_tokens":16}}',
]
// Python's json.dumps spacing, as several OpenAI-compatible servers send it; the usage arrives on the last content chunk.
const SPACED = [
  '{"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "m", "usage": null, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]}',
  '{"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}',
]

function sse(events: string[], done = true): Behaviour {
  return (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const e of events) ctx.res.write(`data: ${e}\n\n`)
    ctx.res.end(done ? 'data: [DONE]\n\n' : '')
  }
}

const up = await startUpstream(t, { chat: sse(COMPACT) })
const gw = await startGateway(t, `
model_list:
  - model_name: gpt
    litellm_params: { model: openai/gpt-x, api_base: ${up.url}, api_key: sk-up, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'none', maxRetries: 0 })

async function rawStream(body: object): Promise<string[]> {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal(r.statusCode, 200)
  const text = await r.body.text()
  return text.split('\n\n').filter(Boolean).map((l) => l.replace(/^data: /, ''))
}
function accessLine(n: number): Record<string, any> {
  return gw.logs.filter((l) => l.msg === 'request' && l.route === '/v1/chat/completions').at(n)!
}

t.test('with include_usage the client gets the upstream events byte for byte', async (t) => {
  up.on('chat', sse(COMPACT))
  const events = await rawStream({ model: 'gpt', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
  t.same(events, [...COMPACT, '[DONE]'])
  await new Promise((r) => setTimeout(r, 20))
  const line = accessLine(-1)
  t.equal(line.promptTokens, 11, 'usage read from the pass-through events')
  t.equal(line.completionTokens, 5)
  t.equal(line.costUsd, 11 * 0.000001 + 5 * 0.000002)
})

t.test('without include_usage: no usage chunk, no usage member, the rest unchanged', async (t) => {
  up.on('chat', sse(COMPACT))
  const events = await rawStream({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }] })
  t.same(events, [...COMPACT.slice(0, 3).map((e) => e.replace(',"usage":null', '')), '[DONE]'])
  await new Promise((r) => setTimeout(r, 20))
  t.equal(accessLine(-1).completionTokens, 5, 'the gateway still read the usage it kept from the client')
})

t.test('spaced JSON with usage on a content chunk, through the official client', async (t) => {
  up.on('chat', sse(SPACED))
  const stream = await client.chat.completions.create({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }] })
  const parts: string[] = []
  const usages: unknown[] = []
  for await (const c of stream) {
    parts.push(c.choices[0]?.delta?.content ?? '')
    if ('usage' in c) usages.push(c.usage)
  }
  t.equal(parts.join(''), 'Hi there')
  t.same(usages, [], 'the client did not ask for usage and gets no usage member')
  await new Promise((r) => setTimeout(r, 20))
  t.equal(accessLine(-1).promptTokens, 7)
})

t.test('an error event mid-stream reaches the client as an APIError', async (t) => {
  up.on('chat', sse([COMPACT[0]!, '{"error":{"message":"overloaded now","type":"server_error","code":null,"param":null}}'], false))
  const stream = await client.chat.completions.create({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }] })
  const err = await (async () => {
    for await (const _ of stream) { /* read */ }
  })().then(() => null, (e: unknown) => e)
  t.ok(err instanceof OpenAI.APIError, 'raised by the SDK')
  t.match(String((err as Error).message), /overloaded now/)
})

t.test('a stream cut before its usage is priced on the characters it delivered', async (t) => {
  up.on('chat', sse(COMPACT.slice(0, 3), false))
  const events = await rawStream({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }] })
  t.equal(events.at(-1), '[DONE]')
  await new Promise((r) => setTimeout(r, 20))
  const line = accessLine(-1)
  t.equal(line.completionTokens, Math.ceil('Hello é "world"'.length / 4), 'output estimated from 15 characters')
  t.ok(line.costUsd > 0, 'and priced')
})

t.test('a usage-only chunk without choices is normalised as the translated path does', async (t) => {
  up.on('chat', sse([COMPACT[1]!, '{"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-x","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}']))
  const events = await rawStream({ model: 'gpt', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
  t.equal(events[0], COMPACT[1])
  t.same(JSON.parse(events[1]!).choices, [], 'choices: [] added')
  t.equal(JSON.parse(events[1]!).usage.total_tokens, 7)
})

t.test('rawJson keeps a reply as text and parses only its usage', async (t) => {
  const { rawJson } = await import('../../core/upstream/passthrough.js')
  const text = '{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"a {\\"usage\\": 1} }"},"finish_reason":"stop"}],' +
    '"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}'
  const r = rawJson(text, 'chat', false)!
  t.ok(r, 'kept')
  t.same(r.usage, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 1 } })
  t.equal(r.read, false)
  t.equal(r.raw, text)
  t.equal((r.body as any).choices[0].message.content, 'a {"usage": 1} }', 'body parses on demand')
  t.equal(r.read, true)
  t.equal(rawJson('{"choices":[],"usage":null}', 'chat', false)!.usage, null)
  t.equal(rawJson('{"object":"list"}', 'chat', false), null, 'no choices: parsed (and refused there)')
  t.equal(rawJson('{"error":{"message":"x"},"choices":[]}', 'chat', false), null, 'an error member: parsed')
  t.equal(rawJson('{"choices":[]', 'chat', false), null, 'truncated: parsed (and refused there)')
  const floats = '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":2,"total_tokens":2}}'
  t.ok(rawJson(floats, 'embeddings', false), 'float embeddings for a float client pass')
  t.equal(rawJson(floats, 'embeddings', true), null, 'float embeddings for a base64 client are converted (parsed)')
  t.ok(rawJson(floats.replace('[0.1,0.2]', '"AAAA"'), 'embeddings', true), 'base64 embeddings pass')
})

t.test('a JSON reply reaches the client as the upstream wrote it', async (t) => {
  const body = '{"id": "chatcmpl-j", "object": "chat.completion", "created": 1, "model": "gpt-x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi \\u00e9"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}, "system_fingerprint": "fp_x"}'
  up.on('chat', (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'application/json' })
    ctx.res.end(body)
  })
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }) })
  t.equal(r.statusCode, 200)
  t.match(String(r.headers['content-type']), /^application\/json/)
  t.equal(await r.body.text(), body, 'byte for byte')
  t.equal(r.headers['x-litellm-response-cost'], String(9 * 0.000001 + 2 * 0.000002), 'priced from the usage read off the text')
  const viaSdk = await client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(viaSdk.choices[0]!.message.content, 'Hi é')
  t.equal(viaSdk.usage?.total_tokens, 11)
})

t.test('a stream cut upstream (no finish_reason, no [DONE]) fails instead of passing as complete', async (t) => {
  for (const include of [true, false]) {
    up.on('chat', sse(COMPACT.slice(0, 2), false))
    const events = await rawStream({ model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }], ...(include ? { stream_options: { include_usage: true } } : {}) })
    t.equal(events.length, 3, 'two events forwarded, then the error')
    t.match(JSON.parse(events[2]!), { error: { message: /ended the stream before it was complete/, type: 'api_error' } })
    t.notOk(events.includes('[DONE]'), 'no [DONE] after it')
  }
  // The translated path (the SDK's) says the same.
  const { completion } = await import('../../core/sdk.js')
  const stream = await completion({ model: 'openai/gpt-x', api_base: up.url, api_key: 'sk-up', stream: true, messages: [{ role: 'user', content: 'hi' }] } as any)
  const err = await (async () => {
    for await (const _ of stream as AsyncIterable<unknown>) { /* read */ }
  })().then(() => null, (e: unknown) => e)
  t.match(String((err as Error)?.message), /ended the stream before it was complete/)
})

t.test('a stream that finished, sent more after it and ended without [DONE] is complete', async (t) => {
  const trailing = '{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":null,"content_filter_results":{}}],"usage":null}'
  up.on('chat', sse([...COMPACT.slice(0, 3), trailing], false))
  const events = await rawStream({ model: 'gpt', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
  t.same(events, [...COMPACT.slice(0, 3), trailing, '[DONE]'], 'forwarded, then [DONE]: the finish_reason two events back counts')
})
