/**
 * The Azure OpenAI (`azure/`) and Azure AI (`azure_ai/`) adapters, table by table: where a call goes (deployment
 * paths, api-version, the v1 API, the Foundry models endpoint), how it is authenticated (api-key, Bearer, Entra ID
 * client credentials against a fake token server on 127.0.0.1 with an injected clock), the request bodies (checked
 * against OpenAI's published spec, which is Azure's body too), responses and streams from Microsoft's own samples
 * (test/providers/fixtures/azure/README.md), and the error table.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  azure, azure_ai, createAzureAdapter, AZURE_DEFAULT_API_VERSION, clientCredentials, EntraTokens,
} from '../../providers/azure/index.js'
import { applyParamMap } from '../../providers/param-map.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { createModelTable } from '../../core/models.js'
import { buildConfig } from '../../core/config/load.js'
import { SseParser } from '../../core/sse.js'
import { scanEvent } from '../../core/upstream/passthrough.js'
import { GatewayError } from '../../core/errors.js'
import type { ChatChunk } from '../../core/openai/types.js'
import type { ParamMap, ProviderAdapter, ProviderRequest, ResponseMeta, Target } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'
import { closedPort } from '../helpers/upstream.js'

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`./fixtures/azure/${name}`, import.meta.url)), 'utf8')
const json = (name: string) => JSON.parse(fixture(name))

function target(over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'gpt-4o', provider: 'azure', model: 'my-gpt4o-deployment', apiBase: 'https://res.openai.azure.com',
    apiKey: 'azure-key-123', timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1, dropParams: false, additionalDropParams: [],
    extraHeaders: {}, defaults: {}, modelInfo: {}, params: {}, ...over,
  }
}

function chatBody(adapter: ProviderAdapter, req: Record<string, unknown>, tg: Target, stream = false): Record<string, unknown> {
  const op = adapter.chat!
  const body = applyParamMap(req, op.params as ParamMap<Record<string, unknown>>, tg, op.policy)
  return op.finish ? op.finish(body, req as never, tg, stream) : body
}

const meta = (tg: Target): ResponseMeta => ({ target: tg, requestId: 'req-1', created: 1 })
const user = [{ role: 'user', content: 'hi' }]

t.test('azure URLs: deployment path, api-version, base-URL forms and the v1 API', async (t) => {
  const dep = 'https://res.openai.azure.com/openai/deployments/my-gpt4o-deployment'
  const cases: Array<[string, Partial<Target>, 'chat' | 'completions' | 'embeddings' | 'images' | 'transcription' | 'speech', string]> = [
    ['default api-version (LiteLLM\'s)', {}, 'chat', `${dep}/chat/completions?api-version=${AZURE_DEFAULT_API_VERSION}`],
    ['api_version from the entry', { apiVersion: '2024-10-21' }, 'chat', `${dep}/chat/completions?api-version=2024-10-21`],
    ['AZURE_API_VERSION (Target.params)', { params: { api_version: '2024-06-01' } }, 'chat', `${dep}/chat/completions?api-version=2024-06-01`],
    ['the entry wins over the env', { apiVersion: '2024-10-21', params: { api_version: '2024-06-01' } }, 'chat', `${dep}/chat/completions?api-version=2024-10-21`],
    ['trailing slashes', { apiBase: 'https://res.openai.azure.com//', apiVersion: '2024-10-21' }, 'chat', `${dep}/chat/completions?api-version=2024-10-21`],
    ['embeddings', { apiVersion: '2024-10-21' }, 'embeddings', `${dep}/embeddings?api-version=2024-10-21`],
    ['legacy completions', { apiVersion: '2024-10-21' }, 'completions', `${dep}/completions?api-version=2024-10-21`],
    ['images', { apiVersion: '2024-10-21' }, 'images', `${dep}/images/generations?api-version=2024-10-21`],
    ['transcriptions', { apiVersion: '2024-10-21' }, 'transcription', `${dep}/audio/transcriptions?api-version=2024-10-21`],
    ['speech', { apiVersion: '2024-10-21' }, 'speech', `${dep}/audio/speech?api-version=2024-10-21`],
    ['api_base ending in /openai', { apiBase: 'https://res.openai.azure.com/openai/', apiVersion: '2024-10-21' }, 'chat',
      `${dep}/chat/completions?api-version=2024-10-21`],
    ['api_base that is a deployment base URL', { apiBase: 'https://res.openai.azure.com/openai/deployments/other', apiVersion: '2024-10-21' },
      'chat', 'https://res.openai.azure.com/openai/deployments/other/chat/completions?api-version=2024-10-21'],
    ['api_base with its own query (an APIM gateway)', { apiBase: 'https://apim.example.com/aoai?tenant=a', apiVersion: '2024-10-21' }, 'chat',
      'https://apim.example.com/aoai/openai/deployments/my-gpt4o-deployment/chat/completions?tenant=a&api-version=2024-10-21'],
    ['an api-version in the api_base wins', { apiBase: 'https://res.openai.azure.com?api-version=2023-05-15', apiVersion: '2024-10-21' }, 'chat',
      `${dep}/chat/completions?api-version=2023-05-15`],
    ['deployment names are path-encoded', { model: 'my dep', apiVersion: '2024-10-21' }, 'chat',
      'https://res.openai.azure.com/openai/deployments/my%20dep/chat/completions?api-version=2024-10-21'],
    ['v1 API', { apiVersion: 'v1' }, 'chat', 'https://res.openai.azure.com/openai/v1/chat/completions'],
    ['v1 API: latest', { apiVersion: 'latest' }, 'embeddings', 'https://res.openai.azure.com/openai/v1/embeddings'],
    ['v1 API: preview, from the env', { params: { api_version: 'preview' } }, 'chat', 'https://res.openai.azure.com/openai/v1/chat/completions?api-version=preview'],
    ['v1 API, api_base ending in /openai', { apiBase: 'https://res.openai.azure.com/openai', apiVersion: 'v1' }, 'chat',
      'https://res.openai.azure.com/openai/v1/chat/completions'],
    ['v1 API, api_base already /openai/v1/', { apiBase: 'https://res.openai.azure.com/openai/v1/', apiVersion: 'v1' }, 'chat',
      'https://res.openai.azure.com/openai/v1/chat/completions'],
  ]
  for (const [name, over, op, url] of cases) t.equal(azure.request(op, target(over), false).url, url, name)
  const tg = target({ apiVersion: '2024-10-21' })
  t.equal(azure.request('chat', tg, false).url, azure.request('chat', tg, true).url, 'streaming uses the same URL')
  t.throws(() => azure.request('chat', target({ apiBase: undefined }), false), { code: 'GW_ERR_UPSTREAM_CONNECTION', message: /AZURE_API_BASE/ })
  for (const op of ['chat', 'completions', 'embeddings', 'images', 'transcription', 'speech'] as const) t.ok(azure.operations.has(op), `azure serves ${op}`)
  t.notOk(azure.operations.has('moderations'), 'Azure OpenAI has no moderations endpoint')
})

t.test('azure auth headers: api-key, a static Entra token, extra_headers', async (t) => {
  t.same(azure.request('chat', target(), false).headers, { 'api-key': 'azure-key-123' }, 'the key goes in api-key, never as Bearer')
  t.same(azure.request('chat', target({ apiKey: undefined, params: { azure_ad_token: 'eyJ.tok' } }), false).headers,
    { authorization: 'Bearer eyJ.tok' }, 'azure_ad_token without a key: Bearer')
  t.same(azure.request('chat', target({ params: { azure_ad_token: 'eyJ.tok' } }), false).headers, { 'api-key': 'azure-key-123' },
    'a key wins over a token, as in LiteLLM')
  t.same(azure.request('chat', target({ apiKey: undefined }), false).headers, {}, 'no credentials, no header')
  t.same(azure.request('chat', target({ extraHeaders: { 'X-Ms-Client-Request-Id': 'abc' } }), false).headers,
    { 'api-key': 'azure-key-123', 'x-ms-client-request-id': 'abc' })
  // authorize() leaves a call that carries a key (or a token) alone: no Entra fetch.
  const req = azure.request('chat', target(), false)
  t.equal(azure.authorize!(req, '{}', target()), req)
})

const registry = createProviderRegistry([...builtinProviders(), azure, azure_ai])

t.test('credentials and settings from LiteLLM\'s environment variables, via the model table', async (t) => {
  const config = buildConfig({
    model_list: [
      { model_name: 'a', litellm_params: { model: 'azure/dep-a' } },
      { model_name: 'b', litellm_params: { model: 'azure/dep-b', api_key: 'from-config', api_base: 'https://b.openai.azure.com', api_version: '2024-10-21' } },
      { model_name: 'c', litellm_params: { model: 'azure/dep-c', tenant_id: 'cfg-tenant' } },
      { model_name: 'ai', litellm_params: { model: 'azure_ai/mistral-large' } },
    ],
  }, { env: {} })
  const env = {
    AZURE_API_KEY: 'env-key', AZURE_API_BASE: 'https://env.openai.azure.com', AZURE_API_VERSION: '2024-06-01',
    AZURE_AD_TOKEN: 'env-token', AZURE_TENANT_ID: 'env-tenant', AZURE_CLIENT_ID: 'env-client', AZURE_CLIENT_SECRET: 'env-secret',
    AZURE_SCOPE: 'https://ai.azure.com/.default', AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us',
    AZURE_AI_API_KEY: 'ai-key', AZURE_AI_API_BASE: 'https://mistral.eastus2.inference.ai.azure.com',
  }
  const models = createModelTable(config, registry, env)
  const a = models.resolve('a')[0]!
  t.equal(a.apiKey, 'env-key')
  t.equal(a.apiBase, 'https://env.openai.azure.com')
  t.equal(azure.request('chat', a, false).url, 'https://env.openai.azure.com/openai/deployments/dep-a/chat/completions?api-version=2024-06-01')
  t.same(clientCredentials(a.params), {
    authority: 'https://login.microsoftonline.us', tenantId: 'env-tenant', clientId: 'env-client', clientSecret: 'env-secret',
    scope: 'https://ai.azure.com/.default', key: 'https://login.microsoftonline.us\nenv-tenant\nenv-client\nhttps://ai.azure.com/.default\nenv-secret',
  })
  const b = models.resolve('b')[0]!
  t.equal(b.apiKey, 'from-config')
  t.equal(azure.request('chat', b, false).url, 'https://b.openai.azure.com/openai/deployments/dep-b/chat/completions?api-version=2024-10-21',
    'the entry\'s api_version wins over AZURE_API_VERSION')
  t.equal(models.resolve('c')[0]!.params!.tenant_id, 'cfg-tenant', 'litellm_params win over the env')
  const ai = models.resolve('ai')[0]!
  t.equal(ai.apiKey, 'ai-key')
  t.same(azure_ai.request('chat', ai, false), {
    url: 'https://mistral.eastus2.inference.ai.azure.com/chat/completions', headers: { authorization: 'Bearer ai-key' },
  })
  const openaiFirst = createModelTable(config, registry, { ...env, AZURE_OPENAI_API_KEY: 'openai-named-key' })
  t.equal(openaiFirst.resolve('a')[0]!.apiKey, 'openai-named-key', 'AZURE_OPENAI_API_KEY is read before AZURE_API_KEY, as LiteLLM does')
  const none = createModelTable(config, registry, {})
  t.equal(none.resolve('a')[0]!.apiKey, undefined, 'the real process environment is not consulted')
  t.equal(none.resolve('a')[0]!.params!.azure_ad_token, undefined)
})

t.test('chat request mapping: OpenAI\'s body with the deployment as model, valid against the spec', async (t) => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_current_weather', description: 'Get the current weather in a given location',
      parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] },
    },
  }]
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['system and user', { model: 'gpt-4o', messages: [{ role: 'system', content: 'you talk like a pirate' }, { role: 'user', content: 'parrots?' }] },
      { messages: [{ role: 'system', content: 'you talk like a pirate' }, { role: 'user', content: 'parrots?' }] }],
    ['text and image parts', {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this image?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } }] }],
    }, {}],
    ['tools, tool_choice and a tool result', {
      model: 'gpt-4o', tools, tool_choice: { type: 'function', function: { name: 'get_current_weather' } }, parallel_tool_calls: false,
      messages: [
        { role: 'user', content: 'Weather in Boston?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_current_weather', arguments: '{"location":"Boston"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temperature":22}' },
      ],
    }, { tool_choice: { type: 'function', function: { name: 'get_current_weather' } }, parallel_tool_calls: false }],
    ['sampling and limits', {
      model: 'gpt-4o', messages: user, stop: ['END'], max_tokens: 100, temperature: 0.2, top_p: 0.9, user: 'u-1', seed: 7, n: 2,
      presence_penalty: 0.5, frequency_penalty: 0.1, logprobs: true, top_logprobs: 2,
    }, { stop: ['END'], max_tokens: 100, temperature: 0.2, top_p: 0.9, user: 'u-1', seed: 7, n: 2, logprobs: true, top_logprobs: 2 }],
    ['max_completion_tokens and json_schema', {
      model: 'gpt-4o', messages: user, max_completion_tokens: 50,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } },
    }, { max_completion_tokens: 50, response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } } }],
    ['gateway fields never go upstream', {
      model: 'gpt-4o', messages: user, metadata: { tags: ['x'] }, mock_testing_fallbacks: false, api_key: 'client-key', api_version: '2020-01-01',
      fallbacks: ['other'], user_api_key_alias: 'x', priority: 1,
    }, {}],
  ]
  const tg = target({ apiVersion: '2024-10-21' })
  for (const [name, req, expected] of cases) {
    const body = chatBody(azure, req, tg)
    t.equal(body.model, 'my-gpt4o-deployment', `${name}: model is the deployment`)
    t.same(body.messages, req.messages, `${name}: messages as sent`)
    for (const [k, v] of Object.entries(expected)) t.same(body[k], v, `${name}: ${k}`)
    for (const k of ['metadata', 'mock_testing_fallbacks', 'api_key', 'api_version', 'fallbacks', 'user_api_key_alias', 'priority']) {
      t.notOk(k in body, `${name}: no ${k}`)
    }
    assertSchema(t, 'CreateChatCompletionRequest', body, `${name}: a valid chat request`)
  }
  const streamed = chatBody(azure, { model: 'gpt-4o', messages: user, stream: true }, tg, true)
  t.same(streamed.stream_options, { include_usage: true }, 'a stream always asks for usage')
  assertSchema(t, 'CreateChatCompletionRequest', streamed)

  const emb = applyParamMap({ model: 'embed', input: ['this is a test'], dimensions: 256, user: 'u-1' }, azure.embeddings!.params, tg)
  t.same(emb, { model: 'my-gpt4o-deployment', input: ['this is a test'], dimensions: 256, user: 'u-1' })
  assertSchema(t, 'CreateEmbeddingRequest', emb)
})

t.test('tool_choice needs a recent enough api-version (LiteLLM\'s check), else 400 or dropped', async (t) => {
  const cases: Array<[string, unknown, 'ok' | 'reject']> = [
    ['2023-05-15', 'auto', 'reject'],
    ['2023-12-01-preview', 'auto', 'ok'],
    ['2024-05-01-preview', 'required', 'reject'],
    ['2024-05-01-preview', 'auto', 'ok'],
    ['2024-06-01', 'required', 'ok'],
    ['2024-10-21', 'required', 'ok'],
    ['v1', 'required', 'ok'],
  ]
  for (const [apiVersion, choice, outcome] of cases) {
    const req = { model: 'gpt-4o', messages: user, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }], tool_choice: choice }
    if (outcome === 'ok') {
      t.equal(chatBody(azure, req, target({ apiVersion })).tool_choice, choice, `${apiVersion} ${String(choice)}: sent`)
      continue
    }
    t.throws(() => chatBody(azure, req, target({ apiVersion })), {
      code: 'GW_ERR_UNSUPPORTED_PARAM', status: 400, param: 'tool_choice', message: new RegExp(`api_version=${apiVersion}.*drop_params`),
    }, `${apiVersion} ${String(choice)}: 400 naming the param`)
    const dropped = chatBody(azure, req, target({ apiVersion, dropParams: true }))
    t.notOk('tool_choice' in dropped, `${apiVersion} ${String(choice)}: dropped with drop_params`)
    t.ok(Array.isArray(dropped.tools), 'the tools themselves still go')
  }
  t.equal(chatBody(azure, { model: 'gpt-4o', messages: user, tool_choice: 'required' }, target()).tool_choice, 'required',
    'the default api-version takes required')
})

t.test('responses pass through: Azure\'s filter fields kept, usage with cached tokens', async (t) => {
  const tg = target()
  const body = json('chat.response.json')
  const out = azure.chat!.response(structuredClone(body), meta(tg))
  t.same(out, body, 'nothing dropped or renamed')
  assertSchema(t, 'CreateChatCompletionResponse', out)
  t.equal(out.choices[0]!.finish_reason, 'stop')
  t.ok((out as unknown as { prompt_filter_results: unknown[] }).prompt_filter_results.length, 'prompt_filter_results kept')

  const tools = azure.chat!.response(json('chat.tool_calls.response.json'), meta(tg))
  assertSchema(t, 'CreateChatCompletionResponse', tools)
  const call = tools.choices[0]!.message.tool_calls![0]!
  t.equal(tools.choices[0]!.finish_reason, 'tool_calls')
  t.equal(call.function.name, 'get_current_weather')
  t.same(JSON.parse(call.function.arguments), { location: 'Boston, MA', unit: 'celsius' }, 'arguments are a JSON string')
  t.equal(tools.usage!.prompt_tokens_details!.cached_tokens, 1024)

  const emb = azure.embeddings!.response(json('embeddings.response.json'), meta(tg))
  assertSchema(t, 'CreateEmbeddingResponse', emb)
  t.equal(emb.usage.prompt_tokens, 4)
})

/** The fixture's events, through the adapter's translator as dispatch feeds it; also how the pass-through reads each. */
function translate(adapter: ProviderAdapter, file: string) {
  const parser = new SseParser()
  const tr = adapter.chat!.stream!({ model: 'gpt-4o', messages: [] } as never, meta(target()))
  const chunks: ChatChunk[] = []
  const passed: Array<'forwarded' | 'parsed'> = []
  for (const ev of [...parser.push(Buffer.from(fixture(file))), ...parser.end()]) {
    if (ev.data.trim() !== '[DONE]') passed.push(scanEvent(ev.data) ? 'forwarded' : 'parsed')
    chunks.push(...tr.event(ev))
  }
  return { chunks, passed, end: tr.end() }
}

