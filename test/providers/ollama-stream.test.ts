/**
 * Ollama streams: the NDJSON decoder across arbitrary chunk boundaries, and the translation of the recorded streams
 * (../shared/data/ollama/examples/*.ndjson) into OpenAI chunks, one upstream line at a time, each chunk checked
 * against OpenAI's spec: role chunk, content and reasoning deltas, whole tool calls as indexed deltas, finish reasons,
 * usage from the final line, and the failures (error line mid-stream, cut stream, bad JSON).
 */
import t from 'tap'
import type { ChatChunk, Usage } from '../../core/openai/types.js'
import { ollama_chat } from '../../providers/ollama/index.js'
import { NdjsonDecoder } from '../../providers/ollama/stream.js'
import type { SseEvent, Target } from '../../providers/types.js'
import { assertSchema } from '../helpers/openapi.js'
import { fixtureText, meta, streamLines } from './ollama-fixtures.js'

/** Feed `text` to a fresh decoder in the given pieces; the events' data. */
function decode(pieces: Uint8Array[]): string[] {
  const d = new NdjsonDecoder()
  const out: SseEvent[] = []
  for (const p of pieces) out.push(...d.push(p))
  out.push(...d.end())
  return out.map((e) => e.data)
}

t.test('NDJSON decoder: lines across arbitrary chunk boundaries', async (t) => {
  const text = fixtureText('chat.tools.stream.response.ndjson') + '{"message":{"content":"caf\u00e9 \u2615"},"done":false}\r\n\n'
  const bytes = new TextEncoder().encode(text)
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  t.equal(lines.length, 3)
  t.same(decode([bytes]), lines, 'one piece')
  let ok = true
  for (let i = 0; i <= bytes.length; i++) {
    const got = decode([bytes.subarray(0, i), bytes.subarray(i)])
    if (JSON.stringify(got) !== JSON.stringify(lines)) {
      ok = false
      t.fail(`split at byte ${i}`, { got })
      break
    }
  }
  t.ok(ok, `every two-piece split of ${bytes.length} bytes (UTF-8 characters cut included)`)
  t.same(decode([...bytes].map((b) => Uint8Array.of(b))), lines, 'byte by byte')
  t.same(decode([new TextEncoder().encode('{"a":1}\n{"b":2}')]), ['{"a":1}', '{"b":2}'], 'a last line without its newline')
  t.same(decode([]), [], 'nothing in, nothing out')
})

/** Translate the events of an NDJSON text chunk by chunk. */
function translate(text: string, over: Partial<Target> = {}): { perEvent: ChatChunk[][]; end: { chunks: ChatChunk[]; usage: Usage | null } } {
  const tr = ollama_chat.chat!.stream!({ model: 'llama', messages: [] }, meta(over))
  const d = ollama_chat.chat!.decoder!()
  const perEvent: ChatChunk[][] = []
  for (const e of [...d.push(new TextEncoder().encode(text)), ...d.end()]) perEvent.push(tr.event(e))
  return { perEvent, end: tr.end() }
}

t.test('stream translation, chunk by chunk', async (t) => {
  const plain = translate(fixtureText('chat.stream.response.ndjson'))
  t.equal(plain.perEvent.length, 2, 'two recorded lines')
  t.same(plain.perEvent[0]!.map((c) => c.choices[0]!.delta), [{ role: 'assistant', content: '' }, { content: 'The' }], 'line 1: role chunk, then the content delta')
  t.same(plain.perEvent[1]!.map((c) => [c.choices[0]!.delta, c.choices[0]!.finish_reason]), [[{}, 'stop']], 'line 2 (done): the finish chunk')
  t.same(plain.end, { chunks: [], usage: { prompt_tokens: 26, completion_tokens: 282, total_tokens: 308 } }, 'usage from the final line')
  for (const c of plain.perEvent.flat()) {
    t.match(c, { id: 'chatcmpl-req-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'llama3.2' })
    assertSchema(t, 'CreateChatCompletionStreamResponse', c)
  }

  const tools = translate(fixtureText('chat.tools.stream.response.ndjson'))
  const first = tools.perEvent[0]!
  t.equal(first.length, 2, 'line 1: role chunk and one tool-call delta (the empty content sends nothing)')
  const tc = first[1]!.choices[0]!.delta.tool_calls!
  t.equal(tc.length, 1)
  t.match(tc[0], { index: 0, id: /^call_/, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tokyo"}' } })
  t.equal(tools.perEvent[1]![0]!.choices[0]!.finish_reason, 'tool_calls', 'a turn that called tools finishes with tool_calls')
  t.same(tools.end.usage, { prompt_tokens: 169, completion_tokens: 15, total_tokens: 184 })
  for (const c of tools.perEvent.flat()) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  const lines = (objs: unknown[]) => objs.map((o) => JSON.stringify(o)).join('\n') + '\n'
  const two = translate(lines([
    { message: { role: 'assistant', content: '', thinking: 'Two cities' }, done: false },
    { message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }, { function: { name: 'get_weather', arguments: { city: 'Rome' } } }] }, done: false },
    { message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' },
  ]))
  const deltas = two.perEvent.flat().map((c) => c.choices[0]!.delta)
  t.same(deltas[1], { reasoning_content: 'Two cities' }, 'thinking streams as reasoning_content')
  t.same(deltas.slice(2, 4).map((d) => [d.tool_calls![0]!.index, d.tool_calls![0]!.function!.arguments]), [[0, '{"city":"Paris"}'], [1, '{"city":"Rome"}']], 'one delta per tool call, indexed')
  t.equal(two.end.usage, null, 'no counts, no usage: the core counts it')

  const cut = translate(lines([{ message: { content: 'a b c' }, done: false }, { message: { content: '' }, done: true, done_reason: 'length', prompt_eval_count: 3, eval_count: 3 }]))
  t.equal(cut.perEvent[1]![0]!.choices[0]!.finish_reason, 'length')
})

t.test('stream failures', async (t) => {
  const tr = () => ollama_chat.chat!.stream!({ model: 'llama', messages: [] }, meta())
  const s = tr()
  s.event({ event: undefined, data: '{"message":{"content":"The"},"done":false}' })
  t.throws(() => s.event({ event: undefined, data: '{"error":"an error was encountered while running the model"}' }),
    { code: 'GW_ERR_UPSTREAM_SERVER', status: 500, message: 'an error was encountered while running the model' }, 'an error line mid-stream')
  t.throws(() => tr().event({ event: undefined, data: '{"error":"prompt too long; exceeded max context length by 12 tokens"}' }),
    { code: 'GW_ERR_CONTEXT_WINDOW', status: 400 }, 'a context error mid-stream')
  t.throws(() => tr().event({ event: undefined, data: 'not json' }), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
  const early = tr()
  early.event({ event: undefined, data: '{"message":{"content":"The"},"done":false}' })
  t.throws(() => early.end(), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', message: /done/ }, 'a stream cut before its final line')
})

t.test('the recorded stream fixtures really are what the translator was given', async (t) => {
  // Guards the fixtures themselves: a done line with counts last, content lines before it.
  for (const name of ['chat.stream.response.ndjson', 'chat.tools.stream.response.ndjson']) {
    const lines = streamLines(name)
    t.equal(lines.at(-1).done, true, `${name}: ends with done`)
    t.type(lines.at(-1).eval_count, 'number')
  }
})
