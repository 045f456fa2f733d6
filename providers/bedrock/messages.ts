/**
 * OpenAI chat messages -> Converse `system` and `messages`, as LiteLLM converts them
 * (prompt_templates/factory.py `_bedrock_converse_messages_pt`, AmazonConverseConfig._transform_system_message):
 *
 * - `system` / `developer` messages, wherever they sit, become the top-level `system` list of `{text}` blocks.
 * - `user` content becomes `{text}`, `{image}` (data URLs; the bytes go as base64 in JSON) and `{document}` blocks.
 * - `assistant` content becomes `{reasoningContent}` (from `thinking_blocks`, which must lead), `{text}` and
 *   `{toolUse}` blocks (arguments parsed back into an object).
 * - `tool` messages become `{toolResult}` blocks in a user turn.
 * - Consecutive messages of one role merge into one turn: Converse wants user and assistant to alternate.
 * - `cache_control` on a part or message adds a `{cachePoint}` after its block (Bedrock prompt caching).
 * Empty text is left out: Converse rejects a blank text block.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatMessage } from '../../core/openai/types.js'

type Block = Record<string, unknown>
export interface ConverseMessage {
  role: 'user' | 'assistant'
  content: Block[]
}

const CACHE_POINT: Block = Object.freeze({ cachePoint: Object.freeze({ type: 'default' }) })

/** Media types Converse takes as an image block (ImageFormat) and as a document block (DocumentFormat). */
const IMAGE_FORMATS: Readonly<Record<string, string>> = {
  'image/png': 'png', 'image/jpeg': 'jpeg', 'image/jpg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp',
}
const DOCUMENT_FORMATS: Readonly<Record<string, string>> = {
  'application/pdf': 'pdf', 'text/csv': 'csv', 'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'text/html': 'html', 'text/plain': 'txt', 'text/markdown': 'md',
}

/** DocumentBlock.name allows letters, digits, single spaces, hyphens, parentheses and square brackets. */
const DOC_NAME_BAD = /[^A-Za-z0-9 ()[\]-]+/g
const DOC_NAME_SPACES = /\s{2,}/g

function invalid(message: string, param = 'messages'): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

function hasCache(from: Record<string, unknown>): boolean {
  return from.cache_control !== undefined && from.cache_control !== null
}

/** System and developer messages -> `system` blocks (empty when there are none). */
export function systemBlocks(messages: readonly ChatMessage[]): Block[] {
  const out: Block[] = []
  for (const m of messages) {
    if (m.role !== 'system' && m.role !== 'developer') continue
    if (typeof m.content === 'string') {
      if (m.content) out.push({ text: m.content })
      if (m.content && hasCache(m)) out.push(CACHE_POINT)
    } else if (Array.isArray(m.content)) {
      for (const p of m.content) {
        if (typeof p.text !== 'string' || !p.text) continue
        out.push({ text: p.text })
        if (hasCache(p)) out.push(CACHE_POINT)
      }
    }
  }
  return out
}

/** `data:<type>;base64,<data>` -> [type, data]; anything else (an http URL) -> null. */
function dataUrl(url: string): [string, string] | null {
  if (!url.startsWith('data:')) return null
  const comma = url.indexOf(',')
  const head = url.slice(5, comma)
  if (comma < 0 || !head.endsWith(';base64')) return null
  return [head.slice(0, -';base64'.length).toLowerCase(), url.slice(comma + 1)]
}

/** An `image_url` part -> `{image}`. Converse takes bytes only (or S3), so a remote URL is refused, not fetched. */
function imageBlock(part: Record<string, unknown>, where: string): Block {
  const iu = part.image_url
  const url = typeof iu === 'string' ? iu : (iu as { url?: unknown } | null)?.url
  if (typeof url !== 'string') invalid(`${where}: image_url.url must be a string`)
  const parsed = dataUrl(url)
  if (!parsed) invalid(`${where}: bedrock takes images as base64 data URLs (data:image/png;base64,...), not remote URLs`)
  const format = IMAGE_FORMATS[parsed[0]]
  if (format) return { image: { format, source: { bytes: parsed[1] } } }
  const doc = DOCUMENT_FORMATS[parsed[0]]
  if (doc) return documentBlock(doc, parsed[1], 'document')
  return invalid(`${where}: image type ${parsed[0]} is not supported by bedrock (png, jpeg, gif, webp)`)
}

/** A `file` part (`file_data` as a data URL) -> `{document}`. */
function fileBlock(part: Record<string, unknown>, where: string, n: number): Block {
  const f = (part.file ?? {}) as { file_data?: unknown; filename?: unknown }
  const parsed = typeof f.file_data === 'string' ? dataUrl(f.file_data) : null
  if (!parsed) invalid(`${where}: bedrock takes files as base64 data URLs in file.file_data`)
  const format = DOCUMENT_FORMATS[parsed[0]]
  if (!format) {
    const img = IMAGE_FORMATS[parsed[0]]
    if (img) return { image: { format: img, source: { bytes: parsed[1] } } }
    invalid(`${where}: file type ${parsed[0]} is not supported by bedrock`)
  }
  const name = typeof f.filename === 'string' ? f.filename.replace(/\.[^.]*$/, '') : ''
  return documentBlock(format, parsed[1], name || `document-${n}`)
}

