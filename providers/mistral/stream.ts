/**
 * Mistral stream chunks -> OpenAI chat.completion.chunk objects. Mistral streams SSE with OpenAI-shaped chunks
 * (CompletionChunk), so why not pass them through byte for byte as the OpenAI family does? Because some need
 * rewriting and which ones is known only after parsing: a Magistral delta's `content` is a list of thinking/text
 * chunks (an OpenAI client would choke on it), tool-call arguments may be objects, finish_reason may be
 * "model_length" or "error", and usage rides on the last content chunk instead of a usage-only one. So every event
 * is parsed and re-serialised (passthrough: false).
 *
 * Usage is taken off the chunk and returned from end(); the core then appends OpenAI's usage-only chunk
 * (`choices: []`) for a client that asked for it.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatRequest, ToolCallDelta, Usage } from '../../core/openai/types.js'
import type { ResponseMeta, SseEvent, StreamTranslator } from '../types.js'
import { mistralError } from './errors.js'
import { finishReason, flatten, realId, toolCallDelta, usageOf } from './response.js'

type Obj = Record<string, unknown>
type Choice = ChatChunk['choices'][number]

/** Tool-call indexes per choice: Mistral may number every call 0 when they arrive in separate chunks. */
class ToolIndexes {
  private readonly byId = new Map<string, number>()
  private next = 0
  of(tc: Obj): number {
    const id = realId(tc.id)
    if (id !== undefined) {
      let i = this.byId.get(id)
      if (i === undefined) this.byId.set(id, (i = this.next++))
      return i
    }
    // No id: a continuation of a call already seen (by its own index), else a new one.
    if (typeof tc.index === 'number' && tc.index < this.next) return tc.index
    return this.next++
  }
}

export class MistralStream implements StreamTranslator<ChatChunk> {
  private usage: Usage | null = null
  private finished = false
  private done = false
  private readonly tools = new Map<number, ToolIndexes>()

  constructor(private readonly provider: string, private readonly meta: ResponseMeta) {}

  event(e: SseEvent): ChatChunk[] {
    if (e.data === '[DONE]') {
      this.done = true
      return []
    }
    if (e.data === '') return []
    let c: Obj
    try {
      c = JSON.parse(e.data)
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not JSON`, { provider: this.provider })
    }
    if (c === null || typeof c !== 'object' || Array.isArray(c)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not a JSON object`, { provider: this.provider })
    }
    // An error event mid-stream: OpenAI-shaped `{error: ...}` or Mistral's `{object: "error", message, ...}`.
    if (c.error !== undefined || c.object === 'error') throw mistralError(500, c, {})
    const usage = usageOf(c.usage)
    if (usage) this.usage = usage
    if (!Array.isArray(c.choices)) {
      if (usage) return []
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event without a \`choices\` list`, { provider: this.provider })
    }
    if (c.choices.length === 0) return []
    const choices: Choice[] = new Array(c.choices.length)
    for (let i = 0; i < choices.length; i++) choices[i] = this.choice((c.choices[i] ?? {}) as Obj, i)
    return [{
      id: typeof c.id === 'string' ? c.id : `chatcmpl-${this.meta.requestId}`,
      object: 'chat.completion.chunk',
      created: typeof c.created === 'number' ? c.created : this.meta.created,
      model: this.meta.target.model,
      choices,
    }]
  }

  private choice(ch: Obj, i: number): Choice {
    const index = typeof ch.index === 'number' ? ch.index : i
    const d = (ch.delta ?? {}) as Obj
    const delta: Choice['delta'] = {}
    if (d.role === 'assistant') delta.role = 'assistant'
    if (d.content !== undefined) {
      const { text, reasoning } = flatten(d.content)
      if (reasoning !== null) delta.reasoning_content = reasoning
      if (text !== null || d.content === null || reasoning === null) delta.content = text
    }
    if (Array.isArray(d.tool_calls) && d.tool_calls.length) {
      let idx = this.tools.get(index)
      if (!idx) this.tools.set(index, (idx = new ToolIndexes()))
      const calls: ToolCallDelta[] = []
      for (const tc of d.tool_calls as Obj[]) if (tc && typeof tc === 'object') calls.push(toolCallDelta(tc, idx.of(tc)))
      delta.tool_calls = calls
    }
    const finish = finishReason(this.provider, ch.finish_reason)
    if (finish) this.finished = true
    return { index, delta, finish_reason: finish, logprobs: null }
  }

  end(): { chunks: ChatChunk[]; usage: Usage | null } {
    if (!this.done && !this.finished) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} ended the stream before it was complete (no finish_reason, no [DONE])`, { provider: this.provider })
    }
    return { chunks: [], usage: this.usage }
  }
}

export function mistralStream(provider: string) {
  return (_req: ChatRequest, meta: ResponseMeta): StreamTranslator<ChatChunk> => new MistralStream(provider, meta)
}
