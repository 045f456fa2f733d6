/**
 * OpenAI Responses API request (`POST /v1/responses`, CreateResponse in ../shared/data/openai/openapi.yaml) -> the
 * gateway's ChatRequest, so any chat model can serve it (LiteLLM's "responses bridge" for chat-only models).
 *
 * Two steps, because the wiring needs this turn's items on their own (it stores them with the reply as the next
 * turn's history): `inputItems` validates the body and normalizes `input` to items; `responsesToChat` builds the chat
 * request from history + those items. Only the fields translated here are validated; Responses-only fields (store,
 * previous_response_id, include, truncation, background, ...) are the wiring's business and are never copied.
 *
 * `type: "mcp"` tools pass into the chat request as they are, for the MCP plugin to replace with its servers' tools
 * (plugins/mcp/inject.ts checks them in full). The `mcp_call` items of an earlier reply become a tool call and its
 * result; `mcp_list_tools` items are kept for the record only.
 */
import { gatewayError } from '../errors.js'
import type { ChatMessage, ChatRequest } from '../openai/types.js'

/** An input or output item: message, function_call, function_call_output, reasoning ... */
export type ResponseItem = Record<string, unknown>

type Obj = Record<string, unknown>

const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer'])
/** Text part types; both are accepted for every role (EasyInputMessage allows input_text on assistant turns). */
const TEXT_PARTS = new Set(['input_text', 'output_text'])
const WEB_SEARCH_TOOLS = new Set(['web_search', 'web_search_preview', 'web_search_2025_08_26', 'web_search_preview_2025_03_11'])
const TOOL_CHOICE_MODES = new Set(['auto', 'none', 'required'])

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function invalid(message: string, param: string): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

function unsupported(message: string, param: string): never {
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', message, { param })
}

function str(v: unknown): v is string {
  return typeof v === 'string'
}

/** Null and absent mean the same in CreateResponse: the field's default. */
function given(v: unknown): boolean {
  return v !== undefined && v !== null
}

// ---------------------------------------------------------------------------------------------------------------
// Validation and normalization of this turn's input

/**
 * Validate a CreateResponse body's fields that are translated, and return this turn's input as normalized items
 * (string message content becomes parts: input_text for user/system/developer, output_text for assistant).
 */
export function inputItems(body: Record<string, unknown>): ResponseItem[] {
  checkBody(body)
  const input = body.input
  if (str(input)) return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: input }] }]
  if (!Array.isArray(input)) invalid(`Invalid 'input': expected a string or an array of input items.`, 'input')
  const out: ResponseItem[] = new Array(input.length)
  for (let i = 0; i < input.length; i++) out[i] = checkItem(input[i], `input.${i}`)
  return out
}

function checkItem(item: unknown, at: string): ResponseItem {
  if (!isObj(item)) invalid(`Invalid '${at}': expected an object.`, at)
  // EasyInputMessage may leave out `type`; a bare {role, content} is a message.
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined)
  switch (type) {
    case 'message':
      return checkMessage(item, at)
    case 'function_call':
      for (const k of ['call_id', 'name', 'arguments'] as const) {
        if (!str(item[k]) || (k !== 'arguments' && item[k] === '')) invalid(`Invalid '${at}.${k}': expected a string.`, `${at}.${k}`)
      }
      return item
    case 'function_call_output':
      if (!str(item.call_id) || item.call_id === '') invalid(`Invalid '${at}.call_id': expected a string.`, `${at}.call_id`)
      if (Array.isArray(item.output)) checkParts(item.output, 'user', `${at}.output`)
      else if (!str(item.output)) invalid(`Invalid '${at}.output': expected a string or an array of content parts.`, `${at}.output`)
      return item
    case 'reasoning':
    case 'mcp_list_tools':
      // Kept so a client replaying its output verbatim is accepted; chat models have no use for them.
      return item
    case 'mcp_call':
      for (const k of ['id', 'server_label', 'name', 'arguments'] as const) {
        if (!str(item[k]) || (k !== 'arguments' && item[k] === '')) invalid(`Invalid '${at}.${k}': expected a string.`, `${at}.${k}`)
      }
      if (given(item.output) && !str(item.output)) invalid(`Invalid '${at}.output': expected a string.`, `${at}.output`)
      return item
    case 'item_reference':
      return unsupported(`Item references are not supported; send the referenced items themselves.`, at)
    default:
      return unsupported(`Input items of type '${String(type)}' are not supported on this model.`, `${at}.type`)
  }
}

