/**
 * The gateway's OpenAI chat reply -> Anthropic's Messages reply, for `/v1/messages` served by a non-Anthropic
 * deployment: a ChatCompletion as a Message, a ChatChunk stream as Anthropic's SSE events, usage and errors in
 * Anthropic's shapes. The mapping follows LiteLLM's adapter (experimental_pass_through/adapters:
 * translate_openai_response_to_anthropic, AnthropicStreamWrapper).
 *
 * Anthropic's published spec lists nullable response fields as required (../shared/data/README.md, "Validation"),
 * so every object built here carries each such field, null where there is no value (`citations`, `stop_sequence`,
 * `server_tool_use`, ...). The Anthropic SDKs parse either way; a strict client does not.
 * Event reference: https://docs.anthropic.com/en/docs/build-with-claude/streaming
 */
import { randomBytes } from 'node:crypto'
import type { ChatChunk, ChatCompletion, ToolCallDelta, Usage } from '../openai/types.js'

export interface AnthropicUsageOut {
  input_tokens: number
  output_tokens: number
  cache_creation_input_tokens: number | null
  cache_read_input_tokens: number | null
  /** The 5-minute / 1-hour split of cache writes: unknown from an OpenAI usage. */
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number } | null
  server_tool_use: { web_search_requests: number } | null
  service_tier: 'standard' | 'priority' | 'batch' | null
}

export interface AnthropicMessage {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: unknown[]
  stop_reason: string | null
  stop_sequence: string | null
  usage: AnthropicUsageOut
}

type Obj = Record<string, unknown>

// ---------------------------------------------------------------------------------------------------------------
// ids, stop reasons, usage

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const ID_LENGTH = 24 // characters after `msg_`, as Anthropic's ids have

/** `msg_` + 24 random base62 chars (Anthropic's id shape). */
export function messageId(): string {
  let id = 'msg_'
  while (id.length < 4 + ID_LENGTH) {
    for (const b of randomBytes(32)) {
      // Rejecting bytes >= 248 (4 * 62) keeps every character equally likely.
      if (b < 248 && id.length < 4 + ID_LENGTH) id += BASE62[b % 62]
    }
  }
  return id
}

/** Anthropic allows [a-zA-Z0-9_-] in a tool_use id; OpenAI-compatible servers send others (`functions.Bash:0`). */
const TOOL_ID_BAD = /[^a-zA-Z0-9_-]/g
const TOOL_ID_OK = /^[a-zA-Z0-9_-]+$/

function toolUseId(id: unknown): string {
  if (typeof id !== 'string' || !id) return `toolu_${messageId().slice(4)}`
  // The client echoes the id back in tool_use and tool_result alike, so a rewritten id still pairs up.
  return TOOL_ID_OK.test(id) ? id : id.replace(TOOL_ID_BAD, '_')
}

const STOP: Readonly<Record<string, string>> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
}

/**
 * OpenAI finish_reason -> Anthropic stop_reason. A turn that ends in tool calls is `tool_use` whatever the finish
 * reason says: some OpenAI-compatible servers (Ollama, older vLLM) report `stop` there, and Anthropic clients run
 * their tool loop on `stop_reason === 'tool_use'`.
 */
function stopReason(finish: string | null | undefined, hasToolCalls: boolean): string {
  if (hasToolCalls && (finish === 'stop' || finish == null)) return 'tool_use'
  return (finish && STOP[finish]) || 'end_turn'
}

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0)

/**
 * OpenAI usage -> Anthropic usage. Anthropic's input_tokens excludes cache reads and writes, OpenAI's prompt_tokens
 * includes them: input = prompt - cached - cache_creation (never below 0).
 */
