/**
 * The OpenAI-compatible presets table, the provider registry's model-string parsing, and the groq preset end to
 * end through the gateway against a tiny node:http fake on 127.0.0.1 (the only network these tests touch).
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { OPENAI_COMPATIBLE, openAICompatibleAdapters } from '../../providers/openai-compatible.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { createModelTable } from '../../core/models.js'
import { buildConfig } from '../../core/config/load.js'
import type { Target } from '../../providers/types.js'
import { startGateway } from '../helpers/gateway.js'

function target(provider: string, over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'm', provider, model: 'some-model', timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, apiKey: 'sk-test', ...over,
  }
}

const registry = createProviderRegistry()

t.test('every preset is registered and builds its URL and a Bearer header', async (t) => {
  t.equal(openAICompatibleAdapters.length, Object.keys(OPENAI_COMPATIBLE).length)
  for (const [name, preset] of Object.entries(OPENAI_COMPATIBLE)) {
    const adapter = registry.get(name)
    t.ok(adapter, `${name} is in the registry`)
    if (!adapter) continue
    t.equal(adapter.name, name)
    if (preset.baseUrl) {
      const { url, headers } = adapter.request('chat', target(name), false)
      t.equal(url, `${preset.baseUrl}/chat/completions`, `${name} chat URL`)
      t.ok(/^https?:\/\/[^/]+/.test(url), `${name}: absolute URL`)
      t.equal(headers.authorization, 'Bearer sk-test', `${name}: Bearer auth`)
      if (adapter.operations.has('embeddings')) {
        t.equal(adapter.request('embeddings', target(name), false).url, `${preset.baseUrl}/embeddings`, `${name} embeddings URL`)
      }
    } else {
      // No public default (vLLM, openai_like): a deployment must give api_base, and says so.
      t.throws(() => adapter.request('chat', target(name), false), { message: /api_base/ }, `${name} without api_base`)
    }
    const custom = adapter.request('chat', target(name, { apiBase: 'http://127.0.0.1:9/v1/' }), false)
    t.equal(custom.url, 'http://127.0.0.1:9/v1/chat/completions', `${name}: api_base overrides, trailing slash trimmed`)
    t.notOk('authorization' in adapter.request('chat', target(name, { apiKey: undefined, apiBase: 'http://h' }), false).headers,
      `${name}: no key, no Authorization header`)
  }
})

t.test('extra_headers and organization are sent', async (t) => {
  const { headers } = registry.get('groq')!.request('chat', target('groq', { extraHeaders: { 'X-Trace': 'abc' }, organization: 'org-1' }), false)
  t.equal(headers['x-trace'], 'abc')
  t.equal(headers['openai-organization'], 'org-1')
})

t.test('the key comes from the environment named in the preset, via the model table', async (t) => {
  const config = buildConfig({
    model_list: [
      { model_name: 'g', litellm_params: { model: 'groq/llama' } },
      { model_name: 't', litellm_params: { model: 'together_ai/mixtral' } },
      { model_name: 'explicit', litellm_params: { model: 'groq/llama', api_key: 'from-config' } },
      { model_name: 'v', litellm_params: { model: 'hosted_vllm/qwen' } },
      { model_name: 'o', litellm_params: { model: 'gpt-4o' } },
    ],
  }, { env: {} })
  const env = {
    GROQ_API_KEY: 'gsk-env', TOGETHER_API_KEY: 'tg-second-name', HOSTED_VLLM_API_BASE: 'http://127.0.0.1:8000/v1',
    OPENAI_API_KEY: 'sk-openai', OPENAI_BASE_URL: 'http://127.0.0.1:7/v1',
  }
  const models = createModelTable(config, registry, env)
  t.equal(models.resolve('g')[0]!.apiKey, 'gsk-env')
  t.equal(models.resolve('t')[0]!.apiKey, 'tg-second-name', 'a later name in the list is read when the first is unset')
  t.equal(models.resolve('explicit')[0]!.apiKey, 'from-config', 'api_key in the config wins over the environment')
  t.equal(models.resolve('v')[0]!.apiBase, 'http://127.0.0.1:8000/v1', 'api base from the environment')
  t.equal(models.resolve('o')[0]!.apiBase, 'http://127.0.0.1:7/v1')
  const noEnv = createModelTable(config, registry, {})
  t.equal(noEnv.resolve('g')[0]!.apiKey, undefined, 'the real process environment is not consulted')
  const g = models.resolve('g')[0]!
  t.equal(registry.get('groq')!.request('chat', g, false).headers.authorization, 'Bearer gsk-env')
})

t.test('registry.parseModel', async (t) => {
  t.same(registry.parseModel('groq/x'), { provider: 'groq', model: 'x' })
  t.same(registry.parseModel('openrouter/anthropic/claude-3.5-sonnet'), { provider: 'openrouter', model: 'anthropic/claude-3.5-sonnet' },
    'only the first segment is the provider')
  t.same(registry.parseModel('gpt-4o'), { provider: 'openai', model: 'gpt-4o' }, 'no prefix -> openai')
  t.same(registry.parseModel('openai/gpt-4o'), { provider: 'openai', model: 'gpt-4o' })
  t.same(registry.parseModel('mock/anything'), { provider: 'mock', model: 'anything' })
  t.same(registry.parseModel('not-a-provider/model'), { provider: 'not-a-provider', model: 'model' },
    'an unknown prefix stays the provider: its calls get a 400, nothing is sent to OpenAI')
  t.same(registry.parseModel('not-a-provider/model', null, true), { provider: 'openai', model: 'not-a-provider/model' },
    'with an explicit api_base the whole name is an OpenAI-compatible model id')
  t.same(registry.parseModel('llama-3', 'groq'), { provider: 'groq', model: 'llama-3' }, 'custom_llm_provider')
  t.same(registry.parseModel('groq/llama-3', 'groq'), { provider: 'groq', model: 'llama-3' }, 'custom_llm_provider strips its own prefix')
  t.same(registry.parseModel('meta/llama', 'deepinfra'), { provider: 'deepinfra', model: 'meta/llama' })
  t.throws(() => registry.parseModel('x', 'nope'), { code: 'GW_ERR_PROVIDER_UNKNOWN', message: /nope/ })
  t.ok(builtinProviders().some((p) => p.name === 'openai'))
})

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: Record<string, unknown>
}

/** A fake OpenAI-compatible host: records each request, answers with a chat completion (or SSE when asked). */
async function fakeUpstream(t: Test): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (raw += c))
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as Record<string, unknown>
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const base = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model }
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, finish_reason: null }] })}\n\n`)
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`)
        res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } })}\n\n`)
        res.end('data: [DONE]\n\n')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'from groq' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/openai/v1`, seen }
}

