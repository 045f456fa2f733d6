/**
 * A provider that counts no tokens (an Ollama reply without prompt_eval_count / eval_count) is still priced: the
 * gateway estimates the prompt (UTF-8 bytes / 4, as budgets do) and the output from the reply's characters, for
 * plain chat as for streams; an embeddings reply without counts is priced on its input. Real gateway, official
 * openai client, a fake Ollama on 127.0.0.1.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'

const server = http.createServer((req, res) => {
  let raw = ''
  req.on('data', (c) => (raw += c))
  req.on('end', () => {
    const body = JSON.parse(raw)
    res.setHeader('content-type', 'application/json')
    if (req.url === '/api/embed') {
      res.end(JSON.stringify({ model: body.model, embeddings: [[0.1, 0.2, 0.3]] }))
      return
    }
    // 40 characters of output, no token counts.
    res.end(JSON.stringify({ model: body.model, created_at: '2026-11-30T00:00:00Z', message: { role: 'assistant', content: 'x'.repeat(40) }, done: true, done_reason: 'stop' }))
  })
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => server.close(() => r())))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

const gw = await startGateway(t, `
model_list:
  - model_name: local
    litellm_params: { model: ollama_chat/llama3, api_base: ${base}, input_cost_per_token: 0.001, output_cost_per_token: 0.002 }
  - model_name: local-embed
    litellm_params: { model: ollama/nomic-embed-text, api_base: ${base}, input_cost_per_token: 0.001 }
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })

t.test('a chat reply without token counts is priced on estimates', async (t) => {
  const { data, response } = await client.chat.completions.create({ model: 'local', messages: [{ role: 'user', content: 'y'.repeat(400) }] }).withResponse()
  t.equal(data.choices[0]!.message.content, 'x'.repeat(40))
  const cost = Number(response.headers.get('x-litellm-response-cost'))
  // output: 40 chars / 4 = 10 tokens x 0.002 = 0.02; the prompt: about 100 tokens (+ message overhead) x 0.001.
  t.ok(cost > 0.02 + 0.1 && cost < 0.02 + 0.2, `cost ${cost} covers the estimated prompt and output`)
})

t.test('an embeddings reply without token counts is priced on its input', async (t) => {
  const { response } = await client.embeddings.create({ model: 'local-embed', input: 'z'.repeat(400) }).withResponse()
  const cost = Number(response.headers.get('x-litellm-response-cost'))
  t.ok(cost >= 0.1 && cost < 0.2, `cost ${cost}: about 100 input tokens x 0.001`)
})