function checkMessage(item: Obj, at: string): ResponseItem {
  const role = item.role
  if (!str(role) || !MESSAGE_ROLES.has(role)) {
    invalid(`Invalid '${at}.role': expected one of user, assistant, system, developer.`, `${at}.role`)
  }
  const content = item.content
  if (str(content)) {
    const part = { type: role === 'assistant' ? 'output_text' : 'input_text', text: content }
    return { ...item, type: 'message', content: [part] }
  }
  if (!Array.isArray(content)) invalid(`Invalid '${at}.content': expected a string or an array of content parts.`, `${at}.content`)
  checkParts(content, role, `${at}.content`)
  return item.type === 'message' ? item : { ...item, type: 'message' }
}

function checkParts(parts: unknown[], role: string, at: string): void {
  for (let j = 0; j < parts.length; j++) {
    const p = parts[j]
    const pat = `${at}.${j}`
    if (!isObj(p)) invalid(`Invalid '${pat}': expected an object.`, pat)
    const type = p.type
    if (str(type) && TEXT_PARTS.has(type)) {
      if (!str(p.text)) invalid(`Invalid '${pat}.text': expected a string.`, `${pat}.text`)
    } else if (type === 'refusal' && role === 'assistant') {
      if (!str(p.refusal)) invalid(`Invalid '${pat}.refusal': expected a string.`, `${pat}.refusal`)
    } else if (type === 'input_image') {
      if (!str(p.image_url) && !str(p.file_id)) invalid(`Invalid '${pat}': an input_image needs image_url or file_id.`, pat)
    } else if (type === 'input_file') {
      if (!str(p.file_data) && !str(p.file_id)) {
        // Chat's file part carries inline data or a file id; there is no URL form to forward file_url to.
        if (str(p.file_url)) unsupported(`input_file with file_url is not supported on this model; send file_data.`, `${pat}.file_url`)
        invalid(`Invalid '${pat}': an input_file needs file_data or file_id.`, pat)
      }
    } else {
      unsupported(`Content parts of type '${String(type)}' are not supported here.`, `${pat}.type`)
    }
  }
}

/** The translated top-level fields; a wrong type here would otherwise surface as a confusing upstream error. */
function checkBody(b: Obj): void {
  if (!str(b.model) || b.model === '') invalid(`Missing required parameter: 'model'.`, 'model')
  if (b.input === undefined) invalid(`Missing required parameter: 'input'.`, 'input')
  if (given(b.instructions) && !str(b.instructions)) invalid(`Invalid 'instructions': expected a string.`, 'instructions')
  for (const k of ['temperature', 'top_p'] as const) {
    if (given(b[k]) && typeof b[k] !== 'number') invalid(`Invalid '${k}': expected a number.`, k)
  }
  const mot = b.max_output_tokens
  if (given(mot) && (!Number.isInteger(mot) || (mot as number) < 1)) invalid(`Invalid 'max_output_tokens': expected a positive integer.`, 'max_output_tokens')
  for (const k of ['stream', 'parallel_tool_calls'] as const) {
    if (given(b[k]) && typeof b[k] !== 'boolean') invalid(`Invalid '${k}': expected a boolean.`, k)
  }
  for (const k of ['user', 'safety_identifier'] as const) {
    if (given(b[k]) && !str(b[k])) invalid(`Invalid '${k}': expected a string.`, k)
  }
  if (given(b.reasoning) && !isObj(b.reasoning)) invalid(`Invalid 'reasoning': expected an object.`, 'reasoning')
  if (given(b.tools)) {
    if (!Array.isArray(b.tools)) invalid(`Invalid 'tools': expected an array.`, 'tools')
    for (let i = 0; i < b.tools.length; i++) checkTool(b.tools[i], `tools.${i}`)
  }
  if (given(b.tool_choice)) toolChoice(b.tool_choice)
  if (given(b.text)) {
    if (!isObj(b.text)) invalid(`Invalid 'text': expected an object.`, 'text')
    if (given(b.text.format)) responseFormat(b.text.format)
  }
}

function checkTool(t: unknown, at: string): void {
  if (!isObj(t)) invalid(`Invalid '${at}': expected an object.`, at)
  if (t.type === 'function') {
    if (!str(t.name) || t.name === '') invalid(`Missing required parameter: '${at}.name'.`, `${at}.name`)
    if (given(t.parameters) && !isObj(t.parameters)) invalid(`Invalid '${at}.parameters': expected an object.`, `${at}.parameters`)
    return
  }
  if (str(t.type) && WEB_SEARCH_TOOLS.has(t.type)) return
  if (t.type === 'mcp') return checkMcpTool(t, at)
  unsupported(`Tools of type '${String(t.type)}' are not supported on this model.`, at)
}

