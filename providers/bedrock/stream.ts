/**
 * ConverseStream events -> OpenAI chat.completion.chunk objects, one translator per request (it keeps the block ->
 * tool-call index map between events):
 *
 *   messageStart                         -> first chunk, role assistant
 *   contentBlockStart {toolUse}          -> tool-call delta: index, id, type, function.name, arguments ''
 *   contentBlockDelta {text}             -> content delta
 *   contentBlockDelta {toolUse.input}    -> tool-call delta: index, arguments fragment
 *   contentBlockDelta {reasoningContent} -> reasoning_content delta (signature as a thinking_blocks delta)
 *   messageStop {stopReason}             -> finish_reason chunk
 *   metadata {usage}                     -> usage, returned by end() (the core sends the usage-only chunk)
 *   *Exception                           -> thrown, mapped like the HTTP error
 *
 * A `json_tool_call` tool (JSON mode, chat.ts) streams as content instead of a tool call.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatRequest, FinishReason, Usage } from '../../core/openai/types.js'
import type { ResponseMeta, SseEvent, StreamTranslator } from '../types.js'
import { JSON_TOOL } from './chat.js'
import { streamException } from './errors.js'
import { chatId, finishReason, mapUsage } from './response.js'

type Delta = ChatChunk['choices'][number]['delta']

/** What a content block index stands for: a tool call (its OpenAI index) or the JSON-mode answer. */
const JSON_BLOCK = -1

interface DeltaEvent {
  contentBlockIndex?: number
  delta?: {
    text?: unknown
    toolUse?: { input?: unknown }
    reasoningContent?: { text?: unknown; signature?: unknown; redactedContent?: unknown }
  }
  start?: { toolUse?: { toolUseId?: unknown; name?: unknown } }
  stopReason?: unknown
  usage?: unknown
}

export class BedrockStream implements StreamTranslator<ChatChunk> {
  private readonly id: string
  private readonly created: number
  private readonly model: string
  private started = false
  private readonly blocks = new Map<number, number>()
  private tools = 0
  private jsonAnswer = false
  private usage: Usage | null = null

  constructor(_req: ChatRequest, meta: ResponseMeta) {
    this.id = chatId(meta)
    this.created = meta.created
    this.model = meta.target.model
  }

  event(e: SseEvent): ChatChunk[] {
    const type = e.event ?? ''
    if (type.endsWith('Exception')) throw streamException(type, e.data)
    let ev: DeltaEvent
    try {
      ev = JSON.parse(e.data) as DeltaEvent
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `bedrock sent a ${type} event that is not JSON`, { provider: 'bedrock' })
    }
    const out: ChatChunk[] = []
    switch (type) {
      case 'messageStart':
        this.role(out)
        break
      case 'contentBlockStart':
        this.blockStart(ev, out)
        break
      case 'contentBlockDelta':
        this.blockDelta(ev, out)
        break
      case 'messageStop':
        this.role(out)
        out.push(this.chunk({}, this.finish(ev.stopReason)))
        break
      case 'metadata':
        this.usage = mapUsage(ev.usage)
        break
      default:
        // contentBlockStop, and event types added after this was written: nothing to say.
        break
    }
    return out
  }

  end(): { chunks: ChatChunk[]; usage: Usage | null } {
    return { chunks: [], usage: this.usage }
  }

  private chunk(delta: Delta, finish: FinishReason | null = null): ChatChunk {
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    }
  }

  /** The role chunk, once, before anything else (also when messageStart never came). */
  private role(out: ChatChunk[]): void {
    if (this.started) return
    this.started = true
    out.push(this.chunk({ role: 'assistant', content: '' }))
  }

  private blockStart(ev: DeltaEvent, out: ChatChunk[]): void {
    const tu = ev.start?.toolUse
    if (!tu || typeof ev.contentBlockIndex !== 'number') return
    this.role(out)
    if (tu.name === JSON_TOOL) {
      this.blocks.set(ev.contentBlockIndex, JSON_BLOCK)
      this.jsonAnswer = true
      return
    }
    const index = this.tools++
    this.blocks.set(ev.contentBlockIndex, index)
    out.push(this.chunk({
      tool_calls: [{ index, id: String(tu.toolUseId), type: 'function', function: { name: String(tu.name), arguments: '' } }],
    }))
  }

  private blockDelta(ev: DeltaEvent, out: ChatChunk[]): void {
    const d = ev.delta
    if (!d) return
    this.role(out)
    if (typeof d.text === 'string') {
      if (d.text) out.push(this.chunk({ content: d.text }))
    } else if (d.toolUse && typeof d.toolUse.input === 'string') {
      const index = typeof ev.contentBlockIndex === 'number' ? this.blocks.get(ev.contentBlockIndex) : undefined
      if (index === JSON_BLOCK) out.push(this.chunk({ content: d.toolUse.input }))
      else if (index !== undefined) out.push(this.chunk({ tool_calls: [{ index, function: { arguments: d.toolUse.input } }] }))
    } else if (d.reasoningContent) {
      const rc = d.reasoningContent
      if (typeof rc.text === 'string') out.push(this.chunk({ reasoning_content: rc.text }))
      else if (typeof rc.signature === 'string') {
        out.push(this.chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: rc.signature }] }))
      } else if (typeof rc.redactedContent === 'string') {
        out.push(this.chunk({ thinking_blocks: [{ type: 'redacted_thinking', data: rc.redactedContent }] }))
      }
    }
  }

  private finish(stopReason: unknown): FinishReason {
    const f = finishReason(stopReason)
    // The JSON-mode tool call was the answer, not a request for a tool.
    return f === 'tool_calls' && this.jsonAnswer && this.tools === 0 ? 'stop' : f
  }
}
