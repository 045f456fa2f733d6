/**
 * The provider contract. A provider adapter translates the OpenAI format to one provider's wire format and back:
 * request (URL, headers, body via a declarative ParamMap), response, stream and error. Adapters are data first
 * (a ParamMap a reviewer can read as a spec) and code second (small transform functions).
 */
import type { GatewayError } from '../core/errors.js'
import type {
  ChatChunk, ChatCompletion, ChatRequest, CompletionRequest, EmbeddingRequest, EmbeddingResponse, ImageGenerationRequest,
  ImagesResponse, ModerationRequest, ModerationResponse, Operation, SpeechAudio, SpeechRequest, TextCompletion,
  TranscriptionRequest, TranscriptionResponse, Usage,
} from '../core/openai/types.js'

export type { Operation }

/**
 * One resolved deployment: a public model name served by one provider model at one endpoint. Built once at boot
 * from a `model_list` entry (or per call by the SDK); never mutated.
 */
export interface Target {
  /** Deployment id: `model_info.id` or a stable generated one. */
  readonly id: string
  /** The public model name clients ask for (`model_name`). */
  readonly modelName: string
  /** Adapter name: 'openai', 'groq', 'mock', ... */
  readonly provider: string
  /** Model id sent upstream (the part after `provider/`). */
  readonly model: string
  readonly apiBase?: string | undefined
  readonly apiKey?: string | undefined
  readonly apiVersion?: string | undefined
  readonly organization?: string | undefined
  /** Non-streaming calls: longest wait for the response headers, and between two body chunks; milliseconds. */
  readonly timeoutMs: number
  /** Streams: longest wait for the response headers, and between two chunks; milliseconds. */
  readonly streamTimeoutMs: number
  readonly maxRetries?: number | undefined
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
  /** Calls this deployment takes at once (litellm_params.max_parallel_requests): the priority queue's capacity. */
  readonly maxParallelRequests?: number | undefined
  readonly weight: number
  readonly order?: number | undefined
  readonly inputCostPerToken?: number | undefined
  readonly outputCostPerToken?: number | undefined
  /** Canned reply (LiteLLM `mock_response`): the call never leaves the process. */
  readonly mockResponse?: string | undefined
  /** Drop params the provider does not support instead of failing with 400 (LiteLLM `drop_params`). */
  readonly dropParams: boolean
  /** Params always removed before the call (LiteLLM `additional_drop_params`). */
  readonly additionalDropParams: readonly string[]
  readonly extraHeaders: Readonly<Record<string, string>>
  /** Request params set on the deployment (e.g. temperature); the client's own values win. */
  readonly defaults: Readonly<Record<string, unknown>>
  /** LiteLLM `model_info`, passed through as given. */
  readonly modelInfo: Readonly<Record<string, unknown>>
  /**
   * Provider settings from `litellm_params` that have no field above (`aws_region_name`, `vertex_project`,
   * `vertex_credentials`, `azure_ad_token`, ...), `os.environ/` references resolved, with the adapter's
   * `env.params` variables filling what the entry leaves out. Secrets live here: never log or echo a Target.
   */
  readonly params?: Readonly<Record<string, unknown>> | undefined
}

export interface ParamRule<Req> {
  /** Dotted path in the provider body: 'generationConfig.temperature'. */
  to: string
  required?: boolean
  default?: unknown | ((req: Req, target: Target) => unknown)
  /** Out of range -> 400 GW_ERR_PARAM_RANGE, never a silent clamp. */
  range?: readonly [min: number, max: number]
  map?: (value: unknown, req: Req, target: Target) => unknown
}

/**
 * Per request field: a rule (or several), 'drop' (always removed silently), or 'unsupported' (removed when the
 * deployment has drop_params, otherwise a 400 naming the param, as LiteLLM does).
 */
export type ParamMap<Req> = { [K in keyof Req]?: ParamRule<Req> | ParamRule<Req>[] | 'drop' | 'unsupported' } & {
  [k: string]: ParamRule<Req> | ParamRule<Req>[] | 'drop' | 'unsupported' | undefined
}

export interface ParamPolicy {
  /** Fields not named in the map: 'pass' (OpenAI family) sends them on; 'unsupported' treats them as unsupported. */
  unknown: 'pass' | 'unsupported'
}

