/**
 * OpenAI chat messages -> Ollama's `messages` (shared/data/ollama/api.md, "Generate a chat completion"; schema
 * ChatMessage in openapi.yaml). Ollama's message is flat: `content` is one string, images ride beside it as bare
 * base64 in `images`, tool calls carry their arguments as a JSON OBJECT (not OpenAI's JSON string), and a tool
 * result names its tool in `tool_name` (Ollama has no call ids).
 */
import { gatewayError } from '../../core/errors.js'

export interface OllamaToolCall {
  function: { name: string; arguments: Record<string, unknown> }
}

export interface OllamaMessage {
  role: string
  content: string
  images?: string[]
  tool_calls?: OllamaToolCall[]
  tool_name?: string
  thinking?: string
}

type Part = Record<string, unknown>

function invalid(message: string, param: string): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

/**
 * An image part's URL as Ollama takes it: the base64 payload of a data URL (LiteLLM strips the `data:...;base64,`
 * prefix the same way), or bare base64 as given. Ollama cannot fetch a remote URL, and the gateway does not fetch
 * on a client's behalf (that would let a request make it call any host), so an http(s) URL is a 400.
 */
function imageData(part: Part, param: string): string {
  const iu = part.image_url
  const url = typeof iu === 'string' ? iu : iu && typeof iu === 'object' ? (iu as { url?: unknown }).url : undefined
  if (typeof url !== 'string' || url === '') invalid(`Missing image URL in '${param}'.`, param)
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',')
    if (comma === -1) invalid(`Malformed data URL in '${param}'.`, param)
    return url.slice(comma + 1)
  }
  if (url.startsWith('http://') || url.startsWith('https://')) {
    invalid(`Ollama takes images inline only: send '${param}' as a data: URL (base64), not a web address.`, param)
  }
  return url
}

/**
 * Text parts concatenated (as LiteLLM's convert_content_list_to_str does), image parts into `images`. Other part
 * kinds (audio, files) have no place in an Ollama message: a 400 rather than silently losing part of the prompt.
 */
function flatten(content: unknown, i: number, out: OllamaMessage): void {
  if (content == null) return
  if (typeof content === 'string') {
    out.content = content
    return
  }
  if (!Array.isArray(content)) invalid(`Invalid 'messages[${i}].content': expected a string or an array of parts.`, `messages[${i}].content`)
  let text = ''
  for (let j = 0; j < content.length; j++) {
    const part = content[j] as Part | null
    const param = `messages[${i}].content[${j}]`
    const type = part && typeof part === 'object' ? part.type : undefined
    if (type === 'text') text += typeof part!.text === 'string' ? part!.text : ''
    else if (type === 'image_url') (out.images ??= []).push(imageData(part!, param))
    else invalid(`Ollama does not take content parts of type '${String(type)}' (in '${param}'); send text or image_url parts.`, `${param}.type`)
  }
  out.content = text
}

/** OpenAI's JSON-string arguments -> the object Ollama expects. */
function argumentsObject(raw: unknown, param: string): Record<string, unknown> {
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) return raw as Record<string, unknown>
  if (raw == null || raw === '') return {}
  if (typeof raw !== 'string') invalid(`Invalid '${param}': expected a JSON string.`, param)
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch {
    invalid(`Invalid '${param}': not valid JSON; Ollama needs tool-call arguments as a JSON object.`, param)
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) invalid(`Invalid '${param}': Ollama needs tool-call arguments as a JSON object.`, param)
  return v as Record<string, unknown>
}

function toolCalls(raw: unknown, i: number, names: Map<string, string>): OllamaToolCall[] {
  if (!Array.isArray(raw)) invalid(`Invalid 'messages[${i}].tool_calls': expected an array.`, `messages[${i}].tool_calls`)
  const out: OllamaToolCall[] = []
  for (let k = 0; k < raw.length; k++) {
    const tc = raw[k] as { id?: unknown; function?: { name?: unknown; arguments?: unknown } } | null
    const fn = tc?.function
    const param = `messages[${i}].tool_calls[${k}]`
    if (!fn || typeof fn.name !== 'string') invalid(`Invalid '${param}': a function call needs a name.`, `${param}.function.name`)
    if (typeof tc!.id === 'string') names.set(tc!.id, fn.name)
    out.push({ function: { name: fn.name, arguments: argumentsObject(fn.arguments, `${param}.function.arguments`) } })
  }
  return out
}

export function toOllamaMessages(value: unknown): OllamaMessage[] {
  if (!Array.isArray(value)) invalid(`Invalid 'messages': expected an array.`, 'messages')
  // Tool results name their tool through the id of the call they answer; Ollama wants the name itself.
  const names = new Map<string, string>()
  const out: OllamaMessage[] = new Array(value.length)
  for (let i = 0; i < value.length; i++) {
    const m = value[i] as Record<string, unknown> | null
    if (!m || typeof m !== 'object' || typeof m.role !== 'string') invalid(`Invalid 'messages[${i}]': a message needs a role.`, `messages[${i}].role`)
    const role = m.role
    // Ollama knows system, user, assistant and tool: `developer` is OpenAI's newer name for system, and the legacy
    // `function` role is a tool result under another name.
    const msg: OllamaMessage = { role: role === 'developer' ? 'system' : role === 'function' ? 'tool' : role, content: '' }
    flatten(m.content, i, msg)
    if (role === 'assistant') {
      if (m.tool_calls != null) msg.tool_calls = toolCalls(m.tool_calls, i, names)
      // A thinking model's earlier reasoning, sent back as LiteLLM returns it.
      if (typeof m.reasoning_content === 'string' && m.reasoning_content) msg.thinking = m.reasoning_content
    } else if (role === 'tool' || role === 'function') {
      const name = typeof m.name === 'string' && m.name ? m.name : typeof m.tool_call_id === 'string' ? names.get(m.tool_call_id) : undefined
      if (name) msg.tool_name = name
    }
    out[i] = msg
  }
  return out
}
