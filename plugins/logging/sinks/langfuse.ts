/**
 * langfuse: each call as a Langfuse trace with one generation, sent to Langfuse's OpenTelemetry endpoint
 * (`POST {host}/api/public/otel/v1/traces`, binary protobuf, Basic auth public:secret). The older
 * `/api/public/ingestion` batch API is removed on Langfuse Cloud from 2026-11-16 and from self-hosted v4
 * (../../../../shared/data/langfuse/NOTES.md), so it is not used. LiteLLM callback names "langfuse", "langfuse_otel".
 *
 *   public_key | LANGFUSE_PUBLIC_KEY    secret_key | LANGFUSE_SECRET_KEY    (both required)
 *   host       | LANGFUSE_HOST | LANGFUSE_BASE_URL (default https://cloud.langfuse.com)
 *   environment | LANGFUSE_TRACING_ENVIRONMENT    release | LANGFUSE_RELEASE
 *
 * The root span is the generation (langfuse.observation.type = generation: model, parameters, usage, cost, input,
 * output, completion start); each upstream attempt is a child span. Request metadata is read as LiteLLM users write
 * it: generation_name (the generation's name), trace_name, trace_id / existing_trace_id (the trace; with
 * existing_trace_id the trace itself is not updated, as in LiteLLM), session_id, trace_user_id, trace_metadata,
 * trace_version, trace_release, version; tags come from the record.
 */
import { gatewayError } from '../../../core/errors.js'
import type { LogRecord, Sink, SinkContext } from '../types.js'
import type { Attributes, Span } from '../otlp.js'
import { hasContent, recordSpans, scrub } from '../otlp-spans.js'
import {
  DEFAULT_MAX_BATCH, DEFAULT_TIMEOUT_MS, checkUrl, headersOption, intOption, otlpSink, resourceOf, strOption,
} from './otel.js'

const DEFAULT_HOST = 'https://cloud.langfuse.com'
const OTEL_PATH = '/api/public/otel/v1/traces'
/** LiteLLM's Langfuse metadata keys: mapped to Langfuse fields, not repeated in the generation's metadata. */
const RESERVED: ReadonlySet<string> = new Set([
  'generation_name', 'generation_id', 'trace_name', 'trace_id', 'existing_trace_id', 'session_id', 'trace_user_id',
  'trace_metadata', 'trace_version', 'trace_release', 'version', 'tags',
])

function j(v: unknown): string {
  return JSON.stringify(v) ?? 'null'
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * Langfuse usage details: each key a disjoint count and `total` their sum (its UsageDetails contract), so cached
 * prompt tokens and reasoning tokens are split out of input and output as Langfuse's own OpenAI mapping does.
 */
export function usageDetails(rec: LogRecord): Record<string, number> {
  const u = rec.usage
  const d: Record<string, number> = {
    input: Math.max(0, u.prompt_tokens - u.cached_tokens - u.cache_creation_tokens),
    output: Math.max(0, u.completion_tokens - u.reasoning_tokens),
    total: u.total_tokens,
  }
  if (u.cached_tokens) d.input_cached_tokens = u.cached_tokens
  if (u.cache_creation_tokens) d.input_cache_creation_tokens = u.cache_creation_tokens
  if (u.reasoning_tokens) d.output_reasoning_tokens = u.reasoning_tokens
  return d
}

/** Model parameters as Langfuse's MapValue takes them: scalars and string lists as is, anything else as JSON. */
function modelParameters(rec: LogRecord): Record<string, unknown> {
  const src = scrub(rec.model_parameters) as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const k in src) {
    const v = src[k]
    if (v === null || v === undefined) continue
    const scalar = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
    out[k] = scalar || (Array.isArray(v) && v.every((x) => typeof x === 'string')) ? v : j(v)
  }
  return out
}

/** The generation's metadata: the gateway's view of the call (LiteLLM's key names), then the request's own. */
function generationMetadata(rec: LogRecord): Record<string, unknown> {
  const m: Record<string, unknown> = {
    request_id: rec.id, call_type: rec.call_type, model_group: rec.model_group, model_id: rec.model_id,
    api_base: rec.api_base, stream: rec.stream, user_api_key_alias: rec.key_alias, user_api_key_hash: rec.key_hash,
    user_api_key_team_id: rec.team_id, user_api_key_team_alias: rec.team_alias, user_api_key_user_id: rec.user_id,
    user_api_key_end_user_id: rec.end_user, priority: rec.priority, queue_wait_ms: rec.queue_wait_ms,
    retries: rec.retries, fallbacks: rec.fallbacks, ttft_ms: rec.ttft_ms, latency_ms: rec.latency_ms,
    overhead_ms: rec.overhead_ms, cost_source: rec.cost_source, http_status: rec.http_status,
  }
  if (rec.error) m.error = rec.error
  const md = scrub(rec.metadata) as Record<string, unknown>
  for (const k in md) if (!RESERVED.has(k)) m[k] = md[k]
  return m
}

