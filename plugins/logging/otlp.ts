/**
 * OTLP traces, encoded by hand: a small span model, the binary protobuf `ExportTraceServiceRequest` (what OTLP/HTTP
 * receivers, MLflow and Langfuse take as `application/x-protobuf`) and its OTLP/JSON form.
 *
 * Hand-written rather than @opentelemetry/exporter-trace-otlp-proto: the gateway never runs an OTel SDK (its spans
 * are built after the fact from a finished LogRecord, by otlp-spans.ts), and the encoder needs five wire
 * primitives (varint, fixed64, fixed32, double, length-delimited) over one fixed message tree.
 *
 * Field numbers follow opentelemetry/proto (collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
 * common/v1/common.proto, resource/v1/resource.proto).
 */


export type AttrValue = string | number | boolean | string[]
export type Attributes = Record<string, AttrValue>

/** Span.SpanKind. */
export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const
/** Status.StatusCode. */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const

export interface SpanEvent {
  name: string
  timeNs: bigint
  attributes?: Attributes
}

export interface Span {
  /** 16 bytes. */
  traceId: Uint8Array
  /** 8 bytes. */
  spanId: Uint8Array
  /** 8 bytes; null for a root span. */
  parentSpanId: Uint8Array | null
  name: string
  kind: number
  /** Unix nanoseconds. */
  startNs: bigint
  endNs: bigint
  attributes: Attributes
  status: { code: number; message?: string }
  events?: SpanEvent[]
}

export interface Scope {
  name: string
  version: string
}

// Wire types (protobuf encoding spec).
const VARINT = 0
const I64 = 1
const LEN = 2
const I32 = 5

/** Initial encode buffer, bytes: a one-record batch fits without growing. */
const INITIAL_BYTES = 8192

/**
 * An append-only protobuf writer over one growable buffer. A nested message reserves one length byte and, when it
 * ends up 128 bytes or longer, its body is moved right to make room for the longer varint: most nested messages
 * (KeyValue, AnyValue, Status) are short, so this beats encoding each into its own buffer and concatenating.
 */
class Writer {
  private buf = Buffer.allocUnsafe(INITIAL_BYTES)
  private pos = 0

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  /** A non-negative integer below 2^53. */
  varint(v: number): void {
    this.room(10)
    const b = this.buf
    let p = this.pos
    while (v > 0x7f) {
      b[p++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    b[p++] = v
    this.pos = p
  }

  private bigVarint(v: bigint): void {
    this.room(10)
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80
      v >>= 7n
    }
    this.buf[this.pos++] = Number(v)
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire)
  }

  /** int64 as a varint; negatives take ten bytes (two's complement), as the spec says. */
  int64(field: number, v: number): void {
    this.tag(field, VARINT)
    if (v >= 0) this.varint(v)
    else this.bigVarint(BigInt.asUintN(64, BigInt(v)))
  }

  uint32(field: number, v: number): void {
    if (v === 0) return
    this.tag(field, VARINT)
    this.varint(v)
  }

  bool(field: number, v: boolean): void {
    this.tag(field, VARINT)
    this.varint(v ? 1 : 0)
  }

  double(field: number, v: number): void {
    this.tag(field, I64)
    this.room(8)
    this.buf.writeDoubleLE(v, this.pos)
    this.pos += 8
  }

  fixed64(field: number, v: bigint): void {
    this.tag(field, I64)
    this.room(8)
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos)
    this.pos += 8
  }

  fixed32(field: number, v: number): void {
    this.tag(field, I32)
    this.room(4)
    this.buf.writeUInt32LE(v >>> 0, this.pos)
    this.pos += 4
  }

  /** Always written (a oneof member or a required-looking field), even when empty. */
  string(field: number, s: string): void {
    this.tag(field, LEN)
    const n = Buffer.byteLength(s)
    this.varint(n)
    this.room(n)
    this.buf.write(s, this.pos, n, 'utf8')
    this.pos += n
  }

  /** proto3 implicit presence: an empty string is the default and is left out. */
  optString(field: number, s: string | undefined): void {
    if (s) this.string(field, s)
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, LEN)
    this.varint(b.length)
    this.room(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  /** Start a nested message; returns the mark end() takes. */
  begin(field: number): number {
    this.tag(field, LEN)
    this.room(1)
    this.pos += 1
    return this.pos
  }

  end(start: number): void {
    const len = this.pos - start
    let extra = 0
    for (let v = len; v > 0x7f; v = Math.floor(v / 0x80)) extra++
    if (extra > 0) {
      this.room(extra)
      this.buf.copyWithin(start + extra, start, this.pos)
      this.pos += extra
    }
    let p = start - 1
    let v = len
    while (v > 0x7f) {
      this.buf[p++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buf[p] = v
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }
}

// AnyValue: 1 string, 2 bool, 3 int, 4 double, 5 array.
function anyValue(w: Writer, field: number, v: AttrValue): void {
  const m = w.begin(field)
  if (typeof v === 'string') w.string(1, v)
  else if (typeof v === 'boolean') w.bool(2, v)
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) w.int64(3, v)
    else w.double(4, v)
  } else {
    const arr = w.begin(5)
    for (const s of v) anyValue(w, 1, s)
    w.end(arr)
  }
  w.end(m)
}

