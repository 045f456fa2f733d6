/**
 * The tool loop for MCP tools the gateway runs itself (`require_approval: "never"`): when the model's reply asks for
 * them, the calls go to their servers (in parallel), the reply and the results are appended to the conversation,
 * and the model is called again, until it answers without them or `maxIterations` model turns were made.
 *
 * A JSON reply is the last turn's, with the usage of every turn summed. A stream reaches the client as it comes: each
 * turn's text and reasoning at once (under the first turn's chunk id, so the client sees one completion); the
 * deltas of calls the gateway runs, and the finish chunk of a turn that ends in them, are withheld; usage chunks are
 * summed and sent once at the end. Between turns, one marker per call ran (core/openai/tool-events.ts) tells a
 * writer that shows calls (the Responses API's `mcp_call` items) what happened.
 *
 * A reply that mixes the gateway's tools with the client's own functions runs nothing: it goes to the client as is.
 */
import { randomBytes } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import type { ChatChunk, ChatCompletion, ChatMessage, ToolCall, ToolCallDelta, Usage } from '../../core/openai/types.js'
import { TOOL_CALL_EVENT, type ToolCallEvent } from '../../core/openai/tool-events.js'
import type { GatewayState, ToolCallRecord, ToolLoop } from '../../core/state.js'
import type { ProviderResult } from '../../providers/types.js'
import { executeTool, toolRecord } from './tools.js'
import type { McpRegistry, McpTool } from './types.js'

export { TOOL_CALL_EVENT, isToolCallEvent, type ToolCallEvent } from '../../core/openai/tool-events.js'

/** What a request's tool loop works with (inject.ts builds it). */
export interface ToolLoopOptions {
  state: GatewayState
  registry: McpRegistry
  /** The tools the gateway runs, by the function name the model sees. */
  owned: ReadonlyMap<string, McpTool>
  /**
   * Model turns at most, the first included. The last one is asked with tool_choice 'none'; should it still call
   * tools, its reply goes to the client as it is.
   */
  maxIterations: number
  logger: Logger
}

type Again = (body: Record<string, unknown>) => Promise<ProviderResult>
type Obj = Record<string, unknown>

/** A tool call as read off a reply: its id, the function name and the arguments' JSON text. */
interface Call {
  id: string
  name: string
  arguments: string
}

