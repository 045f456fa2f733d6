/**
 * OpenAI wire types, as Switchyard reads and writes them. Deliberately a little looser than the `openai` package's
 * types (which are unions over every content part): the gateway passes unknown fields through, so these describe
 * what the core itself touches. Shapes follow OpenAI's OpenAPI spec (../shared/data/openai/openapi.yaml):
 * CreateChatCompletionRequest / Response / StreamResponse, CreateEmbeddingRequest / Response, ErrorResponse. The image,
 * audio and moderation shapes are in media.ts.
 */

/**
 * What a model call does; each has its routes (core/http/handlers.ts), its validation, its op adapter on a provider
 * (ProviderAdapter[op]) and its pricing. MODEL_OPERATIONS (core/openai/operations.ts) lists them at runtime.
 */
export type Operation = 'chat' | 'completions' | 'embeddings' | 'images' | 'transcription' | 'speech' | 'moderations'

export type * from './media.js'

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function'
  content?: string | Array<Record<string, unknown>> | null
  name?: string
  tool_calls?: ToolCall[]
  tool_call_id?: string
  [extra: string]: unknown
}

export interface ToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

/** A streamed piece of a tool call: the first carries id, type and name, later ones more `arguments` text. */
export interface ToolCallDelta {
  index: number
  id?: string
  type?: 'function'
  function?: { name?: string; arguments?: string }
}

/** The chat parameters that are plain values: the same in the wire request and in an SDK call. */
export interface ChatSamplingParams {
  model: string
  stream?: boolean | null
  stream_options?: { include_usage?: boolean } | null
  temperature?: number | null
  top_p?: number | null
  n?: number | null
  max_tokens?: number | null
  max_completion_tokens?: number | null
  stop?: string | string[] | null
  presence_penalty?: number | null
  frequency_penalty?: number | null
  seed?: number | null
  user?: string
  tool_choice?: unknown
}

export interface ChatRequest extends ChatSamplingParams {
  messages: ChatMessage[]
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: Record<string, unknown> } }>
  response_format?: { type: string; [k: string]: unknown }
  [extra: string]: unknown
}

/*
 * Caller-side shapes, for the SDK's parameters. They must accept both plain object literals written without
 * `as const` (so `role` is a `string`) and the `openai` package's own types (ChatCompletionMessageParam,
 * ChatCompletionTool), which are interfaces. An interface is not assignable to an index signature of `unknown`
 * (TypeScript gives interfaces no implicit index signature) but is to one of `any`; so these open types use `any`
 * for the unknown remainder, while every declared field is still checked.
 */

export type ChatRole = ChatMessage['role']

/** One content part: `{ type: 'text', text }`, `{ type: 'image_url', image_url }`, ... */
export interface ContentPartParam {
  type: string
  text?: string
  [field: string]: any
}

export interface ToolCallParam {
  id: string
  type: 'function' | (string & {})
  function?: { name: string; arguments: string }
  [field: string]: any
}

/** A chat message as a caller writes it; `ChatCompletionMessageParam` fits. */
export interface ChatMessageParam {
  /** `(string & {})`: any string is accepted (a literal widened without `as const`), the known roles still complete. */
  role: ChatRole | (string & {})
  content?: string | readonly ContentPartParam[] | null
  name?: string
  tool_calls?: readonly ToolCallParam[] | null
  tool_call_id?: string
  [field: string]: any
}

/** A tool as a caller declares it; `ChatCompletionTool` fits. */
export interface ChatToolParam {
  type: 'function' | (string & {})
  function?: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null }
  [field: string]: any
}

/** The chat request as a caller passes it (the SDK's `completion()`); the gateway reads it as a ChatRequest. */
export interface ChatRequestParams extends ChatSamplingParams {
  messages: readonly ChatMessageParam[]
  tools?: readonly ChatToolParam[] | null
  response_format?: { type: string; [field: string]: any } | null
  [extra: string]: unknown
}

export interface CompletionRequest {
  model: string
  prompt: string | string[] | number[] | number[][]
  stream?: boolean | null
  stream_options?: { include_usage?: boolean } | null
  max_tokens?: number | null
  [extra: string]: unknown
}

export interface EmbeddingRequest {
  model: string
  input: string | string[] | number[] | number[][]
  encoding_format?: 'float' | 'base64'
  dimensions?: number
  user?: string
  [extra: string]: unknown
}

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  /** text_tokens and image_tokens: the split GPT image models and token-billed transcriptions report (shape.ts usageOf). */
  prompt_tokens_details?: { cached_tokens?: number; audio_tokens?: number; text_tokens?: number; image_tokens?: number } | null
  completion_tokens_details?: { reasoning_tokens?: number; audio_tokens?: number } | null
  [extra: string]: unknown
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call'

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  choices: Array<{
    index: number
    message: { role: 'assistant'; content: string | null; refusal?: string | null; tool_calls?: ToolCall[]; [k: string]: unknown }
    finish_reason: FinishReason | null
    logprobs: unknown
  }>
  usage?: Usage
  system_fingerprint?: string | null
  service_tier?: string | null
  [extra: string]: unknown
}

export interface ChatChunk {
  id: string
  object: 'chat.completion.chunk'
  created: number
  model: string
  choices: Array<{
    index: number
    delta: { role?: 'assistant'; content?: string | null; refusal?: string | null; tool_calls?: ToolCallDelta[]; [k: string]: unknown }
    finish_reason: FinishReason | null
    logprobs?: unknown
  }>
  usage?: Usage | null
  system_fingerprint?: string | null
  [extra: string]: unknown
}

export interface TextCompletion {
  id: string
  object: 'text_completion'
  created: number
  model: string
  choices: Array<{ index: number; text: string; finish_reason: FinishReason | null; logprobs: unknown }>
  usage?: Usage
  system_fingerprint?: string
  [extra: string]: unknown
}

/** `E`: `number[]` for floats, `string` for `encoding_format: 'base64'`; the SDK narrows it from the request. */
export interface EmbeddingResponse<E extends number[] | string = number[] | string> {
  object: 'list'
  data: Array<{ object: 'embedding'; index: number; embedding: E }>
  model: string
  usage: { prompt_tokens: number; total_tokens: number }
}

export interface ModelObject {
  id: string
  object: 'model'
  created: number
  owned_by: string
}
