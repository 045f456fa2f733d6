/**
 * Response writers. JSON goes through Koa; SSE and binary replies (speech audio) are written straight to the socket
 * with backpressure, so a slow client slows the upstream read instead of buffering it. A failure after an SSE stream
 * started is sent as an SSE error event (`data: {"error":{...}}`, which the official SDKs raise as an APIError) and
 * the stream is closed; a binary reply has no place for one, so its connection is cut (the client sees a truncated
 * body, never a complete-looking one).
 */
import type { ParameterizedContext } from 'koa'
import type { ServerResponse } from 'node:http'
import { asGatewayError, toErrorBody, type GatewayError } from '../errors.js'
import { sseData, SSE_DONE } from '../sse.js'
import { chunkForClient } from '../openai/shape.js'
import { StreamCapture } from '../openai/capture.js'
import { TOOL_CALL_EVENT } from '../openai/tool-events.js'
import type { GatewayState } from '../state.js'
import type { Usage } from '../openai/types.js'
import type { PassEvent, ProviderResult } from '../../providers/types.js'

export type GatewayContext = ParameterizedContext<GatewayState>

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

export interface StreamChunk {
  usage?: Usage | null
  choices?: unknown[]
}

interface OutputPart { content?: unknown; reasoning_content?: unknown; tool_calls?: Array<{ function?: { arguments?: unknown } } | null> }
interface Choice {
  delta?: OutputPart
  message?: OutputPart
  text?: unknown
}

/**
 * Characters of output (content, reasoning, tool arguments, legacy text) in a stream chunk's deltas or a reply's
 * messages: prices a stream cut short, or a reply that came without usage.
 */
export function outputChars(chunk: { choices?: unknown }): number {
  const choices = chunk.choices as Array<Choice | null> | undefined
  if (!Array.isArray(choices)) return 0
  let n = 0
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i]
    if (!c) continue
    const d = c.delta ?? c.message
    if (d) {
      if (typeof d.content === 'string') n += d.content.length
      if (typeof d.reasoning_content === 'string') n += d.reasoning_content.length
      const calls = d.tool_calls
      if (Array.isArray(calls)) for (let j = 0; j < calls.length; j++) {
        const a = calls[j]?.function?.arguments
        if (typeof a === 'string') n += a.length
      }
    } else if (typeof c.text === 'string') n += c.text.length
  }
  return n
}

/**
 * Write a stream as SSE, then `data: [DONE]`: translated chunk objects, or a pass-through's events forwarded as the
 * upstream sent them. Usage is recorded in state.usage and forwarded only when the client asked for it
 * (`stream_options.include_usage`). Resolves when the stream is over, however it ended.
 */
export async function writeSse(ctx: GatewayContext, result: StreamResult, includeUsage: boolean): Promise<void> {
  const state = ctx.state
  if (state.captureReply) state.reply = new StreamCapture()
  if (result.kind === 'passthrough') {
    await writeEvents(ctx, result.events, (ev) => passText(state, ev, includeUsage), sseDone, sseError)
  } else {
    await writeEvents(ctx, result.chunks as AsyncIterable<StreamChunk>, (c) => chunkText(state, c, includeUsage), sseDone, sseError)
  }
}

const sseDone = (): string => SSE_DONE
const sseError = (e: GatewayError): string => sseData(toErrorBody(e))

/**
 * Write a stream as SSE: each item's text from `encode` (null: nothing to send), then `end()`'s text once the
 * items are over; a failure is recorded in state.error and written as `fail(e)`'s text, and the response ends.
 * Backpressure: a slow client slows the upstream read. Resolves when the stream is over, however it ended. The
 * OpenAI writer above and the other formats' (core/http/formats) share it.
 */
