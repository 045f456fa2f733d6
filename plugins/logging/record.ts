/**
 * One standard log record per call (types.ts LogRecord), built from the request's state once `done` resolved: what
 * was asked, what answered, what it used and cost, how long each part took, and who called. It runs once per call
 * on the benchmark's full chain, so it copies nothing it can reference (the request body's messages and tools are
 * shared, not cloned: nothing changes them once the response is over), parses nothing but a kept reply, and uses
 * only the precompiled patterns below.
 *
 * Never in a record: a key (only its hash and alias), the deployment's credentials (the API base loses its user,
 * password and query), or a request or metadata field that looks like a secret.
 */
import type { GatewayState, Outcome } from '../../core/state.js'
import type { Usage } from '../../core/openai/types.js'
import type { Target } from '../../providers/types.js'
import { chainTimings } from '../../core/pipeline.js'
import { replyOf } from '../../core/openai/capture.js'
import { UploadFile } from '../../core/openai/upload.js'
import { isGatewayField } from '../../providers/param-map.js'
import { publicApiBase } from '../../core/models.js'
import type { LogAttempt, LogRecord, LogUsage } from './types.js'

export interface BuildRecordOptions {
  /** The route the client called (ctx.path). */
  route: string
  /** Leave messages, response and tool-call arguments out. */
  redact: boolean
  /** The deployment's API base, credentials removed; default: its `api_base` without user, password or query. */
  apiBase?: (t: Target) => string | null
}

type Obj = Record<string, unknown>

/** A chat call made in another client format is logged under its own call type (LiteLLM's names). */
const CALL_TYPES: Readonly<Record<string, string>> = { anthropic: 'anthropic_messages', responses: 'responses' }

/** The request fields that are the prompt (in model_parameters' place they would duplicate `messages`). */
const PROMPT_FIELDS: ReadonlySet<string> = new Set(['messages', 'prompt', 'input', 'model', 'stream', 'file'])

/**
 * Field names that may carry a credential: api keys, secrets, passwords, tokens (as a whole word: `max_tokens` and
 * `prompt_tokens` are counts), authorization headers. Tested once per field name, never per character of a value.
 */
const SECRET_NAME = /api[-_]?key|secret|passw|credential|authori[sz]ation|bearer|private[-_]?key|cookie|(?:^|[-_])(?:key|token|auth)(?:$|[-_])|(?:access|refresh|session|id)[-_]?token/i

/** Values that are a key whatever field holds them: OpenAI/LiteLLM-style `sk-...` keys and `Bearer ...` headers. */
function secretValue(v: unknown): boolean {
  return typeof v === 'string' && (v.startsWith('sk-') || v.startsWith('Bearer ') || v.startsWith('bearer '))
}

/** Whether a call failed: an error, an HTTP error status, or a client that went away before the reply ended. */
export function isFailure(state: GatewayState, outcome: Outcome): boolean {
  return outcome.error !== null || state.error !== null || outcome.status >= 400 || outcome.aborted
}