export interface ResponseMeta {
  target: Target
  requestId: string
  /** Unix seconds at request start, for `created` when the provider gives none. */
  created: number
  /**
   * The OpenAI-format request this reply answers, for a provider whose reply leaves out what the request said
   * (Gemini's batchEmbedContents has no token counts: they are estimated from the input).
   */
  request?: Readonly<Record<string, unknown>> | undefined
}

/** One instance per streamed request (Envoy's per-request translator): it may keep state between events. */
export interface StreamTranslator<Chunk = ChatChunk> {
  event(e: SseEvent): Chunk[]
  end(): { chunks: Chunk[]; usage: Usage | null }
}

export interface SseEvent {
  event: string | undefined
  data: string
  id?: string | undefined
}

/**
 * Splits an upstream stream body into events. SSE is the default (core/sse.ts SseParser); a provider with another
 * framing (NDJSON, AWS event stream) supplies its own, yielding events whose `data` is one JSON document.
 */
export interface EventDecoder {
  push(bytes: Uint8Array): SseEvent[]
  end(): SseEvent[]
}

export interface OperationAdapter<Req, Res, Chunk = never> {
  params: ParamMap<Req>
  policy?: ParamPolicy
  /** Stream framing: a new decoder per request. Default: server-sent events. */
  decoder?(): EventDecoder
  /** Escape hatch after the param map, for what a map cannot say. */
  finish?(body: Record<string, unknown>, req: Req, target: Target, stream: boolean): Record<string, unknown>
  response(body: unknown, meta: ResponseMeta): Res
  stream?(req: Req, meta: ResponseMeta): StreamTranslator<Chunk>
  /**
   * The upstream's stream events are OpenAI chunks already (the OpenAI family): the HTTP proxy forwards their text
   * as received instead of parsing and re-serialising each one (core/upstream/passthrough.ts). `stream()` still
   * runs on the few events that must be read (usage, errors).
   */
  passthrough?: boolean
  /**
   * How the mapped body is sent: 'json' (default) as JSON; 'multipart' as multipart/form-data (an audio upload):
   * an UploadFile value (core/openai/upload.ts) becomes a file part with its name and content type, an array
   * repeated `name[]` fields, an object its JSON text, anything else its string form (core/upstream/form-data.ts).
   */
  encoding?: 'json' | 'multipart'
  /**
   * How a 2xx body is read: 'json' (default) parsed and handed to response(); 'binary' sent on to the client as it
   * arrives, with the upstream's content type (speech audio; response() is not called); 'auto' JSON when the
   * upstream's content type says JSON, else binary (transcriptions asked for as text, srt or vtt).
   */
  reply?: 'json' | 'binary' | 'auto'
  /** The content type of a binary reply whose upstream sent none (e.g. from the request's response_format). */
  contentType?(req: Req): string
}

export interface ProviderRequest {
  url: string
  headers: Record<string, string>
}

/**
 * A client format the provider speaks itself (the Anthropic adapter, for /v1/messages): the client's body goes up
 * with only the model (and the deployment's defaults) set, and the reply comes back as the provider sent it, so
 * nothing the chat form cannot carry (server tools, citations, cache control, thinking signatures) is lost.
 */
export interface NativeFormat {
  /** URL and headers (before authorize()) of a native call: `messages`, or `count_tokens` for token counting. */
  request(target: Target, stream: boolean, clientHeaders: Readonly<Record<string, string>>, action: 'messages' | 'count_tokens'): ProviderRequest
  /** The body to send: the client's, with the deployment's model and defaults. Must not change `client`. */
  body(client: Readonly<Record<string, unknown>>, target: Target, stream: boolean): Record<string, unknown>
  /** A JSON reply's usage in the chat form the gateway prices and counts; null when it reports none. */
  usage(reply: unknown): Usage | null
  /** A stream's `error` event (its parsed data), mapped as an HTTP error of its type would be. */
  eventError(data: unknown): GatewayError
}

export interface ProviderCall {
  op: Operation
  target: Target
  request: Record<string, unknown>
  stream: boolean
  signal: AbortSignal
  meta: ResponseMeta
}

