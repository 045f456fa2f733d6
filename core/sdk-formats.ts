/**
 * The SDK's `responses()` (OpenAI Responses API) and `anthropicMessages()` (Anthropic Messages API), in process, as
 * LiteLLM's `litellm.responses()` and `litellm.anthropic.messages.create()`. Both are `completion()` underneath: the
 * request is translated to the chat form by the same pure translators the proxy's `/v1/responses` and
 * `/v1/messages` use (core/formats/), the call goes through `completion()` with its call options untouched
 * (api_key, api_base, timeout, num_retries, mock_response, signal, ...), and the reply or the chunks are translated
 * back by the proxy's own reply translators. So a reply here is the object the proxy would send, and a stream is the
 * proxy's event sequence as objects (never SSE text parsed back).
 *
 *   const r = await responses({ model: 'openai/gpt-4o-mini', input: 'Hi', api_key })
 *   for await (const ev of await anthropicMessages({ model: 'groq/llama-3.1-8b-instant', max_tokens: 256, messages, stream: true })) ...
 *
 * Errors are completion()'s: the exported GatewayError classes (a bad request is a 400 BadRequestError whose
 * `param` names the field). A failure in the middle of a stream is thrown from the iteration, as completion()'s
 * stream throws it, not sent as an error event.
 *
 * The proxy's response store is not here: `previous_response_id` is refused (400) and nothing is stored, so a
 * Response says `store: false`. MCP tools (`type: "mcp"`) are the proxy's MCP gateway's to run, and refused too.
 */
import { completion, type CallOptions, type CompletionParams } from './sdk.js'
import { gatewayError, GatewayError } from './errors.js'
import type { ChatChunk, ChatCompletion, ChatRequest } from './openai/types.js'
import { inputItems, responsesToChat } from './formats/responses-request.js'
import { chatToResponse, responseId, ResponsesStreamWriter, type ResponseOptions } from './formats/responses-reply.js'
import { messagesToChat } from './formats/anthropic-request.js'
import { AnthropicStreamWriter, chatToMessage, messageId, type AnthropicUsageOut } from './formats/anthropic-reply.js'
import { isGatewayField } from '../providers/param-map.js'

/*
 * Caller-side shapes are open, as the chat params are (core/openai/types.ts): declared fields are checked, and the
 * `[field: string]: any` remainder lets the official clients' own types (openai's ResponseInputItem, Anthropic's
 * MessageParam, which are interfaces) and new API fields through; the translators validate what they read.
 */

// ---------------------------------------------------------------------------------------------------------------
// Responses API types

/** A content part of an input message: input_text / output_text, input_image, input_file, refusal. */
export interface ResponseInputContent {
  type: 'input_text' | 'output_text' | 'input_image' | 'input_file' | 'refusal' | (string & {})
  text?: string
  [field: string]: any
}

/**
 * One input item: a message (`{role, content}`, `type` may be left out), a function_call the model made
 * (`{type: 'function_call', call_id, name, arguments}`), the function_call_output answering it
 * (`{type: 'function_call_output', call_id, output}`), or an earlier Response's output item given back verbatim.
 * Only the message fields are declared: the item kinds' other fields differ in type across OpenAI's union, and the
 * translator checks each kind's fields (a 400 naming the path).
 */
export interface ResponseInputItem {
  type?: 'message' | 'function_call' | 'function_call_output' | 'reasoning' | (string & {}) | null
  role?: 'user' | 'assistant' | 'system' | 'developer' | (string & {})
  content?: string | readonly ResponseInputContent[]
  [field: string]: any
}

/** A function tool (`{type: 'function', name, parameters}`, flat, unlike chat's) or a web_search tool. */
export interface ResponseToolParam {
  type: 'function' | 'web_search' | 'web_search_preview' | (string & {})
  name?: string
  description?: string | null
  parameters?: Record<string, unknown> | null
  strict?: boolean | null
  [field: string]: any
}

