/**
 * The Mistral adapter, table-driven: request mapping (every body checked against Mistral's openapi.json
 * ChatCompletionRequest / EmbeddingRequest, whose objects are closed, so a stray field fails), response mapping and
 * stream translation from spec-checked replies (every output checked against OpenAI's spec), error mapping.
 */
import t from 'tap'
import { GatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatRequest, EmbeddingRequest, Usage } from '../../core/openai/types.js'
import { buildConfig } from '../../core/config/load.js'
import { createModelTable } from '../../core/models.js'
import { SseParser } from '../../core/sse.js'
import { applyParamMap } from '../../providers/param-map.js'
import { createProviderRegistry } from '../../providers/registry.js'
import { mistral } from '../../providers/mistral/index.js'
import type { ResponseMeta, Target } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'
import {
  assertMistralSchema, chatResponse, embeddingsExample, magistralChunks, magistralResponse, mistralSchemaErrors, sse, textChunks,
  toolChunks, toolResponse,
} from './mistral-fixtures.js'

function target(over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'small', provider: 'mistral', model: 'mistral-small-latest', timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, apiKey: 'mk-test', ...over,
  }
}
const meta = (over: Partial<Target> = {}): ResponseMeta => ({ target: target(over), requestId: 'req-1', created: 1_700_000_000 })

function build(req: Record<string, unknown>, over: Partial<Target> = {}, stream = false): Record<string, unknown> {
  const tg = target(over)
  const op = mistral.chat!
  const body = applyParamMap(req as ChatRequest, op.params, tg, op.policy)
  return op.finish ? op.finish(body, req as ChatRequest, tg, stream) : body
}

const user = (content: unknown) => ({ role: 'user', content })
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }

t.test('the spec validator can fail', async (t) => {
  t.ok(mistralSchemaErrors('ChatCompletionRequest', { model: 'm', messages: [{ role: 'user', content: 'x', name: 'bob' }] }).length > 0, 'a user message with name is refused (closed objects)')
  t.ok(mistralSchemaErrors('ChatCompletionRequest', { model: 'm', messages: [], stream_options: { include_usage: true } }).length > 0, 'stream_options is not Mistral\'s')
  t.ok(mistralSchemaErrors('EmbeddingRequest', { model: 'm', input: 'x', dimensions: 3 }).length > 0, 'dimensions is not Mistral\'s name')
})

