/**
 * The Anthropic Messages format <-> the gateway's OpenAI chat form (core/formats/anthropic-request.ts and
 * anthropic-reply.ts), as pure functions: every request mapping, every bad input as a 400 naming its path, the
 * reply as a Message, the stream as Anthropic's SSE events, usage and errors. Everything the gateway emits in
 * Anthropic's format is validated strictly against Anthropic's published spec (test/helpers/anthropic-openapi.ts).
 * Streams are replayed and reassembled the way the Anthropic SDK accumulates them, then compared with the
 * non-stream translation of the same reply.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { GatewayError } from '../../core/errors.js'
import { messagesToChat } from '../../core/formats/anthropic-request.js'
import {
  AnthropicStreamWriter, anthropicErrorBody, anthropicErrorType, chatToMessage, messageId, usageFromAnthropic,
  usageToAnthropic, type AnthropicMessage,
} from '../../core/formats/anthropic-reply.js'
import type { ChatChunk, ChatCompletion, ChatMessage, Usage } from '../../core/openai/types.js'
import { SseParser } from '../../core/sse.js'
import { anthropicTurns, systemBlocks } from '../../providers/anthropic/messages.js'
import { AnthropicStream } from '../../providers/anthropic/stream.js'
import type { Target } from '../../providers/types.js'
import { EVENT_SCHEMAS, anthropicSchemaErrors, assertAnthropicSchema } from '../helpers/anthropic-openapi.js'
import { chatChunks } from '../helpers/upstream.js'

const DATA = (name: string) => fileURLToPath(new URL(`../../../shared/data/anthropic/${name}`, import.meta.url))
type Obj = Record<string, any>

const base = { model: 'claude-sonnet-4-5', max_tokens: 256 }

/** Run `fn`, expect a GatewayError with this code, status 400 and param, its message leading with the param. */
function expectError(t: Test, fn: () => unknown, code: string, param: string, text?: RegExp): void {
  try {
    fn()
    t.fail(`expected ${code} for ${param}`)
  } catch (e) {
    if (!(e instanceof GatewayError)) throw e
    t.equal(e.code, code, `${param}: code`)
    t.equal(e.status, 400, `${param}: status 400`)
    t.equal(e.param, param, `${param}: param`)
    t.ok(e.message.startsWith(`${param}: `), `${param}: the message leads with the path (${e.message})`)
    if (text) t.match(e.message, text)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// request

t.test('a plain request: system, sampling parameters, metadata, stream, unknown and dropped fields', async (t) => {
  const req = messagesToChat({
    ...base,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }],
    temperature: 0.5, top_p: 0.9, top_k: 40, stop_sequences: ['END', 'STOP'], metadata: { user_id: 'u-1' }, stream: true,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    container: 'c-1', mcp_servers: [], service_tier: 'auto', context_management: { edits: [] },
    some_new_field: { x: 1 },
  })
  t.same(req, {
    model: 'claude-sonnet-4-5',
    max_tokens: 256,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
      { role: 'user', content: 'Bye' },
    ],
    temperature: 0.5, top_p: 0.9, top_k: 40, stop: ['END', 'STOP'], user: 'u-1', stream: true,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    some_new_field: { x: 1 },
  })
  for (const k of ['container', 'mcp_servers', 'service_tier', 'context_management', 'metadata', 'stop_sequences', 'system']) {
    t.notOk(k in req, `${k} is not on the ChatRequest`)
  }
  t.equal(messagesToChat({ ...base, messages: [{ role: 'user', content: 'x' }], stream: false }).stream, false, 'stream false is kept')
})

t.test('system as text blocks: one plain block is a string, several (or cache_control) stay parts', async (t) => {
  const one = messagesToChat({ ...base, system: [{ type: 'text', text: 'A' }], messages: [{ role: 'user', content: 'x' }] })
  t.same(one.messages[0], { role: 'system', content: 'A' })
  const cc = { type: 'ephemeral' }
  const many = messagesToChat({
    ...base, system: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B', cache_control: cc }], messages: [{ role: 'user', content: 'x' }],
  })
  t.same(many.messages[0], { role: 'system', content: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B', cache_control: cc }] })
  const empty = messagesToChat({ ...base, system: [], messages: [{ role: 'user', content: 'x' }] })
  t.equal(empty.messages[0]!.role, 'user', 'an empty system list adds no message')
})

t.test('user blocks: text, images (base64 and URL), documents (PDF, plain text, content)', async (t) => {
  const cc = { type: 'ephemeral' }
  const req = messagesToChat({
    ...base,
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'Look', cache_control: cc },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/a.jpg' }, cache_control: cc },
        { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
        { type: 'document', title: 'report.pdf', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
        { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'plain words' } },
        { type: 'document', source: { type: 'content', content: [{ type: 'text', text: 'inner' }] } },
        { type: 'document', source: { type: 'content', content: 'inner string' } },
      ],
    }],
  })
  t.same(req.messages, [{
    role: 'user',
    content: [
      { type: 'text', text: 'Look', cache_control: cc },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      { type: 'image_url', image_url: { url: 'https://example.com/a.jpg' }, cache_control: cc },
      { type: 'file', file: { filename: 'document.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
      { type: 'file', file: { filename: 'report.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
      { type: 'text', text: 'plain words' },
      { type: 'text', text: 'inner' },
      { type: 'text', text: 'inner string' },
    ],
  }])
  expectError(t, () => messagesToChat({
    ...base, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'url', url: 'https://x/y.pdf' } }] }],
  }), 'GW_ERR_UNSUPPORTED_PARAM', 'messages.0.content.0.source', /Anthropic deployments/)
})