function documentBlock(format: string, bytes: string, name: string): Block {
  const clean = name.replace(DOC_NAME_BAD, '-').replace(DOC_NAME_SPACES, ' ').trim() || 'document'
  return { document: { format, name: clean, source: { bytes } } }
}

/** User content (string or parts) -> blocks. */
function userBlocks(content: ChatMessage['content'], where: string, out: Block[]): void {
  if (typeof content === 'string') {
    if (content) out.push({ text: content })
    return
  }
  if (!Array.isArray(content)) return
  for (let i = 0; i < content.length; i++) {
    const p = content[i]!
    const at = `${where}.content[${i}]`
    if (p.type === 'text') {
      if (typeof p.text === 'string' && p.text) out.push({ text: p.text })
    } else if (p.type === 'image_url') out.push(imageBlock(p, at))
    else if (p.type === 'file') out.push(fileBlock(p, at, i))
    else invalid(`${at}: content type '${String(p.type)}' is not supported by bedrock`)
    if (hasCache(p)) out.push(CACHE_POINT)
  }
}

/** Parsed tool-call arguments. Converse wants the object; a string that is no JSON object is a client error. */
function toolInput(args: unknown, where: string): unknown {
  if (args === undefined || args === null || args === '') return {}
  if (typeof args !== 'string') return args
  try {
    return JSON.parse(args)
  } catch {
    return invalid(`${where}.function.arguments is not valid JSON`)
  }
}

function assistantBlocks(m: ChatMessage, where: string, out: Block[]): void {
  // Thinking first: Claude rejects a turn with tool use whose reasoning does not lead.
  const thinking = m.thinking_blocks
  if (Array.isArray(thinking)) {
    for (const b of thinking as Array<Record<string, unknown>>) {
      if (b.type === 'thinking' && typeof b.thinking === 'string') {
        const rt: Block = { text: b.thinking }
        if (typeof b.signature === 'string') rt.signature = b.signature
        out.push({ reasoningContent: { reasoningText: rt } })
      } else if (b.type === 'redacted_thinking' && typeof b.data === 'string') {
        out.push({ reasoningContent: { redactedContent: b.data } })
      }
    }
  }
  if (typeof m.content === 'string') {
    if (m.content) out.push({ text: m.content })
  } else if (Array.isArray(m.content)) {
    for (const p of m.content) if (typeof p.text === 'string' && p.text) out.push({ text: p.text })
  }
  if (hasCache(m)) out.push(CACHE_POINT)
  const calls = m.tool_calls
  if (!Array.isArray(calls)) return
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i]!
    const at = `${where}.tool_calls[${i}]`
    if (typeof c.id !== 'string' || typeof c.function?.name !== 'string') invalid(`${at} needs an id and function.name`)
    out.push({ toolUse: { toolUseId: c.id, name: c.function.name, input: toolInput(c.function.arguments, at) } })
  }
}

/** A `tool` message -> `{toolResult}`: text stays text, image parts become images, a non-string value is JSON. */
function toolResult(m: ChatMessage, where: string): Block {
  if (typeof m.tool_call_id !== 'string') invalid(`${where}.tool_call_id is required for a tool message`)
  const content: Block[] = []
  const c = m.content
  if (typeof c === 'string') content.push({ text: c })
  else if (Array.isArray(c)) {
    for (let i = 0; i < c.length; i++) {
      const p = c[i]!
      if (p.type === 'image_url') content.push(imageBlock(p, `${where}.content[${i}]`))
      else if (typeof p.text === 'string') content.push({ text: p.text })
    }
  } else if (c !== null && c !== undefined) content.push({ json: c })
  return { toolResult: { toolUseId: m.tool_call_id, content } }
}

/** The conversation without system messages, in alternating Converse turns. */
export function converseMessages(messages: readonly ChatMessage[]): ConverseMessage[] {
  const out: ConverseMessage[] = []
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!
    const where = `messages[${i}]`
    if (m.role === 'system' || m.role === 'developer') continue
    let role: 'user' | 'assistant'
    const blocks: Block[] = []
    if (m.role === 'user') {
      role = 'user'
      userBlocks(m.content, where, blocks)
      if (hasCache(m) && typeof m.content === 'string') blocks.push(CACHE_POINT)
    } else if (m.role === 'tool') {
      role = 'user'
      blocks.push(toolResult(m, where))
    } else if (m.role === 'assistant') {
      role = 'assistant'
      assistantBlocks(m, where, blocks)
    } else {
      return invalid(`${where}: role '${String(m.role)}' is not supported by bedrock`)
    }
    if (blocks.length === 0) continue
    const last = out[out.length - 1]
    if (last && last.role === role) last.content.push(...blocks)
    else out.push({ role, content: blocks })
  }
  return out
}

/** Whether the converted conversation holds tool blocks (Converse then requires a toolConfig). */
export function hasToolBlocks(messages: readonly ConverseMessage[]): boolean {
  for (const m of messages) for (const b of m.content) if (b.toolUse !== undefined || b.toolResult !== undefined) return true
  return false
}