function traceAttributes(rec: LogRecord, a: Attributes, name: string): void {
  const md = rec.metadata
  a['langfuse.trace.name'] = str(md.trace_name) ?? name
  const user = str(md.trace_user_id) ?? rec.end_user ?? rec.user_id
  if (user) a['langfuse.user.id'] = user
  const session = str(md.session_id)
  if (session) a['langfuse.session.id'] = session
  if (rec.tags.length) a['langfuse.trace.tags'] = rec.tags
  if (md.trace_metadata && typeof md.trace_metadata === 'object') a['langfuse.trace.metadata'] = j(scrub(md.trace_metadata))
  const release = str(md.trace_release)
  if (release) a['langfuse.release'] = release
  if (hasContent(rec)) {
    if (rec.messages !== null && rec.messages !== undefined) a['langfuse.trace.input'] = j(rec.messages)
    if (rec.response !== null && rec.response !== undefined) a['langfuse.trace.output'] = j(rec.response)
  }
}

export interface LangfuseSpanOptions {
  environment?: string | undefined
  release?: string | undefined
}

/** The record's spans with Langfuse's attributes: the root as the generation, attempts as spans. */
export function langfuseSpans(rec: LogRecord, opts: LangfuseSpanOptions = {}): Span[] {
  const spans = recordSpans(rec)
  const root = spans[0]!
  const a = root.attributes
  const md = rec.metadata
  // The langfuse.* copies below are what Langfuse reads; the GenAI content copies would double the payload.
  delete a['gen_ai.input.messages']
  delete a['gen_ai.output.messages']
  const generationName = str(md.generation_name)
  if (generationName) root.name = generationName
  a['langfuse.observation.type'] = 'generation'
  a['langfuse.observation.model.name'] = rec.model || rec.model_group
  a['langfuse.observation.model.parameters'] = j(modelParameters(rec))
  a['langfuse.observation.usage_details'] = j(usageDetails(rec))
  // Unpriced calls carry no cost, so Langfuse may price them from its own model table.
  if (rec.cost_source !== '' && rec.cost_source !== 'unpriced') a['langfuse.observation.cost_details'] = j({ total: rec.cost })
  if (rec.completion_start_time !== null) {
    a['langfuse.observation.completion_start_time'] = new Date(rec.completion_start_time).toISOString()
  }
  a['langfuse.observation.metadata'] = j(generationMetadata(rec))
  if (rec.status === 'failure') {
    a['langfuse.observation.level'] = 'ERROR'
    a['langfuse.observation.status_message'] = rec.error?.message ?? `HTTP ${rec.http_status}`
  }
  if (hasContent(rec)) {
    if (rec.messages !== null && rec.messages !== undefined) a['langfuse.observation.input'] = j(rec.messages)
    if (rec.response !== null && rec.response !== undefined) a['langfuse.observation.output'] = j(rec.response)
  }
  const version = str(md.version) ?? str(md.trace_version)
  if (version) a['langfuse.version'] = version
  if (opts.environment) a['langfuse.environment'] = opts.environment
  if (opts.release) a['langfuse.release'] = opts.release
  // With existing_trace_id the caller owns the trace: add the generation to it, leave its name, input and tags.
  if (!str(md.existing_trace_id)) traceAttributes(rec, a, root.name)
  for (let i = 1; i < spans.length; i++) {
    const s = spans[i]!
    s.attributes['langfuse.observation.type'] = 'span'
    if (s.status.code === 2) {
      // A failed attempt the call recovered from is a warning; the call's own failure is the error.
      s.attributes['langfuse.observation.level'] = rec.status === 'failure' ? 'ERROR' : 'WARNING'
      s.attributes['langfuse.observation.status_message'] = s.status.message ?? ''
    }
  }
  return spans
}

export function createLangfuseSink(o: SinkContext): Sink {
  const { options, env } = o
  const publicKey = strOption('langfuse', options, 'public_key') ?? env.LANGFUSE_PUBLIC_KEY
  const secretKey = strOption('langfuse', options, 'secret_key') ?? env.LANGFUSE_SECRET_KEY
  if (!publicKey || !secretKey) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      'langfuse: no credentials. Set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY, or `public_key` and `secret_key` in the langfuse sink options.')
  }
  const host = strOption('langfuse', options, 'host') ?? (env.LANGFUSE_HOST || env.LANGFUSE_BASE_URL || DEFAULT_HOST)
  checkUrl('langfuse', host, 'host')
  const spanOpts: LangfuseSpanOptions = {
    environment: strOption('langfuse', options, 'environment') ?? (env.LANGFUSE_TRACING_ENVIRONMENT || undefined),
    release: strOption('langfuse', options, 'release') ?? (env.LANGFUSE_RELEASE || undefined),
  }
  const headers = {
    ...headersOption('langfuse', options),
    authorization: `Basic ${Buffer.from(`${publicKey}:${secretKey}`).toString('base64')}`,
  }
  return otlpSink(o, {
    name: 'langfuse',
    url: host.replace(/\/+$/, '') + OTEL_PATH,
    headers,
    resource: resourceOf(strOption('langfuse', options, 'service_name') ?? (env.OTEL_SERVICE_NAME || 'switchyard'), env),
    json: false,
    timeoutMs: intOption('langfuse', options, 'timeout_ms', DEFAULT_TIMEOUT_MS),
    maxBatch: intOption('langfuse', options, 'max_batch', DEFAULT_MAX_BATCH),
    spans: (rec) => langfuseSpans(rec, spanOpts),
  })
}
