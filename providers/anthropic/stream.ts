/**
 * Anthropic's SSE event sequence -> OpenAI chat.completion.chunk objects, one translator per request.
 *
 *   message_start            id and input usage; no chunk yet (see below)
 *   content_block_start      text: its text if any; tool_use: the tool call's first delta (index, id, type, name,
 *                            arguments ''), each tool_use block taking the next OpenAI tool-call index
 *   content_block_delta      text_delta -> content; input_json_delta -> an arguments fragment;
 *                            thinking_delta / signature_delta -> reasoning_content and thinking_blocks (LiteLLM's)
 *   message_delta            stop_reason -> the finish_reason chunk; usage.output_tokens
 *   content_block_stop, message_stop, ping   nothing
 *   error                    thrown as a GatewayError, mapped like an HTTP error of its type
 *
 * The role rides on the first chunk that carries something, not on message_start: an upstream that fails right
 * after message_start (stream.error.sse: message_start, then `overloaded_error`) then fails before the first chunk,
 * while the core still primes the stream, so retry and fallback can act on it and the client gets an HTTP error.
 *
 * Usage is returned from end(); the core sends it as OpenAI's final `choices: []` chunk. JSON mode (response_format
 * through the `json_tool_call` tool) streams that tool's arguments as content and finishes with `stop`.
 * Event reference: https://docs.anthropic.com/en/docs/build-with-claude/streaming
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatRequest, FinishReason, Usage } from '../../core/openai/types.js'
import type { ResponseMeta, SseEvent, StreamTranslator } from '../types.js'
import { anthropicError, statusForErrorType } from './errors.js'
import { finishReason, toUsage, type AnthropicUsage } from './response.js'
import { JSON_TOOL_NAME } from './tools.js'

type Delta = ChatChunk['choices'][number]['delta']

/** What a content block index turned into: a tool call (its OpenAI index), JSON mode's tool, or other content. */
const JSON_BLOCK = -1
const OTHER_BLOCK = -2

interface StreamEvent {
  type?: string
  index?: number
  message?: { id?: string; usage?: AnthropicUsage }
  content_block?: { type?: string; text?: string; id?: string; name?: string; data?: string; thinking?: string }
  delta?: { type?: string; text?: string; partial_json?: string; thinking?: string; signature?: string; stop_reason?: string | null }
  usage?: AnthropicUsage
  error?: { type?: string; message?: string }
}

export class AnthropicStream implements StreamTranslator<ChatChunk> {
  private id: string
  private readonly created: number
  private readonly model: string
  private readonly provider: string
  private readonly jsonMode: boolean
  private roleSent = false
  private finished = false
  private nextTool = 0
  /** Content block index -> OpenAI tool-call index, JSON_BLOCK or OTHER_BLOCK. */
  private readonly blocks = new Map<number, number>()
  private usage: AnthropicUsage | null = null
  private thinking = ''

  constructor(req: ChatRequest, meta: ResponseMeta) {
    this.created = meta.created
    this.model = meta.target.model
    this.provider = meta.target.provider
    this.id = `chatcmpl-${meta.requestId}`
    const rf = req.response_format?.type
    this.jsonMode = rf === 'json_object' || rf === 'json_schema'
  }

  event(e: SseEvent): ChatChunk[] {
    if (!e.data) return []
    let ev: StreamEvent
    try {
      ev = JSON.parse(e.data) as StreamEvent
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not JSON`, { provider: this.provider })
    }
    if (!ev || typeof ev !== 'object') {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not a JSON object`, { provider: this.provider })
    }
    switch (ev.type ?? e.event) {
      case 'message_start':
        if (typeof ev.message?.id === 'string') this.id = ev.message.id
        this.usage = { ...ev.message?.usage }
        return []
      case 'content_block_start':
        return this.blockStart(ev)
      case 'content_block_delta':
        return this.blockDelta(ev)
      case 'message_delta':
        return this.messageDelta(ev)
      case 'error':
        throw anthropicError(this.provider, statusForErrorType(ev.error?.type), ev, {})
      default:
        // ping, content_block_stop, message_stop, and event types added later
        return []
    }
  }

  end(): { chunks: ChatChunk[]; usage: Usage | null } {
    // A stream that stops before message_delta was cut: passing it off as complete would hide the loss.
    if (!this.finished) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} stream ended before the message was complete`, { provider: this.provider })
    }
    return { chunks: [], usage: this.usage ? toUsage(this.usage, this.thinking) : null }
  }

  private chunk(delta: Delta, finish: FinishReason | null = null): ChatChunk[] {
    if (!this.roleSent) {
      this.roleSent = true
      delta.role = 'assistant'
    }
    return [{
      id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    }]
  }

  private blockStart(ev: StreamEvent): ChatChunk[] {
    const b = ev.content_block
    const index = ev.index ?? 0
    if (b?.type === 'tool_use') {
      if (this.jsonMode && b.name === JSON_TOOL_NAME) {
        this.blocks.set(index, JSON_BLOCK)
        return []
      }
      const toolIndex = this.nextTool++
      this.blocks.set(index, toolIndex)
      return this.chunk({ tool_calls: [{ index: toolIndex, id: b.id, type: 'function', function: { name: b.name, arguments: '' } }] })
    }
    this.blocks.set(index, OTHER_BLOCK)
    if (b?.type === 'text' && b.text) return this.chunk({ content: b.text })
    if (b?.type === 'redacted_thinking') return this.chunk({ thinking_blocks: [{ type: 'redacted_thinking', data: b.data }] })
    if (b?.type === 'thinking' && b.thinking) return this.thinkingChunk(b.thinking, undefined)
    return []
  }

  private blockDelta(ev: StreamEvent): ChatChunk[] {
    const d = ev.delta
    switch (d?.type) {
      case 'text_delta':
        return d.text ? this.chunk({ content: d.text }) : []
      case 'input_json_delta': {
        const args = d.partial_json
        if (!args) return []
        const tool = this.blocks.get(ev.index ?? 0)
        if (tool === JSON_BLOCK) return this.chunk({ content: args })
        if (tool === undefined || tool < 0) return []
        return this.chunk({ tool_calls: [{ index: tool, function: { arguments: args } }] })
      }
      case 'thinking_delta':
        return d.thinking ? this.thinkingChunk(d.thinking, undefined) : []
      case 'signature_delta':
        return d.signature ? this.thinkingChunk('', d.signature) : []
      default:
        // citations_delta and later delta types carry nothing OpenAI's chunk has a field for
        return []
    }
  }

  private thinkingChunk(text: string, signature: string | undefined): ChatChunk[] {
    this.thinking += text
    const block: Record<string, unknown> = { type: 'thinking', thinking: text }
    if (signature !== undefined) block.signature = signature
    return this.chunk({ reasoning_content: text, thinking_blocks: [block] })
  }

  private messageDelta(ev: StreamEvent): ChatChunk[] {
    // message_delta's usage is cumulative; newer API versions repeat the input counts there too.
    if (ev.usage) this.usage = { ...this.usage, ...stripNulls(ev.usage) }
    if (this.finished) return []
    this.finished = true
    let finish = finishReason(ev.delta?.stop_reason)
    if (this.jsonMode && finish === 'tool_calls' && this.nextTool === 0) finish = 'stop'
    return this.chunk({}, finish)
  }
}

function stripNulls(u: AnthropicUsage): AnthropicUsage {
  const out: Record<string, unknown> = {}
  for (const k in u) {
    const v = (u as Record<string, unknown>)[k]
    if (v !== null && v !== undefined) out[k] = v
  }
  return out as AnthropicUsage
}
