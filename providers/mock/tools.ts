/**
 * The mock provider's tool calling: which tool it "decides" to call and the arguments it fills from the tool's JSON
 * Schema, deterministically, so agent loops can be tested offline.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatMessage } from '../../core/openai/types.js'

/** Nesting bound for tool-parameter schemas (a recursive $ref-free schema cannot loop, but a huge one could). */
const MAX_SCHEMA_DEPTH = 8
/** Most placeholder items an array argument gets, whatever its `minItems`. */
const MAX_ARRAY_ITEMS = 128

type ToolDef = { type?: unknown; function?: { name?: unknown; parameters?: unknown } }

/**
 * The tool the mock "decides" to call, or null for a text reply. Deterministic on purpose: `required` and `auto`
 * pick the first function tool, a named choice picks that one, `none` never calls. `auto` calls only when the last
 * message is the user's, so the turn after a tool result gets a text answer and a tool loop ends. An explicit
 * `mock_response` is the reply the caller chose, so it wins over `auto` (not over a forced call).
 */
export function chosenTool(request: Record<string, unknown>, canned: boolean): { name: string; parameters: unknown } | null {
  const tools = Array.isArray(request.tools) ? (request.tools as ToolDef[]).filter(isFunctionTool) : []
  if (tools.length === 0) return null
  const choice = request.tool_choice ?? 'auto'
  if (choice === 'none') return null
  if (choice === 'auto') {
    if (canned) return null
    const messages = request.messages as ChatMessage[] | undefined
    if (messages?.[messages.length - 1]?.role !== 'user') return null
  } else if (typeof choice === 'object' && choice !== null) {
    const name = (choice as { function?: { name?: unknown } }).function?.name
    const named = tools.find((t) => t.function!.name === name)
    if (!named) throw gatewayError('GW_ERR_VALIDATION', `Invalid 'tool_choice': no function named '${String(name)}' in 'tools'.`, { param: 'tool_choice' })
    return { name: name as string, parameters: named.function!.parameters }
  } else if (choice !== 'required') {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid value: '${String(choice)}'. Supported values are: 'none', 'auto' and 'required'.`, { param: 'tool_choice' })
  }
  const first = tools[0]!.function!
  return { name: first.name as string, parameters: first.parameters }
}

function isFunctionTool(t: ToolDef): boolean {
  return t !== null && typeof t === 'object' && t.type === 'function' && typeof t.function?.name === 'string'
}

/**
 * Arguments that satisfy a tool's JSON Schema: every required property with a placeholder of its type (the
 * schema's `default`, `const` or first `enum` value when it has one), nested objects filled the same way.
 */
export function placeholderFor(schema: unknown, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > MAX_SCHEMA_DEPTH) return null
  const s = schema as Record<string, unknown>
  if ('default' in s) return s.default
  if ('const' in s) return s.const
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0]
  const branch = (Array.isArray(s.anyOf) && s.anyOf[0]) || (Array.isArray(s.oneOf) && s.oneOf[0])
  if (branch) return placeholderFor(branch, depth + 1)
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type
  switch (type) {
    case 'string': return 'mock'
    case 'integer':
    case 'number': return typeof s.minimum === 'number' ? s.minimum : 0
    case 'boolean': return false
    case 'array': return Array(arrayLength(s.minItems)).fill(placeholderFor(s.items, depth + 1))
    case 'null': return null
    default: break
  }
  if (type !== 'object' && !s.properties) return null
  const out: Record<string, unknown> = {}
  const props = (s.properties ?? {}) as Record<string, unknown>
  if (!Array.isArray(s.required)) return out
  for (const key of s.required) {
    if (typeof key !== 'string') continue
    // Own properties only, and defined rather than assigned: a property named `__proto__` or `constructor` is data.
    const value = placeholderFor(Object.hasOwn(props, key) ? props[key] : undefined, depth + 1)
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** `minItems` placeholders for an array, bounded so a schema cannot make the mock allocate without limit. */
function arrayLength(minItems: unknown): number {
  return typeof minItems === 'number' && minItems > 0 ? Math.min(Math.ceil(minItems), MAX_ARRAY_ITEMS) : 0
}

/** Tool calls already in the conversation, so each turn's call id is new: call_mock_1, call_mock_2, ... */
export function priorToolCalls(messages: ChatMessage[] | undefined): number {
  let n = 0
  if (messages) for (const m of messages) if (Array.isArray(m.tool_calls)) n += m.tool_calls.length
  return n
}