/** An MCPTool's fields, by type; which servers and tools they name is the MCP plugin's to check. */
function checkMcpTool(t: Obj, at: string): void {
  if (!str(t.server_label) || t.server_label === '') invalid(`Missing required parameter: '${at}.server_label'.`, `${at}.server_label`)
  if (given(t.server_url) && !str(t.server_url)) invalid(`Invalid '${at}.server_url': expected a string.`, `${at}.server_url`)
  const allowed = t.allowed_tools
  if (given(allowed) && !(Array.isArray(allowed) ? allowed.every(str) : isObj(allowed))) {
    invalid(`Invalid '${at}.allowed_tools': expected an array of tool names or a tool filter.`, `${at}.allowed_tools`)
  }
  const approval = t.require_approval
  if (given(approval) && !(approval === 'always' || approval === 'never' || isObj(approval))) {
    invalid(`Invalid '${at}.require_approval': expected "always", "never" or a tool filter object.`, `${at}.require_approval`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Translation

/** The ChatRequest for a turn: instructions, then history + this turn's items, then the mapped parameters. */
export function responsesToChat(body: Record<string, unknown>, history: readonly ResponseItem[], input: readonly ResponseItem[]): ChatRequest {
  const messages: ChatMessage[] = []
  // Instructions belong to this request only: OpenAI does not carry them over from previous_response_id.
  if (str(body.instructions) && body.instructions !== '') messages.push({ role: 'system', content: body.instructions })
  for (let i = 0; i < history.length; i++) addItem(messages, history[i]!)
  for (let i = 0; i < input.length; i++) addItem(messages, input[i]!)

  const req: ChatRequest = { model: body.model as string, messages }
  if (body.stream === true) req.stream = true
  if (typeof body.temperature === 'number') req.temperature = body.temperature
  if (typeof body.top_p === 'number') req.top_p = body.top_p
  // max_tokens, not max_completion_tokens: every provider param map reads max_tokens and translates it.
  if (typeof body.max_output_tokens === 'number') req.max_tokens = body.max_output_tokens
  const user = str(body.safety_identifier) ? body.safety_identifier : body.user
  if (str(user)) req.user = user
  if (isObj(body.reasoning) && str(body.reasoning.effort)) req.reasoning_effort = body.reasoning.effort
  if (isObj(body.text)) {
    if (given(body.text.format)) {
      const rf = responseFormat(body.text.format)
      if (rf) req.response_format = rf
    }
    if (str(body.text.verbosity)) req.verbosity = body.text.verbosity
  }
  if (Array.isArray(body.tools)) addTools(req, body.tools)
  if (given(body.tool_choice)) req.tool_choice = toolChoice(body.tool_choice)
  // OpenAI's chat endpoint rejects parallel_tool_calls without tools.
  if (typeof body.parallel_tool_calls === 'boolean' && req.tools) req.parallel_tool_calls = body.parallel_tool_calls
  return req
}

function addItem(messages: ChatMessage[], item: ResponseItem): void {
  const last = messages.length ? messages[messages.length - 1]! : null
  switch (item.type) {
    case 'message': {
      const content = chatContent(item.content as Obj[])
      // The assistant's text of a turn that also called tools: one chat message carries both (a Response lists
      // its message item next to its function_call items, in either order).
      if (item.role === 'assistant' && last?.role === 'assistant' && last.tool_calls && !last.content) {
        last.content = content
        return
      }
      messages.push({ role: item.role as ChatMessage['role'], content })
      return
    }
    case 'function_call': {
      const call = { id: item.call_id as string, type: 'function' as const, function: { name: item.name as string, arguments: item.arguments as string } }
      // Consecutive calls, and calls right after the assistant's text, are one assistant message with tool_calls.
      if (last?.role === 'assistant') (last.tool_calls ??= []).push(call)
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] })
      return
    }
    case 'function_call_output':
      messages.push({ role: 'tool', tool_call_id: item.call_id as string, content: toolOutput(item.output) })
      return
    case 'mcp_call': {
      // The call as the model made it (`<server>-<tool>`, the MCP plugin's default naming), then its result.
      const name = `${item.server_label as string}-${item.name as string}`.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64)
      const id = item.id as string
      const call = { id, type: 'function' as const, function: { name, arguments: item.arguments as string } }
      // Right after the assistant's text of the same turn: one message carries both.
      if (last?.role === 'assistant' && !last.tool_calls) last.tool_calls = [call]
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] })
      const content = str(item.output) ? item.output : given(item.error) ? `Error: ${mcpErrorText(item.error)}` : ''
      messages.push({ role: 'tool', tool_call_id: id, content })
      return
    }
    default:
      // reasoning (chat models cannot take it back) and items the wiring keeps for its own use.
      return
  }
}

