/**
 * An Anthropic Messages request (POST /v1/messages) -> the gateway's OpenAI ChatRequest, for deployments that are
 * not Anthropic (an Anthropic deployment gets the body as sent). The mapping follows LiteLLM's adapter
 * (llms/anthropic/experimental_pass_through/adapters/transformation.py, `translate_anthropic_to_openai`):
 *
 *   system (string or text blocks)        a leading system message
 *   user text / image / document blocks   content parts (text, image_url, file)
 *   tool_result blocks                    one `tool` message each, BEFORE the rest of that user turn (OpenAI wants
 *                                         the tool answers right after the assistant's tool_calls)
 *   assistant text / tool_use / thinking  content, tool_calls, thinking_blocks + reasoning_content
 *   tools, tool_choice, metadata.user_id  function tools, OpenAI tool_choice, user
 *
 * The body is checked as Anthropic checks it (max_tokens required, temperature 0..1, ...) so a client gets the
 * same 400 whichever deployment serves the model; every error names the offending path as its `param`.
 * API reference: https://docs.anthropic.com/en/api/messages
 */
import { gatewayError } from '../errors.js'
import type { ChatMessage, ChatRequest } from '../openai/types.js'

type Obj = Record<string, unknown>
type Part = Record<string, unknown>
type ChatTool = NonNullable<ChatRequest['tools']>[number]

/** Fields handled below, never copied through as they are. */
const MAPPED = new Set([
  'model', 'messages', 'system', 'max_tokens', 'stop_sequences', 'temperature', 'top_p', 'top_k', 'metadata', 'stream',
  'thinking', 'tools', 'tool_choice', 'output_format', 'output_config',
])

/** Anthropic-only features a chat model cannot honour (code execution containers, MCP connectors, Anthropic's
 *  priority tier, server-side context editing): dropped, as LiteLLM's adapter drops them. */
const DROPPED = new Set(['container', 'mcp_servers', 'service_tier', 'context_management'])

/** Block types Anthropic defines that have no chat-form equivalent (server tool traffic, search results). */
const ANTHROPIC_ONLY_BLOCKS = new Set([
  'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result', 'code_execution_tool_result',
  'bash_code_execution_tool_result', 'text_editor_code_execution_tool_result', 'mcp_tool_use', 'mcp_tool_result',
  'container_upload', 'search_result',
])

/** The block types this translation knows; each is allowed in some roles only. */
const KNOWN_BLOCKS = new Set(['text', 'image', 'document', 'tool_result', 'tool_use', 'thinking', 'redacted_thinking'])

/** OpenAI's file part wants a filename beside file_data (it answers 400 "Missing required parameter ... filename"). */
const DEFAULT_PDF_NAME = 'document.pdf'

function invalid(param: string, detail: string): never {
  throw gatewayError('GW_ERR_VALIDATION', `${param}: ${detail}`, { param })
}

function unsupported(param: string, detail: string): never {
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', `${param}: ${detail}`, { param })
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)

function withCache<T extends Obj>(out: T, from: Obj): T {
  if (isObj(from.cache_control)) (out as Obj).cache_control = from.cache_control
  return out
}

function text(b: Obj, path: string): string {
  if (typeof b.text !== 'string') invalid(`${path}.text`, 'must be a string')
  return b.text
}

// ---------------------------------------------------------------------------------------------------------------
// content blocks

function imagePart(b: Obj, path: string): Part {
  const s = b.source
  if (!isObj(s)) invalid(`${path}.source`, 'must be an object')
  let url: string
  if (s.type === 'base64') {
    if (typeof s.media_type !== 'string' || typeof s.data !== 'string') invalid(`${path}.source`, 'a base64 source needs media_type and data strings')
    url = `data:${s.media_type};base64,${s.data}`
  } else if (s.type === 'url') {
    if (typeof s.url !== 'string' || !s.url) invalid(`${path}.source.url`, 'must be a non-empty string')
    url = s.url
  } else {
    return unsupported(`${path}.source.type`, `image source type '${String(s.type)}' is only supported by Anthropic deployments`)
  }
  return withCache({ type: 'image_url', image_url: { url } }, b)
}

