/**
 * Models: the deployments of each model group (/model/info: model_name, litellm_params without keys, model_info
 * with id, db_model, litellm_provider, mode, prices) joined with what /ui/api/live knows of each (cooling, rpm/tpm
 * use this minute, mean latency). Add, edit and delete go to /model/new, /model/update ({model_info: {id}, ...})
 * and /model/delete ({id}); only stored (db) deployments can be changed, and only with store_model_in_db on; the
 * gateway says so in its error, shown here as a note.
 */
import { useState } from 'preact/hooks'
import { get, post } from '../api.js'
import {
  Badge, ConfirmDialog, ErrorBanner, FormDialog, formatInt, formatMs, formatTime, html, Loading, Notice, PageHeader,
  Table, useLoad,
} from '../components.js'

const perMillion = (v) => (typeof v === 'number' ? `$${(v * 1e6).toFixed(4).replace(/\.?0+$/, '')}` : '—')

const NEW_FIELDS = [
  { name: 'model_name', label: 'Model group (public name)', required: true, placeholder: 'gpt-4o-mini' },
  { name: 'model', label: 'Provider model', required: true, placeholder: 'openai/gpt-4o-mini' },
  { name: 'api_base', label: 'API base URL', placeholder: 'https://api.openai.com/v1' },
  { name: 'api_key', label: 'API key', type: 'password', hint: 'Or os.environ/NAME to read it from the environment.' },
  { name: 'rpm', label: 'RPM', type: 'number', step: 1 },
  { name: 'tpm', label: 'TPM', type: 'number', step: 1 },
]
const EDIT_FIELDS = NEW_FIELDS.map((f) => (f.name === 'api_key' ? { ...f, hint: 'Leave empty to keep the current key.' } : f))

/** The form's flat values as /model/new's body. */
function modelBody(v) {
  const params = {}
  for (const k of ['model', 'api_base', 'api_key', 'rpm', 'tpm']) if (v[k] !== undefined && v[k] !== null) params[k] = v[k]
  const body = {}
  if (v.model_name) body.model_name = v.model_name
  if (Object.keys(params).length) body.litellm_params = params
  return body
}

function isStoreOff(err) {
  return err?.param === 'store_model_in_db' || /store_model_in_db/i.test(err?.message ?? '')
}

async function load() {
  const [info, live] = await Promise.all([
    get('/model/info'),
    get('/ui/api/live').catch(() => null),
  ])
  const byId = new Map((live?.deployments ?? []).map((d) => [d.id, d]))
  return (info.data ?? []).map((m) => ({ ...m, id: m.model_info?.id, live: byId.get(m.model_info?.id) ?? null }))
}

export default function ModelsPage() {
  const list = useLoad(load, [])
  const [dialog, setDialog] = useState(null)
  const [note, setNote] = useState(null)
  const close = () => setDialog(null)
  const done = () => { setDialog(null); list.reload() }
  /** Runs a change; a disabled store_model_in_db becomes a note instead of an error. */
  const change = (fn) => async (body) => {
    try {
      await fn(body)
      done()
    } catch (err) {
      if (isStoreOff(err)) {
        setNote(err.message)
        setDialog(null)
        return
      }
      throw err
    }
  }

  const rows = list.data ?? []
  const groups = [...new Set(rows.map((r) => r.model_name))]
  const columns = [
    { key: 'model_name', label: 'Model group', render: (m) => html`<strong>${m.model_name}</strong>` },
    { key: 'model', label: 'Deployment', render: (m) => html`<code>${m.litellm_params?.model ?? '—'}</code>` },
    { key: 'id', label: 'ID', render: (m) => html`<code title=${m.id}>${m.id}</code>` },
    { key: 'mode', label: 'Mode', render: (m) => m.model_info?.mode ?? '—' },
    {
      key: 'price', label: 'Input / output per 1M', className: 'num',
      render: (m) => `${perMillion(m.model_info?.input_cost_per_token)} / ${perMillion(m.model_info?.output_cost_per_token)}`,
    },
    {
      key: 'state', label: 'State',
      render: (m) => (m.live?.cooling
        ? html`<${Badge} tone="bad">Cooling until ${formatTime(m.live.cooldown_until)}<//>`
        : html`<${Badge} tone="good">Ready<//>`),
    },
    {
      key: 'use', label: 'RPM / TPM used',
      render: (m) => {
        const l = m.live
        if (!l) return '—'
        const lim = (used, limit) => `${used === null || used === undefined ? '—' : formatInt(used)}${limit ? ` of ${formatInt(limit)}` : ''}`
        return `${lim(l.rpm_used, l.rpm_limit ?? m.litellm_params?.rpm)} / ${lim(l.tpm_used, l.tpm_limit ?? m.litellm_params?.tpm)}`
      },
    },
    { key: 'latency', label: 'Latency (avg)', className: 'num', render: (m) => formatMs(m.live?.latency_ms_avg) },
    { key: 'source', label: 'Source', render: (m) => (m.model_info?.db_model ? 'database' : 'config') },
    {
      key: 'actions', label: 'Actions', className: 'actions',
      render: (m) => html`<div class="row-actions">
        <button type="button" onClick=${() => setDialog({ kind: 'edit', row: m })}>Edit</button>
        <button type="button" class="danger" onClick=${() => setDialog({ kind: 'delete', row: m })}>Delete</button>
      </div>`,
    },
  ]
  const initialOf = (m) => ({
    model_name: m.model_name,
    model: m.litellm_params?.model,
    api_base: m.litellm_params?.api_base,
    rpm: m.litellm_params?.rpm,
    tpm: m.litellm_params?.tpm,
  })
  return html`<section>
    <${PageHeader} title="Models">
      <button type="button" onClick=${list.reload}>Refresh</button>
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Add model</button>
    <//>
    <p class="intro">${groups.length} model group(s), ${rows.length} deployment(s). Deployments from the config file change only in the file.</p>
    ${note && html`<${Notice}>${note}<//>`}
    <${ErrorBanner} error=${list.error} />
    ${list.loading && !list.data ? html`<${Loading} />`
      : html`<${Table} columns=${columns} rows=${rows} rowKey=${(m) => m.id} empty="No models configured" />`}
    ${dialog?.kind === 'create' && html`<${FormDialog} title="Add model" fields=${NEW_FIELDS} submitLabel="Add" onClose=${close}
      onSubmit=${change((v) => post('/model/new', modelBody(v)))} />`}
    ${dialog?.kind === 'edit' && html`<${FormDialog} title=${`Edit deployment ${dialog.row.id}`} fields=${EDIT_FIELDS}
      initial=${initialOf(dialog.row)} submitLabel="Save" onClose=${close}
      onSubmit=${change((v) => post('/model/update', { ...modelBody(v), model_info: { id: dialog.row.id } }))} />`}
    ${dialog?.kind === 'delete' && html`<${ConfirmDialog} title="Delete deployment"
      message=${`Delete deployment ${dialog.row.id} of ${dialog.row.model_name}? Calls stop going to it at once.`}
      confirmLabel="Yes, delete" onClose=${close}
      onConfirm=${change(() => post('/model/delete', { id: dialog.row.id }))} />`}
  </section>`
}
