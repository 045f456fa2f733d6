/**
 * Teams: /team/list (an array, each with its keys), /team/new, /team/update (body team_id + changed fields),
 * /team/block and /team/unblock ({team_id}), /team/member_add ({team_id, member: {role, user_id | user_email}}),
 * /team/delete ({team_ids: [...]}; the team's keys go with it).
 */
import { useState } from 'preact/hooks'
import { get, post } from '../api.js'
import {
  Badge, ConfirmDialog, ErrorBanner, FormDialog, formatLimitUsd, formatList, formatUsd, html, Loading, PageHeader, short,
  Table, useLoad,
} from '../components.js'

const FIELDS = [
  { name: 'team_alias', label: 'Team alias', required: true },
  { name: 'models', label: 'Models (comma-separated)', type: 'list', hint: 'Empty: every model.' },
  { name: 'max_budget', label: 'Max budget (USD)', type: 'number' },
  { name: 'budget_duration', label: 'Budget duration', placeholder: '30d' },
  { name: 'rpm_limit', label: 'RPM limit', type: 'number', step: 1 },
  { name: 'tpm_limit', label: 'TPM limit', type: 'number', step: 1 },
]
const NEW_FIELDS = [{ name: 'team_id', label: 'Team ID', hint: 'Optional: a generated id is used when empty.' }, ...FIELDS]

const MEMBER_FIELDS = [
  { name: 'user_id', label: 'User ID' },
  { name: 'user_email', label: 'User email' },
  { name: 'role', label: 'Role in team', type: 'select', options: ['user', 'admin'], default: 'user' },
]

export default function TeamsPage() {
  const teams = useLoad(() => get('/team/list').then((r) => (Array.isArray(r) ? r : [])), [])
  const [dialog, setDialog] = useState(null)
  const [error, setError] = useState(null)
  const close = () => setDialog(null)
  const done = () => { setDialog(null); teams.reload() }

  async function toggleBlock(t) {
    setError(null)
    try {
      await post(t.blocked ? '/team/unblock' : '/team/block', { team_id: t.team_id })
      teams.reload()
    } catch (err) {
      setError(err)
    }
  }

  const columns = [
    { key: 'team_alias', label: 'Alias', render: (t) => t.team_alias ?? html`<span class="muted">no alias</span>` },
    { key: 'team_id', label: 'Team ID', render: (t) => html`<code title=${t.team_id}>${short(t.team_id, 14)}</code>` },
    { key: 'models', label: 'Models', render: (t) => (t.models?.length ? formatList(t.models) : 'all') },
    { key: 'members', label: 'Members', className: 'num', render: (t) => (t.members_with_roles ?? []).length },
    { key: 'keys', label: 'Keys', className: 'num', render: (t) => (t.keys ?? []).length },
    { key: 'spend', label: 'Spend', className: 'num', render: (t) => formatUsd(t.spend) },
    { key: 'max_budget', label: 'Max budget', className: 'num', render: (t) => formatLimitUsd(t.max_budget) },
    { key: 'limits', label: 'RPM / TPM', render: (t) => `${t.rpm_limit ?? '—'} / ${t.tpm_limit ?? '—'}` },
    { key: 'blocked', label: 'Status', render: (t) => (t.blocked ? html`<${Badge} tone="bad">Blocked<//>` : html`<${Badge} tone="good">Active<//>`) },
    {
      key: 'actions', label: 'Actions', className: 'actions',
      render: (t) => html`<div class="row-actions">
        <button type="button" onClick=${() => setDialog({ kind: 'edit', team: t })}>Edit</button>
        <button type="button" onClick=${() => setDialog({ kind: 'member', team: t })}>Add member</button>
        <button type="button" onClick=${() => toggleBlock(t)}>${t.blocked ? 'Unblock' : 'Block'}</button>
        <button type="button" class="danger" onClick=${() => setDialog({ kind: 'delete', team: t })}>Delete</button>
      </div>`,
    },
  ]

  return html`<section>
    <${PageHeader} title="Teams">
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Create team</button>
    <//>
    <${ErrorBanner} error=${error ?? teams.error} onDismiss=${error ? () => setError(null) : undefined} />
    ${teams.loading && !teams.data ? html`<${Loading} />`
      : html`<${Table} columns=${columns} rows=${teams.data ?? []} rowKey=${(t) => t.team_id} empty="No teams yet" />`}
    ${dialog?.kind === 'create' && html`<${FormDialog} title="Create team" fields=${NEW_FIELDS} submitLabel="Create" onClose=${close}
      onSubmit=${async (body) => { await post('/team/new', body); done() }} />`}
    ${dialog?.kind === 'edit' && html`<${FormDialog} title=${`Edit team ${dialog.team.team_alias ?? dialog.team.team_id}`}
      fields=${FIELDS} initial=${dialog.team} submitLabel="Save" onClose=${close}
      onSubmit=${async (body) => {
        if (Object.keys(body).length) await post('/team/update', { team_id: dialog.team.team_id, ...body })
        done()
      }} />`}
    ${dialog?.kind === 'member' && html`<${FormDialog} title=${`Add member to ${dialog.team.team_alias ?? dialog.team.team_id}`}
      fields=${MEMBER_FIELDS} submitLabel="Add member" onClose=${close}
      intro="Give a user ID or an email; a user that does not exist yet is created."
      onSubmit=${async (body) => {
        const member = { role: body.role ?? 'user' }
        if (body.user_id) member.user_id = body.user_id
        if (body.user_email) member.user_email = body.user_email
        await post('/team/member_add', { team_id: dialog.team.team_id, member })
        done()
      }} />`}
    ${dialog?.kind === 'delete' && html`<${ConfirmDialog} title="Delete team"
      message=${`Delete team ${dialog.team.team_alias ?? dialog.team.team_id}? Its ${(dialog.team.keys ?? []).length} key(s) are deleted with it.`}
      confirmLabel="Yes, delete" onClose=${close}
      onConfirm=${async () => { await post('/team/delete', { team_ids: [dialog.team.team_id] }); done() }} />`}
  </section>`
}
