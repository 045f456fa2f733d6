/**
 * Shared by the OTLP sink tests: LogRecord fixtures (a plain chat call, a streamed one with cached and reasoning
 * tokens and a retried attempt, a failed one), a node:http receiver on 127.0.0.1, and an OTLP decoder built by
 * protobufjs from the OpenTelemetry protos in ../shared/data (so what is checked is what a real receiver parses,
 * not what our own encoder thinks it wrote).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { Agent } from 'undici'
import { createLogger } from '../../core/logger.js'
import type { LogRecord, SinkContext } from '../../plugins/logging/types.js'

const here = fileURLToPath(new URL('.', import.meta.url))
export const PROTO_DIR = join(here, '../../../shared/data/otel/proto')

/** A gateway key as a client would send it: must never reach a receiver. */
export const GATEWAY_KEY = 'sk-gw-3f9a1c7e5b2d4a6f8e0c1b3d5f7a9c2e'
/** A provider key a LiteLLM client may put in the request body (`api_key`). */
export const BODY_KEY = 'sk-provider-body-key-77aa88bb99cc'
export const T0 = 1_767_225_600_000 // 2026-01-01T00:00:00Z, Unix ms

const baseUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 }

/** A plain, non-streamed chat call that worked on the first attempt. */
export function plainRecord(over: Partial<LogRecord> = {}): LogRecord {
  return {
    id: 'req-plain-0001', call_type: 'chat', route: '/v1/chat/completions', status: 'success', http_status: 200,
    model_group: 'gpt-4o', model: 'gpt-4o-2024-08-06', model_id: 'dep-openai-1', provider: 'openai',
    api_base: 'https://api.openai.com/v1', stream: false,
    start_time: T0, completion_start_time: T0 + 640, end_time: T0 + 650.5, latency_ms: 650.5, ttft_ms: 640,
    overhead_ms: 3.25, plugin_timings: { auth: 0.4, router: 0.2 }, queue_wait_ms: 4, priority: 1,
    attempts: [{ deployment: 'dep-openai-1', provider: 'openai', model: 'gpt-4o-2024-08-06', start_time: T0 + 5, duration_ms: 640, status: 200, error_code: null }],
    retries: 0, fallbacks: 0,
    usage: { ...baseUsage, prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
    cost: 0.00006, cost_source: 'table',
    model_parameters: { temperature: 0.2, max_tokens: 50, top_p: 1, stop: ['\n\n'], user: 'end-user-7', api_key: BODY_KEY },
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello to Switchyard' }],
    response: { role: 'assistant', content: 'Hello, Switchyard!' },
    tool_calls: [], mcp_tool_calls: [], finish_reason: 'stop', error: null,
    key_hash: 'hash-5e884898da28047151d0e56f8dc6292773603d0d', key_alias: 'ci-key', team_id: 'team-a', team_alias: 'Team A',
    user_id: 'user-42', end_user: 'end-user-7', tags: ['prod', 'greeting'],
    metadata: {
      generation_name: 'greet-generation', trace_name: 'greeting-trace', session_id: 'sess-1', trace_user_id: 'user-9',
      trace_metadata: { env: 'test' }, experiment: 'a/b', user_api_key: GATEWAY_KEY,
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
    },
    redacted: false,
    ...over,
  }
}

/** A streamed call: first attempt rate-limited, second answered; cached prompt and reasoning tokens; a tool call. */
export function streamedRecord(over: Partial<LogRecord> = {}): LogRecord {
  return plainRecord({
    id: 'req-stream-0002', stream: true, model_group: 'smart', model: 'claude-sonnet-4-5', model_id: 'dep-anthropic-2',
    provider: 'anthropic', api_base: 'https://anthropic.internal:8443/v1',
    start_time: T0 + 10_000, completion_start_time: T0 + 10_420, end_time: T0 + 12_000, latency_ms: 2000, ttft_ms: 420,
    attempts: [
      { deployment: 'dep-openai-1', provider: 'openai', model: 'o3-mini', start_time: T0 + 10_002, duration_ms: 90, status: 429, error_code: 'GW_ERR_UPSTREAM_RATE_LIMIT' },
      { deployment: 'dep-anthropic-2', provider: 'anthropic', model: 'claude-sonnet-4-5', start_time: T0 + 10_100, duration_ms: 1890, status: 200, error_code: null },
    ],
    retries: 1, fallbacks: 0,
    usage: { prompt_tokens: 2000, completion_tokens: 300, total_tokens: 2300, cached_tokens: 1500, cache_creation_tokens: 100, reasoning_tokens: 200 },
    cost: 0.0123, cost_source: 'deployment',
    model_parameters: { temperature: 1, max_tokens: 1024, stream: true },
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    response: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    tool_calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }],
    finish_reason: 'tool_calls',
    // A caller's own W3C trace id: used as is.
    metadata: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', session_id: 'sess-2' },
    ...over,
  })
}