/** A document block -> a file part (base64 PDF), text parts (plain-text or content source). */
function documentParts(b: Obj, path: string, out: Part[]): void {
  const s = b.source
  if (!isObj(s)) invalid(`${path}.source`, 'must be an object')
  switch (s.type) {
    case 'base64': {
      if (typeof s.data !== 'string') invalid(`${path}.source.data`, 'must be a string')
      const mediaType = typeof s.media_type === 'string' ? s.media_type : 'application/pdf'
      const filename = typeof b.title === 'string' && b.title ? b.title : DEFAULT_PDF_NAME
      out.push(withCache({ type: 'file', file: { filename, file_data: `data:${mediaType};base64,${s.data}` } }, b))
      return
    }
    case 'text':
      if (typeof s.data !== 'string') invalid(`${path}.source.data`, 'must be a string')
      out.push(withCache({ type: 'text', text: s.data }, b))
      return
    case 'content':
      if (typeof s.content === 'string') out.push(withCache({ type: 'text', text: s.content }, b))
      else if (Array.isArray(s.content)) s.content.forEach((c, i) => out.push(userPart(c, `${path}.source.content.${i}`)))
      else invalid(`${path}.source.content`, 'must be a string or an array of blocks')
      return
    case 'url':
      // LiteLLM sends a URL document as an image_url, which OpenAI refuses for a PDF; OpenAI's file part takes no
      // URL. Refusing is clearer than an upstream error about an image.
      return unsupported(`${path}.source`, 'a URL document is only supported by Anthropic deployments; send it as base64')
    default:
      return invalid(`${path}.source.type`, `unknown document source type '${String(s.type)}'`)
  }
}

/** A text or image block inside a document's content source. */
function userPart(b: unknown, path: string): Part {
  if (!isObj(b)) invalid(path, 'must be an object')
  if (b.type === 'text') return withCache({ type: 'text', text: text(b, path) }, b)
  if (b.type === 'image') return imagePart(b, path)
  return invalid(path, `unknown block type '${String(b.type)}'`)
}

function blockType(b: unknown, path: string): string {
  if (!isObj(b)) invalid(path, 'must be an object')
  if (typeof b.type !== 'string') invalid(`${path}.type`, 'must be a string')
  return b.type
}

function otherBlock(type: string, path: string, role: string): never {
  if (ANTHROPIC_ONLY_BLOCKS.has(type)) unsupported(path, `block type '${type}' is only supported by Anthropic deployments`)
  if (KNOWN_BLOCKS.has(type)) invalid(path, `block type '${type}' is not allowed in a ${role} message`)
  return invalid(path, `unknown block type '${type}'`)
}

/** tool_result content -> the tool message's text; its images and documents go to `media` (a user message after). */
function toolResult(b: Obj, path: string, media: Part[]): ChatMessage {
  if (typeof b.tool_use_id !== 'string' || !b.tool_use_id) invalid(`${path}.tool_use_id`, 'must be a non-empty string')
  let content = ''
  const c = b.content
  if (typeof c === 'string') content = c
  else if (Array.isArray(c)) {
    const texts: string[] = []
    for (let i = 0; i < c.length; i++) {
      const p = `${path}.content.${i}`
      const t = blockType(c[i], p)
      const blk = c[i] as Obj
      if (t === 'text') texts.push(text(blk, p))
      else if (t === 'image') media.push(imagePart(blk, p))
      else if (t === 'document') documentParts(blk, p, media)
      else otherBlock(t, p, 'tool_result')
    }
    content = texts.join('\n')
  } else if (c !== undefined && c !== null) invalid(`${path}.content`, 'must be a string or an array of blocks')
  // `is_error` has no OpenAI field; the text says what went wrong, which is what the model reads anyway.
  return { role: 'tool', tool_call_id: b.tool_use_id, content }
}

function userMessages(content: unknown[], path: string, out: ChatMessage[]): void {
  const parts: Part[] = []
  const toolMedia: Part[] = []
  for (let i = 0; i < content.length; i++) {
    const p = `${path}.${i}`
    const t = blockType(content[i], p)
    const b = content[i] as Obj
    if (t === 'text') parts.push(withCache({ type: 'text', text: text(b, p) }, b))
    else if (t === 'image') parts.push(imagePart(b, p))
    else if (t === 'document') documentParts(b, p, parts)
    else if (t === 'tool_result') out.push(toolResult(b, p, toolMedia))
    else otherBlock(t, p, 'user')
  }
  // Images from tool results lead the user message that follows the tool messages: no user message may sit
  // between an assistant's tool_calls and their answers.
  const all = toolMedia.length ? [...toolMedia, ...parts] : parts
  if (all.length) out.push({ role: 'user', content: all })
}

