/**
 * A finished call's LogRecord as OTLP spans, after the GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/): one root span for the request and one per upstream attempt,
 * with ids derived from the record so every sink and every retry agree. The sinks add their own attributes
 * (MLflow's, Langfuse's) on top; otlp.ts encodes the result.
 */
import type { LogRecord } from './types.js'
import { SpanKind, StatusCode, type Attributes, type Span, type SpanEvent } from './otlp.js'

/** gen_ai.operation.name per call type; the rest keep their own name. */
const OPERATION: Readonly<Record<string, string>> = {
  chat: 'chat', anthropic_messages: 'chat', responses: 'chat', completions: 'text_completion',
  embeddings: 'embeddings', images: 'generate_content',
}
/** gen_ai.provider.name well-known values for our adapter names; others pass through. */
const PROVIDER: Readonly<Record<string, string>> = {
  azure: 'azure.ai.openai', gemini: 'gcp.gemini', vertex: 'gcp.vertex_ai', bedrock: 'aws.bedrock', mistral: 'mistral_ai',
}
/** Request parameters with a gen_ai.request.* attribute (numbers only). */
const NUMERIC_PARAMS: ReadonlyArray<readonly [string, string]> = [
  ['temperature', 'gen_ai.request.temperature'], ['top_p', 'gen_ai.request.top_p'], ['top_k', 'gen_ai.request.top_k'],
  ['max_tokens', 'gen_ai.request.max_tokens'], ['max_completion_tokens', 'gen_ai.request.max_tokens'],
  ['frequency_penalty', 'gen_ai.request.frequency_penalty'], ['presence_penalty', 'gen_ai.request.presence_penalty'],
  ['seed', 'gen_ai.request.seed'], ['n', 'gen_ai.request.choice.count'],
]
const HEX32 = /^[0-9a-f]{32}$/i
const ZERO32 = '00000000000000000000000000000000'
/**
 * Names of fields that hold credentials. A record's metadata and parameters are cleaned by record.ts already; this
 * is the sinks' own guard, because a LiteLLM client may put `api_key` in the body and a stray `headers` or
 * `user_api_key` in metadata would otherwise ship a secret to a third party.
 */
const SECRET_NAME = /(?:^|[_-])(?:api_?key|secret|password|token|authorization|auth|cookie)$|^headers$/i

/** A copy of a JSON value without credential-named fields (depth-bounded: metadata is small, never cyclic). */
export function scrub(v: unknown, depth = 0): unknown {
  if (v === null || typeof v !== 'object' || depth > 8) return v
  if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1))
  const out: Record<string, unknown> = {}
  for (const k in v as Record<string, unknown>) {
    if (!SECRET_NAME.test(k)) out[k] = scrub((v as Record<string, unknown>)[k], depth + 1)
  }
  return out
}

/** Unix ms (possibly fractional) -> Unix ns. */
export function nanos(ms: number): bigint {
  return BigInt(Math.round(ms * 1000)) * 1000n
}

/**
 * `bytes` (up to 16) of a fast, deterministic, well-mixed hash of `s`: four 32-bit multiply-xorshift lanes with
 * different seeds. Ids need to be stable and spread, not secret, and a SHA-256 per span cost ~8 µs on the hot path.
 */
export function digest(s: string, bytes: number): Uint8Array {
  let a = 0x9e3779b9, b = 0x85ebca6b, c = 0xc2b2ae35, d = 0x27d4eb2f
  for (let i = 0; i < s.length; i++) {
    const k = s.charCodeAt(i)
    a = Math.imul(a ^ k, 0x01000193)
    b = Math.imul(b ^ k, 0x5bd1e995)
    c = Math.imul(c ^ k, 0x1b873593)
    d = Math.imul(d ^ k, 0xcc9e2d51)
  }
  const out = new Uint8Array(16)
  const view = new DataView(out.buffer)
  view.setUint32(0, mix(a ^ Math.imul(d, 31)))
  view.setUint32(4, mix(b ^ Math.imul(a, 37)))
  view.setUint32(8, mix(c ^ Math.imul(b, 41)))
  view.setUint32(12, mix(d ^ Math.imul(c, 43)))
  return bytes === 16 ? out : out.subarray(0, bytes)
}

/** murmur3's 32-bit finaliser: every input bit reaches every output bit. */
function mix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The record's trace id, the same from every sink and every retry: a LiteLLM `trace_id` (or `existing_trace_id`)
 * in the request metadata that is already a 32-hex OTel trace id is used as is; another string is hashed, so calls
 * that share it share a trace; without one, the hash of the record id.
 */
