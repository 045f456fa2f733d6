/**
 * Azure error bodies are OpenAI's (`{"error": {"message", "type", "param", "code"}}`), mapped by openAIError, with
 * three Azure additions:
 *
 * - content filtering: a 400 whose `code` is `content_filter` (prompt filtered), or whose `innererror.code` is
 *   `ResponsibleAIPolicyViolation` (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter),
 *   or the images API's `contentFilter`, is a content-policy violation, as LiteLLM raises ContentPolicyViolationError;
 * - throttling: Azure sends `retry-after-ms` beside (sometimes instead of) `retry-after`; the wait is kept either way;
 * - API Management's own replies (`{"statusCode": 401, "message": "..."}`) keep their message; openAIError reads a
 *   body without an `error` member as the error itself.
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'
import { openAIError } from '../openai/index.js'

type Headers = Record<string, string | string[] | undefined>

const CONTENT_FILTER_CODES: ReadonlySet<string> = new Set(['content_filter', 'contentFilter', 'content_policy_violation'])

function first(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h
}

/** Whether an error body is Azure's content filter speaking. */
export function isContentFilterError(body: unknown): boolean {
  const e = body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined
  if (!e || typeof e !== 'object') return false
  const { code, innererror } = e as { code?: unknown; innererror?: { code?: unknown } | null }
  if (typeof code === 'string' && CONTENT_FILTER_CODES.has(code)) return true
  return !!innererror && typeof innererror === 'object' && innererror.code === 'ResponsibleAIPolicyViolation'
}

export function azureError(provider: string, status: number, body: unknown, headers: Headers): GatewayError {
  let h = headers
  if (first(headers['retry-after']) === undefined) {
    const ms = Number(first(headers['retry-after-ms']))
    if (Number.isFinite(ms) && ms >= 0) h = { ...headers, 'retry-after': String(Math.ceil(ms / 1000)) }
  }
  const err = openAIError(provider, status, body, h)
  if (err.code === 'GW_ERR_CONTENT_POLICY' || status >= 500 || !isContentFilterError(body)) return err
  return gatewayError('GW_ERR_CONTENT_POLICY', err.message, {
    param: err.param, openaiCode: err.openaiCode, provider, upstreamStatus: status, retryAfter: err.retryAfter,
  })
}
