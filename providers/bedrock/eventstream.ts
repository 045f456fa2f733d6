/**
 * The ConverseStream body (`application/vnd.amazon.eventstream`) -> events. Each binary frame is
 * [total length u32][headers length u32][prelude CRC][headers][payload][message CRC]; frames are decoded (CRCs
 * checked) by the maintained codec, @smithy/eventstream-codec. This class only buffers: a network chunk may end
 * inside a frame and may hold several, so bytes are kept until a frame's announced length has arrived.
 *
 * An `event` frame yields { event: its `:event-type` (messageStart, contentBlockDelta, ...), data: the JSON payload };
 * an `exception` frame (`:exception-type: throttlingException`, ...) or an `error` frame throws the mapped error.
 * Format: https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html (event stream encoding)
 */
import { createRequire } from 'node:module'
import type { EventStreamCodec } from '@smithy/eventstream-codec'
import { gatewayError } from '../../core/errors.js'
import type { EventDecoder, SseEvent } from '../types.js'
import { streamException } from './errors.js'

/**
 * decode() keeps no state, so one codec serves every stream. Loaded with the first stream, not at import (as the
 * signer is: start-up time a gateway without Bedrock should not pay).
 */
let codec: EventStreamCodec | null = null
let toUtf8: (b: Uint8Array) => string
function loadCodec(): EventStreamCodec {
  if (codec) return codec
  const require = createRequire(import.meta.url)
  const utf8 = require('@smithy/util-utf8') as typeof import('@smithy/util-utf8')
  const { EventStreamCodec: Codec } = require('@smithy/eventstream-codec') as typeof import('@smithy/eventstream-codec')
  toUtf8 = utf8.toUtf8
  codec = new Codec(utf8.toUtf8, utf8.fromUtf8)
  return codec
}

/** Total length + headers length + prelude CRC; bytes. */
const PRELUDE_BYTES = 12
/** Prelude plus the message CRC: the smallest possible frame; bytes. */
const MIN_FRAME_BYTES = 16
/** The event stream format's message size limit (16 MiB); a larger announced length means a corrupt stream. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024

const EMPTY = new Uint8Array(0)

function corrupt(detail: string): Error {
  return gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `bedrock sent a malformed event stream: ${detail}`, { provider: 'bedrock' })
}

function headerString(headers: Record<string, { value: unknown }>, name: string): string {
  const v = headers[name]?.value
  return typeof v === 'string' ? v : ''
}

export class BedrockEventDecoder implements EventDecoder {
  /** Bytes of a frame not complete yet. */
  private buf: Uint8Array = EMPTY
  /**
   * An exception frame that came in the same read as content frames before it: those are handed out first, and
   * the exception is thrown on the next call (the next read, or end()), so no delivered content is lost.
   */
  private pending: Error | null = null

  push(bytes: Uint8Array): SseEvent[] {
    this.throwPending()
    let buf = bytes
    if (this.buf.length) {
      buf = new Uint8Array(this.buf.length + bytes.length)
      buf.set(this.buf, 0)
      buf.set(bytes, this.buf.length)
    }
    const out: SseEvent[] = []
    let off = 0
    while (buf.length - off >= PRELUDE_BYTES) {
      const total = new DataView(buf.buffer, buf.byteOffset + off, 4).getUint32(0, false)
      if (total < MIN_FRAME_BYTES || total > MAX_FRAME_BYTES) throw corrupt(`frame length ${total}`)
      if (buf.length - off < total) break
      let ev: SseEvent | null
      try {
        ev = this.frame(buf.subarray(off, off + total))
      } catch (err) {
        if (out.length === 0) throw err
        this.pending = err as Error
        this.buf = EMPTY
        return out
      }
      off += total
      if (ev) out.push(ev)
    }
    // Copied, not a view: the network chunk underneath may belong to a pooled buffer.
    this.buf = off === buf.length ? EMPTY : buf.slice(off)
    return out
  }

  end(): SseEvent[] {
    this.throwPending()
    if (this.buf.length) throw corrupt(`the body ended inside a frame (${this.buf.length} bytes left)`)
    return []
  }

  private throwPending(): void {
    const e = this.pending
    if (e) {
      this.pending = null
      throw e
    }
  }

  private frame(bytes: Uint8Array): SseEvent | null {
    let msg
    try {
      msg = (codec ?? loadCodec()).decode(bytes)
    } catch (err) {
      throw corrupt((err as Error).message)
    }
    const headers = msg.headers as Record<string, { value: unknown }>
    const kind = headerString(headers, ':message-type')
    const payload = toUtf8(msg.body)
    if (kind === 'event') return { event: headerString(headers, ':event-type'), data: payload }
    if (kind === 'exception') throw streamException(headerString(headers, ':exception-type'), payload)
    if (kind === 'error') {
      throw streamException(headerString(headers, ':error-code'), JSON.stringify({ message: headerString(headers, ':error-message') }))
    }
    return null
  }
}
