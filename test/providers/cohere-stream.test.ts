/**
 * The Cohere stream translator, chunk by chunk, over the recorded v2 event lists in ../shared/data/cohere/. The
 * events go through the core's SseParser as the SSE bytes Cohere sends, cut into 7-byte pieces so events arrive
 * split mid-line as they do on a socket; every chunk out is checked against OpenAI's chunk schema.
 */
import t from 'tap'
import { SseParser } from '../../core/sse.js'
import { cohere } from '../../providers/cohere/index.js'
import type { ChatChunk, ChatRequest, Usage } from '../../core/openai/types.js'
import type { SseEvent } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'
import { fixture, meta, sseText, type ChatFixture } from './cohere-fixtures.js'

const REQ = { model: 'm', messages: [] } as unknown as ChatRequest

function translate(events: NonNullable<ChatFixture['response']['stream']>): { chunks: ChatChunk[]; usage: Usage | null } {
  const tr = cohere.chat!.stream!(REQ, meta())
  const parser = new SseParser()
  const bytes = Buffer.from(sseText(events) + 'data: [DONE]\n\n')
  const chunks: ChatChunk[] = []
  for (let i = 0; i < bytes.length; i += 7) for (const ev of parser.push(bytes.subarray(i, i + 7))) chunks.push(...tr.event(ev))
  for (const ev of parser.end()) chunks.push(...tr.event(ev))
  const end = tr.end()
  chunks.push(...end.chunks)
  return { chunks, usage: end.usage }
}

/** Feed parsed events straight in (for hand-made event lists). */
function feed(datas: unknown[]): ChatChunk[] {
  const tr = cohere.chat!.stream!(REQ, meta())
  const out: ChatChunk[] = []
  for (const d of datas) out.push(...tr.event({ event: undefined, data: typeof d === 'string' ? d : JSON.stringify(d) } satisfies SseEvent))
  return out
}