function groqConfig(base: string, extra = '') {
  return `
pipeline: [router]
upstream: []
model_list:
  - model_name: fast
    litellm_params:
      model: groq/llama-3.1-8b-instant
      api_base: ${base}
      api_key: gsk-test
${extra}`
}

const post = (url: string, body: unknown) =>
  fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

const messages = [{ role: 'user', content: 'hi' }]

t.test('groq through the gateway: logprobs is rejected with a 400 that names it and drop_params', async (t) => {
  const up = await fakeUpstream(t)
  const { url } = await startGateway(t, groqConfig(up.base), { env: {} })
  const res = await post(url, { model: 'fast', messages, logprobs: true })
  t.equal(res.status, 400)
  const body = (await res.json()) as { error: { message: string; type: string; code: string; param: string } }
  t.match(body.error.message, /logprobs/)
  t.match(body.error.message, /drop_params/)
  t.equal(body.error.type, 'invalid_request_error')
  t.equal(body.error.code, 'unsupported_parameter')
  t.equal(body.error.param, 'logprobs')
  t.equal(up.seen.length, 0, 'nothing was sent upstream')

  const ok = await post(url, { model: 'fast', messages, temperature: 0.3 })
  t.equal(ok.status, 200)
  const json = (await ok.json()) as { choices: Array<{ message: { content: string } }> }
  t.equal(json.choices[0]!.message.content, 'from groq')
  t.equal(up.seen.length, 1)
  const s = up.seen[0]!
  t.equal(s.url, '/openai/v1/chat/completions', 'api_base + /chat/completions')
  t.equal(s.headers.authorization, 'Bearer gsk-test')
  t.equal(s.body.model, 'llama-3.1-8b-instant', 'the provider prefix is stripped')
  t.equal(s.body.temperature, 0.3)
})

t.test('groq with litellm_settings.drop_params: the upstream receives no logprobs, nor gateway-only fields', async (t) => {
  const up = await fakeUpstream(t)
  const { url } = await startGateway(t, groqConfig(up.base, 'litellm_settings:\n  drop_params: true\n'), { env: {} })
  const res = await post(url, { model: 'fast', messages, logprobs: true, top_logprobs: 2, priority: 1, seed: 5 })
  t.equal(res.status, 200)
  await res.json()
  t.equal(up.seen.length, 1)
  const b = up.seen[0]!.body
  t.notOk('logprobs' in b, 'logprobs dropped')
  t.notOk('top_logprobs' in b, 'top_logprobs dropped')
  t.notOk('priority' in b, 'gateway-only priority never sent')
  t.equal(b.seed, 5, 'supported params still sent')
})

t.test('groq with drop_params on the deployment, key from env, streaming asks for usage', async (t) => {
  const up = await fakeUpstream(t)
  const yaml = `
pipeline: [router]
upstream: []
model_list:
  - model_name: fast
    litellm_params:
      model: groq/llama-3.1-8b-instant
      api_base: ${up.base}
      drop_params: true
`
  const { url } = await startGateway(t, yaml, { env: { GROQ_API_KEY: 'gsk-from-env' } })
  const res = await post(url, { model: 'fast', messages, logprobs: true, stream: true })
  t.equal(res.status, 200)
  const text = await res.text()
  t.match(text, /"content":"Hi"/)
  t.ok(text.trimEnd().endsWith('data: [DONE]'))
  t.notMatch(text, /"usage"/, 'usage not forwarded: the client did not ask for it')
  const s = up.seen[0]!
  t.equal(s.headers.authorization, 'Bearer gsk-from-env')
  t.notOk('logprobs' in s.body)
  t.same(s.body.stream_options, { include_usage: true }, 'the gateway asks upstream for usage')
})

t.test('a stream whose last event has no blank line after it: usage is forwarded once', async (t) => {
  // Some hosts close the stream right after the usage chunk, with no "\n\n" and no [DONE]. The parser's end()
  // returns that event; the gateway must not then synthesise a second usage chunk.
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' }
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: 'stop' }] })}\n\n`)
      res.end(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })}`)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const port = (server.address() as AddressInfo).port
  const { url } = await startGateway(t, `
pipeline: []
upstream: []
model_list:
  - model_name: m
    litellm_params: { model: groq/m, api_base: "http://127.0.0.1:${port}/v1", api_key: k }
`, { env: {} })
  const res = await post(url, { model: 'm', messages, stream: true, stream_options: { include_usage: true } })
  const text = await res.text()
  t.equal(text.match(/"usage"/g)?.length, 1, 'exactly one usage chunk')
  t.ok(text.endsWith('data: [DONE]\n\n'))
})
