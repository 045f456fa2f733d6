/**
 * The Ollama adapters, table-driven over the recorded examples in ../shared/data/ollama (docs/api.md of
 * ollama/ollama): request mapping (every body checked against Ollama's openapi.yaml ChatRequest / EmbedRequest),
 * response mapping (every output checked against OpenAI's spec), error mapping and embeddings. Streams are in
 * ollama-stream.test.ts.
 */
import t from 'tap'
import { GatewayError } from '../../core/errors.js'
import type { ChatRequest, EmbeddingRequest } from '../../core/openai/types.js'
import { buildConfig } from '../../core/config/load.js'
import { createModelTable } from '../../core/models.js'
import { applyParamMap } from '../../providers/param-map.js'
import { createProviderRegistry } from '../../providers/registry.js'
import { ollama, ollama_chat } from '../../providers/ollama/index.js'
import type { ProviderAdapter, Target } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertOllamaSchema, fixture, meta, ollamaSchemaErrors, ollamaSpec, requestOf, target } from './ollama-fixtures.js'

/** What dispatch does before the HTTP call: the param map, then finish(). */
function build(req: Record<string, unknown>, over: Partial<Target> = {}, stream = false, adapter: ProviderAdapter = ollama_chat): Record<string, unknown> {
  const tg = target(over)
  const op = adapter.chat!
  const body = applyParamMap(req as ChatRequest, op.params, tg, op.policy)
  return op.finish ? op.finish(body, req as ChatRequest, tg, stream) : body
}

const user = (content: unknown) => ({ role: 'user', content })
const weatherTool = requestOf('chat.tools.request.json').tools as unknown[]

t.test('the spec validator can fail', async (t) => {
  t.ok(ollamaSchemaErrors('ChatRequest', { model: 'm', messages: [{ role: 'user' }] }).length > 0, 'a message without content is refused')
  t.ok(ollamaSchemaErrors('ChatRequest', { model: 'm', messages: [], format: 'yaml' }).length > 0, 'format other than json is refused')
  t.ok(ollamaSchemaErrors('EmbedRequest', { model: 'm' }).length > 0, 'an embed request without input is refused')
})