export function traceIdOf(rec: LogRecord): Uint8Array {
  const md = rec.metadata
  const t = typeof md.existing_trace_id === 'string' ? md.existing_trace_id : md.trace_id
  if (typeof t === 'string' && t !== '') {
    return HEX32.test(t) && t !== ZERO32 ? Buffer.from(t, 'hex') : digest(`trace:${t}`, 16)
  }
  // The gateway's request ids are UUIDs: their 128 bits are the trace id as they stand.
  if (rec.id.length === 36 && UUID.test(rec.id)) return Buffer.from(rec.id.replaceAll('-', ''), 'hex')
  return digest(`trace:${rec.id}`, 16)
}

export function operationOf(callType: string): string {
  return OPERATION[callType] ?? callType
}

function providerOf(p: string): string {
  return PROVIDER[p] ?? p
}

function json(v: unknown): string {
  return JSON.stringify(v) ?? 'null'
}

/** Whether the record may carry prompt and reply content out. */
export function hasContent(rec: LogRecord): boolean {
  return !rec.redacted
}

function rootAttributes(rec: LogRecord, op: string): Attributes {
  const a: Attributes = {
    'gen_ai.operation.name': op,
    'gen_ai.request.model': rec.model_group,
    'switchyard.request_id': rec.id,
    'switchyard.call_type': rec.call_type,
    'switchyard.model_group': rec.model_group,
    'switchyard.stream': rec.stream,
    'switchyard.latency_ms': rec.latency_ms,
    'switchyard.cost_usd': rec.cost,
    'switchyard.retries': rec.retries,
    'switchyard.fallbacks': rec.fallbacks,
    'switchyard.attempts': rec.attempts.length,
    'switchyard.redacted': rec.redacted,
    'http.route': rec.route,
    'http.response.status_code': rec.http_status,
  }
  if (rec.provider) a['gen_ai.provider.name'] = a['gen_ai.system'] = providerOf(rec.provider)
  if (rec.model) a['gen_ai.response.model'] = rec.model
  const params = rec.model_parameters
  for (const [from, to] of NUMERIC_PARAMS) {
    const v = params[from]
    if (typeof v === 'number') a[to] = v
  }
  const stop = params.stop
  if (typeof stop === 'string') a['gen_ai.request.stop_sequences'] = [stop]
  else if (Array.isArray(stop)) a['gen_ai.request.stop_sequences'] = stop.map(String)
  if (rec.finish_reason) a['gen_ai.response.finish_reasons'] = [rec.finish_reason]
  const u = rec.usage
  a['gen_ai.usage.input_tokens'] = u.prompt_tokens
  a['gen_ai.usage.output_tokens'] = u.completion_tokens
  if (u.cached_tokens) a['gen_ai.usage.cache_read.input_tokens'] = u.cached_tokens
  if (u.cache_creation_tokens) a['gen_ai.usage.cache_creation.input_tokens'] = u.cache_creation_tokens
  if (u.reasoning_tokens) a['switchyard.usage.reasoning_tokens'] = u.reasoning_tokens
  a['switchyard.usage.total_tokens'] = u.total_tokens
  if (typeof rec.metadata.session_id === 'string') a['gen_ai.conversation.id'] = rec.metadata.session_id
  const user = rec.user_id ?? rec.end_user
  if (user) a['user.id'] = user
  if (rec.api_base) {
    try {
      const url = new URL(rec.api_base)
      a['server.address'] = url.hostname
      if (url.port) a['server.port'] = Number(url.port)
    } catch {
      // not a URL (a custom base): switchyard.api_base still says it
    }
    a['switchyard.api_base'] = rec.api_base
  }
  if (rec.model_id) a['switchyard.deployment'] = rec.model_id
  if (rec.cost_source) a['switchyard.cost_source'] = rec.cost_source
  if (rec.key_alias) a['switchyard.key_alias'] = rec.key_alias
  if (rec.key_hash) a['switchyard.key_hash'] = rec.key_hash
  if (rec.team_id) a['switchyard.team_id'] = rec.team_id
  if (rec.team_alias) a['switchyard.team_alias'] = rec.team_alias
  if (rec.user_id) a['switchyard.user_id'] = rec.user_id
  if (rec.end_user) a['switchyard.end_user'] = rec.end_user
  if (rec.tags.length) a['switchyard.tags'] = rec.tags
  if (rec.priority !== null) a['switchyard.priority'] = rec.priority
  if (rec.queue_wait_ms !== null) a['switchyard.queue_wait_ms'] = rec.queue_wait_ms
  if (rec.ttft_ms !== null) a['switchyard.ttft_ms'] = rec.ttft_ms
  if (rec.overhead_ms !== null) a['switchyard.overhead_ms'] = rec.overhead_ms
  if (Object.keys(rec.plugin_timings).length) a['switchyard.plugin_timings'] = json(rec.plugin_timings)
  if (Object.keys(rec.metadata).length) a['switchyard.metadata'] = json(scrub(rec.metadata))
  if (hasContent(rec)) {
    if (rec.messages !== null && rec.messages !== undefined) {
      a['gen_ai.input.messages'] = json(Array.isArray(rec.messages) ? rec.messages : [rec.messages])
    }
    if (rec.response !== null && rec.response !== undefined) a['gen_ai.output.messages'] = json([rec.response])
    if (rec.tool_calls.length) a['switchyard.tool_calls'] = json(rec.tool_calls)
  }
  if (rec.error) a['error.type'] = rec.error.type || rec.error.code
  return a
}

