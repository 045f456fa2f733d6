/**
 * Provider contract hooks that later providers rely on, exercised through the gateway with an in-test adapter:
 * `authorize()` sees the exact body bytes sent (what AWS SigV4 signs) and may be async (an OAuth token fetch);
 * `decoder()` replaces SSE framing (here NDJSON, as Ollama streams).
 */
import t from 'tap'
import http from 'node:http'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { startGateway } from '../helpers/gateway.js'
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatCompletion, Usage } from '../../core/openai/types.js'
import type { EventDecoder, ProviderAdapter, SseEvent } from '../../providers/types.js'

interface Seen { headers: http.IncomingHttpHeaders; raw: string }
const seen: Seen[] = []
const upstream = http.createServer((req, res) => {
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (c: string) => (raw += c))
  req.on('end', () => {
    seen.push({ headers: req.headers, raw })
    const body = JSON.parse(raw) as { stream?: boolean; prompt: string }
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      // Lines split across writes on purpose: the decoder must join them.
      res.write('{"piece":"Hel')
      res.write('lo"}\n{"piece":" wor')
      setTimeout(() => res.end('ld"}\n{"done":true,"in":3,"out":2}'), 5)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ text: `echo:${body.prompt}`, in: 3, out: 1 }))
  })
})
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => upstream.close(() => r())))
const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

class NdjsonDecoder implements EventDecoder {
  private buf = ''
  private readonly dec = new TextDecoder()
  push(bytes: Uint8Array): SseEvent[] {
    this.buf += this.dec.decode(bytes, { stream: true })
    const lines = this.buf.split('\n')
    this.buf = lines.pop()!
    return lines.filter(Boolean).map((data) => ({ event: undefined, data }))
  }
  end(): SseEvent[] {
    const rest = this.buf + this.dec.decode()
    this.buf = ''
    return rest.trim() ? [{ event: undefined, data: rest }] : []
  }
}

const toy: ProviderAdapter = {
  name: 'toy',
  operations: new Set(['chat']),
  request: (_op, target) => ({ url: `${target.apiBase}/generate`, headers: {} }),
  async authorize(req, body) {
    await new Promise((r) => setTimeout(r, 1)) // stands in for a token fetch
    return { ...req, headers: { ...req.headers, 'x-body-sha256': createHash('sha256').update(body).digest('hex') } }
  },
  chat: {
    params: {
      model: 'drop', // carried in the URL by providers like this one
      messages: { to: 'prompt', map: (v: unknown) => (v as Array<{ content: string }>).map((m) => m.content).join('\n') },
      stream: { to: 'stream' },
    },
    policy: { unknown: 'unsupported' },
    decoder: () => new NdjsonDecoder(),
    response(body, meta): ChatCompletion {
      const b = body as { text: string; in: number; out: number }
      return {
        id: `chatcmpl-${meta.requestId}`, object: 'chat.completion', created: meta.created, model: meta.target.model,
        choices: [{ index: 0, message: { role: 'assistant', content: b.text, refusal: null }, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: b.in, completion_tokens: b.out, total_tokens: b.in + b.out },
      }
    },
    stream(_req, meta) {
      const base = { id: `chatcmpl-${meta.requestId}`, object: 'chat.completion.chunk' as const, created: meta.created, model: meta.target.model }
      let usage: Usage | null = null
      return {
        event(e) {
          const d = JSON.parse(e.data) as { piece?: string; done?: boolean; in?: number; out?: number }
          if (d.done) {
            usage = { prompt_tokens: d.in!, completion_tokens: d.out!, total_tokens: d.in! + d.out! }
            return [{ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }]
          }
          return [{ ...base, choices: [{ index: 0, delta: { content: d.piece! }, finish_reason: null }] }]
        },
        end: () => ({ chunks: [], usage }),
      }
    },
  },
  error: (status) => gatewayError('GW_ERR_UPSTREAM_SERVER', `toy ${status}`),
}

const gw = await startGateway(t, `
model_list:
  - model_name: toy
    litellm_params: { model: toy/t-1, api_base: ${base} }
`, { providers: [toy] })

t.test('authorize() signs the exact bytes that are sent', async (t) => {
  seen.length = 0
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', body: JSON.stringify({ model: 'toy', messages: [{ role: 'user', content: 'hi' }] }),
  })
  const body = (await res.json()) as ChatCompletion
  t.equal(res.status, 200, JSON.stringify(body))
  t.equal(body.choices[0]!.message.content, 'echo:hi')
  t.equal(seen.length, 1)
  t.equal(seen[0]!.headers['x-body-sha256'], createHash('sha256').update(seen[0]!.raw).digest('hex'))
  t.same(JSON.parse(seen[0]!.raw), { prompt: 'hi' }, 'the param map built the body')
})

t.test('decoder() frames a non-SSE stream; usage from end() reaches the client when asked', async (t) => {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: 'toy', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }),
  })
  t.equal(res.status, 200)
  const text = await res.text()
  const events = text.split('\n\n').filter(Boolean)
  t.equal(events.at(-1), 'data: [DONE]')
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as ChatChunk)
  t.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello world')
  t.same(chunks.at(-1)!.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })
  t.same(chunks.at(-1)!.choices, [])
})