t.test('request mapping', async (t) => {
  const cases: Array<{ name: string; req: Record<string, unknown>; over?: Partial<Target>; stream?: boolean; expect: Record<string, unknown> }> = [
    {
      name: 'plain chat: no stream field, model from the deployment',
      req: { messages: [{ role: 'system', content: 'Be brief.' }, user('Why is the sky blue?')] },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Why is the sky blue?' }] },
    },
    {
      name: 'stream: true, and no stream_options (Mistral has none; its last chunk carries usage)',
      req: { messages: [user('hi')], stream: true, stream_options: { include_usage: true } },
      stream: true,
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }], stream: true },
    },
    {
      name: 'seed is random_seed, max_completion_tokens is max_tokens (and wins), the rest as OpenAI',
      req: { messages: [user('hi')], seed: 7, max_tokens: 10, max_completion_tokens: 20, temperature: 0.3, top_p: 0.9, stop: ['\n'], presence_penalty: 0.5, frequency_penalty: 0.1, n: 2, parallel_tool_calls: false },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }], random_seed: 7, max_tokens: 20, temperature: 0.3, top_p: 0.9, stop: ['\n'], presence_penalty: 0.5, frequency_penalty: 0.1, n: 2, parallel_tool_calls: false },
    },
    {
      name: "tools (a schema's $schema left out), tool_choice 'required' is 'any'",
      req: { messages: [user('weather?')], tools: [{ type: 'function', function: { ...weather.function, strict: true, parameters: { $schema: 'http://json-schema.org/draft-07/schema#', ...weather.function.parameters } } }], tool_choice: 'required' },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { ...weather.function, strict: true } }], tool_choice: 'any' },
    },
    {
      name: 'a named tool_choice; a tool without parameters gets an empty schema',
      req: { messages: [user('now?')], tools: [{ type: 'function', function: { name: 'now' } }], tool_choice: { type: 'function', function: { name: 'now' } } },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'now?' }], tools: [{ type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } }], tool_choice: { type: 'function', function: { name: 'now' } } },
    },
    {
      name: 'response_format json_schema, rebuilt to the fields Mistral has',
      req: { messages: [user('hi')], response_format: { type: 'json_schema', json_schema: { name: 'book', strict: true, schema: { type: 'object' }, extra: 1 } } },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_schema', json_schema: { name: 'book', schema: { type: 'object' }, strict: true } } },
    },
    {
      name: 'messages rebuilt per role: developer, names, refusal, tool round trip, parts',
      req: {
        messages: [
          { role: 'developer', content: 'Use metric.' },
          { role: 'user', name: 'alice', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] },
          { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }, { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' } }] },
          { role: 'assistant', name: 'bot', content: null, refusal: null, reasoning_content: 'hmm', tool_calls: [{ id: 'D681PevKs', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'D681PevKs', name: 'get_weather', content: '11C' },
        ],
      },
      expect: {
        model: 'mistral-small-latest',
        messages: [
          { role: 'system', content: 'Use metric.' },
          { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] },
          { role: 'user', content: [{ type: 'input_audio', input_audio: 'UklGRg==' }, { type: 'document_url', document_url: 'data:application/pdf;base64,JVBE', document_name: 'a.pdf' }] },
          { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' }, id: 'D681PevKs' }] },
          { role: 'tool', content: '11C', tool_call_id: 'D681PevKs', name: 'get_weather' },
        ],
      },
    },
    {
      name: 'reasoning_effort on Magistral is prompt_mode "reasoning"',
      req: { messages: [user('6*7?')], reasoning_effort: 'high' },
      over: { model: 'magistral-medium-latest' },
      expect: { model: 'magistral-medium-latest', messages: [{ role: 'user', content: '6*7?' }], prompt_mode: 'reasoning' },
    },
    {
      name: 'null means "not set": nothing is sent for it',
      req: { messages: [user('hi')], temperature: null, top_p: null, stop: null, seed: null, max_tokens: null, tools: null, tool_choice: null, response_format: null, presence_penalty: null, logprobs: null },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }] },
    },
    {
      name: 'deployment settings (litellm_params) fill what the request left out',
      req: { messages: [user('hi')], random_seed: 1 },
      over: { params: { safe_prompt: true, random_seed: 9 } },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }], random_seed: 1, safe_prompt: true },
    },
    {
      name: "Mistral's own fields pass; gateway fields never do",
      req: { messages: [user('hi')], safe_prompt: true, random_seed: 3, metadata: { a: 1 }, num_retries: 2 },
      expect: { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }], safe_prompt: true, random_seed: 3 },
    },
  ]
  for (const c of cases) {
    const body = build({ model: 'small', ...c.req }, c.over, c.stream)
    t.same(body, c.expect, c.name)
    assertMistralSchema(t, 'ChatCompletionRequest', body, `${c.name}: valid ChatCompletionRequest`)
  }
})

t.test('params Mistral lacks: 400 naming them, or dropped with drop_params', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['logit_bias', { logit_bias: { 1: 1 } }],
    ['logprobs', { logprobs: true }],
    ['top_logprobs', { top_logprobs: 2 }],
    ['user', { user: 'u-1' }],
    ['service_tier', { service_tier: 'flex' }],
    ['web_search_options', { web_search_options: {} }],
    ['reasoning_effort', { reasoning_effort: 'low' }],
  ]
  for (const [param, extra] of cases) {
    const req = { model: 'small', messages: [user('hi')], ...extra }
    t.throws(() => build(req), { code: 'GW_ERR_UNSUPPORTED_PARAM', status: 400, param, message: new RegExp(`${param}.*drop_params`) }, `${param}: 400`)
    const body = build(req, { dropParams: true })
    t.notOk(param in body, `${param}: dropped with drop_params`)
    assertMistralSchema(t, 'ChatCompletionRequest', body, `${param}: dropped body is valid`)
  }
  t.throws(() => build({ model: 'small', messages: [user('hi')], temperature: 1.8 }), { code: 'GW_ERR_PARAM_RANGE', param: 'temperature' }, "temperature beyond Mistral's 1.5")
  t.throws(() => build({ model: 'small', messages: [user('hi')], tool_choice: 'sometimes' }), { code: 'GW_ERR_VALIDATION', param: 'tool_choice' })
})