export async function writeEvents<T>(
  ctx: GatewayContext, items: AsyncIterable<T>, encode: (item: T) => string | null,
  end: () => string | Promise<string>, fail: (e: GatewayError) => string,
): Promise<void> {
  const res = ctx.res
  const state = ctx.state
  ctx.respond = false
  ctx.status = 200
  res.writeHead(200, SSE_HEADERS)
  const it = items[Symbol.asyncIterator]()
  // Chunks translated from one upstream read arrive within one tick: cork the socket for that tick so they leave in
  // one write instead of one syscall each.
  let corked = false
  const uncork = () => {
    corked = false
    res.uncork()
  }
  let finished = false
  try {
    for (;;) {
      const step = await it.next()
      if (step.done) {
        finished = true
        break
      }
      const text = encode(step.value)
      if (text === null || text === '') continue
      // Ended elsewhere (a shutdown deadline wrote its error event) or gone: stop reading upstream.
      if (res.writableEnded || res.destroyed) break
      if (!corked) {
        corked = true
        res.cork()
        process.nextTick(uncork)
      }
      if (!res.write(text)) await drained(res)
    }
    // (A break above means the response is over already.)
    if (!res.writableEnded && !res.destroyed) res.end(await end())
  } catch (err) {
    finished = true
    const e = asGatewayError(err)
    state.error ??= e
    if (!res.writableEnded && !res.destroyed) res.end(fail(e))
  } finally {
    if (!finished && it.return) await it.return().catch(() => undefined)
  }
}

/** Keep a chunk for a logging plugin (state.captureReply made state.reply a StreamCapture). */
export function captured(state: GatewayState, part: object | string): void {
  const cap = state.reply
  if (cap instanceof StreamCapture) cap.add(part as Record<string, unknown> | string)
}

export type StreamResult = Extract<ProviderResult, { kind: 'stream' | 'passthrough' }>
export type BinaryResult = Extract<ProviderResult, { kind: 'binary' }>

/** Write a binary reply's bytes as they arrive, with its content type. Resolves when it is over, however it ended. */
export async function writeBinary(ctx: GatewayContext, result: BinaryResult): Promise<void> {
  const res = ctx.res
  ctx.respond = false
  ctx.status = 200
  res.writeHead(200, { 'content-type': result.contentType })
  const it = result.chunks[Symbol.asyncIterator]()
  let finished = false
  try {
    for (;;) {
      const step = await it.next()
      if (step.done) {
        finished = true
        break
      }
      if (res.writableEnded || res.destroyed) break
      if (!res.write(step.value)) await drained(res)
    }
    if (!res.writableEnded && !res.destroyed) res.end()
  } catch (err) {
    finished = true
    ctx.state.error ??= asGatewayError(err)
    res.destroy()
  } finally {
    if (!finished && it.return) await it.return().catch(() => undefined)
  }
}

/**
 * A translated chunk as the client gets it, null when it gets nothing (usage it did not ask for, the gateway's own
 * tool events); its usage and output are recorded on the way. The SSE writer here and the in-process entry
 * (core/invoke.ts) both read streams through it.
 */
export function clientChunk<C extends StreamChunk>(state: GatewayState, chunk: C, includeUsage: boolean): C | null {
  // A tool loop's record of a call it ran (core/openai/tool-events.ts): not for a chat client.
  if ((chunk as { object?: unknown }).object === TOOL_CALL_EVENT) return null
  if (state.reply !== null) captured(state, chunk)
  if (chunk.usage) state.usage = chunk.usage
  else if (state.usage === null) state.outputChars += outputChars(chunk)
  return chunkForClient(chunk, includeUsage)
}

/** A translated chunk's SSE text, null when the client does not get it. */
function chunkText(state: GatewayState, chunk: StreamChunk, includeUsage: boolean): string | null {
  const out = clientChunk(state, chunk, includeUsage)
  return out === null ? null : sseData(out)
}

/** A pass-through event's SSE text: its own bytes, less a `"usage": null` member the client did not ask for. */
function passText(state: GatewayState, ev: PassEvent, includeUsage: boolean): string | null {
  if (ev.chunk !== null) return chunkText(state, ev.chunk, includeUsage)
  if (state.reply !== null) captured(state, ev.data)
  if (state.usage === null) state.outputChars += ev.chars
  const data = ev.data
  if (includeUsage || ev.nullUsageFrom === -1) return 'data: ' + data + '\n\n'
  return 'data: ' + data.slice(0, ev.nullUsageFrom) + data.slice(ev.nullUsageTo) + '\n\n'
}
