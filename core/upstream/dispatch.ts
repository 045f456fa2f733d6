/**
 * The terminal step of the attempt chain: OpenAI request -> provider body (param map) -> undici -> OpenAI result.
 *
 * Timeouts are per phase (as httpx applies LiteLLM's settings): `timeout` bounds the wait for the response headers
 * and each gap between body chunks of a non-streaming call; `stream_timeout` does the same for streams. A client
 * that disconnects aborts the upstream request through `state.signal`.
 *
 * Streams are primed: the first event is read before the attempt returns, so an upstream that fails right away
 * (a 200 followed by an error event) still counts as a failed attempt that retry and fallback can act on.
 *
 * A 200 is checked for the one field every OpenAI response of its operation has (`choices`; `data` for embeddings
 * and images, `results` for moderations, `text` for transcriptions; per event for streams): an upstream that
 * answers `{}` is a 502 that retry can act on, not an empty success.
 *
 * Media operations: a transcription goes up as multipart/form-data (the op adapter's `encoding`), and a reply the
 * op adapter reads as bytes (`reply`: speech audio, a transcription as text) comes back as a `binary` result that
 * streams to the client as it arrives; its first chunk is read inside the attempt, as a stream's first event is.
 *
 * When the Agent's per-origin socket cap is set, calls in flight per origin are counted (until the body ends or is
 * destroyed) and a warning says when the cap is reached, since undici queues past it without a word.
 */
import type { Dispatcher } from 'undici'
import type { Readable } from 'node:stream'
import { gatewayError, GatewayError } from '../errors.js'
import type { ProviderRegistry } from '../../providers/registry.js'
import type { EventDecoder, OperationAdapter, ProviderAdapter, ProviderResult, ResponseMeta, StreamTranslator, Target } from '../../providers/types.js'
import { applyParamMap } from '../../providers/param-map.js'
import type { Attempt, AttemptHandler } from '../pipeline.js'
import type { Logger } from '../logger.js'
import { SseParser } from '../sse.js'
import { passStream, rawJson, StreamEnd } from './passthrough.js'
import type { ChatChunk, ChatCompletion, SpeechAudio, TextCompletion, Usage } from '../openai/types.js'
import { chatToChunks, textToChunks, usageOf } from '../openai/shape.js'
import { encodeMultipart } from './form-data.js'
import { RESPONSE_LIST } from '../openai/operations.js'
import { chatToText, chatChunkToText, textToChatRequest } from '../openai/text.js'
import { callNative } from './native.js'

export interface DispatchDeps {
  dispatcher: Dispatcher
  providers: ProviderRegistry
  /** Where the connection-cap warning goes. */
  logger?: Logger
  /**
   * The dispatcher's socket cap per origin (`server.upstream_max_connections`, also given to createAgent), if one
   * is set: calls in flight are then counted per origin and a warning is logged when they reach it. null or unset:
   * unlimited, nothing is counted.
   */
  maxConnections?: number | null
}

type AnyOp = OperationAdapter<any, any, any>

