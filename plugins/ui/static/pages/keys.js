/**
 * Virtual keys: list (all pages of /key/list with return_full_object=true, filtered here by the search box;
 * a clear key or a hash is looked up with key_hash), create (/key/generate: the key is shown once), edit
 * (/key/update), block and unblock (/key/block, /key/unblock, body {key}), regenerate (/key/regenerate, new key
 * shown once) and delete (/key/delete, body {keys: [...]}). Rows are addressed by the key's hash (`token`).
 */
import { useMemo, useState } from 'preact/hooks'
import { get, post } from '../api.js'
import {
  Badge, ConfirmDialog, Dialog, ErrorBanner, Field, FormDialog, formatLimitUsd, formatList, formatTime, formatUsd, html,
  Loading, PageHeader, Pager, SecretOnce, short, Table, useLoad,
} from '../components.js'

const PAGE = 25
const HASH = /^[0-9a-f]{64}$/i

/** Every key (the API pages by at most 100). */
async function allKeys() {
  const out = []
  for (let page = 1; page <= 50; page++) {
    const r = await get('/key/list', { return_full_object: 'true', size: 100, page })
    out.push(...(r.keys ?? []).filter((k) => typeof k === 'object'))
    if (page >= (r.total_pages ?? 1)) break
  }
  return out
}

function keyFields(teams) {
  return [
    { name: 'key_alias', label: 'Key alias', placeholder: 'e.g. billing-service' },
    { name: 'models', label: 'Models (comma-separated)', type: 'list', hint: 'Empty: every model.', keepEmpty: true },
    { name: 'max_budget', label: 'Max budget (USD)', type: 'number' },
    { name: 'budget_duration', label: 'Budget duration', placeholder: '30d', hint: 'Budget period, e.g. 1d, 7d, 30d. Empty: never resets.' },
    { name: 'rpm_limit', label: 'RPM limit', type: 'number', step: 1 },
    { name: 'tpm_limit', label: 'TPM limit', type: 'number', step: 1 },
    {
      name: 'team_id', label: 'Team', type: 'select',
      options: [{ value: '', label: 'No team' }, ...teams.map((t) => ({ value: t.team_id, label: t.team_alias ? `${t.team_alias} (${short(t.team_id, 8)})` : t.team_id }))],
    },
  ]
}

function matches(k, q) {
  if (!q) return true
  const s = q.toLowerCase()
  return [k.key_alias, k.key_name, k.token, k.team_id, k.user_id].some((v) => typeof v === 'string' && v.toLowerCase().includes(s))
}

