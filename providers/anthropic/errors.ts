/**
 * Anthropic error bodies (`{"type":"error","error":{"type","message"},"request_id"}`) -> the gateway's error table.
 *
 * The HTTP status picks the code (codeForUpstreamStatus); the error type and message refine it the way LiteLLM's
 * exception mapping does for Anthropic: "prompt is too long" (and the max_tokens "exceed context limit" variant)
 * -> context window, "content filtering policy" -> content policy, `overloaded_error` (HTTP 529) -> 503
 * ServiceUnavailable. A mid-stream `error` event has no status of its own: statusForErrorType gives the one its
 * type is documented with. The provider's message is kept; a key-shaped string in it is masked.
 *
 * Error reference: https://docs.anthropic.com/en/api/errors
 */
import { STATUS_CODES } from 'node:http'
import { codeForUpstreamStatus, gatewayError, type ErrorCode, type GatewayError, parseRetryAfter } from '../../core/errors.js'

/** Error type -> the HTTP status Anthropic documents for it. */
const TYPE_STATUS: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
}

export function statusForErrorType(type: unknown): number {
  return (typeof type === 'string' && TYPE_STATUS[type]) || 500
}

/** Anthropic's context-window refusals: "prompt is too long: 210000 tokens > 200000 maximum", "input length and `max_tokens` exceed context limit", "prompt: length ...". */
const CONTEXT_WINDOW = /prompt is too long|exceed context limit|prompt: length|context window/i
const CONTENT_POLICY = /content filtering policy|content policy/i
/** Anthropic key shapes (sk-ant-api03-..., sk-ant-admin01-...): never echoed back. */
const KEY_SHAPE = /sk-ant-[A-Za-z0-9_-]+/g
const MAX_MESSAGE = 2_000 // characters, LiteLLM's MAX_EXCEPTION_MESSAGE_LENGTH


function clean(message: string): string {
  const m = message.replace(KEY_SHAPE, 'sk-ant-***')
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE)}...` : m
}

export function anthropicError(
  provider: string, status: number, body: unknown, headers: Record<string, string | string[] | undefined>,
): GatewayError {
  const opts = { provider, upstreamStatus: status, retryAfter: parseRetryAfter(headers['retry-after']) }
  const err = body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined
  const e = err && typeof err === 'object' ? (err as { type?: unknown; message?: unknown }) : null
  if (!e || typeof e.message !== 'string') {
    // Not Anthropic's error shape (an HTML page from a proxy, an empty body): never shown; the status speaks.
    const reason = STATUS_CODES[status]
    return gatewayError(codeForUpstreamStatus(status), `${provider} returned HTTP ${status}${reason ? ` ${reason}` : ''}`, opts)
  }
  const type = typeof e.type === 'string' ? e.type : ''
  const message = clean(e.message)
  let code: ErrorCode = codeForUpstreamStatus(status)
  if (type === 'overloaded_error') code = 'GW_ERR_UPSTREAM_UNAVAILABLE'
  else if (status === 400 || status === 413 || type === 'invalid_request_error') {
    if (CONTEXT_WINDOW.test(message)) code = 'GW_ERR_CONTEXT_WINDOW'
    else if (CONTENT_POLICY.test(message)) code = 'GW_ERR_CONTENT_POLICY'
  }
  return gatewayError(code, message, opts)
}
