/**
 * The terminal step of the attempt chain: OpenAI request -> provider body (param map) -> undici -> OpenAI result.
 *
 * Timeouts: `timeout` bounds a whole non-streaming call; `stream_timeout` bounds the wait for a stream's response
 * headers and first event. A client that disconnects aborts the upstream request through `state.signal`.
 *
 * Streams are primed: the first event is read before the attempt returns, so an upstream that fails right away
 * (a 200 followed by an error event) still counts as a failed attempt that retry and fallback can act on.
 */
import { request as undiciRequest, type Dispatcher } from 'undici'
import type { Readable } from 'node:stream'
import { gatewayError, GatewayError } from '../errors.js'
import type { ProviderRegistry } from '../../providers/registry.js'
import type { OperationAdapter, ProviderAdapter, ProviderResult, ResponseMeta, StreamTranslator, Target } from '../../providers/types.js'
import { applyParamMap } from '../../providers/param-map.js'
import type { Attempt, AttemptHandler } from '../pipeline.js'
import { SseParser } from '../sse.js'
import type { Usage } from '../openai/types.js'
import { chatToText, chatChunkToText, textToChatRequest } from '../openai/text.js'

export interface DispatchDeps {
  dispatcher: Dispatcher
  providers: ProviderRegistry
}

const TIMEOUT = Symbol('timeout')
const CLIENT_CLOSED = Symbol('client closed')

type AnyOp = OperationAdapter<any, any, any>

export function createDispatch({ dispatcher, providers }: DispatchDeps): AttemptHandler {
  return async function dispatch(attempt: Attempt): Promise<ProviderResult> {
    const { target, state } = attempt
    const adapter = providers.forTarget(target)
    const request = withDefaults(target.defaults, attempt.request)
    const meta: ResponseMeta = { target, requestId: state.requestId, created: Math.floor(state.startedAt / 1000) }
    let op = attempt.op
    // Legacy /v1/completions over a chat-only provider: translate both ways, as LiteLLM does.
    const viaChat = op === 'completions' && !adapter.operations.has('completions') && adapter.operations.has('chat')
    if (viaChat) op = 'chat'
    if (!adapter.operations.has(op)) {
      throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION', `Model ${target.modelName} (${target.provider}) does not support ${attempt.op}`, { param: 'model' })
    }
    const req = viaChat ? textToChatRequest(request) : request
    let result: ProviderResult
    if (adapter.invoke) {
      result = await adapter.invoke({ op, target, request: req, stream: attempt.stream, signal: state.signal, meta })
      if (result.kind === 'stream') result = { kind: 'stream', chunks: await prime(result.chunks[Symbol.asyncIterator]()) }
    } else {
      result = await callHttp(adapter, adapter[op] as AnyOp | undefined, op, target, req, attempt.stream, state.signal, meta, dispatcher)
    }
    if (!viaChat) return result
    if (result.kind === 'json') return { kind: 'json', body: chatToText(result.body as never), usage: result.usage }
    return { kind: 'stream', chunks: mapIterable(result.chunks, chatChunkToText as never) }
  }
}

function withDefaults(defaults: Readonly<Record<string, unknown>>, request: Record<string, unknown>): Record<string, unknown> {
  for (const _k in defaults) return { ...defaults, ...request }
  return request
}