export function createDispatch({ dispatcher, providers, logger, maxConnections }: DispatchDeps): AttemptHandler {
  const gauge = logger && maxConnections != null && maxConnections > 0 ? new ConnectionGauge(maxConnections, logger) : null
  return async function dispatch(attempt: Attempt): Promise<ProviderResult> {
    const { target, state } = attempt
    const request = withDefaults(target.defaults, attempt.request)
    const adapter = providers.forTarget(target, request)
    const meta: ResponseMeta = { target, requestId: state.requestId, created: Math.floor(state.startedAt / 1000) }
    let op = attempt.op
    // Legacy /v1/completions over a chat-only provider: translate both ways, as LiteLLM does.
    const viaChat = op === 'completions' && !adapter.operations.has('completions') && adapter.operations.has('chat')
    if (viaChat) op = 'chat'
    if (!adapter.operations.has(op)) {
      throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION', `Model ${target.modelName} (${target.provider}) does not support ${attempt.op}`, { param: 'model' })
    }
    const req = viaChat ? textToChatRequest(request) : request
    meta.request = req
    let result: ProviderResult
    // The provider call's time (to a stream's first event), which x-litellm-overhead-duration-ms leaves out.
    const t0 = performance.now()
    try {
      if (adapter.invoke) {
        result = await adapter.invoke({ op, target, request: req, stream: attempt.stream, signal: state.signal, meta })
        if (result.kind === 'stream') result = { kind: 'stream', chunks: await prime(result.chunks[Symbol.asyncIterator]()) }
      } else if (state.native && !viaChat && adapter.native?.[state.native.format]) {
        // The client's own format, to a provider that speaks it (an Anthropic deployment serving /v1/messages).
        result = await callNative(adapter, adapter.native[state.native.format]!, state.native, target, attempt.stream, state.signal, dispatcher)
      } else {
        // Pass-through only where the client reads the reply as sent (HTTP, no plugin that needs the content).
        const pass = !viaChat && state.passthrough
        result = await callHttp(adapter, adapter[op] as AnyOp | undefined, op, target, req, attempt.stream, state.signal, meta, dispatcher, gauge, pass)
      }
    } finally {
      state.upstreamMs += performance.now() - t0
    }
    if (!viaChat) return result
    if (result.kind === 'json') return { kind: 'json', body: chatToText(result.body as never), usage: result.usage }
    if (result.kind !== 'stream') throw gatewayError('GW_ERR_INTERNAL', 'a chat pass-through cannot serve a text completion')
    return { kind: 'stream', chunks: mapIterable(result.chunks, chatChunkToText as never) }
  }
}

function withDefaults(defaults: Readonly<Record<string, unknown>>, request: Record<string, unknown>): Record<string, unknown> {
  for (const _k in defaults) return { ...defaults, ...request }
  return request
}

