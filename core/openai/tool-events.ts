/**
 * A stream item that is not a chat chunk: a tool loop (state.toolLoop, the MCP plugin) yields one between model
 * turns for each tool call the gateway ran, so a writer that shows those calls (the Responses API's `mcp_call`
 * items) can place them in order. The OpenAI chat writer skips it (core/http/respond.ts).
 */
import type { ToolCallRecord } from '../state.js'

/** The marker's `object`; no chat chunk has it. */
export const TOOL_CALL_EVENT = 'switchyard.tool_call'

export interface ToolCallEvent {
  object: typeof TOOL_CALL_EVENT
  call: ToolCallRecord
}

export function isToolCallEvent(v: unknown): v is ToolCallEvent {
  return (v as { object?: unknown } | null)?.object === TOOL_CALL_EVENT
}