/** OpenAI's CreateResponse body, the fields translated for a chat model (others are echoed or ignored). */
export interface ResponsesRequest {
  /** "provider/name", as completion() takes it. */
  model: string
  input: string | readonly ResponseInputItem[]
  instructions?: string | null
  tools?: readonly ResponseToolParam[] | null
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; name: string } | null
  text?: { format?: { type: 'text' | 'json_object' | 'json_schema' | (string & {}); [field: string]: any } | null; verbosity?: string | null } | null
  /** `effort` becomes chat's reasoning_effort. */
  reasoning?: { effort?: string | null; summary?: string | null } | null
  max_output_tokens?: number | null
  temperature?: number | null
  top_p?: number | null
  parallel_tool_calls?: boolean | null
  stream?: boolean | null
  /** Accepted; nothing is stored in process (the Response says `store: false`). */
  store?: boolean | null
  /** Refused: continuing a stored conversation needs the proxy's response store. */
  previous_response_id?: string | null
  metadata?: Record<string, string> | null
  user?: string
  safety_identifier?: string
  [field: string]: unknown
}

/** responses() arguments: the Responses request plus completion()'s call options. */
export type ResponsesParams = ResponsesRequest & CallOptions

export interface ResponseOutputText {
  type: 'output_text'
  text: string
  annotations: unknown[]
  logprobs: unknown[]
}

export interface ResponseOutputRefusal {
  type: 'refusal'
  refusal: string
}

export interface ResponseOutputMessage {
  type: 'message'
  id: string
  status: 'in_progress' | 'completed' | 'incomplete'
  role: 'assistant'
  content: Array<ResponseOutputText | ResponseOutputRefusal>
}

export interface ResponseFunctionCall {
  type: 'function_call'
  id: string
  /** Answer it with `{type: 'function_call_output', call_id, output}` in the next request's input. */
  call_id: string
  name: string
  arguments: string
  status: 'in_progress' | 'completed' | 'incomplete'
}

export interface ResponseReasoningItem {
  type: 'reasoning'
  id: string
  summary: Array<{ type: 'summary_text'; text: string }>
  status: 'in_progress' | 'completed' | 'incomplete'
}

export type ResponseOutputItem = ResponseOutputMessage | ResponseFunctionCall | ResponseReasoningItem

export interface ResponseUsage {
  input_tokens: number
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number }
  output_tokens: number
  output_tokens_details: { reasoning_tokens: number }
  total_tokens: number
}

/** An OpenAI `Response` (object: "response"), as the proxy's /v1/responses returns it. */
export interface ResponseObject {
  id: string
  object: 'response'
  /** Unix seconds. */
  created_at: number
  status: 'completed' | 'incomplete' | 'in_progress' | 'failed'
  completed_at: number | null
  error: { code: string; message: string } | null
  incomplete_details: { reason: string } | null
  instructions: string | null
  max_output_tokens: number | null
  /** The model as asked for ("provider/name"). */
  model: string
  output: ResponseOutputItem[]
  parallel_tool_calls: boolean
  previous_response_id: string | null
  reasoning: { effort: string | null; summary: string | null }
  store: boolean
  temperature: number
  text: { format: { type: string; [field: string]: unknown }; verbosity: string }
  tool_choice: unknown
  tools: unknown[]
  top_p: number
  truncation: string
  metadata: Record<string, string>
  /** Left out when the upstream reported none. */
  usage?: ResponseUsage
  [field: string]: unknown
}

interface ItemAt { item_id: string; output_index: number }
type Seq = { sequence_number: number }