/** An mcp_call's error: a string, or one of the spec's MCPToolCallError objects (a message, or content parts). */
function mcpErrorText(e: unknown): string {
  if (str(e)) return e
  if (isObj(e) && str(e.message)) return e.message
  if (isObj(e) && Array.isArray(e.content)) return e.content.map((p) => (isObj(p) && str(p.text) ? p.text : '')).join('\n')
  return JSON.stringify(e)
}

/** Responses parts -> chat parts; a lone text part becomes a plain string, which every provider accepts. */
function chatContent(parts: readonly Obj[]): string | Obj[] {
  if (parts.length === 1 && TEXT_PARTS.has(parts[0]!.type as string)) return parts[0]!.text as string
  const out: Obj[] = new Array(parts.length)
  for (let i = 0; i < parts.length; i++) out[i] = chatPart(parts[i]!)
  return out
}

function chatPart(p: Obj): Obj {
  switch (p.type) {
    case 'input_image': {
      if (!str(p.image_url)) return { type: 'file', file: { file_id: p.file_id } }
      const image: Obj = { url: p.image_url }
      if (str(p.detail)) image.detail = p.detail
      return { type: 'image_url', image_url: image }
    }
    case 'input_file': {
      const file: Obj = {}
      if (str(p.file_data)) file.file_data = p.file_data
      if (str(p.file_id)) file.file_id = p.file_id
      if (str(p.filename)) file.filename = p.filename
      return { type: 'file', file }
    }
    case 'refusal':
      return { type: 'text', text: p.refusal }
    default:
      return { type: 'text', text: p.text }
  }
}

/** A tool message's content: text-only output joins to a string (chat tool messages take text parts only). */
function toolOutput(output: unknown): string | Obj[] {
  if (!Array.isArray(output)) return output as string
  const parts = output as Obj[]
  if (parts.every((p) => TEXT_PARTS.has(p.type as string))) return parts.map((p) => p.text as string).join('')
  return parts.map(chatPart)
}

function addTools(req: ChatRequest, tools: readonly unknown[]): void {
  const fns: NonNullable<ChatRequest['tools']> = []
  for (const t of tools as Obj[]) {
    if (t.type === 'function') {
      const fn: Obj = { name: t.name }
      if (str(t.description)) fn.description = t.description
      if (isObj(t.parameters)) fn.parameters = t.parameters
      if (typeof t.strict === 'boolean') fn.strict = t.strict
      fns.push({ type: 'function', function: fn as { name: string } })
    } else if (t.type === 'mcp') {
      fns.push(t as unknown as (typeof fns)[number])
    } else {
      req.web_search_options = webSearchOptions(t)
    }
  }
  if (fns.length) req.tools = fns
}

/** The web search tool's options in chat's `web_search_options` shape (user_location is nested there). */
function webSearchOptions(t: Obj): Obj {
  const o: Obj = {}
  if (str(t.search_context_size)) o.search_context_size = t.search_context_size
  if (isObj(t.user_location)) {
    const { type: _type, ...approximate } = t.user_location
    o.user_location = { type: 'approximate', approximate }
  }
  return o
}

function toolChoice(v: unknown): unknown {
  if (str(v)) {
    if (TOOL_CHOICE_MODES.has(v)) return v
    return invalid(`Invalid 'tool_choice': expected one of auto, none, required or a function choice.`, 'tool_choice')
  }
  if (isObj(v) && v.type === 'function') {
    if (!str(v.name) || v.name === '') invalid(`Missing required parameter: 'tool_choice.name'.`, 'tool_choice.name')
    return { type: 'function', function: { name: v.name } }
  }
  return unsupported(`This tool_choice is not supported on this model.`, 'tool_choice')
}

/** text.format -> response_format; `text` (the default) -> none. */
function responseFormat(f: unknown): ChatRequest['response_format'] | null {
  if (!isObj(f)) return invalid(`Invalid 'text.format': expected an object.`, 'text.format')
  if (f.type === 'text') return null
  if (f.type === 'json_object') return { type: 'json_object' }
  if (f.type === 'json_schema') {
    if (!str(f.name) || f.name === '') invalid(`Missing required parameter: 'text.format.name'.`, 'text.format.name')
    if (!isObj(f.schema)) invalid(`Missing required parameter: 'text.format.schema'.`, 'text.format.schema')
    const js: Obj = { name: f.name, schema: f.schema }
    if (typeof f.strict === 'boolean') js.strict = f.strict
    if (str(f.description)) js.description = f.description
    return { type: 'json_schema', json_schema: js }
  }
  return invalid(`Invalid 'text.format.type': expected text, json_object or json_schema.`, 'text.format.type')
}
