/**
 * The Anthropic adapter, table by table, over the recorded traffic and spec in ../shared/data/anthropic:
 * request mapping (every body built is validated against the Messages API's CreateMessageParams schema), response
 * mapping (every result validated against OpenAI's CreateChatCompletionResponse), stream translation chunk by chunk
 * (each chunk validated against CreateChatCompletionStreamResponse), error mapping, URL / headers / credentials.
 * Bodies are built the way dispatch builds them: applyParamMap, then finish().
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { anthropic, anthropicChat, anthropicError } from '../../providers/anthropic/index.js'
import { applyParamMap } from '../../providers/param-map.js'
import { createProviderRegistry, builtinProviders } from '../../providers/registry.js'
import { createModelTable } from '../../core/models.js'
import { buildConfig } from '../../core/config/load.js'
import { GatewayError } from '../../core/errors.js'
import { SseParser } from '../../core/sse.js'
import type { ChatChunk, ChatRequest } from '../../core/openai/types.js'
import type { ResponseMeta, Target } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'

const data = (f: string) => fileURLToPath(new URL(`../../../shared/data/anthropic/${f}`, import.meta.url))
const spec = JSON.parse(readFileSync(data('openapi.yaml'), 'utf8')) as { components: unknown }
const recorded = JSON.parse(readFileSync(data('messages.tool_use.recorded.json'), 'utf8')) as {
  interactions: Array<{ body: any; response: any }>
}

// The Anthropic spec, registered once (README "Validation": ajv 2020, strict off, formats off).
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
ajv.addSchema({ $id: 'https://switchyard.test/anthropic.json', components: spec.components })
const createMessage = ajv.getSchema('https://switchyard.test/anthropic.json#/components/schemas/CreateMessageParams') as ValidateFunction

function target(over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'claude', provider: 'anthropic', model: 'claude-opus-4-8', timeoutMs: 1000, streamTimeoutMs: 1000,
    weight: 1, dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, apiKey: 'sk-ant-test', ...over,
  }
}
const meta = (over: Partial<Target> = {}): ResponseMeta => ({ target: target(over), requestId: 'req-1', created: 1_700_000_000 })

function build(req: Record<string, unknown>, over: Partial<Target> = {}, stream = false): Record<string, any> {
  const tg = target(over)
  const r = { model: 'claude', ...req } as ChatRequest
  const body = applyParamMap(r, anthropicChat.params, tg, anthropicChat.policy)
  return anthropicChat.finish!(body, r, tg, stream)
}

const user = (content: unknown) => ({ role: 'user', content })
const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } }

t.test('request mapping: bodies match expectations and the Messages API schema', async (t) => {
  const cases: Array<{ name: string; req: Record<string, unknown>; over?: Partial<Target>; stream?: boolean; want: Record<string, unknown> }> = [
    {
      name: 'system and user strings, the required max_tokens default',
      req: { messages: [{ role: 'system', content: 'Be brief.' }, user('Hi')] },
      want: { model: 'claude-opus-4-8', system: [{ type: 'text', text: 'Be brief.' }], messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }], max_tokens: 4096 },
    },
    {
      name: 'several system and developer messages, parts, cache_control kept',
      req: { messages: [
        { role: 'system', content: [{ type: 'text', text: 'A', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'B' }] },
        user('Hi'),
        { role: 'developer', content: 'C' },
      ] },
      want: { system: [{ type: 'text', text: 'A', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'B' }, { type: 'text', text: 'C' }] },
    },
    {
      name: 'multi-part user content: text, a data-URL image, an http image',
      req: { messages: [user([
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        { type: 'image_url', image_url: 'https://example.com/cat.jpg' },
      ])] },
      want: { messages: [{ role: 'user', content: [
        { type: 'text', text: 'What is this?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
      ] }] },
    },
    {
      name: 'consecutive same-role messages merge; an empty assistant turn does not split users',
      req: { messages: [user('a'), user('b'), { role: 'assistant', content: 'c' }, { role: 'assistant', content: 'd' }, user('e'), { role: 'assistant', content: null }, user('f')] },
      want: { messages: [
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'c' }, { type: 'text', text: 'd' }] },
        { role: 'user', content: [{ type: 'text', text: 'e' }, { type: 'text', text: 'f' }] },
      ] },
    },
    {
      name: 'a final assistant prefill loses trailing whitespace; thinking_blocks lead the assistant turn',
      req: { messages: [user('Hi'), { role: 'assistant', content: 'The answer is ', thinking_blocks: [{ type: 'thinking', thinking: 'hmm', signature: 'sig' }] }] },
      want: { messages: [user([{ type: 'text', text: 'Hi' }]), { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 'sig' }, { type: 'text', text: 'The answer is' }] }] },
    },
    {
      name: 'tools, tool_choice auto, stop string, max_completion_tokens, sampling, user',
      req: { messages: [user('Weather?')], tools: [weatherTool], tool_choice: 'auto', stop: 'END', max_completion_tokens: 300, temperature: 0.2, top_p: 0.9, top_k: 5, user: 'user-42' },
      want: {
        tools: [{ name: 'get_weather', description: 'Weather', input_schema: weatherTool.function.parameters }],
        tool_choice: { type: 'auto' }, stop_sequences: ['END'], max_tokens: 300, temperature: 0.2, top_p: 0.9, top_k: 5,
        metadata: { user_id: 'user-42' },
      },
    },
    { name: 'tool_choice required -> any, stop list', req: { messages: [user('x')], tools: [weatherTool], tool_choice: 'required', stop: ['a', 'b'] }, want: { tool_choice: { type: 'any' }, stop_sequences: ['a', 'b'] } },
    { name: 'tool_choice none', req: { messages: [user('x')], tools: [weatherTool], tool_choice: 'none' }, want: { tool_choice: { type: 'none' } } },
    {
      name: 'named tool_choice with parallel_tool_calls false (given first)',
      req: { messages: [user('x')], parallel_tool_calls: false, tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } } },
      want: { tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true } },
    },
    { name: 'parallel_tool_calls false alone -> auto with the flag', req: { messages: [user('x')], tools: [weatherTool], parallel_tool_calls: false }, want: { tool_choice: { type: 'auto', disable_parallel_tool_use: true } } },
    { name: 'a tool without parameters gets an empty object schema', req: { messages: [user('x')], tools: [{ type: 'function', function: { name: 'now' } }] }, want: { tools: [{ name: 'now', input_schema: { type: 'object', properties: {} } }] } },
    {
      name: 'response_format json_schema -> the forced json_tool_call tool',
      req: { messages: [user('x')], response_format: { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', properties: { n: { type: 'integer' } } } } } },
      want: { tools: [{ name: 'json_tool_call', input_schema: { type: 'object', properties: { n: { type: 'integer' } } } }], tool_choice: { type: 'tool', name: 'json_tool_call' } },
    },
    { name: 'response_format text is a no-op', req: { messages: [user('x')], response_format: { type: 'text' } }, want: {} },
    {
      name: 'reasoning_effort low -> thinking budget 1024, max_tokens budget + 4096; json mode not forced with thinking',
      req: { messages: [user('x')], reasoning_effort: 'low', response_format: { type: 'json_object' } },
      want: { thinking: { type: 'enabled', budget_tokens: 1024 }, max_tokens: 5120, tools: [{ name: 'json_tool_call', input_schema: { type: 'object', additionalProperties: true, properties: {} } }] },
    },
    { name: 'thinking passes through; an explicit max_tokens wins', req: { messages: [user('x')], thinking: { type: 'enabled', budget_tokens: 2000 }, max_tokens: 8000 }, want: { thinking: { type: 'enabled', budget_tokens: 2000 }, max_tokens: 8000 } },
    { name: 'web_search_options -> the hosted web_search tool', req: { messages: [user('x')], web_search_options: { search_context_size: 'medium' } }, want: { tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }] } },
    { name: 'stream: stream true, stream_options not sent', req: { messages: [user('x')], stream: true, stream_options: { include_usage: true } }, stream: true, want: { stream: true } },
    { name: 'n: 1 is accepted, nulls are left out', req: { messages: [user('x')], n: 1, temperature: null, stop: null }, want: {} },
    { name: 'an email as user is left out (LiteLLM)', req: { messages: [user('x')], user: 'a@b.co' }, want: {} },
    { name: 'gateway fields are never forwarded', req: { messages: [user('x')], metadata: { tag: 1 }, fallbacks: ['y'], api_key: 'sk-x', mock_testing_fallbacks: false }, want: {} },
    { name: 'unsupported params dropped under drop_params', req: { messages: [user('x')], seed: 1, logit_bias: {}, n: 3, presence_penalty: 0.1 }, over: { dropParams: true }, want: {} },
  ]
  const base = new Set(['model', 'messages', 'max_tokens'])
  for (const c of cases) {
    const body = build(c.req, c.over, c.stream)
    t.match(body, c.want, c.name)
    t.ok(createMessage(body), `${c.name}: valid CreateMessageParams`, { errors: JSON.stringify(createMessage.errors?.slice(0, 4)) })
    const extra = Object.keys(body).filter((k) => !base.has(k) && !(k in c.want) && !(k === 'tools' && 'tools' in c.req) && k !== 'system')
    t.same(extra, [], `${c.name}: nothing else sent`)
  }
})

t.test('request mapping reproduces the recorded tool round trip', async (t) => {
  const rec = recorded.interactions[1]!.body
  const tu = rec.messages[1].content[1]
  const body = build({
    messages: [
      user(rec.messages[0].content),
      { role: 'assistant', content: rec.messages[1].content[0].text, tool_calls: [{ id: tu.id, type: 'function', function: { name: tu.name, arguments: JSON.stringify(tu.input) } }] },
      { role: 'tool', tool_call_id: tu.id, content: 'Tool result' },
    ],
    tools: [{ type: 'function', function: { name: 'test_tool', description: 'A test tool', parameters: rec.tools[0].input_schema } }],
    max_tokens: 1000,
  })
  t.same(body.messages.slice(1), rec.messages.slice(1), 'assistant tool_use and user tool_result turns as the SDK sent them')
  t.same(body.messages[0].content, [{ type: 'text', text: rec.messages[0].content }])
  t.same(body.tools, [{ name: 'test_tool', description: 'A test tool', input_schema: rec.tools[0].input_schema }])
  t.ok(createMessage(body), 'valid CreateMessageParams')
})

t.test('request mapping errors', async (t) => {
  const cases: Array<{ name: string; req: Record<string, unknown>; code: string; status: number; param: string }> = [
    ...['logit_bias', 'logprobs', 'presence_penalty', 'frequency_penalty', 'seed', 'functions', 'store'].map((p) => ({
      name: `${p} is unsupported`, req: { messages: [user('x')], [p]: p === 'functions' ? [] : p === 'logit_bias' ? {} : p === 'logprobs' || p === 'store' ? true : 0.5 },
      code: 'GW_ERR_UNSUPPORTED_PARAM', status: 400, param: p,
    })),
    { name: 'n > 1 is unsupported', req: { messages: [user('x')], n: 2 }, code: 'GW_ERR_UNSUPPORTED_PARAM', status: 400, param: 'n' },
    { name: 'temperature above Anthropic\'s 0..1', req: { messages: [user('x')], temperature: 1.5 }, code: 'GW_ERR_PARAM_RANGE', status: 400, param: 'temperature' },
    { name: 'an unknown reasoning_effort', req: { messages: [user('x')], reasoning_effort: 'extreme' }, code: 'GW_ERR_VALIDATION', status: 400, param: 'reasoning_effort' },
    { name: 'tool call arguments that are not JSON', req: { messages: [user('x'), { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{nope' } }] }] }, code: 'GW_ERR_VALIDATION', status: 400, param: 'messages' },
    { name: 'only a system message', req: { messages: [{ role: 'system', content: 'x' }] }, code: 'GW_ERR_VALIDATION', status: 400, param: 'messages' },
    { name: 'an unknown tool type', req: { messages: [user('x')], tools: [{ type: 'retrieval' }] }, code: 'GW_ERR_VALIDATION', status: 400, param: 'tools' },
  ]
  for (const c of cases) {
    let err: unknown
    try {
      build(c.req)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof GatewayError, `${c.name}: a GatewayError`)
    t.match(err, { code: c.code, status: c.status, param: c.param }, c.name)
  }
  t.match((() => { try { build({ messages: [user('x')], seed: 1 }) } catch (e) { return e } })(), { message: /anthropic does not support parameters: seed.*drop_params/ }, 'LiteLLM\'s message')
})

t.test('response mapping', async (t) => {
  const [first, second] = recorded.interactions
  const cases: Array<{ name: string; body: any; want: Record<string, unknown> }> = [
    {
      name: 'recorded: text + tool_use -> content and tool_calls',
      body: first!.response,
      want: {
        id: 'msg_012foMGXNQ1eqhaq3QvA5dY6', object: 'chat.completion', created: 1_700_000_000, model: 'claude-opus-4-8',
        choices: [{ index: 0, finish_reason: 'tool_calls', message: {
          role: 'assistant', content: first!.response.content[0].text,
          tool_calls: [{ id: 'toolu_011LF2VkWpAfJnTKJcmh1PNf', type: 'function', function: { name: 'test_tool', arguments: '{"value":"test"}' } }],
        } }],
        usage: { prompt_tokens: 415, completion_tokens: 76, total_tokens: 491, prompt_tokens_details: { cached_tokens: 0 } },
      },
    },
    { name: 'recorded: end_turn -> stop', body: second!.response, want: { choices: [{ finish_reason: 'stop', message: { content: second!.response.content[0].text } }], usage: { prompt_tokens: 505, completion_tokens: 41 } } },
    { name: 'max_tokens -> length', body: msg([{ type: 'text', text: 'cut' }], 'max_tokens'), want: { choices: [{ finish_reason: 'length' }] } },
    { name: 'stop_sequence -> stop', body: msg([{ type: 'text', text: 'x' }], 'stop_sequence'), want: { choices: [{ finish_reason: 'stop' }] } },
    { name: 'refusal -> content_filter', body: msg([], 'refusal'), want: { choices: [{ finish_reason: 'content_filter', message: { content: null } }] } },
    {
      name: 'prompt caching: prompt_tokens = input + cache read + cache write',
      body: msg([{ type: 'text', text: 'x' }], 'end_turn', { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 1000, cache_creation_input_tokens: 200 }),
      want: { usage: { prompt_tokens: 1210, completion_tokens: 5, total_tokens: 1215, prompt_tokens_details: { cached_tokens: 1000 }, cache_read_input_tokens: 1000, cache_creation_input_tokens: 200 } },
    },
    {
      name: 'thinking -> reasoning_content, thinking_blocks, reasoning tokens within the output',
      body: msg([{ type: 'thinking', thinking: 'Let me think about this carefully.', signature: 'sig1' }, { type: 'redacted_thinking', data: 'opaque' }, { type: 'text', text: 'Paris.' }], 'end_turn', { input_tokens: 20, output_tokens: 40 }),
      want: { choices: [{ message: {
        content: 'Paris.', reasoning_content: 'Let me think about this carefully.',
        thinking_blocks: [{ type: 'thinking', thinking: 'Let me think about this carefully.', signature: 'sig1' }, { type: 'redacted_thinking', data: 'opaque' }],
      } }], usage: { completion_tokens: 40, completion_tokens_details: { reasoning_tokens: 9 } } },
    },
    {
      name: 'JSON mode: the json_tool_call input becomes the content, finish stop',
      body: msg([{ type: 'tool_use', id: 'toolu_1', name: 'json_tool_call', input: { n: 3 } }], 'tool_use'),
      want: { choices: [{ finish_reason: 'stop', message: { content: '{"n":3}', tool_calls: undefined } }] },
    },
  ]
  for (const c of cases) {
    const out = anthropicChat.response(c.body, meta())
    t.match(out, c.want, c.name)
    assertSchema(t, 'CreateChatCompletionResponse', out, `${c.name}: valid CreateChatCompletionResponse`)
  }
  t.throws(() => anthropicChat.response({ type: 'message' }, meta()), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' }, 'no content list: 502')
})

function msg(content: unknown[], stop: string, usage: Record<string, number> = { input_tokens: 3, output_tokens: 2 }) {
  return { id: 'msg_x', type: 'message', role: 'assistant', model: 'claude-opus-4-8', content, stop_reason: stop, stop_sequence: null, usage }
}

/** SSE text through the core's parser and a fresh translator: every chunk, then end(). */
function translate(sse: string, req: Record<string, unknown> = {}) {
  const tr = anthropicChat.stream!({ model: 'claude', messages: [], ...req } as ChatRequest, meta())
  const parser = new SseParser()
  const chunks: ChatChunk[] = []
  for (const e of [...parser.push(sse), ...parser.end()]) chunks.push(...tr.event(e))
  const end = tr.end()
  return { chunks: [...chunks, ...end.chunks], usage: end.usage }
}
const sseOf = (events: unknown[]) => events.map((e) => `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`).join('')
const start = (usage = { input_tokens: 5, output_tokens: 1 }) => ({ type: 'message_start', message: { id: 'msg_s', type: 'message', role: 'assistant', content: [], model: 'claude-opus-4-8', usage } })
const stopEv = (reason: string, out = 7) => [{ type: 'message_delta', delta: { stop_reason: reason, stop_sequence: null }, usage: { output_tokens: out } }, { type: 'message_stop' }]