t.test('tool results become tool messages placed before the rest of the user turn', async (t) => {
  const img = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }
  const req = messagesToChat({
    ...base,
    messages: [
      { role: 'user', content: 'Weather in Paris and Rome?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } },
          { type: 'tool_use', id: 'toolu_3', name: 'snapshot' },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Here you go.' },
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'Sunny' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'Rain' }, { type: 'text', text: '12C' }], is_error: true },
          { type: 'tool_result', tool_use_id: 'toolu_3', content: [{ type: 'text', text: 'see image' }, img] },
          { type: 'tool_result', tool_use_id: 'toolu_4' },
        ],
      },
    ],
  })
  t.same(req.messages, [
    { role: 'user', content: 'Weather in Paris and Rome?' },
    {
      role: 'assistant',
      content: 'Checking.',
      tool_calls: [
        { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
        { id: 'toolu_3', type: 'function', function: { name: 'snapshot', arguments: '{}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'toolu_1', content: 'Sunny' },
    { role: 'tool', tool_call_id: 'toolu_2', content: 'Rain\n12C' },
    { role: 'tool', tool_call_id: 'toolu_3', content: 'see image' },
    { role: 'tool', tool_call_id: 'toolu_4', content: '' },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'text', text: 'Here you go.' }] },
  ])
  t.notOk(JSON.stringify(req).includes('is_error'), 'is_error has no OpenAI field and is left out')
})

t.test('assistant content: tool calls only, thinking blocks, cache_control, empty lists', async (t) => {
  const only = messagesToChat({
    ...base,
    messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] }],
  })
  t.same(only.messages[1], { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }] })

  const thinking = [
    { type: 'thinking', thinking: 'Let me ', signature: 'sig1' },
    { type: 'redacted_thinking', data: 'opaque' },
    { type: 'thinking', thinking: 'think.', signature: 'sig2' },
  ]
  const withThinking = messagesToChat({
    ...base,
    messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [...thinking, { type: 'text', text: 'A' }, { type: 'text', text: 'B' }] }],
  })
  t.same(withThinking.messages[1], { role: 'assistant', content: 'AB', thinking_blocks: thinking, reasoning_content: 'Let me think.' })

  const cc = { type: 'ephemeral' }
  const cached = messagesToChat({
    ...base, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'text', text: 'A', cache_control: cc }] }],
  })
  t.same(cached.messages[1]!.content, [{ type: 'text', text: 'A', cache_control: cc }], 'a cache breakpoint keeps the parts')

  const empty = messagesToChat({ ...base, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [] }] })
  t.equal(empty.messages.length, 1, 'an empty assistant turn adds nothing')
})

t.test('tools and tool_choice', async (t) => {
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }
  const msgs = [{ role: 'user', content: 'x' }]
  const req = messagesToChat({
    ...base, messages: msgs,
    tools: [
      { name: 'get_weather', description: 'Weather for a city', input_schema: schema, cache_control: { type: 'ephemeral' } },
      { type: 'custom', name: 'noop', input_schema: { type: 'object' } },
      { type: 'web_search_20250305', name: 'web_search', max_uses: 3, user_location: { type: 'approximate', city: 'Paris', country: 'FR' } },
    ],
    tool_choice: { type: 'any', disable_parallel_tool_use: true },
  })
  t.same(req.tools, [
    { type: 'function', function: { name: 'get_weather', parameters: schema, description: 'Weather for a city' } },
    { type: 'function', function: { name: 'noop', parameters: { type: 'object' } } },
  ])
  t.same(req.web_search_options, { user_location: { type: 'approximate', approximate: { city: 'Paris', country: 'FR' } } })
  t.equal(req.tool_choice, 'required')
  t.equal(req.parallel_tool_calls, false)

  const tools = [{ name: 'f', input_schema: { type: 'object' } }]
  const choice = (tc: unknown) => messagesToChat({ ...base, messages: msgs, tools, tool_choice: tc })
  t.equal(choice({ type: 'auto' }).tool_choice, 'auto')
  t.equal(choice({ type: 'none' }).tool_choice, 'none')
  t.same(choice({ type: 'tool', name: 'f' }).tool_choice, { type: 'function', function: { name: 'f' } })
  t.notOk('parallel_tool_calls' in choice({ type: 'auto', disable_parallel_tool_use: false }), 'parallel calls stay the default')

  const searchOnly = messagesToChat({ ...base, messages: msgs, tools: [{ type: 'web_search_20250305', name: 'web_search' }], tool_choice: { type: 'auto' } })
  t.same(searchOnly.web_search_options, {})
  t.notOk('tools' in searchOnly, 'no function tools')
  t.notOk('tool_choice' in searchOnly, 'OpenAI refuses tool_choice without tools')

  expectError(t, () => messagesToChat({ ...base, messages: msgs, tools: [tools[0], { type: 'bash_20250124', name: 'bash' }] }),
    'GW_ERR_UNSUPPORTED_PARAM', 'tools.1', /only an Anthropic deployment runs server tool 'bash_20250124'/)
  expectError(t, () => messagesToChat({ ...base, messages: msgs, tools: [{ input_schema: { type: 'object' } }] }), 'GW_ERR_VALIDATION', 'tools.0.name')
  expectError(t, () => messagesToChat({ ...base, messages: msgs, tools: [{ name: 'f' }] }), 'GW_ERR_VALIDATION', 'tools.0.input_schema')
  expectError(t, () => choice({ type: 'tool' }), 'GW_ERR_VALIDATION', 'tool_choice.name')
  expectError(t, () => choice({ type: 'sometimes' }), 'GW_ERR_VALIDATION', 'tool_choice.type')
})