/** The Responses streaming events a chat model's stream becomes, each with its `sequence_number` (from 0). */
export type ResponseStreamEvent = Seq & (
  | { type: 'response.created' | 'response.in_progress' | 'response.completed' | 'response.incomplete' | 'response.failed'; response: ResponseObject }
  | { type: 'response.output_item.added' | 'response.output_item.done'; output_index: number; item: ResponseOutputItem }
  | (ItemAt & { type: 'response.content_part.added' | 'response.content_part.done'; content_index: number; part: ResponseOutputText | ResponseOutputRefusal })
  | (ItemAt & { type: 'response.output_text.delta'; content_index: number; delta: string; logprobs: unknown[] })
  | (ItemAt & { type: 'response.output_text.done'; content_index: number; text: string; logprobs: unknown[] })
  | (ItemAt & { type: 'response.refusal.delta'; content_index: number; delta: string })
  | (ItemAt & { type: 'response.refusal.done'; content_index: number; refusal: string })
  | (ItemAt & { type: 'response.function_call_arguments.delta'; delta: string })
  | (ItemAt & { type: 'response.function_call_arguments.done'; name: string; arguments: string })
  | (ItemAt & { type: 'response.reasoning_summary_part.added' | 'response.reasoning_summary_part.done'; summary_index: number; part: { type: 'summary_text'; text: string } })
  | (ItemAt & { type: 'response.reasoning_summary_text.delta'; summary_index: number; delta: string })
  | (ItemAt & { type: 'response.reasoning_summary_text.done'; summary_index: number; text: string })
)

// ---------------------------------------------------------------------------------------------------------------
// Anthropic Messages API types

/** A content block of a request message: text, image, document, tool_use, tool_result, thinking, redacted_thinking. */
export interface AnthropicContentBlockParam {
  type: 'text' | 'image' | 'document' | 'tool_use' | 'tool_result' | 'thinking' | 'redacted_thinking' | (string & {})
  text?: string
  [field: string]: any
}

export interface AnthropicMessageParam {
  role: 'user' | 'assistant' | (string & {})
  content: string | readonly AnthropicContentBlockParam[]
  [field: string]: any
}

/** A client tool (`{name, description, input_schema}`) or Anthropic's web search tool. */
export interface AnthropicToolParam {
  name: string
  description?: string
  input_schema?: Record<string, unknown>
  type?: string | null
  [field: string]: any
}

/** Anthropic's Messages request body. */
export interface AnthropicMessagesRequest {
  /** "provider/name", as completion() takes it: any provider, Anthropic or not. */
  model: string
  max_tokens: number
  messages: readonly AnthropicMessageParam[]
  system?: string | ReadonlyArray<{ type: 'text' | (string & {}); text: string; [field: string]: any }>
  tools?: readonly AnthropicToolParam[]
  tool_choice?: { type: 'auto' | 'any' | 'tool' | 'none' | (string & {}); name?: string; disable_parallel_tool_use?: boolean; [field: string]: any }
  stop_sequences?: readonly string[]
  temperature?: number
  top_p?: number
  top_k?: number
  /** `{type: 'enabled', budget_tokens}`: passed to the model's provider as LiteLLM's `thinking`. */
  thinking?: { type: string; budget_tokens?: number; [field: string]: any }
  stream?: boolean
  /** `user_id` becomes chat's `user`; other keys are LiteLLM metadata (logs, callbacks), never sent upstream. */
  metadata?: { user_id?: string; [field: string]: any }
  [field: string]: unknown
}

/** anthropicMessages() arguments: the Messages request plus completion()'s call options. */
export type AnthropicMessagesParams = AnthropicMessagesRequest & CallOptions

export type AnthropicContentBlock =
  | { type: 'text'; text: string; citations: null }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'redacted_thinking'; data: string }

/** An Anthropic `Message` (type: "message"). */
export interface AnthropicMessage {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: AnthropicContentBlock[]
  stop_reason: 'end_turn' | 'max_tokens' | 'tool_use' | 'refusal' | 'stop_sequence' | 'pause_turn' | null
  stop_sequence: string | null
  usage: AnthropicUsageOut
}

/** Anthropic's streaming events, in the order Anthropic sends them. */
export type AnthropicStreamEvent =
  | { type: 'message_start'; message: AnthropicMessage }
  | { type: 'content_block_start'; index: number; content_block: AnthropicContentBlock }
  | {
    type: 'content_block_delta'; index: number
    delta:
      | { type: 'text_delta'; text: string }
      | { type: 'input_json_delta'; partial_json: string }
      | { type: 'thinking_delta'; thinking: string }
      | { type: 'signature_delta'; signature: string }
  }
  | { type: 'content_block_stop'; index: number }
  | {
    type: 'message_delta'
    delta: { stop_reason: AnthropicMessage['stop_reason']; stop_sequence: string | null }
    usage: Pick<AnthropicUsageOut, 'input_tokens' | 'output_tokens' | 'cache_creation_input_tokens' | 'cache_read_input_tokens'> & { server_tool_use: null }
  }
  | { type: 'message_stop' }

