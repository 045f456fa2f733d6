/**
 * Cohere v2 chat stream -> OpenAI chat.completion.chunk objects, one translator per request. Cohere's SSE events
 * carry their kind in `data.type` (https://docs.cohere.com/reference/chat-stream):
 *   message-start            -> the first chunk: role 'assistant', empty content
 *   content-start / -delta   -> content (text) or reasoning_content (thinking) deltas; content-end: nothing
 *   tool-plan-delta          -> delta.provider_specific_fields.tool_plan (as LiteLLM exposes it)
 *   tool-call-start          -> a tool-call delta with index, id, type, function.name (and any first arguments)
 *   tool-call-delta          -> a tool-call delta with an `arguments` fragment
 *   tool-call-end, citation-*, debug -> nothing
 *   message-end              -> the finish_reason chunk; its usage is handed to the core from end()
 * Tool-call indexes are our own running count, so they stay 0, 1, 2 ... whatever Cohere numbers its blocks.
 * ERROR / TIMEOUT at message-end, or an error object in the stream, throws a GatewayError mapped like an HTTP one.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, Usage } from '../../core/openai/types.js'
import type { ResponseMeta, SseEvent, StreamTranslator } from '../types.js'
import { streamError } from './errors.js'
import { finishReason, toUsage } from './response.js'

type Delta = ChatChunk['choices'][number]['delta']

interface CohereEvent {
  type?: unknown
  id?: unknown
  index?: unknown
  message?: unknown
  delta?: {
    message?: {
      content?: { text?: unknown; thinking?: unknown }
      tool_plan?: unknown
      tool_calls?: { id?: unknown; function?: { name?: unknown; arguments?: unknown } }
    }
    finish_reason?: unknown
    error?: unknown
    usage?: unknown
  }
}

export class CohereStream implements StreamTranslator<ChatChunk> {
  private id: string
  private readonly created: number
  private readonly model: string
  private started = false
  private usage: Usage | null = null
  /** Cohere's tool-call index -> ours. */
  private readonly tools = new Map<number, number>()

  constructor(private readonly provider: string, meta: ResponseMeta) {
    this.id = `chatcmpl-${meta.requestId}`
    this.created = meta.created
    this.model = meta.target.model
  }

  private chunk(delta: Delta, finish: ChatChunk['choices'][number]['finish_reason'] = null): ChatChunk {
    // Every stream opens with the role, even one whose message-start went missing.
    if (!this.started) {
      this.started = true
      delta = { role: 'assistant', ...delta }
    }
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] }
  }

  private parse(data: string): CohereEvent {
    let ev: unknown
    try {
      ev = JSON.parse(data)
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not JSON`, { provider: this.provider })
    }
    if (ev === null || typeof ev !== 'object' || Array.isArray(ev)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not a JSON object`, { provider: this.provider })
    }
    return ev as CohereEvent
  }

  event(e: SseEvent): ChatChunk[] {
    // The spec names "[DONE]" as the stream's terminator; keep-alive events have no data.
    if (e.data === '' || e.data === '[DONE]') return []
    const ev = this.parse(e.data)
    const type = typeof ev.type === 'string' ? ev.type : e.event
    const msg = ev.delta?.message
    switch (type) {
      case 'message-start':
        if (typeof ev.id === 'string' && ev.id !== '') this.id = ev.id
        return this.started ? [] : [this.chunk({ content: '' })]
      case 'content-start':
      case 'content-delta': {
        const c = msg?.content
        const out: Delta = {}
        if (typeof c?.text === 'string' && c.text !== '') out.content = c.text
        if (typeof c?.thinking === 'string' && c.thinking !== '') out.reasoning_content = c.thinking
        return out.content === undefined && out.reasoning_content === undefined ? [] : [this.chunk(out)]
      }
      case 'tool-plan-delta':
        return typeof msg?.tool_plan === 'string' && msg.tool_plan !== '' ? [this.chunk({ provider_specific_fields: { tool_plan: msg.tool_plan } })] : []
      case 'tool-call-start': {
        const tc = msg?.tool_calls
        const index = this.tools.size
        this.tools.set(typeof ev.index === 'number' ? ev.index : index, index)
        const args = tc?.function?.arguments
        return [this.chunk({
          tool_calls: [{
            index,
            id: String(tc?.id ?? ''),
            type: 'function',
            function: { name: String(tc?.function?.name ?? ''), arguments: typeof args === 'string' ? args : '' },
          }],
        })]
      }
      case 'tool-call-delta': {
        const args = msg?.tool_calls?.function?.arguments
        if (typeof args !== 'string' || args === '') return []
        const index = (typeof ev.index === 'number' ? this.tools.get(ev.index) : undefined) ?? Math.max(0, this.tools.size - 1)
        return [this.chunk({ tool_calls: [{ index, function: { arguments: args } }] })]
      }
      case 'message-end': {
        const d = ev.delta
        this.usage = toUsage(d?.usage) ?? this.usage
        return [this.chunk({}, finishReason(this.provider, d?.finish_reason, d?.error, this.tools.size > 0))]
      }
      case 'content-end':
      case 'tool-call-end':
      case 'citation-start':
      case 'citation-end':
      case 'debug':
        return []
      default:
        // An error object in place of an event ({"message": "..."} with no type, or type "error").
        if (type === 'error' || (ev.type === undefined && typeof ev.message === 'string')) {
          throw streamError(this.provider, 'ERROR', typeof ev.message === 'string' ? ev.message : null)
        }
        return []
    }
  }

  end(): { chunks: ChatChunk[]; usage: Usage | null } {
    return { chunks: [], usage: this.usage }
  }
}