export interface ProviderAdapter {
  name: string
  operations: ReadonlySet<Operation>
  /** Environment variables read (at boot) for the key and base when a deployment gives none. */
  env?: {
    apiKey?: readonly string[] | undefined
    apiBase?: readonly string[] | undefined
    /** Provider settings (Target.params) -> the variables read, in order, when litellm_params has none. */
    params?: Readonly<Record<string, readonly string[]>> | undefined
  } | undefined
  request(op: Operation, target: Target, stream: boolean): ProviderRequest
  /**
   * Optional, may be async: add what needs the final body or I/O (AWS SigV4 over the body, an OAuth token fetched
   * and cached for Vertex AI). Runs after request(), with the exact bytes that will be sent: `body` is the JSON text;
   * for an op whose `encoding` is 'multipart' (a transcription upload) `body` is '' and `bytes` holds the body.
   */
  authorize?(req: ProviderRequest, body: string, target: Target, bytes?: Uint8Array): ProviderRequest | Promise<ProviderRequest>
  chat?: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk>
  completions?: OperationAdapter<CompletionRequest, TextCompletion, TextCompletion>
  embeddings?: OperationAdapter<EmbeddingRequest, EmbeddingResponse>
  /** `/v1/images/generations`. The reply's `data` list is required; GPT-image `usage` tokens are priced when present. */
  images?: OperationAdapter<ImageGenerationRequest, ImagesResponse>
  /**
   * `/v1/audio/transcriptions`. The request's `file` is an UploadFile: send it with `encoding: 'multipart'`, or read
   * `file.data` in finish() for an API that takes the audio another way (base64 in JSON). Use `reply: 'auto'` when
   * the API answers text, srt or vtt as plain text.
   */
  transcription?: OperationAdapter<TranscriptionRequest, TranscriptionResponse>
  /**
   * `/v1/audio/speech`. With `reply: 'binary'` the upstream's audio bytes stream to the client as they arrive; an API
   * that answers JSON (base64 audio) keeps the default 'json' and returns a SpeechAudio from response().
   */
  speech?: OperationAdapter<SpeechRequest, SpeechAudio>
  /** `/v1/moderations`. The reply's `results` list is required. */
  moderations?: OperationAdapter<ModerationRequest, ModerationResponse>
  /** Client formats served natively (state.native): no translation through the chat form. */
  native?: { anthropic?: NativeFormat } | undefined
  /** Map a non-2xx upstream response to a GatewayError. Never throws the raw upstream body at the client. */
  error(status: number, body: unknown, headers: Record<string, string | string[] | undefined>): GatewayError
  /**
   * For providers that do not speak HTTP at all (the `mock` provider): produce the result in process.
   * When present, dispatch calls it instead of the HTTP path.
   */
  invoke?(call: ProviderCall): Promise<ProviderResult>
}

export type ProviderResult =
  | {
    kind: 'json'
    body: ChatCompletion | TextCompletion | EmbeddingResponse | ImagesResponse | TranscriptionResponse | ModerationResponse
    /** In the chat shape (prompt/completion/total tokens) whatever the operation; null when none was reported. */
    usage: Usage | null
  }
  | { kind: 'stream'; chunks: AsyncIterable<ChatChunk | TextCompletion> }
  | { kind: 'passthrough'; events: AsyncIterable<PassEvent> }
  /** Bytes for the client as they arrive: speech audio, a transcription in text, srt or vtt. */
  | { kind: 'binary'; contentType: string; chunks: AsyncIterable<Uint8Array> }
  /** A native reply in the client's own format (state.native): the JSON body, with its usage in the chat form. */
  | { kind: 'native'; format: 'anthropic'; body: Record<string, unknown>; usage: Usage | null }
  /** A native stream: the provider's events as sent (an `error` event before any content is thrown instead). */
  | { kind: 'native-stream'; format: 'anthropic'; events: AsyncIterable<SseEvent> }

/**
 * One event of a pass-through stream (only when the request allowed it: `state.passthrough`, HTTP callers):
 * the upstream's `data:` text, forwarded byte for byte, with what the gateway needs read off it without a parse.
 */
export interface PassEvent {
  /** The event's JSON text as the upstream sent it. */
  readonly data: string
  /**
   * Set when the event had to be parsed (it carries usage, or lacks a `choices` list): it is written from this
   * object, as a translated chunk would be. null for the ordinary content event.
   */
  readonly chunk: ChatChunk | TextCompletion | null
  /** Where a `"usage": null` member sits in `data` (with its separating comma), cut for a client that did not ask for usage; -1 = none. */
  readonly nullUsageFrom: number
  readonly nullUsageTo: number
  /** Output characters in the event (content, reasoning, tool arguments, text), to price a stream cut short. */
  readonly chars: number
}
