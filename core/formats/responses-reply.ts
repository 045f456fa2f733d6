/**
 * The gateway's chat reply -> an OpenAI Responses API `Response` (../shared/data/openai/openapi.yaml, schemas
 * Response, OutputItem, ResponseUsage, and every Response*Event for streams). `chatToResponse` translates a whole
 * ChatCompletion; `ResponsesStreamWriter` turns a stream of ChatChunks into the Responses streaming events. Both
 * build the Response from the same pieces, so a streamed reply ends with the same object a plain one returns.
 *
 * Reasoning (`reasoning_content` on chat replies) becomes a reasoning item with a `summary_text` part, as LiteLLM's
 * bridge does: clients that show reasoning (Codex, the SDK's helpers) read the summary, and chat models give no
 * encrypted content to round-trip anyway.
 *
 * MCP tools the gateway offered and ran (the MCP plugin: state.toolLists, state.toolCalls) lead the output as
 * `mcp_list_tools` and `mcp_call` items; in a stream each call arrives as a marker between model turns
 * (core/openai/tool-events.ts), and the turn's message and reasoning items close before it, so a later turn's text
 * is a new message item after the calls, as OpenAI's own MCP tool orders them.
 */
import { randomBytes } from 'node:crypto'
import type { ChatChunk, ChatCompletion, ToolCallDelta, Usage } from '../openai/types.js'
import type { ToolCallRecord, ToolList } from '../state.js'
import type { ResponseItem } from './responses-request.js'

export interface ResponseOptions {
  /** 'resp_...', from responseId(). */
  id: string
  /** Unix seconds. */
  createdAt: number
  /** The model name the client asked for. */
  model: string
  /** The CreateResponse body, for the fields a Response echoes (instructions, tools, temperature, ...). */
  request: Record<string, unknown>
  /** Clock in milliseconds for `completed_at`; Date.now by default (tests inject a fixed one). */
  now?: () => number
  /** MCP tools offered to the model, per server: `mcp_list_tools` items, first in the output. */
  toolLists?: readonly ToolList[] | undefined
  /**
   * MCP calls the gateway ran: `mcp_call` items after the lists. Read by chatToResponse only: a stream brings them
   * as markers, in order.
   */
  toolCalls?: readonly ToolCallRecord[] | undefined
}

type Obj = Record<string, unknown>

/** 24 random bytes as hex: 48 characters, the length OpenAI's own ids have after the prefix. */
function hexId(prefix: string): string {
  return prefix + randomBytes(24).toString('hex')
}

export function responseId(): string {
  return hexId('resp_')
}

function itemId(kind: 'msg' | 'fc' | 'rs' | 'mcpl' | 'mcp'): string {
  return hexId(`${kind}_`)
}

/** The output items of a Response (to store as the next turn's history). */
export function outputItems(response: Record<string, unknown>): ResponseItem[] {
  return Array.isArray(response.output) ? (response.output as ResponseItem[]) : []
}

// ---------------------------------------------------------------------------------------------------------------
// Pieces shared by chatToResponse and the stream writer

function messageItem(id: string, text: string | null, refusal: string | null, status: string): ResponseItem {
  const content: Obj[] = []
  if (text !== null) content.push(textPart(text))
  if (refusal !== null) content.push({ type: 'refusal', refusal })
  return { type: 'message', id, status, role: 'assistant', content }
}

function functionCallItem(id: string, callId: string, name: string, args: string, status: string): ResponseItem {
  return { type: 'function_call', id, call_id: callId, name, arguments: args, status }
}

function reasoningItem(id: string, text: string | null, status: string): ResponseItem {
  return { type: 'reasoning', id, summary: text === null ? [] : [{ type: 'summary_text', text }], status }
}

/** MCPListTools: a server's tools as offered (`tools` empty while a stream's item is in progress). */
function mcpListItem(id: string, list: ToolList, tools = true): ResponseItem {
  return {
    type: 'mcp_list_tools', id, server_label: list.server, error: null,
    tools: tools ? list.tools.map((t) => ({ name: t.name, description: t.description ?? null, input_schema: t.input_schema, annotations: t.annotations ?? null })) : [],
  }
}

/**
 * MCPToolCall: a call the gateway ran, `name` the tool's own. A failure is the spec's MCPToolExecutionError with the
 * text the model was given.
 */
function mcpCallItem(id: string, rec: ToolCallRecord, status: string = rec.error === null ? 'completed' : 'failed'): ResponseItem {
  const done = status !== 'in_progress'
  return {
    type: 'mcp_call', id, server_label: rec.server, name: rec.tool, arguments: rec.arguments,
    output: done ? rec.output : null,
    error: done && rec.error !== null ? { type: 'mcp_tool_execution_error', content: [{ type: 'text', text: rec.error }] } : null,
    status, approval_request_id: null,
  }
}