export function usageToAnthropic(u: Usage | null | undefined): AnthropicUsageOut {
  if (!u) {
    return { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: null, cache_read_input_tokens: null, cache_creation: null, server_tool_use: null, service_tier: null }
  }
  // Providers that report Anthropic-style fields (the gateway's own Anthropic adapter, Bedrock) put reads here too.
  const read = count(u.prompt_tokens_details?.cached_tokens) || count(u.cache_read_input_tokens)
  const write = count(u.cache_creation_input_tokens)
  return {
    input_tokens: Math.max(0, count(u.prompt_tokens) - read - write),
    output_tokens: count(u.completion_tokens),
    cache_creation_input_tokens: write,
    cache_read_input_tokens: read,
    cache_creation: null,
    server_tool_use: null,
    service_tier: null,
  }
}

/**
 * Anthropic usage -> the OpenAI usage the gateway prices (for native Anthropic replies): prompt_tokens = input +
 * cache_read + cache_creation, cached_tokens = cache_read, and the two cache fields kept beside them as LiteLLM does
 * (spend prices cache writes from cache_creation_input_tokens). Null when `u` is not a usage object.
 */
export function usageFromAnthropic(u: unknown): Usage | null {
  if (!u || typeof u !== 'object') return null
  const a = u as Obj
  const read = count(a.cache_read_input_tokens)
  const write = count(a.cache_creation_input_tokens)
  const prompt = count(a.input_tokens) + read + write
  const completion = count(a.output_tokens)
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: read },
    cache_creation_input_tokens: write,
    cache_read_input_tokens: read,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// errors

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  // Anthropic documents `request_too_large` for 413, but its spec's ErrorResponse lists no such type; clients
  // validating against the spec accept invalid_request_error.
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'api_error',
  // A gateway with no healthy deployment is Anthropic's "overloaded" (HTTP 529), which clients retry.
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
}

/** HTTP status -> Anthropic error type (other 4xx: invalid_request_error, other 5xx: api_error). */
export function anthropicErrorType(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error')
}

/** `{type: 'error', error: {type, message}, request_id}`; request_id is null when unknown (the spec requires the key). */
export function anthropicErrorBody(e: { status: number; message: string }, requestId?: string): object {
  return { type: 'error', error: { type: anthropicErrorType(e.status), message: e.message }, request_id: requestId ?? null }
}

// ---------------------------------------------------------------------------------------------------------------
// non-stream reply

function thinkingBlocks(m: Obj, out: unknown[]): void {
  const blocks = m.thinking_blocks
  if (Array.isArray(blocks) && blocks.length) {
    for (const b of blocks as Obj[]) {
      if (!b || typeof b !== 'object') continue
      if (b.type === 'redacted_thinking') out.push({ type: 'redacted_thinking', data: typeof b.data === 'string' ? b.data : '' })
      else if (b.type === 'thinking') {
        out.push({ type: 'thinking', thinking: typeof b.thinking === 'string' ? b.thinking : '', signature: typeof b.signature === 'string' ? b.signature : '' })
      }
    }
  } else if (typeof m.reasoning_content === 'string' && m.reasoning_content) {
    out.push({ type: 'thinking', thinking: m.reasoning_content, signature: '' })
  }
}

/** Tool-call arguments -> the `input` object; arguments that are not a JSON object give `{}` (never throws). */
function toolInput(args: unknown): Obj {
  if (typeof args !== 'string' || !args) return {}
  try {
    const v = JSON.parse(args) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {}
  } catch {
    return {}
  }
}

