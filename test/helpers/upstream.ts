/**
 * A fake OpenAI-compatible upstream: a real node:http server on 127.0.0.1, port 0, so the gateway's undici Agent,
 * keep-alive, timeouts and client-disconnect handling run exactly as in production (a MockAgent would skip the
 * socket layer, which is what the abort and connection-refused tests are about).
 *
 * Every request is recorded ({ method, path, headers, body, raw, form }) and answered by the behaviour set for its
 * route (`chat`, `completions`, `embeddings`, `models`, `images`, `transcriptions`, `speech`, `moderations`). The
 * default behaviours answer with spec-conforming OpenAI bodies (audio as deterministic bytes); the helpers below
 * build error replies, delays, slow streams and mid-stream error events.
 *
 *   const up = await startUpstream(t)
 *   up.on('chat', sequence(errorReply(500, { message: 'boom' }), defaultChat()))
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

export type Route = 'chat' | 'completions' | 'embeddings' | 'models' | 'images' | 'transcriptions' | 'speech' | 'moderations'

/** A file part of a multipart request, as the upstream received it. */
export interface ReceivedFile {
  filename: string
  contentType: string
  data: Buffer
}

export interface RecordedRequest {
  method: string
  path: string
  headers: http.IncomingHttpHeaders
  /** Parsed JSON body (null for GET, a multipart body or an unparsable body). */
  body: any
  /** The body's bytes as received. */
  raw: Buffer
  /** A multipart/form-data body's fields (`name[]` fields as arrays); null for any other body. */
  form: Record<string, string | string[] | ReceivedFile> | null
  /** Date.now() when the request arrived. */
  receivedAt: number
  /** Date.now() when the response closed (finished or cut); undefined while open. */
  closedAt?: number
  /** True when the connection closed before the response was fully written (the gateway hung up). */
  aborted?: boolean
}

export interface ReplyContext {
  req: http.IncomingMessage
  res: http.ServerResponse
  record: RecordedRequest
  /** Resolves when the response closes, for whatever reason. */
  closed: Promise<void>
}

/** How the upstream answers one request. */
export type Behaviour = (ctx: ReplyContext) => void | Promise<void>

export interface FakeUpstream {
  /** Base URL for `api_base`, e.g. http://127.0.0.1:PORT/v1 */
  url: string
  /** Origin without /v1 */
  origin: string
  port: number
  requests: RecordedRequest[]
  /** Requests to one route, in arrival order. */
  requestsTo(route: Route): RecordedRequest[]
  /** Set the behaviour for a route (replaces the previous one). */
  on(route: Route, behaviour: Behaviour): void
  /** Resolves with the record once request `index` (of `route`, or overall) has closed; rejects after timeoutMs. */
  waitClosed(index: number, timeoutMs?: number, route?: Route): Promise<RecordedRequest>
  /** Resolves once `n` requests have arrived. */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

const ROUTES: Record<string, Route> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/embeddings': 'embeddings',
  '/v1/models': 'models',
  '/v1/images/generations': 'images',
  '/v1/audio/transcriptions': 'transcriptions',
  '/v1/audio/speech': 'speech',
  '/v1/moderations': 'moderations',
}

export const DEFAULT_REPLY = 'Hello from the fake upstream.'

let seq = 0
const nextId = (prefix: string) => `${prefix}-fake${Date.now().toString(36)}${(seq++).toString(36)}`
const now = () => Math.floor(Date.now() / 1000)
const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4))

function promptText(body: any): string {
  if (Array.isArray(body?.messages)) {
    return body.messages.map((m: any) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? ''))).join('\n')
  }
  if (typeof body?.prompt === 'string') return body.prompt
  if (Array.isArray(body?.prompt)) return body.prompt.join('\n')
  if (typeof body?.input === 'string') return body.input
  if (Array.isArray(body?.input)) return body.input.join('\n')
  return ''
}

function usageFor(prompt: string, completion: string) {
  const p = tokens(prompt)
  const c = tokens(completion)
  return {
    prompt_tokens: p,
    completion_tokens: c,
    total_tokens: p + c,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  }
}

function writeJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

