/**
 * The Vertex AI adapter (LiteLLM's `vertex_ai/<model>`): Gemini models through the Gemini translation
 * (providers/gemini, the declared base), Claude models through the Anthropic one (claude.ts), text embeddings
 * through `:predict` (embeddings.ts), image generation through `:predict` (Imagen) or `:generateContent` (Gemini
 * image models) with the Gemini adapter's translation (providers/gemini/images.ts), all on
 * `{location}-aiplatform.googleapis.com` (url.ts) with an OAuth token made from Google credentials (credentials.ts,
 * token.ts), added in authorize().
 *
 * Settings, as LiteLLM reads them (litellm_params first, then the environment):
 * - project: `vertex_project` | `vertex_ai_project` | VERTEXAI_PROJECT, else the credentials' own project_id;
 * - location: `vertex_location` | `vertex_ai_location` | VERTEXAI_LOCATION, default us-central1;
 * - credentials: `vertex_credentials` | `vertex_ai_credentials` | VERTEXAI_CREDENTIALS | GOOGLE_APPLICATION_CREDENTIALS
 *   (service-account JSON or authorized_user JSON, as a JSON string or a file path);
 * - api_base: `api_base` | VERTEXAI_API_BASE replaces the host (see url.ts).
 * With no credentials but an `api_key`, the key is sent as the bearer token (an access token fetched elsewhere, or
 * a proxy's key). Metadata-server credentials (code running on GCP without a key file) are not supported.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import { geminiChat, googleImages, imageMethod } from '../gemini/index.js'
import type { OperationAdapter, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { vertexChat, isClaude } from './chat.js'
import { vertexClaudeChat, vertexError } from './claude.js'
import { authError, loadCredentials, type GoogleCredentials } from './credentials.js'
import { vertexEmbeddings } from './embeddings.js'
import { TokenSource, type TokenSourceDeps } from './token.js'
import { DEFAULT_LOCATION, vertexUrl, type VertexPlace } from './url.js'

export { TokenSource } from './token.js'
export { loadCredentials } from './credentials.js'

export interface VertexOptions extends TokenSourceDeps {
  /** Provider name: 'vertex_ai' (also 'vertex_ai_beta', LiteLLM's older name for the same API). */
  name?: string
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** The credentials a deployment names, if any: the litellm_params value (object or string) or an env-filled path. */
function credentialsOf(t: Target): unknown {
  const p = t.params ?? {}
  const v = p.vertex_ai_credentials ?? p.vertex_credentials
  return v === null || v === '' ? undefined : v
}

export function createVertexAdapter(o: VertexOptions = {}): ProviderAdapter {
  const name = o.name ?? 'vertex_ai'
  const tokens = new TokenSource(name, o)
  const creds = (t: Target): GoogleCredentials | undefined => {
    const raw = credentialsOf(t)
    return raw === undefined ? undefined : loadCredentials(raw, name)
  }
  const place = (t: Target): VertexPlace => {
    const p = t.params ?? {}
    const project = str(p.vertex_ai_project) ?? str(p.vertex_project) ?? creds(t)?.projectId
    if (!project) {
      throw gatewayError('GW_ERR_UPSTREAM_CONNECTION',
        `No Vertex AI project for model ${t.modelName}: set litellm_params.vertex_project or VERTEXAI_PROJECT`, { provider: name })
    }
    return { project, location: str(p.vertex_ai_location) ?? str(p.vertex_location) ?? DEFAULT_LOCATION, apiBase: t.apiBase }
  }
  const chat: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> = vertexChat(geminiChat(name), vertexClaudeChat)

  return {
    name,
    operations: new Set(['chat', 'embeddings', 'images']),
    env: {
      apiBase: ['VERTEXAI_API_BASE'],
      params: {
        vertex_project: ['VERTEXAI_PROJECT'],
        vertex_location: ['VERTEXAI_LOCATION'],
        vertex_credentials: ['VERTEXAI_CREDENTIALS', 'GOOGLE_APPLICATION_CREDENTIALS'],
      },
    },
    request(op, target, stream): ProviderRequest {
      const where = place(target)
      let url: string
      if (op === 'embeddings') url = vertexUrl(where, 'google', target.model, 'predict')
      else if (op === 'images') url = vertexUrl(where, 'google', target.model, imageMethod(target.model))
      else if (isClaude(target.model)) url = vertexUrl(where, 'anthropic', target.model, stream ? 'streamRawPredict' : 'rawPredict')
      else url = stream ? `${vertexUrl(where, 'google', target.model, 'streamGenerateContent')}?alt=sse` : vertexUrl(where, 'google', target.model, 'generateContent')
      const headers: Record<string, string> = {}
      for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
      return { url, headers }
    },
    async authorize(req, _body, target) {
      const c = creds(target)
      let token: string
      if (c) token = await tokens.token(c)
      else if (target.apiKey) token = target.apiKey
      else throw authError(name, `no credentials for model ${target.modelName}: set litellm_params.vertex_credentials, VERTEXAI_CREDENTIALS or GOOGLE_APPLICATION_CREDENTIALS`)
      return { url: req.url, headers: { ...req.headers, authorization: `Bearer ${token}` } }
    },
    chat,
    embeddings: vertexEmbeddings,
    images: googleImages(name),
    error: (status, body, headers) => vertexError(name, status, body, headers),
  }
}

export const vertex_ai = createVertexAdapter()
/** LiteLLM's `vertex_ai_beta/` prefix: the same API. */
export const vertex_ai_beta = createVertexAdapter({ name: 'vertex_ai_beta' })
