/**
 * Internal users: /user/list ({users, total, page, page_size, total_pages}), /user/new (creates a key too unless
 * auto_create_key is false: that key is shown once), /user/update ({user_id, ...changed}), /user/delete
 * ({user_ids: [...]}; the user's keys go with it).
 */
import { useState } from 'preact/hooks'
import { get, post } from '../api.js'
import {
  ConfirmDialog, ErrorBanner, FormDialog, formatLimitUsd, formatList, formatUsd, html, Loading, PageHeader, Pager,
  SecretOnce, Table, useLoad,
} from '../components.js'

const ROLES = [
  { value: 'internal_user', label: 'Internal user' },
  { value: 'internal_user_viewer', label: 'Internal user (viewer)' },
  { value: 'proxy_admin', label: 'Proxy admin' },
  { value: 'proxy_admin_viewer', label: 'Proxy admin (viewer)' },
]
const roleLabel = (r) => ROLES.find((x) => x.value === r)?.label ?? r ?? '—'

const FIELDS = [
  { name: 'user_email', label: 'User email' },
  { name: 'user_alias', label: 'User alias' },
  { name: 'user_role', label: 'Role', type: 'select', options: ROLES, default: 'internal_user' },
  { name: 'models', label: 'Models (comma-separated)', type: 'list', hint: 'Empty: every model.' },
  { name: 'max_budget', label: 'Max budget (USD)', type: 'number' },
  { name: 'budget_duration', label: 'Budget duration', placeholder: '30d' },
]
const NEW_FIELDS = [
  { name: 'user_id', label: 'User ID', hint: 'Optional: a generated id is used when empty.' },
  ...FIELDS,
  { name: 'auto_create_key', label: 'Create a key for this user', type: 'checkbox', default: false },
]
const PAGE_SIZE = 50

export default function UsersPage() {
  const [page, setPage] = useState(1)
  const users = useLoad(() => get('/user/list', { page, page_size: PAGE_SIZE }), [page])
  const [dialog, setDialog] = useState(null)
  const close = () => setDialog(null)
  const done = () => { setDialog(null); users.reload() }

  const columns = [
    { key: 'user_id', label: 'User ID', render: (u) => html`<code>${u.user_id}</code>` },
    { key: 'user_email', label: 'Email' },
    { key: 'user_alias', label: 'Alias' },
    { key: 'user_role', label: 'Role', render: (u) => roleLabel(u.user_role) },
    { key: 'teams', label: 'Teams', render: (u) => formatList(u.teams) },
    { key: 'key_count', label: 'Keys', className: 'num' },
    { key: 'spend', label: 'Spend', className: 'num', render: (u) => formatUsd(u.spend) },
    { key: 'max_budget', label: 'Max budget', className: 'num', render: (u) => formatLimitUsd(u.max_budget) },
    {
      key: 'actions', label: 'Actions', className: 'actions',
      render: (u) => html`<div class="row-actions">
        <button type="button" onClick=${() => setDialog({ kind: 'edit', user: u })}>Edit</button>
        <button type="button" class="danger" onClick=${() => setDialog({ kind: 'delete', user: u })}>Delete</button>
      </div>`,
    },
  ]
  const d = users.data
  return html`<section>
    <${PageHeader} title="Users">
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Create user</button>
    <//>
    <${ErrorBanner} error=${users.error} />
    ${users.loading && !d ? html`<${Loading} />` : html`
      <${Table} columns=${columns} rows=${d?.users ?? []} rowKey=${(u) => u.user_id} empty="No users yet" />
      <${Pager} page=${page} pages=${d?.total_pages ?? 1} total=${d?.total} onPage=${setPage} />`}
    ${dialog?.kind === 'create' && html`<${FormDialog} title="Create user" fields=${NEW_FIELDS} submitLabel="Create" onClose=${done}
      onSubmit=${async (body) => {
        body.auto_create_key = !!body.auto_create_key
        const r = await post('/user/new', body)
        if (r.key) return html`<${SecretOnce} label=${`User ${r.user_id} created with this key:`} value=${r.key} />`
        done()
      }} />`}
    ${dialog?.kind === 'edit' && html`<${FormDialog} title=${`Edit user ${dialog.user.user_id}`} fields=${FIELDS}
      initial=${dialog.user} submitLabel="Save" onClose=${close}
      onSubmit=${async (body) => {
        if (Object.keys(body).length) await post('/user/update', { user_id: dialog.user.user_id, ...body })
        done()
      }} />`}
    ${dialog?.kind === 'delete' && html`<${ConfirmDialog} title="Delete user"
      message=${`Delete user ${dialog.user.user_email ?? dialog.user.user_id}? Their keys are deleted with them.`}
      confirmLabel="Yes, delete" onClose=${close}
      onConfirm=${async () => { await post('/user/delete', { user_ids: [dialog.user.user_id] }); done() }} />`}
  </section>`
}
