/**
 * otel: each call as OTLP/HTTP traces (GenAI semantic conventions, see ../otlp.ts recordSpans), to any OpenTelemetry
 * collector or backend. LiteLLM callback name "otel".
 *
 * Configuration, the standard OTel exporter variables first (https://opentelemetry.io/docs/specs/otel/protocol/
 * exporter/), then LiteLLM's own:
 *   endpoint  | OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) | OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces |
 *               OTEL_ENDPOINT (LiteLLM, as is)
 *   headers   | OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_HEADERS (`k=v,k2=v2`, URL-decoded)
 *   protocol  | OTEL_EXPORTER_OTLP_TRACES_PROTOCOL | OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (default) or http/json
 *   service_name | OTEL_SERVICE_NAME (default 'switchyard'); OTEL_RESOURCE_ATTRIBUTES adds resource attributes.
 *
 * This file also holds the OTLP/HTTP exporter the MLflow and Langfuse sinks are built on (`otlpSink`): they differ
 * only in URL, headers and the attributes they add to each span.
 */
import { gatewayError } from '../../../core/errors.js'
import { SinkError, type LogRecord, type Sink, type SinkContext } from '../types.js'
import { encodeTraces, tracesJson, type Attributes, type Scope, type Span } from '../otlp.js'
import { recordSpans } from '../otlp-spans.js'

/** Longest one export request may take (headers, then each body gap), ms. */
export const DEFAULT_TIMEOUT_MS = 10_000
/** Records per export request: ~2-3 spans each, well under receivers' 4 MB-ish body limits without content. */
export const DEFAULT_MAX_BATCH = 100
/** Characters of a receiver's error body kept in the SinkError message. */
const ERROR_BODY_CHARS = 300

const SCOPE: Scope = { name: 'switchyard', version: '1' }

export interface OtlpExport {
  name: string
  /** Full traces URL. */
  url: string
  headers: Record<string, string>
  resource: Attributes
  /** OTLP/JSON instead of binary protobuf. */
  json: boolean
  timeoutMs: number
  maxBatch: number
  /** The spans for one record. */
  spans(rec: LogRecord): Span[]
}

/** A non-empty string option, or undefined; anything else set is a boot error. */
export function strOption(sink: string, options: Record<string, unknown>, key: string): string | undefined {
  const v = options[key]
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${sink}: option '${key}' must be a string, got ${JSON.stringify(v)}`)
  }
  return v
}

export function intOption(sink: string, options: Record<string, unknown>, key: string, fallback: number): number {
  const v = options[key]
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${sink}: option '${key}' must be a positive integer, got ${JSON.stringify(v)}`)
  }
  return v
}

/** `k=v,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS / OTEL_RESOURCE_ATTRIBUTES form), keys and values URL-decoded. */
export function parseKeyValues(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (!s) return out
  for (const part of s.split(',')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const k = decode(part.slice(0, eq).trim())
    if (k) out[k] = decode(part.slice(eq + 1).trim())
  }
  return out
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** The `headers` option: a map or the `k=v,...` string form. */
export function headersOption(sink: string, options: Record<string, unknown>): Record<string, string> {
  const v = options.headers
  if (v === undefined || v === null) return {}
  if (typeof v === 'string') return parseKeyValues(v)
  if (typeof v === 'object' && !Array.isArray(v)) {
    const out: Record<string, string> = {}
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') throw gatewayError('GW_ERR_CONFIG_INVALID', `${sink}: header '${k}' must be a string`)
      out[k.toLowerCase()] = x
    }
    return out
  }
  throw gatewayError('GW_ERR_CONFIG_INVALID', `${sink}: option 'headers' must be a map or 'k=v,k2=v2'`)
}

export function checkUrl(sink: string, url: string, what: string): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${sink}: ${what} is not a URL: ${url}`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${sink}: ${what} must be http(s), got ${u.protocol}`)
  }
  return u
}