t.test('stream translation, chunk by chunk, over Azure\'s stream shapes', async (t) => {
  const tc = translate(azure, 'stream.tool_calls.sse')
  t.equal(tc.chunks.length, 7)
  t.same(tc.chunks[0]!.choices, [], 'first event: the prompt\'s filter results with empty choices, passed on')
  t.ok((tc.chunks[0] as unknown as { prompt_filter_results: unknown }).prompt_filter_results)
  const first = tc.chunks[1]!.choices[0]!.delta.tool_calls![0]!
  t.same({ index: first.index, id: first.id, type: first.type, name: first.function!.name }, {
    index: 0, id: 'call_9yQ2pUq4bxTtVwLm3n0ZkA1s', type: 'function', name: 'get_current_weather',
  }, 'first tool-call delta: index, id, type, name')
  t.equal(tc.chunks[1]!.choices[0]!.delta.role, 'assistant')
  const args = tc.chunks.slice(1).flatMap((c) => c.choices).map((c) => c.delta?.tool_calls?.[0]?.function?.arguments ?? '').join('')
  t.same(JSON.parse(args), { location: 'Boston, MA', unit: 'celsius' }, 'argument fragments join into JSON')
  t.equal(tc.chunks[5]!.choices[0]!.finish_reason, 'tool_calls')
  t.same(tc.end.usage, {
    completion_tokens: 21, prompt_tokens: 1124, total_tokens: 1145, prompt_tokens_details: { cached_tokens: 1024 },
    completion_tokens_details: { reasoning_tokens: 0 },
  }, 'usage from the include_usage chunk, cached tokens kept')
  t.same(tc.passed, ['forwarded', 'forwarded', 'forwarded', 'forwarded', 'forwarded', 'forwarded', 'parsed'],
    'pass-through: Azure\'s empty-choices first event is forwarded as is; only the usage event is parsed')
  for (const c of tc.chunks.slice(1)) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  const blocked = translate(azure, 'stream.blocked.sse')
  const text = blocked.chunks.flatMap((c) => c.choices).map((c) => c.delta?.content ?? '').join('')
  t.equal(text, 'Hey Jude, better')
  t.equal(blocked.chunks.at(-1)!.choices[0]!.finish_reason, 'content_filter', 'content_filter passes through as the finish reason')
  t.equal(blocked.end.usage, null)
  t.notOk(blocked.passed.includes('parsed'), 'every event forwarded')

  const async = translate(azure, 'stream.async_filter.sse')
  const annotation = async.chunks[5]!.choices[0]! as unknown as Record<string, unknown>
  t.notOk('delta' in annotation, 'an annotation event (no delta) is passed on, not invented into a delta')
  t.ok(annotation.content_filter_offsets)
  t.equal(async.chunks.filter((c) => c.choices[0]?.finish_reason === 'stop').length, 1)
  t.equal(async.chunks.length, 8, 'every event but [DONE] is a chunk')
})

