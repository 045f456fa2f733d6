/**
 * Cohere error bodies -> the gateway's error table. Cohere answers every error as `{"message": "...", "id"?}` with
 * the HTTP status carrying the class (https://docs.cohere.com/reference/errors); the few classes a status cannot
 * say (context window, safety) are read off the message. The message is Cohere's own words; a body that is not
 * JSON (a proxy's HTML page) is never shown, only its status.
 */
import { STATUS_CODES } from 'node:http'
import { codeForUpstreamStatus, gatewayError, type ErrorCode, type GatewayError, parseRetryAfter } from '../../core/errors.js'

type Headers = Record<string, string | string[] | undefined>

/**
 * "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292", "too many tokens:
 * size limit exceeded by 11326 tokens", "multi-hop prompt is too long even after truncation": the prompt does not
 * fit (LiteLLM maps the same text to ContextWindowExceededError).
 */
const CONTEXT_WINDOW_TEXT = /too many tokens|prompt is too long|context (?:length|window)/i
/** ...except "too many tokens: max tokens must be less than or equal to 4096": a bad max_tokens, a plain 400. */
const MAX_TOKENS_TEXT = /max[ _]tokens must/i
/** A request or reply blocked by Cohere's usage guidelines or its deny-list. */
const CONTENT_POLICY_TEXT = /blocked (?:input|output|request|prompt)|usage (?:policy|guidelines)|deny-?listed/i


/** The code for a Cohere status and message. */
function codeFor(status: number, message: string | null): ErrorCode {
  // 498 "a request or response contains a deny-listed token" (earlier docs: "Unsafe Request ... blocked due to
  // potential violations of the Usage Guidelines"): a content-policy refusal, not an auth failure.
  if (status === 498) return 'GW_ERR_CONTENT_POLICY'
  // 499 "request cancelled": Cohere's docs say to try again, so it is a retryable transport-like failure. (Our own
  // cancellation never reaches here: an aborted call has no response to read.)
  if (status === 499) return 'GW_ERR_UPSTREAM_CONNECTION'
  if (message !== null && status >= 400 && status < 500) {
    if (CONTENT_POLICY_TEXT.test(message)) return 'GW_ERR_CONTENT_POLICY'
    if ((status === 400 || status === 413 || status === 422) && CONTEXT_WINDOW_TEXT.test(message) && !MAX_TOKENS_TEXT.test(message)) {
      return 'GW_ERR_CONTEXT_WINDOW'
    }
  }
  return codeForUpstreamStatus(status)
}

/** The `message` of a Cohere error body, or null when the body has none (or is not JSON). */
function messageOf(body: unknown): string | null {
  if (typeof body === 'string' || body === null || typeof body !== 'object') return null
  const m = (body as { message?: unknown }).message
  if (typeof m === 'string' && m !== '') return m
  // Some fronting proxies wrap it OpenAI-style: {"error": {"message": ...}} or {"error": "..."}.
  const e = (body as { error?: unknown }).error
  if (typeof e === 'string' && e !== '') return e
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message
  return null
}

export function cohereError(provider: string, status: number, body: unknown, headers: Headers): GatewayError {
  const message = messageOf(body)
  const code = codeFor(status, message)
  const reason = STATUS_CODES[status]
  const text = message ?? `${provider} returned HTTP ${status}${reason ? ` ${reason}` : ''}${typeof body === 'string' ? ' (non-JSON body)' : ''}`
  return gatewayError(code, text, {
    provider,
    upstreamStatus: status,
    retryAfter: parseRetryAfter(headers['retry-after']),
  })
}

/**
 * An error reported inside a 200 stream (`message-end` with finish_reason ERROR / TIMEOUT and `delta.error`, or an
 * error object in place of an event): mapped as the same text would be in an HTTP error, the status chosen from
 * what the event says (a timeout, else a server error).
 */
export function streamError(provider: string, finish: string, message: string | null): GatewayError {
  const text = message ?? `${provider} ended the generation with finish_reason ${finish}`
  if (finish === 'TIMEOUT') return gatewayError('GW_ERR_UPSTREAM_TIMEOUT', text, { provider })
  if (CONTENT_POLICY_TEXT.test(text)) return gatewayError('GW_ERR_CONTENT_POLICY', text, { provider })
  if (CONTEXT_WINDOW_TEXT.test(text) && !MAX_TOKENS_TEXT.test(text)) return gatewayError('GW_ERR_CONTEXT_WINDOW', text, { provider })
  return gatewayError('GW_ERR_UPSTREAM_SERVER', text, { provider, upstreamStatus: 500 })
}
