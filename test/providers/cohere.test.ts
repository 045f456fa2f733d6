/**
 * The Cohere adapter's translations, table-driven over the recorded v2 examples in ../shared/data/cohere/: request
 * mapping (every body checked against a JSON Schema transcribed from Cohere's reference, cohere-schema.ts),
 * response mapping (checked against OpenAI's spec), error mapping, embeddings, URLs and credentials. The stream
 * translation has its own file, cohere-stream.test.ts.
 */
import t, { type Test } from 'tap'
import { applyParamMap } from '../../providers/param-map.js'
import { cohere, cohere_chat, cohereBase } from '../../providers/cohere/index.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { createModelTable } from '../../core/models.js'
import { buildConfig } from '../../core/config/load.js'
import type { ChatRequest, EmbeddingRequest } from '../../core/openai/types.js'
import type { Target } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'
import { chatRequestErrors, describeErrors, embedRequestErrors } from './cohere-schema.js'
import { EMBED_REPLY, fixture, meta, target } from './cohere-fixtures.js'

function chatBody(req: Record<string, unknown>, tg: Target = target(), stream = false): Record<string, any> {
  const op = cohere.chat!
  const body = applyParamMap(req as ChatRequest, op.params, tg, op.policy)
  return op.finish!(body, req as ChatRequest, tg, stream)
}

function embedBody(req: Record<string, unknown>, tg: Target = target({ model: 'embed-v4.0' })): Record<string, any> {
  const op = cohere.embeddings!
  return op.finish!(applyParamMap(req as EmbeddingRequest, op.params, tg, op.policy), req as EmbeddingRequest, tg, false)
}

function validChat(tt: Test, body: unknown, what: string): void {
  const errors = chatRequestErrors(body)
  tt.same(errors, [], `${what}: a valid Cohere v2 chat request`, { detail: describeErrors(errors) })
}

t.test('the transcribed request schema accepts every recorded request and rejects OpenAI-only fields', async (t) => {
  for (const name of ['text', 'tools', 'text.stream', 'tools.stream'] as const) validChat(t, fixture(name).request, name)
  const base = fixture('text').request
  for (const extra of [{ top_p: 0.5 }, { n: 1 }, { user: 'u' }, { stop: ['x'] }, { max_completion_tokens: 5 }]) {
    t.not(chatRequestErrors({ ...base, ...extra }).length, 0, `rejects ${Object.keys(extra)[0]}`)
  }
  t.not(chatRequestErrors({ ...base, messages: [{ role: 'user', content: 'hi', name: 'bob' }] }).length, 0, 'rejects a message name')
  t.not(chatRequestErrors({ ...base, temperature: 1.5 }).length, 0, 'rejects temperature out of Cohere range')
})

t.test('recorded requests: the OpenAI form of each translates to the recorded Cohere body', async (t) => {
  for (const name of ['text', 'tools', 'text.stream', 'tools.stream'] as const) {
    const { request } = fixture(name)
    const stream = request.stream === true
    // Cohere v2's request is OpenAI-shaped here; the recorded one names its model, which the deployment supplies.
    const { stream: _s, model, ...openai } = request
    const body = chatBody({ model: 'cohere-alias', ...openai, stream }, target({ model: String(model) }), stream)
    const expected: Record<string, unknown> = { ...request }
    if (!stream) delete expected.stream
    t.same(body, expected, name)
    validChat(t, body, name)
  }
})