/**
 * One root span for the call (SERVER: the gateway answering its client, `{operation} {model group}`) and one
 * CLIENT child per upstream attempt (`{operation} {upstream model}`), root first. Usage, cost and content sit on the
 * root only, so a backend that sums over spans counts a call once however many attempts it took.
 */
export function recordSpans(rec: LogRecord): Span[] {
  const traceId = traceIdOf(rec)
  const rootId = digest(`span:${rec.id}:root`, 8)
  const op = operationOf(rec.call_type)
  const failed = rec.status === 'failure'
  const events: SpanEvent[] = []
  if (rec.completion_start_time !== null && rec.stream) {
    events.push({ name: 'gen_ai.first_token', timeNs: nanos(rec.completion_start_time) })
  }
  if (rec.error) {
    events.push({
      name: 'exception', timeNs: nanos(rec.end_time),
      attributes: { 'exception.type': rec.error.type || rec.error.code, 'exception.message': rec.error.message },
    })
  }
  const root: Span = {
    traceId, spanId: rootId, parentSpanId: null,
    name: `${op} ${rec.model_group}`, kind: SpanKind.SERVER,
    startNs: nanos(rec.start_time), endNs: nanos(rec.end_time),
    attributes: rootAttributes(rec, op),
    status: failed ? { code: StatusCode.ERROR, message: rec.error?.message ?? '' } : { code: StatusCode.OK },
    events,
  }
  const spans = [root]
  for (let i = 0; i < rec.attempts.length; i++) {
    const at = rec.attempts[i]!
    const bad = at.error_code !== null || at.status >= 400
    const a: Attributes = {
      'gen_ai.operation.name': op,
      'gen_ai.request.model': at.model,
      'gen_ai.provider.name': providerOf(at.provider),
      'gen_ai.system': providerOf(at.provider),
      'http.response.status_code': at.status,
      'switchyard.deployment': at.deployment,
      'switchyard.attempt': i + 1,
    }
    if (bad) a['error.type'] = at.error_code ?? String(at.status)
    spans.push({
      traceId, spanId: digest(`span:${rec.id}:${i}`, 8), parentSpanId: rootId,
      name: `${op} ${at.model}`, kind: SpanKind.CLIENT,
      startNs: nanos(at.start_time), endNs: nanos(at.start_time + at.duration_ms),
      attributes: a,
      status: bad ? { code: StatusCode.ERROR, message: at.error_code ?? `HTTP ${at.status}` } : { code: StatusCode.OK },
    })
  }
  // Tools the gateway ran (MCP): one span each, as the GenAI conventions name a tool execution.
  for (let i = 0; i < rec.mcp_tool_calls.length; i++) {
    const c = rec.mcp_tool_calls[i]!
    const a: Attributes = {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': c.namespaced_tool_name,
      'gen_ai.tool.call.id': c.id,
      'gen_ai.tool.type': 'extension',
      'mcp.server.name': c.mcp_server_name,
      'mcp.tool.name': c.name,
    }
    if (c.arguments !== null) a['gen_ai.tool.call.arguments'] = c.arguments
    if (c.result !== null) a['gen_ai.tool.call.result'] = c.result
    if (c.error !== null) a['error.type'] = 'tool_error'
    if (c.cost > 0) a['switchyard.cost_usd'] = c.cost
    spans.push({
      traceId, spanId: digest(`span:${rec.id}:tool:${i}`, 8), parentSpanId: rootId,
      name: `execute_tool ${c.namespaced_tool_name}`, kind: SpanKind.INTERNAL,
      startNs: nanos(c.start_time), endNs: nanos(c.start_time + c.duration_ms),
      attributes: a,
      status: c.error !== null ? { code: StatusCode.ERROR, message: c.error } : { code: StatusCode.OK },
    })
  }
  return spans
}