async function callHttp(
  adapter: ProviderAdapter, opAdapter: AnyOp | undefined, op: Attempt['op'], target: Target, request: Record<string, unknown>,
  stream: boolean, clientSignal: AbortSignal, meta: ResponseMeta, dispatcher: Dispatcher, gauge: ConnectionGauge | null,
  passthrough: boolean,
): Promise<ProviderResult> {
  if (!opAdapter) throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION', `${adapter.name} has no ${op} translator`)
  let body = applyParamMap(request, opAdapter.params, target, opAdapter.policy)
  if (opAdapter.finish) body = opAdapter.finish(body, request, target, stream)
  let payload: string | Buffer
  let contentType = 'application/json'
  if (opAdapter.encoding === 'multipart') ({ payload, contentType } = encodeMultipart(body))
  else payload = JSON.stringify(body)
  let prepared = adapter.request(op, target, stream)
  if (adapter.authorize) {
    prepared = typeof payload === 'string' ? await adapter.authorize(prepared, payload, target) : await adapter.authorize(prepared, '', target, payload)
  }
  const { url, headers } = prepared
  const replyMode = opAdapter.reply ?? 'json'

  const accept = stream ? 'text/event-stream' : replyMode === 'json' ? 'application/json' : '*/*'
  const res = await postUpstream(dispatcher, adapter, target, url, { 'content-type': contentType, accept, ...headers }, payload, stream, clientSignal, gauge)

  const replyType = String(res.headers['content-type'] ?? '')
  if (!stream && (replyMode === 'binary' || (replyMode === 'auto' && !isJsonType(replyType)))) {
    const type = replyType || (opAdapter.contentType ? opAdapter.contentType(request) : 'application/octet-stream')
    return { kind: 'binary', contentType: type, chunks: await prime(byteStream(res.body, clientSignal, target)) }
  }
  // A host that ignores `stream: true` answers with one JSON body: it is replayed as the chunks a stream would have
  // carried, rather than an empty stream.
  const jsonReply = !stream || replyType.startsWith('application/json')
  if (jsonReply) {
    try {
      const text = await res.body.text()
      if (passthrough && !stream && opAdapter.passthrough) {
        const raw = rawJson(text, op, request.encoding_format === 'base64')
        if (raw) return raw
      }
      const json = JSON.parse(text)
      // A 200 whose body is JSON but not an object (a bare string, an array) is no OpenAI response either; passed
      // through, Koa would send it to the client as a text/plain 200.
      if (json === null || typeof json !== 'object' || Array.isArray(json)) {
        throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a body that is not a JSON object`, { provider: target.provider })
      }
      const out = opAdapter.response(json, meta)
      if (op === 'speech') return speechAudio(out as SpeechAudio, target.provider)
      requireList(op, out, target.provider)
      if (stream) {
        const chunks: Array<ChatChunk | TextCompletion> = op === 'chat' ? chatToChunks(out as ChatCompletion) : textToChunks(out as TextCompletion)
        return { kind: 'stream', chunks: fromArray(chunks) }
      }
      return { kind: 'json', body: out, usage: usageOf(op, out) }
    } catch (err) {
      if (err instanceof GatewayError) throw err
      if (clientSignal.aborted || isTransportError(err)) throw transportError(err, clientSignal, target)
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a body that is not valid JSON`, { cause: err, provider: target.provider })
    }
  }

  if (!opAdapter.stream) {
    // undici's body reports an unread destroy as an 'error' event; unheard, it would be an uncaught exception.
    res.body.on('error', ignore)
    res.body.destroy()
    throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION', `${adapter.name} cannot stream ${op}`, { param: 'stream' })
  }
  const translator = opAdapter.stream(request, meta)
  const decoder = opAdapter.decoder ? opAdapter.decoder() : new SseParser()
  if (passthrough && opAdapter.passthrough && !opAdapter.decoder) {
    const provider = target.provider
    const events = passStream(res.body, decoder, translator, op, provider, (c) => checkChunk(c, provider), (err) => transportError(err, clientSignal, target))
    return { kind: 'passthrough', events: await prime(events) }
  }
  const ending = opAdapter.passthrough ? new StreamEnd() : null
  return { kind: 'stream', chunks: await prime(translateStream(res.body, decoder, translator, clientSignal, target, ending)) }
}

/**
 * POST one provider call and hand back a 2xx response; a transport failure or an error status becomes the mapped
 * GatewayError (the error body read and given to adapter.error). Timeouts are per phase, as httpx applies LiteLLM's
 * `timeout`: the wait for response headers, then each gap between body chunks; streams use `stream_timeout`. undici
 * enforces both on the socket, so a call costs no timer or AbortController of its own; the client's signal aborts it
 * when the client goes away. Shared by translated calls, native ones (native.ts) and token counting.
 */
export async function postUpstream(
  dispatcher: Dispatcher, adapter: ProviderAdapter, target: Target, url: string, headers: Record<string, string>,
  payload: string | Buffer, stream: boolean, signal: AbortSignal, gauge: ConnectionGauge | null = null,
): Promise<Dispatcher.ResponseData> {
  const timeoutMs = stream ? target.streamTimeoutMs : target.timeoutMs
  const load = gauge ? gauge.acquire(url) : null
  let res: Dispatcher.ResponseData
  try {
    const [origin, path] = splitUrl(url)
    res = await dispatcher.request({
      origin, path, method: 'POST', headers, body: payload, signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    })
  } catch (err) {
    if (load) load.release()
    throw transportError(err, signal, target)
  }
  // The socket is busy until the body has been read to its end or destroyed; 'close' follows either.
  if (load) res.body.on('close', load.release)
  if (res.statusCode >= 400) {
    let text = ''
    try {
      text = await res.body.text()
    } catch {
      // the status alone still maps to an error
    }
    throw adapter.error(res.statusCode, parseLenient(text), res.headers)
  }
  return res
}

type StreamChunk = { usage?: Usage | null; id?: string; model?: string; created?: number; object?: string; choices?: unknown }