t.test('stream translation, chunk by chunk', async (t) => {
  const text = translate(readFileSync(data('stream.text.sse'), 'utf8'))
  t.same(text.chunks.map((c) => c.choices[0]!.delta), [{ content: 'Hello', role: 'assistant' }, { content: ' there' }, { content: '!' }, {}], 'text deltas; the role on the first')
  t.same(text.chunks.map((c) => c.choices[0]!.finish_reason), [null, null, null, 'stop'], 'end_turn -> stop on the last chunk')
  t.ok(text.chunks.every((c) => c.id === 'msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK' && c.model === 'claude-opus-4-8' && c.created === 1_700_000_000), 'id, model, created')
  t.match(text.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 }, 'usage from message_start + message_delta')

  const tools = translate(readFileSync(data('stream.tool_use.sse'), 'utf8'))
  const deltas = tools.chunks.map((c) => c.choices[0]!.delta)
  t.same(deltas.slice(0, 2), [{ content: 'I', role: 'assistant' }, { content: '\'ll check the current weather in Paris for you.' }])
  t.same(deltas[2], { tool_calls: [{ index: 0, id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, 'first tool delta: index, id, type, name')
  t.same(deltas.slice(3, -1), ['{"locati', 'on": "P', 'ar', 'is"}'].map((a) => ({ tool_calls: [{ index: 0, function: { arguments: a } }] })),
    'argument fragments in order, the empty one skipped')
  t.equal(tools.chunks.at(-1)!.choices[0]!.finish_reason, 'tool_calls')
  t.match(tools.usage, { prompt_tokens: 377, completion_tokens: 65, prompt_tokens_details: { cached_tokens: 0 } })

  const multi = translate(sseOf([
    start({ input_tokens: 5, output_tokens: 1, cache_read_input_tokens: 100 } as never),
    { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Two cities.' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"location":"Paris"}' } },
    { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_b', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"location":"Rome"}' } },
    ...stopEv('tool_use', 50),
  ]))
  const md = multi.chunks.map((c) => c.choices[0]!.delta)
  t.same(md[0], { reasoning_content: 'Two cities.', thinking_blocks: [{ type: 'thinking', thinking: 'Two cities.' }], role: 'assistant' }, 'thinking_delta -> reasoning_content')
  t.same(md[1], { reasoning_content: '', thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig' }] }, 'signature_delta -> thinking_blocks')
  t.same(md.filter((d) => d.tool_calls).map((d) => d.tool_calls![0]!.index), [0, 0, 1, 1], 'a running index per tool_use block')
  t.match(multi.usage, { prompt_tokens: 105, completion_tokens: 50, prompt_tokens_details: { cached_tokens: 100 }, completion_tokens_details: { reasoning_tokens: 3 } })

  const json = translate(sseOf([
    start(),
    { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_j', name: 'json_tool_call', input: {} } },
    { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"n":' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '3}' } },
    ...stopEv('tool_use'),
  ]), { response_format: { type: 'json_object' } })
  t.same(json.chunks.map((c) => [c.choices[0]!.delta.content, c.choices[0]!.finish_reason]), [['{"n":', null], ['3}', null], [undefined, 'stop']], 'JSON mode streams the tool input as content, finishes stop')

  for (const [reason, want] of [['max_tokens', 'length'], ['stop_sequence', 'stop'], ['refusal', 'content_filter']] as const) {
    const r = translate(sseOf([start(), ...stopEv(reason)]))
    t.same(r.chunks.map((c) => c.choices[0]!.finish_reason), [want], `${reason} -> ${want}`)
  }
  for (const c of [...text.chunks, ...tools.chunks, ...multi.chunks, ...json.chunks]) {
    if (!assertSchema(t, 'CreateChatCompletionStreamResponse', c, 'chunk is a valid CreateChatCompletionStreamResponse')) break
  }
})

t.test('stream errors', async (t) => {
  const tr = anthropicChat.stream!({ model: 'claude', messages: [] } as ChatRequest, meta())
  const parser = new SseParser()
  const events = parser.push(readFileSync(data('stream.error.sse'), 'utf8'))
  t.same(tr.event(events[0]!), [], 'message_start yields nothing, so the error comes before the first chunk')
  t.throws(() => tr.event(events[1]!), { code: 'GW_ERR_UPSTREAM_UNAVAILABLE', status: 503, message: 'Overloaded', upstreamStatus: 529 }, 'overloaded_error mid-stream -> 503')
  const cut = anthropicChat.stream!({ model: 'claude', messages: [] } as ChatRequest, meta())
  cut.event({ event: 'message_start', data: JSON.stringify(start()) })
  t.throws(() => cut.end(), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' }, 'a stream cut before message_delta is an error, not a quiet end')
  t.throws(() => cut.event({ event: undefined, data: '{not json' }), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' }, 'a non-JSON event')
  const rl = anthropicChat.stream!({ model: 'claude', messages: [] } as ChatRequest, meta())
  t.throws(() => rl.event({ event: 'error', data: JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }) }), { code: 'GW_ERR_UPSTREAM_RATE_LIMIT', status: 429 })
})

t.test('error mapping', async (t) => {
  const body = (type: string, message: string) => ({ type: 'error', error: { type, message }, request_id: 'req_1' })
  const fixture = JSON.parse(readFileSync(data('error.invalid_request.json'), 'utf8'))
  const cases: Array<{ name: string; status: number; body: unknown; headers?: Record<string, string>; want: Record<string, unknown> }> = [
    { name: 'fixture: invalid_request_error', status: 400, body: fixture, want: { code: 'GW_ERR_UPSTREAM_BAD_REQUEST', status: 400, type: 'invalid_request_error', message: 'max_tokens: Field required' } },
    { name: 'prompt too long -> context window', status: 400, body: body('invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'), want: { code: 'GW_ERR_CONTEXT_WINDOW', status: 400, openaiCode: 'context_length_exceeded' } },
    { name: 'exceed context limit -> context window', status: 400, body: body('invalid_request_error', 'input length and `max_tokens` exceed context limit: 199000 + 8192 > 200000'), want: { code: 'GW_ERR_CONTEXT_WINDOW' } },
    { name: 'content filtering -> content policy', status: 400, body: body('invalid_request_error', 'Output blocked by content filtering policy'), want: { code: 'GW_ERR_CONTENT_POLICY', status: 400, openaiCode: 'content_policy_violation' } },
    { name: 'authentication_error', status: 401, body: body('authentication_error', 'invalid x-api-key'), want: { code: 'GW_ERR_UPSTREAM_AUTH', status: 401, type: 'authentication_error' } },
    { name: 'permission_error', status: 403, body: body('permission_error', 'no access'), want: { code: 'GW_ERR_UPSTREAM_FORBIDDEN', status: 403 } },
    { name: 'not_found_error (unknown model)', status: 404, body: body('not_found_error', 'model: claude-nope'), want: { code: 'GW_ERR_UPSTREAM_NOT_FOUND', status: 404, message: 'model: claude-nope' } },
    { name: 'request_too_large', status: 413, body: body('request_too_large', 'Request exceeds the maximum allowed number of bytes.'), want: { code: 'GW_ERR_UPSTREAM_BAD_REQUEST', status: 400, upstreamStatus: 413 } },
    { name: 'rate_limit_error keeps retry-after', status: 429, body: body('rate_limit_error', 'Number of requests has exceeded your rate limit'), headers: { 'retry-after': '17' }, want: { code: 'GW_ERR_UPSTREAM_RATE_LIMIT', status: 429, retryAfter: 17 } },
    { name: 'api_error', status: 500, body: body('api_error', 'Internal server error'), want: { code: 'GW_ERR_UPSTREAM_SERVER', status: 500 } },
    { name: 'overloaded_error (529) -> 503', status: 529, body: body('overloaded_error', 'Overloaded'), want: { code: 'GW_ERR_UPSTREAM_UNAVAILABLE', status: 503, upstreamStatus: 529 } },
    { name: 'a non-JSON body is never shown', status: 502, body: '<html>bad gateway</html>', want: { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', message: 'anthropic returned HTTP 502 Bad Gateway' } },
    { name: 'a key in the message is masked', status: 401, body: body('authentication_error', 'bad key sk-ant-api03-SECRETSECRET'), want: { message: 'bad key sk-ant-***' } },
  ]
  for (const c of cases) {
    const err = anthropic.error(c.status, c.body, c.headers ?? {})
    t.ok(err instanceof GatewayError, c.name)
    t.match(err, { provider: 'anthropic', ...c.want }, c.name)
    t.notMatch(err.message, /SECRET/, `${c.name}: no secret`)
  }
  t.equal(anthropicError('vertex_ai', 529, body('overloaded_error', 'Overloaded'), {}).provider, 'vertex_ai', 'the provider name is the caller\'s')
})

t.test('URL, headers and credentials', async (t) => {
  const r = anthropic.request('chat', target({ extraHeaders: { 'Anthropic-Beta': 'output-128k-2025-02-19' } }), false)
  t.equal(r.url, 'https://api.anthropic.com/v1/messages')
  t.same(r.headers, { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-test', 'anthropic-beta': 'output-128k-2025-02-19' })
  t.equal(anthropic.request('chat', target({ apiBase: 'http://127.0.0.1:9/' }), false).url, 'http://127.0.0.1:9/v1/messages', 'api_base, trailing slash trimmed')
  t.equal(anthropic.request('chat', target({ apiBase: 'http://h/proxy/v1/messages' }), false).url, 'http://h/proxy/v1/messages', 'a full messages URL is kept')
  t.notOk('x-api-key' in anthropic.request('chat', target({ apiKey: undefined }), false).headers, 'no key, no header')
  t.same([...anthropic.operations], ['chat'], 'chat only: Anthropic has no embeddings API')

  const registry = createProviderRegistry([...builtinProviders(), anthropic])
  const config = buildConfig({ model_list: [
    { model_name: 'c', litellm_params: { model: 'anthropic/claude-sonnet-4-5' } },
    { model_name: 'k', litellm_params: { model: 'anthropic/claude-sonnet-4-5', api_key: 'sk-ant-config', api_base: 'http://127.0.0.1:1' } },
  ] }, { env: {} })
  const models = createModelTable(config, registry, { ANTHROPIC_API_KEY: 'sk-ant-env', ANTHROPIC_BASE_URL: 'http://127.0.0.1:2' })
  t.match(models.resolve('c')[0], { provider: 'anthropic', model: 'claude-sonnet-4-5', apiKey: 'sk-ant-env', apiBase: 'http://127.0.0.1:2' }, 'ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL')
  t.match(models.resolve('k')[0], { apiKey: 'sk-ant-config', apiBase: 'http://127.0.0.1:1' }, 'litellm_params win')
  const both = createModelTable(config, registry, { ANTHROPIC_API_BASE: 'http://127.0.0.1:3', ANTHROPIC_BASE_URL: 'http://127.0.0.1:2' })
  t.equal(both.resolve('c')[0]!.apiBase, 'http://127.0.0.1:3', 'ANTHROPIC_API_BASE is read first')
})