function sseHead(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' })
  res.flushHeaders()
}

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`

/** Word-sized pieces that join back to the text. */
function pieces(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? ['']
}

/** The chat.completion.chunk sequence OpenAI sends: role chunk, content chunks, finish chunk, optional usage chunk. */
export function chatChunks(body: any, content = DEFAULT_REPLY): unknown[] {
  const id = nextId('chatcmpl')
  const created = now()
  const includeUsage = body?.stream_options?.include_usage === true
  const base = { id, object: 'chat.completion.chunk', created, model: body?.model ?? 'gpt-4o-mini', service_tier: 'default', system_fingerprint: 'fp_fake01' }
  const u = includeUsage ? { usage: null } : {}
  const out: unknown[] = [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], ...u },
  ]
  for (const p of pieces(content)) out.push({ ...base, choices: [{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }], ...u })
  out.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], ...u })
  if (includeUsage) out.push({ ...base, choices: [], usage: usageFor(promptText(body), content) })
  return out
}

function textChunks(body: any, text: string): unknown[] {
  const id = nextId('cmpl')
  const created = now()
  const base = { id, object: 'text_completion', created, model: body?.model ?? 'gpt-3.5-turbo-instruct', system_fingerprint: 'fp_fake01' }
  const out: unknown[] = pieces(text).map((p) => ({ ...base, choices: [{ text: p, index: 0, logprobs: null, finish_reason: null }] }))
  out.push({ ...base, choices: [{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }] })
  if (body?.stream_options?.include_usage === true) {
    const { prompt_tokens_details: _p, completion_tokens_details: _c, ...usage } = usageFor(promptText(body), text)
    out.push({ ...base, choices: [], usage })
  }
  return out
}

/** Write chunks as SSE, `intervalMs` apart, then `data: [DONE]` (unless the response closed first). */
async function streamChunks(ctx: ReplyContext, chunks: unknown[], intervalMs = 0, done = true): Promise<void> {
  const { res } = ctx
  sseHead(res)
  for (const c of chunks) {
    if (res.destroyed) return
    res.write(sse(c))
    if (intervalMs > 0) await Promise.race([delayMs(intervalMs), ctx.closed])
  }
  if (res.destroyed) return
  res.end(done ? 'data: [DONE]\n\n' : undefined)
}

const delayMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A deterministic unit-ish vector per input. */
function vector(input: string, dims: number): number[] {
  let h = 2166136261
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 16777619)
  const out: number[] = []
  for (let i = 0; i < dims; i++) {
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) ^ i
    // Float32-representable values, so float and base64 forms compare exactly.
    out.push(Math.fround(((h >>> 0) / 2 ** 32) * 2 - 1) / 4)
  }
  return out
}

/** Float32 little-endian base64, as OpenAI encodes `encoding_format: base64`. */
export function toBase64Floats(v: readonly number[]): string {
  const buf = Buffer.alloc(v.length * 4)
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4))
  return buf.toString('base64')
}

export function fromBase64Floats(s: string): number[] {
  const buf = Buffer.from(s, 'base64')
  const out: number[] = []
  for (let i = 0; i + 4 <= buf.length; i += 4) out.push(buf.readFloatLE(i))
  return out
}

/** The vector the fake upstream returns for `input` (for asserting exact values). */
export function expectedEmbedding(input: string, dims = 8): number[] {
  return vector(input, dims)
}

// ---- behaviours ----------------------------------------------------------------------------------------------

/** chat.completion, or a chat.completion.chunk stream when the request says stream: true. */
export function defaultChat(o: { content?: string } = {}): Behaviour {
  const content = o.content ?? DEFAULT_REPLY
  return (ctx) => {
    const body = ctx.record.body
    if (body?.stream === true) return streamChunks(ctx, chatChunks(body, content))
    writeJson(ctx.res, 200, {
      id: nextId('chatcmpl'),
      object: 'chat.completion',
      created: now(),
      model: body?.model ?? 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage: usageFor(promptText(body), content),
      service_tier: 'default',
      system_fingerprint: 'fp_fake01',
    })
  }
}

/**
 * A model turn that calls one tool, as OpenAI sends it: a chat.completion, or (when the request streams) the chunk
 * sequence with the call's id and name on its first delta and the arguments in two pieces after it, the finish
 * chunk, then the usage chunk (`streamUsage`: always, or only when the request asked for it). `lead`: text the model
 * says before the call, in a stream.
 */
export function toolCallTurn(
  ctx: ReplyContext, call: { id: string; name: string; arguments: string },
  o: { usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number }; lead?: string; streamUsage?: 'always' | 'asked' },
): void {
  const body = ctx.record.body
  const base = { id: nextId('chatcmpl'), created: now(), model: body?.model ?? 'gpt-4o-mini', system_fingerprint: 'fp_fake01' }
  const toolCall = { id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }
  if (body?.stream !== true) {
    writeJson(ctx.res, 200, {
      ...base, object: 'chat.completion', usage: o.usage,
      choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, tool_calls: [toolCall] }, logprobs: null, finish_reason: 'tool_calls' }],
    })
    return
  }
  const chunk = (delta: unknown, finish: string | null = null) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
  const half = Math.floor(call.arguments.length / 2)
  sseHead(ctx.res)
  if (o.lead !== undefined) ctx.res.write(sse(chunk({ role: 'assistant', content: o.lead })))
  ctx.res.write(sse(chunk({ ...(o.lead === undefined ? { role: 'assistant', content: null } : {}), tool_calls: [{ index: 0, ...toolCall, function: { name: call.name, arguments: '' } }] })))
  ctx.res.write(sse(chunk({ tool_calls: [{ index: 0, function: { arguments: call.arguments.slice(0, half) } }] })))
  ctx.res.write(sse(chunk({ tool_calls: [{ index: 0, function: { arguments: call.arguments.slice(half) } }] })))
  ctx.res.write(sse(chunk({}, 'tool_calls')))
  if ((o.streamUsage ?? 'always') === 'always' || body?.stream_options?.include_usage === true) {
    ctx.res.write(sse({ ...base, object: 'chat.completion.chunk', choices: [], usage: o.usage }))
  }
  ctx.res.end('data: [DONE]\n\n')
}

/** text_completion (legacy /v1/completions), streamed when asked. */
export function defaultCompletion(o: { text?: string } = {}): Behaviour {
  const text = o.text ?? ' This is indeed a test.'
  return (ctx) => {
    const body = ctx.record.body
    if (body?.stream === true) return streamChunks(ctx, textChunks(body, text))
    const { prompt_tokens_details: _p, completion_tokens_details: _c, ...usage } = usageFor(promptText(body), text)
    writeJson(ctx.res, 200, {
      id: nextId('cmpl'),
      object: 'text_completion',
      created: now(),
      model: body?.model ?? 'gpt-3.5-turbo-instruct',
      system_fingerprint: 'fp_fake01',
      choices: [{ text, index: 0, logprobs: null, finish_reason: 'stop' }],
      usage,
    })
  }
}

/** Embedding list: one vector per input (`dimensions`, default 8), float arrays or base64 Float32 LE per encoding_format. */
export function defaultEmbeddings(): Behaviour {
  return (ctx) => {
    const body = ctx.record.body ?? {}
    const inputs: string[] = Array.isArray(body.input) ? body.input.map(String) : [String(body.input ?? '')]
    const dims = typeof body.dimensions === 'number' ? body.dimensions : 8
    const base64 = body.encoding_format === 'base64'
    const p = tokens(inputs.join(' '))
    writeJson(ctx.res, 200, {
      object: 'list',
      data: inputs.map((input, index) => {
        const v = vector(input, dims)
        return { object: 'embedding', index, embedding: base64 ? toBase64Floats(v) : v }
      }),
      model: body.model ?? 'text-embedding-3-small',
      usage: { prompt_tokens: p, total_tokens: p },
    })
  }
}

// ---- media behaviours ---------------------------------------------------------------------------------------

/** A 1x1 transparent PNG, the image every fake generation returns. */
export const FAKE_PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII='

/**
 * images.generate: `n` images (URLs, or b64_json when asked and always for GPT image models, which also report
 * token usage, size and quality as OpenAI's do).
 */
export function defaultImages(o: { outputTokens?: number } = {}): Behaviour {
  return (ctx) => {
    const body = ctx.record.body ?? {}
    const n = typeof body.n === 'number' ? body.n : 1
    const gpt = String(body.model ?? '').startsWith('gpt-image')
    const b64 = gpt || body.response_format === 'b64_json'
    const data = Array.from({ length: n }, (_, i) => (b64 ? { b64_json: FAKE_PNG_B64 } : { url: `https://images.example.invalid/img-${i}.png`, revised_prompt: `${body.prompt ?? ''} (revised)` }))
    const reply: Record<string, unknown> = { created: now(), data }
    if (gpt) {
      const text = tokens(String(body.prompt ?? ''))
      const out = (o.outputTokens ?? 1056) * n
      reply.usage = { input_tokens: text, input_tokens_details: { text_tokens: text, image_tokens: 0 }, output_tokens: out, total_tokens: text + out }
      reply.size = body.size && body.size !== 'auto' ? body.size : '1024x1024'
      reply.quality = body.quality && body.quality !== 'auto' ? body.quality : 'medium'
      reply.output_format = 'png'
      reply.background = 'opaque'
    }
    writeJson(ctx.res, 200, reply)
  }
}

