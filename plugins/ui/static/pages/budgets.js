/**
 * Budget rows keys and end users can link with budget_id: /budget/list (an array), /budget/new, /budget/update
 * ({budget_id, ...changed}), /budget/delete ({id}; refused while a key or end user still links it).
 */
import { useState } from 'preact/hooks'
import { get, post } from '../api.js'
import {
  ConfirmDialog, ErrorBanner, FormDialog, formatLimitUsd, formatTime, formatUsd, html, Loading, PageHeader, Table, useLoad,
} from '../components.js'

const FIELDS = [
  { name: 'max_budget', label: 'Max budget (USD)', type: 'number' },
  { name: 'soft_budget', label: 'Soft budget (USD)', type: 'number', hint: 'Alert threshold; calls are not refused.' },
  { name: 'budget_duration', label: 'Budget duration', placeholder: '30d' },
  { name: 'rpm_limit', label: 'RPM limit', type: 'number', step: 1 },
  { name: 'tpm_limit', label: 'TPM limit', type: 'number', step: 1 },
  { name: 'max_parallel_requests', label: 'Max parallel requests', type: 'number', step: 1 },
]

export default function BudgetsPage() {
  const list = useLoad(() => get('/budget/list').then((r) => (Array.isArray(r) ? r : [])), [])
  const [dialog, setDialog] = useState(null)
  const close = () => setDialog(null)
  const done = () => { setDialog(null); list.reload() }
  const columns = [
    { key: 'budget_id', label: 'Budget ID', render: (b) => html`<code>${b.budget_id}</code>` },
    { key: 'max_budget', label: 'Max budget', className: 'num', render: (b) => formatLimitUsd(b.max_budget) },
    { key: 'soft_budget', label: 'Soft budget', className: 'num', render: (b) => formatLimitUsd(b.soft_budget) },
    { key: 'spend', label: 'Spend', className: 'num', render: (b) => formatUsd(b.spend) },
    { key: 'budget_duration', label: 'Period' },
    { key: 'budget_reset_at', label: 'Resets', render: (b) => formatTime(b.budget_reset_at) },
    { key: 'limits', label: 'RPM / TPM', render: (b) => `${b.rpm_limit ?? '—'} / ${b.tpm_limit ?? '—'}` },
    {
      key: 'actions', label: 'Actions', className: 'actions',
      render: (b) => html`<div class="row-actions">
        <button type="button" onClick=${() => setDialog({ kind: 'edit', row: b })}>Edit</button>
        <button type="button" class="danger" onClick=${() => setDialog({ kind: 'delete', row: b })}>Delete</button>
      </div>`,
    },
  ]
  return html`<section>
    <${PageHeader} title="Budgets">
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Create budget</button>
    <//>
    <${ErrorBanner} error=${list.error} />
    ${list.loading && !list.data ? html`<${Loading} />`
      : html`<${Table} columns=${columns} rows=${list.data ?? []} rowKey=${(b) => b.budget_id} empty="No budgets yet" />`}
    ${dialog?.kind === 'create' && html`<${FormDialog} title="Create budget"
      fields=${[{ name: 'budget_id', label: 'Budget ID', hint: 'Optional: a generated id is used when empty.' }, ...FIELDS]}
      submitLabel="Create" onClose=${close}
      onSubmit=${async (body) => { await post('/budget/new', body); done() }} />`}
    ${dialog?.kind === 'edit' && html`<${FormDialog} title=${`Edit budget ${dialog.row.budget_id}`} fields=${FIELDS}
      initial=${dialog.row} submitLabel="Save" onClose=${close}
      onSubmit=${async (body) => {
        if (Object.keys(body).length) await post('/budget/update', { budget_id: dialog.row.budget_id, ...body })
        done()
      }} />`}
    ${dialog?.kind === 'delete' && html`<${ConfirmDialog} title="Delete budget"
      message=${`Delete budget ${dialog.row.budget_id}? Keys and end users linked to it must be unlinked first.`}
      confirmLabel="Yes, delete" onClose=${close}
      onConfirm=${async () => { await post('/budget/delete', { id: dialog.row.budget_id }); done() }} />`}
  </section>`
}