/** What an HTTP status means for a batch: 408/429/5xx may pass later, another 4xx never will. */
export function statusError(sink: string, status: number, body: string): SinkError {
  const detail = body ? `: ${body.slice(0, ERROR_BODY_CHARS).replace(/\s+/g, ' ')}` : ''
  return new SinkError(`${sink}: receiver answered ${status}${detail}`, status === 408 || status === 429 || status >= 500, status)
}

/** An OTLP/HTTP trace exporter as a Sink: one POST per batch, all the batch's spans in one request. */
export function otlpSink(o: SinkContext, x: OtlpExport): Sink {
  const u = checkUrl(x.name, x.url, 'endpoint')
  const origin = u.origin
  const path = u.pathname + u.search
  const headers: Record<string, string> = {}
  // Lower-cased, so a configured Content-Type cannot sit beside ours as a second header.
  for (const k in x.headers) headers[k.toLowerCase()] = x.headers[k]!
  Object.assign(headers, {
    'content-type': x.json ? 'application/json' : 'application/x-protobuf',
    'user-agent': 'switchyard',
  })
  return {
    name: x.name,
    maxBatch: x.maxBatch,
    async send(batch: readonly LogRecord[], signal: AbortSignal): Promise<void> {
      const spans: Span[] = []
      for (const rec of batch) for (const s of x.spans(rec)) spans.push(s)
      const body = x.json ? JSON.stringify(tracesJson(x.resource, SCOPE, spans)) : encodeTraces(x.resource, SCOPE, spans)
      let res
      try {
        res = await o.dispatcher.request({
          origin, path, method: 'POST', headers, body, signal,
          headersTimeout: x.timeoutMs, bodyTimeout: x.timeoutMs,
        })
      } catch (err) {
        // Connection refused, reset, timeout or our own abort: all worth another try later.
        throw new SinkError(`${x.name}: ${(err as Error).message || String(err)}`, true)
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        // An OTLP partial_success in a 2xx is not retryable by the spec, so the body is not decoded.
        await res.body.dump()
        return
      }
      let text = ''
      try {
        text = await res.body.text()
      } catch {
        // the status alone decides
      }
      throw statusError(x.name, res.statusCode, text)
    },
  }
}

/** The standard OTel resource: service name and OTEL_RESOURCE_ATTRIBUTES. */
export function resourceOf(serviceName: string, env: Record<string, string | undefined>): Attributes {
  return {
    ...parseKeyValues(env.OTEL_RESOURCE_ATTRIBUTES),
    'service.name': serviceName,
    'telemetry.sdk.name': 'switchyard',
    'telemetry.sdk.language': 'nodejs',
  }
}

function endpointOf(o: SinkContext): string | undefined {
  const env = o.env
  const opt = strOption('otel', o.options, 'endpoint')
  if (opt) return opt
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  // The spec: the signal path is appended to the base endpoint (with exactly one slash between).
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/traces'
  return env.OTEL_ENDPOINT || undefined
}

export function createOtelSink(o: SinkContext): Sink {
  const url = endpointOf(o)
  if (!url) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      'otel: no endpoint. Set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or `endpoint` in the otel sink options.')
  }
  const env = o.env
  const protocol = strOption('otel', o.options, 'protocol') ?? env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
    env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf'
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `otel: protocol '${protocol}' is not supported (http/protobuf or http/json)`)
  }
  const headers = {
    ...parseKeyValues(env.OTEL_HEADERS),
    ...parseKeyValues(env.OTEL_EXPORTER_OTLP_HEADERS),
    ...parseKeyValues(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
    ...headersOption('otel', o.options),
  }
  const serviceName = strOption('otel', o.options, 'service_name') ?? (env.OTEL_SERVICE_NAME || 'switchyard')
  return otlpSink(o, {
    name: 'otel',
    url,
    headers,
    resource: resourceOf(serviceName, env),
    json: protocol === 'http/json',
    timeoutMs: intOption('otel', o.options, 'timeout_ms', DEFAULT_TIMEOUT_MS),
    maxBatch: intOption('otel', o.options, 'max_batch', DEFAULT_MAX_BATCH),
    spans: recordSpans,
  })
}