export const DEFAULT_TRANSCRIPT = 'The quick brown fox jumps over the lazy dog.'

/** Seconds in a WAV, read from its header on its own (the gateway's reading is what the tests check). */
export function wavDurationOf(b: Buffer): number {
  const byteRate = b.readUInt32LE(28)
  const dataAt = b.indexOf('data', 12, 'ascii')
  return b.readUInt32LE(dataAt + 4) / byteRate
}

/** audio.transcriptions: json, verbose_json (with the audio's duration from the WAV header), text, srt or vtt. */
export function defaultTranscription(o: { text?: string } = {}): Behaviour {
  const text = o.text ?? DEFAULT_TRANSCRIPT
  return (ctx) => {
    const form = ctx.record.form ?? {}
    const file = form.file as ReceivedFile | undefined
    const format = typeof form.response_format === 'string' ? form.response_format : 'json'
    const duration = file && file.data.subarray(0, 4).toString('ascii') === 'RIFF' ? wavDurationOf(file.data) : 1
    if (format === 'json') return writeJson(ctx.res, 200, { text, usage: { type: 'duration', seconds: Math.ceil(duration) } })
    if (format === 'verbose_json') {
      return writeJson(ctx.res, 200, {
        task: 'transcribe', language: 'english', duration, text,
        segments: [{ id: 0, seek: 0, start: 0, end: duration, text, tokens: [1, 2, 3], temperature: 0, avg_logprob: -0.2, compression_ratio: 1, no_speech_prob: 0.01 }],
        usage: { type: 'duration', seconds: Math.ceil(duration) },
      })
    }
    const end = `00:00:0${Math.min(9, Math.ceil(duration))}`
    const out = format === 'srt' ? `1\n00:00:00,000 --> ${end},000\n${text}\n\n`
      : format === 'vtt' ? `WEBVTT\n\n00:00:00.000 --> ${end}.000\n${text}\n\n` : `${text}\n`
    ctx.res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(out) })
    ctx.res.end(out)
  }
}