/** A ChatCompletion (first choice) as an Anthropic Message; `model` is the name the client asked for. */
export function chatToMessage(c: ChatCompletion, model: string): AnthropicMessage {
  const choice = c.choices?.[0]
  const m = (choice?.message ?? {}) as Obj
  const content: unknown[] = []
  thinkingBlocks(m, content)
  const text = typeof m.content === 'string' && m.content ? m.content : typeof m.refusal === 'string' ? m.refusal : ''
  if (text) content.push({ type: 'text', text, citations: null })
  let tools = 0
  if (Array.isArray(m.tool_calls)) {
    for (const tc of m.tool_calls as Array<{ id?: unknown; function?: { name?: unknown; arguments?: unknown } }>) {
      content.push({ type: 'tool_use', id: toolUseId(tc.id), name: String(tc.function?.name ?? ''), input: toolInput(tc.function?.arguments) })
      tools++
    }
  }
  const fc = m.function_call as { name?: unknown; arguments?: unknown } | undefined
  if (fc && typeof fc === 'object' && typeof fc.name === 'string') {
    content.push({ type: 'tool_use', id: toolUseId(undefined), name: fc.name, input: toolInput(fc.arguments) })
    tools++
  }
  return {
    id: typeof c.id === 'string' && c.id.startsWith('msg_') ? c.id : messageId(),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason(choice?.finish_reason, tools > 0),
    stop_sequence: null,
    usage: usageToAnthropic(c.usage),
  }
}

// ---------------------------------------------------------------------------------------------------------------
// stream

const NONE = 0
const TEXT = 1
const THINKING = 2
const TOOL = 3

function sse(type: string, data: object): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
}

/** One Anthropic stream event as an object: what the writer sends as `event: <type>` + `data: <this, as JSON>`. */
export type AnthropicEvent = { type: string } & Obj

/**
 * One per streamed request: ChatChunks in, Anthropic SSE text out. message_start goes out with the first chunk
 * (input_tokens 0 unless that chunk carries usage: OpenAI reports usage only at the end); content pieces open, extend and close content blocks in
 * order (a new block when the kind changes or a new tool call index appears); end() closes the open block and sends
 * message_delta (stop reason and the final usage, input counts included: the SDKs take input_tokens and the cache
 * counts from message_delta when present) and message_stop. The finish_reason chunk sends nothing, because the
 * usage chunk comes after it.
 *
 * chunkEvents() / endEvents() give the same events as objects (the in-process SDK's anthropicMessages()): one code
 * path builds each event, and only the SSE methods stringify it, so the proxy's bytes and the SDK's objects agree.
 */
export class AnthropicStreamWriter {
  private readonly model: string
  private readonly id: string
  private started = false
  private ended = false
  /** Index of the open block (-1 before the first), its kind, and the OpenAI tool-call index a TOOL block carries. */
  private index = -1
  private kind = NONE
  private toolIndex = -1
  private tools = 0
  private finish: string | null = null
  private usage: Usage | null = null
  /** Where events go while an *Events() method runs; null: they are returned as SSE text. */
  private sink: AnthropicEvent[] | null = null

  constructor(model: string, id: string) {
    this.model = model
    this.id = id
  }

  /** chunk(), as event objects. */
  chunkEvents(c: ChatChunk): AnthropicEvent[] {
    return this.collect(() => this.chunk(c))
  }

  /** end(), as event objects. */
  endEvents(usage: Usage | null): AnthropicEvent[] {
    return this.collect(() => this.end(usage))
  }

  chunk(c: ChatChunk): string {
    if (c.usage) this.usage = c.usage
    let out = this.started ? '' : this.start()
    const choice = c.choices?.[0]
    // Only the first choice is translated: a Message has one (n > 1 streams interleave choices by index).
    if (!choice || choice.index > 0) return out
    const d = choice.delta
    if (d) {
      const reasoning = d.reasoning_content
      const blocks = d.thinking_blocks
      if (typeof reasoning === 'string' && reasoning) out += this.thinking(reasoning)
      if (Array.isArray(blocks)) out += this.thinkingBlocks(blocks as Obj[], typeof reasoning === 'string')
      if (typeof d.content === 'string' && d.content) out += this.text(d.content)
      else if (typeof d.refusal === 'string' && d.refusal) out += this.text(d.refusal)
      if (d.tool_calls) for (const tc of d.tool_calls) out += this.toolCall(tc)
    }
    if (choice.finish_reason) this.finish = choice.finish_reason
    return out
  }

