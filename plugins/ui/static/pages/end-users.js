/**
 * End users (LiteLLM's customers: the `user` field of a model call): /customer/list (an array), /customer/new
 * ({user_id, ...}), /customer/update, /customer/block and /customer/unblock ({user_ids: [...]}), /customer/delete
 * ({user_ids: [...]}). A budget row may be linked with budget_id instead of own limits.
 */
import { useState } from 'preact/hooks'
import { get, post } from '../api.js'
import {
  Badge, ConfirmDialog, ErrorBanner, FormDialog, formatLimitUsd, formatUsd, html, Loading, PageHeader, Table, useLoad,
} from '../components.js'

function fields(budgets) {
  return [
    { name: 'alias', label: 'Alias' },
    { name: 'max_budget', label: 'Max budget (USD)', type: 'number', hint: 'Or link a budget below (not both).' },
    { name: 'budget_duration', label: 'Budget duration', placeholder: '30d' },
    { name: 'rpm_limit', label: 'RPM limit', type: 'number', step: 1 },
    { name: 'tpm_limit', label: 'TPM limit', type: 'number', step: 1 },
    {
      name: 'budget_id', label: 'Budget', type: 'select',
      options: [{ value: '', label: 'No linked budget' }, ...budgets.map((b) => ({ value: b.budget_id, label: b.budget_id }))],
    },
    { name: 'allowed_model_region', label: 'Allowed region', type: 'select', options: [{ value: '', label: 'Any' }, 'eu', 'us'] },
    { name: 'default_model', label: 'Default model' },
  ]
}

export default function EndUsersPage() {
  const list = useLoad(() => get('/customer/list').then((r) => (Array.isArray(r) ? r : [])), [])
  const budgets = useLoad(() => get('/budget/list').then((r) => (Array.isArray(r) ? r : [])).catch(() => []), [])
  const [dialog, setDialog] = useState(null)
  const [error, setError] = useState(null)
  const close = () => setDialog(null)
  const done = () => { setDialog(null); list.reload() }
  const f = fields(budgets.data ?? [])

  async function toggleBlock(e) {
    setError(null)
    try {
      await post(e.blocked ? '/customer/unblock' : '/customer/block', { user_ids: [e.user_id] })
      list.reload()
    } catch (err) {
      setError(err)
    }
  }

  const columns = [
    { key: 'user_id', label: 'End user ID', render: (e) => html`<code>${e.user_id}</code>` },
    { key: 'alias', label: 'Alias' },
    { key: 'spend', label: 'Spend', className: 'num', render: (e) => formatUsd(e.spend) },
    { key: 'max_budget', label: 'Max budget', className: 'num', render: (e) => formatLimitUsd(e.litellm_budget_table?.max_budget ?? e.max_budget) },
    { key: 'budget_id', label: 'Budget' },
    { key: 'allowed_model_region', label: 'Region' },
    { key: 'blocked', label: 'Status', render: (e) => (e.blocked ? html`<${Badge} tone="bad">Blocked<//>` : html`<${Badge} tone="good">Active<//>`) },
    {
      key: 'actions', label: 'Actions', className: 'actions',
      render: (e) => html`<div class="row-actions">
        <button type="button" onClick=${() => setDialog({ kind: 'edit', row: e })}>Edit</button>
        <button type="button" onClick=${() => toggleBlock(e)}>${e.blocked ? 'Unblock' : 'Block'}</button>
        <button type="button" class="danger" onClick=${() => setDialog({ kind: 'delete', row: e })}>Delete</button>
      </div>`,
    },
  ]
  return html`<section>
    <${PageHeader} title="End users">
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Create end user</button>
    <//>
    <p class="intro">End users are the <code>user</code> field of a model call; limits here apply to every call made for them.</p>
    <${ErrorBanner} error=${error ?? list.error} onDismiss=${error ? () => setError(null) : undefined} />
    ${list.loading && !list.data ? html`<${Loading} />`
      : html`<${Table} columns=${columns} rows=${list.data ?? []} rowKey=${(e) => e.user_id} empty="No end users yet" />`}
    ${dialog?.kind === 'create' && html`<${FormDialog} title="Create end user"
      fields=${[{ name: 'user_id', label: 'End user ID', required: true }, ...f]} submitLabel="Create" onClose=${close}
      onSubmit=${async (body) => { await post('/customer/new', body); done() }} />`}
    ${dialog?.kind === 'edit' && html`<${FormDialog} title=${`Edit end user ${dialog.row.user_id}`} fields=${f}
      initial=${dialog.row} submitLabel="Save" onClose=${close}
      onSubmit=${async (body) => {
        if (Object.keys(body).length) await post('/customer/update', { user_id: dialog.row.user_id, ...body })
        done()
      }} />`}
    ${dialog?.kind === 'delete' && html`<${ConfirmDialog} title="Delete end user"
      message=${`Delete end user ${dialog.row.user_id}? Their spend record goes with it.`}
      confirmLabel="Yes, delete" onClose=${close}
      onConfirm=${async () => { await post('/customer/delete', { user_ids: [dialog.row.user_id] }); done() }} />`}
  </section>`
}