t.test('URLs, headers and credentials', async (t) => {
  t.equal(mistral.request('chat', target(), false).url, 'https://api.mistral.ai/v1/chat/completions')
  t.equal(mistral.request('embeddings', target(), false).url, 'https://api.mistral.ai/v1/embeddings')
  t.equal(mistral.request('chat', target({ apiBase: 'http://127.0.0.1:9' }), false).url, 'http://127.0.0.1:9/v1/chat/completions', 'LiteLLM adds /v1 to a base without it')
  t.equal(mistral.request('chat', target({ apiBase: 'http://127.0.0.1:9/v1/' }), false).url, 'http://127.0.0.1:9/v1/chat/completions')
  const h = mistral.request('chat', target({ extraHeaders: { 'X-Trace': 'abc' } }), true).headers
  t.equal(h.authorization, 'Bearer mk-test')
  t.equal(h['x-trace'], 'abc')
  t.same([...mistral.operations].sort(), ['chat', 'embeddings'])
  t.equal(mistral.chat!.passthrough, false, 'streams are translated, not passed through')

  const registry = createProviderRegistry([mistral])
  const config = buildConfig({ model_list: [{ model_name: 'small', litellm_params: { model: 'mistral/mistral-small-latest' } }] }, { env: {} })
  const m = createModelTable(config, registry, { MISTRAL_API_KEY: 'env-key', MISTRAL_API_BASE: 'http://10.0.0.5:8080' }).resolve('small')[0]!
  t.match(m, { provider: 'mistral', model: 'mistral-small-latest', apiKey: 'env-key', apiBase: 'http://10.0.0.5:8080' })
  t.equal(mistral.request('chat', m, false).url, 'http://10.0.0.5:8080/v1/chat/completions')
  const azure = createModelTable(config, registry, { MISTRAL_API_KEY: 'plain', MISTRAL_AZURE_API_KEY: 'azure-key' }).resolve('small')[0]!
  t.equal(azure.apiKey, 'azure-key', "LiteLLM's order: MISTRAL_AZURE_API_KEY first")
})

t.test('the authored replies follow Mistral\'s spec', async (t) => {
  for (const [name, r] of [['chat', chatResponse], ['tool', toolResponse], ['magistral', magistralResponse]] as const) {
    for (const c of r.choices) assertMistralSchema(t, 'ChatCompletionChoice', c, `${name}: valid ChatCompletionChoice`)
    assertMistralSchema(t, 'UsageInfo', r.usage, `${name}: valid UsageInfo`)
  }
  for (const c of [...textChunks, ...toolChunks, ...magistralChunks]) assertMistralSchema(t, 'CompletionChunk', c)
  assertMistralSchema(t, 'EmbeddingResponse', { id: 'e', ...embeddingsExample }, 'the spec example is a valid EmbeddingResponse')
})

