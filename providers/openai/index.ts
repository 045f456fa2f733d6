/**
 * The OpenAI adapter: the identity translation, and the base every OpenAI-compatible host composes
 * (openai-compatible.ts) as Azure will. Request bodies pass through with the deployment's model id; responses and
 * stream chunks are already in the target format.
 *
 * Streaming always asks upstream for usage (`stream_options.include_usage`) so cost tracking is exact; the core
 * forwards the usage chunk to the client only when the client asked for it.
 * API reference: https://platform.openai.com/docs/api-reference/chat/create
 *
 * Media operations (images, transcription, speech, moderations) are identities too: images and moderations are
 * JSON both ways (and pass through unparsed); a transcription goes up as the same multipart form the client sent
 * (file bytes, name and type unchanged) and comes back as JSON, or as plain text for text/srt/vtt; speech comes
 * back as audio bytes, streamed. https://platform.openai.com/docs/api-reference/images,
 * https://platform.openai.com/docs/api-reference/audio, https://platform.openai.com/docs/api-reference/moderations
 */
import { STATUS_CODES } from 'node:http'
import { codeForUpstreamStatus, gatewayError, parseRetryAfter, type ErrorCode, type GatewayError } from '../../core/errors.js'

export { parseRetryAfter }
import type {
  ChatChunk, ChatCompletion, EmbeddingResponse, ImagesResponse, ModerationResponse, SpeechRequest, TextCompletion,
  TranscriptionRequest, TranscriptionResponse, Usage,
} from '../../core/openai/types.js'
import type { Operation, ParamMap, ParamRule, ProviderAdapter, ProviderRequest, SseEvent, StreamTranslator, Target } from '../types.js'

export interface OpenAIFamilyOptions {
  name: string
  /** Default API base; `api_base` on the deployment wins. Omit where the host has no public default (vLLM). */
  baseUrl?: string
  /** How the key is sent: `Authorization: Bearer` (most hosts), `api-key` (Azure), or not at all. */
  auth?: 'bearer' | 'api-key' | 'none'
  /** Chat params this host rejects: dropped with drop_params, else a 400 (LiteLLM's UnsupportedParamsError). */
  unsupported?: readonly string[]
  /** Whether the host understands stream_options.include_usage (most do). */
  streamUsage?: boolean
  operations?: readonly Operation[]
  /** Environment variables read for the key and base when the deployment gives none (LiteLLM's names). */
  env?: { apiKey?: readonly string[]; apiBase?: readonly string[] }
}

/** Hosts that do not send OpenAI's `context_length_exceeded` code still say so in the message. */
const CONTEXT_WINDOW_TEXT = /maximum context length|context window|context length|too many tokens/i

const PATHS: Record<Operation, string> = {
  chat: '/chat/completions', completions: '/completions', embeddings: '/embeddings', images: '/images/generations',
  transcription: '/audio/transcriptions', speech: '/audio/speech', moderations: '/moderations',
}

/** Every operation the OpenAI API serves. */
export const ALL_OPERATIONS: readonly Operation[] = ['chat', 'completions', 'embeddings', 'images', 'transcription', 'speech', 'moderations']

/** Content type of speech audio per `response_format`, for an upstream reply that names none. */
const SPEECH_TYPES: Readonly<Record<string, string>> = {
  mp3: 'audio/mpeg', opus: 'audio/ogg', aac: 'audio/aac', flac: 'audio/flac', wav: 'audio/wav', pcm: 'audio/pcm',
}

function modelRule(): ParamRule<Record<string, unknown>> {
  return { to: 'model', map: (_v, _r, t) => t.model, default: (_r: unknown, t: Target) => t.model }
}


/**
 * Map an OpenAI-shaped error body ({error:{message,type,code,param}}) and status to a GatewayError. A body that is
 * not JSON (an HTML 503 page, a load balancer's plain-text 502; dispatch hands it over as a string) is never
 * shown to the client: the message is built from the status instead, and the status mapping still applies.
 */
export function openAIError(provider: string, status: number, body: unknown, headers: Record<string, string | string[] | undefined>): GatewayError {
  if (typeof body === 'string') return statusOnlyError(provider, status, headers, ' (non-JSON body)')
  const e = (body && typeof body === 'object' && 'error' in body ? (body as { error: unknown }).error : body) as
    | { message?: unknown; code?: unknown; param?: unknown; type?: unknown }
    | string
    | null
  let message: string
  let upstreamCode: string | null = null
  let param: string | null = null
  if (e && typeof e === 'object') {
    message = typeof e.message === 'string' ? e.message : JSON.stringify(e)
    upstreamCode = typeof e.code === 'string' ? e.code : null
    param = typeof e.param === 'string' ? e.param : null
  } else if (typeof e === 'string' && e) {
    // `{"error": "..."}`: JSON, so the host's own words.
    message = e.length > 500 ? `${e.slice(0, 500)}...` : e
  } else {
    return statusOnlyError(provider, status, headers, '')
  }
  let code: ErrorCode = codeForUpstreamStatus(status)
  if (upstreamCode === 'context_length_exceeded' || CONTEXT_WINDOW_TEXT.test(message)) {
    if (status === 400 || status === 413) code = 'GW_ERR_CONTEXT_WINDOW'
  } else if (upstreamCode === 'content_policy_violation' || upstreamCode === 'content_filter') {
    code = 'GW_ERR_CONTENT_POLICY'
  }
  return gatewayError(code, message, {
    param,
    openaiCode: upstreamCode,
    provider,
    upstreamStatus: status,
    retryAfter: parseRetryAfter(headers['retry-after']),
  })
}

