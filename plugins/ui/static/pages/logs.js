/**
 * Call logs from /ui/api/logs ({rows, total}; filters api_key (clear key or hash), team_id, model_group, status,
 * start_date, end_date; offset/limit paging). A row opens its details (/ui/api/logs/:request_id: the spend log row
 * plus key_name, team_alias, duration_ms) in a region named "Call details". Prompts and replies are not kept by
 * the gateway: the panel says "redacted" unless a row carries messages.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import { get } from '../api.js'
import {
  Badge, ErrorBanner, Field, formatInt, formatMs, formatTime, formatUsd, html, Loading, PageHeader, Pager, short, Table,
  useLoad,
} from '../components.js'

const LIMIT = 50
const EMPTY = { key: '', team: '', model: '', status: '', from: '', to: '' }
const HASH = /^[0-9a-f]{64}$/i

/** The key filter as the API takes it: a clear key or hash as api_key; anything else is an alias (looked up). */
async function keyFilter(v) {
  const s = v.trim()
  if (!s) return {}
  if (s.startsWith('sk-') || HASH.test(s)) return { api_key: s }
  const r = await get('/key/list', { key_alias: s, return_full_object: 'true', size: 1 })
  const k = (r.keys ?? [])[0]
  if (!k?.token) throw new Error(`No key has the alias "${s}".`)
  return { api_key: k.token }
}

export default function LogsPage() {
  const [form, setForm] = useState(EMPTY)
  const [filters, setFilters] = useState(EMPTY)
  const [page, setPage] = useState(1)
  const [selected, setSelected] = useState(null)
  const set = (k) => (v) => setForm((f) => ({ ...f, [k]: v }))
  const logs = useLoad(async () => {
    const q = {
      ...(await keyFilter(filters.key)),
      team_id: filters.team, model_group: filters.model, status: filters.status,
      start_date: filters.from, end_date: filters.to,
      offset: (page - 1) * LIMIT, limit: LIMIT,
    }
    return get('/ui/api/logs', q)
  }, [filters, page])
  function apply(e) {
    e.preventDefault()
    setPage(1)
    setSelected(null)
    setFilters({ ...form })
  }
  function reset() {
    setForm(EMPTY)
    setFilters(EMPTY)
    setPage(1)
    setSelected(null)
  }
  const rows = logs.data?.rows ?? []
  const total = logs.data?.total ?? 0
  const columns = [
    { key: 'startTime', label: 'Time', render: (r) => formatTime(r.startTime) },
    { key: 'request_id', label: 'Request ID', render: (r) => html`<code>${r.request_id}</code>` },
    { key: 'key', label: 'Key', render: (r) => r.key_alias ?? (r.api_key ? html`<code title=${r.api_key}>${short(r.api_key, 8)}</code>` : 'master') },
    { key: 'model_group', label: 'Model' },
    { key: 'status', label: 'Status', render: (r) => (r.status === 'success' ? html`<${Badge} tone="good">success<//>` : html`<${Badge} tone="bad">${r.status}<//>`) },
    { key: 'tokens', label: 'Tokens', className: 'num', render: (r) => formatInt(r.total_tokens) },
    { key: 'spend', label: 'Cost', className: 'num', render: (r) => formatUsd(r.spend) },
    { key: 'duration', label: 'Duration', className: 'num', render: (r) => formatMs(Date.parse(r.endTime) - Date.parse(r.startTime)) },
  ]
  return html`<section>
    <${PageHeader} title="Logs">
      <button type="button" onClick=${logs.reload}>Refresh</button>
    <//>
    <form class="filters" onSubmit=${apply}>
      <${Field} label="Key alias or hash" value=${form.key} onChange=${set('key')} />
      <${Field} label="Team ID" value=${form.team} onChange=${set('team')} />
      <${Field} label="Model" value=${form.model} onChange=${set('model')} />
      <${Field} label="Status" type="select" value=${form.status} onChange=${set('status')}
        options=${[{ value: '', label: 'Any' }, 'success', 'failure']} />
      <${Field} label="From" type="date" value=${form.from} onChange=${set('from')} />
      <${Field} label="To" type="date" value=${form.to} onChange=${set('to')} />
      <div class="filter-buttons">
        <button type="submit" class="primary">Filter</button>
        <button type="button" onClick=${reset}>Clear</button>
      </div>
    </form>
    <${ErrorBanner} error=${logs.error} />
    <div class=${selected ? 'split' : ''}>
      <div>
        ${logs.loading && !logs.data ? html`<${Loading} />` : html`
          <${Table} columns=${columns} rows=${rows} rowKey=${(r) => r.request_id} onRowClick=${(r) => setSelected(r.request_id)}
            selectedKey=${selected ?? undefined} caption="Calls, newest first. Select a row for its details."
            empty="No calls match these filters" />
          <${Pager} page=${page} pages=${Math.max(1, Math.ceil(total / LIMIT))} total=${total} onPage=${setPage} />`}
      </div>
      ${selected && html`<${Detail} id=${selected} onClose=${() => setSelected(null)} />`}
    </div>
  </section>`
}

