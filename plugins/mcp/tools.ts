/**
 * MCP tools as a chat model sees them: OpenAI function tools with names every provider accepts, and a call's result
 * as the text a `tool` message carries; running one call with its record kept (the tool loop, /mcp and REST).
 */
import { createHash } from 'node:crypto'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { GatewayError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import type { GatewayState, ToolCallRecord } from '../../core/state.js'
import { toolCost } from './spec.js'
import type { McpRegistry, McpTool } from './types.js'

/** An OpenAI chat function tool. */
export interface FunctionTool {
  type: 'function'
  function: { name: string; description?: string; parameters: Record<string, unknown> }
}

/** OpenAI's rule for function names (the strictest of the providers'). */
const VALID_NAME = /^[a-zA-Z0-9_-]{1,64}$/
const INVALID_CHARS = /[^a-zA-Z0-9_-]/g

/**
 * The function name for a prefixed tool name (`<server>-<tool>`): itself when valid, else other characters replaced
 * by `_`, cut to fit, and `_<8 hex of its SHA-256>` appended, so two tools whose names clean up alike stay apart.
 */
export function modelToolName(prefixed: string): string {
  if (VALID_NAME.test(prefixed)) return prefixed
  const hash = createHash('sha256').update(prefixed).digest('hex').slice(0, 8)
  return `${prefixed.replace(INVALID_CHARS, '_').slice(0, 64 - 9)}_${hash}`
}

/**
 * The function tool for an MCP tool. The input schema is made acceptable to every provider: an object schema with
 * `properties` (a tool without arguments may declare neither), without `$schema` (which some reject).
 */
export function toFunctionTool(tool: McpTool, modelName: string): FunctionTool {
  const { $schema: _schema, ...schema } = tool.inputSchema
  const parameters: Record<string, unknown> = { ...schema, type: 'object' }
  const props = schema.properties
  if (!props || typeof props !== 'object' || Array.isArray(props)) parameters.properties = {}
  const fn: FunctionTool['function'] = { name: modelName, parameters }
  const description = tool.description ?? tool.title
  if (description) fn.description = description
  return { type: 'function', function: fn }
}

/**
 * A call's result as text for the model: text parts joined by newlines, media as `[image: <type>]` placeholders,
 * embedded resources as their text (`[resource: <uri>]` when binary), links as their URI; the structured content
 * as JSON when there are no parts.
 */
export function resultText(result: CallToolResult): string {
  const parts = Array.isArray(result.content) ? result.content : []
  if (parts.length === 0) return result.structuredContent === undefined ? '' : JSON.stringify(result.structuredContent)
  const out: string[] = []
  for (const p of parts) {
    switch (p.type) {
      case 'text':
        out.push(p.text)
        break
      case 'image':
      case 'audio':
        out.push(`[${p.type}: ${p.mimeType}]`)
        break
      case 'resource':
        out.push('text' in p.resource ? p.resource.text : `[resource: ${p.resource.uri}]`)
        break
      case 'resource_link':
        out.push(p.uri)
        break
    }
  }
  return out.join('\n')
}

/** A new record for a call of `tool` (output, error, timing and cost are filled by executeTool). */
export function toolRecord(id: string, name: string, tool: McpTool, args: string): ToolCallRecord {
  return {
    id, name, server: tool.server, serverId: tool.serverId, tool: tool.name, arguments: args,
    output: null, error: null, startedAt: Date.now(), durationMs: 0, costUsd: 0,
  }
}

/**
 * Run one call, filling `rec`: the result's text as output, or the error (a tool's own `isError` result, or what
 * the registry threw: 503, 408, 400, 404), the duration, and the server's per-query price when it answered. Never
 * throws: the registry's error comes back as `thrown`, for callers that pass it on (the tool loop tells the model
 * instead). A failure is logged, except a client gone (499).
 */
export async function executeTool(
  state: GatewayState, registry: McpRegistry, logger: Logger, rec: ToolCallRecord, tool: McpTool, args: Record<string, unknown>,
): Promise<{ result: CallToolResult; thrown?: undefined } | { result?: undefined; thrown: unknown }> {
  try {
    const result = await registry.call(tool.serverId, tool.name, args, { signal: state.signal })
    const text = resultText(result)
    if (result.isError === true) rec.error = text || 'The tool reported an error.'
    else rec.output = text
    // The server answered: its per-query price applies (LiteLLM's mcp_server_cost_info).
    const spec = registry.server(tool.serverId)
    if (spec) rec.costUsd = toolCost(spec, tool.name, tool.prefixed)
    return { result }
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err)
    if (!(err instanceof GatewayError) || err.status !== 499) {
      logger.warn('MCP tool call failed', { requestId: state.requestId, server: rec.server, tool: tool.name, cause: rec.error })
    }
    return { thrown: err }
  } finally {
    rec.durationMs = Date.now() - rec.startedAt
  }
}
