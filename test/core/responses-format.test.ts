/**
 * core/formats/responses-*.ts: the Responses API request -> ChatRequest, and ChatCompletion / ChatChunk streams ->
 * Response / Responses streaming events. Pure translators, so these are unit tests; what they emit is checked
 * against OpenAI's published schemas (test/helpers/openapi.ts) and read back by the official `openai` SDK through
 * a `fetch` that answers from memory (no server, no network).
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { inputItems, responsesToChat, type ResponseItem } from '../../core/formats/responses-request.js'
import { chatToResponse, outputItems, responseId, ResponsesStreamWriter, type ResponseOptions } from '../../core/formats/responses-reply.js'
import { GatewayError } from '../../core/errors.js'
import { SseParser } from '../../core/sse.js'
import type { ChatChunk, ChatCompletion, Usage } from '../../core/openai/types.js'
import { assertSchema } from '../helpers/openapi.js'

const CREATED = 1_760_000_000 // unix seconds
const NOW_MS = 1_760_000_003_000 // the fixed clock for completed_at

function opts(request: Record<string, unknown>, id = responseId()): ResponseOptions {
  return { id, createdAt: CREATED, model: String(request.model), request, now: () => NOW_MS }
}

/** The chat request for a one-shot body (no history). */
function chat(body: Record<string, unknown>, history: ResponseItem[] = []) {
  return responsesToChat(body, history, inputItems(body))
}

function completion(message: Record<string, unknown>, finish: ChatCompletion['choices'][number]['finish_reason'] = 'stop', usage?: Usage): ChatCompletion {
  return {
    id: 'chatcmpl-1', object: 'chat.completion', created: CREATED, model: 'up-model',
    choices: [{ index: 0, message: { role: 'assistant', content: null, ...message }, finish_reason: finish, logprobs: null }],
    ...(usage ? { usage } : {}),
  }
}

const USAGE: Usage = {
  prompt_tokens: 20, completion_tokens: 7, total_tokens: 27,
  prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 3 },
}

function thrown(fn: () => unknown): GatewayError {
  try {
    fn()
  } catch (e) {
    if (e instanceof GatewayError) return e
    throw e
  }
  throw new Error('expected a GatewayError, nothing was thrown')
}

// ---------------------------------------------------------------------------------------------------------------
// Request side

