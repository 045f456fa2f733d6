/**
 * `streamGenerateContent?alt=sse` -> OpenAI chat.completion.chunk. Every SSE event is a whole
 * GenerateContentResponse holding the next piece of each candidate. Per candidate the translator emits a role chunk
 * first, then content / reasoning deltas, one tool-call delta per `functionCall` part (Gemini sends each call whole:
 * id, name and the full arguments in one delta), and a finish chunk when the candidate has a finishReason.
 * usageMetadata is cumulative (each event repeats the running totals), so the last one is the usage, returned by
 * end(); the core appends it as the final `choices: []` chunk. An `{"error": ...}` event, or a prompt blocked before
 * any candidate, throws the mapped GatewayError.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, Usage } from '../../core/openai/types.js'
import type { ResponseMeta, SseEvent, StreamTranslator } from '../types.js'
import { completionId, finishReason, refusal, splitParts, toUsage } from './response.js'

type Obj = Record<string, unknown>
type Delta = ChatChunk['choices'][number]['delta']

/** What the translator remembers about one candidate between events. */
interface CandidateState {
  /** Tool calls emitted so far: the next call's `index`. */
  calls: number
  finished: boolean
}

export class GeminiStream implements StreamTranslator<ChatChunk> {
  private id: string | null = null
  private usage: Usage | null = null
  private readonly candidates = new Map<number, CandidateState>()

  constructor(private readonly provider: string, private readonly meta: ResponseMeta) {}

  event(e: SseEvent): ChatChunk[] {
    if (e.data === '' || e.data === '[DONE]') return []
    let body: Obj
    try {
      body = JSON.parse(e.data)
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not JSON`, { provider: this.provider })
    }
    if (body === null || typeof body !== 'object') {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not a JSON object`, { provider: this.provider })
    }
    const refused = refusal(this.provider, body)
    if (refused) throw refused
    this.id ??= completionId(body, this.meta)
    this.usage = toUsage(body.usageMetadata) ?? this.usage
    const out: ChatChunk[] = []
    const list = Array.isArray(body.candidates) ? (body.candidates as Obj[]) : []
    for (let i = 0; i < list.length; i++) this.candidate(list[i]!, i, out)
    return out
  }

  end(): { chunks: ChatChunk[]; usage: Usage | null } {
    return { chunks: [], usage: this.usage }
  }

  private candidate(c: Obj, position: number, out: ChatChunk[]): void {
    const index = typeof c.index === 'number' ? c.index : position
    let state = this.candidates.get(index)
    if (!state) {
      this.candidates.set(index, (state = { calls: 0, finished: false }))
      out.push(this.chunk(index, { role: 'assistant', content: '' }, null))
    }
    const { content, reasoning, toolCalls } = splitParts((c.content as Obj | undefined)?.parts)
    if (content !== null || reasoning !== null) {
      const delta: Delta = {}
      if (content !== null) delta.content = content
      if (reasoning !== null) delta.reasoning_content = reasoning
      out.push(this.chunk(index, delta, null))
    }
    for (const call of toolCalls) {
      out.push(this.chunk(index, { tool_calls: [{ index: state.calls++, ...call }] }, null))
    }
    if (c.finishReason !== undefined && c.finishReason !== null && !state.finished) {
      state.finished = true
      out.push(this.chunk(index, {}, finishReason(c.finishReason, state.calls > 0)))
    }
  }

  private chunk(index: number, delta: Delta, finish: ChatChunk['choices'][number]['finish_reason']): ChatChunk {
    return {
      id: this.id!,
      object: 'chat.completion.chunk',
      created: this.meta.created,
      model: this.meta.target.model,
      choices: [{ index, delta, finish_reason: finish, logprobs: null }],
    }
  }
}
