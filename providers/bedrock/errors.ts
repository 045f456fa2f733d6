/**
 * Bedrock errors -> the gateway's error table. The exception name comes from the `x-amzn-errortype` header
 * (`ValidationException:http://internal.amazon.com/coral/...`), the body's `__type` (`...#ValidationException`) or,
 * in a stream, the frame's `:exception-type` (`throttlingException`); the message from the body's `message`.
 * Statuses follow the Bedrock Runtime model (botocore service-2.json `error.httpStatusCode`) and LiteLLM's mapping;
 * a name not listed falls back to the HTTP status.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html
 */
import { STATUS_CODES } from 'node:http'
import { codeForUpstreamStatus, gatewayError, type ErrorCode, type GatewayError, parseRetryAfter } from '../../core/errors.js'

const PROVIDER = 'bedrock'

/** Exception name (lower case) -> code. Signature and token problems are the caller's credentials: 401. */
const EXCEPTIONS: Readonly<Record<string, ErrorCode>> = {
  validationexception: 'GW_ERR_UPSTREAM_BAD_REQUEST',
  accessdeniedexception: 'GW_ERR_UPSTREAM_FORBIDDEN',
  unrecognizedclientexception: 'GW_ERR_UPSTREAM_AUTH',
  invalidsignatureexception: 'GW_ERR_UPSTREAM_AUTH',
  incompletesignatureexception: 'GW_ERR_UPSTREAM_AUTH',
  missingauthenticationtokenexception: 'GW_ERR_UPSTREAM_AUTH',
  expiredtokenexception: 'GW_ERR_UPSTREAM_AUTH',
  invalidclienttokenid: 'GW_ERR_UPSTREAM_AUTH',
  resourcenotfoundexception: 'GW_ERR_UPSTREAM_NOT_FOUND',
  throttlingexception: 'GW_ERR_UPSTREAM_RATE_LIMIT',
  servicequotaexceededexception: 'GW_ERR_UPSTREAM_RATE_LIMIT',
  // HTTP 429 in the API model; LiteLLM maps by status, so a RateLimitError that retry and fallback act on.
  modelnotreadyexception: 'GW_ERR_UPSTREAM_RATE_LIMIT',
  modeltimeoutexception: 'GW_ERR_UPSTREAM_TIMEOUT',
  serviceunavailableexception: 'GW_ERR_UPSTREAM_UNAVAILABLE',
  internalserverexception: 'GW_ERR_UPSTREAM_SERVER',
  // 424 in the API model: the model failed while answering, which another attempt may not repeat.
  modelerrorexception: 'GW_ERR_UPSTREAM_SERVER',
  modelstreamerrorexception: 'GW_ERR_UPSTREAM_SERVER',
}

/** Statuses of the names above, for stream frames (which carry no HTTP status). */
const STREAM_STATUS: Readonly<Record<string, number>> = {
  validationexception: 400, throttlingexception: 429, modelstreamerrorexception: 424,
  internalserverexception: 500, serviceunavailableexception: 503,
}

/** Validation messages that mean the prompt did not fit (LiteLLM's context-window strings for Bedrock). */
const CONTEXT_WINDOW = /too long|too many (?:input )?tokens|context (?:window|length)|maximum context|maxLength/i
/** Refusals by Bedrock's or the model's content filter. */
const CONTENT_POLICY = /content filtering policy|blocked by .*(?:filter|guardrail)|guardrail intervened/i
/** Whether a Bedrock message is a content-filter refusal (image replies carry one in a 200 too: images-response.ts). */
export function isContentRefusal(message: string): boolean {
  return CONTENT_POLICY.test(message)
}

/**
 * A signature mismatch message goes on to print the canonical request and string to sign, which carry the session
 * token header: cut there, the first paragraph says what went wrong.
 */
const SIGNATURE_DETAIL = /\s*The (?:Canonical String for this request|String-to-Sign should)/

/** `ValidationException:http://...` / `com.amazon.coral.validate#ValidationException` -> `validationexception`. */
export function exceptionName(raw: unknown): string {
  if (typeof raw !== 'string' || !raw) return ''
  let s = raw
  const colon = s.indexOf(':')
  if (colon >= 0) s = s.slice(0, colon)
  const hash = s.lastIndexOf('#')
  if (hash >= 0) s = s.slice(hash + 1)
  return s.trim().toLowerCase()
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

function retryAfter(h: Record<string, string | string[] | undefined>): number | undefined {
  return parseRetryAfter(header(h, 'retry-after'))
}

function build(name: string, status: number, message: string, retry: number | undefined): GatewayError {
  let code: ErrorCode = EXCEPTIONS[name] ?? codeForUpstreamStatus(status)
  if (code === 'GW_ERR_UPSTREAM_BAD_REQUEST' && CONTEXT_WINDOW.test(message)) code = 'GW_ERR_CONTEXT_WINDOW'
  else if (status < 500 && CONTENT_POLICY.test(message)) code = 'GW_ERR_CONTENT_POLICY'
  const cut = SIGNATURE_DETAIL.exec(message)
  const text = cut ? message.slice(0, cut.index).trim() : message
  return gatewayError(code, text, { provider: PROVIDER, upstreamStatus: status, ...(retry === undefined ? {} : { retryAfter: retry }) })
}

/** A non-2xx HTTP answer. */
export function bedrockError(status: number, body: unknown, headers: Record<string, string | string[] | undefined>): GatewayError {
  const b = body && typeof body === 'object' ? (body as Record<string, unknown>) : null
  const name = exceptionName(header(headers, 'x-amzn-errortype')) || exceptionName(b?.__type) || exceptionName(b?.code)
  const raw = b ? (b.message ?? b.Message) : null
  const reason = STATUS_CODES[status]
  // A body that is not JSON (a proxy's HTML page) is never shown; the exception name and status still map.
  const message = typeof raw === 'string' && raw
    ? raw
    : `bedrock returned HTTP ${status}${reason ? ` ${reason}` : ''}${name ? ` (${name})` : ''}`
  return build(name, status, message, retryAfter(headers))
}

/** An exception frame inside a ConverseStream body (`:message-type: exception`). */
export function streamException(type: string, payload: string): GatewayError {
  const name = exceptionName(type)
  let message = ''
  try {
    const m = (JSON.parse(payload) as { message?: unknown }).message
    if (typeof m === 'string') message = m
  } catch {
    // the type alone still maps
  }
  const status = STREAM_STATUS[name] ?? 500
  return build(name, status, message || `bedrock stream failed: ${type}`, undefined)
}