const SPEECH_TYPES: Record<string, string> = { mp3: 'audio/mpeg', opus: 'audio/ogg', aac: 'audio/aac', flac: 'audio/flac', wav: 'audio/wav', pcm: 'audio/pcm' }

/** The bytes the fake speech route returns for an input: deterministic, 64 KiB, so a test can compare them exactly. */
export function expectedSpeech(input: string): Buffer {
  const out = Buffer.alloc(64 * 1024)
  let h = 2166136261
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 16777619)
  for (let i = 0; i < out.length; i++) {
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) ^ i
    out[i] = h & 0xff
  }
  out.write('ID3', 0, 'ascii')
  return out
}

/** audio.speech: the expectedSpeech bytes, chunked (`chunks` writes, `intervalMs` apart), with the format's content type. */
export function defaultSpeech(o: { chunks?: number; intervalMs?: number } = {}): Behaviour {
  return async (ctx) => {
    const body = ctx.record.body ?? {}
    const audio = expectedSpeech(String(body.input ?? ''))
    const n = o.chunks ?? 4
    ctx.res.writeHead(200, { 'content-type': SPEECH_TYPES[body.response_format ?? 'mp3'] ?? 'audio/mpeg', 'transfer-encoding': 'chunked' })
    const size = Math.ceil(audio.length / n)
    for (let i = 0; i < n; i++) {
      if (ctx.res.destroyed) return
      ctx.res.write(audio.subarray(i * size, (i + 1) * size))
      if (o.intervalMs) await Promise.race([delayMs(o.intervalMs), ctx.closed])
    }
    ctx.res.end()
  }
}