export default function KeysPage() {
  const [search, setSearch] = useState('')
  const [page, setPage] = useState(1)
  const [dialog, setDialog] = useState(null)
  const [error, setError] = useState(null)
  const term = search.trim()
  const exact = term.startsWith('sk-') || HASH.test(term)
  const keys = useLoad(async () => {
    if (exact) return (await get('/key/list', { return_full_object: 'true', key_hash: term })).keys ?? []
    return allKeys()
  }, [exact ? term : ''])
  const teams = useLoad(() => get('/team/list').then((r) => (Array.isArray(r) ? r : [])).catch(() => []), [])
  const teamName = (id) => teams.data?.find((t) => t.team_id === id)?.team_alias ?? id

  const filtered = useMemo(() => (keys.data ?? []).filter((k) => exact || matches(k, term)), [keys.data, term, exact])
  const pages = Math.max(1, Math.ceil(filtered.length / PAGE))
  const shown = filtered.slice((Math.min(page, pages) - 1) * PAGE, Math.min(page, pages) * PAGE)
  const close = () => setDialog(null)
  const done = () => { setDialog(null); keys.reload() }

  async function toggleBlock(k) {
    setError(null)
    try {
      await post(k.blocked ? '/key/unblock' : '/key/block', { key: k.token })
      keys.reload()
    } catch (err) {
      setError(err)
    }
  }

  const fields = keyFields(teams.data ?? [])
  const columns = [
    { key: 'key_alias', label: 'Alias', render: (k) => k.key_alias ?? html`<span class="muted">no alias</span>` },
    { key: 'key_name', label: 'Key', render: (k) => html`<code title=${`hash ${k.token}`}>${k.key_name ?? short(k.token)}</code>` },
    { key: 'team_id', label: 'Team', render: (k) => (k.team_id ? teamName(k.team_id) : '—') },
    { key: 'models', label: 'Models', render: (k) => (k.models?.length ? formatList(k.models) : 'all') },
    { key: 'spend', label: 'Spend', className: 'num', render: (k) => formatUsd(k.spend) },
    { key: 'max_budget', label: 'Max budget', className: 'num', render: (k) => formatLimitUsd(k.max_budget) },
    { key: 'limits', label: 'RPM / TPM', render: (k) => `${k.rpm_limit ?? '—'} / ${k.tpm_limit ?? '—'}` },
    { key: 'expires', label: 'Expires', render: (k) => (k.expires ? formatTime(k.expires) : 'never') },
    { key: 'blocked', label: 'Status', render: (k) => (k.blocked ? html`<${Badge} tone="bad">Blocked<//>` : html`<${Badge} tone="good">Active<//>`) },
    {
      key: 'actions', label: 'Actions', className: 'actions',
      render: (k) => html`<div class="row-actions">
        <button type="button" onClick=${() => setDialog({ kind: 'edit', key: k })}>Edit</button>
        <button type="button" onClick=${() => toggleBlock(k)}>${k.blocked ? 'Unblock' : 'Block'}</button>
        <button type="button" onClick=${() => setDialog({ kind: 'regenerate', key: k })}>Regenerate</button>
        <button type="button" class="danger" onClick=${() => setDialog({ kind: 'delete', key: k })}>Delete</button>
      </div>`,
    },
  ]

  return html`<section>
    <${PageHeader} title="Keys">
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Create key</button>
    <//>
    <div class="filters">
      <${Field} label="Search keys" type="search" value=${search} placeholder="alias, key name, hash, team or user"
        onChange=${(v) => { setSearch(v); setPage(1) }} />
    </div>
    <${ErrorBanner} error=${error ?? keys.error} onDismiss=${error ? () => setError(null) : undefined} />
    ${keys.loading && !keys.data ? html`<${Loading} />` : html`
      <${Table} columns=${columns} rows=${shown} rowKey=${(k) => k.token}
        empty=${term ? 'No keys match this search' : 'No keys yet'} />
      <${Pager} page=${Math.min(page, pages)} pages=${pages} total=${filtered.length} onPage=${setPage} />`}

    ${dialog?.kind === 'create' && html`<${FormDialog} title="Create key" fields=${fields} submitLabel="Create" onClose=${done}
      onSubmit=${async (body) => {
        if (!body.models) delete body.models
        const r = await post('/key/generate', body)
        return html`<${SecretOnce} label=${`Key ${r.key_alias ?? r.key_name ?? ''} created.`} value=${r.key} />`
      }} />`}
    ${dialog?.kind === 'edit' && html`<${FormDialog} title=${`Edit key ${dialog.key.key_alias ?? dialog.key.key_name ?? ''}`}
      fields=${fields} initial=${dialog.key} submitLabel="Save" onClose=${close}
      onSubmit=${async (body) => {
        if (Object.keys(body).length) await post('/key/update', { key: dialog.key.token, ...body })
        done()
      }} />`}
    ${dialog?.kind === 'regenerate' && html`<${Regenerate} k=${dialog.key} onClose=${done} />`}
    ${dialog?.kind === 'delete' && html`<${ConfirmDialog} title="Delete key"
      message=${`Delete key ${dialog.key.key_alias ?? dialog.key.key_name}? Calls with it will be refused at once. This cannot be undone.`}
      confirmLabel="Yes, delete" onClose=${close}
      onConfirm=${async () => { await post('/key/delete', { keys: [dialog.key.token] }); done() }} />`}
  </section>`
}

/** Regenerate: confirm, then show the new key once (the old one stops working). */
function Regenerate({ k, onClose }) {
  const [fresh, setFresh] = useState(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  async function go() {
    setBusy(true)
    setError(null)
    try {
      const r = await post('/key/regenerate', { key: k.token })
      setFresh(r.key)
    } catch (err) {
      setError(err)
    }
    setBusy(false)
  }
  return html`<${Dialog} title="Regenerate key" onClose=${onClose}>
    ${fresh
      ? html`<${SecretOnce} label="New key:" value=${fresh} note="The old key no longer works. This is the only time the new key is shown." />
        <div class="dialog-actions"><button type="button" class="primary" onClick=${onClose}>Done</button></div>`
      : html`<p>Regenerate ${k.key_alias ?? k.key_name}? The current key stops working at once; its settings and spend stay.</p>
        <${ErrorBanner} error=${error} />
        <div class="dialog-actions">
          <button type="button" onClick=${onClose}>Cancel</button>
          <button type="button" class="primary" disabled=${busy} onClick=${go}>Regenerate key</button>
        </div>`}
  <//>`
}