t.test('request mapping', async (t) => {
  const cases: Array<{ name: string; req: Record<string, unknown>; expect: Record<string, unknown>; tg?: Partial<Target>; stream?: boolean }> = [
    {
      name: 'roles and content: system, developer, text+image parts, assistant tool calls with tool_plan, tool results',
      req: {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
          { role: 'user', name: 'ann', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }] },
          { role: 'user', content: [{ type: 'image_url', image_url: 'https://example.com/cat.jpg' }] },
          {
            role: 'assistant', content: null,
            tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }],
            provider_specific_fields: { tool_plan: 'I will look up the weather.' },
          },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temp":3}' },
          { role: 'assistant', content: 'It is 3 degrees.' },
          { role: 'user', content: 'Thanks' },
        ],
      },
      expect: {
        model: 'command-a-03-2025',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'system', content: [{ type: 'text', text: 'Use metric units.' }] },
          { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }] },
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } }] },
          {
            role: 'assistant',
            tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }],
            tool_plan: 'I will look up the weather.',
          },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temp":3}' },
          { role: 'assistant', content: 'It is 3 degrees.' },
          { role: 'user', content: 'Thanks' },
        ],
      },
    },
    {
      name: 'reasoning_content goes back as a thinking part; tool_plan also read from the message itself',
      req: {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'Checking.', reasoning_content: 'Need the tool.', tool_plan: 'plan', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: { a: 1 } } }] },
          { role: 'tool', tool_call_id: 'c', content: [{ type: 'text', text: 'ok' }] },
        ],
      },
      expect: {
        model: 'command-a-03-2025',
        messages: [
          { role: 'user', content: 'q' },
          {
            role: 'assistant', content: [{ type: 'thinking', thinking: 'Need the tool.' }, { type: 'text', text: 'Checking.' }],
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }], tool_plan: 'plan',
          },
          { role: 'tool', tool_call_id: 'c', content: [{ type: 'text', text: 'ok' }] },
        ],
      },
    },
    {
      name: 'sampling params: top_p -> p, stop -> stop_sequences, max_completion_tokens wins, penalties, seed, stream',
      req: {
        messages: [{ role: 'user', content: 'hi' }], temperature: 0.4, top_p: 0.9, stop: 'END', max_tokens: 10, max_completion_tokens: 20,
        frequency_penalty: 0.2, presence_penalty: 0.1, seed: 7, stream: true, stream_options: { include_usage: true }, n: 1, parallel_tool_calls: true,
      },
      stream: true,
      expect: {
        model: 'command-a-03-2025', messages: [{ role: 'user', content: 'hi' }], temperature: 0.4, p: 0.9, stop_sequences: ['END'], max_tokens: 20,
        frequency_penalty: 0.2, presence_penalty: 0.1, seed: 7, stream: true,
      },
    },
    {
      name: 'max_tokens alone; stop list; gateway fields never sent; the v2/ route segment is not part of the model id',
      req: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stop: ['a', 'b'], metadata: { x: 1 }, api_key: 'sk-client', mock_testing_fallbacks: false, user_api_key_alias: 'k' },
      tg: { model: 'v2/command-r-plus' },
      expect: { model: 'command-r-plus', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stop_sequences: ['a', 'b'] },
    },
    {
      name: 'tools (parameters defaulted, strict -> strict_tools) and tool_choice required',
      req: {
        messages: [{ role: 'user', content: 'hi' }], tool_choice: 'required',
        tools: [{ type: 'function', function: { name: 'now', strict: true } }, { type: 'function', function: { name: 'add', description: 'Adds', parameters: { type: 'object', properties: { a: { type: 'number' } } } } }],
      },
      expect: {
        model: 'command-a-03-2025', messages: [{ role: 'user', content: 'hi' }], tool_choice: 'REQUIRED', strict_tools: true,
        tools: [{ type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } }, { type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'number' } } }, description: 'Adds' } }],
      },
    },
    {
      name: 'a named tool_choice narrows the tools to that function, with REQUIRED',
      req: {
        messages: [{ role: 'user', content: 'hi' }], tool_choice: { type: 'function', function: { name: 'add' } },
        tools: [{ type: 'function', function: { name: 'now', parameters: {} } }, { type: 'function', function: { name: 'add', parameters: {} } }],
      },
      expect: { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'hi' }], tool_choice: 'REQUIRED', tools: [{ type: 'function', function: { name: 'add', parameters: {} } }] },
    },
    { name: 'tool_choice none / auto', req: { messages: [{ role: 'user', content: 'x' }], tool_choice: 'none' }, expect: { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'x' }], tool_choice: 'NONE' } },
    { name: 'tool_choice auto is the default', req: { messages: [{ role: 'user', content: 'x' }], tool_choice: 'auto' }, expect: { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'x' }] } },
    {
      name: 'response_format json_schema -> json_object with the schema; Cohere params pass; thinking budget_tokens -> token_budget',
      req: {
        messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'r', schema: { type: 'object' }, strict: true } },
        safety_mode: 'STRICT', k: 5, documents: ['doc one'], citation_options: { mode: 'FAST' }, thinking: { type: 'enabled', budget_tokens: 512 },
      },
      expect: {
        model: 'command-a-03-2025', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object', json_schema: { type: 'object' } },
        safety_mode: 'STRICT', k: 5, documents: ['doc one'], citation_options: { mode: 'FAST' }, thinking: { type: 'enabled', token_budget: 512 },
      },
    },
    { name: 'response_format json_object', req: { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }, expect: { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } } },
    {
      name: 'explicit nulls (OpenAI\'s "not set") are left out, n and tool_choice included',
      req: {
        messages: [{ role: 'user', content: 'x' }], temperature: null, top_p: null, max_tokens: null, stop: null, seed: null, n: null,
        tools: null, tool_choice: null, response_format: null, user: null, logprobs: null, frequency_penalty: null,
      },
      expect: { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'x' }] },
    },
    {
      name: 'with drop_params, unsupported params are dropped',
      req: { messages: [{ role: 'user', content: 'x' }], n: 3, logprobs: true, top_logprobs: 2, logit_bias: { 1: 2 }, user: 'u', parallel_tool_calls: false, service_tier: 'auto' },
      tg: { dropParams: true },
      expect: { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'x' }] },
    },
  ]
  for (const c of cases) {
    const body = chatBody({ model: 'alias', ...c.req }, target(c.tg), c.stream ?? false)
    t.same(body, c.expect, c.name)
    validChat(t, body, c.name)
  }
})