export function buildRecord(state: GatewayState, outcome: Outcome, opts: BuildRecordOptions): LogRecord {
  const end = Date.now()
  const body: Obj = state.body ?? {}
  const p = state.principal
  const t = state.target ?? lastTarget(state)
  const last = state.attempts.length > 0 ? state.attempts[state.attempts.length - 1]! : null
  const failed = isFailure(state, outcome)
  const err = outcome.error ?? state.error
  const responseMs = state.timings.response_ms
  // Time to the first byte of a reply: only when one started (a 2xx went out); an error body is not a reply.
  const ttft = responseMs !== undefined && outcome.status < 400 ? responseMs : null
  const redact = opts.redact
  // A redacted call still reports its tool calls' names and finish reason: only chat replies are read for them.
  const reply = redact && state.kind !== 'chat' ? null : replyOf(state)
  const choice = firstChoice(reply)
  const native = choice === null && isObj(reply) && reply.type === 'message' && Array.isArray(reply.content) ? reply : null
  const metadata = isObj(body.metadata) ? body.metadata : null
  const attempts = attemptsOf(state)
  return {
    id: state.requestId,
    call_type: CALL_TYPES[state.format] ?? state.kind,
    route: opts.route,
    status: failed ? 'failure' : 'success',
    http_status: outcome.aborted ? 499 : outcome.status,
    model_group: state.model,
    model: t?.model ?? last?.model ?? '',
    model_id: t?.id ?? last?.targetId ?? null,
    provider: t?.provider ?? last?.provider ?? null,
    api_base: t ? (opts.apiBase ?? publicApiBase)(t) : null,
    stream: state.stream,
    start_time: state.startedAt,
    completion_start_time: ttft === null ? null : state.startedAt + Math.round(ttft),
    end_time: end,
    latency_ms: end - state.startedAt,
    ttft_ms: ttft,
    overhead_ms: state.timings.overhead_ms ?? null,
    plugin_timings: chainTimings(state, responseMs !== undefined ? state.startedHr + responseMs : performance.now()),
    queue_wait_ms: state.timings.queue_ms ?? null,
    priority: typeof state.priority === 'number' ? state.priority : null,
    attempts,
    // Attempts beyond the first of each group: every fallback group tried started with one attempt of its own.
    retries: Math.max(0, attempts.length - 1 - state.fallbacks),
    fallbacks: state.fallbacks,
    usage: usageOf(state.usage ?? outcome.usage),
    cost: state.costUsd,
    cost_source: state.costSource,
    model_parameters: modelParameters(body),
    messages: redact ? null : promptOf(body),
    response: redact ? null : native ? nativeMessage(native) : responseOf(state, reply, choice),
    tool_calls: native ? nativeToolCalls(native, redact) : toolCallsOf(choice, redact),
    finish_reason: choice && typeof choice.finish_reason === 'string' ? choice.finish_reason
      : native && typeof native.stop_reason === 'string' ? native.stop_reason : null,
    mcp_tool_calls: state.toolCalls.length === 0 ? [] : state.toolCalls.map((c) => ({
      id: c.id, name: c.tool, mcp_server_name: c.server, namespaced_tool_name: c.name,
      arguments: redact ? null : c.arguments, result: redact ? null : c.output, error: c.error,
      start_time: c.startedAt, duration_ms: c.durationMs, cost: c.costUsd,
    })),
    error: failed ? errorOf(err, outcome) : null,
    key_hash: p?.token ?? null,
    key_alias: p?.keyAlias ?? null,
    team_id: p?.teamId ?? null,
    team_alias: p?.team?.team_alias ?? null,
    user_id: p?.userId ?? null,
    end_user: p?.endUserId ?? (typeof body.user === 'string' && body.user !== '' ? body.user : null),
    tags: tagsOf(body, metadata, p?.key?.metadata, p?.team?.metadata),
    metadata: metadata ? clean(metadata, 0) as Obj : {},
    redacted: redact,
  }
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The deployment last tried when none answered (a failed call): the last attempt's, among the request's targets. */
function lastTarget(state: GatewayState): Target | null {
  const last = state.attempts[state.attempts.length - 1]
  if (!last) return state.targets[0] ?? null
  for (const t of state.targets) if (t.id === last.targetId) return t
  return null
}

function attemptsOf(state: GatewayState): LogAttempt[] {
  const out: LogAttempt[] = new Array(state.attempts.length)
  for (let i = 0; i < state.attempts.length; i++) {
    const a = state.attempts[i]!
    out[i] = {
      deployment: a.targetId, provider: a.provider, model: a.model, start_time: a.startedAt, duration_ms: a.durationMs,
      status: a.status, error_code: a.errorCode ?? null,
    }
  }
  return out
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}

/**
 * The usage with the cache and reasoning splits at the top level. Cache reads are OpenAI's `cached_tokens` (or
 * Anthropic's `cache_read_input_tokens`, kept beside it by the native path); cache writes Anthropic's
 * `cache_creation_input_tokens`.
 */
function usageOf(u: Usage | null): LogUsage {
  if (!u) return { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 }
  const prompt = count(u.prompt_tokens)
  const completion = count(u.completion_tokens)
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: count(u.total_tokens) || prompt + completion,
    cached_tokens: count(u.prompt_tokens_details?.cached_tokens) || count(u.cache_read_input_tokens),
    cache_creation_tokens: count(u.cache_creation_input_tokens),
    reasoning_tokens: count(u.completion_tokens_details?.reasoning_tokens),
  }
}

/** The request's parameters: the body less the prompt, the gateway's own fields and anything secret-looking. */
function modelParameters(body: Obj): Obj {
  const out: Obj = {}
  for (const k in body) {
    if (PROMPT_FIELDS.has(k) || isGatewayField(k) || SECRET_NAME.test(k)) continue
    const v = body[k]
    if (v === undefined || secretValue(v)) continue
    out[k] = v
  }
  return out
}

/** The prompt: chat messages, a completion or image prompt, embedding / moderation / speech input, an upload's name. */
function promptOf(body: Obj): unknown {
  if (body.messages !== undefined) return body.messages
  if (body.prompt !== undefined) return body.prompt
  if (body.input !== undefined) return body.input
  // A transcription's audio: its name, type and size, never the bytes.
  if (body.file instanceof UploadFile) return body.file.toJSON()
  return null
}

function firstChoice(reply: unknown): Obj | null {
  if (!isObj(reply) || !Array.isArray(reply.choices)) return null
  const c: unknown = reply.choices[0]
  return isObj(c) ? c : null
}

/**
 * The reply, small: the assistant message (each choice's when there are several), a completion's text, an
 * embeddings summary (vectors are kilobytes and say nothing to a reader), images without their base64 bytes,
 * moderation results, a transcript. Null when nothing was kept (speech audio, a redacted call, a failure).
 */
