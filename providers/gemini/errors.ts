/**
 * Gemini / Vertex AI errors -> the gateway's error table. Google answers `{"error": {"code", "message", "status",
 * "details"}}` (Vertex's non-SSE stream wraps it in a one-element array), with `status` a google.rpc code name:
 * INVALID_ARGUMENT / FAILED_PRECONDITION 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
 * RESOURCE_EXHAUSTED 429, INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504
 * (https://ai.google.dev/gemini-api/docs/troubleshooting). Refinements, as LiteLLM's exception mapping makes them:
 * a 400 about the token limit is a context-window error, an invalid API key (which Gemini sends as a 400) is an
 * auth error, and a 429 keeps its wait (the `retry-after` header, else the RetryInfo detail's `retryDelay`); and a
 * 400 from a safety filter (SAFETY_TEXT) is a content-policy error.
 * A body that is not Google's JSON (an HTML page from a proxy) is never shown: the message is built from the status.
 */
import { STATUS_CODES } from 'node:http'
import { codeForUpstreamStatus, gatewayError, type ErrorCode, type GatewayError, parseRetryAfter } from '../../core/errors.js'

type Headers = Record<string, string | string[] | undefined>

/** Gemini's words for a prompt over the model's input limit ("The input token count (N) exceeds the maximum number of tokens allowed (M)"). */
const CONTEXT_WINDOW_TEXT = /exceeds the maximum number of tokens|too many tokens|context (window|length)/i

/**
 * Google's words when a safety filter refuses a prompt or its output with a 400, Imagen's in particular ("Image
 * generation failed with the following error: The response is blocked, as it may violate our policies", "This prompt
 * contains words that violate Vertex AI's usage guidelines", "... violate Google's Responsible AI practices"): a
 * content-policy error, as OpenAI reports its own refused prompts.
 */
const SAFETY_TEXT = /violate our policies|usage guidelines|Responsible AI practices|prohibited one or more words|sensitive words/i

/** HTTP status for a google.rpc status name, for errors that arrive inside a 200 stream. */
const RPC_STATUS: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400, FAILED_PRECONDITION: 400, OUT_OF_RANGE: 400, UNAUTHENTICATED: 401, PERMISSION_DENIED: 403,
  NOT_FOUND: 404, ALREADY_EXISTS: 409, ABORTED: 409, RESOURCE_EXHAUSTED: 429, CANCELLED: 499, INTERNAL: 500,
  UNKNOWN: 500, DATA_LOSS: 500, UNIMPLEMENTED: 501, UNAVAILABLE: 503, DEADLINE_EXCEEDED: 504,
}

interface GoogleError {
  code?: unknown
  message?: unknown
  status?: unknown
  details?: unknown
}

/** The `error` object of a Google error body, or null when the body is not one. */
export function googleErrorOf(body: unknown): GoogleError | null {
  const b = Array.isArray(body) ? body[0] : body
  if (!b || typeof b !== 'object') return null
  const e = (b as { error?: unknown }).error
  return e && typeof e === 'object' && !Array.isArray(e) ? (e as GoogleError) : null
}

/**
 * Map a Gemini / Vertex error. `status` is the HTTP status; 0 for an error event inside a 200 stream, where the
 * body's own code (or status name) decides.
 */
export function geminiError(provider: string, status: number, body: unknown, headers: Headers): GatewayError {
  const e = googleErrorOf(body)
  const rpc = typeof e?.status === 'string' ? e.status : undefined
  const http = status >= 400 ? status : typeof e?.code === 'number' && e.code >= 400 ? e.code : (rpc && RPC_STATUS[rpc]) || 500
  const retryAfter = parseRetryAfter(headers['retry-after']) ?? retryDelay(e?.details)
  if (!e || typeof e.message !== 'string') {
    const reason = STATUS_CODES[http]
    return gatewayError(codeForUpstreamStatus(http), `${provider} returned HTTP ${http}${reason ? ` ${reason}` : ''}${typeof body === 'string' ? ' (non-JSON body)' : ''}`,
      { provider, upstreamStatus: http, retryAfter })
  }
  const message = e.message
  let code: ErrorCode = codeForUpstreamStatus(http)
  if (http === 400 && (hasReason(e.details, 'API_KEY_INVALID') || message.includes('API key not valid'))) code = 'GW_ERR_UPSTREAM_AUTH'
  else if ((http === 400 || http === 413) && CONTEXT_WINDOW_TEXT.test(message)) code = 'GW_ERR_CONTEXT_WINDOW'
  else if (http === 400 && SAFETY_TEXT.test(message)) code = 'GW_ERR_CONTENT_POLICY'
  return gatewayError(code, message, { provider, upstreamStatus: http, retryAfter })
}

/** `details[].reason` (google.rpc.ErrorInfo), e.g. API_KEY_INVALID. */
function hasReason(details: unknown, reason: string): boolean {
  if (!Array.isArray(details)) return false
  for (const d of details) if (d && typeof d === 'object' && (d as { reason?: unknown }).reason === reason) return true
  return false
}


/** google.rpc.RetryInfo `retryDelay` ("17s", "0.5s") -> whole seconds, rounded up. */
function retryDelay(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined
  for (const d of details) {
    const delay = d && typeof d === 'object' ? (d as { retryDelay?: unknown }).retryDelay : undefined
    if (typeof delay === 'string' && delay.endsWith('s')) {
      const s = Number(delay.slice(0, -1))
      if (Number.isFinite(s) && s >= 0) return Math.ceil(s)
    }
  }
  return undefined
}