const MODERATION_CATEGORIES = ['hate', 'hate/threatening', 'harassment', 'harassment/threatening', 'illicit', 'illicit/violent',
  'self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual', 'sexual/minors', 'violence', 'violence/graphic']

/** moderations.create: one result per input; an input containing "kill" is flagged for violence. */
export function defaultModerations(): Behaviour {
  return (ctx) => {
    const body = ctx.record.body ?? {}
    const inputs: unknown[] = Array.isArray(body.input) ? body.input : [body.input]
    const results = inputs.map((input) => {
      const text = typeof input === 'string' ? input : JSON.stringify(input)
      const violent = /kill/i.test(text)
      const categories: Record<string, boolean> = {}
      const scores: Record<string, number> = {}
      const types: Record<string, string[]> = {}
      for (const c of MODERATION_CATEGORIES) {
        categories[c] = violent && c === 'violence'
        scores[c] = violent && c === 'violence' ? 0.97 : 0.0001
        types[c] = ['text']
      }
      return { flagged: violent, categories, category_scores: scores, category_applied_input_types: types }
    })
    writeJson(ctx.res, 200, { id: nextId('modr'), model: body.model ?? 'omni-moderation-latest', results })
  }
}

export function defaultModels(): Behaviour {
  return (ctx) => writeJson(ctx.res, 200, {
    object: 'list',
    data: [{ id: 'gpt-4o-mini', object: 'model', created: 1721172741, owned_by: 'system' }],
  })
}

export interface ErrorFields {
  message: string
  type?: string
  param?: string | null
  code?: string | null
}

/** An OpenAI error reply: status, {"error":{message,type,param,code}} and extra headers (e.g. retry-after). */
export function errorReply(status: number, error: ErrorFields, headers: Record<string, string> = {}): Behaviour {
  const type = error.type ?? (status === 429 ? 'rate_limit_error' : status === 401 ? 'authentication_error' : status >= 500 ? 'server_error' : 'invalid_request_error')
  const body = { error: { message: error.message, type, param: error.param ?? null, code: error.code ?? null } }
  return (ctx) => writeJson(ctx.res, status, body, headers)
}

/** Any JSON reply. */
export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Behaviour {
  return (ctx) => writeJson(ctx.res, status, body, headers)
}

/** Wait `ms` (or until the gateway hangs up) before running `then`. */
export function delay(ms: number, then: Behaviour): Behaviour {
  return async (ctx) => {
    await Promise.race([delayMs(ms), ctx.closed])
    if (ctx.res.destroyed) return
    return then(ctx)
  }
}

/**
 * A chat stream that sends one chunk every `intervalMs`, `chunks` content chunks in all (long enough that a client
 * disconnect happens mid-stream). Stops writing as soon as the connection closes.
 */
export function slowStream(o: { intervalMs?: number; chunks?: number } = {}): Behaviour {
  const n = o.chunks ?? 200
  return (ctx) => streamChunks(ctx, chatChunks(ctx.record.body, Array.from({ length: n }, (_, i) => `w${i}`).join(' ')), o.intervalMs ?? 50)
}

/**
 * A chat stream that sends `after` normal chunks, then an error event `data: {"error":{...}}` and ends without
 * `[DONE]`, as OpenAI does when generation fails mid-stream.
 */
export function midStreamError(error: ErrorFields, o: { after?: number; intervalMs?: number } = {}): Behaviour {
  return async (ctx) => {
    const chunks = chatChunks(ctx.record.body, 'one two three four five').slice(0, o.after ?? 3)
    chunks.push({ error: { message: error.message, type: error.type ?? 'server_error', param: error.param ?? null, code: error.code ?? null } })
    await streamChunks(ctx, chunks, o.intervalMs ?? 0, false)
  }
}

/** One behaviour per request, in order; the last one repeats. */
export function sequence(...behaviours: Behaviour[]): Behaviour {
  let i = 0
  return (ctx) => behaviours[Math.min(i++, behaviours.length - 1)]!(ctx)
}

