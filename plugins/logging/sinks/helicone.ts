/**
 * helicone: ships each call to Helicone's async logging API (the "manual logger" endpoint), as LiteLLM's
 * `success_callback: ["helicone"]` does, without Helicone in the request path.
 *
 *   POST {api_base}/custom/v1/log     Authorization: Bearer HELICONE_API_KEY
 *   { providerRequest: { url, json, meta }, providerResponse: { json, status, headers }, timing }
 *
 * Helicone has no batch endpoint (one request per logged call, docs: getting-started/integration-method/
 * manual-logger-curl), so a batch from the queue is sent as concurrent requests, at most `concurrency` at once.
 * A record already accepted is remembered (WeakSet on the record object): when the queue retries a batch after a
 * partial failure, only the records that did not get through are sent again, so Helicone gets no duplicates.
 *
 * What goes out: the request in OpenAI form (model, messages / input unless redacted, parameters), an OpenAI-shaped
 * reply built from the record (message, tool calls, usage with cached and reasoning tokens) or the error, and
 * Helicone headers in `meta` (Helicone-User-Id, Helicone-Session-Id, Helicone-Property-*). Never a key: the record
 * holds only the key's hash and alias, and only the alias is sent. A `Helicone-Auth` entry in request metadata is
 * dropped (it is a credential).
 */
import { gatewayError } from '../../../core/errors.js'
import { SinkError, type LogRecord, type Sink, type SinkContext } from '../types.js'

/** Helicone's cloud worker. */
const DEFAULT_API_BASE = 'https://api.worker.helicone.ai'
const LOG_PATH = '/custom/v1/log'
/** Longest one log request may take, ms. */
const DEFAULT_TIMEOUT_MS = 10_000
/** Log requests in flight at once per batch. */
const DEFAULT_CONCURRENCY = 4
/** Records per batch the queue hands over (each is its own request). */
const DEFAULT_MAX_BATCH = 16
/** Helicone's value for providerRequest.url when the provider URL is not known (custom models). */
const NO_URL = 'custom-model-nopath'

/** Where a call type's prompt goes in the OpenAI request body. */
const PROMPT_FIELD: Readonly<Record<string, string>> = {
  chat: 'messages', anthropic_messages: 'messages', responses: 'messages',
  completions: 'prompt', images: 'prompt', embeddings: 'input', moderations: 'input', speech: 'input',
}
/** Call types whose reply is a chat completion (choices[].message). */
const CHAT_TYPES: ReadonlySet<string> = new Set(['chat', 'anthropic_messages', 'responses', 'completions'])
/** Request metadata keys LiteLLM reads for its own purposes: not repeated as Helicone properties. */
const RESERVED_METADATA: ReadonlySet<string> = new Set([
  'tags', 'session_id', 'trace_id', 'trace_user_id', 'generation_name', 'generation_id', 'trace_name', 'existing_trace_id',
])

export interface HeliconeOptions {
  apiKey: string
  apiBase: string
  timeoutMs: number
  concurrency: number
  maxBatch: number
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function positiveInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `helicone: option '${name}' must be a positive integer, got ${JSON.stringify(v)}`)
  }
  return v
}

/** Options over the environment LiteLLM reads (HELICONE_API_KEY, HELICONE_API_BASE). */
export function heliconeOptions(o: Pick<SinkContext, 'options' | 'env'>): HeliconeOptions {
  const apiKey = str(o.options.api_key) ?? str(o.env.HELICONE_API_KEY)
  if (!apiKey) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      'helicone: no API key. Set HELICONE_API_KEY in the environment or `api_key` in the helicone sink options.')
  }
  const apiBase = str(o.options.api_base) ?? str(o.env.HELICONE_API_BASE) ?? DEFAULT_API_BASE
  try {
    new URL(apiBase)
  } catch {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `helicone: api_base is not a URL: ${apiBase}`)
  }
  return {
    apiKey,
    apiBase: apiBase.replace(/\/+$/, ''),
    timeoutMs: positiveInt(o.options.timeout_ms, 'timeout_ms', DEFAULT_TIMEOUT_MS),
    concurrency: positiveInt(o.options.concurrency, 'concurrency', DEFAULT_CONCURRENCY),
    maxBatch: positiveInt(o.options.max_batch, 'max_batch', DEFAULT_MAX_BATCH),
  }
}

