/**
 * ConverseStream: the binary event-stream decoder over the recorded `*.eventstream.bin` frames (split at every
 * possible place, several frames per push), then the translator chunk by chunk (role, content, tool-call deltas,
 * finish reasons, usage from end()), exception frames as mapped errors, and corrupt or cut streams.
 */
import t from 'tap'
import { EventStreamCodec } from '@smithy/eventstream-codec'
import { fromUtf8, toUtf8 } from '@smithy/util-utf8'
import { bedrock } from '../../providers/bedrock/index.js'
import type { ResponseMeta, SseEvent, Target } from '../../providers/types.js'
import type { ChatChunk, ChatRequest } from '../../core/openai/types.js'
import { GatewayError } from '../../core/errors.js'
import { bedrockShape, openaiSchema, readExample, readFrames } from './bedrock-fixtures.js'

const MODEL = 'us.anthropic.claude-3-5-sonnet-20241022-v2:0'
const tg = { id: 't', modelName: 'c', provider: 'bedrock', model: MODEL, timeoutMs: 1, streamTimeoutMs: 1, weight: 1, dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {} } as Target
const meta: ResponseMeta = { target: tg, requestId: 'r1', created: 1_700_000_000 }
const codec = new EventStreamCodec(toUtf8, fromUtf8)
const streamOutput = bedrockShape('ConverseStreamOutput')
const chunkSchema = openaiSchema('CreateChatCompletionStreamResponse')

/** A frame as Bedrock sends it. */
function frame(eventType: string, payload: unknown, messageType = 'event'): Uint8Array {
  const typeHeader = messageType === 'event' ? ':event-type' : ':exception-type'
  return codec.encode({
    headers: {
      [typeHeader]: { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: messageType },
    },
    body: fromUtf8(JSON.stringify(payload)),
  })
}

const concat = (parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)))

/** Feed `bytes` in pieces of `size` (0: all at once); collect events. */
function decode(bytes: Uint8Array, size = 0): SseEvent[] {
  const d = bedrock.chat!.decoder!()
  const out: SseEvent[] = []
  const step = size || bytes.length
  for (let i = 0; i < bytes.length; i += step) out.push(...d.push(bytes.subarray(i, i + step)))
  out.push(...d.end())
  return out
}

function translate(events: SseEvent[], req: Partial<ChatRequest> = {}) {
  const tr = bedrock.chat!.stream!(req as ChatRequest, meta)
  const chunks: ChatChunk[] = []
  for (const e of events) chunks.push(...tr.event(e))
  const end = tr.end()
  return { chunks: [...chunks, ...end.chunks], usage: end.usage }
}

for (const name of ['text', 'tool_use']) {
  t.test(`${name}: the binary frames decode to the recorded events, however the bytes are split`, async (t) => {
    const bytes = readFrames(`converse-stream.${name}.eventstream.bin`)
    const expected = (readExample(`converse-stream.${name}.events.json`) as Array<Record<string, unknown>>).map((e) => {
      const [event, payload] = Object.entries(e)[0]!
      return { event, payload }
    })
    for (const size of [0, 1, 2, 3, 7, 13, 64, 100, 333]) {
      const events = decode(bytes, size)
      t.same(events.map((e) => ({ event: e.event, payload: JSON.parse(e.data) })), expected, `pieces of ${size || 'all'} bytes`)
    }
    for (const e of decode(bytes)) t.ok(streamOutput({ [e.event!]: JSON.parse(e.data) }), `${e.event} is a ConverseStreamOutput member`)
  })
}

const base = { id: 'chatcmpl-r1', object: 'chat.completion.chunk', created: 1_700_000_000, model: MODEL }
const c = (delta: Record<string, unknown>, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })

t.test('text stream -> chunks, usage from end()', async (t) => {
  const { chunks, usage } = translate(decode(readFrames('converse-stream.text.eventstream.bin'), 5))
  t.same(chunks, [
    c({ role: 'assistant', content: '' }),
    c({ content: 'Hello' }),
    c({ content: ' there!' }),
    c({}, 'stop'),
  ])
  t.same(usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17, prompt_tokens_details: { cached_tokens: 0 } })
  for (const ch of chunks) t.ok(chunkSchema(ch), JSON.stringify(chunkSchema.errors))
})