// ---- server --------------------------------------------------------------------------------------------------

export async function startUpstream(t: Test, handlers: Partial<Record<Route, Behaviour>> = {}): Promise<FakeUpstream> {
  const behaviours: Record<Route, Behaviour> = {
    chat: defaultChat(),
    completions: defaultCompletion(),
    embeddings: defaultEmbeddings(),
    models: defaultModels(),
    images: defaultImages(),
    transcriptions: defaultTranscription(),
    speech: defaultSpeech(),
    moderations: defaultModerations(),
    ...handlers,
  }
  const requests: RecordedRequest[] = []
  const routeOf = new Map<RecordedRequest, Route | undefined>()
  const closedPromises = new Map<RecordedRequest, Promise<void>>()
  const arrivals: Array<() => void> = []

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const raw = Buffer.concat(chunks)
      const type = String(req.headers['content-type'] ?? '')
      let body: unknown = null
      let form: RecordedRequest['form'] = null
      if (type.startsWith('multipart/form-data')) form = await parseForm(raw, type)
      else {
        try {
          body = raw.length ? JSON.parse(raw.toString('utf8')) : null
        } catch {
          body = null
        }
      }
      const path = (req.url ?? '/').split('?')[0]!
      const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body, raw, form, receivedAt: Date.now() }
      const closed = new Promise<void>((resolve) => {
        res.once('close', () => {
          record.closedAt = Date.now()
          record.aborted = !res.writableFinished
          resolve()
        })
      })
      requests.push(record)
      const route = ROUTES[path] ?? (path.startsWith('/v1/models/') ? 'models' : undefined)
      routeOf.set(record, route)
      closedPromises.set(record, closed)
      for (const r of arrivals.splice(0)) r()
      if (!route) {
        writeJson(res, 404, { error: { message: `Unknown request URL: ${req.method} ${path}`, type: 'invalid_request_error', param: null, code: 'unknown_url' } })
        return
      }
      Promise.resolve(behaviours[route]({ req, res, record, closed })).catch((err: unknown) => {
        if (!res.headersSent) writeJson(res, 500, { error: { message: String(err), type: 'server_error', param: null, code: null } })
        else res.destroy()
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const origin = `http://127.0.0.1:${port}`
  let closing: Promise<void> | null = null
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    return closing
  }
  t.teardown(close)

  const upstream: FakeUpstream = {
    url: `${origin}/v1`,
    origin,
    port,
    requests,
    requestsTo: (route) => requests.filter((r) => routeOf.get(r) === route),
    on(route, behaviour) {
      behaviours[route] = behaviour
    },
    async waitClosed(index, timeoutMs = 2000, route) {
      const list = route ? upstream.requestsTo(route) : requests
      const record = list[index]
      if (!record) throw new Error(`no request #${index}${route ? ` to ${route}` : ''}`)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        closedPromises.get(record)!,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`upstream request #${index} still open after ${timeoutMs} ms`)), timeoutMs)
        }),
      ]).finally(() => clearTimeout(timer))
      return record
    },
    async waitForRequests(n, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs
      while (requests.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} upstream requests, got ${requests.length}`)
        await Promise.race([new Promise<void>((r) => arrivals.push(r)), delayMs(50)])
      }
    },
    close,
  }
  return upstream
}

/** A multipart body's fields and files; null when it does not parse. */
async function parseForm(raw: Buffer, type: string): Promise<RecordedRequest['form']> {
  try {
    const fd = await new Request('http://upstream.invalid/', { method: 'POST', headers: { 'content-type': type }, body: raw }).formData()
    const out: Record<string, string | string[] | ReceivedFile> = {}
    for (const [name, value] of fd) {
      const v = typeof value === 'string' ? value : { filename: value.name, contentType: value.type, data: Buffer.from(await value.arrayBuffer()) }
      if (name.endsWith('[]')) {
        const key = name.slice(0, -2)
        const list = (out[key] as string[] | undefined) ?? []
        list.push(v as string)
        out[key] = list
      } else out[name] = v
    }
    return out
  } catch {
    return null
  }
}

/** A port on 127.0.0.1 that refuses connections: bound once, then closed. */
export async function closedPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}