t.test('a string input is one user message', async (t) => {
  const body = { model: 'm', input: 'Hello there' }
  t.same(inputItems(body), [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there' }] }])
  const req = chat(body)
  t.same(req, { model: 'm', messages: [{ role: 'user', content: 'Hello there' }] }, 'nothing but model and messages')
})

t.test('message items with string and part content, with and without type', async (t) => {
  const body = {
    model: 'm',
    input: [
      { role: 'developer', content: 'Be terse.' },
      { type: 'message', role: 'system', content: [{ type: 'input_text', text: 'Sys' }] },
      { role: 'user', content: [{ type: 'input_text', text: 'a' }, { type: 'input_text', text: 'b' }] },
      { role: 'assistant', content: 'Earlier answer' },
      { type: 'message', role: 'user', content: 'Next' },
    ],
  }
  const items = inputItems(body)
  t.same(items[0], { role: 'developer', content: [{ type: 'input_text', text: 'Be terse.' }], type: 'message' }, 'string content -> input_text part')
  t.same(items[3]!.content, [{ type: 'output_text', text: 'Earlier answer' }], 'assistant string content -> output_text part')
  t.ok(items.every((i) => i.type === 'message'), 'every item is typed message')
  t.same(responsesToChat(body, [], items).messages, [
    { role: 'developer', content: 'Be terse.' },
    { role: 'system', content: 'Sys' },
    { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
    { role: 'assistant', content: 'Earlier answer' },
    { role: 'user', content: 'Next' },
  ])
})

t.test('images and files become chat image_url and file parts', async (t) => {
  const body = {
    model: 'm',
    input: [{
      role: 'user',
      content: [
        { type: 'input_text', text: 'What is this?' },
        { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
        { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'auto' },
        { type: 'input_image', file_id: 'file-img', detail: 'auto' },
        { type: 'input_file', file_data: 'data:application/pdf;base64,JVBER', filename: 'a.pdf' },
        { type: 'input_file', file_id: 'file-doc' },
      ],
    }],
  }
  t.same(chat(body).messages[0]!.content, [
    { type: 'text', text: 'What is this?' },
    { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
    { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'auto' } },
    { type: 'file', file: { file_id: 'file-img' } },
    { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBER', filename: 'a.pdf' } },
    { type: 'file', file: { file_id: 'file-doc' } },
  ])
})

t.test('function calls and their outputs round-trip through a Response', async (t) => {
  // Turn 1: the model answers with text and two tool calls.
  const body1 = { model: 'm', input: 'Weather in Paris and Rome?', tools: [{ type: 'function', name: 'weather', parameters: { type: 'object' } }] }
  const turn1 = inputItems(body1)
  const reply = chatToResponse(completion({
    content: 'Checking both.',
    tool_calls: [
      { id: 'call_a', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
      { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
    ],
  }, 'tool_calls'), opts(body1))
  const history = [...turn1, ...outputItems(reply)]
  t.same(history.map((i) => i.type), ['message', 'message', 'function_call', 'function_call'])

  // Turn 2: the client sends the tool outputs (one as text parts).
  const body2 = {
    model: 'm', previous_response_id: reply.id,
    input: [
      { type: 'function_call_output', call_id: 'call_a', output: '18C' },
      { type: 'function_call_output', call_id: 'call_b', output: [{ type: 'input_text', text: '2' }, { type: 'input_text', text: '4C' }] },
    ],
  }
  const req = responsesToChat(body2, history, inputItems(body2))
  t.same(req.messages, [
    { role: 'user', content: 'Weather in Paris and Rome?' },
    {
      role: 'assistant', content: 'Checking both.',
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
        { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_a', content: '18C' },
    { role: 'tool', tool_call_id: 'call_b', content: '24C' },
  ], 'consecutive calls are one assistant message, merged with its text')
  t.notOk('tools' in req, 'tools are per request: not inherited either')
})

t.test('calls without text, and text that follows the calls, still make one assistant message', async (t) => {
  const calls = [
    { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
    { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"x":1}' },
  ]
  t.same(chat({ model: 'm', input: [{ role: 'user', content: 'go' }, ...calls] }).messages[1], {
    role: 'assistant', content: null,
    tool_calls: [
      { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } },
      { id: 'c2', type: 'function', function: { name: 'g', arguments: '{"x":1}' } },
    ],
  })
  const after = chat({ model: 'm', input: [{ role: 'user', content: 'go' }, ...calls, { role: 'assistant', content: 'Calling.' }] }).messages
  t.equal(after.length, 2)
  t.equal(after[1]!.content, 'Calling.')
  t.equal(after[1]!.tool_calls!.length, 2)
  const reasoning = { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'hmm' }] }
  t.same(chat({ model: 'm', input: [reasoning, { role: 'user', content: 'x' }] }).messages, [{ role: 'user', content: 'x' }], 'reasoning items are accepted and skipped')
})

t.test('history comes before this turn; instructions are not inherited', async (t) => {
  const body1 = { model: 'm', instructions: 'Answer in French.', input: 'Hi' }
  const r1 = chatToResponse(completion({ content: 'Salut' }), opts(body1))
  const history = [...inputItems(body1), ...outputItems(r1)]
  t.equal(r1.instructions, 'Answer in French.', 'echoed on the response')

  const body2 = { model: 'm', instructions: 'Answer in German.', input: 'Again' }
  t.same(responsesToChat(body2, history, inputItems(body2)).messages, [
    { role: 'system', content: 'Answer in German.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Salut' },
    { role: 'user', content: 'Again' },
  ])
  const body3 = { model: 'm', input: 'Third' }
  const m3 = responsesToChat(body3, history, inputItems(body3)).messages
  t.notOk(m3.some((m) => m.role === 'system'), 'no instructions this turn: no system message, none from turn 1')
  t.same(m3.map((m) => m.content), ['Hi', 'Salut', 'Third'])
})

t.test('tools and tool_choice', async (t) => {
  const params = { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }
  const req = chat({
    model: 'm', input: 'x', parallel_tool_calls: false, tool_choice: { type: 'function', name: 'search' },
    tools: [
      { type: 'function', name: 'search', description: 'Search docs', parameters: params, strict: true },
      { type: 'function', name: 'bare' },
      { type: 'web_search_preview', search_context_size: 'low', user_location: { type: 'approximate', city: 'Paris', country: 'FR' } },
    ],
  })
  t.same(req.tools, [
    { type: 'function', function: { name: 'search', description: 'Search docs', parameters: params, strict: true } },
    { type: 'function', function: { name: 'bare' } },
  ])
  t.same(req.web_search_options, { search_context_size: 'low', user_location: { type: 'approximate', approximate: { city: 'Paris', country: 'FR' } } })
  t.same(req.tool_choice, { type: 'function', function: { name: 'search' } })
  t.equal(req.parallel_tool_calls, false)

  t.same(chat({ model: 'm', input: 'x', tools: [{ type: 'web_search' }] }).web_search_options, {}, 'web_search -> {}')
  t.notOk('tools' in chat({ model: 'm', input: 'x', tools: [{ type: 'web_search' }] }), 'no function tools: no chat tools')
  t.notOk('parallel_tool_calls' in chat({ model: 'm', input: 'x', parallel_tool_calls: true }), 'parallel_tool_calls needs tools on chat')
  for (const mode of ['auto', 'none', 'required']) t.equal(chat({ model: 'm', input: 'x', tool_choice: mode }).tool_choice, mode)
})

t.test('text.format, sampling and the other mapped fields', async (t) => {
  const schema = { type: 'object', properties: { a: { type: 'number' } }, required: ['a'], additionalProperties: false }
  t.same(chat({ model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'out', schema, strict: true, description: 'd' } } }).response_format,
    { type: 'json_schema', json_schema: { name: 'out', schema, strict: true, description: 'd' } })
  t.same(chat({ model: 'm', input: 'x', text: { format: { type: 'json_object' } } }).response_format, { type: 'json_object' })
  t.notOk('response_format' in chat({ model: 'm', input: 'x', text: { format: { type: 'text' } } }), 'text -> no response_format')

  const req = chat({
    model: 'gpt-x', input: 'x', stream: true, temperature: 0.2, top_p: 0.9, max_output_tokens: 256, user: 'u1',
    reasoning: { effort: 'high', summary: 'auto' }, text: { verbosity: 'low' },
    metadata: { k: 'v' }, store: false, previous_response_id: 'resp_x', include: ['reasoning.encrypted_content'],
    truncation: 'auto', background: false, prompt_cache_key: 'pk', service_tier: 'flex',
  })
  t.same(req, {
    model: 'gpt-x', messages: [{ role: 'user', content: 'x' }], stream: true, temperature: 0.2, top_p: 0.9, max_tokens: 256,
    user: 'u1', reasoning_effort: 'high', verbosity: 'low',
  }, 'mapped fields only: no metadata, store, previous_response_id, include, truncation, background, cache key, tier')
  t.equal(chat({ model: 'm', input: 'x', user: 'u1', safety_identifier: 's1' }).user, 's1', 'safety_identifier wins over user')
})

t.test('bad inputs are 400s naming the parameter', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string, string]> = [
    ['no model', { input: 'x' }, 'GW_ERR_VALIDATION', 'model'],
    ['no input', { model: 'm' }, 'GW_ERR_VALIDATION', 'input'],
    ['input a number', { model: 'm', input: 3 }, 'GW_ERR_VALIDATION', 'input'],
    ['item not an object', { model: 'm', input: ['x'] }, 'GW_ERR_VALIDATION', 'input.0'],
    ['bad role', { model: 'm', input: [{ role: 'tool', content: 'x' }] }, 'GW_ERR_VALIDATION', 'input.0.role'],
    ['content a number', { model: 'm', input: [{ role: 'user', content: 'ok' }, { role: 'user', content: 5 }] }, 'GW_ERR_VALIDATION', 'input.1.content'],
    ['text part without text', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_text', text: 'a' }, { type: 'input_text' }] }] }, 'GW_ERR_VALIDATION', 'input.0.content.1.text'],
    ['image without source', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', detail: 'auto' }] }] }, 'GW_ERR_VALIDATION', 'input.0.content.0'],
    ['file by URL', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', file_url: 'https://x/a.pdf' }] }] }, 'GW_ERR_UNSUPPORTED_PARAM', 'input.0.content.0.file_url'],
    ['audio part', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'GW_ERR_UNSUPPORTED_PARAM', 'input.0.content.0.type'],
    ['refusal on a user turn', { model: 'm', input: [{ role: 'user', content: [{ type: 'refusal', refusal: 'no' }] }] }, 'GW_ERR_UNSUPPORTED_PARAM', 'input.0.content.0.type'],
    ['call without call_id', { model: 'm', input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'GW_ERR_VALIDATION', 'input.0.call_id'],
    ['call without arguments', { model: 'm', input: [{ type: 'function_call', call_id: 'c', name: 'f' }] }, 'GW_ERR_VALIDATION', 'input.0.arguments'],
    ['output without output', { model: 'm', input: [{ type: 'function_call_output', call_id: 'c' }] }, 'GW_ERR_VALIDATION', 'input.0.output'],
    ['item_reference', { model: 'm', input: ['a', 'b', 'c'].map((text) => ({ role: 'user', content: text })).concat([{ type: 'item_reference', id: 'msg_1' } as never]) }, 'GW_ERR_UNSUPPORTED_PARAM', 'input.3'],
    ['unknown item type', { model: 'm', input: [{ type: 'computer_call_output', call_id: 'c' }] }, 'GW_ERR_UNSUPPORTED_PARAM', 'input.0.type'],
    ['file_search tool', { model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }, { type: 'file_search', vector_store_ids: [] }] }, 'GW_ERR_UNSUPPORTED_PARAM', 'tools.1'],
    ['mcp tool without server_label', { model: 'm', input: 'x', tools: [{ type: 'mcp', server_url: 'litellm_proxy' }] }, 'GW_ERR_VALIDATION', 'tools.0.server_label'],
    ['mcp tool with a bad require_approval', { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 's', require_approval: 'sometimes' }] }, 'GW_ERR_VALIDATION', 'tools.0.require_approval'],
    ['function tool without name', { model: 'm', input: 'x', tools: [{ type: 'function' }] }, 'GW_ERR_VALIDATION', 'tools.0.name'],
    ['tools not an array', { model: 'm', input: 'x', tools: {} }, 'GW_ERR_VALIDATION', 'tools'],
    ['tool_choice unknown string', { model: 'm', input: 'x', tool_choice: 'sometimes' }, 'GW_ERR_VALIDATION', 'tool_choice'],
    ['tool_choice hosted tool', { model: 'm', input: 'x', tool_choice: { type: 'file_search' } }, 'GW_ERR_UNSUPPORTED_PARAM', 'tool_choice'],
    ['json_schema without schema', { model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'n' } } }, 'GW_ERR_VALIDATION', 'text.format.schema'],
    ['json_schema without name', { model: 'm', input: 'x', text: { format: { type: 'json_schema', schema: {} } } }, 'GW_ERR_VALIDATION', 'text.format.name'],
    ['unknown format', { model: 'm', input: 'x', text: { format: { type: 'yaml' } } }, 'GW_ERR_VALIDATION', 'text.format.type'],
    ['max_output_tokens zero', { model: 'm', input: 'x', max_output_tokens: 0 }, 'GW_ERR_VALIDATION', 'max_output_tokens'],
    ['temperature a string', { model: 'm', input: 'x', temperature: 'hot' }, 'GW_ERR_VALIDATION', 'temperature'],
    ['instructions an array', { model: 'm', input: 'x', instructions: ['a'] }, 'GW_ERR_VALIDATION', 'instructions'],
    ['stream a string', { model: 'm', input: 'x', stream: 'yes' }, 'GW_ERR_VALIDATION', 'stream'],
  ]
  for (const [name, body, code, param] of cases) {
    const e = thrown(() => inputItems(body))
    t.equal(e.status, 400, `${name}: 400`)
    t.equal(e.code, code, `${name}: ${code}`)
    t.equal(e.param, param, `${name}: param ${param}`)
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Reply side

t.test('chatToResponse: text, reasoning and tool calls, valid against the spec', async (t) => {
  const request = {
    model: 'my-model', input: 'x', instructions: 'Be brief.', temperature: 0.5, metadata: { team: 'a' }, user: 'u',
    tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }], text: { format: { type: 'json_object' } },
  }
  const o = opts(request)
  const r = chatToResponse(completion({
    content: 'Hello', reasoning_content: 'Thinking it over',
    tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
  }, 'tool_calls', { ...USAGE, cache_creation_input_tokens: 2 }), o)
  assertSchema(t, 'Response', r)
  t.equal(r.id, o.id)
  t.match(r.id, /^resp_[0-9a-f]{48}$/)
  t.equal(r.object, 'response')
  t.equal(r.status, 'completed')
  t.equal(r.created_at, CREATED)
  t.equal(r.completed_at, NOW_MS / 1000)
  t.equal(r.model, 'my-model', 'the name the client asked for')
  const out = r.output as Array<Record<string, any>>
  t.same(out.map((i) => i.type), ['reasoning', 'message', 'function_call'])
  t.match(out[0], { id: /^rs_/, summary: [{ type: 'summary_text', text: 'Thinking it over' }] })
  t.match(out[1], { id: /^msg_/, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello', annotations: [], logprobs: [] }] })
  t.match(out[2], { id: /^fc_/, call_id: 'call_1', name: 'f', arguments: '{"a":1}', status: 'completed' })
  t.same(r.usage, {
    input_tokens: 20, input_tokens_details: { cached_tokens: 4, cache_write_tokens: 2 },
    output_tokens: 7, output_tokens_details: { reasoning_tokens: 3 }, total_tokens: 27,
  })
  t.match(r, {
    instructions: 'Be brief.', temperature: 0.5, top_p: 1, metadata: { team: 'a' }, user: 'u', tool_choice: 'auto',
    parallel_tool_calls: true, store: true, previous_response_id: null, text: { format: { type: 'json_object' } },
    tools: [{ type: 'function', name: 'f', description: null, parameters: { type: 'object' }, strict: true }],
    error: null, incomplete_details: null,
  })
})

t.test('chatToResponse: length and content_filter are incomplete; no text means no message', async (t) => {
  const cut = chatToResponse(completion({ content: 'Once upon a' }, 'length', USAGE), opts({ model: 'm', input: 'x', max_output_tokens: 16 }))
  assertSchema(t, 'Response', cut)
  t.equal(cut.status, 'incomplete')
  t.same(cut.incomplete_details, { reason: 'max_output_tokens' })
  t.equal(cut.completed_at, null, 'completed_at only on completed responses')
  t.equal(cut.max_output_tokens, 16)
  t.equal((cut.output as any)[0].status, 'incomplete', 'the cut message is incomplete')

  const filtered = chatToResponse(completion({ content: null }, 'content_filter'), opts({ model: 'm', input: 'x' }))
  assertSchema(t, 'Response', filtered)
  t.same(filtered.incomplete_details, { reason: 'content_filter' })
  t.same(filtered.output, [], 'no text, no calls: empty output')
  t.notOk('usage' in filtered, 'no usage reported: none invented')

  const refused = chatToResponse(completion({ content: null, refusal: 'I cannot help with that.' }), opts({ model: 'm', input: 'x' }))
  assertSchema(t, 'Response', refused)
  t.same((refused.output as any)[0].content, [{ type: 'refusal', refusal: 'I cannot help with that.' }])
})

// ---------------------------------------------------------------------------------------------------------------
// Streaming

const EVENT_SCHEMAS: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.completed': 'ResponseCompletedEvent',
  'response.incomplete': 'ResponseIncompleteEvent',
  'response.failed': 'ResponseFailedEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.refusal.delta': 'ResponseRefusalDeltaEvent',
  'response.refusal.done': 'ResponseRefusalDoneEvent',
  'response.function_call_arguments.delta': 'ResponseFunctionCallArgumentsDeltaEvent',
  'response.function_call_arguments.done': 'ResponseFunctionCallArgumentsDoneEvent',
  'response.reasoning_summary_part.added': 'ResponseReasoningSummaryPartAddedEvent',
  'response.reasoning_summary_part.done': 'ResponseReasoningSummaryPartDoneEvent',
  'response.reasoning_summary_text.delta': 'ResponseReasoningSummaryTextDeltaEvent',
  'response.reasoning_summary_text.done': 'ResponseReasoningSummaryTextDoneEvent',
}

type Ev = Record<string, any>

/** Parse the writer's SSE text; check each event's name, schema and sequence number. */
function events(t: Test, sse: string): Ev[] {
  const p = new SseParser()
  const parsed = [...p.push(sse), ...p.end()]
  const out: Ev[] = []
  for (const e of parsed) {
    const data = JSON.parse(e.data) as Ev
    t.equal(e.event, data.type, `event line names ${data.type}`)
    const schema = EVENT_SCHEMAS[data.type]
    if (!schema) t.fail(`unexpected event type ${data.type}`)
    else assertSchema(t, schema, data, `${data.type} #${data.sequence_number} is a valid ${schema}`)
    assertSchema(t, 'ResponseStreamEvent', data, `${data.type} is a ResponseStreamEvent`)
    out.push(data)
  }
  t.same(out.map((e) => e.sequence_number), out.map((_, i) => i), 'sequence numbers count up from 0')
  return out
}

function chunk(delta: Record<string, unknown>, finish: ChatChunk['choices'][number]['finish_reason'] = null): ChatChunk {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: CREATED, model: 'up-model', choices: [{ index: 0, delta, finish_reason: finish }] }
}
function usageChunk(u: Usage): ChatChunk {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: CREATED, model: 'up-model', choices: [], usage: u }
}

/** Run chunks through a writer: the SSE text and the final Response. */
function stream(o: ResponseOptions, chunks: ChatChunk[], usage: Usage | null = null): { sse: string; response: Record<string, unknown> } {
  const w = new ResponsesStreamWriter(o)
  let sse = w.start()
  for (const c of chunks) sse += w.chunk(c)
  const end = w.end(usage)
  return { sse: sse + end.text, response: end.response }
}

/** Item ids are random per call: replace them with their position so two translations compare. */
function withoutItemIds(r: Record<string, unknown>): Record<string, unknown> {
  return { ...r, output: (r.output as Ev[]).map((item, i) => ({ ...item, id: `item_${i}` })) }
}

const TOOL_REPLY: Record<string, unknown> = {
  content: 'Let me check.', reasoning_content: 'The user wants weather.',
  tool_calls: [
    { id: 'call_p', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
    { id: 'call_r', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
  ],
}
/** TOOL_REPLY as an upstream streams it: small pieces, argument text split across deltas. */
const TOOL_CHUNKS: ChatChunk[] = [
  chunk({ role: 'assistant', content: '' }),
  chunk({ reasoning_content: 'The user ' }),
  chunk({ reasoning_content: 'wants weather.' }),
  chunk({ content: 'Let me ' }),
  chunk({ content: 'check.' }),
  chunk({ tool_calls: [{ index: 0, id: 'call_p', type: 'function', function: { name: 'weather', arguments: '' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
  chunk({ tool_calls: [{ index: 1, id: 'call_r', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } }] }),
  chunk({}, 'tool_calls'),
  usageChunk(USAGE),
]

t.test('stream: text, reasoning and tool calls; every event valid; replay equals chatToResponse', async (t) => {
  const request = { model: 'my-model', input: 'x', stream: true, tools: [{ type: 'function', name: 'weather', parameters: { type: 'object' } }] }
  const o = opts(request)
  const { sse, response } = stream(o, TOOL_CHUNKS)
  const evs = events(t, sse)
  t.same(evs.map((e) => e.type), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.reasoning_summary_part.added',
    'response.reasoning_summary_text.delta', 'response.reasoning_summary_text.delta',
    'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta',
    'response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.delta',
    'response.output_item.added', 'response.function_call_arguments.delta',
    'response.reasoning_summary_text.done', 'response.reasoning_summary_part.done', 'response.output_item.done',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.function_call_arguments.done', 'response.output_item.done',
    'response.function_call_arguments.done', 'response.output_item.done',
    'response.completed',
  ])
  t.equal(evs[0]!.response.status, 'in_progress')
  t.same(evs[0]!.response.output, [])
  const textDeltas = evs.filter((e) => e.type === 'response.output_text.delta')
  t.same(textDeltas.map((e) => [e.delta, e.output_index, e.content_index]), [['Let me ', 1, 0], ['check.', 1, 0]])
  const argsDone = evs.filter((e) => e.type === 'response.function_call_arguments.done')
  t.same(argsDone.map((e) => [e.name, e.arguments, e.output_index]), [['weather', '{"city":"Paris"}', 2], ['weather', '{"city":"Rome"}', 3]])
  const completed = evs[evs.length - 1]!
  t.same(completed.response, response, 'response.completed carries the returned Response')
  t.equal(response.status, 'completed')
  t.same((response.usage as Ev).input_tokens, 20, 'usage from the stream usage chunk')

  const plain = chatToResponse(completion(TOOL_REPLY, 'tool_calls', USAGE), o)
  t.same(withoutItemIds(response), withoutItemIds(plain), 'the stream ends with the Response a plain call returns')
  // Item ids agree between the added/done events and the final output.
  const added = evs.filter((e) => e.type === 'response.output_item.added').map((e) => e.item.id)
  t.same(added, (response.output as Ev[]).map((i) => i.id))
})

t.test('stream: cut by length ends with response.incomplete; end() usage wins over the chunk', async (t) => {
  const o = opts({ model: 'm', input: 'x', max_output_tokens: 16 })
  const late: Usage = { prompt_tokens: 5, completion_tokens: 16, total_tokens: 21 }
  const { sse, response } = stream(o, [chunk({ role: 'assistant', content: 'Once upon' }), chunk({ content: ' a time' }, 'length'), usageChunk(USAGE)], late)
  const evs = events(t, sse)
  const last = evs[evs.length - 1]!
  t.equal(last.type, 'response.incomplete')
  t.same(last.response.incomplete_details, { reason: 'max_output_tokens' })
  t.equal((response.usage as Ev).output_tokens, 16)
  t.equal(evs.find((e) => e.type === 'response.output_item.done')!.item.status, 'incomplete')
  t.same(withoutItemIds(response), withoutItemIds(chatToResponse(completion({ content: 'Once upon a time' }, 'length', late), o)))
})

t.test('stream: a refusal, and a call whose id arrives missing', async (t) => {
  const o = opts({ model: 'm', input: 'x' })
  const refusal = stream(o, [chunk({ role: 'assistant', refusal: 'I cannot ' }), chunk({ refusal: 'help.' }), chunk({}, 'stop')])
  const evs = events(t, refusal.sse)
  t.ok(evs.some((e) => e.type === 'response.refusal.done' && e.refusal === 'I cannot help.'))
  t.same((refusal.response.output as Ev[])[0]!.content, [{ type: 'refusal', refusal: 'I cannot help.' }])
  assertSchema(t, 'Response', refusal.response)

  const noId = stream(o, [chunk({ tool_calls: [{ index: 0, function: { name: 'f', arguments: '{}' } }] }), chunk({}, 'tool_calls')])
  events(t, noId.sse)
  t.match((noId.response.output as Ev[])[0], { type: 'function_call', call_id: /^call_/, name: 'f', arguments: '{}' })
})

t.test('stream: an empty reply and an upstream failure', async (t) => {
  const o = opts({ model: 'm', input: 'x' })
  const empty = stream(o, [chunk({ role: 'assistant', content: '' }), chunk({}, 'stop')])
  t.same(events(t, empty.sse).map((e) => e.type), ['response.created', 'response.in_progress', 'response.completed'])
  t.same(empty.response.output, [])

  const w = new ResponsesStreamWriter(o)
  let sse = w.start() + w.chunk(chunk({ content: 'Partial' }))
  sse += w.error({ status: 502, message: 'upstream went away' })
  t.equal(w.chunk(chunk({ content: 'late' })), '', 'nothing after the stream failed')
  const evs = events(t, sse)
  const failed = evs[evs.length - 1]!
  t.equal(failed.type, 'response.failed')
  t.equal(failed.response.status, 'failed')
  t.same(failed.response.error, { code: 'server_error', message: 'upstream went away' })
  t.equal(failed.response.output[0].content[0].text, 'Partial', 'what was streamed is kept')
  const limited = new ResponsesStreamWriter(o)
  const rl = events(t, limited.start() + limited.error({ status: 429, message: 'slow down' }))
  t.equal(rl[rl.length - 1]!.response.error.code, 'rate_limit_exceeded')
})

// ---------------------------------------------------------------------------------------------------------------
// The official SDK reads what the translators produce

/** An OpenAI client whose fetch answers every call with `body` (no server involved) and records the request. */
function sdkAnswering(body: string, contentType: string): { client: OpenAI; sent: Array<Record<string, unknown>> } {
  const sent: Array<Record<string, unknown>> = []
  const client = new OpenAI({
    apiKey: 'sk-test', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0,
    fetch: async (_url: unknown, init?: { body?: unknown }) => {
      sent.push(JSON.parse(String(init?.body)))
      return new Response(body, { status: 200, headers: { 'content-type': contentType } })
    },
  })
  return { client, sent }
}

t.test('the openai SDK streams the writer output to the same final response', async (t) => {
  const request = { model: 'my-model', input: 'Weather?', tools: [{ type: 'function' as const, name: 'weather', parameters: { type: 'object' }, strict: false }] }
  const { sse, response } = stream(opts(request), TOOL_CHUNKS)
  const { client, sent } = sdkAnswering(sse, 'text/event-stream')
  const s = client.responses.stream(request)
  const deltas: string[] = []
  s.on('response.output_text.delta', (e) => deltas.push(e.delta))
  const final = await s.finalResponse()
  t.equal(sent[0]!.stream, true)
  t.same(deltas, ['Let me ', 'check.'])
  t.equal(final.output_text, 'Let me check.')
  t.equal(final.id, response.id)
  t.equal(final.status, 'completed')
  const calls = final.output.filter((i) => i.type === 'function_call')
  t.same(calls.map((c) => [c.call_id, c.arguments]), [['call_p', '{"city":"Paris"}'], ['call_r', '{"city":"Rome"}']])
  const reasoning = final.output.find((i) => i.type === 'reasoning')
  t.same(reasoning?.type === 'reasoning' ? reasoning.summary : null, [{ type: 'summary_text', text: 'The user wants weather.' }])
  t.equal(final.usage?.total_tokens, 27)
})

t.test('the openai SDK reads chatToResponse, including structured output parsing', async (t) => {
  const request = { model: 'm', input: 'x', text: { format: { type: 'json_schema' as const, name: 'o', schema: { type: 'object', properties: { a: { type: 'number' } } }, strict: true } } }
  const body = chatToResponse(completion({ content: '{"a":1}' }, 'stop', USAGE), opts(request))
  const { client } = sdkAnswering(JSON.stringify(body), 'application/json')
  const r = await client.responses.create(request)
  t.equal(r.output_text, '{"a":1}')
  t.equal(r.usage?.input_tokens_details.cached_tokens, 4)
  const parsed = await client.responses.parse(request)
  t.same(parsed.output_parsed, { a: 1 })
})
