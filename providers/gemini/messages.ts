/**
 * OpenAI chat messages -> Gemini `systemInstruction` + `contents` (roles `user` / `model`), as LiteLLM maps them
 * (litellm/llms/vertex_ai/gemini/transformation.py, `_gemini_convert_messages_with_history`):
 * - system and developer messages, wherever they sit, become `systemInstruction` (text parts);
 * - user content parts: text -> `{text}`, `image_url` / `input_audio` / `file` -> `inlineData` for data URLs and
 *   base64, `fileData` for http(s) and gs:// URIs (mime type from `format`, else from the file extension);
 * - assistant text and `tool_calls` -> one `model` turn with `functionCall` parts (arguments parsed back to an
 *   object; the Gemini thought signature travels inside the tool-call id, see ids.ts);
 * - tool (and legacy function) results -> `functionResponse` parts, named after the call they answer, grouped in
 *   one `user` turn; a JSON-object result is sent as the response object, anything else as `{content: text}`.
 * Consecutive turns of the same role are merged (Gemini wants them alternating), except that a tool-result turn is
 * never merged with ordinary user text.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatMessage } from '../../core/openai/types.js'
import { splitToolCallId } from './ids.js'

export type Part = Record<string, unknown>
export interface Content {
  role: 'user' | 'model'
  parts: Part[]
}

/** File extension -> mime type, for URIs given without `format` (Gemini needs the type of a fileData part). */
const MIME_BY_EXT: Readonly<Record<string, string>> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif', heic: 'image/heic',
  heif: 'image/heif', pdf: 'application/pdf', txt: 'text/plain', mp3: 'audio/mp3', wav: 'audio/wav', flac: 'audio/flac',
  ogg: 'audio/ogg', aac: 'audio/aac', mp4: 'video/mp4', mov: 'video/mov', webm: 'video/webm', mpeg: 'video/mpeg',
}

/** `systemInstruction` from every system / developer message; undefined when there is none. */
export function systemInstruction(messages: readonly ChatMessage[]): { parts: Part[] } | undefined {
  let parts: Part[] | undefined
  for (const m of messages) {
    if (m.role !== 'system' && m.role !== 'developer') continue
    for (const text of texts(m.content)) (parts ??= []).push({ text })
  }
  return parts && { parts }
}

export function toContents(messages: readonly ChatMessage[]): Content[] {
  const acc: Turns = { out: [], lastIsResults: false }
  /** tool_call id -> function name, so a tool result can name the call it answers. */
  const callNames = new Map<string, string>()
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!
    switch (m.role) {
      case 'system':
      case 'developer':
        break
      case 'user':
        pushTurn(acc, 'user', userParts(m.content, i), false)
        break
      case 'assistant':
        pushTurn(acc, 'model', assistantParts(m, i, callNames), false)
        break
      case 'tool':
      case 'function':
        pushTurn(acc, 'user', [functionResponse(m, i, callNames)], true)
        break
      default:
        throw gatewayError('GW_ERR_VALIDATION', `Invalid 'messages[${i}].role': '${String(m.role)}' is not a chat role.`, { param: `messages[${i}].role` })
    }
  }
  return acc.out
}

interface Turns {
  out: Content[]
  /** Whether the last content holds tool results (kept apart from ordinary user text). */
  lastIsResults: boolean
}

/** Append a turn, merged into the previous one when it has the same role and kind. */
function pushTurn(acc: Turns, role: Content['role'], parts: Part[], results: boolean): void {
  if (!parts.length) return
  const last = acc.out[acc.out.length - 1]
  if (last && last.role === role && acc.lastIsResults === results) last.parts.push(...parts)
  else acc.out.push({ role, parts })
  acc.lastIsResults = results
}

function userParts(content: ChatMessage['content'], i: number): Part[] {
  if (typeof content === 'string') return content ? [{ text: content }] : []
  if (!Array.isArray(content)) return []
  const parts: Part[] = []
  for (let j = 0; j < content.length; j++) {
    const c = content[j]!
    const param = `messages[${i}].content[${j}]`
    switch (c.type) {
      case 'text':
        if (typeof c.text === 'string' && c.text) parts.push({ text: c.text })
        break
      case 'image_url': {
        const img = c.image_url as { url?: unknown; format?: unknown } | string | undefined
        const url = typeof img === 'string' ? img : img?.url
        parts.push(mediaPart(url, typeof img === 'object' ? img.format : undefined, param))
        break
      }
      case 'input_audio': {
        const a = c.input_audio as { data?: unknown; format?: unknown } | undefined
        if (typeof a?.data !== 'string' || typeof a.format !== 'string') throw badPart(param, 'input_audio needs data and format')
        parts.push({ inlineData: { mimeType: a.format.startsWith('audio/') ? a.format : `audio/${a.format}`, data: a.data } })
        break
      }
      case 'file': {
        const f = c.file as { file_data?: unknown; file_id?: unknown; format?: unknown } | undefined
        parts.push(mediaPart(f?.file_data ?? f?.file_id, f?.format, param))
        break
      }
      default:
        throw badPart(param, `content part type '${String(c.type)}' is not supported by Gemini`)
    }
  }
  return parts
}

