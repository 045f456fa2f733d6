/**
 * Server-sent events: an incremental parser for upstream streams (WHATWG "event stream" rules: fields, multi-line
 * data, comments, CRLF) and the serialiser for OpenAI chunks.
 */
import type { EventDecoder, SseEvent } from '../providers/types.js'

export class SseParser implements EventDecoder {
  private buf = ''
  private readonly decoder = new TextDecoder()

  /** Feed bytes; returns the events completed by them. */
  push(bytes: Uint8Array | string): SseEvent[] {
    this.buf += typeof bytes === 'string' ? bytes : this.decoder.decode(bytes, { stream: true })
    return this.drain(false)
  }

  /** End of input: returns a last event that had no blank line after it. */
  end(): SseEvent[] {
    this.buf += this.decoder.decode()
    return this.drain(true)
  }

  private drain(final: boolean): SseEvent[] {
    const out: SseEvent[] = []
    let start = 0
    for (;;) {
      const nn = this.buf.indexOf('\n\n', start)
      const rr = this.buf.indexOf('\r\n\r\n', start)
      let end: number
      let sep: number
      if (nn === -1 && rr === -1) break
      if (rr !== -1 && (nn === -1 || rr < nn)) {
        end = rr
        sep = 4
      } else {
        end = nn
        sep = 2
      }
      const ev = parseBlock(this.buf.slice(start, end))
      if (ev) out.push(ev)
      start = end + sep
    }
    this.buf = start ? this.buf.slice(start) : this.buf
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
    let line = block.slice(pos, nl)
    pos = nl + 1
    if (line.endsWith('\r')) line = line.slice(0, -1)
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