t.test('structured output: output_format and output_config.format become response_format', async (t) => {
  const schema = { type: 'object', properties: { a: { type: 'string' } } }
  const msgs = [{ role: 'user', content: 'x' }]
  const expected = { type: 'json_schema', json_schema: { name: 'structured_output', schema } }
  t.same(messagesToChat({ ...base, messages: msgs, output_format: { type: 'json_schema', schema } }).response_format, expected)
  const oc = messagesToChat({ ...base, messages: msgs, output_config: { format: { type: 'json_schema', schema }, effort: 'low' } })
  t.same(oc.response_format, expected)
  t.same(oc.output_config, { effort: 'low' }, 'the rest of output_config is copied through')
  expectError(t, () => messagesToChat({ ...base, messages: msgs, output_format: { type: 'xml' } }), 'GW_ERR_VALIDATION', 'output_format')
})

t.test('bad input: a 400 naming the offending path', async (t) => {
  const ok = [{ role: 'user', content: 'x' }]
  const cases: Array<[string, Obj, string, string?]> = [
    ['model', { max_tokens: 5, messages: ok }, 'GW_ERR_VALIDATION'],
    ['model', { model: '', max_tokens: 5, messages: ok }, 'GW_ERR_VALIDATION'],
    ['max_tokens', { model: 'm', messages: ok }, 'GW_ERR_VALIDATION'],
    ['max_tokens', { model: 'm', max_tokens: 0, messages: ok }, 'GW_ERR_VALIDATION'],
    ['max_tokens', { model: 'm', max_tokens: 1.5, messages: ok }, 'GW_ERR_VALIDATION'],
    ['max_tokens', { model: 'm', max_tokens: '5', messages: ok }, 'GW_ERR_VALIDATION'],
    ['messages', { ...base, messages: [] }, 'GW_ERR_VALIDATION'],
    ['messages', { ...base, messages: 'hi' }, 'GW_ERR_VALIDATION'],
    ['messages.0', { ...base, messages: ['hi'] }, 'GW_ERR_VALIDATION'],
    ['messages.1.role', { ...base, messages: [...ok, { role: 'system', content: 'x' }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content', { ...base, messages: [{ role: 'user', content: 42 }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content', { ...base, messages: [{ role: 'user', content: [] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0.text', { ...base, messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0.type', { ...base, messages: [{ role: 'user', content: [{ text: 'x' }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0', { ...base, messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'f', input: {} }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.1.content.0', { ...base, messages: [...ok, { role: 'assistant', content: [{ type: 'image', source: {} }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0', { ...base, messages: [{ role: 'user', content: [{ type: 'search_result', source: 's', title: 't', content: [] }] }] }, 'GW_ERR_UNSUPPORTED_PARAM'],
    ['messages.0.content.0.source', { ...base, messages: [{ role: 'user', content: [{ type: 'image' }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0.source', { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', data: 'x' } }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0.source.type', { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }, 'GW_ERR_UNSUPPORTED_PARAM'],
    ['messages.0.content.0.tool_use_id', { ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.0.content.0.content.0', { ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'bogus' }] }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.1.content.0.id', { ...base, messages: [...ok, { role: 'assistant', content: [{ type: 'tool_use', name: 'f', input: {} }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.1.content.0.name', { ...base, messages: [...ok, { role: 'assistant', content: [{ type: 'tool_use', id: 'a', input: {} }] }] }, 'GW_ERR_VALIDATION'],
    ['messages.1.content.0.input', { ...base, messages: [...ok, { role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'f', input: [1] }] }] }, 'GW_ERR_VALIDATION'],
    ['system', { ...base, system: 5, messages: ok }, 'GW_ERR_VALIDATION'],
    ['system.0.type', { ...base, system: [{ type: 'image', source: {} }], messages: ok }, 'GW_ERR_VALIDATION'],
    ['temperature', { ...base, temperature: 1.5, messages: ok }, 'GW_ERR_VALIDATION'],
    ['temperature', { ...base, temperature: -0.1, messages: ok }, 'GW_ERR_VALIDATION'],
    ['top_p', { ...base, top_p: 2, messages: ok }, 'GW_ERR_VALIDATION'],
    ['top_k', { ...base, top_k: -1, messages: ok }, 'GW_ERR_VALIDATION'],
    ['stop_sequences', { ...base, stop_sequences: ['a', 1], messages: ok }, 'GW_ERR_VALIDATION'],
    ['stream', { ...base, stream: 'yes', messages: ok }, 'GW_ERR_VALIDATION'],
    ['metadata.user_id', { ...base, metadata: { user_id: 7 }, messages: ok }, 'GW_ERR_VALIDATION'],
    ['thinking', { ...base, thinking: 'on', messages: ok }, 'GW_ERR_VALIDATION'],
    ['tools', { ...base, tools: {}, messages: ok }, 'GW_ERR_VALIDATION'],
    ['tool_choice', { ...base, tools: [{ name: 'f', input_schema: {} }], tool_choice: 'auto', messages: ok }, 'GW_ERR_VALIDATION'],
  ]
  for (const [param, body, code] of cases) expectError(t, () => messagesToChat(body), code, param)
  expectError(t, () => messagesToChat({
    ...base, messages: [...ok, { role: 'assistant', content: 'y' }, { role: 'user', content: [{ type: 'foo' }] }],
  }), 'GW_ERR_VALIDATION', 'messages.2.content.0', /^messages\.2\.content\.0: unknown block type 'foo'$/)
})

t.test('round trip: Anthropic messages -> chat -> the Anthropic provider\'s conversion gives them back', async (t) => {
  const system = [{ type: 'text', text: 'Sys A' }, { type: 'text', text: 'Sys B', cache_control: { type: 'ephemeral' } }]
  const messages = [
    { role: 'user', content: [{ type: 'text', text: 'What is the weather?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'I should call the tool.', signature: 'sig' },
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
      ],
    },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'Sunny, 24C' }] },
  ]
  const req = messagesToChat({ ...base, system, messages })
  t.same(systemBlocks(req.messages), system, 'system blocks come back')
  t.same(anthropicTurns(req.messages), messages, 'turns come back')
})

t.test('the recorded tool-use conversation translates', async (t) => {
  const rec = JSON.parse(readFileSync(DATA('messages.tool_use.recorded.json'), 'utf8')) as { interactions: Array<{ body: Obj; response: Obj }> }
  const second = messagesToChat(rec.interactions[1]!.body)
  t.same(second.messages.map((m: ChatMessage) => m.role), ['user', 'assistant', 'tool'])
  t.equal(second.messages[2]!.tool_call_id, 'toolu_011LF2VkWpAfJnTKJcmh1PNf')
  t.equal(second.tools![0]!.function.name, 'test_tool')
  t.equal(second.stream, false)
  const usage = usageFromAnthropic(rec.interactions[0]!.response.usage)!
  t.same([usage.prompt_tokens, usage.completion_tokens, usage.total_tokens], [415, 76, 491])
  // And back: the recorded counts survive the round trip.
  const back = usageToAnthropic(usage)
  t.equal(back.input_tokens, 415)
  t.equal(back.output_tokens, 76)
})

// ---------------------------------------------------------------------------------------------------------------
// reply: usage, errors, ids

t.test('usage both ways', async (t) => {
  const u: Usage = {
    prompt_tokens: 100, completion_tokens: 7, total_tokens: 107,
    prompt_tokens_details: { cached_tokens: 30 }, cache_creation_input_tokens: 20,
  }
  const a = usageToAnthropic(u)
  t.same(a, {
    input_tokens: 50, output_tokens: 7, cache_creation_input_tokens: 20, cache_read_input_tokens: 30,
    cache_creation: null, server_tool_use: null, service_tier: null,
  })
  assertAnthropicSchema(t, 'Usage', a)
  const none = usageToAnthropic(null)
  t.same([none.input_tokens, none.output_tokens, none.cache_read_input_tokens], [0, 0, null])
  assertAnthropicSchema(t, 'Usage', none)
  t.equal(usageToAnthropic({ prompt_tokens: 5, completion_tokens: 1, total_tokens: 6, prompt_tokens_details: { cached_tokens: 9 } }).input_tokens, 0, 'never below 0')
  t.equal(usageToAnthropic({ prompt_tokens: 50, completion_tokens: 1, total_tokens: 51, cache_read_input_tokens: 10 }).cache_read_input_tokens, 10, 'Anthropic-style read field')

  const back = usageFromAnthropic({ input_tokens: 50, output_tokens: 7, cache_creation_input_tokens: 20, cache_read_input_tokens: 30 })!
  t.same(back, {
    prompt_tokens: 100, completion_tokens: 7, total_tokens: 107, prompt_tokens_details: { cached_tokens: 30 },
    cache_creation_input_tokens: 20, cache_read_input_tokens: 30,
  })
  t.same(usageToAnthropic(back), a, 'inverse of usageToAnthropic')
  t.same(usageFromAnthropic({ input_tokens: 3, output_tokens: 2, cache_read_input_tokens: null })!.prompt_tokens, 3, 'null cache fields count 0')
  t.equal(usageFromAnthropic(null), null)
  t.equal(usageFromAnthropic('x'), null)
})

t.test('errors: status -> Anthropic type, and a body valid against ErrorResponse', async (t) => {
  const table: Array<[number, string]> = [
    [400, 'invalid_request_error'], [401, 'authentication_error'], [402, 'billing_error'], [403, 'permission_error'],
    [404, 'not_found_error'], [408, 'timeout_error'], [413, 'invalid_request_error'], [422, 'invalid_request_error'],
    [429, 'rate_limit_error'], [500, 'api_error'], [502, 'api_error'], [503, 'overloaded_error'], [504, 'timeout_error'],
    [529, 'overloaded_error'],
  ]
  for (const [status, type] of table) {
    t.equal(anthropicErrorType(status), type, `${status} -> ${type}`)
    assertAnthropicSchema(t, 'ErrorResponse', anthropicErrorBody({ status, message: 'm' }), `${status} body`)
  }
  const fixture = JSON.parse(readFileSync(DATA('error.invalid_request.json'), 'utf8')) as Obj
  t.same(anthropicErrorBody({ status: 400, message: 'max_tokens: Field required' }, 'req_011CSHoEeqs5C35K2UUqR7Fy'), fixture, 'the recorded shape')
  t.same(anthropicErrorBody({ status: 500, message: 'x' }), { type: 'error', error: { type: 'api_error', message: 'x' }, request_id: null })
})

t.test('messageId has Anthropic\'s shape', async (t) => {
  const ids = new Set<string>()
  t.match(messageId(), /^msg_[A-Za-z0-9]{24}$/)
  for (let i = 0; i < 200; i++) {
    const id = messageId()
    if (!/^msg_[A-Za-z0-9]{24}$/.test(id)) t.fail(`bad id ${id}`)
    ids.add(id)
  }
  t.equal(ids.size, 200, 'no repeats')
})

// ---------------------------------------------------------------------------------------------------------------
// reply: non-stream

function completion(message: Obj, finish: string | null, usage?: Usage): ChatCompletion {
  return {
    id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', ...message } as never, finish_reason: finish as never, logprobs: null }],
    ...(usage ? { usage } : {}),
  }
}

const USAGE: Usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, prompt_tokens_details: { cached_tokens: 2 } }

t.test('chatToMessage: text, stop reasons, usage; every reply a valid Message', async (t) => {
  const m = chatToMessage(completion({ content: 'Hello' }, 'stop', USAGE), 'claude-asked-for')
  t.match(m.id, /^msg_[A-Za-z0-9]{24}$/)
  t.same({ ...m, id: '' }, {
    id: '', type: 'message', role: 'assistant', model: 'claude-asked-for',
    content: [{ type: 'text', text: 'Hello', citations: null }],
    stop_reason: 'end_turn', stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 2, cache_creation: null, server_tool_use: null, service_tier: null },
  })
  assertAnthropicSchema(t, 'Message', m)
  const stops: Array<[string | null, string]> = [['stop', 'end_turn'], ['length', 'max_tokens'], ['tool_calls', 'tool_use'], ['function_call', 'tool_use'], ['content_filter', 'refusal'], [null, 'end_turn']]
  for (const [finish, stop] of stops) {
    const r = chatToMessage(completion({ content: 'x' }, finish), 'm')
    t.equal(r.stop_reason, stop, `${finish} -> ${stop}`)
    assertAnthropicSchema(t, 'Message', r)
  }
  const refusal = chatToMessage(completion({ content: null, refusal: 'I cannot help with that.' }, 'content_filter'), 'm')
  t.same(refusal.content, [{ type: 'text', text: 'I cannot help with that.', citations: null }])
  t.equal(chatToMessage({ ...completion({ content: 'x' }, 'stop'), id: 'msg_01ABC' }, 'm').id, 'msg_01ABC', 'an Anthropic id is kept')
  const empty = chatToMessage(completion({ content: '' }, 'stop'), 'm')
  t.same(empty.content, [], 'no empty text block')
  assertAnthropicSchema(t, 'Message', empty)
})

t.test('chatToMessage: tool calls (bad JSON -> {}), thinking first, odd ids made valid', async (t) => {
  const m = chatToMessage(completion({
    content: 'Calling.',
    reasoning_content: 'Need the weather.',
    tool_calls: [
      { id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'functions.Bash:0', type: 'function', function: { name: 'bash', arguments: '{"cmd": "ls"' } },
      { id: 'call_x', type: 'function', function: { name: 'arr', arguments: '[1,2]' } },
    ],
  }, 'tool_calls', USAGE), 'm')
  t.same(m.content, [
    { type: 'thinking', thinking: 'Need the weather.', signature: '' },
    { type: 'text', text: 'Calling.', citations: null },
    { type: 'tool_use', id: 'call_abc', name: 'get_weather', input: { city: 'Paris' } },
    { type: 'tool_use', id: 'functions_Bash_0', name: 'bash', input: {} },
    { type: 'tool_use', id: 'call_x', name: 'arr', input: {} },
  ])
  t.equal(m.stop_reason, 'tool_use')
  assertAnthropicSchema(t, 'Message', m)

  const blocks = chatToMessage(completion({
    content: null,
    reasoning_content: 'ab',
    thinking_blocks: [{ type: 'thinking', thinking: 'ab', signature: 'SIG' }, { type: 'redacted_thinking', data: 'xyz' }],
    tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }],
  }, 'stop'), 'm')
  t.same(blocks.content, [
    { type: 'thinking', thinking: 'ab', signature: 'SIG' },
    { type: 'redacted_thinking', data: 'xyz' },
    { type: 'tool_use', id: 'call_1', name: 'f', input: {} },
  ], 'thinking_blocks win over reasoning_content (same text), signature kept')
  t.equal(blocks.stop_reason, 'tool_use', 'a tool-call turn is tool_use even when the server said stop')
  assertAnthropicSchema(t, 'Message', blocks)

  const legacy = chatToMessage(completion({ content: null, function_call: { name: 'f', arguments: '{"a":1}' } }, 'function_call'), 'm')
  t.match(legacy.content, [{ type: 'tool_use', name: 'f', input: { a: 1 } }])
  assertAnthropicSchema(t, 'Message', legacy)
})

// ---------------------------------------------------------------------------------------------------------------
// reply: stream

interface Replay {
  events: Array<{ event: string; data: Obj }>
  message: AnthropicMessage
}

/**
 * Parse the writer's SSE text with the gateway's own SSE parser, validate every event against its schema, check the
 * block protocol (start, deltas, stop, indexes in order) and rebuild the message as the Anthropic SDK does.
 */
function replay(t: Test, sseText: string, strict = true): Replay {
  const parser = new SseParser()
  const raw = [...parser.push(sseText), ...parser.end()]
  // `ping` is a keep-alive Anthropic sends and the gateway does not; it is skipped in a recording.
  const events = raw.filter((e) => strict || e.event !== 'ping').map((e) => ({ event: e.event ?? '', data: JSON.parse(e.data) as Obj }))
  let message: Obj | null = null
  const json = new Map<number, string>()
  const open = new Set<number>()
  let next = 0
  for (const [i, { event, data }] of events.entries()) {
    t.equal(data.type, event, `event ${i}: the event name is the data's type`)
    const schema = EVENT_SCHEMAS[event]
    if (!schema) {
      t.fail(`unexpected event ${event}`)
      continue
    }
    const errors = strict ? anthropicSchemaErrors(schema, data) : []
    if (errors.length) t.fail(`event ${i} (${event}) is not a valid ${schema}`, { errors, data })
    switch (event) {
      case 'message_start':
        t.equal(i, 0, 'message_start comes first')
        message = structuredClone(data.message)
        break
      case 'content_block_start':
        t.equal(data.index, next++, 'blocks start in index order')
        t.equal(open.size, 0, 'one block open at a time')
        open.add(data.index)
        message!.content[data.index] = structuredClone(data.content_block)
        if (data.content_block.type === 'tool_use') json.set(data.index, '')
        break
      case 'content_block_delta': {
        t.ok(open.has(data.index), `delta ${i} goes to an open block`)
        const b = message!.content[data.index]
        const d = data.delta
        if (d.type === 'text_delta') b.text += d.text
        else if (d.type === 'thinking_delta') b.thinking += d.thinking
        else if (d.type === 'signature_delta') b.signature = d.signature
        else if (d.type === 'input_json_delta') json.set(data.index, json.get(data.index)! + d.partial_json)
        break
      }
      case 'content_block_stop': {
        t.ok(open.delete(data.index), `stop ${i} closes an open block`)
        const s = json.get(data.index)
        if (s !== undefined) message!.content[data.index].input = s ? JSON.parse(s) : {}
        break
      }
      case 'message_delta':
        message!.stop_reason = data.delta.stop_reason
        message!.stop_sequence = data.delta.stop_sequence
        for (const [k, v] of Object.entries(data.usage)) if (v !== null) message!.usage[k] = v
        break
      case 'message_stop':
        t.equal(i, events.length - 1, 'message_stop comes last')
        break
    }
  }
  t.equal(open.size, 0, 'every block is closed')
  if (message && strict) assertAnthropicSchema(t, 'Message', message, 'the reassembled message is a valid Message')
  return { events, message: message as AnthropicMessage }
}

/** The ChatCompletion a chunk stream adds up to (what the OpenAI SDK's stream helper builds). */
function accumulate(chunks: ChatChunk[]): ChatCompletion {
  const msg: Obj = { role: 'assistant', content: null }
  const calls: Obj[] = []
  let finish: string | null = null
  let usage: Usage | undefined
  for (const c of chunks) {
    if (c.usage) usage = c.usage
    const ch = c.choices[0]
    if (!ch) continue
    const d = ch.delta as Obj
    if (typeof d.content === 'string' && d.content) msg.content = (msg.content ?? '') + d.content
    if (typeof d.reasoning_content === 'string' && d.reasoning_content) msg.reasoning_content = (msg.reasoning_content ?? '') + d.reasoning_content
    for (const tc of d.tool_calls ?? []) {
      const call = (calls[tc.index] ??= { id: tc.id, type: 'function', function: { name: tc.function?.name, arguments: '' } })
      call.function.arguments += tc.function?.arguments ?? ''
    }
    if (ch.finish_reason) finish = ch.finish_reason
  }
  if (calls.length) msg.tool_calls = calls
  return completion(msg, finish, usage)
}

function writeAll(chunks: ChatChunk[], usage: Usage | null = null, id = 'msg_stream01'): string {
  const w = new AnthropicStreamWriter('claude-asked-for', id)
  let out = ''
  for (const c of chunks) out += w.chunk(c)
  return out + w.end(usage)
}

const withoutId = (m: AnthropicMessage) => ({ ...m, id: '' })

t.test('stream: a text reply from chatChunks() replays into the non-stream translation', async (t) => {
  const chunks = chatChunks({ model: 'gpt-4o-mini', stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Say hello' }] }, 'Hello there, how are you today?') as ChatChunk[]
  const sse = writeAll(chunks)
  const { events, message } = replay(t, sse)
  t.same(events.map((e) => e.event), [
    'message_start', 'content_block_start', ...Array(6).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop',
  ])
  t.same(events[0]!.data.message.usage, usageToAnthropic(null), 'message_start: usage not known yet')
  t.equal(message.id, 'msg_stream01')
  t.equal(message.model, 'claude-asked-for')
  t.same(withoutId(message), withoutId(chatToMessage(accumulate(chunks), 'claude-asked-for')))
  t.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0, 'usage from the final chunk')
  t.ok(sse.split('\n\n').slice(0, -1).every((e) => /^event: [a-z_]+\ndata: \{.*\}$/s.test(e)), 'every event is `event:` + `data:`')
})

t.test('stream: tool calls with split arguments, text before and after, usage passed to end()', async (t) => {
  const mk = (delta: Obj, finish: string | null = null, usage: Usage | null = null): ChatChunk =>
    ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt', choices: [{ index: 0, delta, finish_reason: finish as never }], usage })
  const chunks: ChatChunk[] = [
    mk({ role: 'assistant', content: '' }),
    mk({ content: 'Let me ' }),
    mk({ content: 'check.' }),
    mk({ tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
    mk({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] }),
    mk({ tool_calls: [{ index: 0, function: { arguments: 'ty": "Par' } }] }),
    mk({ tool_calls: [{ index: 0, function: { arguments: 'is"}' } }] }),
    mk({ tool_calls: [{ index: 1, id: 'call_B', type: 'function', function: { name: 'get_time', arguments: '{"tz":' } }] }),
    mk({ tool_calls: [{ index: 1, function: { arguments: '"CET"}' } }] }),
    mk({ tool_calls: [{ index: 2, id: 'call_C', type: 'function', function: { name: 'noop' } }] }),
    mk({ content: 'Done.' }),
    mk({}, 'tool_calls'),
  ]
  const w = new AnthropicStreamWriter('claude-asked-for', 'msg_x')
  const outs = chunks.map((c) => w.chunk(c))
  t.notOk(outs[0]!.includes('content_block'), 'the role chunk opens no block')
  t.match(outs[0], /^event: message_start\n/)
  t.equal(outs[11], '', 'the finish chunk says nothing: usage comes later')
  const usage: Usage = { prompt_tokens: 40, completion_tokens: 22, total_tokens: 62 }
  const sse = outs.join('') + w.end(usage)
  t.equal(w.end(usage), '', 'end() twice sends nothing more')
  const { message, events } = replay(t, sse)
  t.same(message.content, [
    { type: 'text', text: 'Let me check.', citations: null },
    { type: 'tool_use', id: 'call_A', name: 'get_weather', input: { city: 'Paris' } },
    { type: 'tool_use', id: 'call_B', name: 'get_time', input: { tz: 'CET' } },
    { type: 'tool_use', id: 'call_C', name: 'noop', input: {} },
    { type: 'text', text: 'Done.', citations: null },
  ], 'text after a tool call opens a new block')
  t.equal(message.stop_reason, 'tool_use')
  t.same(events.at(-2)!.data.usage, { input_tokens: 40, output_tokens: 22, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, server_tool_use: null })
  const expected = chatToMessage({ ...accumulate(chunks), usage }, 'claude-asked-for')
  // The non-stream reply joins all text into one block before the tool calls; the stream keeps the order it saw.
  t.same(message.content.filter((b: any) => b.type === 'tool_use'), expected.content.filter((b: any) => b.type === 'tool_use'))
  t.same(message.usage, expected.usage)
  t.equal(message.stop_reason, expected.stop_reason)
})

t.test('stream: the Anthropic provider\'s translation of a real SSE recording round-trips', async (t) => {
  for (const name of ['stream.tool_use.sse', 'stream.text.sse']) {
    const target = { id: 'd', modelName: 'claude', provider: 'anthropic', model: 'claude-opus-4-8' } as Target
    const upstream = new AnthropicStream({ model: 'claude', messages: [] }, { target, requestId: 'r1', created: 1 })
    const parser = new SseParser()
    const fixture = readFileSync(DATA(name), 'utf8')
    const chunks: ChatChunk[] = []
    for (const e of [...parser.push(fixture), ...parser.end()]) chunks.push(...upstream.event(e))
    const { usage } = upstream.end()
    const { message } = replay(t, writeAll(chunks, usage))

    // What Anthropic itself sent, reassembled from the recording (not held to the spec's strictness: real events
    // leave out nullable fields).
    const original = replay(t, fixture, false)
    t.same(message.content, original.message.content.map((b: any) => (b.type === 'text' ? { ...b, citations: null } : b)), `${name}: content`)
    t.equal(message.stop_reason, original.message.stop_reason, `${name}: stop reason`)
    t.equal(message.usage.output_tokens, original.message.usage.output_tokens, `${name}: output tokens`)
    t.equal(message.usage.input_tokens, original.message.usage.input_tokens, `${name}: input tokens`)
  }
})

t.test('stream: thinking with a signature, redacted thinking, then text', async (t) => {
  const mk = (delta: Obj, finish: string | null = null): ChatChunk =>
    ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt', choices: [{ index: 0, delta, finish_reason: finish as never }] })
  // The shapes the gateway's own Anthropic translator emits (providers/anthropic/stream.ts), and a plain
  // reasoning_content stream as reasoning models on OpenAI-compatible servers send it.
  const chunks = [
    mk({ role: 'assistant', reasoning_content: 'Think ', thinking_blocks: [{ type: 'thinking', thinking: 'Think ' }] }),
    mk({ reasoning_content: 'hard.', thinking_blocks: [{ type: 'thinking', thinking: 'hard.' }] }),
    mk({ reasoning_content: '', thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'SIG==' }] }),
    mk({ thinking_blocks: [{ type: 'redacted_thinking', data: 'opaque' }] }),
    mk({ reasoning_content: 'More.' }),
    mk({ content: 'Answer.' }),
    mk({}, 'stop'),
  ]
  const { message } = replay(t, writeAll(chunks))
  t.same(message.content, [
    { type: 'thinking', thinking: 'Think hard.', signature: 'SIG==' },
    { type: 'redacted_thinking', data: 'opaque' },
    { type: 'thinking', thinking: 'More.', signature: '' },
    { type: 'text', text: 'Answer.', citations: null },
  ])
  t.equal(message.stop_reason, 'end_turn')
})

t.test('stream: edge cases', async (t) => {
  const w = new AnthropicStreamWriter('m', 'msg_e')
  const chunk = (delta: Obj, finish: string | null = null): ChatChunk =>
    ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt', choices: [{ index: 0, delta, finish_reason: finish as never }] })
  t.match(w.chunk(chunk({ role: 'assistant' })), /^event: message_start\n/)
  t.equal(w.chunk(chunk({})), '', 'a chunk with nothing to say returns ""')
  t.equal(w.chunk(chunk({ content: '' })), '', 'empty content says nothing')
  t.equal(w.chunk({ ...chunk({}), choices: [] }), '', 'a choices-less chunk says nothing')
  t.equal(w.chunk({ ...chunk({}), choices: [{ index: 1, delta: { content: 'second choice' }, finish_reason: null }] }), '', 'only the first choice is translated')

  const bare = replay(t, new AnthropicStreamWriter('m', 'msg_bare').end(null))
  t.same(bare.events.map((e) => e.event), ['message_start', 'message_delta', 'message_stop'], 'end() alone still frames a message')
  t.equal(bare.message.stop_reason, 'end_turn')

  const usageChunk: ChatChunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt', choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } }
  const w2 = new AnthropicStreamWriter('m', 'msg_u')
  const fromChunk = replay(t, w2.chunk(chunk({ content: 'x' }, 'length')) + w2.chunk(usageChunk) + w2.end(null))
  t.same([fromChunk.message.usage.input_tokens, fromChunk.message.usage.output_tokens], [9, 4], 'usage from a usage chunk when end() gets none')
  t.equal(fromChunk.message.stop_reason, 'max_tokens')

  const w3 = new AnthropicStreamWriter('m', 'msg_err')
  const err = w3.chunk(chunk({ content: 'partial' })) + w3.error({ status: 529, message: 'Overloaded' }, 'req_1')
  const events = [...new SseParser().push(err)]
  const last = events.at(-1)!
  t.equal(last.event, 'error')
  const body = JSON.parse(last.data) as Obj
  t.same(body, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: 'req_1' })
  assertAnthropicSchema(t, 'ErrorResponse', body)
  t.same(JSON.parse([...new SseParser().push(new AnthropicStreamWriter('m', 'i').error({ status: 500, message: 'boom' }))][0]!.data).request_id, null)
  t.equal(w3.end(null), '', 'nothing after an error')
})

t.test('the translators need neither the Anthropic SDK nor a provider', async (t) => {
  for (const f of ['anthropic-request.ts', 'anthropic-reply.ts']) {
    const src = readFileSync(fileURLToPath(new URL(`../../core/formats/${f}`, import.meta.url)), 'utf8')
    const imports = [...src.matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1])
    t.ok(imports.length > 0, `${f} has imports to check`)
    t.notOk(imports.some((i) => i!.includes('@anthropic-ai')), `${f} does not import @anthropic-ai/*`)
    t.notOk(imports.some((i) => i!.includes('providers/')), `${f} does not import a provider (dependencies point inward)`)
  }
})