async function* translateStream<C extends StreamChunk>(
  body: Readable, parser: EventDecoder, tr: StreamTranslator<C>, signal: AbortSignal, target: Target,
  ending: StreamEnd | null,
): AsyncGenerator<C> {
  let usageSeen = false
  let last: C | undefined
  try {
    for await (const bytes of body) {
      for (const ev of parser.push(bytes as Buffer)) {
        if (ending && ev.data === '[DONE]') ending.done = true
        for (const c of tr.event(ev)) {
          if (checkChunk(c, target.provider)) usageSeen = true
          ending?.chunk(c)
          last = c
          yield c
        }
      }
    }
    for (const ev of parser.end()) {
      if (ending && ev.data === '[DONE]') ending.done = true
      for (const c of tr.event(ev)) {
        if (checkChunk(c, target.provider)) usageSeen = true
        ending?.chunk(c)
        yield (last = c)
      }
    }
    ending?.check(target.provider)
    const tail = tr.end()
    for (const c of tail.chunks) {
      if (checkChunk(c, target.provider)) usageSeen = true
      yield (last = c)
    }
    if (tail.usage && !usageSeen && last) {
      yield { id: last.id, object: last.object, created: last.created, model: last.model, choices: [], usage: tail.usage } as unknown as C
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err
    throw transportError(err, signal, target)
  } finally {
    if (!body.destroyed) body.destroy()
  }
}

/**
 * A 200 that lacks the list every response of its operation carries (`{}`, an error-less envelope from a proxy in
 * between) is no answer: a 502 naming the provider and the field, which retry and fallback treat as any 5xx.
 */
function requireList(op: Attempt['op'], out: unknown, provider: string): void {
  const o = out as Record<string, unknown>
  if (op === 'transcription') {
    if (typeof o?.text === 'string') return
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned a transcription without a \`text\` string`, { provider })
  }
  const field = RESPONSE_LIST[op]
  if (Array.isArray(o?.[field])) return
  throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned a ${op} response without a \`${field}\` list`, { provider })
}

/** A speech op adapter's JSON reply (base64 audio decoded by the adapter) as the binary result a client gets. */
function speechAudio(out: SpeechAudio, provider: string): ProviderResult {
  if (!out || !(out.audio instanceof Uint8Array) || typeof out.contentType !== 'string') {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned a speech response without audio`, { provider })
  }
  return { kind: 'binary', contentType: out.contentType, chunks: fromArray([out.audio]) }
}

/** `application/json`, `application/json; charset=utf-8`, `application/problem+json`. */
function isJsonType(contentType: string): boolean {
  const semi = contentType.indexOf(';')
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
  return type === 'application/json' || type.endsWith('+json')
}

/** A binary reply's bytes as they arrive; a failure mid-body is a transport error, as for streams. */
async function* byteStream(body: Readable, signal: AbortSignal, target: Target): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of body) yield chunk as Buffer
  } catch (err) {
    if (err instanceof GatewayError) throw err
    throw transportError(err, signal, target)
  } finally {
    if (!body.destroyed) body.destroy()
  }
}

/**
 * Every stream chunk carries `choices`; the one exception is the final usage-only chunk some hosts send without
 * it, which becomes the `choices: []` chunk OpenAI sends. Returns whether the chunk carries usage.
 */
function checkChunk(c: StreamChunk, provider: string): boolean {
  if (Array.isArray(c.choices)) return !!c.usage
  if (c.usage) {
    c.choices = []
    return true
  }
  throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} sent a stream event without a \`choices\` list`, { provider })
}

/**
 * Read the first item now (so early failures surface inside the attempt), then hand back an iterable that replays
 * it and continues. Closing the returned iterator closes the source, even when iteration never started.
 */
export async function prime<T>(it: AsyncIterator<T>): Promise<AsyncIterable<T>> {
  const first = await it.next()
  let replayed = false
  const iterator: AsyncIterableIterator<T> = {
    next() {
      if (!replayed) {
        replayed = true
        return Promise.resolve(first)
      }
      return it.next()
    },
    async return(value?: unknown) {
      replayed = true
      if (it.return) await it.return(value as never)
      return { done: true, value: value as T }
    },
    [Symbol.asyncIterator]() {
      return iterator
    },
  }
  return iterator
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items
}

