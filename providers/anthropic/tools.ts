/**
 * Tools for the Messages API, as LiteLLM maps them (llms/anthropic/chat/transformation.py):
 * - OpenAI function tools -> `{name, description, input_schema}`; a tool already in Anthropic's shape (it has an
 *   `input_schema`) and Anthropic's hosted tools (`web_search_*`, `bash_*`, ...) pass as given.
 * - `tool_choice` auto / none / required (Anthropic's `any`) / a named function (`{type: 'tool', name}`), with
 *   `parallel_tool_calls: false` as `disable_parallel_tool_use: true`.
 * - `response_format` json_object / json_schema -> one forced tool, `json_tool_call`, whose input is the answer
 *   (LiteLLM's "JSON mode"); the response side turns that call back into message content.
 * - `web_search_options` -> the hosted `web_search` tool.
 *
 * API reference: https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatRequest } from '../../core/openai/types.js'

/** The tool name LiteLLM gives JSON mode's forced tool (litellm/constants.py RESPONSE_FORMAT_TOOL_NAME). */
export const JSON_TOOL_NAME = 'json_tool_call'

/** Anthropic's server-side tool families: sent as given, never converted. */
const HOSTED_PREFIXES = ['web_search_', 'bash_', 'text_editor_', 'code_execution_', 'computer_']

/** Web searches per call for `search_context_size` (LiteLLM's ANTHROPIC_WEB_SEARCH_TOOL_MAX_USES). */
const WEB_SEARCH_MAX_USES: Record<string, number> = { low: 1, medium: 5, high: 10 }

type Obj = Record<string, unknown>

function isHosted(type: string): boolean {
  for (const p of HOSTED_PREFIXES) if (type.startsWith(p)) return true
  return false
}

function toolError(message: string): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param: 'tools' })
}

/** One tool in the request's `tools` -> the Anthropic tool. */
function mapTool(tool: Obj): Obj {
  if ('input_schema' in tool) return tool
  const type = typeof tool.type === 'string' ? tool.type : 'function'
  if (type === 'function') {
    const fn = (tool.function ?? {}) as Obj
    if (typeof fn.name !== 'string' || !fn.name) toolError('Each function tool needs a name')
    // The API requires an object schema; a tool without parameters takes none.
    const params = fn.parameters && typeof fn.parameters === 'object' ? (fn.parameters as Obj) : { type: 'object', properties: {} }
    const out: Obj = { name: fn.name, input_schema: params.type === undefined ? { type: 'object', ...params } : params }
    if (typeof fn.description === 'string') out.description = fn.description
    const cc = tool.cache_control ?? fn.cache_control
    if (cc && typeof cc === 'object') out.cache_control = cc
    return out
  }
  if (isHosted(type)) return tool
  return toolError(`Tool type '${type}' is not supported by Anthropic`)
}

export function mapTools(value: unknown): Obj[] | undefined {
  if (!Array.isArray(value)) return undefined
  return value.map((t) => mapTool((t ?? {}) as Obj))
}

/** `parallel_tool_calls` as Anthropic's inverse flag; undefined when the request does not say. */
function disableParallel(req: ChatRequest): boolean | undefined {
  const p = req.parallel_tool_calls
  return typeof p === 'boolean' ? !p : undefined
}

/** OpenAI `tool_choice` -> Anthropic's, carrying `parallel_tool_calls` (read from the request, so field order does not matter). */
export function mapToolChoice(value: unknown, req: ChatRequest): Obj | undefined {
  let choice: Obj
  if (value === 'auto') choice = { type: 'auto' }
  else if (value === 'required') choice = { type: 'any' }
  else if (value === 'none') return { type: 'none' }
  else if (value && typeof value === 'object') {
    const name = ((value as Obj).function as Obj | undefined)?.name
    if (typeof name !== 'string' || !name) {
      throw gatewayError('GW_ERR_VALIDATION', 'tool_choice must name a function: {"type":"function","function":{"name":...}}', { param: 'tool_choice' })
    }
    choice = { type: 'tool', name }
  } else return undefined
  const disable = disableParallel(req)
  if (disable !== undefined) choice.disable_parallel_tool_use = disable
  return choice
}

/**
 * `parallel_tool_calls` without a `tool_choice`: Anthropic's default choice (`auto`) with the flag. Only with tools:
 * the API refuses a tool_choice in a request that has none.
 */
export function parallelOnly(value: unknown, req: ChatRequest): Obj | undefined {
  if (req.tool_choice != null || typeof value !== 'boolean' || !Array.isArray(req.tools) || !req.tools.length) return undefined
  return { type: 'auto', disable_parallel_tool_use: !value }
}

/** `response_format` -> JSON mode's tool, or undefined for `text` (a no-op). */
export function jsonModeTool(value: unknown): Obj | undefined {
  if (!value || typeof value !== 'object') return undefined
  const rf = value as Obj
  if (rf.type === 'json_schema') {
    const schema = (rf.json_schema as Obj | undefined)?.schema
    if (schema && typeof schema === 'object') return { name: JSON_TOOL_NAME, input_schema: { type: 'object', ...(schema as Obj) } }
  } else if (rf.type !== 'json_object') {
    return undefined
  }
  // No schema: any object. Anthropic refuses `properties: null`, hence the explicit empty map.
  return { name: JSON_TOOL_NAME, input_schema: { type: 'object', additionalProperties: true, properties: {} } }
}

/** `web_search_options` -> Anthropic's hosted web search tool. */
export function webSearchTool(value: unknown): Obj | undefined {
  if (!value || typeof value !== 'object') return undefined
  const o = value as { search_context_size?: unknown; user_location?: { approximate?: Obj } }
  const tool: Obj = { type: 'web_search_20250305', name: 'web_search' }
  const uses = typeof o.search_context_size === 'string' ? WEB_SEARCH_MAX_USES[o.search_context_size] : undefined
  if (uses !== undefined) tool.max_uses = uses
  const approx = o.user_location?.approximate
  if (approx && typeof approx === 'object') {
    const loc: Obj = { type: 'approximate' }
    for (const k of ['city', 'region', 'country', 'timezone']) if (typeof approx[k] === 'string') loc[k] = approx[k]
    tool.user_location = loc
  }
  return tool
}
