/**
 * Response writers. JSON goes through Koa; SSE is written straight to the socket with backpressure, so a slow
 * client slows the upstream read instead of buffering it. A failure after the stream started is sent as an SSE
 * error event (`data: {"error":{...}}`, which the official SDKs raise as an APIError) and the stream is closed.
 */
import type { ParameterizedContext } from 'koa'
import type { ServerResponse } from 'node:http'
import { asGatewayError, toErrorBody } from '../errors.js'
import { sseData, SSE_DONE } from '../sse.js'
import { chunkForClient } from '../openai/shape.js'
import type { GatewayState } from '../state.js'
import type { Usage } from '../openai/types.js'

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

interface StreamChunk {
  usage?: Usage | null
  choices?: unknown[]
}

interface ChoiceDelta {
  delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: Array<{ function?: { arguments?: unknown } }> }
  text?: unknown
}

/** Characters of output in one chunk (content, reasoning, tool arguments, legacy text): prices a stream cut short. */
function outputChars(chunk: StreamChunk): number {
  const choices = chunk.choices as ChoiceDelta[] | undefined
  if (!choices) return 0
  let n = 0
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i]!
    const d = c.delta
    if (d) {
      if (typeof d.content === 'string') n += d.content.length
      if (typeof d.reasoning_content === 'string') n += d.reasoning_content.length
      const calls = d.tool_calls
      if (calls) for (let j = 0; j < calls.length; j++) {
        const a = calls[j]!.function?.arguments
        if (typeof a === 'string') n += a.length
      }
    } else if (typeof c.text === 'string') n += c.text.length
  }
  return n
}

/**
 * Write OpenAI chunks as SSE, then `data: [DONE]`. Usage chunks are recorded in state.usage and forwarded only when
 * the client asked for them (`stream_options.include_usage`). Resolves when the stream is over, however it ended.
 */
export async function writeSse(ctx: GatewayContext, chunks: AsyncIterable<StreamChunk>, includeUsage: boolean): Promise<void> {
  const res = ctx.res
  const state = ctx.state
  ctx.respond = false
  ctx.status = 200
  res.writeHead(200, SSE_HEADERS)
  const it = chunks[Symbol.asyncIterator]()
  // Chunks translated from one upstream read arrive within one tick: cork the socket for that tick so they leave in
  // one write instead of one syscall each.
  let corked = false
  const uncork = () => {
    corked = false
    res.uncork()
  }
  const write = (data: string): boolean => {
    if (!corked) {
      corked = true
      res.cork()
      process.nextTick(uncork)
    }
    return res.write(data)
  }
  let finished = false
  try {
    for (;;) {
      const step = await it.next()
      if (step.done) {
        finished = true
        break
      }
      if (step.value.usage) state.usage = step.value.usage
      else if (state.usage === null) state.outputChars += outputChars(step.value)
      const chunk = chunkForClient(step.value, includeUsage)
      if (chunk === null) continue
      // Ended elsewhere (a shutdown deadline wrote its error event) or gone: stop reading upstream.
      if (res.writableEnded || res.destroyed) break
      if (!write(sseData(chunk))) await drained(res)
    }
    if (!res.writableEnded && !res.destroyed) res.end(SSE_DONE)
  } catch (err) {
    finished = true
    const e = asGatewayError(err)
    state.error ??= e
    if (!res.writableEnded && !res.destroyed) res.end(sseData(toErrorBody(e)))
  } finally {
    if (!finished && it.return) await it.return().catch(() => undefined)
  }
}