// KeyValue: 1 key, 2 value.
function keyValues(w: Writer, field: number, attrs: Attributes): void {
  for (const k in attrs) {
    const v = attrs[k]
    if (v === undefined || v === null) continue
    const m = w.begin(field)
    w.string(1, k)
    anyValue(w, 2, v)
    w.end(m)
  }
}

// Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 7/8 times, 9 attributes, 11 events, 15 status,
// 16 flags.
function span(w: Writer, s: Span): void {
  const m = w.begin(2)
  w.bytes(1, s.traceId)
  w.bytes(2, s.spanId)
  if (s.parentSpanId) w.bytes(4, s.parentSpanId)
  w.string(5, s.name)
  w.uint32(6, s.kind)
  w.fixed64(7, s.startNs)
  w.fixed64(8, s.endNs)
  keyValues(w, 9, s.attributes)
  if (s.events) {
    for (const e of s.events) {
      const em = w.begin(11)
      w.fixed64(1, e.timeNs)
      w.string(2, e.name)
      if (e.attributes) keyValues(w, 3, e.attributes)
      w.end(em)
    }
  }
  const st = w.begin(15)
  w.optString(2, s.status.message)
  w.uint32(3, s.status.code)
  w.end(st)
  // W3C trace flags in the low byte: sampled (we only ever export what we keep).
  w.fixed32(16, 0x01)
  w.end(m)
}

/** A binary protobuf ExportTraceServiceRequest: one ResourceSpans, one ScopeSpans, the spans in order. */
export function encodeTraces(resource: Attributes, scope: Scope, spans: readonly Span[]): Uint8Array {
  const w = new Writer()
  const rs = w.begin(1) // ExportTraceServiceRequest.resource_spans
  const res = w.begin(1) // ResourceSpans.resource
  keyValues(w, 1, resource)
  w.end(res)
  const ss = w.begin(2) // ResourceSpans.scope_spans
  const sc = w.begin(1) // ScopeSpans.scope
  w.optString(1, scope.name)
  w.optString(2, scope.version)
  w.end(sc)
  for (const s of spans) span(w, s) // ScopeSpans.spans = 2
  w.end(ss)
  w.end(rs)
  return w.finish()
}

// --- OTLP/JSON (protobuf JSON mapping with OTLP's exceptions: hex ids, integer enums, int64 as strings) ---

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex')
}

function jsonValue(v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v }
  if (typeof v === 'boolean') return { boolValue: v }
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v }
  return { arrayValue: { values: v.map(jsonValue) } }
}

function jsonAttrs(attrs: Attributes): Array<{ key: string; value: Record<string, unknown> }> {
  const out: Array<{ key: string; value: Record<string, unknown> }> = []
  for (const k in attrs) {
    const v = attrs[k]
    if (v !== undefined && v !== null) out.push({ key: k, value: jsonValue(v) })
  }
  return out
}

/** The same request as encodeTraces, as an OTLP/JSON object (JSON.stringify it to send). */
export function tracesJson(resource: Attributes, scope: Scope, spans: readonly Span[]): Record<string, unknown> {
  return {
    resourceSpans: [{
      resource: { attributes: jsonAttrs(resource) },
      scopeSpans: [{
        scope: { name: scope.name, version: scope.version },
        spans: spans.map((s) => ({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          ...(s.parentSpanId ? { parentSpanId: hex(s.parentSpanId) } : {}),
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: String(s.startNs),
          endTimeUnixNano: String(s.endNs),
          attributes: jsonAttrs(s.attributes),
          ...(s.events ? {
            events: s.events.map((e) => ({
              timeUnixNano: String(e.timeNs), name: e.name, attributes: jsonAttrs(e.attributes ?? {}),
            })),
          } : {}),
          status: { code: s.status.code, ...(s.status.message ? { message: s.status.message } : {}) },
          flags: 1,
        })),
      }],
    }],
  }
}