async function callHttp(
  adapter: ProviderAdapter, opAdapter: AnyOp | undefined, op: Attempt['op'], target: Target, request: Record<string, unknown>,
  stream: boolean, clientSignal: AbortSignal, meta: ResponseMeta, dispatcher: Dispatcher,
): Promise<ProviderResult> {
  if (!opAdapter) throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION', `${adapter.name} has no ${op} translator`)
  let body = applyParamMap(request, opAdapter.params, target, opAdapter.policy)
  if (opAdapter.finish) body = opAdapter.finish(body, request, target, stream)
  const { url, headers } = adapter.request(op, target, stream)

  const ac = new AbortController()
  const timeoutMs = stream ? target.streamTimeoutMs : target.timeoutMs
  const timer = setTimeout(() => ac.abort(TIMEOUT), timeoutMs)
  const onClientAbort = () => ac.abort(CLIENT_CLOSED)
  if (clientSignal.aborted) onClientAbort()
  else clientSignal.addEventListener('abort', onClientAbort, { once: true })
  let cleaned = false
  const cleanup = () => {
    if (cleaned) return
    cleaned = true
    clearTimeout(timer)
    clientSignal.removeEventListener('abort', onClientAbort)
  }

  let res: Dispatcher.ResponseData
  try {
    res = await undiciRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', ...headers },
      body: JSON.stringify(body),
      dispatcher,
      signal: ac.signal,
    })
  } catch (err) {
    cleanup()
    throw transportError(err, ac.signal, target)
  }

  if (res.statusCode >= 400) {
    let text = ''
    try {
      text = await res.body.text()
    } catch {
      // the status alone still maps to an error
    } finally {
      cleanup()
    }
    throw adapter.error(res.statusCode, parseLenient(text), res.headers)
  }

  if (!stream) {
    try {
      const json = await res.body.json()
      // A 200 whose body is JSON but not an object (a bare string, an array) is no OpenAI response either; passed
      // through, Koa would send it to the client as a text/plain 200.
      if (json === null || typeof json !== 'object' || Array.isArray(json)) {
        throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a body that is not a JSON object`, { provider: target.provider })
      }
      const out = opAdapter.response(json, meta)
      return { kind: 'json', body: out, usage: (out as { usage?: Usage }).usage ?? null }
    } catch (err) {
      if (err instanceof GatewayError) throw err
      if (ac.signal.aborted) throw transportError(err, ac.signal, target)
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a body that is not valid JSON`, { cause: err, provider: target.provider })
    } finally {
      cleanup()
    }
  }

  if (!opAdapter.stream) {
    cleanup()
    res.body.destroy()
    throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION', `${adapter.name} cannot stream ${op}`, { param: 'stream' })
  }
  const translator = opAdapter.stream(request, meta)
  try {
    return { kind: 'stream', chunks: await prime(translateSse(res.body, translator, ac.signal, cleanup, target)) }
  } finally {
    // Headers and the first event arrived in time; from here only the client or the idle body timeout ends it.
    clearTimeout(timer)
  }
}

async function* translateSse<C extends { usage?: Usage | null; id?: string; model?: string; created?: number; object?: string }>(
  body: Readable, tr: StreamTranslator<C>, signal: AbortSignal, cleanup: () => void, target: Target,
): AsyncGenerator<C> {
  const parser = new SseParser()
  let usageSeen = false
  let last: C | undefined
  try {
    for await (const bytes of body) {
      for (const ev of parser.push(bytes as Buffer)) {
        for (const c of tr.event(ev)) {
          if (c.usage) usageSeen = true
          last = c
          yield c
        }
      }
    }
    for (const ev of parser.end()) {
      for (const c of tr.event(ev)) {
        if (c.usage) usageSeen = true
        yield (last = c)
      }
    }
    const tail = tr.end()
    for (const c of tail.chunks) {
      if (c.usage) usageSeen = true
      yield (last = c)
    }
    if (tail.usage && !usageSeen && last) {
      yield { id: last.id, object: last.object, created: last.created, model: last.model, choices: [], usage: tail.usage } as unknown as C
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err
    throw transportError(err, signal, target)
  } finally {
    cleanup()
    if (!body.destroyed) body.destroy()
  }
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

async function* mapIterable<A, B>(src: AsyncIterable<A>, fn: (a: A) => B): AsyncGenerator<B> {
  for await (const a of src) yield fn(a)
}

function parseLenient(text: string): unknown {
  if (!text) return null
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function transportError(err: unknown, signal: AbortSignal, target: Target): GatewayError {
  if (signal.aborted && signal.reason === TIMEOUT) {
    return gatewayError('GW_ERR_UPSTREAM_TIMEOUT', `Request to ${target.provider} timed out (model ${target.model})`, { provider: target.provider, cause: err })
  }
  if (signal.aborted && signal.reason === CLIENT_CLOSED) {
    return gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request', { provider: target.provider, cause: err })
  }
  const code = (err as { code?: string } | null)?.code
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return gatewayError('GW_ERR_UPSTREAM_TIMEOUT', `Request to ${target.provider} timed out (${code})`, { provider: target.provider, cause: err })
  }
  const detail = (err as Error | null)?.message ?? String(err)
  return gatewayError('GW_ERR_UPSTREAM_CONNECTION', `Connection error to ${target.provider}: ${detail}`, { provider: target.provider, cause: err })
}
