/**
 * Ollama streams: NDJSON framing (`application/x-ndjson`, one JSON object per line, the last with `done: true` and
 * the token counts) and the translation of those objects into OpenAI chat.completion.chunk objects.
 *
 * Ollama sends tool calls whole (arguments already complete), so each becomes one delta carrying index, id, type,
 * name and the full arguments text. An `{"error": "..."}` line mid-stream becomes a GatewayError.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatRequest, Usage } from '../../core/openai/types.js'
import type { EventDecoder, ResponseMeta, SseEvent, StreamTranslator } from '../types.js'
import { ollamaError } from './errors.js'
import { argumentsText, chatId, finishReason, logprobsOf, toolCallId, usageOf, type OllamaReply } from './response.js'

/** Splits a byte stream into lines, whatever the chunk boundaries (a line, or a UTF-8 character, may straddle two). */
export class NdjsonDecoder implements EventDecoder {
  private buf = ''
  private readonly decoder = new TextDecoder()

  push(bytes: Uint8Array): SseEvent[] {
    this.buf += this.decoder.decode(bytes, { stream: true })
    return this.drain()
  }

  /** End of input: a last line without its newline still counts. */
  end(): SseEvent[] {
    this.buf += this.decoder.decode()
    const out = this.drain()
    const rest = this.buf.trim()
    this.buf = ''
    if (rest) out.push({ event: undefined, data: rest })
    return out
  }

  private drain(): SseEvent[] {
    const out: SseEvent[] = []
    let start = 0
    for (;;) {
      const nl = this.buf.indexOf('\n', start)
      if (nl === -1) break
      const line = this.buf.slice(start, nl).trim() // also drops a CR of CRLF line ends
      if (line) out.push({ event: undefined, data: line })
      start = nl + 1
    }
    if (start) this.buf = this.buf.slice(start)
    return out
  }
}

type Delta = ChatChunk['choices'][number]['delta']

export class OllamaStream implements StreamTranslator<ChatChunk> {
  private readonly id: string
  private started = false
  private done = false
  private toolIndex = 0
  private usage: Usage | null = null

  constructor(private readonly provider: string, private readonly meta: ResponseMeta) {
    this.id = chatId(meta)
  }

  private chunk(delta: Delta, finish: ChatChunk['choices'][number]['finish_reason'] = null, logprobs?: unknown): ChatChunk {
    const choice: ChatChunk['choices'][number] = { index: 0, delta, finish_reason: finish }
    if (logprobs) choice.logprobs = logprobs
    return { id: this.id, object: 'chat.completion.chunk', created: this.meta.created, model: this.meta.target.model, choices: [choice] }
  }

  event(e: SseEvent): ChatChunk[] {
    let r: OllamaReply
    try {
      r = JSON.parse(e.data)
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream line that is not JSON`, { provider: this.provider })
    }
    if (r === null || typeof r !== 'object' || Array.isArray(r)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream line that is not a JSON object`, { provider: this.provider })
    }
    if (r.error !== undefined) throw ollamaError(this.provider, 500, r, {})
    if (this.done) return [] // nothing follows the final line; ignore rather than emit after the finish chunk
    const out: ChatChunk[] = []
    if (!this.started) {
      this.started = true
      out.push(this.chunk({ role: 'assistant', content: '' }))
    }
    const m = r.message
    if (m && typeof m === 'object') {
      const delta: Delta = {}
      if (typeof m.thinking === 'string' && m.thinking) delta.reasoning_content = m.thinking
      if (typeof m.content === 'string' && m.content) delta.content = m.content
      const logprobs = logprobsOf(r)
      if (delta.reasoning_content !== undefined || delta.content !== undefined || logprobs) out.push(this.chunk(delta, null, logprobs))
      if (Array.isArray(m.tool_calls)) {
        for (const tc of m.tool_calls) {
          const fn = tc?.function
          if (!fn || typeof fn.name !== 'string') continue
          out.push(this.chunk({
            tool_calls: [{ index: this.toolIndex++, id: toolCallId(tc.id), type: 'function', function: { name: fn.name, arguments: argumentsText(fn.arguments) } }],
          }))
        }
      }
    }
    if (r.done === true) {
      this.done = true
      this.usage = usageOf(r)
      out.push(this.chunk({}, finishReason(r.done_reason, this.toolIndex > 0)))
    }
    return out
  }

  /** Usage goes to the core, which appends OpenAI's usage-only chunk (`choices: []`) for a client that asked. */
  end(): { chunks: ChatChunk[]; usage: Usage | null } {
    if (!this.done) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} ended the stream before its final ("done") line`, { provider: this.provider })
    }
    return { chunks: [], usage: this.usage }
  }
}

export function ollamaStream(provider: string) {
  return (_req: ChatRequest, meta: ResponseMeta): StreamTranslator<ChatChunk> => new OllamaStream(provider, meta)
}
