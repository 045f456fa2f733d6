/**
 * core/sse.ts SseParser: the incremental parser every upstream stream goes through. Upstreams cut their byte
 * streams anywhere (TCP segments, proxies re-chunking), so every case here is also fed in pieces.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { SseParser, sseData, SSE_DONE } from '../../core/sse.js'
import type { SseEvent } from '../../providers/types.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const RECORDED = path.resolve(here, '../../../shared/data/anthropic/stream.text.sse')

function parseWhole(text: string | Uint8Array): SseEvent[] {
  const p = new SseParser()
  return [...p.push(text), ...p.end()]
}

/** Feed in pieces of the given sizes (cycled), collecting events as they complete. */
function parseChunked(input: Uint8Array | string, sizes: number[]): SseEvent[] {
  const p = new SseParser()
  const out: SseEvent[] = []
  let i = 0
  let k = 0
  while (i < input.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]!)
    out.push(...p.push(input.slice(i, i + n)))
    i += n
  }
  out.push(...p.end())
  return out
}

/** Deterministic PRNG (mulberry32), so a failing chunking can be reproduced from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const plain = (events: SseEvent[]) => events.map((e) => ({ event: e.event, data: e.data, id: e.id }))

t.test('an event split across chunk boundaries is emitted once, when its blank line arrives', async (t) => {
  const p = new SseParser()
  t.same(p.push('data: {"a":'), [], 'nothing complete yet')
  t.same(p.push('1}\n'), [], 'one newline does not end an event')
  const evs = p.push('\ndata: second')
  t.equal(evs.length, 1)
  t.equal(evs[0]!.data, '{"a":1}')
  t.same(p.push('\n'), [])
  const last = p.push('\n')
  t.equal(last.length, 1)
  t.equal(last[0]!.data, 'second')
  t.same(p.end(), [], 'nothing left over')
})

t.test('every single split point of a two-event stream gives the same events', async (t) => {
  const text = 'event: a\ndata: one\n\nevent: b\ndata: two\n\n'
  const whole = plain(parseWhole(text))
  t.same(whole, [{ event: 'a', data: 'one', id: undefined }, { event: 'b', data: 'two', id: undefined }])
  for (let cut = 1; cut < text.length; cut++) {
    const p = new SseParser()
    const evs = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut)), ...p.end()]
    t.same(plain(evs), whole, `cut at ${cut}`)
  }
})

t.test('CRLF line endings, also when \\r and \\n arrive in different chunks', async (t) => {
  const text = 'event: ping\r\ndata: x\r\n\r\ndata: y\r\ndata: z\r\n\r\n'
  const expected = [{ event: 'ping', data: 'x', id: undefined }, { event: undefined, data: 'y\nz', id: undefined }]
  t.same(plain(parseWhole(text)), expected, 'whole')
  t.same(plain(parseChunked(text, [1])), expected, 'byte by byte')
  t.same(plain(parseChunked(text, [3, 1, 2])), expected, 'odd sizes')
  for (const e of parseWhole(text)) t.notMatch(e.data, /\r/, 'no stray CR in data')
})

t.test('multi-line data joins with \\n; one leading space after the colon is stripped, not more', async (t) => {
  const evs = parseWhole('data: line one\ndata:line two\ndata:  indented\n\n')
  t.equal(evs.length, 1)
  t.equal(evs[0]!.data, 'line one\nline two\n indented')
})

t.test('comments are ignored, and a comment-only block is no event', async (t) => {
  const evs = parseWhole(': keep-alive\n\n: another\ndata: real\n: trailing comment\n\n')
  t.equal(evs.length, 1)
  t.equal(evs[0]!.data, 'real')
  t.equal(evs[0]!.event, undefined)
})

t.test('event: and id: fields are kept; unknown fields are ignored', async (t) => {
  const evs = parseWhole('event: content_block_delta\nid: 42\nretry: 1000\nfoo: bar\ndata: {}\n\n')
  t.same(plain(evs), [{ event: 'content_block_delta', data: '{}', id: '42' }])
})

t.test('a block with fields but no data: line is not an event', async (t) => {
  t.same(parseWhole('event: ping\n\ndata: after\n\n').map((e) => e.data), ['after'])
})

t.test('data: with an empty value is an event with empty data', async (t) => {
  const evs = parseWhole('data:\n\n')
  t.equal(evs.length, 1)
  t.equal(evs[0]!.data, '')
})

t.test('the final event without a blank line after it comes out of end()', async (t) => {
  const p = new SseParser()
  t.same(p.push('data: first\n\ndata: [DONE]'), [{ event: undefined, data: 'first', id: undefined }])
  const tail = p.end()
  t.equal(tail.length, 1)
  t.equal(tail[0]!.data, '[DONE]')
  const p2 = new SseParser()
  p2.push('data: last\n')
  t.same(p2.end().map((e) => e.data), ['last'], 'single trailing newline too')
  const p3 = new SseParser()
  p3.push('data: done\n\n\n')
  t.same(p3.end(), [], 'trailing whitespace alone is no event')
})

t.test('a multi-byte UTF-8 character split across byte chunks is decoded intact', async (t) => {
  const bytes = new TextEncoder().encode('data: {"text":"héllo wörld ✓ 日本"}\n\n')
  for (let size = 1; size <= 4; size++) {
    const evs = parseChunked(bytes, [size])
    t.equal(evs.length, 1)
    t.equal(JSON.parse(evs[0]!.data).text, 'héllo wörld ✓ 日本', `chunks of ${size} bytes`)
  }
})

t.test('the recorded Anthropic stream parses the same whole and in small random chunks', async (t) => {
  const bytes = new Uint8Array(readFileSync(RECORDED))
  const whole = parseWhole(bytes)
  // The recording: message_start, content_block_start, ping, 3 deltas, content_block_stop, message_delta, message_stop.
  t.same(whole.map((e) => e.event), [
    'message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta',
    'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
  ])
  for (const e of whole) t.equal(JSON.parse(e.data).type, e.event, `data.type matches event ${e.event}`)
  const text = whole.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta.text).join('')
  t.equal(text, 'Hello there!')

  for (let seed = 1; seed <= 40; seed++) {
    const r = rng(seed)
    const sizes = Array.from({ length: 64 }, () => 1 + Math.floor(r() * 16))
    t.same(plain(parseChunked(bytes, sizes)), plain(whole), `seed ${seed}`)
  }
  // And as CRLF, which some proxies produce.
  const crlf = new TextEncoder().encode(new TextDecoder().decode(bytes).replace(/\n/g, '\r\n'))
  t.same(plain(parseChunked(crlf, [5, 2, 7, 1])), plain(whole), 'CRLF variant')
})

t.test('sseData and SSE_DONE serialise OpenAI stream lines', async (t) => {
  t.equal(sseData({ a: 1 }), 'data: {"a":1}\n\n')
  t.equal(SSE_DONE, 'data: [DONE]\n\n')
  t.same(parseWhole(sseData({ a: 'x\ny' }) + SSE_DONE).map((e) => e.data), ['{"a":"x\\ny"}', '[DONE]'], 'round-trips')
})

t.test('a lone CR ends a line too, and mixed line ends still separate events', async (t) => {
  const want = [{ event: 'a', data: 'x\ny', id: undefined }, { event: undefined, data: '2', id: undefined }, { event: undefined, data: '3', id: undefined }]
  const text = 'event: a\rdata: x\rdata: y\r\rdata: 2\n\r\ndata: 3\r\n\n'
  t.same(parseWhole(text), want)
  for (let cut = 1; cut < text.length; cut++) {
    t.same(parseChunked(text, [cut, text.length]), want, `split at ${cut}`)
  }
})