async function* mapIterable<A, B>(src: AsyncIterable<A>, fn: (a: A) => B): AsyncGenerator<B> {
  for await (const a of src) yield fn(a)
}

function ignore(): void {}

/** Calls in flight to one origin. Created on the origin's first call; `release` is bound once, not per call. */
class OriginLoad {
  inFlight = 0
  warnedAt = -Infinity
  readonly release = (): void => {
    this.inFlight--
  }
  constructor(readonly origin: string) {}
}

/** Warn at most this often per origin while it stays at its connection cap. */
const CAP_WARN_INTERVAL_MS = 10_000

/**
 * Per-origin in-flight counts against the dispatcher's socket cap. A call past the cap waits inside undici for a
 * free socket, which shows up nowhere else (only as latency), hence the warning.
 */
class ConnectionGauge {
  private readonly origins = new Map<string, OriginLoad>()
  constructor(private readonly cap: number, private readonly logger: Logger) {}

  acquire(url: string): OriginLoad {
    const origin = originOf(url)
    let load = this.origins.get(origin)
    if (!load) this.origins.set(origin, (load = new OriginLoad(origin)))
    if (++load.inFlight >= this.cap) this.atCap(load)
    return load
  }

  private atCap(load: OriginLoad): void {
    const now = Date.now()
    if (now - load.warnedAt < CAP_WARN_INTERVAL_MS) return
    load.warnedAt = now
    this.logger.warn(`upstream ${load.origin}: ${load.inFlight} calls in flight, at the connection cap of ${this.cap}; ` +
      'further calls queue until one finishes. Raise server.upstream_max_connections',
    { origin: load.origin, inFlight: load.inFlight, maxConnections: this.cap })
  }
}

/**
 * A provider URL as undici's dispatcher takes it: [origin, path]. Parsed once per distinct URL (a deployment's
 * endpoint): undici's top-level request() would build a URL object on every call.
 */
const splitUrls = new Map<string, readonly [string, string]>()
export function splitUrl(url: string): readonly [string, string] {
  let s = splitUrls.get(url)
  if (s === undefined) {
    const u = new URL(url)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw gatewayError('GW_ERR_UPSTREAM_CONNECTION', `Invalid upstream URL protocol ${u.protocol}: the api_base must start with http: or https:`)
    }
    s = [u.origin, u.search ? u.pathname + u.search : u.pathname] as const
    if (splitUrls.size >= 1_000) splitUrls.clear() // bounded: per-call URLs (a key in a query) must not grow it
    splitUrls.set(url, s)
  }
  return s
}

/** "https://host:port/v1/chat" -> "https://host:port", without a URL parse per call. */
function originOf(url: string): string {
  const end = url.indexOf('/', url.indexOf('//') + 2)
  return end === -1 ? url : url.slice(0, end)
}

export function parseLenient(text: string): unknown {
  if (!text) return null
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const TRANSPORT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET',
  'UND_ERR_CLOSED', 'UND_ERR_ABORTED', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

function isTransportError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code !== undefined && TRANSPORT_CODES.has(code)
}

export function transportError(err: unknown, clientSignal: AbortSignal, target: Target): GatewayError {
  if (clientSignal.aborted) {
    return gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request', { provider: target.provider, cause: err })
  }
  const code = (err as { code?: string } | null)?.code
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return gatewayError('GW_ERR_UPSTREAM_TIMEOUT', `Request to ${target.provider} timed out (model ${target.model}, ${code})`, { provider: target.provider, cause: err })
  }
  const detail = (err as Error | null)?.message ?? String(err)
  return gatewayError('GW_ERR_UPSTREAM_CONNECTION', `Connection error to ${target.provider}: ${detail}`, { provider: target.provider, cause: err })
}
