/**
 * A native call (state.native): the client's own format sent to a provider that speaks it (an Anthropic deployment
 * answering /v1/messages), and the reply handed back as the provider sent it. Same timeouts, abort and error mapping
 * as a translated call (dispatch.ts); no param map, no translation.
 *
 * A stream is primed past its opening events: Anthropic sends `message_start` (and pings) before any content and
 * may follow them with an `error` event (an overloaded model), which must fail the attempt, as a translated stream's
 * does, so retry and fallback can act on it.
 */
import type { Dispatcher } from 'undici'
import type { Readable } from 'node:stream'
import { gatewayError, GatewayError } from '../errors.js'
import { SseParser } from '../sse.js'
import type { NativeRequest } from '../state.js'
import type { NativeFormat, ProviderAdapter, ProviderResult, SseEvent, Target } from '../../providers/types.js'
import { parseLenient, postUpstream, prime, transportError } from './dispatch.js'

export async function callNative(
  adapter: ProviderAdapter, format: NativeFormat, native: NativeRequest, target: Target, stream: boolean,
  signal: AbortSignal, dispatcher: Dispatcher,
): Promise<ProviderResult> {
  const payload = JSON.stringify(format.body(native.body, target, stream))
  let prepared = format.request(target, stream, native.headers, 'messages')
  if (adapter.authorize) prepared = await adapter.authorize(prepared, payload, target)
  const headers = { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', ...prepared.headers }
  const res = await postUpstream(dispatcher, adapter, target, prepared.url, headers, payload, stream, signal)
  const type = String(res.headers['content-type'] ?? '')
  if (!stream || type.startsWith('application/json')) {
    let json: unknown
    try {
      json = JSON.parse(await res.body.text())
    } catch (err) {
      if (signal.aborted || (err as { code?: string }).code) throw transportError(err, signal, target)
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a body that is not valid JSON`, { cause: err, provider: target.provider })
    }
    const body = json as Record<string, unknown> | null
    if (!body || typeof body !== 'object' || !Array.isArray(body.content)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a message without a \`content\` list`, { provider: target.provider })
    }
    if (stream) throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} answered a stream request with one JSON body`, { provider: target.provider })
    return { kind: 'native', format: native.format, body, usage: format.usage(body) }
  }
  return { kind: 'native-stream', format: native.format, events: await prime(nativeEvents(res.body, format, signal, target)) }
}

/** Opening events held back until the first one with content, so an early `error` event fails the attempt. */
const OPENING = new Set(['message_start', 'ping'])

async function* nativeEvents(body: Readable, format: NativeFormat, signal: AbortSignal, target: Target): AsyncGenerator<SseEvent> {
  const parser = new SseParser()
  let held: SseEvent[] | null = []
  try {
    for await (const bytes of body) {
      for (const ev of parser.push(bytes as Buffer)) {
        if (held) {
          if (ev.event === 'error') throw streamError(format, ev)
          if (ev.event !== undefined && OPENING.has(ev.event)) {
            held.push(ev)
            continue
          }
          const opening = held
          held = null
          yield* opening
        }
        yield ev
      }
    }
    for (const ev of parser.end()) {
      if (held && ev.event === 'error') throw streamError(format, ev)
      yield ev
    }
    if (held) yield* held
  } catch (err) {
    if (err instanceof GatewayError) throw err
    throw transportError(err, signal, target)
  } finally {
    if (!body.destroyed) body.destroy()
  }
}

/** An `error` event before any content: mapped as an HTTP error of its type would be. */
function streamError(format: NativeFormat, ev: SseEvent): GatewayError {
  return format.eventError(parseLenient(ev.data))
}
