/**
 * MCP servers: /v1/mcp/server (every server, for an admin: transport, URL or command, access groups,
 * allow_all_keys, tool filters, status), /v1/mcp/server/health (status, tools, in flight, errors) and
 * /v1/mcp/tools (every tool, prefixed names, with its server in mcp_info). Read-only: servers are added in the
 * config file or through the API.
 */
import { get } from '../api.js'
import { Badge, ErrorBanner, formatList, formatTime, html, Loading, PageHeader, Table, useLoad } from '../components.js'

async function load() {
  const [servers, health, tools] = await Promise.all([
    get('/v1/mcp/server'),
    get('/v1/mcp/server/health').catch(() => []),
    get('/v1/mcp/tools').catch((err) => ({ tools: [], error: err })),
  ])
  const h = new Map((Array.isArray(health) ? health : []).map((x) => [x.server_id, x]))
  return {
    servers: (Array.isArray(servers) ? servers : []).map((s) => ({ ...s, health: h.get(s.server_id) ?? null })),
    tools: tools.tools ?? [],
    toolsError: tools.error ?? null,
  }
}

function statusBadge(s) {
  const st = s.health?.status ?? s.status
  if (st === 'healthy') return html`<${Badge} tone="good">healthy<//>`
  if (st === 'unhealthy') return html`<${Badge} tone="bad">unhealthy<//>`
  return html`<${Badge}>${st ?? 'unknown'}<//>`
}

function whoMayUse(s) {
  if (s.allow_all_keys) return 'every key'
  const groups = s.mcp_access_groups ?? []
  return groups.length ? `keys and teams granted: ${groups.join(', ')}` : 'keys granted this server'
}

export default function McpPage() {
  const data = useLoad(load, [])
  const d = data.data
  const servers = [
    { key: 'server_name', label: 'Server', render: (s) => html`<strong>${s.server_name}</strong>${s.alias ? html` <span class="muted">(${s.alias})</span>` : ''}` },
    { key: 'transport', label: 'Transport' },
    { key: 'endpoint', label: 'URL or command', render: (s) => html`<code>${s.url ?? ([s.command, ...(s.args ?? [])].filter(Boolean).join(' ') || '—')}</code>` },
    { key: 'status', label: 'Status', render: statusBadge },
    { key: 'tools', label: 'Tools', className: 'num', render: (s) => (s.health && s.health.tools >= 0 ? s.health.tools : '—') },
    { key: 'in_flight', label: 'In flight / queued', className: 'num', render: (s) => (s.health ? `${s.health.in_flight} / ${s.health.queued}` : '—') },
    { key: 'access', label: 'Who may use it', render: whoMayUse },
    { key: 'allowed_tools', label: 'Allowed tools', render: (s) => (s.allowed_tools ? formatList(s.allowed_tools) : 'all') + (s.disallowed_tools?.length ? `; never ${s.disallowed_tools.join(', ')}` : '') },
    { key: 'source', label: 'Source' },
    { key: 'error', label: 'Last error', render: (s) => (s.health?.error ?? s.health_check_error ? html`<span class="error-text">${s.health?.error ?? s.health_check_error}</span> <span class="muted">${formatTime(s.health?.last_error_at)}</span>` : '—') },
  ]
  const tools = [
    { key: 'name', label: 'Tool', render: (t) => html`<code>${t.name}</code>` },
    { key: 'server', label: 'Server', render: (t) => t.mcp_info?.server_name ?? '—' },
    { key: 'description', label: 'Description', render: (t) => t.title ?? t.description ?? '—' },
  ]
  return html`<section>
    <${PageHeader} title="MCP">
      <button type="button" onClick=${data.reload}>Refresh</button>
    <//>
    <${ErrorBanner} error=${data.error} />
    ${data.loading && !d ? html`<${Loading} />` : d && html`
      <h2>Servers</h2>
      <${Table} columns=${servers} rows=${d.servers} rowKey=${(s) => s.server_id} empty="No MCP servers configured" />
      <h2>Tools</h2>
      <${ErrorBanner} error=${d.toolsError} />
      <${Table} columns=${tools} rows=${d.tools} rowKey=${(t) => t.name} empty="No tools offered" />`}
  </section>`
}
