/**
 * Mistral error replies -> the gateway's error table. Mistral answers in several shapes:
 * - 422 request validation (openapi.json HTTPValidationError): `{"detail": [{"loc": [...], "msg", "type"}]}`;
 * - `{"object": "error", "message": "...", "type": "...", "param": null, "code": ...}` for most 4xx/5xx, where
 *   `message` may itself be an object (a nested `detail` list);
 * - `{"message": "Unauthorized", "request_id": "..."}` from its edge (401, 429);
 * - OpenAI's `{"error": {...}}` from proxies in front of it, handled by the OpenAI mapper.
 * The context-window error is a 400 whose message says "... too large for model with N maximum context length".
 * A validation entry's `input` (which would echo the request) is never copied into the message.
 */
import { codeForUpstreamStatus, gatewayError, type ErrorCode, type GatewayError } from '../../core/errors.js'
import { openAIError, parseRetryAfter } from '../openai/index.js'

const PROVIDER = 'mistral'
const CONTEXT_TEXT = /context length|context window|too large for model|too many tokens/i
/** Longest upstream message kept, characters. */
const MAX_MESSAGE = 500

type Obj = Record<string, unknown>

/** `[{loc: ['body', 'messages', 0, 'role'], msg: 'Input should be ...'}]` -> "body.messages.0.role: Input should be ...". */
function details(list: unknown[]): string {
  const parts: string[] = []
  for (const d of list) {
    if (!d || typeof d !== 'object') continue
    const { loc, msg } = d as Obj
    const where = Array.isArray(loc) ? loc.join('.') : ''
    if (typeof msg === 'string') parts.push(where ? `${where}: ${msg}` : msg)
  }
  return parts.join('; ')
}

function messageOf(b: Obj): string {
  if (Array.isArray(b.detail)) return details(b.detail)
  if (typeof b.detail === 'string') return b.detail
  const m = b.message
  if (typeof m === 'string') return m
  if (m && typeof m === 'object') {
    const inner = m as Obj
    if (Array.isArray(inner.detail)) return details(inner.detail)
    if (typeof inner.message === 'string') return inner.message
  }
  return ''
}

export function mistralError(status: number, body: unknown, headers: Record<string, string | string[] | undefined>): GatewayError {
  if (!body || typeof body !== 'object' || (body as Obj).error !== undefined) return openAIError(PROVIDER, status, body, headers)
  const b = body as Obj
  const text = messageOf(b)
  if (!text) return openAIError(PROVIDER, status, null, headers) // status-only message
  const message = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}...` : text
  let code: ErrorCode = codeForUpstreamStatus(status)
  const upstreamCode = typeof b.code === 'string' ? b.code : null
  if ((status === 400 || status === 413 || status === 422) && (upstreamCode === 'context_length_exceeded' || CONTEXT_TEXT.test(message))) {
    code = 'GW_ERR_CONTEXT_WINDOW'
  }
  return gatewayError(code, message, {
    provider: PROVIDER,
    upstreamStatus: status,
    retryAfter: parseRetryAfter(headers['retry-after']),
    param: typeof b.param === 'string' ? b.param : null,
    ...(upstreamCode && code !== 'GW_ERR_CONTEXT_WINDOW' ? { openaiCode: upstreamCode } : {}),
  })
}