/** The `mcp_list_tools` and `mcp_call` items that lead a Response's output. */
function mcpItems(o: ResponseOptions, calls: readonly ToolCallRecord[]): ResponseItem[] {
  const out: ResponseItem[] = []
  for (const list of o.toolLists ?? []) out.push(mcpListItem(itemId('mcpl'), list))
  for (const rec of calls) out.push(mcpCallItem(itemId('mcp'), rec))
  return out
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}

/** Chat usage -> ResponseUsage. cache_write_tokens: Anthropic-style `cache_creation_input_tokens` where reported. */
export function responseUsage(u: Usage): Obj {
  return {
    input_tokens: count(u.prompt_tokens),
    input_tokens_details: {
      cached_tokens: count(u.prompt_tokens_details?.cached_tokens),
      cache_write_tokens: count(u.cache_creation_input_tokens),
    },
    output_tokens: count(u.completion_tokens),
    output_tokens_details: { reasoning_tokens: count(u.completion_tokens_details?.reasoning_tokens) },
    total_tokens: count(u.total_tokens) || count(u.prompt_tokens) + count(u.completion_tokens),
  }
}

/** finish_reason -> the Response's status and incomplete_details. */
function finishStatus(finish: string | null | undefined): { status: 'completed' | 'incomplete'; reason: string | null } {
  if (finish === 'length') return { status: 'incomplete', reason: 'max_output_tokens' }
  if (finish === 'content_filter') return { status: 'incomplete', reason: 'content_filter' }
  return { status: 'completed', reason: null }
}

/** Function tools as a Response lists them: OpenAI fills description/parameters with null and strict with true. */
function echoTools(tools: unknown): unknown[] {
  if (!Array.isArray(tools)) return []
  return tools.map((t: Obj) => t?.type !== 'function' ? t : {
    type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? true,
  })
}

function orNull(v: unknown): unknown {
  return v === undefined ? null : v
}

/**
 * A Response with everything but output and usage: the request's echo fields with OpenAI's defaults. `completed_at`
 * is set for a completed one only, as OpenAI documents.
 */
function responseShell(o: ResponseOptions, status: string): Obj {
  const r = o.request
  const reasoning = (r.reasoning ?? {}) as Obj
  const text = (r.text ?? {}) as Obj
  const shell: Obj = {
    id: o.id,
    object: 'response',
    created_at: o.createdAt,
    status,
    background: false,
    completed_at: status === 'completed' ? Math.floor((o.now ?? Date.now)() / 1000) : null,
    error: null,
    incomplete_details: null,
    instructions: orNull(r.instructions),
    max_output_tokens: orNull(r.max_output_tokens),
    max_tool_calls: orNull(r.max_tool_calls),
    model: o.model,
    output: [],
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: orNull(r.previous_response_id),
    prompt_cache_key: orNull(r.prompt_cache_key),
    reasoning: { effort: orNull(reasoning.effort), summary: orNull(reasoning.summary) },
    safety_identifier: orNull(r.safety_identifier),
    service_tier: r.service_tier ?? 'default',
    store: r.store ?? true,
    temperature: r.temperature ?? 1,
    text: { format: text.format ?? { type: 'text' }, verbosity: text.verbosity ?? 'medium' },
    tool_choice: r.tool_choice ?? 'auto',
    tools: echoTools(r.tools),
    top_logprobs: r.top_logprobs ?? 0,
    top_p: r.top_p ?? 1,
    truncation: r.truncation ?? 'disabled',
    metadata: r.metadata ?? {},
  }
  // The spec types `user` as a plain string: echoed only when the client sent one.
  if (typeof r.user === 'string') shell.user = r.user
  return shell
}

