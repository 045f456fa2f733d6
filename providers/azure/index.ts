/**
 * Azure OpenAI (`azure/<deployment>`) and Azure AI Foundry / serverless models (`azure_ai/<model>`): OpenAI's
 * bodies, responses and streams (Envoy's Azure translator embeds its OpenAI one the same way), so both compose the
 * OpenAI adapter and replace only where the call goes (url.ts), how it is authenticated (an `api-key` header, a
 * Bearer key, or an Entra ID token: entra.ts), the few param rules Azure needs (params.ts) and the error reading
 * (errors.ts).
 *
 * Azure's extra response fields (`prompt_filter_results`, per-choice `content_filter_results`) and its extra stream
 * events (a first event with empty `choices` carrying the prompt's filter results, filter annotations without a
 * `delta`) are OpenAI-shaped and pass through unchanged, as the official clients expect them; `finish_reason:
 * "content_filter"` is already OpenAI's.
 *
 * Credentials, as LiteLLM reads them: `api_key`, else AZURE_OPENAI_API_KEY / AZURE_API_KEY (azure) or
 * AZURE_AI_API_KEY (azure_ai); without a key, `azure_ad_token` / AZURE_AD_TOKEN as a Bearer token, else the client
 * credentials `tenant_id`, `client_id`, `client_secret` (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET).
 */
import { createOpenAIAdapter } from '../openai/index.js'
import type { Operation, ParamMap, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { azureError } from './errors.js'
import { clientCredentials, EntraTokens, staticToken, type ClientCredentials, type EntraDeps } from './entra.js'
import { flattenMessagesRule, toolChoiceRule } from './params.js'
import { azureAIUrl, azureAIUsesApiKeyHeader, azureUrl } from './url.js'

export { AZURE_DEFAULT_API_VERSION, azureApiVersion, azureUrl, azureAIUrl } from './url.js'
export { EntraTokens, clientCredentials, type EntraDeps, type ClientCredentials } from './entra.js'
export { azureError, isContentFilterError } from './errors.js'

/**
 * Entra ID settings read from the environment when litellm_params leaves them out (Target.params), LiteLLM's and
 * azure-identity's names.
 */
const ENTRA_ENV: Readonly<Record<string, readonly string[]>> = {
  azure_ad_token: ['AZURE_AD_TOKEN'],
  tenant_id: ['AZURE_TENANT_ID'],
  client_id: ['AZURE_CLIENT_ID'],
  client_secret: ['AZURE_CLIENT_SECRET'],
  azure_scope: ['AZURE_SCOPE'],
  azure_authority_host: ['AZURE_AUTHORITY_HOST'],
}

type KeyHeader = 'api-key' | 'bearer'

function headersFor(target: Target, keyHeader: KeyHeader): Record<string, string> {
  const headers: Record<string, string> = {}
  if (target.apiKey) {
    if (keyHeader === 'api-key') headers['api-key'] = target.apiKey
    else headers.authorization = `Bearer ${target.apiKey}`
  } else {
    const token = staticToken(target.params)
    if (token) headers.authorization = `Bearer ${token}`
  }
  for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
  return headers
}

/** Client credentials per deployment, read once (null: the deployment has none). */
const credentialsOf = new WeakMap<Target, ClientCredentials | null>()

function credentials(target: Target): ClientCredentials | null {
  let c = credentialsOf.get(target)
  if (c === undefined) credentialsOf.set(target, (c = clientCredentials(target.params)))
  return c
}

/**
 * authorize(): a call that already carries a key or token (or an `authorization` in extra_headers) goes as it is;
 * otherwise a deployment with client credentials gets an Entra token, from the cache when it is fresh.
 */
function entraAuthorize(tokens: EntraTokens) {
  return function authorize(req: ProviderRequest, _body: string, target: Target): ProviderRequest | Promise<ProviderRequest> {
    if (req.headers['api-key'] !== undefined || req.headers.authorization !== undefined) return req
    const c = credentials(target)
    if (c === null) return req
    const t = tokens.token(c)
    return typeof t === 'string' ? withBearer(req, t) : t.then((token) => withBearer(req, token))
  }
}

function withBearer(req: ProviderRequest, token: string): ProviderRequest {
  return { url: req.url, headers: { ...req.headers, authorization: `Bearer ${token}` } }
}

interface Variant {
  name: string
  operations: readonly Operation[]
  env: { apiKey: readonly string[]; apiBase: readonly string[]; params: Readonly<Record<string, readonly string[]>> }
  url(op: Operation, target: Target): string
  keyHeader(target: Target): KeyHeader
  /** Chat rules added to the OpenAI map. */
  chatRules: ParamMap<Record<string, unknown>>
}

function createAzureFamily(v: Variant, deps: EntraDeps): ProviderAdapter {
  const base = createOpenAIAdapter({ name: v.name, operations: v.operations })
  const tokens = new EntraTokens(v.name, deps)
  const chat = base.chat!
  return {
    ...base,
    env: v.env,
    request: (op, target) => ({ url: v.url(op, target), headers: headersFor(target, v.keyHeader(target)) }),
    authorize: entraAuthorize(tokens),
    chat: { ...chat, params: { ...chat.params, ...v.chatRules } as ParamMap<any> },
    error: (status, body, headers) => azureError(v.name, status, body, headers),
  }
}

/**
 * Azure OpenAI. Images (DALL-E, gpt-image), Whisper transcriptions and TTS speech are deployments too, on the same
 * URL scheme; Azure has no moderations endpoint. `deps` injects the clock and HTTP client of the Entra token cache.
 */
export function createAzureAdapter(deps: EntraDeps = {}): ProviderAdapter {
  return createAzureFamily({
    name: 'azure',
    operations: ['chat', 'completions', 'embeddings', 'images', 'transcription', 'speech'],
    // `api_version` lands in Target.params only from AZURE_API_VERSION: the entry's own is Target.apiVersion.
    env: {
      apiKey: ['AZURE_OPENAI_API_KEY', 'AZURE_API_KEY'],
      apiBase: ['AZURE_API_BASE'],
      params: { api_version: ['AZURE_API_VERSION'], ...ENTRA_ENV },
    },
    url: azureUrl,
    keyHeader: () => 'api-key',
    chatRules: { tool_choice: toolChoiceRule },
  }, deps)
}

/**
 * Azure AI Foundry models and serverless endpoints. No `/completions` (legacy text completions are served through
 * chat by the core).
 */
export function createAzureAIAdapter(deps: EntraDeps = {}): ProviderAdapter {
  return createAzureFamily({
    name: 'azure_ai',
    operations: ['chat', 'embeddings'],
    env: { apiKey: ['AZURE_AI_API_KEY'], apiBase: ['AZURE_AI_API_BASE'], params: ENTRA_ENV },
    url: azureAIUrl,
    keyHeader: (target) => (azureAIUsesApiKeyHeader(target) ? 'api-key' : 'bearer'),
    chatRules: { messages: flattenMessagesRule },
  }, deps)
}

export const azure: ProviderAdapter = createAzureAdapter()
export const azure_ai: ProviderAdapter = createAzureAIAdapter()
