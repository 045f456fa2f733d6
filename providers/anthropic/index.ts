/**
 * The Anthropic adapter (LiteLLM's `anthropic/` provider): OpenAI chat over the Messages API,
 * POST {api_base}/v1/messages with `x-api-key` and `anthropic-version`. Anthropic has no embeddings API; legacy
 * /v1/completions reaches it through the core's chat translation.
 *
 * Credentials as LiteLLM reads them: `api_key` or ANTHROPIC_API_KEY; `api_base` or ANTHROPIC_API_BASE /
 * ANTHROPIC_BASE_URL, default https://api.anthropic.com. An `anthropic-beta` header is sent only when the
 * deployment's extra_headers set one: nothing this mapping produces needs a beta feature.
 *
 * Exports for reuse: the Vertex AI adapter serves Claude through `anthropicChat` and `anthropicError`.
 * API reference: https://docs.anthropic.com/en/api/messages
 */
import type { NativeFormat, Operation, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { anthropicError, statusForErrorType } from './errors.js'
import { anthropicChat } from './chat.js'
import { toUsage } from './response.js'

export { anthropicChat } from './chat.js'
export { anthropicError } from './errors.js'

export const ANTHROPIC_BASE_URL = 'https://api.anthropic.com'
/** The API version every request names (the only stable one; features beyond it come as anthropic-beta). */
export const ANTHROPIC_VERSION = '2023-06-01'
const MESSAGES_PATH = '/v1/messages'

/** {api_base}/v1/messages; an api_base that already ends in /v1/messages is used as is (LiteLLM's rule). */
function messagesUrl(base: string): string {
  const b = base.endsWith('/') ? base.slice(0, -1) : base
  return b.endsWith(MESSAGES_PATH) ? b : b + MESSAGES_PATH
}

function messagesRequest(target: Target): ProviderRequest {
  const headers: Record<string, string> = { 'anthropic-version': ANTHROPIC_VERSION }
  if (target.apiKey) headers['x-api-key'] = target.apiKey
  for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
  return { url: messagesUrl(target.apiBase ?? ANTHROPIC_BASE_URL), headers }
}

/**
 * Deployment defaults (litellm_params) a Messages body takes under the same name; OpenAI-only names
 * (max_completion_tokens, stop) have no place in a native body.
 */
const NATIVE_DEFAULTS = ['max_tokens', 'temperature', 'top_p', 'top_k', 'stop_sequences', 'thinking'] as const

/**
 * /v1/messages served natively: the client's body with the deployment's model, the client's `anthropic-beta`
 * features added to the deployment's own. `metadata` goes up with `user_id` only: the rest of it is LiteLLM's
 * (tags, trace ids) and the API refuses unknown metadata fields.
 */
export const anthropicNative: NativeFormat = {
  request(target, _stream, clientHeaders, action) {
    const r = messagesRequest(target)
    const beta = clientHeaders['anthropic-beta']
    if (beta) r.headers['anthropic-beta'] = r.headers['anthropic-beta'] ? `${r.headers['anthropic-beta']},${beta}` : beta
    if (action === 'count_tokens') r.url += '/count_tokens'
    return r
  },
  body(client, target, stream) {
    const out: Record<string, unknown> = {}
    for (const k of NATIVE_DEFAULTS) if (target.defaults[k] !== undefined && client[k] === undefined) out[k] = target.defaults[k]
    Object.assign(out, client)
    out.model = target.model
    if (stream) out.stream = true
    else delete out.stream
    const meta = client.metadata as Record<string, unknown> | null | undefined
    if (meta && typeof meta === 'object') {
      if (typeof meta.user_id === 'string') out.metadata = { user_id: meta.user_id }
      else delete out.metadata
    }
    return out
  },
  usage(reply) {
    const u = (reply as { usage?: unknown } | null)?.usage
    return u && typeof u === 'object' ? toUsage(u, '') : null
  },
  eventError(data) {
    const type = (data as { error?: { type?: unknown } } | null)?.error?.type
    return anthropicError('anthropic', statusForErrorType(type), data, {})
  },
}

export const anthropic: ProviderAdapter = {
  name: 'anthropic',
  operations: new Set<Operation>(['chat']),
  env: { apiKey: ['ANTHROPIC_API_KEY'], apiBase: ['ANTHROPIC_API_BASE', 'ANTHROPIC_BASE_URL'] },
  request(_op: Operation, target: Target): ProviderRequest {
    return messagesRequest(target)
  },
  chat: anthropicChat,
  native: { anthropic: anthropicNative },
  error: (status, body, headers) => anthropicError('anthropic', status, body, headers),
}