function timeOf(ms: number): { seconds: number; milliseconds: number } {
  const t = Math.max(0, Math.round(ms))
  return { seconds: Math.floor(t / 1000), milliseconds: t % 1000 }
}

/** The provider URL the call went to: its API base plus the route (one `/v1` when both carry it). */
function providerUrl(r: LogRecord): string {
  if (!r.api_base) return NO_URL
  const base = r.api_base.endsWith('/') ? r.api_base.slice(0, -1) : r.api_base
  const route = base.endsWith('/v1') && r.route.startsWith('/v1/') ? r.route.slice(3) : r.route
  return base + route
}

function requestJson(r: LogRecord): Record<string, unknown> {
  const json: Record<string, unknown> = { model: r.model || r.model_group, ...r.model_parameters }
  const field = PROMPT_FIELD[r.call_type]
  if (field && r.messages !== null && r.messages !== undefined) json[field] = r.messages
  if (r.stream) json.stream = true
  return json
}

/** Helicone headers: user, session, and properties from the record and its request metadata. */
function metaOf(r: LogRecord): Record<string, string> {
  const meta: Record<string, string> = {}
  const md = r.metadata
  for (const k in md) {
    const v = md[k]
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue
    const lower = k.toLowerCase()
    if (lower === 'helicone-auth' || RESERVED_METADATA.has(k)) continue
    // LiteLLM users pass Helicone headers through metadata as they would send them to Helicone's proxy.
    if (lower.startsWith('helicone-')) meta[k] = String(v)
    else meta[`Helicone-Property-${k}`] = String(v)
  }
  const user = r.end_user ?? str(md.trace_user_id) ?? r.user_id
  if (user) meta['Helicone-User-Id'] = user
  const session = str(md.session_id) ?? str(md.trace_id)
  if (session) meta['Helicone-Session-Id'] = session
  meta['Helicone-Property-Request-Id'] = r.id
  meta['Helicone-Property-Model-Group'] = r.model_group
  meta['Helicone-Property-Call-Type'] = r.call_type
  if (r.model_id) meta['Helicone-Property-Deployment'] = r.model_id
  if (r.provider) meta['Helicone-Property-Provider'] = r.provider
  if (r.key_alias) meta['Helicone-Property-Key-Alias'] = r.key_alias
  if (r.team_id) meta['Helicone-Property-Team-Id'] = r.team_id
  if (r.team_alias) meta['Helicone-Property-Team-Alias'] = r.team_alias
  if (r.tags.length > 0) meta['Helicone-Property-Tags'] = r.tags.join(',')
  if (r.priority !== null) meta['Helicone-Property-Priority'] = String(r.priority)
  if (r.queue_wait_ms !== null) meta['Helicone-Property-Queue-Wait-Ms'] = String(r.queue_wait_ms)
  if (r.retries > 0) meta['Helicone-Property-Retries'] = String(r.retries)
  if (r.fallbacks > 0) meta['Helicone-Property-Fallbacks'] = String(r.fallbacks)
  meta['Helicone-Property-Cost-Usd'] = String(r.cost)
  return meta
}

function usageJson(r: LogRecord): Record<string, unknown> {
  const u = r.usage
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.total_tokens,
    prompt_tokens_details: { cached_tokens: u.cached_tokens },
    completion_tokens_details: { reasoning_tokens: u.reasoning_tokens },
  }
}