/** A finished Response: shell + output + usage (usage left out when the upstream reported none). */
function finishedResponse(o: ResponseOptions, finish: string | null | undefined, output: ResponseItem[], usage: Usage | null | undefined): Obj {
  const { status, reason } = finishStatus(finish)
  const r = responseShell(o, status)
  if (reason) r.incomplete_details = { reason }
  r.output = output
  if (usage) r.usage = responseUsage(usage)
  return r
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * ChatCompletion -> Response: the MCP items (when the gateway offered or ran MCP tools), a reasoning item (when the
 * reply has reasoning), the message item (when it has text or a refusal; 'incomplete' when the reply was cut), then
 * one function_call item per tool call.
 */
export function chatToResponse(c: ChatCompletion, o: ResponseOptions): Record<string, unknown> {
  const choice = c.choices[0]
  const m = choice?.message
  const finish = choice?.finish_reason
  const output = mcpItems(o, o.toolCalls ?? [])
  if (m) {
    const reasoning = m.reasoning_content
    if (typeof reasoning === 'string' && reasoning) output.push(reasoningItem(itemId('rs'), reasoning, 'completed'))
    const text = typeof m.content === 'string' && m.content ? m.content : null
    const refusal = typeof m.refusal === 'string' && m.refusal ? m.refusal : null
    if (text !== null || refusal !== null) {
      output.push(messageItem(itemId('msg'), text, refusal, finishStatus(finish).status === 'completed' ? 'completed' : 'incomplete'))
    }
    for (const tc of m.tool_calls ?? []) {
      output.push(functionCallItem(itemId('fc'), tc.id, tc.function.name, tc.function.arguments ?? '', 'completed'))
    }
  }
  return finishedResponse(o, finish, output, c.usage)
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming

/** One Responses stream event as an object: `type`, the event's fields, `sequence_number` from 0. */
export type ResponseEvent = { type: string; sequence_number: number } & Obj

/** One output item being streamed. `text` is the message text, the reasoning text or the call's arguments. */
interface StreamItem {
  /** 'mcp': an mcp_list_tools or mcp_call item, whole when opened. */
  kind: 'message' | 'reasoning' | 'function_call' | 'mcp'
  index: number
  id: string
  /** The item as its output_item.done event gave it, once closed (before end(): MCP items, a turn's message). */
  closed: ResponseItem | null
  text: string
  /** message: content_index of the output_text part and of the refusal part, -1 until opened. */
  textPart: number
  refusalPart: number
  refusal: string
  callId: string
  name: string
}

function newItem(kind: StreamItem['kind'], index: number, id: string): StreamItem {
  return { kind, index, id, closed: null, text: '', textPart: -1, refusalPart: -1, refusal: '', callId: '', name: '' }
}

/** The ResponseErrorCode values a failure maps to (the spec's enum has no generic client-error code). */
function failureCode(e: { status: number; code?: string }): string {
  if (e.code === 'rate_limit_exceeded' || e.status === 429) return 'rate_limit_exceeded'
  if (e.status >= 400 && e.status < 500) return 'invalid_prompt'
  return 'server_error'
}

/**
 * One per streamed request: ChatChunks in, Responses streaming events out as SSE text (`event: <type>` + `data:`),
 * each event carrying its `type` and a `sequence_number` counting from 0. Output items are opened as their first
 * delta arrives (output_index in that order) and all closed by end(), then response.completed / .incomplete
 * carries the whole Response. Only the first choice is read: a Response has no `n`.
 *
 * startEvents() / chunkEvents() / endEvents() give the same events as objects (the in-process SDK's responses()):
 * one code path builds each event and only the SSE methods stringify it, so the proxy's bytes and the SDK's objects
 * agree, sequence numbers included.
 */
export class ResponsesStreamWriter {
  private readonly o: ResponseOptions
  private seq = 0
  private readonly items: StreamItem[] = []
  private message: StreamItem | null = null
  private reasoning: StreamItem | null = null
  /** Tool calls by their chat stream `index`. */
  private readonly calls = new Map<number, StreamItem>()
  private finish: string | null = null
  private usage: Usage | null = null
  private done = false
  /** Where events go while an *Events() method runs; null: they are returned as SSE text. */
  private sink: ResponseEvent[] | null = null

  constructor(o: ResponseOptions) {
    this.o = o
  }

  /** response.created and response.in_progress, then the MCP servers' tool lists. */
  start(): string {
    let out = this.event('response.created', { response: responseShell(this.o, 'in_progress') }) +
      this.event('response.in_progress', { response: responseShell(this.o, 'in_progress') })
    for (const list of this.o.toolLists ?? []) {
      const item = this.open('mcp', itemId('mcpl'))
      const at = { item_id: item.id, output_index: item.index }
      item.closed = mcpListItem(item.id, list)
      out += this.event('response.output_item.added', { output_index: item.index, item: mcpListItem(item.id, list, false) }) +
        this.event('response.mcp_list_tools.in_progress', at) +
        this.event('response.mcp_list_tools.completed', at) +
        this.event('response.output_item.done', { output_index: item.index, item: item.closed })
    }
    return out
  }

  /**
   * An MCP call the gateway ran between model turns: the turn's reasoning and message items close (a later turn's
   * text opens new ones), then the mcp_call item, from output_item.added to output_item.done.
   */
  toolCall(rec: ToolCallRecord): string {
    if (this.done) return ''
    let out = ''
    const open = [this.reasoning, this.message].filter((i): i is StreamItem => i !== null).sort((a, b) => a.index - b.index)
    for (const item of open) {
      item.closed = this.snapshot(item, 'completed')
      out += this.close(item, item.closed)
    }
    this.reasoning = this.message = null
    const item = this.open('mcp', itemId('mcp'))
    const at = { item_id: item.id, output_index: item.index }
    item.closed = mcpCallItem(item.id, rec)
    return out +
      this.event('response.output_item.added', { output_index: item.index, item: mcpCallItem(item.id, rec, 'in_progress') }) +
      this.event('response.mcp_call.in_progress', at) +
      this.event('response.mcp_call_arguments.delta', { ...at, delta: rec.arguments }) +
      this.event('response.mcp_call_arguments.done', { ...at, arguments: rec.arguments }) +
      this.event(rec.error === null ? 'response.mcp_call.completed' : 'response.mcp_call.failed', at) +
      this.event('response.output_item.done', { output_index: item.index, item: item.closed })
  }

  chunk(c: ChatChunk): string {
    if (this.done) return ''
    if (c.usage) this.usage = c.usage
    const choice = c.choices.length ? c.choices[0]! : null
    if (!choice || choice.index !== 0) return ''
    const d = choice.delta
    let out = ''
    const reasoning = d.reasoning_content
    if (typeof reasoning === 'string' && reasoning) out += this.reasoningDelta(reasoning)
    if (typeof d.content === 'string' && d.content) out += this.textDelta(d.content)
    if (typeof d.refusal === 'string' && d.refusal) out += this.refusalDelta(d.refusal)
    if (d.tool_calls) for (const tc of d.tool_calls) out += this.toolDelta(tc)
    if (choice.finish_reason) this.finish = choice.finish_reason
    return out
  }

  /** Close every open item in output order, then response.completed (or response.incomplete when cut short). */
  end(usage: Usage | null): { text: string; response: Record<string, unknown> } {
    const { status } = finishStatus(this.finish)
    let text = ''
    const output: ResponseItem[] = new Array(this.items.length)
    for (const item of this.items) {
      if (item.closed) {
        output[item.index] = item.closed
        continue
      }
      // A reply cut short leaves its message incomplete; reasoning and calls that were streamed are whole.
      const done = this.snapshot(item, item.kind === 'message' && status !== 'completed' ? 'incomplete' : 'completed')
      text += this.close(item, done)
      output[item.index] = done
    }
    const response = finishedResponse(this.o, this.finish, output, usage ?? this.usage)
    text += this.event(status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
    this.done = true
    return { text, response }
  }

  /** response.failed, with what was streamed so far as the (incomplete) output. */
  error(e: { status: number; message: string; code?: string }): string {
    const response = responseShell(this.o, 'failed')
    response.error = { code: failureCode(e), message: e.message }
    response.output = this.items.map((item) => item.closed ?? this.snapshot(item, 'incomplete'))
    this.done = true
    return this.event('response.failed', { response })
  }

  /** start(), as event objects. */
  startEvents(): ResponseEvent[] {
    return this.collect(() => this.start())
  }

  /** chunk(), as event objects. */
  chunkEvents(c: ChatChunk): ResponseEvent[] {
    return this.collect(() => this.chunk(c))
  }

  /** end(), with the events as objects. */
  endEvents(usage: Usage | null): { events: ResponseEvent[]; response: Record<string, unknown> } {
    let response: Record<string, unknown> = {}
    const events = this.collect(() => {
      const r = this.end(usage)
      response = r.response
      return r.text
    })
    return { events, response }
  }

  private collect(write: () => string): ResponseEvent[] {
    const events: ResponseEvent[] = []
    this.sink = events
    try {
      write()
    } finally {
      this.sink = null
    }
    return events
  }

  /** An event as SSE text, or (inside collect) kept as the object and '' returned. */
  private event(type: string, fields: Obj): string {
    const ev = { type, ...fields, sequence_number: this.seq++ }
    if (this.sink === null) return `event: ${type}\ndata: ${JSON.stringify(ev)}\n\n`
    this.sink.push(ev)
    return ''
  }

  private open(kind: StreamItem['kind'], id: string): StreamItem {
    const item = newItem(kind, this.items.length, id)
    this.items.push(item)
    return item
  }

  private reasoningDelta(delta: string): string {
    let out = ''
    let r = this.reasoning
    if (!r) {
      r = this.reasoning = this.open('reasoning', itemId('rs'))
      out += this.event('response.output_item.added', { output_index: r.index, item: reasoningItem(r.id, null, 'in_progress') })
      out += this.event('response.reasoning_summary_part.added', {
        item_id: r.id, output_index: r.index, summary_index: 0, part: { type: 'summary_text', text: '' },
      })
    }
    r.text += delta
    return out + this.event('response.reasoning_summary_text.delta', { item_id: r.id, output_index: r.index, summary_index: 0, delta })
  }

  private messageOpen(): { m: StreamItem; out: string } {
    if (this.message) return { m: this.message, out: '' }
    const m = this.message = this.open('message', itemId('msg'))
    return { m, out: this.event('response.output_item.added', { output_index: m.index, item: messageItem(m.id, null, null, 'in_progress') }) }
  }

  private textDelta(delta: string): string {
    let { m, out } = this.messageOpen()
    if (m.textPart === -1) {
      m.textPart = m.refusalPart === -1 ? 0 : 1
      out += this.event('response.content_part.added', {
        item_id: m.id, output_index: m.index, content_index: m.textPart, part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      })
    }
    m.text += delta
    return out + this.event('response.output_text.delta', { item_id: m.id, output_index: m.index, content_index: m.textPart, delta, logprobs: [] })
  }

  private refusalDelta(delta: string): string {
    let { m, out } = this.messageOpen()
    if (m.refusalPart === -1) {
      m.refusalPart = m.textPart === -1 ? 0 : 1
      out += this.event('response.content_part.added', {
        item_id: m.id, output_index: m.index, content_index: m.refusalPart, part: { type: 'refusal', refusal: '' },
      })
    }
    m.refusal += delta
    return out + this.event('response.refusal.delta', { item_id: m.id, output_index: m.index, content_index: m.refusalPart, delta })
  }

  private toolDelta(tc: ToolCallDelta): string {
    let out = ''
    let call = this.calls.get(tc.index)
    if (!call) {
      call = this.open('function_call', itemId('fc'))
      // Some upstreams omit the id on a call's first delta; the client still needs a call_id to answer it.
      call.callId = tc.id || hexId('call_')
      call.name = tc.function?.name ?? ''
      this.calls.set(tc.index, call)
      out += this.event('response.output_item.added', { output_index: call.index, item: functionCallItem(call.id, call.callId, call.name, '', 'in_progress') })
    } else if (!call.name && tc.function?.name) {
      call.name = tc.function.name
    }
    const delta = tc.function?.arguments
    if (!delta) return out
    call.text += delta
    return out + this.event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta })
  }

  private close(item: StreamItem, done: ResponseItem): string {
    const at = { item_id: item.id, output_index: item.index }
    let out = ''
    if (item.kind === 'message') {
      if (item.textPart !== -1) {
        out += this.event('response.output_text.done', { ...at, content_index: item.textPart, text: item.text, logprobs: [] })
        out += this.event('response.content_part.done', { ...at, content_index: item.textPart, part: textPart(item.text) })
      }
      if (item.refusalPart !== -1) {
        out += this.event('response.refusal.done', { ...at, content_index: item.refusalPart, refusal: item.refusal })
        out += this.event('response.content_part.done', { ...at, content_index: item.refusalPart, part: { type: 'refusal', refusal: item.refusal } })
      }
    } else if (item.kind === 'reasoning') {
      out += this.event('response.reasoning_summary_text.done', { ...at, summary_index: 0, text: item.text })
      out += this.event('response.reasoning_summary_part.done', { ...at, summary_index: 0, part: { type: 'summary_text', text: item.text } })
    } else {
      out += this.event('response.function_call_arguments.done', { ...at, name: item.name, arguments: item.text })
    }
    return out + this.event('response.output_item.done', { output_index: item.index, item: done })
  }

  /** The item as it stands, in the shape chatToResponse gives it (MCP items are closed when opened). */
  private snapshot(item: StreamItem, status: string): ResponseItem {
    if (item.kind === 'reasoning') return reasoningItem(item.id, item.text, status)
    if (item.kind === 'function_call') return functionCallItem(item.id, item.callId, item.name, item.text, status)
    const content: Obj[] = []
    if (item.textPart !== -1) content[item.textPart] = textPart(item.text)
    if (item.refusalPart !== -1) content[item.refusalPart] = { type: 'refusal', refusal: item.refusal }
    return { type: 'message', id: item.id, status, role: 'assistant', content }
  }
}

function textPart(text: string): Obj {
  return { type: 'output_text', text, annotations: [], logprobs: [] }
}