/** "openai returned HTTP 503 Service Unavailable (non-JSON body)", with the status's usual mapping. */
function statusOnlyError(provider: string, status: number, headers: Record<string, string | string[] | undefined>, note: string): GatewayError {
  const reason = STATUS_CODES[status]
  return gatewayError(codeForUpstreamStatus(status), `${provider} returned HTTP ${status}${reason ? ` ${reason}` : ''}${note}`, {
    provider,
    upstreamStatus: status,
    retryAfter: parseRetryAfter(headers['retry-after']),
  })
}

class OpenAIStream<C extends { usage?: Usage | null }> implements StreamTranslator<C> {
  private usage: Usage | null = null
  constructor(private readonly provider: string) {}
  event(e: SseEvent): C[] {
    if (e.data === '[DONE]' || e.data === '') return []
    let chunk: C & { error?: unknown }
    try {
      chunk = JSON.parse(e.data)
    } catch {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not JSON`, { provider: this.provider })
    }
    if (chunk === null || typeof chunk !== 'object' || Array.isArray(chunk)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${this.provider} sent a stream event that is not a JSON object`, { provider: this.provider })
    }
    if (chunk.error !== undefined) throw openAIError(this.provider, 500, chunk, {})
    if (chunk.usage) this.usage = chunk.usage
    return [chunk]
  }
  end(): { chunks: C[]; usage: Usage | null } {
    return { chunks: [], usage: this.usage }
  }
}

export function createOpenAIAdapter(o: OpenAIFamilyOptions): ProviderAdapter {
  const auth = o.auth ?? 'bearer'
  const streamUsage = o.streamUsage ?? true
  const chatParams: ParamMap<Record<string, unknown>> = { model: modelRule() }
  for (const p of o.unsupported ?? []) chatParams[p] = 'unsupported'
  const ops = new Set<Operation>(o.operations ?? ['chat', 'completions', 'embeddings'])

  const adapter: ProviderAdapter = {
    name: o.name,
    operations: ops,
    env: o.env,
    request(op: Operation, target: Target): ProviderRequest {
      const base = target.apiBase ?? o.baseUrl
      if (!base) {
        throw gatewayError('GW_ERR_UPSTREAM_CONNECTION', `No api_base configured for ${o.name} model ${target.model}; set litellm_params.api_base`)
      }
      const headers: Record<string, string> = {}
      if (target.apiKey && auth === 'bearer') headers.authorization = `Bearer ${target.apiKey}`
      else if (target.apiKey && auth === 'api-key') headers['api-key'] = target.apiKey
      if (target.organization) headers['openai-organization'] = target.organization
      for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
      return { url: (base.endsWith('/') ? base.slice(0, -1) : base) + PATHS[op], headers }
    },
    chat: {
      params: chatParams as ParamMap<any>,
      finish(body, _req, _target, stream) {
        if (stream && streamUsage) {
          body.stream_options = { ...(body.stream_options as object | undefined), include_usage: true }
        }
        return body
      },
      response: (body) => body as ChatCompletion,
      stream: () => new OpenAIStream<ChatChunk>(o.name),
      passthrough: true,
    },
    completions: {
      params: { model: modelRule() } as ParamMap<any>,
      finish(body, _req, _target, stream) {
        if (stream && streamUsage) body.stream_options = { ...(body.stream_options as object | undefined), include_usage: true }
        return body
      },
      response: (body) => body as TextCompletion,
      stream: () => new OpenAIStream<TextCompletion>(o.name),
      passthrough: true,
    },
    embeddings: {
      params: { model: modelRule() } as ParamMap<any>,
      response: (body) => body as EmbeddingResponse,
      passthrough: true,
    },
    images: {
      params: { model: modelRule() } as ParamMap<any>,
      response: (body) => body as ImagesResponse,
      // b64_json images are megabytes of text: sent on as received, never parsed (usage is read off the text).
      passthrough: true,
    },
    transcription: {
      params: { model: modelRule() } as ParamMap<any>,
      encoding: 'multipart',
      reply: 'auto',
      contentType: (req: TranscriptionRequest) => (req.response_format === 'vtt' ? 'text/vtt; charset=utf-8' : 'text/plain; charset=utf-8'),
      response: (body) => body as TranscriptionResponse,
    },
    speech: {
      params: { model: modelRule() } as ParamMap<any>,
      reply: 'binary',
      contentType: (req: SpeechRequest) => SPEECH_TYPES[req.response_format ?? 'mp3'] ?? 'application/octet-stream',
      // Never called: the reply is audio ('binary').
      response: () => {
        throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${o.name} answered a speech request with JSON instead of audio`, { provider: o.name })
      },
    },
    moderations: {
      params: { model: modelRule() } as ParamMap<any>,
      response: (body) => body as ModerationResponse,
      passthrough: true,
    },
    error: (status, body, headers) => openAIError(o.name, status, body, headers),
  }
  return adapter
}

export const openai = createOpenAIAdapter({
  name: 'openai',
  baseUrl: 'https://api.openai.com/v1',
  operations: ALL_OPERATIONS,
  env: { apiKey: ['OPENAI_API_KEY'], apiBase: ['OPENAI_BASE_URL', 'OPENAI_API_BASE'] },
})