t.test('request mapping reproduces the recorded requests', async (t) => {
  const cases: Array<{ name: string; req: Record<string, unknown>; stream: boolean; expect: Record<string, unknown> }> = [
    { name: 'chat.request.json', req: { model: 'llama', messages: [user('why is the sky blue?')] }, stream: false, expect: requestOf('chat.request.json') },
    // The recorded streaming request leaves `stream` to its default (true); the gateway always says it.
    { name: 'chat.stream.request.json', req: { model: 'llama', messages: [user('why is the sky blue?')], stream: true }, stream: true, expect: { ...requestOf('chat.stream.request.json'), stream: true } },
    { name: 'chat.tools.request.json', req: { model: 'llama', messages: [user('what is the weather in tokyo?')], tools: weatherTool }, stream: false, expect: requestOf('chat.tools.request.json') },
    { name: 'chat.tools.stream.request.json', req: { model: 'llama', messages: [user('what is the weather in tokyo?')], tools: weatherTool, stream: true }, stream: true, expect: requestOf('chat.tools.stream.request.json') },
    {
      // api.md "Chat request (With history, with tools)": OpenAI's tool-call round trip in Ollama's words.
      name: 'history with tools (api.md)',
      req: {
        model: 'llama',
        messages: [
          user('what is the weather in Toronto?'),
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Toronto"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: '11 degrees celsius' },
        ],
        tools: weatherTool,
      },
      stream: false,
      expect: {
        model: 'llama3.2',
        messages: [
          { role: 'user', content: 'what is the weather in Toronto?' },
          { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Toronto' } } }] },
          { role: 'tool', content: '11 degrees celsius', tool_name: 'get_weather' },
        ],
        stream: false,
        tools: weatherTool,
      },
    },
  ]
  for (const c of cases) {
    const body = build(c.req, {}, c.stream)
    t.same(body, c.expect, `${c.name}: same body`)
    assertOllamaSchema(t, 'ChatRequest', body, `${c.name}: valid ChatRequest`)
  }
})

t.test('request mapping: messages, options, formats, native fields', async (t) => {
  const png = 'iVBORw0KGgoAAAANSUhEUg'
  const cases: Array<{ name: string; req: Record<string, unknown>; over?: Partial<Target>; expect: Record<string, unknown> }> = [
    {
      name: 'system, developer, multi-part text and a data-URL image',
      req: {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric.' }] },
          user([{ type: 'text', text: 'What is ' }, { type: 'text', text: 'in this image?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }]),
        ],
      },
      expect: {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'system', content: 'Use metric.' },
          { role: 'user', content: 'What is in this image?', images: [png] },
        ],
      },
    },
    {
      name: 'sampling params into options; max_completion_tokens wins over max_tokens',
      req: { messages: [user('hi')], temperature: 0.2, top_p: 0.9, seed: 42, stop: ['\n'], max_tokens: 50, max_completion_tokens: 70, frequency_penalty: 0.5, presence_penalty: 1.5 },
      expect: { options: { temperature: 0.2, top_p: 0.9, seed: 42, stop: ['\n'], num_predict: 70, frequency_penalty: 0.5, presence_penalty: 1.5 } },
    },
    { name: 'max_tokens alone', req: { messages: [user('hi')], max_tokens: 50 }, expect: { options: { num_predict: 50 } } },
    { name: 'json mode', req: { messages: [user('hi')], response_format: { type: 'json_object' } }, expect: { format: 'json' } },
    {
      name: 'structured output: the schema itself',
      req: { messages: [user('hi')], response_format: { type: 'json_schema', json_schema: { name: 'age', schema: { type: 'object', properties: { age: { type: 'integer' } } } } } },
      expect: { format: { type: 'object', properties: { age: { type: 'integer' } } } },
    },
    { name: 'text format sends none', req: { messages: [user('hi')], response_format: { type: 'text' } }, expect: { format: undefined } },
    { name: 'reasoning_effort turns thinking on', req: { messages: [user('hi')], reasoning_effort: 'medium' }, expect: { think: true } },
    { name: "reasoning_effort 'none' turns it off", req: { messages: [user('hi')], reasoning_effort: 'none' }, expect: { think: false } },
    { name: 'gpt-oss takes the level', req: { messages: [user('hi')], reasoning_effort: 'high' }, over: { model: 'gpt-oss:20b' }, expect: { think: 'high', model: 'gpt-oss:20b' } },
    {
      name: 'native fields pass: keep_alive, think, options merged under the mapped ones, top-level num_ctx',
      req: { messages: [user('hi')], keep_alive: '10m', think: true, options: { num_ctx: 2048, temperature: 1 }, temperature: 0.1, top_k: 20 },
      expect: { keep_alive: '10m', think: true, options: { num_ctx: 2048, temperature: 0.1, top_k: 20 } },
    },
    {
      name: 'deployment settings from litellm_params fill what the request left out',
      req: { messages: [user('hi')], options: { num_ctx: 1024 } },
      over: { params: { num_ctx: 8192, num_gpu: 1, keep_alive: '1h' } },
      expect: { keep_alive: '1h', options: { num_ctx: 1024, num_gpu: 1 } },
    },
    { name: "tool_choice 'auto' is Ollama's behaviour", req: { messages: [user('hi')], tools: weatherTool, tool_choice: 'auto' }, expect: { tools: weatherTool, tool_choice: undefined } },
    { name: "tool_choice 'none' sends no tools", req: { messages: [user('hi')], tools: weatherTool, tool_choice: 'none' }, expect: { tools: undefined } },
    {
      name: 'a tool without parameters gets an empty schema (Ollama requires one)',
      req: { messages: [user('hi')], tools: [{ type: 'function', function: { name: 'now' } }] },
      expect: { tools: [{ type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } }] },
    },
    { name: 'logprobs pass', req: { messages: [user('hi')], logprobs: true, top_logprobs: 3 }, expect: { logprobs: true, top_logprobs: 3 } },
    { name: 'n: 1 is harmless', req: { messages: [user('hi')], n: 1 }, expect: { n: undefined } },
    {
      name: 'null means "not set": nothing is sent for it',
      req: { messages: [user('hi')], temperature: null, max_tokens: null, stop: null, tools: null, tool_choice: null, response_format: null, reasoning_effort: null, n: null, user: null },
      expect: { options: undefined, tools: undefined, format: undefined, think: undefined, n: undefined, user: undefined },
    },
    {
      name: 'gateway fields never reach Ollama; stream_options neither',
      req: { messages: [user('hi')], metadata: { a: 1 }, num_retries: 2, stream_options: { include_usage: true } },
      expect: { metadata: undefined, num_retries: undefined, stream_options: undefined },
    },
    {
      name: 'legacy function role, assistant reasoning sent back as thinking',
      req: { messages: [user('q'), { role: 'assistant', content: 'a', reasoning_content: 'because' }, { role: 'function', name: 'f', content: '1' }] },
      expect: { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a', thinking: 'because' }, { role: 'tool', content: '1', tool_name: 'f' }] },
    },
  ]
  for (const c of cases) {
    const body = build({ model: 'llama', ...c.req }, c.over)
    t.match(body, { model: 'llama3.2', stream: false, ...c.expect }, c.name)
    for (const [k, v] of Object.entries(c.expect)) if (v === undefined) t.notOk(k in body, `${c.name}: no ${k}`)
    if (c.expect.options) t.same(body.options, c.expect.options, `${c.name}: exactly these options`)
    assertOllamaSchema(t, 'ChatRequest', body, `${c.name}: valid ChatRequest`)
  }
})

t.test('params Ollama lacks are a 400 naming them, or dropped with drop_params', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['user', { user: 'u-1' }],
    ['n', { n: 2 }],
    ['logit_bias', { logit_bias: { 1: 1 } }],
    ['parallel_tool_calls', { parallel_tool_calls: false }],
    ['tool_choice', { tools: weatherTool, tool_choice: 'required' }],
    ['tool_choice', { tools: weatherTool, tool_choice: { type: 'function', function: { name: 'get_weather' } } }],
    ['service_tier', { service_tier: 'flex' }],
  ]
  for (const [param, extra] of cases) {
    const req = { model: 'llama', messages: [user('hi')], ...extra }
    try {
      build(req)
      t.fail(`${param}: should be refused`)
    } catch (err) {
      t.match(err, { code: 'GW_ERR_UNSUPPORTED_PARAM', status: 400, param, message: new RegExp(`${param}.*drop_params`) }, `${param}: 400`)
    }
    const body = build(req, { dropParams: true })
    t.notOk(param in body, `${param}: dropped with drop_params`)
    assertOllamaSchema(t, 'ChatRequest', body, `${param}: dropped body is valid`)
  }
})