t.test('tool_use stream -> tool-call deltas: id, type and name first, argument fragments after', async (t) => {
  const { chunks, usage } = translate(decode(readFrames('converse-stream.tool_use.eventstream.bin'), 11))
  t.same(chunks, [
    c({ role: 'assistant', content: '' }),
    c({ content: "I'll check the current" }),
    c({ content: ' weather in Paris for you.' }),
    c({ tool_calls: [{ index: 0, id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
    c({ tool_calls: [{ index: 0, function: { arguments: '{"locati' } }] }),
    c({ tool_calls: [{ index: 0, function: { arguments: 'on": "Paris"}' } }] }),
    c({}, 'tool_calls'),
  ])
  t.equal(usage?.prompt_tokens, 377)
  t.equal(usage?.completion_tokens, 65)
  for (const ch of chunks) t.ok(chunkSchema(ch), JSON.stringify(chunkSchema.errors))
})

t.test('two tool calls, reasoning deltas, cache usage, a padded payload', async (t) => {
  const bytes = concat([
    frame('messageStart', { role: 'assistant', p: 'abcdefgh' }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Two cities.' } } }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { signature: 'sig' } } }),
    frame('contentBlockStop', { contentBlockIndex: 0 }),
    frame('contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'a', name: 'get_weather' } } }),
    frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"location":"Paris"}' } } }),
    frame('contentBlockStart', { contentBlockIndex: 2, start: { toolUse: { toolUseId: 'b', name: 'get_weather' } } }),
    frame('contentBlockDelta', { contentBlockIndex: 2, delta: { toolUse: { input: '{"location":"Rome"}' } } }),
    frame('messageStop', { stopReason: 'tool_use' }),
    frame('metadata', { usage: { inputTokens: 5, outputTokens: 7, totalTokens: 62, cacheReadInputTokens: 50 }, metrics: { latencyMs: 9 } }),
  ])
  const { chunks, usage } = translate(decode(bytes, 9))
  t.same(chunks, [
    c({ role: 'assistant', content: '' }),
    c({ reasoning_content: 'Two cities.' }),
    c({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig' }] }),
    c({ tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
    c({ tool_calls: [{ index: 0, function: { arguments: '{"location":"Paris"}' } }] }),
    c({ tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
    c({ tool_calls: [{ index: 1, function: { arguments: '{"location":"Rome"}' } }] }),
    c({}, 'tool_calls'),
  ])
  t.same(usage, { prompt_tokens: 55, completion_tokens: 7, total_tokens: 62, prompt_tokens_details: { cached_tokens: 50 }, cache_read_input_tokens: 50 })
})

t.test('finish reasons; JSON mode streams the json_tool_call input as content', async (t) => {
  const stop = (reason: string) => translate(decode(concat([frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'x' } }), frame('messageStop', { stopReason: reason })]))).chunks.at(-1)!.choices[0]!.finish_reason
  t.equal(stop('end_turn'), 'stop')
  t.equal(stop('stop_sequence'), 'stop')
  t.equal(stop('max_tokens'), 'length')
  t.equal(stop('guardrail_intervened'), 'content_filter')
  t.equal(stop('content_filtered'), 'content_filter')
  const json = translate(decode(concat([
    frame('messageStart', { role: 'assistant' }),
    frame('contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'j', name: 'json_tool_call' } } }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: '{"a":' } } }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: '1}' } } }),
    frame('messageStop', { stopReason: 'tool_use' }),
  ])))
  t.same(json.chunks, [c({ role: 'assistant', content: '' }), c({ content: '{"a":' }), c({ content: '1}' }), c({}, 'stop')])
})

t.test('exception frames throw the mapped error, wherever the stream is cut', async (t) => {
  const recorded = readFrames('converse-stream.throttling-exception.eventstream.bin')
  for (const size of [0, 1, 50]) {
    t.throws(() => decode(recorded, size), { code: 'GW_ERR_UPSTREAM_RATE_LIMIT', status: 429, message: 'Too many requests, please wait before trying again.' })
  }
  const after = concat([frame('messageStart', { role: 'assistant' }), frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hi' } }), Buffer.from(recorded)])
  const d = bedrock.chat!.decoder!()
  // The content frames of the same read are handed out first; the exception follows on the next call.
  t.equal(d.push(after).length, 2, 'mid-stream: the content before the exception is delivered')
  t.throws(() => d.end(), { code: 'GW_ERR_UPSTREAM_RATE_LIMIT' }, 'mid-stream, after content: then the exception')
  const cases: Array<[string, unknown, string, number]> = [
    ['validationException', { message: 'Input is too long for requested model.' }, 'GW_ERR_CONTEXT_WINDOW', 400],
    ['modelStreamErrorException', { message: 'model failed', originalStatusCode: 500 }, 'GW_ERR_UPSTREAM_SERVER', 500],
    ['serviceUnavailableException', { message: 'later' }, 'GW_ERR_UPSTREAM_UNAVAILABLE', 503],
    ['internalServerException', { message: 'oops' }, 'GW_ERR_UPSTREAM_SERVER', 500],
  ]
  for (const [type, body, code, status] of cases) {
    t.throws(() => decode(frame(type, body, 'exception')), { code, status }, type)
  }
  const error = codec.encode({
    headers: {
      ':message-type': { type: 'string', value: 'error' },
      ':error-code': { type: 'string', value: 'ThrottlingException' },
      ':error-message': { type: 'string', value: 'slow down' },
    },
    body: new Uint8Array(0),
  })
  t.throws(() => decode(error), { code: 'GW_ERR_UPSTREAM_RATE_LIMIT', message: 'slow down' }, 'an `error` message type')
  const tr = bedrock.chat!.stream!({} as ChatRequest, meta)
  t.throws(() => tr.event({ event: 'throttlingException', data: '{"message":"x"}' }), { code: 'GW_ERR_UPSTREAM_RATE_LIMIT' }, 'the translator maps one too')
})

t.test('a corrupt or cut stream is a 502, not a silent end', async (t) => {
  const bytes = Buffer.from(readFrames('converse-stream.text.eventstream.bin'))
  const flipped = Buffer.from(bytes)
  flipped[40] = flipped[40]! ^ 0xff
  const e1 = t.throws(() => decode(flipped)) as unknown
  t.ok(e1 instanceof GatewayError && e1.code === 'GW_ERR_UPSTREAM_BAD_RESPONSE', 'CRC mismatch')
  t.throws(() => decode(bytes.subarray(0, bytes.length - 5)), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', message: /ended inside a frame/ })
  const huge = Buffer.alloc(16)
  huge.writeUInt32BE(0x7fffffff, 0)
  t.throws(() => decode(huge), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', message: /frame length/ })
  t.throws(() => translate([{ event: 'contentBlockDelta', data: '{not json' }]), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
})
