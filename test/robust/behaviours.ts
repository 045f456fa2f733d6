/**
 * Upstream faults beyond test/helpers/upstream.ts, for the robustness suite: connection resets, hangs, streams that
 * stall or are cut mid-way without `[DONE]`, and a stream that produces as fast as its reader takes (to show that
 * backpressure, not memory, absorbs a slow client). Each is a Behaviour for the fake upstream's real http server, so
 * the gateway's undici client sees real sockets doing these things.
 */
import type http from 'node:http'
import type { Behaviour, RecordedRequest } from '../helpers/upstream.js'
import { chatChunks } from '../helpers/upstream.js'

function sseHead(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' })
  res.flushHeaders()
}

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`

/**
 * A TCP reset as soon as the request has arrived: no status line, the socket torn down with RST (resetAndDestroy),
 * as a crashing upstream or a load balancer dropping the connection does.
 */
export function reset(): Behaviour {
  return (ctx) => {
    ctx.req.socket.resetAndDestroy()
  }
}

/** Never answers: no status line, the connection held open until the gateway hangs up. */
export function hang(): Behaviour {
  return (ctx) => ctx.closed
}

/** The first `after` chunks of a normal stream, then silence with the connection open, until the gateway hangs up. */
export function stallMidStream(after = 3): Behaviour {
  return async (ctx) => {
    sseHead(ctx.res)
    for (const c of chatChunks(ctx.record.body, 'one two three four five six seven eight').slice(0, after)) ctx.res.write(sse(c))
    await ctx.closed
  }
}

/**
 * The first `after` chunks of a normal stream, then the stream is cut without `[DONE]`:
 * - `reset`: the socket is torn down (the chunked body never terminates: the reader sees a broken connection);
 * - `end`: the response ends cleanly, as if the stream were over, but without `[DONE]`, a finish_reason or usage.
 */
export function dropMidStream(how: 'reset' | 'end', after = 3): Behaviour {
  return async (ctx) => {
    sseHead(ctx.res)
    for (const c of chatChunks(ctx.record.body, 'one two three four five six seven eight').slice(0, after)) ctx.res.write(sse(c))
    // Let the chunks leave before the cut, so the gateway has begun the stream (a cut before any chunk is an
    // ordinary failed attempt that retry handles).
    await new Promise((r) => setTimeout(r, 20))
    if (how === 'reset') ctx.req.socket.resetAndDestroy()
    else ctx.res.end()
  }
}

export interface Firehose {
  behaviour: Behaviour
  /** Bytes written so far to each request's response (the kernel took them: res.write returned or drained). */
  written: Map<RecordedRequest, number>
}

/**
 * A chat stream of `chunkChars`-character content chunks written as fast as the reader takes them (a write that
 * returns false waits for 'drain'), up to `maxBytes`, then `[DONE]`. How far it gets in a given time shows how much
 * the gateway took off it: with backpressure end to end, a slow client holds it back; a gateway that buffered
 * without bound would drain it at loopback speed.
 */
export function firehose(o: { chunkChars: number; maxBytes: number }): Firehose {
  const written = new Map<RecordedRequest, number>()
  const content = 'x'.repeat(o.chunkChars)
  const behaviour: Behaviour = async (ctx) => {
    const { res, record } = ctx
    const base = { id: 'chatcmpl-firehose', object: 'chat.completion.chunk', created: 1, model: record.body?.model ?? 'gpt-4o-mini' }
    const chunk = sse({ ...base, choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] })
    const size = Buffer.byteLength(chunk)
    let closed = false
    void ctx.closed.then(() => { closed = true })
    sseHead(res)
    res.write(sse({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }))
    let bytes = 0
    written.set(record, 0)
    while (!closed && bytes < o.maxBytes) {
      const more = res.write(chunk)
      bytes += size
      written.set(record, bytes)
      if (!more) {
        await new Promise<void>((resolve) => {
          const done = () => { res.off('drain', done); res.off('close', done); resolve() }
          res.on('drain', done)
          res.on('close', done)
        })
      }
    }
    if (!closed) res.end(sse({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }) + 'data: [DONE]\n\n')
  }
  return { behaviour, written }
}