/** The loop for one request (state.toolLoop): JSON replies are run turn by turn, streams as they are read. */
export function createToolLoop(o: ToolLoopOptions): ToolLoop {
  return {
    async run(first, again) {
      if (first.kind === 'json') return jsonLoop(o, first, again)
      if (first.kind !== 'stream') return first
      // The markers ride along in the chunk stream; every writer of a chat stream knows to skip or show them.
      return { kind: 'stream', chunks: streamLoop(o, first.chunks as AsyncIterable<ChatChunk>, again) as AsyncIterable<ChatChunk> }
    },
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

async function jsonLoop(o: ToolLoopOptions, first: Extract<ProviderResult, { kind: 'json' }>, again: Again): Promise<ProviderResult> {
  let result = first
  let usage = first.usage
  let request = o.state.body!
  for (let turn = 1; turn < o.maxIterations; turn++) {
    const message = (result.body as ChatCompletion).choices?.[0]?.message
    const calls = message ? ownedCalls(o.owned, message.tool_calls) : null
    if (calls === null) break
    const records = await runCalls(o, calls)
    // The client went away while the tools ran: no further model turn.
    if (o.state.signal.aborted) throw gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request')
    const assistant: ChatMessage = { role: 'assistant', content: message!.content ?? null, tool_calls: message!.tool_calls! }
    // Extended thinking (Anthropic, Bedrock) must come back with the turn that called tools.
    if (Array.isArray(message!.thinking_blocks)) assistant.thinking_blocks = message!.thinking_blocks
    request = nextRequest(request, assistant, records, turn + 1 === o.maxIterations)
    const next = await again(request)
    if (next.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', `a ${next.kind} reply to a JSON tool-loop turn`)
    result = next
    usage = addUsage(usage, next.usage)
  }
  if (result === first) return first
  const body = result.body as ChatCompletion
  if (usage) body.usage = usage
  return { kind: 'json', body, usage }
}

/** The calls of a reply when every one is the gateway's; null when there are none or some are the client's. */
function ownedCalls(owned: ReadonlyMap<string, McpTool>, toolCalls: ToolCall[] | undefined): Call[] | null {
  if (!Array.isArray(toolCalls) || toolCalls.length === 0) return null
  const out: Call[] = []
  for (const tc of toolCalls) {
    const name = tc.function?.name
    if (!owned.has(name)) return null
    out.push({ id: tc.id, name, arguments: tc.function.arguments ?? '' })
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Running calls

/** Run the calls in parallel; their records go to state.toolCalls in call order. Never throws: a failure is a result. */
async function runCalls(o: ToolLoopOptions, calls: readonly Call[]): Promise<ToolCallRecord[]> {
  const records = await Promise.all(calls.map((c) => runCall(o, c)))
  o.state.toolCalls.push(...records)
  return records
}

async function runCall(o: ToolLoopOptions, call: Call): Promise<ToolCallRecord> {
  const tool = o.owned.get(call.name)!
  const rec = toolRecord(call.id, call.name, tool, call.arguments)
  const args = parseArguments(call.arguments)
  // Arguments that are not a JSON object never reach the server; the model is told why.
  if (typeof args === 'string') rec.error = args
  else await executeTool(o.state, o.registry, o.logger, rec, tool, args)
  o.logger.debug('MCP tool call', {
    requestId: o.state.requestId, server: tool.server, tool: tool.name, durationMs: rec.durationMs, ok: rec.error === null,
  })
  return rec
}

/** The arguments as an object, or why they cannot be sent (the model is told). Empty text is no arguments. */
function parseArguments(text: string): Obj | string {
  if (text.trim() === '') return {}
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return 'The tool call arguments are not valid JSON.'
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'The tool call arguments must be a JSON object.'
  return v as Obj
}

/** The request for the next turn: the conversation so far, the model's reply that called tools, and their results. */
function nextRequest(request: Obj, assistant: ChatMessage, records: readonly ToolCallRecord[], last: boolean): Obj {
  const messages = [...(request.messages as ChatMessage[]), assistant]
  for (const r of records) {
    messages.push({ role: 'tool', tool_call_id: r.id, content: r.error === null ? r.output! : `Error: ${r.error}` })
  }
  const next: Obj = { ...request, messages }
  // Once results are in, the client's tool_choice is dropped (as LiteLLM does): a 'required' or named choice would
  // force a call on every turn and the model could never answer. The last turn allowed gets 'none', so it answers in
  // text rather than with calls nobody will run; the tools stay declared, as providers want with tool blocks in the
  // history (each translator maps 'none' to its own form).
  if (last) next.tool_choice = 'none'
  else delete next.tool_choice
  return next
}

// ---------------------------------------------------------------------------------------------------------------
// Usage

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0
}

/**
 * The sum of two turns' usage: every number, top level and inside the details objects; other fields as first seen.
 * A new object: neither argument is changed.
 */
export function addUsage(sum: Usage | null, u: Usage | null | undefined): Usage | null {
  if (!u) return sum
  const out: Obj = sum ? { ...sum } : {}
  for (const k in u) {
    const v = u[k]
    if (typeof v === 'number') out[k] = num(out[k]) + v
    else if (isObj(v)) {
      const inner: Obj = isObj(out[k]) ? { ...(out[k] as Obj) } : {}
      for (const j in v) if (typeof v[j] === 'number') inner[j] = num(inner[j]) + (v[j] as number)
      out[k] = inner
    } else if (!(k in out)) out[k] = v
  }
  return out as Usage
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

/** One streamed tool call, by its delta `index`. */
interface StreamCall extends Call {
  index: number
  /** The gateway's: its deltas are withheld. Decided by the name on the call's first delta. */
  owned: boolean
}

/** What one streamed turn said, for the next request, and what was withheld from the client. */
class TurnReader {
  private readonly calls = new Map<number, StreamCall>()
  private ownedCount = 0
  private foreign = false
  private content = ''
  private readonly thinking: Obj[] = []
  /** The turn's finish chunk, withheld because the turn called the gateway's tools. */
  private finish: ChatChunk | null = null

  constructor(private readonly owned: ReadonlyMap<string, McpTool>) {}

  /** The chunk as the client gets it (null: nothing left to send). Reads the first choice only: a tool loop has one. */
  read(c: ChatChunk): ChatChunk | null {
    const choice = c.choices[0]!
    if (choice.index !== 0) return c
    const d = choice.delta ?? {}
    if (typeof d.content === 'string') this.content += d.content
    if (Array.isArray(d.thinking_blocks)) this.addThinking(d.thinking_blocks as Obj[])
    let kept = d.tool_calls
    if (Array.isArray(d.tool_calls)) {
      kept = []
      for (const tc of d.tool_calls) if (!this.addCall(tc)) kept.push(tc)
    }
    const holdFinish = choice.finish_reason != null && this.ownedCount > 0
    if (kept === d.tool_calls && !holdFinish) return c
    const { tool_calls: _calls, ...delta } = d
    if (kept && kept.length > 0) delta.tool_calls = kept
    if (holdFinish) this.finish = { ...c, choices: [{ ...choice, delta: {} }] }
    if (isEmpty(delta)) return null
    return { ...c, choices: [{ ...choice, delta, finish_reason: holdFinish ? null : choice.finish_reason }, ...c.choices.slice(1)] }
  }

  /** Record a call's delta; true when it is withheld (the gateway's call). */
  private addCall(tc: ToolCallDelta): boolean {
    let call = this.calls.get(tc.index)
    if (!call) {
      const name = tc.function?.name ?? ''
      call = { index: tc.index, id: tc.id ?? '', name, arguments: '', owned: this.owned.has(name) }
      this.calls.set(tc.index, call)
      if (call.owned) this.ownedCount++
      else this.foreign = true
    } else if (!call.id && tc.id) {
      call.id = tc.id
    }
    if (tc.function?.arguments) call.arguments += tc.function.arguments
    return call.owned
  }

  /** Streamed thinking blocks arrive in pieces: consecutive pieces of one block (until its signature) are joined. */
  private addThinking(blocks: Obj[]): void {
    for (const b of blocks) {
      const last = this.thinking[this.thinking.length - 1]
      if (b.type === 'thinking' && last?.type === 'thinking' && last.signature === undefined) {
        last.thinking = String(last.thinking ?? '') + String(b.thinking ?? '')
        if (b.signature !== undefined) last.signature = b.signature
      } else {
        this.thinking.push({ ...b })
      }
    }
  }

  /** The calls to run: every call of the turn when all are the gateway's; null otherwise. */
  toRun(): StreamCall[] | null {
    if (this.ownedCount === 0 || this.foreign) return null
    const calls = [...this.calls.values()].sort((a, b) => a.index - b.index)
    // Some upstreams stream a call without an id; the tool message needs one to answer it.
    for (const c of calls) if (!c.id) c.id = `call_${randomBytes(12).toString('hex')}`
    return calls
  }

  /** The assistant message of a turn that called tools, for the next request. */
  assistant(calls: readonly StreamCall[]): ChatMessage {
    const m: ChatMessage = {
      role: 'assistant',
      content: this.content || null,
      tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
    }
    if (this.thinking.length > 0) m.thinking_blocks = this.thinking
    return m
  }

  /** What was withheld, for a turn that goes to the client after all (its calls are mixed with the client's). */
  withheld(base: { id: string; created: number; model: string }): ChatChunk[] {
    const out: ChatChunk[] = []
    const calls = [...this.calls.values()].filter((c) => c.owned)
    if (calls.length > 0) {
      const tool_calls = calls.map((c) => ({ index: c.index, id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }))
      out.push({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { tool_calls }, finish_reason: null }] })
    }
    if (this.finish) out.push({ ...this.finish, id: base.id, created: base.created })
    return out
  }
}

function isEmpty(o: Obj): boolean {
  for (const k in o) if (o[k] !== undefined && o[k] !== null) return false
  return true
}

async function* streamLoop(o: ToolLoopOptions, first: AsyncIterable<ChatChunk>, again: Again): AsyncGenerator<ChatChunk | ToolCallEvent> {
  const state = o.state
  const base = { id: '', created: 0, model: '' }
  let started = false
  let usage: Usage | null = null
  let chunks = first
  let request = state.body!
  for (let turn = 1; ; turn++) {
    // The last turn allowed (asked with tool_choice 'none') goes to the client as the model sent it, calls included.
    const reader = turn < o.maxIterations ? new TurnReader(o.owned) : null
    for await (let c of chunks) {
      if (state.signal.aborted) return
      if (!started) {
        started = true
        base.id = c.id
        base.created = c.created
      }
      if (c.model) base.model = c.model
      if (c.usage) usage = addUsage(usage, c.usage)
      // Usage-only chunks: summed, sent once at the end.
      if (!c.choices || c.choices.length === 0) continue
      if (c.usage || c.id !== base.id || c.created !== base.created) {
        const { usage: _usage, ...rest } = c
        c = { ...rest, id: base.id, created: base.created }
      }
      const out = reader ? reader.read(c) : c
      if (out !== null) yield out
    }
    if (state.signal.aborted) return
    const calls = reader?.toRun() ?? null
    if (calls === null) {
      if (reader) yield* reader.withheld(base)
      break
    }
    const records = await runCalls(o, calls)
    if (state.signal.aborted) return
    for (const call of records) yield { object: TOOL_CALL_EVENT, call }
    request = nextRequest(request, reader!.assistant(calls), records, turn + 1 === o.maxIterations)
    const next = await again(request)
    if (next.kind !== 'stream') throw gatewayError('GW_ERR_INTERNAL', `a ${next.kind} reply to a streamed tool-loop turn`)
    chunks = next.chunks as AsyncIterable<ChatChunk>
  }
  if (usage) yield { id: base.id, object: 'chat.completion.chunk', created: base.created, model: base.model, choices: [], usage }
}