function Row({ label, children }) {
  return html`<div class="kv"><dt>${label}</dt><dd>${children}</dd></div>`
}

/** Lists of things the gateway may record about a call (in the row or its metadata). */
function pick(d, ...names) {
  for (const n of names) {
    if (d[n] !== undefined && d[n] !== null) return d[n]
    if (d.metadata && d.metadata[n] !== undefined && d.metadata[n] !== null) return d.metadata[n]
  }
  return null
}

function Detail({ id, onClose }) {
  const detail = useLoad(() => get(`/ui/api/logs/${encodeURIComponent(id)}`), [id])
  const ref = useRef(null)
  useEffect(() => { ref.current?.focus() }, [id])
  const d = detail.data
  const retries = d && pick(d, 'retries', 'num_retries', 'attempts')
  const fallbacks = d && pick(d, 'fallbacks', 'fallback_models', 'attempted_fallbacks')
  const tools = d && pick(d, 'tool_calls', 'mcp_tool_calls', 'mcp_tool_call_metadata')
  const messages = d && pick(d, 'messages')
  const response = d && pick(d, 'response')
  return html`<aside class="detail" role="region" aria-label="Call details" tabIndex="-1" ref=${ref}>
    <div class="detail-head">
      <h2>Call <code>${short(id, 18)}</code></h2>
      <button type="button" onClick=${onClose}>Close details</button>
    </div>
    <${ErrorBanner} error=${detail.error} />
    ${detail.loading && !d ? html`<${Loading} />` : d && html`<dl>
      <${Row} label="Request ID"><code>${d.request_id}</code><//>
      <${Row} label="Status">${d.status}${d.error ? html` — <span class="error-text">${d.error}</span>` : ''}<//>
      <${Row} label="Call type">${d.call_type}<//>
      <${Row} label="Model group">${d.model_group}<//>
      <${Row} label="Deployment">${d.custom_llm_provider ? `${d.custom_llm_provider}/` : ''}${d.model}${d.model_id ? ` (${d.model_id})` : ''}<//>
      <${Row} label="Key">${d.key_alias ?? d.key_name ?? (d.api_key ? short(d.api_key, 16) : 'master key')}<//>
      <${Row} label="Team">${d.team_alias ?? d.team_id ?? '—'}<//>
      <${Row} label="User / end user">${d.user ?? '—'} / ${d.end_user ?? '—'}<//>
      <${Row} label="Tokens">${formatInt(d.prompt_tokens)} prompt + ${formatInt(d.completion_tokens)} completion = ${formatInt(d.total_tokens)}${d.cached_tokens ? `, ${formatInt(d.cached_tokens)} cached` : ''}${d.reasoning_tokens ? `, ${formatInt(d.reasoning_tokens)} reasoning` : ''}<//>
      <${Row} label="Cost">${formatUsd(d.spend)} (${d.cost_source ?? '—'})<//>
      <${Row} label="Started">${formatTime(d.startTime)}<//>
      <${Row} label="Duration">${formatMs(d.duration_ms ?? (Date.parse(d.endTime) - Date.parse(d.startTime)))}<//>
      ${typeof d.ttft_ms === 'number' && d.ttft_ms > 0 && html`<${Row} label="Time to first token">${formatMs(d.ttft_ms)}<//>`}
      ${d.metadata?.queue_time_ms !== undefined && html`<${Row} label="Queue wait">${formatMs(d.metadata.queue_time_ms)}${d.metadata.priority !== undefined ? ` (priority ${d.metadata.priority})` : ''}<//>`}
      <${Row} label="Retries">${retries === null ? '—' : typeof retries === 'object' ? JSON.stringify(retries) : String(retries)}<//>
      <${Row} label="Fallbacks">${fallbacks === null ? '—' : Array.isArray(fallbacks) ? fallbacks.join(', ') || '—' : JSON.stringify(fallbacks)}<//>
      <${Row} label="Tool calls">${tools === null ? '—' : html`<pre>${JSON.stringify(tools, null, 2)}</pre>`}<//>
      ${d.request_tags?.length ? html`<${Row} label="Tags">${d.request_tags.join(', ')}<//>` : null}
      <${Row} label="Messages">${messages === null && response === null
        ? html`<span class="muted">not kept (general_settings.store_prompts_in_spend_logs is off)</span>`
        : html`<pre>${JSON.stringify({ messages, response }, null, 2)}</pre>`}<//>
      ${d.metadata && Object.keys(d.metadata).length > 0 && html`<${Row} label="Metadata"><pre>${JSON.stringify(d.metadata, null, 2)}</pre><//>`}
    </dl>`}
  </aside>`
}
