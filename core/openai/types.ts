/**
 * OpenAI wire types, as Switchyard reads and writes them. Deliberately a little looser than the `openai` package's
 * types (which are unions over every content part): the gateway passes unknown fields through, so these describe
 * what the core itself touches. Shapes follow OpenAI's OpenAPI spec (../shared/data/openai/openapi.yaml):
 * CreateChatCompletionRequest / Response / StreamResponse, CreateEmbeddingRequest / Response, ErrorResponse.
 */

export type Operation = 'chat' | 'completions' | 'embeddings'

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

export interface ChatRequest {
  model: string
  messages: ChatMessage[]
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
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: Record<string, unknown> } }>
  tool_choice?: unknown
  response_format?: { type: string; [k: string]: unknown }
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
  prompt_tokens_details?: { cached_tokens?: number; audio_tokens?: number } | null
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
    delta: { role?: 'assistant'; content?: string | null; refusal?: string | null; tool_calls?: Array<Partial<ToolCall> & { index: number }>; [k: string]: unknown }
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

export interface EmbeddingResponse {
  object: 'list'
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string }>
  model: string
  usage: { prompt_tokens: number; total_tokens: number }
}

export interface ModelObject {
  id: string
  object: 'model'
  created: number
  owned_by: string
}