t.test('a mid-stream error event throws, mapped like an HTTP error', async (t) => {
  const tr = azure.chat!.stream!({ model: 'gpt-4o', messages: [] } as never, meta(target()))
  t.throws(() => tr.event({ event: undefined, data: JSON.stringify(json('error.content_filter.json')) }),
    { code: 'GW_ERR_CONTENT_POLICY', status: 400 })
  const tr2 = azure.chat!.stream!({ model: 'gpt-4o', messages: [] } as never, meta(target()))
  t.throws(() => tr2.event({ event: undefined, data: '{"error":{"message":"The server had an error while processing your request.","type":"server_error","code":null}}' }),
    { code: 'GW_ERR_UPSTREAM_SERVER', status: 500, message: /server had an error/ })
})

t.test('error mapping', async (t) => {
  const contentFilter = json('error.content_filter.json')
  const err = (code: string, message: string, extra: Record<string, unknown> = {}) => ({ error: { code, message, ...extra } })
  const cases: Array<[string, ProviderAdapter, number, unknown, Record<string, string>, Record<string, unknown>]> = [
    ['content filter (code content_filter)', azure, 400, contentFilter, {},
      { code: 'GW_ERR_CONTENT_POLICY', status: 400, type: 'invalid_request_error', openaiCode: 'content_filter', param: 'prompt', message: /Azure Content management policy/ }],
    ['content filter known by innererror only', azure, 400,
      err('BadRequest', 'The prompt was blocked.', { innererror: { code: 'ResponsibleAIPolicyViolation' } }), {},
      { code: 'GW_ERR_CONTENT_POLICY', status: 400, message: 'The prompt was blocked.' }],
    ['images API content filter', azure, 400, err('contentFilter', 'Your task failed as a result of our safety system.'), {},
      { code: 'GW_ERR_CONTENT_POLICY', status: 400 }],
    ['context window', azure, 400, { error: { message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130011 tokens. Please reduce the length of the messages.", type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } }, {},
      { code: 'GW_ERR_CONTEXT_WINDOW', status: 400, param: 'messages', message: /maximum context length/ }],
    ['429 keeps retry-after', azure, 429, err('429', 'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds.'),
      { 'retry-after': '6' }, { code: 'GW_ERR_UPSTREAM_RATE_LIMIT', status: 429, retryAfter: 6, message: /token rate limit/ }],
    ['429 with retry-after-ms only', azure, 429, err('429', 'Rate limit is exceeded.'), { 'retry-after-ms': '1500' },
      { code: 'GW_ERR_UPSTREAM_RATE_LIMIT', retryAfter: 2 }],
    ['401 bad key', azure, 401, err('401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.'), {},
      { code: 'GW_ERR_UPSTREAM_AUTH', status: 401, type: 'authentication_error', message: /invalid subscription key/ }],
    ['401 from API Management (no error member)', azure, 401, { statusCode: 401, message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' }, {},
      { code: 'GW_ERR_UPSTREAM_AUTH', status: 401, message: /Access token is missing/ }],
    ['403', azure, 403, err('PermissionDenied', 'Principal does not have access to API/Operation.'), {},
      { code: 'GW_ERR_UPSTREAM_FORBIDDEN', status: 403 }],
    ['404 unknown deployment', azure, 404, err('DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.'), {},
      { code: 'GW_ERR_UPSTREAM_NOT_FOUND', status: 404, openaiCode: 'DeploymentNotFound' }],
    ['500', azure, 500, { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } }, {},
      { code: 'GW_ERR_UPSTREAM_SERVER', status: 500 }],
    ['503 overloaded', azure, 503, err('ServiceUnavailable', 'The service is temporarily unable to process your request. Please try again later.'), {},
      { code: 'GW_ERR_UPSTREAM_UNAVAILABLE', status: 503 }],
    ['a 502 HTML page is never shown', azure, 502, '<html><body>Bad gateway</body></html>', {},
      { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', status: 502, message: 'azure returned HTTP 502 Bad Gateway (non-JSON body)' }],
    ['azure_ai: content filter', azure_ai, 400, contentFilter, {}, { code: 'GW_ERR_CONTENT_POLICY', provider: 'azure_ai' }],
    ['azure_ai: unknown param', azure_ai, 422, { error: { code: 'Invalid input', message: 'Extra inputs are not permitted', status: 422 } }, {},
      { code: 'GW_ERR_UPSTREAM_UNPROCESSABLE', status: 422, provider: 'azure_ai', message: 'Extra inputs are not permitted' }],
  ]
  for (const [name, adapter, status, body, headers, expected] of cases) {
    const e = adapter.error(status, body, headers)
    t.ok(e instanceof GatewayError, name)
    t.match(e, { upstreamStatus: status, provider: adapter.name, ...expected }, name)
  }
})

/** Wait (polling, 2 s at most) for a background refresh to land: it has no promise of its own to await. */
async function settled(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10))
}

interface TokenCall {
  path: string
  form: URLSearchParams
}

/** A fake Entra token endpoint on 127.0.0.1: answers from `reply`, records each call. */
async function tokenServer(t: Test) {
  const calls: TokenCall[] = []
  let n = 0
  let reply: (n: number) => { status: number; body: unknown } = (i) => ({ status: 200, body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: `tok-${i}` } })
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (raw += c))
    req.on('end', () => {
      calls.push({ path: req.url!, form: new URLSearchParams(raw) })
      const r = reply(++n)
      res.writeHead(r.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(r.body))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    setReply(f: typeof reply) {
      reply = f
    },
  }
}

t.test('Entra client credentials: one fetch shared, cached until shortly before expiry', async (t) => {
  const srv = await tokenServer(t)
  let now = 1_700_000_000_000
  const adapter = createAzureAdapter({ now: () => now })
  const tg = target({
    apiKey: undefined,
    params: { tenant_id: 'tenant-1', client_id: 'client-1', client_secret: 's3cret-value', azure_authority_host: `${srv.url}/` },
  })
  const req = adapter.request('chat', tg, false)
  t.same(req.headers, {}, 'request() alone adds no credential')
  const authorize = (r: ProviderRequest = req) => adapter.authorize!(r, '{}', tg)

  // Three calls before any token exists (one tick, so none can see a finished fetch): they share one request.
  const parallel = [authorize(), authorize(), authorize()]
  t.ok(parallel.every((p) => p instanceof Promise), 'no token yet: the calls wait')
  const got = await Promise.all(parallel)
  t.equal(srv.calls.length, 1, 'three calls, one token request')
  for (const g of got) t.equal(g.headers.authorization, 'Bearer tok-1')
  t.equal(got[0]!.url, req.url)
  const call = srv.calls[0]!
  t.equal(call.path, '/tenant-1/oauth2/v2.0/token')
  t.same(Object.fromEntries(call.form), {
    grant_type: 'client_credentials', client_id: 'client-1', client_secret: 's3cret-value', scope: 'https://cognitiveservices.azure.com/.default',
  })

  const cached = authorize()
  t.notOk(cached instanceof Promise, 'a fresh token is used synchronously')
  t.equal((cached as ProviderRequest).headers.authorization, 'Bearer tok-1')
  now += 3599_000 - 5 * 60_000 - 1
  t.equal((authorize() as ProviderRequest).headers.authorization, 'Bearer tok-1', 'still fresh just before the refresh point')
  t.equal(srv.calls.length, 1)

  now += 2
  const during = authorize()
  t.notOk(during instanceof Promise, 'past the refresh point the valid token is still used at once')
  t.equal((during as ProviderRequest).headers.authorization, 'Bearer tok-1')
  // Calls while the refresh runs keep the old token and start no second fetch.
  await settled(() => (authorize() as ProviderRequest).headers.authorization === 'Bearer tok-2')
  t.equal((authorize() as ProviderRequest).headers.authorization, 'Bearer tok-2', 'the refreshed token is used next')
  t.equal(srv.calls.length, 2, 'one background refresh')

  now += 3600_000
  const expired = authorize()
  t.ok(expired instanceof Promise, 'an expired token is never sent: the call waits for a new one')
  t.equal((await expired).headers.authorization, 'Bearer tok-3')
  t.equal(srv.calls.length, 3)

  const withExtra = { url: req.url, headers: { authorization: 'Bearer from-extra-headers' } }
  t.equal(authorize(withExtra), withExtra, 'an authorization from extra_headers is left alone')
})

t.test('Entra token errors: the endpoint\'s words, never the secret; the next call retries', async (t) => {
  const srv = await tokenServer(t)
  const adapter = createAzureAdapter()
  const tg = target({
    apiKey: undefined,
    params: { tenant_id: 'tenant-2', client_id: 'client-2', client_secret: 'hunter2-secret', azure_scope: 'https://ai.azure.com/.default', azure_authority_host: srv.url },
  })
  const req = adapter.request('chat', tg, false)
  srv.setReply(() => ({
    status: 401,
    body: { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided (hunter2-secret).\r\nTrace ID: 1', error_codes: [7000215] },
  }))
  await t.rejects(Promise.resolve(adapter.authorize!(req, '{}', tg)), { code: 'GW_ERR_UPSTREAM_AUTH', status: 401, message: /invalid_client: AADSTS7000215/ })
  try {
    await adapter.authorize!(req, '{}', tg)
  } catch (e) {
    t.notMatch((e as Error).message, /hunter2/, 'the secret is masked')
    t.notMatch((e as Error).message, /Trace ID|\r/, 'only the first line of the description')
  }
  t.equal(srv.calls.length, 2, 'a failure is not cached')
  t.equal(srv.calls[0]!.form.get('scope'), 'https://ai.azure.com/.default', 'azure_scope is the scope asked for')

  srv.setReply(() => ({ status: 503, body: { error: 'temporarily_unavailable' } }))
  await t.rejects(Promise.resolve(adapter.authorize!(req, '{}', tg)), { code: 'GW_ERR_UPSTREAM_UNAVAILABLE', status: 503 })
  srv.setReply(() => ({ status: 200, body: { token_type: 'Bearer', expires_in: 3599 } }))
  await t.rejects(Promise.resolve(adapter.authorize!(req, '{}', tg)), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
  srv.setReply((i) => ({ status: 200, body: { token_type: 'Bearer', expires_in: '3599', access_token: `ok-${i}` } }))
  t.equal((await adapter.authorize!(req, '{}', tg)).headers.authorization, 'Bearer ok-5', 'recovers; expires_in as a string is read')

  const dead = target({ apiKey: undefined, params: { tenant_id: 't', client_id: 'c', client_secret: 's', azure_authority_host: `http://127.0.0.1:${await closedPort()}` } })
  await t.rejects(Promise.resolve(adapter.authorize!(adapter.request('chat', dead, false), '{}', dead)),
    { code: 'GW_ERR_UPSTREAM_CONNECTION', status: 502, message: /ECONNREFUSED/ })
})

t.test('a short-lived token refreshes halfway through its life', async (t) => {
  const srv = await tokenServer(t)
  srv.setReply((i) => ({ status: 200, body: { access_token: `short-${i}`, expires_in: 60 } }))
  let now = 0
  const tokens = new EntraTokens('azure', { now: () => now })
  const c = clientCredentials({ tenant_id: 't', client_id: 'c', client_secret: 's', azure_authority_host: srv.url })!
  t.equal(await tokens.token(c), 'short-1')
  now = 29_000
  t.equal(tokens.token(c), 'short-1', 'fresh before half its 60 s')
  now = 31_000
  t.equal(tokens.token(c), 'short-1', 'past half: still valid, refreshed in the background')
  await settled(() => tokens.token(c) === 'short-2')
  t.equal(tokens.token(c), 'short-2')
  t.equal(srv.calls.length, 2)
  t.equal(clientCredentials({ tenant_id: 't', client_id: 'c' }), null, 'no secret, no client credentials')
})

t.test('azure_ai: endpoints, auth header by host, content lists flattened', async (t) => {
  const ai = (apiBase: string, over: Partial<Target> = {}) => target({ provider: 'azure_ai', model: 'mistral-large', apiBase, apiKey: 'ai-key', ...over })
  const cases: Array<[string, Target, 'chat' | 'embeddings', string]> = [
    ['Foundry resource: models endpoint with api-version', ai('https://my-res.services.ai.azure.com', { apiVersion: '2024-05-01-preview' }), 'chat',
      'https://my-res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview'],
    ['Foundry resource ending in /models', ai('https://my-res.services.ai.azure.com/models/'), 'chat', 'https://my-res.services.ai.azure.com/models/chat/completions'],
    ['api_base copied from the portal (full path and version)', ai('https://my-res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview'), 'chat',
      'https://my-res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview'],
    ['... and its embeddings', ai('https://my-res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview'), 'embeddings',
      'https://my-res.services.ai.azure.com/models/embeddings?api-version=2024-05-01-preview'],
    ['serverless endpoint', ai('https://Mistral-large-dfgfj-serverless.eastus2.inference.ai.azure.com/'), 'chat',
      'https://Mistral-large-dfgfj-serverless.eastus2.inference.ai.azure.com/chat/completions'],
    ['serverless /v1 base, embeddings', ai('https://cohere-embed.eastus2.inference.ai.azure.com/v1'), 'embeddings',
      'https://cohere-embed.eastus2.inference.ai.azure.com/v1/embeddings'],
  ]
  for (const [name, tg, op, url] of cases) t.equal(azure_ai.request(op, tg, false).url, url, name)
  t.same(azure_ai.request('chat', ai('https://my-res.services.ai.azure.com'), false).headers, { 'api-key': 'ai-key' }, 'Foundry host: api-key')
  t.same(azure_ai.request('chat', ai('https://my-res.openai.azure.com'), false).headers, { 'api-key': 'ai-key' }, 'Azure OpenAI host: api-key')
  t.same(azure_ai.request('chat', ai('https://x.eastus2.inference.ai.azure.com'), false).headers, { authorization: 'Bearer ai-key' }, 'serverless: Bearer')
  t.throws(() => azure_ai.request('chat', ai(''), false), { message: /AZURE_AI_API_BASE/ })
  t.notOk(azure_ai.operations.has('completions'), 'no /completions: legacy completions go through chat')
  t.ok(azure_ai.operations.has('embeddings'))

  const image = { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'world' }] },
    image,
  ]
  const req = { model: 'mistral', messages, temperature: 0.1 }
  const body = chatBody(azure_ai, req, ai('https://x.eastus2.inference.ai.azure.com'))
  t.same(body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello world' }, image],
    'text parts joined (as LiteLLM joins them), a message with an image left as it is')
  t.equal(body.model, 'mistral-large')
  t.same(messages[1]!.content, [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'world' }], 'the client\'s request is not changed')
  assertSchema(t, 'CreateChatCompletionRequest', body)
  const plain = [{ role: 'user', content: 'hi' }]
  t.equal(chatBody(azure_ai, { model: 'm', messages: plain }, ai('https://x.inference.ai.azure.com')).messages, plain, 'nothing to flatten: no copy')
})