function assistantMessage(content: unknown[], path: string): ChatMessage | null {
  const texts: Part[] = []
  let cached = false
  const toolCalls: NonNullable<ChatMessage['tool_calls']> = []
  const thinking: Obj[] = []
  let reasoning = ''
  for (let i = 0; i < content.length; i++) {
    const p = `${path}.${i}`
    const t = blockType(content[i], p)
    const b = content[i] as Obj
    if (t === 'text') {
      texts.push(withCache({ type: 'text', text: text(b, p) }, b))
      if (isObj(b.cache_control)) cached = true
    } else if (t === 'tool_use') {
      if (typeof b.id !== 'string' || !b.id) invalid(`${p}.id`, 'must be a non-empty string')
      if (typeof b.name !== 'string' || !b.name) invalid(`${p}.name`, 'must be a non-empty string')
      if (b.input !== undefined && !isObj(b.input)) invalid(`${p}.input`, 'must be an object')
      toolCalls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } })
    } else if (t === 'thinking') {
      if (typeof b.thinking !== 'string') invalid(`${p}.thinking`, 'must be a string')
      reasoning += b.thinking
      thinking.push(b)
    } else if (t === 'redacted_thinking') {
      thinking.push(b)
    } else otherBlock(t, p, 'assistant')
  }
  if (!texts.length && !toolCalls.length && !thinking.length) return null
  // A text block with cache_control keeps the parts (as LiteLLM does) so a caching-aware provider still sees it.
  const joined = cached ? texts : texts.map((x) => x.text as string).join('')
  const msg: ChatMessage = { role: 'assistant', content: joined === '' && toolCalls.length ? null : joined }
  if (toolCalls.length) msg.tool_calls = toolCalls
  if (thinking.length) {
    msg.thinking_blocks = thinking
    msg.reasoning_content = reasoning
  }
  return msg
}

function chatMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || !value.length) invalid('messages', 'must be a non-empty array')
  const out: ChatMessage[] = []
  for (let i = 0; i < value.length; i++) {
    const m = value[i]
    const path = `messages.${i}`
    if (!isObj(m)) invalid(path, 'must be an object')
    if (m.role !== 'user' && m.role !== 'assistant') invalid(`${path}.role`, `must be 'user' or 'assistant', got ${JSON.stringify(m.role)}`)
    const c = m.content
    if (typeof c === 'string') {
      out.push({ role: m.role, content: c })
    } else if (Array.isArray(c)) {
      if (m.role === 'user') {
        if (!c.length) invalid(`${path}.content`, 'must not be empty')
        userMessages(c, `${path}.content`, out)
      } else {
        const a = assistantMessage(c, `${path}.content`)
        if (a) out.push(a)
      }
    } else invalid(`${path}.content`, 'must be a string or an array of content blocks')
  }
  return out
}

function systemMessage(value: unknown): ChatMessage | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value ? { role: 'system', content: value } : null
  if (!Array.isArray(value)) invalid('system', 'must be a string or an array of text blocks')
  const parts: Part[] = []
  for (let i = 0; i < value.length; i++) {
    const p = `system.${i}`
    if (blockType(value[i], p) !== 'text') invalid(`${p}.type`, "system blocks must be of type 'text'")
    const b = value[i] as Obj
    parts.push(withCache({ type: 'text', text: text(b, p) }, b))
  }
  if (!parts.length) return null
  // One block without cache_control is plain text; several (or a cache breakpoint) stay parts.
  if (parts.length === 1 && parts[0]!.cache_control === undefined) return { role: 'system', content: parts[0]!.text as string }
  return { role: 'system', content: parts }
}

// ---------------------------------------------------------------------------------------------------------------
// tools

/** Anthropic's user_location -> OpenAI's web_search_options.user_location. */
function webSearchOptions(tool: Obj): Obj {
  const opts: Obj = {}
  const loc = tool.user_location
  if (isObj(loc)) {
    const approximate: Obj = {}
    for (const k of ['city', 'region', 'country', 'timezone']) if (typeof loc[k] === 'string') approximate[k] = loc[k]
    opts.user_location = { type: 'approximate', approximate }
  }
  // max_uses (a count of searches) has no OpenAI field: search_context_size sizes the retrieved context instead.
  return opts
}

function mapTools(value: unknown, req: ChatRequest): void {
  if (value === undefined || value === null) return
  if (!Array.isArray(value)) invalid('tools', 'must be an array')
  const tools: ChatTool[] = []
  for (let i = 0; i < value.length; i++) {
    const t = value[i]
    const path = `tools.${i}`
    if (!isObj(t)) invalid(path, 'must be an object')
    const type = t.type
    if (type === undefined || type === null || type === 'custom') {
      if (typeof t.name !== 'string' || !t.name) invalid(`${path}.name`, 'must be a non-empty string')
      if (!isObj(t.input_schema)) invalid(`${path}.input_schema`, 'must be a JSON schema object')
      const fn: ChatTool['function'] = { name: t.name, parameters: t.input_schema }
      if (typeof t.description === 'string') fn.description = t.description
      tools.push({ type: 'function', function: fn })
    } else if (typeof type === 'string' && type.startsWith('web_search_')) {
      req.web_search_options = webSearchOptions(t)
    } else {
      unsupported(path, `only an Anthropic deployment runs server tool '${String(type)}'`)
    }
  }
  if (tools.length) req.tools = tools
}

