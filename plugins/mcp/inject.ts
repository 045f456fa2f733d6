/**
 * The request-chain step for `type: "mcp"` tools on chat requests (Chat Completions, and the Responses API, which
 * runs as chat), in LiteLLM's and OpenAI's Responses shape:
 *
 *   {"type": "mcp", "server_label": "...", "server_url": "litellm_proxy", "allowed_tools": [...], "require_approval": "never"}
 *
 * Each such entry is replaced by the function tools of the servers it names, as `<server>-<tool>`:
 * - `server_url` "litellm_proxy": every server the caller may use, or the one `server_label` names (id, name or
 *   alias); "litellm_proxy/mcp/<a>,<b>": those servers (one the caller may not use is a 403; an unknown one a 400).
 * - `allowed_tools` (names, own or prefixed, or `{tool_names, read_only}`) and the key's tool permissions narrow them.
 * - `require_approval` "never" (or `{never: {...}}` naming the tool): the gateway runs the model's calls of that tool
 *   and calls the model again (loop.ts). Otherwise (OpenAI's default, "always") the calls go back to the client.
 * The tools offered are kept in state.toolLists (a Responses reply's `mcp_list_tools` items).
 */
import { gatewayError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import type { GatewayMiddleware } from '../../core/plugin.js'
import type { GatewayState, ToolList } from '../../core/state.js'
import { toolAllowed, visibleServers } from './access.js'
import { createToolLoop } from './loop.js'
import { modelToolName, toFunctionTool, type FunctionTool } from './tools.js'
import type { McpRegistry, McpServerSpec, McpTool } from './types.js'

/** What the MCP plugin gives its request-chain step. */
export interface McpMiddlewareDeps {
  registry: McpRegistry
  /** Model turns at most in a tool loop. */
  maxIterations: number
  logger: Logger
}

type Obj = Record<string, unknown>

/** OpenAI's MCPToolFilter: a tool matches when every condition given holds. */
interface ToolFilter {
  /** Tool names, own or prefixed; null = any. */
  names: Set<string> | null
  /** Only tools annotated `readOnlyHint`. */
  readOnly: boolean
}

/** One `type: "mcp"` entry of the request, checked. */
interface McpEntry {
  index: number
  servers: McpServerSpec[]
  allowed: ToolFilter | null
  /** Tools the gateway runs without asking; the rest go back to the client. */
  never: ToolFilter | null
  always: ToolFilter | null
}

const PROXY_URL = 'litellm_proxy'
const ANY: ToolFilter = { names: null, readOnly: false }

/** The request-chain step: rewrites `type: "mcp"` tools on chat requests; any other request passes untouched. */
export function mcpMiddleware(deps: McpMiddlewareDeps): GatewayMiddleware {
  return async function mcpTools(ctx, next) {
    const tools = ctx.state.body?.tools
    if (!Array.isArray(tools) || !hasMcp(tools) || ctx.state.kind !== 'chat') return next()
    await injectTools(ctx.state, tools, deps)
    return next()
  }
}

function hasMcp(tools: readonly unknown[]): boolean {
  for (let i = 0; i < tools.length; i++) if ((tools[i] as { type?: unknown } | null)?.type === 'mcp') return true
  return false
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function given(v: unknown): boolean {
  return v !== undefined && v !== null
}

function invalid(message: string, param: string): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

async function injectTools(state: GatewayState, tools: readonly unknown[], deps: McpMiddlewareDeps): Promise<void> {
  const { registry } = deps
  const p = state.principal
  const visible = visibleServers(p, registry)
  const entries: McpEntry[] = []
  const clientNames = new Set<string>()
  for (let i = 0; i < tools.length; i++) {
    const t = tools[i] as Obj
    if (t?.type === 'mcp') entries.push(checkEntry(t, i, visible, registry))
    else if (isObj(t?.function) && typeof t.function.name === 'string') clientNames.add(t.function.name)
  }

  // Each server's tools once, in parallel; a server that cannot be reached fails the request (it was asked for).
  const servers = new Map<string, McpServerSpec>()
  for (const e of entries) for (const s of e.servers) servers.set(s.server_id, s)
  const ids = [...servers.keys()]
  const listed = await Promise.all(ids.map((id) => registry.tools(id, state.signal)))
  const toolsOf = new Map(ids.map((id, i) => [id, listed[i]!]))

  const injected = new Map<number, FunctionTool[]>()
  const seen = new Set<string>()
  const owned = new Map<string, McpTool>()
  const lists = new Map<string, ToolList>()
  for (const e of entries) {
    const fns: FunctionTool[] = []
    for (const spec of e.servers) {
      for (const tool of toolsOf.get(spec.server_id)!) {
        if ((e.allowed && !matches(e.allowed, tool)) || !toolAllowed(p, spec, tool.name)) continue
        const name = modelToolName(tool.prefixed)
        // The same tool through two entries: offered once, as the first one says.
        if (seen.has(name)) continue
        if (clientNames.has(name)) {
          invalid(`MCP tool '${name}' has the same name as a function tool in the request.`, `tools[${e.index}]`)
        }
        seen.add(name)
        fns.push(toFunctionTool(tool, name))
        if (autoApproved(e, tool)) owned.set(name, tool)
        let list = lists.get(spec.server_id)
        if (!list) lists.set(spec.server_id, (list = { server: spec.server_name, tools: [] }))
        list.tools.push({ name: tool.name, description: tool.description, input_schema: tool.inputSchema, annotations: tool.annotations })
      }
    }
    injected.set(e.index, fns)
  }

  const out: unknown[] = []
  for (let i = 0; i < tools.length; i++) {
    const fns = injected.get(i)
    if (fns) out.push(...fns)
    else out.push(tools[i])
  }
  // A copy: the client's body (and its tools list) may be shared with other steps.
  const body: Obj = { ...state.body!, tools: out }
  if (out.length === 0) {
    // Servers without tools (or none the key may use): providers refuse an empty list and tool settings without one.
    delete body.tools
    delete body.tool_choice
    delete body.parallel_tool_calls
  }
  state.body = body
  state.toolLists.push(...lists.values())
  if (owned.size > 0) {
    // The loop reads each turn's reply: no pass-through of upstream bytes.
    state.passthrough = false
    state.toolLoop = createToolLoop({ state, registry, owned, maxIterations: deps.maxIterations, logger: deps.logger })
  }
}

/** Validate one `type: "mcp"` entry and resolve the servers it names. */
function checkEntry(t: Obj, i: number, visible: McpServerSpec[], registry: McpRegistry): McpEntry {
  const at = `tools[${i}]`
  if (given(t.server_label) && typeof t.server_label !== 'string') invalid(`Invalid '${at}.server_label': expected a string.`, `${at}.server_label`)
  if (given(t.headers) && (!isObj(t.headers) || Object.values(t.headers).some((v) => typeof v !== 'string'))) {
    invalid(`Invalid '${at}.headers': expected an object of strings.`, `${at}.headers`)
  }
  const allowed = given(t.allowed_tools) ? allowedFilter(t.allowed_tools, `${at}.allowed_tools`) : null
  const entry: McpEntry = { index: i, servers: selectServers(t, at, visible, registry), allowed, never: null, always: null }
  const ra = t.require_approval
  if (ra === 'never') entry.never = ANY
  else if (isObj(ra)) {
    for (const k in ra) {
      if (k !== 'always' && k !== 'never') invalid(`Invalid '${at}.require_approval': unknown field '${k}'.`, `${at}.require_approval.${k}`)
      if (given(ra[k])) entry[k] = toolFilter(ra[k], `${at}.require_approval.${k}`)
    }
  } else if (given(ra) && ra !== 'always') {
    invalid(`Invalid '${at}.require_approval': expected "always", "never" or {always, never} tool filters.`, `${at}.require_approval`)
  }
  return entry
}

/**
 * The servers of an entry. `litellm_proxy`: the one `server_label` names among those the caller may use, else all of
 * them; `litellm_proxy/mcp/<a>,<b>`: those.
 */
function selectServers(t: Obj, at: string, visible: McpServerSpec[], registry: McpRegistry): McpServerSpec[] {
  const url = t.server_url
  const m = typeof url === 'string' ? /^litellm_proxy(?:\/mcp(?:\/([^/]*))?)?\/*$/.exec(url) : null
  if (!m) invalid(`MCP tools must use server_url "${PROXY_URL}" (the gateway's MCP servers).`, `${at}.server_url`)
  const names = (m[1] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (names.length === 0) {
    const label = t.server_label
    const named = typeof label === 'string' && label !== ''
      ? visible.find((s) => s.server_id === label || s.server_name === label || s.alias === label)
      : undefined
    return named ? [named] : visible
  }
  return names.map((name) => {
    const spec = registry.server(name)
    if (!spec) invalid(`MCP server '${name}' does not exist.`, `${at}.server_url`)
    if (!visible.some((s) => s.server_id === spec.server_id)) {
      throw gatewayError('GW_ERR_FORBIDDEN', `This key may not use MCP server '${name}'.`, { param: `${at}.server_url` })
    }
    return spec
  })
}

/** allowed_tools: a list of names, or an MCPToolFilter. */
function allowedFilter(v: unknown, param: string): ToolFilter {
  if (!Array.isArray(v)) return toolFilter(v, param)
  if (!v.every((n) => typeof n === 'string')) invalid(`Invalid '${param}': expected an array of tool names.`, param)
  return { names: new Set(v as string[]), readOnly: false }
}

/** OpenAI's MCPToolFilter: `{tool_names?: string[], read_only?: boolean}`. */
function toolFilter(v: unknown, param: string): ToolFilter {
  if (!isObj(v)) invalid(`Invalid '${param}': expected a tool filter {tool_names, read_only}.`, param)
  const f: ToolFilter = { names: null, readOnly: false }
  for (const k in v) {
    const x = v[k]
    if (k === 'tool_names') {
      if (!Array.isArray(x) || !x.every((n) => typeof n === 'string')) invalid(`Invalid '${param}.tool_names': expected an array of tool names.`, `${param}.tool_names`)
      f.names = new Set(x as string[])
    } else if (k === 'read_only') {
      if (typeof x !== 'boolean') invalid(`Invalid '${param}.read_only': expected a boolean.`, `${param}.read_only`)
      f.readOnly = x
    } else {
      invalid(`Invalid '${param}': unknown field '${k}'.`, `${param}.${k}`)
    }
  }
  return f
}

function matches(f: ToolFilter, tool: McpTool): boolean {
  if (f.names && !f.names.has(tool.name) && !f.names.has(tool.prefixed)) return false
  return !f.readOnly || tool.annotations?.readOnlyHint === true
}

/** Whether the gateway runs the tool's calls itself: `never` names it and `always` does not. */
function autoApproved(e: McpEntry, tool: McpTool): boolean {
  return e.never !== null && matches(e.never, tool) && !(e.always !== null && matches(e.always, tool))
}