t.test('response mapping', async (t) => {
  const m = meta()
  const plain = mistral.chat!.response(chatResponse, m)
  t.same(plain, {
    id: chatResponse.id, object: 'chat.completion', created: 1702256327, model: 'mistral-small-latest',
    choices: [{ index: 0, message: { role: 'assistant', content: 'The sky looks blue because of Rayleigh scattering.', refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 16, completion_tokens: 34, total_tokens: 50 },
  })
  assertSchema(t, 'CreateChatCompletionResponse', plain)

  const tools = mistral.chat!.response(toolResponse, m)
  t.same(tools.choices[0]!.message, { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'D681PevKs', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] })
  t.equal(tools.choices[0]!.finish_reason, 'tool_calls')
  assertSchema(t, 'CreateChatCompletionResponse', tools)

  const thinking = mistral.chat!.response(magistralResponse, meta({ model: 'magistral-medium-latest' }))
  t.match(thinking.choices[0]!.message, { content: '42', reasoning_content: 'Six times seven is 42.' }, 'thinking chunks -> reasoning_content, text chunks -> content')
  t.equal(thinking.model, 'magistral-medium-latest')
  assertSchema(t, 'CreateChatCompletionResponse', thinking)

  const cut = mistral.chat!.response({ ...chatResponse, choices: [{ ...chatResponse.choices[0], finish_reason: 'model_length' }] }, m)
  t.equal(cut.choices[0]!.finish_reason, 'length', 'model_length is a cut-off')
  const objArgs = mistral.chat!.response({ ...toolResponse, choices: [{ ...toolResponse.choices[0], message: { role: 'assistant', content: null, tool_calls: [{ id: 'x1', function: { name: 'f', arguments: { a: 1 } } }] } }] }, m)
  t.equal(objArgs.choices[0]!.message.tool_calls![0]!.function.arguments, '{"a":1}', 'object arguments become a JSON string')
  t.throws(() => mistral.chat!.response({ ...chatResponse, choices: [{ ...chatResponse.choices[0], finish_reason: 'error' }] }, m), { code: 'GW_ERR_UPSTREAM_SERVER', status: 500 }, 'finish_reason error')
  t.throws(() => mistral.chat!.response({ id: 'x' }, m), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
})

/** Run an SSE body through the core's parser and a fresh translator, event by event. */
function translate(body: string, over: Partial<Target> = {}): { perEvent: ChatChunk[][]; end: { chunks: ChatChunk[]; usage: Usage | null } } {
  const tr = mistral.chat!.stream!({ model: 'small', messages: [] }, meta(over))
  const p = new SseParser()
  const perEvent = [...p.push(body), ...p.end()].map((e) => tr.event(e))
  return { perEvent, end: tr.end() }
}

t.test('stream translation, chunk by chunk', async (t) => {
  const text = translate(sse(textChunks))
  t.same(text.perEvent.map((cs) => cs.map((c) => [c.choices[0]!.delta, c.choices[0]!.finish_reason])), [
    [[{ role: 'assistant', content: '' }, null]],
    [[{ content: 'Hello' }, null]],
    [[{ content: ' world' }, 'stop']],
    [],
  ], 'role, content deltas, finish; [DONE] adds nothing')
  for (const c of text.perEvent.flat()) {
    t.notOk('usage' in c, 'usage is taken off the content chunk')
    t.match(c, { id: 'a1b2c3', object: 'chat.completion.chunk', model: 'mistral-small-latest' })
    assertSchema(t, 'CreateChatCompletionStreamResponse', c)
  }
  t.same(text.end, { chunks: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } }, 'usage from end(), for the core to send as its own chunk')

  const tools = translate(sse(toolChunks))
  const tc = tools.perEvent[1]![0]!.choices[0]!
  t.same(tc.delta.tool_calls, [{ index: 0, type: 'function', function: { arguments: '{"city": "Paris"}', name: 'get_weather' }, id: 'D681PevKs' }])
  t.equal(tc.finish_reason, 'tool_calls')
  for (const c of tools.perEvent.flat()) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  const think = translate(sse(magistralChunks), { model: 'magistral-medium-latest' })
  t.same(think.perEvent.flat().map((c) => c.choices[0]!.delta), [
    { role: 'assistant', reasoning_content: 'Six times ' },
    { reasoning_content: 'seven.' },
    { content: '42' },
  ], 'thinking chunks stream as reasoning_content; no content list reaches the client')
  for (const c of think.perEvent.flat()) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  // Two calls in separate chunks, both numbered 0 by the upstream: the client must see 0 and 1.
  const call = (id: string, city: string) => ({ id: 'z', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { tool_calls: [{ id, index: 0, function: { name: 'get_weather', arguments: { city } } }] }, finish_reason: null }] })
  const two = translate(sse([call('aaaaaaaaa', 'Paris'), call('bbbbbbbbb', 'Rome'), { ...toolChunks[1], choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }]))
  t.same(two.perEvent.slice(0, 2).map((cs) => [cs[0]!.choices[0]!.delta.tool_calls![0]!.index, cs[0]!.choices[0]!.delta.tool_calls![0]!.function!.arguments]),
    [[0, '{"city":"Paris"}'], [1, '{"city":"Rome"}']])

  const length = translate(sse([textChunks[0], { ...textChunks[2], choices: [{ index: 0, delta: { content: '!' }, finish_reason: 'model_length' }] }]))
  t.equal(length.perEvent[1]![0]!.choices[0]!.finish_reason, 'length')
})