t.test('messages Ollama cannot take are a 400, not a silent loss', async (t) => {
  const cases: Array<[string, unknown[], RegExp]> = [
    ['remote image', [user([{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }])], /data: URL/],
    ['audio part', [user([{ type: 'input_audio', input_audio: { data: 'AAA', format: 'wav' } }])], /input_audio/],
    ['tool arguments that are not JSON', [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{oops' } }] }], /not valid JSON/],
    ['tool arguments that are not an object', [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1]' } }] }], /JSON object/],
  ]
  for (const [name, messages, message] of cases) {
    t.throws(() => build({ model: 'llama', messages }), { code: 'GW_ERR_VALIDATION', status: 400, message }, name)
  }
})

t.test('URLs, headers and credentials', async (t) => {
  const chat = ollama_chat.request('chat', target(), false)
  t.equal(chat.url, 'http://localhost:11434/api/chat', 'default base')
  t.notOk('authorization' in chat.headers, 'no key, no Authorization header')
  t.equal(ollama.request('embeddings', target({ apiBase: 'http://10.0.0.2:11434/' }), false).url, 'http://10.0.0.2:11434/api/embed')
  t.equal(ollama_chat.request('chat', target({ apiBase: 'http://h:1/api/chat' }), true).url, 'http://h:1/api/chat', 'a LiteLLM api_base ending in /api/chat')
  t.equal(ollama_chat.request('embeddings', target({ apiBase: 'http://h:1/api/chat' }), false).url, 'http://h:1/api/embed')
  const keyed = ollama_chat.request('chat', target({ apiKey: 'sk-ollama', extraHeaders: { 'X-Trace': 'abc' } }), false)
  t.equal(keyed.headers.authorization, 'Bearer sk-ollama')
  t.equal(keyed.headers['x-trace'], 'abc')
  t.same([...ollama.operations].sort(), ['chat', 'embeddings'])

  // LiteLLM's variables: OLLAMA_API_BASE for both; OLLAMA_API_KEY for ollama_chat only (litellm/main.py).
  const registry = createProviderRegistry([ollama, ollama_chat])
  const config = buildConfig({
    model_list: [
      { model_name: 'chat', litellm_params: { model: 'ollama_chat/llama3.2' } },
      { model_name: 'gen', litellm_params: { model: 'ollama/llama3.2' } },
      { model_name: 'explicit', litellm_params: { model: 'ollama/llama3.2', api_key: 'from-config', api_base: 'http://other:11434' } },
    ],
  }, { env: {} })
  const models = createModelTable(config, registry, { OLLAMA_API_BASE: 'http://ollama.internal:11434', OLLAMA_API_KEY: 'env-key' })
  const c = models.resolve('chat')[0]!
  t.match(c, { provider: 'ollama_chat', model: 'llama3.2', apiBase: 'http://ollama.internal:11434', apiKey: 'env-key' })
  t.match(models.resolve('gen')[0]!, { provider: 'ollama', apiBase: 'http://ollama.internal:11434', apiKey: undefined })
  t.match(models.resolve('explicit')[0]!, { apiBase: 'http://other:11434', apiKey: 'from-config' })
  t.equal(registry.get('ollama_chat')!.request('chat', c, false).headers.authorization, 'Bearer env-key')
})

t.test('response mapping', async (t) => {
  const m = meta()
  const plain = ollama_chat.chat!.response(fixture('chat.response.json'), m)
  t.same(plain, {
    id: 'chatcmpl-req-1', object: 'chat.completion', created: 1_700_000_000, model: 'llama3.2',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How are you today?', refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 26, completion_tokens: 298, total_tokens: 324 },
  })
  assertSchema(t, 'CreateChatCompletionResponse', plain)

  const tools = ollama_chat.chat!.response(fixture('chat.tools.response.json'), m)
  const msg = tools.choices[0]!.message
  t.equal(msg.content, null, 'a tool-calling turn has no content')
  t.equal(msg.tool_calls!.length, 1)
  t.match(msg.tool_calls![0], { id: /^call_[0-9a-f]{24}$/, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tokyo"}' } })
  t.equal(tools.choices[0]!.finish_reason, 'tool_calls')
  t.same(tools.usage, { prompt_tokens: 169, completion_tokens: 18, total_tokens: 187 })
  assertSchema(t, 'CreateChatCompletionResponse', tools)

  const base = fixture('chat.response.json')
  const cases: Array<[string, Record<string, unknown>, (r: any) => void]> = [
    ['done_reason length', { done_reason: 'length' }, (r) => t.equal(r.choices[0].finish_reason, 'length')],
    ['thinking -> reasoning_content', { message: { role: 'assistant', content: '42', thinking: 'six times seven' } }, (r) => t.match(r.choices[0].message, { content: '42', reasoning_content: 'six times seven' })],
    ['no counts: usage left to the core', { prompt_eval_count: undefined, eval_count: undefined }, (r) => t.notOk('usage' in r)],
    ['logprobs keep their shape', { logprobs: [{ token: 'Hello', logprob: -0.1, bytes: [72], top_logprobs: [{ token: 'Hello', logprob: -0.1, bytes: [72] }] }] },
      (r) => t.same(r.choices[0].logprobs, { content: [{ token: 'Hello', logprob: -0.1, bytes: [72], top_logprobs: [{ token: 'Hello', logprob: -0.1, bytes: [72] }] }], refusal: null })],
  ]
  for (const [name, over, check] of cases) {
    const r = ollama_chat.chat!.response({ ...base, ...over }, m)
    check(r)
    assertSchema(t, 'CreateChatCompletionResponse', r, `${name}: valid`)
  }
  t.throws(() => ollama_chat.chat!.response({ error: 'model crashed' }, m), { code: 'GW_ERR_UPSTREAM_SERVER', message: 'model crashed' }, 'an error body on a 200')
  t.throws(() => ollama_chat.chat!.response({ model: 'x', done: true }, m), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' }, 'no message')
})

t.test('error mapping', async (t) => {
  const cases: Array<[string, number, unknown, Record<string, string>, Record<string, unknown>]> = [
    ['unknown model', 404, { error: "model 'llama9' not found" }, {}, { status: 404, code: 'GW_ERR_UPSTREAM_NOT_FOUND', openaiCode: 'model_not_found', message: "model 'llama9' not found" }],
    ['context window (400)', 400, { error: 'the input length exceeds the context length' }, {}, { status: 400, code: 'GW_ERR_CONTEXT_WINDOW', openaiCode: 'context_length_exceeded' }],
    ['context window (500 from the runner)', 500, { error: 'prompt too long; exceeded max context length by 100 tokens' }, {}, { status: 400, code: 'GW_ERR_CONTEXT_WINDOW' }],
    ['bad request', 400, { error: 'invalid format' }, {}, { status: 400, code: 'GW_ERR_UPSTREAM_BAD_REQUEST', message: 'invalid format' }],
    ['rate limit keeps retry-after', 429, { error: 'too many requests' }, { 'retry-after': '7' }, { status: 429, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', retryAfter: 7 }],
    ['auth', 401, { error: 'unauthorized' }, {}, { status: 401, code: 'GW_ERR_UPSTREAM_AUTH', type: 'authentication_error' }],
    ['forbidden', 403, { error: 'forbidden' }, {}, { status: 403, code: 'GW_ERR_UPSTREAM_FORBIDDEN' }],
    ['server error', 500, { error: 'llama runner process has terminated: exit status 2' }, {}, { status: 500, code: 'GW_ERR_UPSTREAM_SERVER' }],
    ['busy', 503, { error: 'server busy, please try again.  maximum pending requests exceeded' }, {}, { status: 503, code: 'GW_ERR_UPSTREAM_UNAVAILABLE' }],
    ['OpenAI-shaped error from a proxy', 400, { error: { message: 'bad thing' } }, {}, { status: 400, message: 'bad thing' }],
    ['an HTML page is never shown', 502, '<html><body>Bad Gateway</body></html>', {}, { status: 502, code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', message: 'ollama_chat returned HTTP 502 Bad Gateway (non-JSON body)' }],
    ['empty body', 500, null, {}, { status: 500, message: 'ollama_chat returned HTTP 500 Internal Server Error' }],
  ]
  for (const [name, status, body, headers, expect] of cases) {
    const e = ollama_chat.error(status, body, headers)
    t.ok(e instanceof GatewayError, name)
    t.match(e, { provider: 'ollama_chat', upstreamStatus: status, ...expect }, name)
  }
  const long = ollama_chat.error(500, { error: 'x'.repeat(2000) }, {})
  t.ok(long.message.length < 600, 'a long message is cut')
})

t.test('embeddings', async (t) => {
  const spec = ollamaSpec()
  const example = spec.paths['/api/embed'].post.responses['200'].content['application/json'].example
  const tg = target({ model: 'embeddinggemma', provider: 'ollama' })
  const op = ollama.embeddings!
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['one input', { model: 'e', input: 'Generate embeddings for this text' }, { model: 'embeddinggemma', input: 'Generate embeddings for this text' }],
    ['several, dimensions, truncate; encoding_format is the core\'s', { model: 'e', input: ['a', 'b'], dimensions: 128, truncate: false, encoding_format: 'base64' },
      { model: 'embeddinggemma', input: ['a', 'b'], dimensions: 128, truncate: false }],
  ]
  for (const [name, req, expect] of cases) {
    let body = applyParamMap(req as EmbeddingRequest, op.params, tg, op.policy)
    body = op.finish!(body, req as EmbeddingRequest, tg, false)
    t.same(body, expect, name)
    assertOllamaSchema(t, 'EmbedRequest', body, `${name}: valid EmbedRequest`)
  }
  t.same(op.finish!(applyParamMap({ model: 'e', input: 'x' }, op.params, { ...tg, params: { keep_alive: '5m' } }, op.policy), { model: 'e', input: 'x' }, { ...tg, params: { keep_alive: '5m' } }, false),
    { model: 'embeddinggemma', input: 'x', keep_alive: '5m' }, 'deployment keep_alive')
  t.throws(() => applyParamMap({ model: 'e', input: [[1, 2]] }, op.params, tg, op.policy), { code: 'GW_ERR_VALIDATION', param: 'input' }, 'token ids')
  t.throws(() => applyParamMap({ model: 'e', input: 'x', user: 'u' }, op.params, tg, op.policy), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'user' })

  const res = op.response(example, meta({ model: 'embeddinggemma' }))
  t.same(res, { object: 'list', data: [{ object: 'embedding', index: 0, embedding: example.embeddings[0] }], model: 'embeddinggemma', usage: { prompt_tokens: 8, total_tokens: 8 } })
  assertSchema(t, 'CreateEmbeddingResponse', res)
  t.throws(() => op.response({ error: 'x' }, meta()), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
})