/** A failed call: both attempts answered 500, one fallback group tried, nothing came back. */
export function failedRecord(over: Partial<LogRecord> = {}): LogRecord {
  return plainRecord({
    id: 'req-fail-0003', status: 'failure', http_status: 502, completion_start_time: null, ttft_ms: null,
    end_time: T0 + 900, latency_ms: 900,
    attempts: [
      { deployment: 'dep-openai-1', provider: 'openai', model: 'gpt-4o-2024-08-06', start_time: T0 + 5, duration_ms: 400, status: 500, error_code: 'GW_ERR_UPSTREAM_SERVER' },
      { deployment: 'dep-azure-1', provider: 'azure', model: 'gpt-4o', start_time: T0 + 410, duration_ms: 480, status: 500, error_code: 'GW_ERR_UPSTREAM_SERVER' },
    ],
    retries: 0, fallbacks: 1, usage: { ...baseUsage }, cost: 0, cost_source: 'unpriced',
    response: null, finish_reason: null,
    error: { type: 'InternalServerError', code: 'GW_ERR_UPSTREAM_SERVER', message: 'Upstream openai returned 500: overloaded', status: 502 },
    metadata: { existing_trace_id: 'my-app-trace-77' },
    ...over,
  })
}

/** A call logged with turn_off_message_logging: content kept in the record on purpose, to prove the sinks' guard. */
export function redactedRecord(): LogRecord {
  return plainRecord({ id: 'req-redact-0004', redacted: true })
}

export interface Received {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface Receiver {
  base: string
  port: number
  requests: Received[]
  /** Status for the next requests (200 by default). */
  status: number
  close(): Promise<void>
}

/** An HTTP receiver on 127.0.0.1, port chosen by the OS, that records every request. */
export async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = []
  const state = { status: 200 }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) })
      res.statusCode = state.status
      res.setHeader('content-type', state.status < 300 ? 'application/x-protobuf' : 'application/json')
      res.end(state.status < 300 ? '' : JSON.stringify({ error: `status ${state.status}` }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    requests,
    get status() { return state.status },
    set status(s: number) { state.status = s },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** A SinkContext over a fresh undici Agent (closed by the caller), with a silent logger. */
export function sinkContext(env: Record<string, string | undefined>, options: Record<string, unknown> = {}): SinkContext & { agent: Agent } {
  const agent = new Agent({ keepAliveTimeout: 1_000 })
  return { options, env, dispatcher: agent, logger: createLogger({ level: 'silent' }), agent }
}

let requestType: protobuf.Type | null = null

/** ExportTraceServiceRequest from the shared OTLP protos. */
export function exportRequestType(): protobuf.Type {
  if (requestType) return requestType
  const root = new protobuf.Root()
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target)
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false })
  requestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest')
  return requestType
}

export type Attr = string | number | boolean | Attr[] | null

export interface DecodedSpan {
  traceId: string
  spanId: string
  parentSpanId: string
  name: string
  kind: number
  start: string
  end: string
  attrs: Record<string, Attr>
  events: Array<{ name: string; time: string; attrs: Record<string, Attr> }>
  status: { code: number; message: string }
  flags: number
}

export interface DecodedExport {
  resource: Record<string, Attr>
  scope: { name: string; version: string }
  spans: DecodedSpan[]
}

function anyValue(v: any): Attr {
  if (!v) return null
  if (v.stringValue !== undefined) return v.stringValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.doubleValue !== undefined) return v.doubleValue
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue)
  return null
}

function attrsOf(list: any[] | undefined): Record<string, Attr> {
  const out: Record<string, Attr> = {}
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value)
  return out
}

function hexOf(b: any): string {
  return b ? Buffer.from(b).toString('hex') : ''
}

/** Decode a binary OTLP request with protobufjs (throws on malformed bytes) into plain values. */
export function decodeExport(body: Uint8Array): DecodedExport {
  const T = exportRequestType()
  const msg = T.decode(body)
  const err = T.verify(msg)
  if (err) throw new Error(`OTLP verify: ${err}`)
  const o: any = T.toObject(msg, { longs: String, enums: Number, bytes: Array, defaults: false, arrays: true })
  if (o.resourceSpans.length !== 1) throw new Error(`expected one ResourceSpans, got ${o.resourceSpans.length}`)
  const rs = o.resourceSpans[0]
  if (rs.scopeSpans.length !== 1) throw new Error(`expected one ScopeSpans, got ${rs.scopeSpans.length}`)
  const ss = rs.scopeSpans[0]
  return {
    resource: attrsOf(rs.resource?.attributes),
    scope: { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' },
    spans: (ss.spans ?? []).map((s: any): DecodedSpan => ({
      traceId: hexOf(s.traceId), spanId: hexOf(s.spanId), parentSpanId: hexOf(s.parentSpanId),
      name: s.name ?? '', kind: s.kind ?? 0, start: s.startTimeUnixNano ?? '0', end: s.endTimeUnixNano ?? '0',
      attrs: attrsOf(s.attributes),
      events: (s.events ?? []).map((e: any) => ({ name: e.name ?? '', time: e.timeUnixNano ?? '0', attrs: attrsOf(e.attributes) })),
      status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
      flags: s.flags ?? 0,
    })),
  }
}

/** Unix ms -> the decimal ns string a decoded fixed64 reads as. */
export function ns(ms: number): string {
  return String(BigInt(Math.round(ms * 1000)) * 1000n)
}

/** Abort signal that never fires (the queue's, in normal operation). */
export const NO_ABORT: AbortSignal = new AbortController().signal