function responseOf(state: GatewayState, reply: unknown, choice: Obj | null): unknown {
  if (reply === null || reply === undefined) return null
  if (typeof reply === 'string') return reply
  if (!isObj(reply)) return null
  const choices = reply.choices
  if (Array.isArray(choices) && choice) {
    if (choices.length === 1) return 'message' in choice ? choice.message : choice.text ?? null
    return choices.map((c: Obj) => (c && 'message' in c ? c.message : c?.text ?? null))
  }
  switch (state.kind) {
    case 'embeddings': {
      const data = Array.isArray(reply.data) ? reply.data as Obj[] : []
      const first = data[0]?.embedding
      return { embeddings: data.length, dimensions: Array.isArray(first) ? first.length : null }
    }
    case 'images': {
      const data = Array.isArray(reply.data) ? reply.data as Obj[] : []
      return {
        images: data.map((d) => {
          const out: Obj = {}
          if (typeof d?.url === 'string') out.url = d.url
          if (typeof d?.b64_json === 'string') out.b64_json_chars = d.b64_json.length
          if (typeof d?.revised_prompt === 'string') out.revised_prompt = d.revised_prompt
          return out
        }),
      }
    }
    case 'moderations':
      return reply.results ?? null
    case 'transcription':
      return typeof reply.text === 'string' ? reply.text : reply
    default:
      // A native Messages reply (content blocks) or another shape: as the client got it.
      return reply
  }
}

/** A native Anthropic Messages reply (an Anthropic deployment serving /v1/messages): its role and content blocks. */
function nativeMessage(reply: Obj): unknown {
  return { role: 'assistant', content: reply.content }
}

function nativeToolCalls(reply: Obj, redact: boolean): LogRecord['tool_calls'] {
  let out: LogRecord['tool_calls'] | null = null
  for (const b of reply.content as unknown[]) {
    if (!isObj(b) || b.type !== 'tool_use') continue
    ;(out ??= []).push({
      id: typeof b.id === 'string' ? b.id : '',
      name: typeof b.name === 'string' ? b.name : '',
      arguments: redact ? '' : JSON.stringify(b.input ?? {}),
    })
  }
  return out ?? []
}

function toolCallsOf(choice: Obj | null, redact: boolean): LogRecord['tool_calls'] {
  const msg = choice?.message
  if (!isObj(msg) || !Array.isArray(msg.tool_calls) || msg.tool_calls.length === 0) return []
  const out: LogRecord['tool_calls'] = []
  for (const tc of msg.tool_calls as Obj[]) {
    if (!isObj(tc)) continue
    const fn = isObj(tc.function) ? tc.function : {}
    out.push({
      id: typeof tc.id === 'string' ? tc.id : '',
      name: typeof fn.name === 'string' ? fn.name : '',
      arguments: redact ? '' : typeof fn.arguments === 'string' ? fn.arguments : '',
    })
  }
  return out
}

function errorOf(err: GatewayState['error'], outcome: Outcome): LogRecord['error'] {
  if (err) return { type: err.name, code: err.openaiCode ?? err.code, message: err.message, status: err.status }
  if (outcome.aborted) return { type: 'APIConnectionError', code: 'client_closed_request', message: 'The client closed the connection before the reply ended.', status: 499 }
  return { type: 'APIError', code: `http_${outcome.status}`, message: `The call ended with HTTP ${outcome.status}.`, status: outcome.status }
}

/** metadata.tags, then body `tags`, then the key's and the team's metadata tags; each once, in that order. */
function tagsOf(body: Obj, metadata: Obj | null, keyMeta: Obj | undefined, teamMeta: Obj | undefined): string[] {
  const a = metadata?.tags
  const b = body.tags
  const c = keyMeta?.tags
  const d = teamMeta?.tags
  // The common case, no tags anywhere: no Set, no array built.
  if (!Array.isArray(a) && !Array.isArray(b) && !Array.isArray(c) && !Array.isArray(d)) return []
  const seen = new Set<string>()
  for (const list of [a, b, c, d]) {
    if (!Array.isArray(list)) continue
    for (const x of list) if (typeof x === 'string' && x !== '') seen.add(x)
  }
  return [...seen]
}

/** Nested metadata is copied this deep at most (a cycle or a huge tree from a client ends here). */
const MAX_DEPTH = 4

/**
 * Metadata without secret-looking fields or values, at any depth (LiteLLM users put headers and credentials in
 * metadata). Copies only objects that lost a field; others are shared.
 */
function clean(v: unknown, depth: number): unknown {
  if (Array.isArray(v)) {
    if (depth >= MAX_DEPTH) return []
    let out: unknown[] | null = null
    for (let i = 0; i < v.length; i++) {
      const x = v[i]
      const c = secretValue(x) ? undefined : typeof x === 'object' && x !== null ? clean(x, depth + 1) : x
      if (c !== x && !out) out = v.slice(0, i)
      if (out && c !== undefined) out.push(c)
    }
    return out ?? v
  }
  if (!isObj(v)) return v
  if (depth >= MAX_DEPTH) return {}
  let out: Obj | null = null
  const keys = Object.keys(v)
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    const x = v[k]
    const c = SECRET_NAME.test(k) || secretValue(x) ? undefined
      : typeof x === 'object' && x !== null ? clean(x, depth + 1) : x
    if (c !== x && !out) {
      out = {}
      for (let j = 0; j < i; j++) out[keys[j]!] = v[keys[j]!]
    }
    if (out && c !== undefined) out[k] = c
  }
  return out ?? v
}
