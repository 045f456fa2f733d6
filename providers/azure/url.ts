/**
 * Where an Azure call goes, as LiteLLM builds it.
 *
 * Azure OpenAI (`azure/<deployment>`), https://learn.microsoft.com/azure/ai-foundry/openai/reference:
 *   {api_base}/openai/deployments/{deployment}/chat/completions?api-version={version}
 * (and /completions, /embeddings, /images/generations, /audio/transcriptions, /audio/speech)
 * with the version from `api_version`, else AZURE_API_VERSION, else LiteLLM's default. An api_base that already
 * holds `/openai/deployments/` is a full base URL (LiteLLM's select_azure_base_url_or_endpoint): only the operation's
 * path is added. The versions "v1", "latest" and "preview" select the v1 API
 * (https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle), as LiteLLM's
 * `_is_azure_v1_api_version` does: `{api_base}/openai/v1/chat/completions`, the deployment named by the body's
 * `model`, and no dated api-version (only "preview" is sent on, as `?api-version=preview`).
 *
 * Azure AI Foundry / serverless (`azure_ai/<model>`), LiteLLM's AzureAIStudioConfig.get_complete_url: a
 * `*.services.ai.azure.com` host serves the models endpoint `{api_base}/models/chat/completions`, every other host
 * (serverless `*.inference.ai.azure.com`, a proxy) `{api_base}/chat/completions`; an api_base that already ends with
 * the path is used as is; `api-version` is added only when the deployment sets `api_version`.
 *
 * URLs are computed once per deployment and operation (targets are built once and never change), so the request
 * path does no string work.
 */
import { gatewayError } from '../../core/errors.js'
import type { Operation, Target } from '../types.js'

/** LiteLLM's AZURE_DEFAULT_API_VERSION (litellm/__init__.py), used when neither the entry nor the env names one. */
export const AZURE_DEFAULT_API_VERSION = '2025-02-01-preview'

/** api_version values that mean the v1 API rather than a dated version. */
const V1_VERSIONS: ReadonlySet<string> = new Set(['v1', 'latest', 'preview'])

/** Path per operation under a deployment (or the v1 base). Azure has no moderations endpoint; the entry is unused. */
const OP_PATHS: Record<Operation, string> = {
  chat: '/chat/completions', completions: '/completions', embeddings: '/embeddings', images: '/images/generations',
  transcription: '/audio/transcriptions', speech: '/audio/speech', moderations: '/moderations',
}
const OP_PATH_LIST = Object.values(OP_PATHS)

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** The deployment's api-version: litellm_params.api_version, else AZURE_API_VERSION (Target.params), else the default. */
export function azureApiVersion(target: Target): string {
  return target.apiVersion ?? str(target.params?.api_version) ?? AZURE_DEFAULT_API_VERSION
}

export function isV1ApiVersion(version: string): boolean {
  return V1_VERSIONS.has(version)
}

interface Base {
  path: string
  /** Query string without '?', '' when none. */
  query: string
}

function splitBase(provider: string, target: Target, envName: string): Base {
  const raw = target.apiBase
  if (!raw) {
    throw gatewayError('GW_ERR_UPSTREAM_CONNECTION',
      `No api_base configured for ${provider} model ${target.model}; set litellm_params.api_base or ${envName}`, { provider })
  }
  const q = raw.indexOf('?')
  let path = q === -1 ? raw : raw.slice(0, q)
  while (path.endsWith('/')) path = path.slice(0, -1)
  return { path, query: q === -1 ? '' : raw.slice(q + 1) }
}

/** `query` plus `api-version=version`, unless the api_base already carries one (it wins, as in LiteLLM). */
function withVersion(query: string, version: string | undefined): string {
  if (version === undefined || query.startsWith('api-version=') || query.includes('&api-version=')) return query
  const v = `api-version=${encodeURIComponent(version)}`
  return query ? `${query}&${v}` : v
}

function join(path: string, query: string): string {
  return query ? `${path}?${query}` : path
}

type UrlCache = WeakMap<Target, Partial<Record<Operation, string>>>

function cached(cache: UrlCache, target: Target, op: Operation, build: (op: Operation, target: Target) => string): string {
  let perOp = cache.get(target)
  if (!perOp) cache.set(target, (perOp = {}))
  return (perOp[op] ??= build(op, target))
}

const azureUrls: UrlCache = new WeakMap()

export function azureUrl(op: Operation, target: Target): string {
  return cached(azureUrls, target, op, buildAzureUrl)
}

function buildAzureUrl(op: Operation, target: Target): string {
  const { path, query } = splitBase('azure', target, 'AZURE_API_BASE')
  const version = azureApiVersion(target)
  if (isV1ApiVersion(version)) {
    const v1 = path.includes('/openai/v1') ? path : path.endsWith('/openai') ? `${path}/v1` : `${path}/openai/v1`
    // `preview` opts the v1 API into preview features (`?api-version=preview` in Microsoft's REST examples); the
    // GA surface ("v1", "latest") takes no api-version.
    return join(v1 + OP_PATHS[op], withVersion(query, version === 'preview' ? 'preview' : undefined))
  }
  const prefix = path.includes('/openai/deployments/')
    ? path
    : `${path}${path.endsWith('/openai') ? '' : '/openai'}/deployments/${encodeURIComponent(target.model)}`
  return join(prefix + OP_PATHS[op], withVersion(query, version))
}

/** Azure AI Foundry resources (`<name>.services.ai.azure.com`) serve the models endpoint under `/models`. */
function isFoundryHost(host: string): boolean {
  return host.endsWith('services.ai.azure.com')
}

/**
 * Hosts that take the key in `api-key` (LiteLLM's _should_use_api_key_header); every other Azure AI endpoint
 * (serverless, managed online endpoints) takes `Authorization: Bearer`.
 */
export function azureAIUsesApiKeyHeader(target: Target): boolean {
  let v = apiKeyHeader.get(target)
  if (v === undefined) {
    const host = hostOf(target.apiBase)
    apiKeyHeader.set(target, (v = host.endsWith('.services.ai.azure.com') || host.endsWith('.openai.azure.com')))
  }
  return v
}

const apiKeyHeader = new WeakMap<Target, boolean>()

function hostOf(url: string | undefined): string {
  if (!url) return ''
  try {
    return new URL(url).hostname
  } catch {
    return ''
  }
}

const azureAIUrls: UrlCache = new WeakMap()

export function azureAIUrl(op: Operation, target: Target): string {
  return cached(azureAIUrls, target, op, buildAzureAIUrl)
}

function buildAzureAIUrl(op: Operation, target: Target): string {
  let { path, query } = splitBase('azure_ai', target, 'AZURE_AI_API_BASE')
  // An api_base copied from the portal may end with an operation's path (`.../models/chat/completions`): the
  // deployment's base is what comes before it, so embeddings on the same entry still find their path.
  for (const p of OP_PATH_LIST) {
    if (path.endsWith(p)) {
      path = path.slice(0, -p.length)
      break
    }
  }
  if (isFoundryHost(hostOf(target.apiBase)) && !path.endsWith('/models')) path += '/models'
  return join(path + OP_PATHS[op], withVersion(query, target.apiVersion))
}