  end(usage: Usage | null): string {
    if (this.ended) return ''
    this.ended = true
    let out = this.started ? '' : this.start()
    out += this.close()
    const u = usageToAnthropic(usage ?? this.usage)
    out += this.emit('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason(this.finish, this.tools > 0), stop_sequence: null },
      usage: {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_creation_input_tokens: u.cache_creation_input_tokens,
        cache_read_input_tokens: u.cache_read_input_tokens,
        server_tool_use: null,
      },
    })
    return out + this.emit('message_stop', { type: 'message_stop' })
  }

  /** A mid-stream failure: `event: error` with Anthropic's error body. */
  error(e: { status: number; message: string }, requestId?: string): string {
    this.ended = true
    return this.emit('error', anthropicErrorBody(e, requestId))
  }

  private collect(write: () => string): AnthropicEvent[] {
    const events: AnthropicEvent[] = []
    this.sink = events
    try {
      write()
    } finally {
      this.sink = null
    }
    return events
  }

  /** An event as SSE text, or (inside collect) kept as the object and '' returned. `data.type` is `type`. */
  private emit(type: string, data: object): string {
    if (this.sink === null) return sse(type, data)
    this.sink.push(data as AnthropicEvent)
    return ''
  }

  private start(): string {
    this.started = true
    return this.emit('message_start', {
      type: 'message_start',
      message: {
        id: this.id, type: 'message', role: 'assistant', model: this.model, content: [],
        stop_reason: null, stop_sequence: null, usage: usageToAnthropic(this.usage),
      },
    })
  }

  private close(): string {
    if (this.kind === NONE) return ''
    this.kind = NONE
    return this.emit('content_block_stop', { type: 'content_block_stop', index: this.index })
  }

  private open(kind: number, block: object): string {
    const out = this.close()
    this.kind = kind
    this.index++
    return out + this.emit('content_block_start', { type: 'content_block_start', index: this.index, content_block: block })
  }

  private delta(delta: object): string {
    return this.emit('content_block_delta', { type: 'content_block_delta', index: this.index, delta })
  }

  private text(text: string): string {
    const out = this.kind === TEXT ? '' : this.open(TEXT, { type: 'text', text: '', citations: null })
    return out + this.delta({ type: 'text_delta', text })
  }

  private thinking(text: string): string {
    const out = this.kind === THINKING ? '' : this.open(THINKING, { type: 'thinking', thinking: '', signature: '' })
    return out + this.delta({ type: 'thinking_delta', thinking: text })
  }

  /**
   * LiteLLM-style `thinking_blocks` in a delta: a signature closes the thinking block as Anthropic's signature_delta
   * does; a redacted block is a block of its own. Their text is already sent when `reasoning_content` rode along.
   */
  private thinkingBlocks(blocks: Obj[], textSent: boolean): string {
    let out = ''
    for (const b of blocks) {
      if (!b || typeof b !== 'object') continue
      if (b.type === 'redacted_thinking') {
        out += this.open(NONE, { type: 'redacted_thinking', data: typeof b.data === 'string' ? b.data : '' })
        out += this.emit('content_block_stop', { type: 'content_block_stop', index: this.index })
      } else if (b.type === 'thinking') {
        if (!textSent && typeof b.thinking === 'string' && b.thinking) out += this.thinking(b.thinking)
        if (typeof b.signature === 'string' && b.signature) {
          if (this.kind !== THINKING) out += this.open(THINKING, { type: 'thinking', thinking: '', signature: '' })
          out += this.delta({ type: 'signature_delta', signature: b.signature })
        }
      }
    }
    return out
  }

  private toolCall(tc: ToolCallDelta): string {
    let out = ''
    if (this.kind !== TOOL || tc.index !== this.toolIndex) {
      this.toolIndex = tc.index
      this.tools++
      out = this.open(TOOL, { type: 'tool_use', id: toolUseId(tc.id), name: tc.function?.name ?? '', input: {} })
    }
    const args = tc.function?.arguments
    return args ? out + this.delta({ type: 'input_json_delta', partial_json: args }) : out
  }
}
