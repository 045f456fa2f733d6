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
import type { Operation, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { anthropicError } from './errors.js'
import { anthropicChat } from './chat.js'

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

export const anthropic: ProviderAdapter = {
  name: 'anthropic',
  operations: new Set<Operation>(['chat']),
  env: { apiKey: ['ANTHROPIC_API_KEY'], apiBase: ['ANTHROPIC_API_BASE', 'ANTHROPIC_BASE_URL'] },
  request(_op: Operation, target: Target): ProviderRequest {
    const headers: Record<string, string> = { 'anthropic-version': ANTHROPIC_VERSION }
    if (target.apiKey) headers['x-api-key'] = target.apiKey
    for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
    return { url: messagesUrl(target.apiBase ?? ANTHROPIC_BASE_URL), headers }
  },
  chat: anthropicChat,
  error: (status, body, headers) => anthropicError('anthropic', status, body, headers),
}
