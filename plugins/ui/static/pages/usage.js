/**
 * Usage over a date range (default: the last 30 days) from /ui/api/usage: total spend (6 decimals), tokens and
 * calls, spend per day as a chart, and tables per key, team, model group and provider (each biggest spend first),
 * with the top spenders (keys) on top.
 */
import { useState } from 'preact/hooks'
import { get } from '../api.js'
import {
  Chart, ErrorBanner, Field, formatInt, formatUsd, html, isoDay, Loading, PageHeader, short, Table, Tile, useLoad,
} from '../components.js'

function defaultRange() {
  const end = new Date()
  const start = new Date(end.getTime() - 29 * 86_400_000)
  return { from: isoDay(start), to: isoDay(end) }
}

const money = (r) => formatUsd(r.spend)
const tokens = (r) => formatInt((r.prompt_tokens ?? 0) + (r.completion_tokens ?? 0))
const common = [
  { key: 'spend', label: 'Spend', className: 'num', render: money },
  { key: 'calls', label: 'Calls', className: 'num', render: (r) => formatInt(r.calls) },
  { key: 'tokens', label: 'Tokens', className: 'num', render: tokens },
]

/** The y-axis label of a USD chart: short, to the precision the values need. */
function axisUsd(v) {
  if (v === 0) return '$0'
  return v >= 1 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`
}

export default function UsagePage() {
  const [range, setRange] = useState(defaultRange)
  const [applied, setApplied] = useState(range)
  const usage = useLoad(() => get('/ui/api/usage', { start_date: applied.from, end_date: applied.to }), [applied.from, applied.to])
  const d = usage.data
  const t = d?.totals
  function apply(e) {
    e.preventDefault()
    setApplied(range)
  }
  const byKey = [
    { key: 'key_alias', label: 'Key', render: (r) => r.key_alias ?? (r.api_key ? html`<code title=${r.api_key}>${short(r.api_key, 12)}</code>` : html`<span class="muted">master key / none</span>`) },
    ...common,
  ]
  const byTeam = [{ key: 'team', label: 'Team', render: (r) => r.team_alias ?? r.team_id ?? html`<span class="muted">no team</span>` }, ...common]
  const byModel = [{ key: 'model_group', label: 'Model group' }, ...common]
  const byProvider = [{ key: 'provider', label: 'Provider', render: (r) => r.provider ?? '—' }, ...common]
  return html`<section>
    <${PageHeader} title="Usage" />
    <form class="filters" onSubmit=${apply}>
      <${Field} label="From" type="date" value=${range.from} onChange=${(v) => setRange((r) => ({ ...r, from: v }))} />
      <${Field} label="To" type="date" value=${range.to} onChange=${(v) => setRange((r) => ({ ...r, to: v }))} />
      <button type="submit" class="primary">Show</button>
    </form>
    <${ErrorBanner} error=${usage.error} />
    ${usage.loading && !d ? html`<${Loading} />` : d && html`
      <div class="tiles">
        <${Tile} label="Total spend" value=${formatUsd(t?.spend ?? 0, 6)} testid="usage-total-spend" />
        <${Tile} label="Calls" value=${formatInt(t?.calls ?? 0)} />
        <${Tile} label="Prompt tokens" value=${formatInt(t?.prompt_tokens ?? 0)} />
        <${Tile} label="Completion tokens" value=${formatInt(t?.completion_tokens ?? 0)} />
      </div>
      <h2>Spend per day</h2>
      <${Chart} kind="bar" label="Spend per day (USD)" format=${axisUsd}
        points=${(d.days ?? []).map((x) => ({ x: x.date.slice(5), y: x.spend }))} />
      <h2>Calls per day</h2>
      <${Chart} kind="line" integer label="Calls per day" format=${(v) => formatInt(v)}
        points=${(d.days ?? []).map((x) => ({ x: x.date.slice(5), y: x.calls }))} />
      <div class="grid-2">
        <div>
          <h2>Top spenders</h2>
          <${Table} columns=${byKey} rows=${(d.by_key ?? []).slice(0, 10)} rowKey=${(r) => r.api_key} empty="No calls in this period" />
        </div>
        <div>
          <h2>By team</h2>
          <${Table} columns=${byTeam} rows=${d.by_team ?? []} rowKey=${(r) => r.team_id ?? ''} empty="No calls in this period" />
        </div>
        <div>
          <h2>By model group</h2>
          <${Table} columns=${byModel} rows=${d.by_model ?? []} rowKey=${(r) => r.model_group} empty="No calls in this period" />
        </div>
        <div>
          <h2>By provider</h2>
          <${Table} columns=${byProvider} rows=${d.by_provider ?? []} rowKey=${(r) => r.provider ?? ''} empty="No calls in this period" />
        </div>
      </div>
      ${(d.by_key ?? []).length > 10 && html`<h2>All keys</h2>
        <${Table} columns=${byKey} rows=${d.by_key} rowKey=${(r) => r.api_key} />`}`}
  </section>`
}