t.test('request errors: unsupported params and content, out-of-range values', async (t) => {
  const msgs = [{ role: 'user', content: 'x' }]
  const cases: Array<{ req: Record<string, unknown>; code: string; param: string }> = [
    { req: { messages: msgs, n: 2 }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'n' },
    { req: { messages: msgs, logprobs: true }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'logprobs' },
    { req: { messages: msgs, logit_bias: { 1: 1 } }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'logit_bias' },
    { req: { messages: msgs, user: 'u' }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'user' },
    { req: { messages: msgs, parallel_tool_calls: false }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'parallel_tool_calls' },
    { req: { messages: msgs, modalities: ['audio'] }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'modalities' },
    { req: { messages: msgs, temperature: 1.5 }, code: 'GW_ERR_PARAM_RANGE', param: 'temperature' },
    { req: { messages: msgs, top_p: 1 }, code: 'GW_ERR_PARAM_RANGE', param: 'top_p' },
    { req: { messages: msgs, presence_penalty: -0.5 }, code: 'GW_ERR_PARAM_RANGE', param: 'presence_penalty' },
    { req: { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'input_audio', input_audio: {} }] }] }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'messages[0].content[1]' },
    { req: { messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'u' } }] }] }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'messages[0].content[0]' },
    { req: { messages: [{ role: 'function', name: 'f', content: 'x' }] }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'messages[0].role' },
    { req: { messages: msgs, tools: [{ type: 'function', function: { name: 'a' } }], tool_choice: { type: 'function', function: { name: 'b' } } }, code: 'GW_ERR_VALIDATION', param: 'tool_choice' },
    { req: { messages: msgs, tools: [{ type: 'web_search' }] }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'tools[0]' },
    { req: { messages: msgs, response_format: { type: 'grammar' } }, code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'response_format' },
  ]
  for (const c of cases) {
    t.throws(() => chatBody({ model: 'm', ...c.req }), { code: c.code, status: 400, param: c.param }, `${c.param}: ${c.code}`)
  }
  t.throws(() => chatBody({ model: 'm', messages: msgs, n: 2 }), { message: /cohere does not support n=2.*drop_params/s }, 'the 400 says how to drop it')
})

t.test('response mapping: the recorded replies', async (t) => {
  const text = cohere.chat!.response(fixture('text').response.body, meta())
  t.equal(text.id, 'c14c80c3-18eb-4519-9460-6c92edd8cfb4')
  t.equal(text.model, 'command-a-03-2025', 'model is the deployment\'s')
  t.equal(text.created, 1_700_000_000)
  t.match(text.choices[0]!.message.content, /^LLMs stand for Large Language Models/)
  t.equal(text.choices[0]!.finish_reason, 'stop')
  t.same(text.usage, { prompt_tokens: 71, completion_tokens: 418, total_tokens: 489 }, 'usage from usage.tokens, not billed_units')
  assertSchema(t, 'CreateChatCompletionResponse', text)

  const tools = cohere.chat!.response(fixture('tools').response.body, meta())
  const m = tools.choices[0]!.message
  t.equal(m.content, null, 'a tool-calling turn has null content')
  t.match(m.reasoning_content, /^I will first find the sales summary/, 'thinking part -> reasoning_content')
  t.same(m.tool_calls, [
    { id: 'query_daily_sales_report_hgxxmkby3wta', type: 'function', function: { name: 'query_daily_sales_report', arguments: '{"day": "2023-09-29"}' } },
    { id: 'query_product_catalog_rpg0z5h8yyz2', type: 'function', function: { name: 'query_product_catalog', arguments: '{"category": "Electronics"}' } },
  ])
  t.equal(tools.choices[0]!.finish_reason, 'tool_calls')
  t.same(tools.usage, { prompt_tokens: 1032, completion_tokens: 124, total_tokens: 1156 })
  assertSchema(t, 'CreateChatCompletionResponse', tools)
})

