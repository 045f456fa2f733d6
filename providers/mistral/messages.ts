/**
 * OpenAI chat messages -> Mistral's (shared/data/mistral/openapi.json: SystemMessage, UserMessage,
 * AssistantMessage, ToolMessage, ContentChunk). Mistral's message objects are closed (`additionalProperties:
 * false`, a 422 "extra_forbidden" otherwise), so each is rebuilt with only the fields its role has: `name` survives
 * only on tool messages (as LiteLLM's _handle_name_in_message does), `refusal` and `reasoning_content` are dropped,
 * `developer` becomes `system`.
 */
import { gatewayError } from '../../core/errors.js'

type Obj = Record<string, unknown>

function invalid(message: string, param: string): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

/**
 * OpenAI content parts -> Mistral content chunks. Text and images map one to one; audio (`input_audio.data`) and
 * files (an uploaded `file_id`, or inline `file_data` as a document URL) change shape; any other part is passed on
 * as written, since Mistral has chunk kinds OpenAI lacks (document_url, reference) that a client may send on purpose.
 */
function part(p: unknown, param: string): unknown {
  if (!p || typeof p !== 'object') invalid(`Invalid '${param}': expected a content part object.`, param)
  const o = p as Obj
  switch (o.type) {
    case 'text':
      return { type: 'text', text: typeof o.text === 'string' ? o.text : '' }
    case 'image_url': {
      const iu = o.image_url
      if (typeof iu === 'string') return { type: 'image_url', image_url: iu }
      const url = iu && typeof iu === 'object' ? (iu as Obj).url : undefined
      if (typeof url !== 'string') invalid(`Missing image URL in '${param}'.`, `${param}.image_url.url`)
      const detail = (iu as Obj).detail
      return { type: 'image_url', image_url: typeof detail === 'string' ? { url, detail } : { url } }
    }
    case 'input_audio': {
      const a = o.input_audio
      const data = typeof a === 'string' ? a : a && typeof a === 'object' ? (a as Obj).data : undefined
      if (typeof data !== 'string') invalid(`Missing audio data in '${param}'.`, `${param}.input_audio.data`)
      return { type: 'input_audio', input_audio: data }
    }
    case 'file': {
      const f = (o.file ?? {}) as Obj
      if (typeof f.file_id === 'string') return { type: 'file', file_id: f.file_id }
      if (typeof f.file_data === 'string') {
        return typeof f.filename === 'string'
          ? { type: 'document_url', document_url: f.file_data, document_name: f.filename }
          : { type: 'document_url', document_url: f.file_data }
      }
      return invalid(`Invalid '${param}': a file part needs file_id or file_data.`, `${param}.file`)
    }
    default:
      return p
  }
}

function content(c: unknown, i: number): unknown {
  if (c == null || typeof c === 'string') return c ?? null
  if (!Array.isArray(c)) invalid(`Invalid 'messages[${i}].content': expected a string or an array of parts.`, `messages[${i}].content`)
  return c.map((p, j) => part(p, `messages[${i}].content[${j}]`))
}

/** Mistral's ToolCall: id, type, function {name, arguments}; arguments stay OpenAI's JSON string (the spec takes it). */
function toolCalls(raw: unknown, i: number): Obj[] {
  if (!Array.isArray(raw)) invalid(`Invalid 'messages[${i}].tool_calls': expected an array.`, `messages[${i}].tool_calls`)
  return raw.map((tc: Obj | null, k) => {
    const fn = tc?.function as Obj | undefined
    if (!fn || typeof fn.name !== 'string') invalid(`Invalid 'messages[${i}].tool_calls[${k}]': a function call needs a name.`, `messages[${i}].tool_calls[${k}].function.name`)
    const out: Obj = { type: 'function', function: { name: fn.name, arguments: fn.arguments ?? '{}' } }
    if (typeof tc!.id === 'string') out.id = tc!.id
    return out
  })
}

export function toMistralMessages(value: unknown): Obj[] {
  if (!Array.isArray(value)) invalid(`Invalid 'messages': expected an array.`, 'messages')
  const out: Obj[] = new Array(value.length)
  for (let i = 0; i < value.length; i++) {
    const m = value[i] as Obj | null
    if (!m || typeof m !== 'object' || typeof m.role !== 'string') invalid(`Invalid 'messages[${i}]': a message needs a role.`, `messages[${i}].role`)
    switch (m.role) {
      case 'system':
      case 'developer':
        // SystemMessage.content is a string or text chunks; it may not be null.
        out[i] = { role: 'system', content: content(m.content, i) ?? '' }
        break
      case 'user':
        out[i] = { role: 'user', content: content(m.content, i) ?? '' }
        break
      case 'assistant': {
        const a: Obj = { role: 'assistant', content: content(m.content, i) }
        if (m.tool_calls != null) a.tool_calls = toolCalls(m.tool_calls, i)
        if (typeof m.prefix === 'boolean') a.prefix = m.prefix // Mistral's own: continue from this message
        out[i] = a
        break
      }
      case 'tool':
      case 'function': {
        // The legacy `function` role is a tool result identified by name only.
        const t: Obj = { role: 'tool', content: content(m.content, i) ?? '' }
        if (typeof m.tool_call_id === 'string') t.tool_call_id = m.tool_call_id
        if (typeof m.name === 'string' && m.name.trim()) t.name = m.name
        out[i] = t
        break
      }
      default:
        invalid(`Invalid 'messages[${i}].role': '${m.role}'.`, `messages[${i}].role`)
    }
  }
  return out
}