// ---------------------------------------------------------------------------------------------------------------
// shared

type Obj = Record<string, unknown>

/** A translated request as completion() takes it (the translators build content parts as plain records). */
const asParams = (chat: ChatRequest) => chat as CompletionParams

/**
 * The caller's arguments as an object; anything that goes wrong while reading them (a non-object, a throwing getter,
 * a translator's TypeError) is the caller's mistake: a 400 BadRequestError, as completion() reports it.
 */
function asInputError(err: unknown, fn: string): GatewayError {
  if (err instanceof GatewayError) return err
  const why = err instanceof Error ? err.message : String(err)
  return gatewayError('GW_ERR_VALIDATION', `Invalid arguments to ${fn}(): ${why}`, { cause: err })
}

function paramsObject(params: unknown, fn: string): Obj {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw gatewayError('GW_ERR_VALIDATION', `${fn}() takes one object of parameters, got ${params === null ? 'null' : Array.isArray(params) ? 'an array' : typeof params}.`)
  }
  return params as Obj
}

/** completion()'s `_hidden_params` (the call's cost, model id, provider), carried over to the translated reply. */
function carryHidden(from: object, to: object): void {
  const hidden = (from as { _hidden_params?: unknown })._hidden_params
  if (hidden !== undefined) Object.defineProperty(to, '_hidden_params', { value: hidden, enumerable: false, configurable: true })
}

// ---------------------------------------------------------------------------------------------------------------
// responses()

/**
 * CreateResponse's own fields: translated (or echoed) here and never handed to completion() as they are. Any other
 * key is a call option or a LiteLLM field (api_key, num_retries, fallbacks, signal, mock_response, ...) and goes to
 * completion() untouched.
 */
const RESPONSES_FIELDS = new Set([
  'model', 'input', 'instructions', 'tools', 'tool_choice', 'text', 'reasoning', 'max_output_tokens', 'max_tool_calls',
  'temperature', 'top_p', 'top_logprobs', 'parallel_tool_calls', 'stream', 'stream_options', 'store',
  'previous_response_id', 'include', 'truncation', 'background', 'metadata', 'user', 'safety_identifier',
  'prompt_cache_key', 'prompt', 'service_tier', 'conversation', 'context_management',
])

interface ResponsesCall {
  chat: ChatRequest
  options: ResponseOptions
}

function responsesCall(p: Obj): ResponsesCall {
  if (typeof p.model !== 'string' || p.model === '') {
    throw gatewayError('GW_ERR_VALIDATION', "Missing required parameter: 'model'.", { param: 'model' })
  }
  const input = inputItems(p)
  if (p.store !== undefined && p.store !== null && typeof p.store !== 'boolean') {
    throw gatewayError('GW_ERR_VALIDATION', "Invalid 'store': expected a boolean.", { param: 'store' })
  }
  const md = p.metadata
  if (md !== undefined && md !== null && (typeof md !== 'object' || Array.isArray(md))) {
    throw gatewayError('GW_ERR_VALIDATION', "Invalid 'metadata': expected an object of strings.", { param: 'metadata' })
  }
  if (p.previous_response_id !== undefined && p.previous_response_id !== null) {
    throw gatewayError('GW_ERR_VALIDATION',
      "'previous_response_id' needs the proxy's response store: the in-process responses() keeps no responses. " +
      'Send the earlier turns in `input` (the previous output items, then the new ones), or call the proxy\'s /v1/responses.',
      { param: 'previous_response_id' })
  }
  if (Array.isArray(p.tools)) {
    p.tools.forEach((t: unknown, i) => {
      if ((t as Obj).type === 'mcp') {
        throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', "MCP tools need the proxy: its MCP gateway lists and runs them; the in-process responses() has none.", { param: `tools.${i}` })
      }
    })
  }
  const chat = responsesToChat(p, [], input)
  const request: Obj = {}
  for (const k in p) {
    if (RESPONSES_FIELDS.has(k)) request[k] = p[k]
    // Call options, and LiteLLM fields the proxy also honours in a Responses body (metadata, tags, ...).
    if (chat[k] === undefined && (!RESPONSES_FIELDS.has(k) || isGatewayField(k))) chat[k] = p[k]
  }
  // Nothing is stored in process: the Response says so, rather than promising a retrievable id.
  request.store = false
  if (chat.stream === true) chat.stream_options = { include_usage: true }
  const options: ResponseOptions = { id: responseId(), createdAt: Math.floor(Date.now() / 1000), model: p.model, request }
  return { chat, options }
}

