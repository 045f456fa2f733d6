/**
 * Server-sent events: an incremental parser for upstream streams (WHATWG "event stream" rules: fields, multi-line
 * data, comments, and any of LF, CRLF or CR as line end) and the serialiser for OpenAI chunks.
 */
import type { EventDecoder, SseEvent } from '../providers/types.js'

/** CRLF or a lone CR: both end a line in an event stream. Compiled once. */
const CR_LINE_END = /\r\n?/g

export class SseParser implements EventDecoder {
  private buf = ''
  /** The last input ended in CR: a LF opening the next input belongs to the same line end. */
  private pendingCr = false
  private readonly decoder = new TextDecoder()

  /** Feed bytes; returns the events completed by them. */
  push(bytes: Uint8Array | string): SseEvent[] {
    this.append(typeof bytes === 'string' ? bytes : this.decoder.decode(bytes, { stream: true }))
    return this.drain(false)
  }

  /** End of input: returns a last event that had no blank line after it. */
  end(): SseEvent[] {
    this.append(this.decoder.decode())
    return this.drain(true)
  }

  /** Line ends are normalised to LF as text arrives, so events split on one separator only. */
  private append(text: string): void {
    if (this.pendingCr) {
      this.pendingCr = false
      if (text[0] === '\n') text = text.slice(1)
    }
    if (text.indexOf('\r') !== -1) {
      this.pendingCr = text.endsWith('\r')
      text = text.replace(CR_LINE_END, '\n')
    }
    this.buf += text
  }

  private drain(final: boolean): SseEvent[] {
    const out: SseEvent[] = []
    let start = 0
    for (;;) {
      const end = this.buf.indexOf('\n\n', start)
      if (end === -1) break
      const ev = parseBlock(this.buf.slice(start, end))
      if (ev) out.push(ev)
      start = end + 2
    }
    if (start) this.buf = this.buf.slice(start)
    if (final && this.buf.trim()) {
      const ev = parseBlock(this.buf)
      if (ev) out.push(ev)
      this.buf = ''
    }
    return out
  }
}

function parseBlock(block: string): SseEvent | null {
  let event: string | undefined
  let id: string | undefined
  let data: string | null = null
  let pos = 0
  while (pos <= block.length) {
    let nl = block.indexOf('\n', pos)
    if (nl === -1) nl = block.length
    const line = block.slice(pos, nl)
    pos = nl + 1
    if (line === '' || line[0] === ':') continue
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value[0] === ' ') value = value.slice(1)
    if (field === 'data') data = data === null ? value : data + '\n' + value
    else if (field === 'event') event = value
    else if (field === 'id') id = value
  }
  if (data === null) return null
  return { event, data, id }
}

/** One OpenAI stream line. */
export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`
}

export const SSE_DONE = 'data: [DONE]\n\n'