t.test('text stream: role first, one content delta per Cohere delta, stop, usage from end()', async (t) => {
  const events = fixture('text.stream').response.stream!
  const { chunks, usage } = translate(events)
  const deltas = events.filter((e) => e.event === 'content-delta').map((e) => e.data.delta.message.content.text as string)
  t.equal(chunks.length, deltas.length + 2, 'role chunk + content deltas + finish chunk')
  t.same(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' })
  for (let i = 0; i < deltas.length; i++) t.same(chunks[i + 1]!.choices[0], { index: 0, delta: { content: deltas[i] }, finish_reason: null, logprobs: null }, `delta ${i}: ${JSON.stringify(deltas[i])}`)
  const last = chunks[chunks.length - 1]!
  t.same(last.choices[0], { index: 0, delta: {}, finish_reason: 'stop', logprobs: null })
  t.equal(chunks.map((c) => c.choices[0]!.delta.content ?? '').join(''), 'LLMs stand for Large Language Models, which are a type of neural network model specialized in processing and generating human language.')
  for (const c of chunks) {
    t.equal(c.id, '29f14a5a-11de-4cae-9800-25e4747408ea', 'id from message-start')
    t.match(c, { object: 'chat.completion.chunk', created: 1_700_000_000, model: 'command-a-03-2025' })
  }
  for (const c of chunks) if (!assertSchema(t, 'CreateChatCompletionStreamResponse', c)) break
  t.same(usage, { prompt_tokens: 71, completion_tokens: 26, total_tokens: 97 }, 'usage.tokens from message-end')
})

t.test('tool stream: tool_plan deltas, tool-call deltas with a running index, tool_calls finish', async (t) => {
  const events = fixture('tools.stream').response.stream!
  const { chunks, usage } = translate(events)
  t.same(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' })
  const plans = events.filter((e) => e.event === 'tool-plan-delta').map((e) => e.data.delta.message.tool_plan as string)
  for (let i = 0; i < plans.length; i++) {
    t.same(chunks[i + 1]!.choices[0]!.delta, { provider_specific_fields: { tool_plan: plans[i] } }, `plan delta ${i}`)
  }
  const toolChunks = chunks.filter((c) => c.choices[0]?.delta.tool_calls)
  t.same(toolChunks[0]!.choices[0]!.delta.tool_calls, [
    { index: 0, id: 'query_daily_sales_report_j3f0adww9pmr', type: 'function', function: { name: 'query_daily_sales_report', arguments: '' } },
  ], 'first delta of call 0: index, id, type, name')
  t.same(toolChunks[1]!.choices[0]!.delta.tool_calls, [{ index: 0, function: { arguments: '{"' } }], 'then argument fragments only')
  const second = toolChunks.findIndex((c) => c.choices[0]!.delta.tool_calls![0]!.index === 1)
  t.same(toolChunks[second]!.choices[0]!.delta.tool_calls, [
    { index: 1, id: 'query_product_catalog_c66nf11r6s8g', type: 'function', function: { name: 'query_product_catalog', arguments: '' } },
  ], 'first delta of call 1')
  // Reassemble as a client does.
  const args: string[] = []
  for (const c of toolChunks) for (const d of c.choices[0]!.delta.tool_calls!) args[d.index] = (args[d.index] ?? '') + (d.function?.arguments ?? '')
  t.same(args.map((a) => JSON.parse(a)), [{ day: '2023-09-29' }, { category: 'Electronics' }])
  t.equal(toolChunks.length, events.filter((e) => e.event === 'tool-call-start' || e.event === 'tool-call-delta').length, 'one chunk per tool event')
  t.equal(chunks[chunks.length - 1]!.choices[0]!.finish_reason, 'tool_calls')
  t.equal(chunks.length, 1 + plans.length + toolChunks.length + 1, 'nothing else: tool-call-end and the [DONE] terminator add no chunks')
  for (const c of chunks) if (!assertSchema(t, 'CreateChatCompletionStreamResponse', c)) break
  t.same(usage, { prompt_tokens: 1589, completion_tokens: 135, total_tokens: 1724 })
})

t.test('thinking content, Cohere indexes, citations and debug events', async (t) => {
  const chunks = feed([
    { type: 'message-start', id: 'm1', delta: { message: { role: 'assistant' } } },
    { type: 'content-start', index: 0, delta: { message: { content: { type: 'thinking', thinking: '' } } } },
    { type: 'content-delta', index: 0, delta: { message: { content: { thinking: 'Let me think.' } } } },
    { type: 'content-end', index: 0 },
    { type: 'content-start', index: 1, delta: { message: { content: { type: 'text', text: 'Hi' } } } },
    { type: 'citation-start', index: 0, delta: { message: { citations: { start: 0, end: 2 } } } },
    { type: 'citation-end', index: 0 },
    { type: 'debug', prompt: 'x' },
    { type: 'tool-call-start', index: 3, delta: { message: { tool_calls: { id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } } } } },
    { type: 'tool-call-delta', index: 3, delta: { message: { tool_calls: { function: { arguments: '' } } } } },
    { type: 'tool-call-end', index: 3 },
    { type: 'message-end', delta: { finish_reason: 'COMPLETE', usage: { billed_units: { input_tokens: 3, output_tokens: 4 }, cached_tokens: 2 } } },
  ])
  t.same(chunks.map((c) => c.choices[0]!.delta), [
    { role: 'assistant', content: '' },
    { reasoning_content: 'Let me think.' },
    { content: 'Hi' },
    { tool_calls: [{ index: 0, id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
    {},
  ], 'thinking -> reasoning_content, text from content-start, our index 0 for Cohere index 3, empty fragments skipped')
  t.equal(chunks[4]!.choices[0]!.finish_reason, 'tool_calls', 'a stream that called tools finishes with tool_calls')

  const tr = cohere.chat!.stream!(REQ, meta())
  tr.event({ event: 'message-end', data: JSON.stringify({ type: 'message-end', delta: { finish_reason: 'MAX_TOKENS', usage: { billed_units: { input_tokens: 3, output_tokens: 4 }, cached_tokens: 2 } } }) })
  t.same(tr.end().usage, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 2 } }, 'billed_units fallback, cached tokens')
  const noStart = feed([{ type: 'content-delta', index: 0, delta: { message: { content: { text: 'x' } } } }])
  t.same(noStart[0]!.choices[0]!.delta, { role: 'assistant', content: 'x' }, 'the role rides on the first chunk even without message-start')
  t.equal(noStart[0]!.id, 'chatcmpl-req-1')
  t.same(feed(['', '[DONE]']), [], 'keep-alives and the terminator are not chunks')
})

t.test('errors inside the stream throw mapped GatewayErrors', async (t) => {
  const start = { type: 'message-start', id: 'm', delta: { message: { role: 'assistant' } } }
  t.throws(() => feed([start, { type: 'message-end', delta: { finish_reason: 'ERROR', error: 'internal error while generating' } }]),
    { code: 'GW_ERR_UPSTREAM_SERVER', status: 500, message: 'internal error while generating' })
  t.throws(() => feed([start, { type: 'message-end', delta: { finish_reason: 'ERROR' } }]), { code: 'GW_ERR_UPSTREAM_SERVER', message: /finish_reason ERROR/ })
  t.throws(() => feed([start, { type: 'message-end', delta: { finish_reason: 'TIMEOUT' } }]), { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 408 })
  t.throws(() => feed([start, { message: 'blocked output: this generation may violate our usage policy' }]), { code: 'GW_ERR_CONTENT_POLICY', status: 400 })
  t.throws(() => feed([start, { type: 'error', message: 'too many tokens: total number of tokens in the prompt cannot exceed 4081' }]), { code: 'GW_ERR_CONTEXT_WINDOW' })
  t.throws(() => feed([start, '{not json']), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', status: 502 })
  t.throws(() => feed(['[1,2]']), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
})