t.test('response mapping: finish reasons, usage fallbacks, tool_plan, failures', async (t) => {
  const reply = (over: Record<string, unknown>) => ({ id: 'r1', message: { role: 'assistant', content: [{ type: 'text', text: 'ok' }] }, finish_reason: 'COMPLETE', ...over })
  const finishes: Array<[string, string]> = [['COMPLETE', 'stop'], ['STOP_SEQUENCE', 'stop'], ['MAX_TOKENS', 'length'], ['TOOL_CALL', 'tool_calls'], ['ERROR_TOXIC', 'content_filter']]
  for (const [cohereReason, openai] of finishes) {
    t.equal(cohere.chat!.response(reply({ finish_reason: cohereReason }), meta()).choices[0]!.finish_reason, openai, `${cohereReason} -> ${openai}`)
  }
  t.throws(() => cohere.chat!.response(reply({ finish_reason: 'ERROR' }), meta()), { code: 'GW_ERR_UPSTREAM_SERVER', status: 500 }, 'ERROR is a failure')
  t.throws(() => cohere.chat!.response(reply({ finish_reason: 'TIMEOUT' }), meta()), { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 408 }, 'TIMEOUT is a timeout')
  t.throws(() => cohere.chat!.response({ id: 'x' }, meta()), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' }, 'no message: a bad response')

  const billed = cohere.chat!.response(reply({ usage: { billed_units: { input_tokens: 5, output_tokens: 9 } } }), meta())
  t.same(billed.usage, { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 }, 'billed_units when tokens are absent')
  const cached = cohere.chat!.response(reply({ usage: { tokens: { input_tokens: 100, output_tokens: 3 }, cached_tokens: 64 } }), meta())
  t.same(cached.usage, { prompt_tokens: 100, completion_tokens: 3, total_tokens: 103, prompt_tokens_details: { cached_tokens: 64 } }, 'cached tokens')
  t.notOk('usage' in cohere.chat!.response(reply({}), meta()), 'no usage reported: none invented')

  const planned = cohere.chat!.response(reply({
    finish_reason: 'COMPLETE',
    message: { role: 'assistant', tool_plan: 'I will call f.', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }], citations: [{ start: 0, end: 1 }] },
  }), meta())
  t.same(planned.choices[0]!.message.provider_specific_fields, { tool_plan: 'I will call f.', citations: [{ start: 0, end: 1 }] }, 'tool_plan and citations kept')
  t.equal(planned.choices[0]!.finish_reason, 'tool_calls', 'a turn with tool calls reports tool_calls')
})