function mapToolChoice(value: unknown, req: ChatRequest): void {
  if (value === undefined || value === null) return
  if (!isObj(value)) invalid('tool_choice', 'must be an object')
  // OpenAI refuses tool_choice and parallel_tool_calls without function tools (a request with only web search).
  if (!req.tools?.length) return
  switch (value.type) {
    case 'auto': req.tool_choice = 'auto'; break
    case 'any': req.tool_choice = 'required'; break
    case 'none': req.tool_choice = 'none'; return
    case 'tool':
      if (typeof value.name !== 'string' || !value.name) invalid('tool_choice.name', 'must be a non-empty string')
      req.tool_choice = { type: 'function', function: { name: value.name } }
      break
    default:
      invalid('tool_choice.type', `must be auto, any, tool or none, got ${JSON.stringify(value.type)}`)
  }
  if (value.disable_parallel_tool_use === true) req.parallel_tool_calls = false
}

/** Anthropic structured outputs ({type: 'json_schema', schema}) -> OpenAI response_format. */
function responseFormat(value: unknown, param: string): ChatRequest['response_format'] {
  if (!isObj(value)) invalid(param, 'must be an object')
  if (value.type !== 'json_schema' || !isObj(value.schema)) invalid(param, "must be {type: 'json_schema', schema: {...}}")
  return { type: 'json_schema', json_schema: { name: 'structured_output', schema: value.schema } }
}

// ---------------------------------------------------------------------------------------------------------------
// sampling parameters

function numberIn(body: Obj, key: string, min: number, max: number): number | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) invalid(key, `must be a number from ${min} to ${max}`)
  return v
}

/**
 * Validate an Anthropic Messages request body and translate it to a ChatRequest. Throws
 * gatewayError('GW_ERR_VALIDATION', message, { param }) for bad input (GW_ERR_UNSUPPORTED_PARAM for Anthropic-only
 * features such as server tools); the message starts with the offending path.
 */
export function messagesToChat(body: Record<string, unknown>): ChatRequest {
  if (typeof body.model !== 'string' || !body.model) invalid('model', 'must be a non-empty string')
  const maxTokens = body.max_tokens
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) invalid('max_tokens', 'must be a positive integer')
  const messages = chatMessages(body.messages)
  const system = systemMessage(body.system)
  if (system) messages.unshift(system)
  const req: ChatRequest = { model: body.model, messages, max_tokens: maxTokens }

  const temperature = numberIn(body, 'temperature', 0, 1)
  if (temperature !== undefined) req.temperature = temperature
  const topP = numberIn(body, 'top_p', 0, 1)
  if (topP !== undefined) req.top_p = topP
  if (body.top_k !== undefined && body.top_k !== null) {
    if (typeof body.top_k !== 'number' || !Number.isInteger(body.top_k) || body.top_k < 0) invalid('top_k', 'must be a non-negative integer')
    req.top_k = body.top_k
  }
  const stop = body.stop_sequences
  if (stop !== undefined && stop !== null) {
    if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) invalid('stop_sequences', 'must be an array of strings')
    if (stop.length) req.stop = stop as string[]
  }
  if (body.stream !== undefined && body.stream !== null) {
    if (typeof body.stream !== 'boolean') invalid('stream', 'must be a boolean')
    req.stream = body.stream
  }
  const md = body.metadata
  if (md !== undefined && md !== null) {
    if (!isObj(md)) invalid('metadata', 'must be an object')
    if (md.user_id !== undefined && md.user_id !== null && typeof md.user_id !== 'string') invalid('metadata.user_id', 'must be a string')
    if (typeof md.user_id === 'string' && md.user_id) req.user = md.user_id
  }
  if (body.thinking !== undefined && body.thinking !== null) {
    if (!isObj(body.thinking) || typeof body.thinking.type !== 'string') invalid('thinking', 'must be an object with a type')
    // Kept as sent: LiteLLM accepts `thinking` as a cross-provider parameter and each provider's map decides.
    req.thinking = body.thinking
  }
  mapTools(body.tools, req)
  mapToolChoice(body.tool_choice, req)

  if (body.output_format !== undefined && body.output_format !== null) req.response_format = responseFormat(body.output_format, 'output_format')
  const oc = body.output_config
  if (isObj(oc)) {
    const { format, ...rest } = oc
    if (format !== undefined && format !== null && !req.response_format) req.response_format = responseFormat(format, 'output_config.format')
    if (Object.keys(rest).length) req.output_config = rest
  } else if (oc !== undefined && oc !== null) invalid('output_config', 'must be an object')

  for (const k in body) if (!MAPPED.has(k) && !DROPPED.has(k)) req[k] = body[k]
  return req
}
