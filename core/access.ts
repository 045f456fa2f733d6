/**
 * Access rules shared by the auth plugin and the core's routes: which models a key or team may call, and which
 * routes `allowed_routes` admits. LiteLLM's special values are honoured: an empty list, `*`,
 * `all-proxy-models` and `all-team-models` (on a key: whatever its team allows) mean no restriction at that level;
 * an entry ending in `*` (`openai/*`) matches by prefix.
 */

import type { Principal } from './state.js'

const ANY_MODEL: ReadonlySet<string> = new Set(['*', 'all-proxy-models', 'all-team-models'])

/** Whether `model` is allowed by one allow-list (a key's or a team's). */
export function modelAllowed(list: readonly string[] | null | undefined, model: string): boolean {
  if (!list || list.length === 0) return true
  for (const m of list) {
    if (m === model || ANY_MODEL.has(m)) return true
    if (m.length > 1 && m.charCodeAt(m.length - 1) === 42 /* '*' */ && model.startsWith(m.slice(0, -1))) return true
  }
  return false
}

/**
 * Whether a caller may use model `id`: its key's allow-list (`all-team-models`: the team's decides) and its team's.
 * An alias (model_group_alias) is allowed to whoever may call its group. null principal: no auth plugin, anything goes.
 */
export function mayUseModel(p: Principal | null, id: string, aliasOf: (name: string) => string | undefined): boolean {
  if (!p) return true
  const keyList = p.key ? (p.key.models.includes('all-team-models') ? null : p.key.models) : p.models
  const teamList = p.team?.models
  if (!keyList?.length && !teamList?.length) return true
  const allowed = (list: readonly string[] | null | undefined) => {
    if (modelAllowed(list, id)) return true
    const group = aliasOf(id)
    return group !== undefined && modelAllowed(list, group)
  }
  return allowed(keyList) && allowed(teamList)
}

/**
 * LiteLLM's named route groups for `allowed_routes`, as its docs list them; a path matches a group when it matches
 * one of the group's prefixes (after dropping a leading `/v1`).
 */
const ROUTE_GROUPS: Readonly<Record<string, readonly string[]>> = {
  openai_routes: ['/chat/completions', '/completions', '/embeddings', '/models', '/images', '/audio', '/moderations',
    '/responses', '/batches', '/files', '/fine_tuning', '/assistants', '/threads', '/rerank', '/engines/', '/openai/deployments/'],
  llm_api_routes: ['/chat/completions', '/completions', '/embeddings', '/models', '/images', '/audio', '/moderations',
    '/responses', '/messages', '/rerank', '/engines/', '/openai/deployments/'],
  anthropic_routes: ['/messages'],
  info_routes: ['/key/info', '/team/info', '/user/info', '/model/info', '/model_group/info', '/spend/logs', '/customer/info', '/budget/info', '/health'],
  management_routes: ['/key/', '/team/', '/user/', '/customer/', '/budget/', '/model/', '/organization/'],
  spend_tracking_routes: ['/spend/', '/global/spend'],
  key_management_routes: ['/key/'],
  // The MCP gateway: /mcp (and /mcp/{server}), /mcp-rest/*, /v1/mcp/*.
  mcp_routes: ['/mcp', '/mcp-rest/'],
}

function stripV1(path: string): string {
  return path.startsWith('/v1/') ? path.slice(3) : path
}

/** Whether `path` is admitted by a key's allowed_routes (empty = every route). */
export function routeAllowed(allowed: readonly string[] | null | undefined, path: string): boolean {
  if (!allowed || allowed.length === 0) return true
  const p = stripV1(path)
  for (const entry of allowed) {
    const group = ROUTE_GROUPS[entry]
    if (group) {
      for (const prefix of group) if (p.startsWith(prefix)) return true
      continue
    }
    const e = stripV1(entry)
    if (e.endsWith('*') ? p.startsWith(e.slice(0, -1)) : p === e) return true
  }
  return false
}