t.test('error mapping: status and Cohere message -> the error table', async (t) => {
  const cases: Array<{ status: number; message: string | null; body?: unknown; code: string; expStatus: number; type: string; headers?: Record<string, string> }> = [
    { status: 400, message: 'too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292. Try using a shorter prompt, or enabling prompt truncating.', code: 'GW_ERR_CONTEXT_WINDOW', expStatus: 400, type: 'invalid_request_error' },
    { status: 400, message: "too many tokens: size limit exceeded by 11326 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'.", code: 'GW_ERR_CONTEXT_WINDOW', expStatus: 400, type: 'invalid_request_error' },
    { status: 400, message: 'too many tokens: max tokens must be less than or equal to 4096, the maximum output for this model - received 8192.', code: 'GW_ERR_UPSTREAM_BAD_REQUEST', expStatus: 400, type: 'invalid_request_error' },
    { status: 400, message: 'invalid request: temperature must be between 0 and 1.0 inclusive.', code: 'GW_ERR_UPSTREAM_BAD_REQUEST', expStatus: 400, type: 'invalid_request_error' },
    { status: 400, message: 'blocked output: please adjust your prompt and try again, as this generation may be a potential violation of our Usage Policy.', code: 'GW_ERR_CONTENT_POLICY', expStatus: 400, type: 'invalid_request_error' },
    { status: 498, message: 'request contains a deny-listed token', code: 'GW_ERR_CONTENT_POLICY', expStatus: 400, type: 'invalid_request_error' },
    { status: 401, message: 'invalid api token', code: 'GW_ERR_UPSTREAM_AUTH', expStatus: 401, type: 'authentication_error' },
    { status: 403, message: 'forbidden', code: 'GW_ERR_UPSTREAM_FORBIDDEN', expStatus: 403, type: 'permission_error' },
    { status: 404, message: "model 'xyz' not found, make sure the correct model ID was used and that you have access to the model.", code: 'GW_ERR_UPSTREAM_NOT_FOUND', expStatus: 404, type: 'invalid_request_error' },
    { status: 422, message: 'invalid json syntax', code: 'GW_ERR_UPSTREAM_UNPROCESSABLE', expStatus: 422, type: 'invalid_request_error' },
    { status: 429, message: 'You are past the per minute request limit, please wait and try again later.', code: 'GW_ERR_UPSTREAM_RATE_LIMIT', expStatus: 429, type: 'rate_limit_error', headers: { 'retry-after': '7' } },
    { status: 499, message: 'request cancelled', code: 'GW_ERR_UPSTREAM_CONNECTION', expStatus: 502, type: 'api_connection_error' },
    { status: 500, message: 'internal server error', code: 'GW_ERR_UPSTREAM_SERVER', expStatus: 500, type: 'api_error' },
    { status: 503, message: 'service unavailable', code: 'GW_ERR_UPSTREAM_UNAVAILABLE', expStatus: 503, type: 'service_unavailable_error' },
    { status: 504, message: 'gateway timeout', code: 'GW_ERR_UPSTREAM_TIMEOUT', expStatus: 408, type: 'timeout_error' },
    { status: 502, message: null, body: '<html><body>Bad gateway from edge-17</body></html>', code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', expStatus: 502, type: 'api_error' },
  ]
  for (const c of cases) {
    const e = cohere.error(c.status, c.body ?? { id: 'e1', message: c.message }, c.headers ?? {})
    t.match(e, { code: c.code, status: c.expStatus, type: c.type, provider: 'cohere', upstreamStatus: c.status }, `${c.status} ${c.code}`)
    if (c.message) t.equal(e.message, c.message, `${c.status}: Cohere's own message kept`)
    else t.equal(e.message, 'cohere returned HTTP 502 Bad Gateway (non-JSON body)', 'a non-JSON body is never shown')
  }
  t.equal(cohere.error(429, { message: 'slow down' }, { 'retry-after': '7' }).retryAfter, 7, '429 keeps retry-after')
  t.ok(cohere.error(499, { message: 'request cancelled' }, {}).retryable, '499: Cohere says try again')
  t.equal(cohere.error(400, { message: 'too many tokens: ...' }, {}).openaiCode, 'context_length_exceeded')
  t.equal(cohere_chat.error(401, { message: 'invalid api token' }, {}).provider, 'cohere_chat')
})

t.test('embeddings: request and response', async (t) => {
  const cases: Array<{ name: string; req: Record<string, unknown>; expect: Record<string, unknown> }> = [
    { name: 'one string, defaults', req: { input: 'hello' }, expect: { model: 'embed-v4.0', texts: ['hello'], input_type: 'search_document', embedding_types: ['float'] } },
    {
      name: 'a list, dimensions, base64 asked (floats fetched, the core encodes), input_type given',
      req: { input: ['hello', 'goodbye'], dimensions: 256, encoding_format: 'base64', input_type: 'search_query' },
      expect: { model: 'embed-v4.0', texts: ['hello', 'goodbye'], output_dimension: 256, input_type: 'search_query', embedding_types: ['float'] },
    },
    { name: 'image data URLs go as images', req: { input: ['data:image/png;base64,AAAA'] }, expect: { model: 'embed-v4.0', images: ['data:image/png;base64,AAAA'], input_type: 'image', embedding_types: ['float'] } },
    { name: 'nulls left out', req: { input: 'x', dimensions: null, input_type: null, encoding_format: null }, expect: { model: 'embed-v4.0', texts: ['x'], input_type: 'search_document', embedding_types: ['float'] } },
    { name: 'one image data URL', req: { input: 'data:image/jpeg;base64,/9j/' }, expect: { model: 'embed-v4.0', images: ['data:image/jpeg;base64,/9j/'], input_type: 'image', embedding_types: ['float'] } },
  ]
  for (const c of cases) {
    const body = embedBody({ model: 'alias', ...c.req })
    t.same(body, c.expect, c.name)
    t.same(embedRequestErrors(body), [], `${c.name}: a valid Cohere v2 embed request`)
  }
  t.throws(() => embedBody({ model: 'a', input: [[1, 2, 3]] }), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'input' }, 'token arrays')
  t.throws(() => embedBody({ model: 'a', input: 'x', user: 'u' }), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'user' })

  const out = cohere.embeddings!.response(EMBED_REPLY, meta(target({ model: 'embed-v4.0' })))
  t.same(out, {
    object: 'list', model: 'embed-v4.0', usage: { prompt_tokens: 2, total_tokens: 2 },
    data: [{ object: 'embedding', index: 0, embedding: EMBED_REPLY.embeddings.float[0] }, { object: 'embedding', index: 1, embedding: EMBED_REPLY.embeddings.float[1] }],
  })
  assertSchema(t, 'CreateEmbeddingResponse', out)
  const tokens = cohere.embeddings!.response({ embeddings: { float: [[1]] }, meta: { tokens: { input_tokens: 4 } } }, meta())
  t.same(tokens.usage, { prompt_tokens: 4, total_tokens: 4 }, 'meta.tokens when nothing is billed')
  t.same(cohere.embeddings!.response({ embeddings: [[0.5]], response_type: 'embeddings_floats' }, meta()).data[0]!.embedding, [0.5], 'a float-list reply')
  t.throws(() => cohere.embeddings!.response({ embeddings: { int8: [[1]] } }, meta()), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
})