/** A data URL or bare base64 -> inlineData; an http(s) / gs:// URI -> fileData. */
function mediaPart(url: unknown, format: unknown, param: string): Part {
  if (typeof url !== 'string' || !url) throw badPart(param, 'a media part needs a URL or data')
  const given = typeof format === 'string' && format ? format : undefined
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',')
    const header = url.slice(5, comma)
    if (comma === -1 || !header.endsWith(';base64')) throw badPart(param, 'a data URL must be base64 (data:<type>;base64,...)')
    const semi = header.indexOf(';')
    return { inlineData: { mimeType: given ?? header.slice(0, semi), data: url.slice(comma + 1) } }
  }
  if (url.startsWith('https://') || url.startsWith('http://') || url.startsWith('gs://')) {
    const mimeType = given ?? mimeFromPath(url)
    return { fileData: mimeType ? { mimeType, fileUri: url } : { fileUri: url } }
  }
  // A bare base64 string (LiteLLM accepts these when a format is given).
  if (given) return { inlineData: { mimeType: given, data: url } }
  throw badPart(param, 'a media URL must be a data URL, http(s):// or gs://')
}

function mimeFromPath(url: string): string | undefined {
  let end = url.length
  const q = url.indexOf('?')
  if (q !== -1) end = q
  const h = url.indexOf('#')
  if (h !== -1 && h < end) end = h
  const dot = url.lastIndexOf('.', end)
  if (dot === -1 || url.indexOf('/', dot) !== -1) return undefined
  return MIME_BY_EXT[url.slice(dot + 1, end).toLowerCase()]
}

function assistantParts(m: ChatMessage, i: number, callNames: Map<string, string>): Part[] {
  const parts: Part[] = []
  for (const text of texts(m.content)) parts.push({ text })
  const calls = m.tool_calls
  if (!Array.isArray(calls)) return parts
  for (let j = 0; j < calls.length; j++) {
    const call = calls[j]!
    const name = call.function?.name
    if (typeof name !== 'string' || !name) throw badPart(`messages[${i}].tool_calls[${j}]`, 'a tool call needs function.name')
    if (typeof call.id === 'string') callNames.set(call.id, name)
    const part: Part = { functionCall: { name, args: parseArgs(call.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`) } }
    const signature = typeof call.id === 'string' ? splitToolCallId(call.id).signature : undefined
    if (signature) part.thoughtSignature = signature
    parts.push(part)
  }
  return parts
}

function parseArgs(args: unknown, param: string): Record<string, unknown> {
  if (args === undefined || args === null || args === '') return {}
  if (typeof args === 'object' && !Array.isArray(args)) return args as Record<string, unknown>
  let parsed: unknown
  try {
    parsed = JSON.parse(String(args))
  } catch {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': not valid JSON; Gemini takes tool arguments as a JSON object.`, { param })
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': Gemini takes tool arguments as a JSON object.`, { param })
  }
  return parsed as Record<string, unknown>
}

function functionResponse(m: ChatMessage, i: number, callNames: Map<string, string>): Part {
  const name = (typeof m.tool_call_id === 'string' ? callNames.get(m.tool_call_id) : undefined) ?? (typeof m.name === 'string' && m.name ? m.name : undefined)
  if (!name) {
    throw gatewayError('GW_ERR_VALIDATION',
      `Invalid 'messages[${i}]': a tool result must answer a tool call of an earlier assistant message (tool_call_id '${String(m.tool_call_id)}' is unknown).`,
      { param: `messages[${i}].tool_call_id` })
  }
  const text = texts(m.content).join('')
  return { functionResponse: { name, response: responseObject(text) } }
}

/** A result that is a JSON object goes as that object; anything else as `{content: text}` (Gemini wants an object). */
function responseObject(text: string): Record<string, unknown> {
  const first = text.trimStart()[0]
  if (first === '{') {
    try {
      const v = JSON.parse(text)
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
    } catch {
      // plain text that happens to start with a brace
    }
  }
  return { content: text }
}

/** The non-empty texts of a message's content (a string, or the `text` parts of a list). */
function texts(content: ChatMessage['content']): string[] {
  if (typeof content === 'string') return content ? [content] : []
  if (!Array.isArray(content)) return []
  const out: string[] = []
  for (const c of content) if (c.type === 'text' && typeof c.text === 'string' && c.text) out.push(c.text)
  return out
}

function badPart(param: string, why: string) {
  return gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': ${why}.`, { param })
}