/** The assistant message of a chat-like reply, with the record's tool calls in OpenAI form. */
function messageOf(r: LogRecord): Record<string, unknown> {
  const resp = r.response
  let message: Record<string, unknown>
  if (resp !== null && typeof resp === 'object' && !Array.isArray(resp)) message = { role: 'assistant', ...(resp as Record<string, unknown>) }
  else message = { role: 'assistant', content: typeof resp === 'string' ? resp : null }
  if (r.tool_calls.length > 0 && message.tool_calls === undefined) {
    message.tool_calls = r.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }))
  }
  return message
}

function responseJson(r: LogRecord): Record<string, unknown> {
  if (r.status === 'failure') {
    const e = r.error
    return { error: { message: e?.message ?? 'request failed', type: e?.type ?? 'error', code: e?.code ?? null } }
  }
  const created = Math.floor(r.end_time / 1000)
  if (CHAT_TYPES.has(r.call_type)) {
    return {
      id: r.id, object: 'chat.completion', created, model: r.model,
      choices: [{ index: 0, message: messageOf(r), finish_reason: r.finish_reason }],
      usage: usageJson(r),
    }
  }
  // Embeddings, images, audio: the record's reply summary as given, with the usage Helicone prices from.
  return { id: r.id, object: r.call_type, created, model: r.model, ...(r.response !== null ? { output: r.response } : {}), usage: usageJson(r) }
}

/** The body of one Helicone log request. Exported for tests. */
export function heliconeBody(r: LogRecord): Record<string, unknown> {
  const timing: Record<string, unknown> = { startTime: timeOf(r.start_time), endTime: timeOf(r.end_time) }
  if (r.ttft_ms !== null) timing.timeToFirstToken = r.ttft_ms
  return {
    providerRequest: { url: providerUrl(r), json: requestJson(r), meta: metaOf(r) },
    providerResponse: {
      json: responseJson(r),
      status: r.status === 'failure' ? (r.error?.status ?? r.http_status) : r.http_status,
      headers: {},
    },
    timing,
  }
}

export function createHeliconeSink(o: SinkContext): Sink {
  const opts = heliconeOptions(o)
  const url = new URL(opts.apiBase + LOG_PATH)
  const origin = url.origin
  const path = url.pathname
  const headers = { authorization: `Bearer ${opts.apiKey}`, 'content-type': 'application/json' }
  const delivered = new WeakSet<LogRecord>()

  async function sendOne(r: LogRecord, signal: AbortSignal): Promise<void> {
    let status: number
    let text = ''
    try {
      const res = await o.dispatcher.request({
        origin, path, method: 'POST', headers, body: JSON.stringify(heliconeBody(r)), signal,
        headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs,
      })
      status = res.statusCode
      // Read the body to its end so the connection goes back to the pool; keep a little of it for the message.
      text = (await res.body.text()).slice(0, 200)
    } catch (err) {
      throw new SinkError(`helicone: ${(err as Error).message}`, true)
    }
    if (status >= 200 && status < 300) {
      delivered.add(r)
      return
    }
    const retry = status === 408 || status === 429 || status >= 500
    throw new SinkError(`helicone: HTTP ${status}${text ? `: ${text}` : ''}`, retry, status)
  }

  return {
    name: 'helicone',
    maxBatch: opts.maxBatch,
    async send(batch, signal) {
      const todo = batch.filter((r) => !delivered.has(r))
      let next = 0
      let retryable: SinkError | null = null
      let final: SinkError | null = null
      async function worker(): Promise<void> {
        while (next < todo.length) {
          const r = todo[next++]!
          try {
            await sendOne(r, signal)
          } catch (err) {
            const e = err as SinkError
            if (e.retry) retryable ??= e
            else final ??= e
          }
        }
      }
      const workers: Promise<void>[] = []
      for (let i = 0; i < Math.min(opts.concurrency, todo.length); i++) workers.push(worker())
      await Promise.all(workers)
      // Any record that may still get through makes the batch worth retrying (delivered ones are skipped then).
      if (retryable) throw retryable
      if (final) throw final
    },
  }
}
