/**
 * Ollama error replies -> the gateway's error table. Ollama answers `{"error": "<text>"}` (openapi.yaml
 * ErrorResponse) with the status; the text is all there is to tell a missing model or a too-long prompt from other
 * failures, so those two are read from it. A body that is not JSON (a proxy's HTML page) is never shown.
 */
import { STATUS_CODES } from 'node:http'
import { codeForUpstreamStatus, gatewayError, type ErrorCode, type GatewayError } from '../../core/errors.js'
import { parseRetryAfter } from '../openai/index.js'

/**
 * Ollama's context-length wordings: "input length exceeds the context length" (/api/embed with truncate: false),
 * "prompt too long; exceeded max context length by N tokens", "exceeds maximum context length".
 */
const CONTEXT_TEXT = /context length|context window|prompt too long|too many tokens/i
/** "model 'llama9' not found", "model \"x\" not found, try pulling it first". */
const MODEL_NOT_FOUND = /model .*not found/i
/** Longest upstream message kept, characters. */
const MAX_MESSAGE = 500

function messageOf(body: unknown): string | null {
  if (!body || typeof body !== 'object') return null
  const e = (body as { error?: unknown }).error
  if (typeof e === 'string' && e) return e
  // Ollama's cloud and some proxies in front of it answer OpenAI-shaped errors.
  const inner = e && typeof e === 'object' ? (e as { message?: unknown }).message : undefined
  return typeof inner === 'string' && inner ? inner : null
}

export function ollamaError(
  provider: string, status: number, body: unknown, headers: Record<string, string | string[] | undefined>,
): GatewayError {
  const retryAfter = parseRetryAfter(headers['retry-after'])
  const text = messageOf(body)
  if (text === null) {
    const reason = STATUS_CODES[status]
    const note = typeof body === 'string' && body ? ' (non-JSON body)' : ''
    return gatewayError(codeForUpstreamStatus(status), `${provider} returned HTTP ${status}${reason ? ` ${reason}` : ''}${note}`, {
      provider, upstreamStatus: status, retryAfter,
    })
  }
  const message = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}...` : text
  let code: ErrorCode = codeForUpstreamStatus(status)
  let openaiCode: string | undefined
  // Ollama reports an over-long prompt as a 400, or as a 500 from the runner: either way the client's input.
  if ((status === 400 || status === 413 || status === 500) && CONTEXT_TEXT.test(message)) code = 'GW_ERR_CONTEXT_WINDOW'
  else if (status === 404 && MODEL_NOT_FOUND.test(message)) openaiCode = 'model_not_found'
  return gatewayError(code, message, { provider, upstreamStatus: status, retryAfter, ...(openaiCode ? { openaiCode } : {}) })
}
