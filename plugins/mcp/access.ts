/**
 * Which MCP servers and tools a caller may use, by LiteLLM's rules (docs: mcp_control, mcp_grant_access).
 *
 * Grants live in a key's and a team's `object_permission`: `mcp_servers` (ids, names or aliases), `mcp_access_groups`
 * (every server in the group) and `mcp_tool_permissions` (`{server: [tools]}`; a server named there is granted too).
 * - A level with a list restricts; key and team lists intersect; a key without one inherits its team's.
 * - No level with a list: every server (LiteLLM is open by default). Admins without a key-level list: every server.
 * - `no-mcp-servers` on the key (or the team) denies everything, public servers included.
 * - Servers with `allow_all_keys` are open to every key otherwise.
 * - Tool lists intersect per server across key and team; a server neither names keeps all its tools.
 */
import type { Principal } from '../../core/state.js'
import type { McpRegistry, McpServerSpec } from './types.js'

/** LiteLLM's sentinel: this key (or team) may use no MCP server. */
export const NO_MCP_SERVERS = 'no-mcp-servers'

interface Grant {
  /** Server ids granted; null = this level sets no list. */
  servers: Set<string> | null
  /** server id -> tools allowed on it, for the servers this level names. */
  tools: Map<string, Set<string>>
  none: boolean
}

export function isAdmin(p: Principal | null): boolean {
  return !p || p.kind === 'master' || p.kind === 'anonymous' || p.role === 'proxy_admin'
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : []
}

/** One level's grant (a key's or a team's object_permission), with names resolved to server ids. */
function grantOf(permission: unknown, registry: McpRegistry): Grant {
  const perm = (permission && typeof permission === 'object' ? permission : {}) as Record<string, unknown>
  const listed = strings(perm.mcp_servers)
  const groups = strings(perm.mcp_access_groups)
  const toolPerms = perm.mcp_tool_permissions && typeof perm.mcp_tool_permissions === 'object'
    ? (perm.mcp_tool_permissions as Record<string, unknown>) : {}
  const g: Grant = { servers: null, tools: new Map(), none: listed.includes(NO_MCP_SERVERS) }
  if (g.none) return g
  const names = Object.keys(toolPerms)
  if (listed.length === 0 && groups.length === 0 && names.length === 0) return g
  const servers = new Set<string>()
  for (const ref of listed) {
    const s = registry.server(ref)
    if (s) servers.add(s.server_id)
  }
  if (groups.length) {
    for (const s of registry.servers()) if (s.mcp_access_groups.some((a) => groups.includes(a))) servers.add(s.server_id)
  }
  for (const ref of names) {
    const s = registry.server(ref)
    if (!s) continue
    servers.add(s.server_id)
    g.tools.set(s.server_id, new Set(strings(toolPerms[ref])))
  }
  g.servers = servers
  return g
}

function grants(p: Principal, registry: McpRegistry): Grant[] {
  const out: Grant[] = []
  if (p.key) out.push(grantOf(p.key.object_permission, registry))
  if (p.team) out.push(grantOf(p.team.object_permission, registry))
  return out
}

/** The servers a caller may see and call. */
export function visibleServers(p: Principal | null, registry: McpRegistry): McpServerSpec[] {
  const all = registry.servers()
  if (!p) return all
  const levels = grants(p, registry)
  if (levels.some((g) => g.none)) return []
  const lists = levels.filter((g) => g.servers !== null)
  if (lists.length === 0) return all
  return all.filter((s) => s.allow_all_keys || lists.every((g) => g.servers!.has(s.server_id)))
}

/** Whether a caller may call `tool` (its own name on the server) on a server it can see. */
export function toolAllowed(p: Principal | null, spec: McpServerSpec, tool: string): boolean {
  if (!p) return true
  for (const level of [p.key?.object_permission, p.team?.object_permission]) {
    const perm = level && typeof level === 'object' ? (level as Record<string, unknown>).mcp_tool_permissions : undefined
    if (!perm || typeof perm !== 'object') continue
    const byServer = perm as Record<string, unknown>
    const list = byServer[spec.server_id] ?? byServer[spec.server_name] ?? (spec.alias ? byServer[spec.alias] : undefined)
    if (list === undefined) continue
    if (!strings(list).includes(tool)) return false
  }
  return true
}

/** Whether a caller may use the server at all (an id, name or alias). */
export function serverVisible(p: Principal | null, registry: McpRegistry, ref: string): boolean {
  const s = registry.server(ref)
  return !!s && visibleServers(p, registry).some((v) => v.server_id === s.server_id)
}