async function* responseEvents(chunks: AsyncIterable<ChatChunk>, writer: ResponsesStreamWriter): AsyncGenerator<ResponseStreamEvent> {
  // Before the first chunk, as the proxy sends them: completion() has already answered, so the stream is open.
  yield* writer.startEvents() as ResponseStreamEvent[]
  for await (const c of chunks) yield* writer.chunkEvents(c) as ResponseStreamEvent[]
  yield* writer.endEvents(null).events as ResponseStreamEvent[]
}

/**
 * The OpenAI Responses API on any chat model, in process: LiteLLM's `litellm.responses()`. Takes CreateResponse's
 * fields plus completion()'s call options; returns the `Response` the proxy's `POST /v1/responses` would, or with
 * `stream: true` its streaming events as objects (response.created ... response.completed, whose `response` carries
 * the usage).
 *
 *   const r = await responses({ model: 'openai/gpt-4o-mini', input: 'Say hi', instructions: 'Be brief.' })
 *   r.output                       // [{ type: 'message', content: [{ type: 'output_text', text: 'Hi!' }] }]
 *   r.usage?.output_tokens
 *
 *   for await (const ev of await responses({ model: 'openai/gpt-4o-mini', input: 'Say hi', stream: true })) {
 *     if (ev.type === 'response.output_text.delta') process.stdout.write(ev.delta)
 *     if (ev.type === 'response.completed') console.log(ev.response.usage)
 *   }
 *
 * A tool call is a `function_call` output item; answer it by sending the conversation again in `input` with a
 * `{type: 'function_call_output', call_id, output}` item (`previous_response_id` needs the proxy's store and is
 * refused here with a 400).
 */
export function responses(params: ResponsesParams & { stream: true }): Promise<AsyncIterable<ResponseStreamEvent>>
export function responses(params: ResponsesParams & { stream?: false | null }): Promise<ResponseObject>
export function responses(params: ResponsesParams): Promise<ResponseObject | AsyncIterable<ResponseStreamEvent>>
export function responses(params: ResponsesParams): Promise<ResponseObject | AsyncIterable<ResponseStreamEvent>> {
  return responsesOn(completion, params)
}

/** The chat call underneath: the SDK's completion(), or a Router's. */
export type CompleteFn = (params: CompletionParams) => Promise<ChatCompletion | AsyncIterable<ChatChunk>>

async function responsesOn(complete: CompleteFn, params: ResponsesParams): Promise<ResponseObject | AsyncIterable<ResponseStreamEvent>> {
  let call: ResponsesCall
  try {
    call = responsesCall(paramsObject(params, 'responses'))
  } catch (err) {
    throw asInputError(err, 'responses')
  }
  const { chat, options } = call
  if (chat.stream === true) {
    const chunks = await complete({ ...asParams(chat), stream: true }) as AsyncIterable<ChatChunk>
    return responseEvents(chunks, new ResponsesStreamWriter(options))
  }
  const reply = await complete({ ...asParams(chat), stream: false }) as ChatCompletion
  const response = chatToResponse(reply, options) as ResponseObject
  carryHidden(reply, response)
  return response
}

// ---------------------------------------------------------------------------------------------------------------
// anthropicMessages()