t.test('stream failures', async (t) => {
  const tr = () => mistral.chat!.stream!({ model: 'small', messages: [] }, meta())
  const s = tr()
  s.event({ event: undefined, data: JSON.stringify(textChunks[1]) })
  t.throws(() => s.event({ event: undefined, data: JSON.stringify({ object: 'error', message: 'Service unavailable', type: 'internal_server_error', param: null, code: '3000' }) }),
    { status: 500, code: 'GW_ERR_UPSTREAM_SERVER', message: 'Service unavailable' }, "Mistral's error event mid-stream")
  t.throws(() => tr().event({ event: undefined, data: JSON.stringify({ error: { message: 'boom' } }) }), { status: 500, message: 'boom' }, 'an OpenAI-shaped error event')
  t.throws(() => tr().event({ event: undefined, data: '{oops' }), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
  const early = tr()
  early.event({ event: undefined, data: JSON.stringify(textChunks[1]) })
  t.throws(() => early.end(), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' }, 'a stream cut before its finish')
})

t.test('error mapping', async (t) => {
  const detail = { detail: [{ type: 'extra_forbidden', loc: ['body', 'messages', 0, 'name'], msg: 'Extra inputs are not permitted', input: 'SECRET-PROMPT' }] }
  const cases: Array<[string, number, unknown, Record<string, string>, Record<string, unknown>]> = [
    ['422 validation detail', 422, detail, {}, { status: 422, code: 'GW_ERR_UPSTREAM_UNPROCESSABLE', message: 'body.messages.0.name: Extra inputs are not permitted' }],
    ['context window', 400, { object: 'error', message: 'Prompt contains 40005 tokens and 0 draft tokens, too large for model with 32768 maximum context length', type: 'invalid_request_message_error', param: null, code: null }, {},
      { status: 400, code: 'GW_ERR_CONTEXT_WINDOW', openaiCode: 'context_length_exceeded' }],
    ['message holding a detail list', 400, { object: 'error', message: { detail: [{ loc: ['body', 'tool_choice'], msg: 'Input should be auto' }] }, type: 'invalid_request_error' }, {}, { status: 400, message: 'body.tool_choice: Input should be auto' }],
    ['401 from the edge', 401, { message: 'Unauthorized', request_id: 'r-1' }, {}, { status: 401, code: 'GW_ERR_UPSTREAM_AUTH', message: 'Unauthorized' }],
    ['429 keeps retry-after', 429, { message: 'Requests rate limit exceeded' }, { 'retry-after': '3' }, { status: 429, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', retryAfter: 3 }],
    ['unknown model', 404, { object: 'error', message: 'Invalid model: mistral-huge', type: 'invalid_model', param: null, code: '1500' }, {}, { status: 404, message: 'Invalid model: mistral-huge', openaiCode: '1500' }],
    ['server error', 500, { object: 'error', message: 'Internal error', type: 'internal_server_error' }, {}, { status: 500, code: 'GW_ERR_UPSTREAM_SERVER' }],
    ['unavailable', 503, { object: 'error', message: 'Service unavailable' }, {}, { status: 503, code: 'GW_ERR_UPSTREAM_UNAVAILABLE' }],
    ['OpenAI-shaped from a proxy', 400, { error: { message: 'bad', code: 'content_policy_violation' } }, {}, { status: 400, code: 'GW_ERR_CONTENT_POLICY' }],
    ['an HTML page is never shown', 502, '<html>Bad Gateway</html>', {}, { status: 502, message: 'mistral returned HTTP 502 Bad Gateway (non-JSON body)' }],
    ['an empty JSON object', 500, {}, {}, { status: 500, message: 'mistral returned HTTP 500 Internal Server Error' }],
  ]
  for (const [name, status, body, headers, expect] of cases) {
    const e = mistral.error(status, body, headers)
    t.ok(e instanceof GatewayError, name)
    t.match(e, { provider: 'mistral', upstreamStatus: status, ...expect }, name)
    t.notMatch(e.message, /SECRET-PROMPT/, `${name}: the request is not echoed`)
  }
})

t.test('embeddings', async (t) => {
  const op = mistral.embeddings!
  const tg = target({ model: 'codestral-embed' })
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['one input', { model: 'e', input: 'Embed this sentence.' }, { model: 'codestral-embed', input: 'Embed this sentence.' }],
    ['dimensions is output_dimension; encoding_format is the core\'s', { model: 'e', input: ['a', 'b'], dimensions: 256, encoding_format: 'base64', output_dtype: 'float' },
      { model: 'codestral-embed', input: ['a', 'b'], output_dimension: 256, output_dtype: 'float' }],
  ]
  for (const [name, req, expect] of cases) {
    const body = applyParamMap(req as EmbeddingRequest, op.params, tg, op.policy)
    t.same(body, expect, name)
    assertMistralSchema(t, 'EmbeddingRequest', body, `${name}: valid EmbeddingRequest`)
  }
  t.throws(() => applyParamMap({ model: 'e', input: 'x', user: 'u' }, op.params, tg, op.policy), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'user' })
  t.throws(() => applyParamMap({ model: 'e', input: [[1, 2]] }, op.params, tg, op.policy), { code: 'GW_ERR_VALIDATION', param: 'input' })

  const res = op.response(embeddingsExample, meta({ model: 'mistral-embed' }))
  t.same(res, {
    object: 'list',
    data: embeddingsExample.data.map((d: any) => ({ object: 'embedding', index: d.index, embedding: d.embedding })),
    model: 'mistral-embed',
    usage: { prompt_tokens: 15, total_tokens: 15 },
  })
  assertSchema(t, 'CreateEmbeddingResponse', res)
})