t.test('URLs, headers, and credentials from LiteLLM\'s environment variables', async (t) => {
  t.equal(cohere.request('chat', target({ apiBase: undefined }), false).url, 'https://api.cohere.com/v2/chat', 'default base')
  t.equal(cohere.request('embeddings', target({ apiBase: undefined }), false).url, 'https://api.cohere.com/v2/embed')
  for (const base of ['http://127.0.0.1:9', 'http://127.0.0.1:9/', 'http://127.0.0.1:9/v1/chat', 'http://127.0.0.1:9/v2/chat/', 'http://127.0.0.1:9/v2', 'http://127.0.0.1:9/v2/embed']) {
    t.equal(cohereBase(base), 'http://127.0.0.1:9', `api_base ${base}`)
  }
  t.equal(cohereBase('https://proxy.example/cohere'), 'https://proxy.example/cohere', 'a path prefix is kept')
  const { headers } = cohere.request('chat', target({ extraHeaders: { 'X-Client-Name': 'sy' } }), true)
  t.same(headers, { authorization: 'Bearer co-test-key', 'x-client-name': 'sy' })
  t.notOk('authorization' in cohere.request('chat', target({ apiKey: undefined }), false).headers, 'no key, no header')

  const registry = createProviderRegistry([...builtinProviders(), cohere, cohere_chat])
  t.same(registry.parseModel('cohere/command-r-plus'), { provider: 'cohere', model: 'command-r-plus' })
  t.same(registry.parseModel('cohere_chat/command-r'), { provider: 'cohere_chat', model: 'command-r' })
  const config = buildConfig({
    model_list: [
      { model_name: 'a', litellm_params: { model: 'cohere/command-r' } },
      { model_name: 'b', litellm_params: { model: 'cohere_chat/command-r', api_key: 'from-config' } },
    ],
  }, { env: {} })
  const models = createModelTable(config, registry, { COHERE_API_KEY: 'co-env', COHERE_API_BASE: 'http://127.0.0.1:7/v2/chat' })
  t.equal(models.resolve('a')[0]!.apiKey, 'co-env')
  t.equal(models.resolve('a')[0]!.apiBase, 'http://127.0.0.1:7/v2/chat')
  t.equal(cohere.request('chat', models.resolve('a')[0]!, false).url, 'http://127.0.0.1:7/v2/chat')
  t.equal(models.resolve('b')[0]!.apiKey, 'from-config', 'api_key in the config wins')
  t.equal(createModelTable(config, registry, { CO_API_KEY: 'co-sdk-name' }).resolve('a')[0]!.apiKey, 'co-sdk-name', 'CO_API_KEY, the Cohere SDK\'s name')
  t.same([...cohere.operations].sort(), ['chat', 'embeddings'])
})