function messagesCall(p: Obj): ChatRequest {
  // Fields it does not translate (call options among them) are copied through as they are.
  const chat = messagesToChat(p)
  // LiteLLM's metadata (tags, trace ids) for logs and callbacks, as the proxy keeps it; user_id became `user`.
  const md = p.metadata
  if (md && typeof md === 'object' && !Array.isArray(md)) {
    const { user_id: _userId, ...rest } = md as Obj
    if (Object.keys(rest).length) chat.metadata = rest
  }
  if (chat.stream === true) chat.stream_options = { include_usage: true }
  return chat
}

async function* messageEvents(chunks: AsyncIterable<ChatChunk>, requested: string): AsyncGenerator<AnthropicStreamEvent> {
  // Named after the first chunk's model, as the proxy names a stream (and a plain reply after the upstream's).
  const id = messageId()
  let writer: AnthropicStreamWriter | null = null
  const out = (model: string) => (writer ??= new AnthropicStreamWriter(model, id))
  for await (const c of chunks) yield* out(c.model || requested).chunkEvents(c) as AnthropicStreamEvent[]
  yield* out(requested).endEvents(null) as AnthropicStreamEvent[]
}

/**
 * Anthropic's Messages API on any model, in process: LiteLLM's `litellm.anthropic.messages.create()`. Takes the
 * Messages request (model "provider/name", max_tokens, system, messages with content blocks, tools, tool_choice,
 * stop_sequences, thinking, metadata) plus completion()'s call options; returns an Anthropic `Message`, or with
 * `stream: true` Anthropic's stream events as objects (message_start, content_block_start / _delta / _stop,
 * message_delta with the stop reason and usage, message_stop), what the proxy's `POST /v1/messages` sends.
 *
 *   const m = await anthropicMessages({
 *     model: 'openai/gpt-4o-mini', max_tokens: 512, system: 'Be brief.',
 *     messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
 *     tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
 *   })
 *   if (m.stop_reason === 'tool_use') ... // m.content has a { type: 'tool_use', id, name, input } block
 *
 *   for await (const ev of await anthropicMessages({ ...req, stream: true })) {
 *     if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') process.stdout.write(ev.delta.text)
 *   }
 */
export function anthropicMessages(params: AnthropicMessagesParams & { stream: true }): Promise<AsyncIterable<AnthropicStreamEvent>>
export function anthropicMessages(params: AnthropicMessagesParams & { stream?: false | null }): Promise<AnthropicMessage>
export function anthropicMessages(params: AnthropicMessagesParams): Promise<AnthropicMessage | AsyncIterable<AnthropicStreamEvent>>
export function anthropicMessages(params: AnthropicMessagesParams): Promise<AnthropicMessage | AsyncIterable<AnthropicStreamEvent>> {
  return anthropicMessagesOn(completion, params)
}

async function anthropicMessagesOn(complete: CompleteFn, params: AnthropicMessagesParams): Promise<AnthropicMessage | AsyncIterable<AnthropicStreamEvent>> {
  let chat: ChatRequest
  try {
    chat = messagesCall(paramsObject(params, 'anthropicMessages'))
  } catch (err) {
    throw asInputError(err, 'anthropicMessages')
  }
  const requested = chat.model
  if (chat.stream === true) {
    const chunks = await complete({ ...asParams(chat), stream: true }) as AsyncIterable<ChatChunk>
    return messageEvents(chunks, requested)
  }
  const reply = await complete({ ...asParams(chat), stream: false }) as ChatCompletion
  const message = chatToMessage(reply, reply.model || requested) as AnthropicMessage
  carryHidden(reply, message)
  return message
}

/** responses() and anthropicMessages() on another chat call (a Router's completion). */
export function formatFunctions(complete: CompleteFn): {
  responses(params: ResponsesParams): Promise<ResponseObject | AsyncIterable<ResponseStreamEvent>>
  anthropicMessages(params: AnthropicMessagesParams): Promise<AnthropicMessage | AsyncIterable<AnthropicStreamEvent>>
} {
  return {
    responses: (params) => responsesOn(complete, params),
    anthropicMessages: (params) => anthropicMessagesOn(complete, params),
  }
}
