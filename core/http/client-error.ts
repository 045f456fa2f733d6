/**
 * What the HTTP server answers to requests that never reach Koa: malformed HTTP, oversized headers, and clients that
 * take too long to send a request. Node answers those with a bare status line and an empty body (or not at all);
 * here they get the OpenAI error body like every other refusal, then the socket is closed.
 *
 *   const server = http.createServer(app.callback())
 *   installClientErrorHandler(server, { requestTimeoutMs: config.settings.request_timeout * 1000 })  // before listen()
 */
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { gatewayError, toErrorBody, type GatewayError } from '../errors.js'
import { anthropicErrorBody } from '../formats/anthropic-reply.js'

export interface ClientErrorOptions {
  /**
   * Longest a client may take to send a whole request (headers and body), ms; past it the request is answered 408
   * and the connection closed. Only the request is timed: Node stops the clock once the body has arrived, so a
   * long response (an SSE stream) is never cut by it. 0 = no limit (a stalled client holds its socket forever).
   */
  requestTimeoutMs?: number
}

/** Node's own header wait (server.headersTimeout's default), ms: kept when the request timeout is longer. */
const HEADERS_TIMEOUT_MS = 60_000
/** How often Node looks for expired requests, ms: its 30 s default would let a 2 s timeout run 32 s. */
const CHECK_INTERVAL_MAX_MS = 30_000
const CHECK_INTERVAL_MIN_MS = 250

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }

/** Codes that mean the client went away: there is nobody to answer. */
const GONE: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'HPE_INVALID_EOF_STATE', 'ERR_STREAM_DESTROYED'])

/** The error a `clientError` stands for, or null when nothing should be written. */
export function clientErrorFor(err: Error & { code?: string }): GatewayError | null {
  const code = err.code ?? ''
  if (GONE.has(code)) return null
  if (code === 'HPE_HEADER_OVERFLOW') {
    return gatewayError('GW_ERR_HEADERS_TOO_LARGE', 'Request header fields too large: send smaller headers (the server limit is 16 KiB in all, URL included).')
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return gatewayError('GW_ERR_REQUEST_TIMEOUT', 'The request was not received in time: its headers or body stalled.')
  }
  return gatewayError('GW_ERR_BAD_HTTP', `Malformed HTTP request (${code || 'parse error'}).`)
}

/** Paths of the Anthropic Messages API (core/http/messages.ts), whose errors take Anthropic's shape. */
const ANTHROPIC_PATH = /^\/(v1\/)?messages(\/|\?|$)/

/** The `clientError` listener: the error body when the socket can still take one, then close. */
export function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  const e = clientErrorFor(err)
  // A response already under way on this socket (Node's own handler checks the same): raw bytes would corrupt it.
  const res = (socket as Duplex & { _httpMessage?: { headersSent?: boolean; req?: { url?: string } } })._httpMessage
  if (!e || !socket.writable || res?.headersSent) {
    socket.destroy()
    return
  }
  // A request whose body stalled was already routed: a Messages client gets its own error shape.
  const url = res?.req?.url
  const body = JSON.stringify(url !== undefined && ANTHROPIC_PATH.test(url) ? anthropicErrorBody(e) : toErrorBody(e))
  socket.end(`HTTP/1.1 ${e.status} ${REASONS[e.status] ?? 'Bad Request'}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

/** Answer client errors in the OpenAI shape and bound the time a client may take to send its request. */
export function installClientErrorHandler(server: Server, options: ClientErrorOptions = {}): void {
  const timeout = options.requestTimeoutMs ?? 0
  server.requestTimeout = timeout
  // Node requires headersTimeout <= requestTimeout, and with a longer header wait it ignores the request timeout.
  server.headersTimeout = timeout > 0 ? Math.min(HEADERS_TIMEOUT_MS, timeout) : HEADERS_TIMEOUT_MS
  if (timeout > 0) {
    // Read when the server starts listening (Node's connection checker is created then), so set before listen().
    ;(server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
      Math.min(CHECK_INTERVAL_MAX_MS, Math.max(CHECK_INTERVAL_MIN_MS, Math.floor(timeout / 4)))
  }
  server.on('clientError', onClientError)
}
