/**
 * What the gateway is doing now, from /ui/api/live polled every second while the page is shown (paused while the
 * tab is hidden, stopped when the page closes): calls in flight, the priority queue per model group and priority
 * (in flight, queued, oldest wait; per group capacity and this minute's rpm/tpm use), rate-limit windows and the
 * deployments (cooling, use, latency).
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import { get } from '../api.js'
import { Badge, ErrorBanner, formatInt, formatMs, formatTime, html, Loading, Meter, PageHeader, short, Table, Tile } from '../components.js'

const INTERVAL_MS = 1000

/** Polls `load` every INTERVAL_MS while the document is visible; one request at a time. */
function usePoll(load) {
  const [state, setState] = useState({ data: null, error: null })
  const [paused, setPaused] = useState(false)
  const alive = useRef(true)
  useEffect(() => {
    alive.current = true
    let timer = null
    let running = false
    const ctrl = new AbortController()
    async function tick() {
      timer = null
      if (!alive.current || document.hidden || running) return
      running = true
      try {
        const data = await load(ctrl.signal)
        if (alive.current) setState({ data, error: null })
      } catch (error) {
        if (alive.current && error?.name !== 'AbortError') setState((s) => ({ data: s.data, error }))
      }
      running = false
      if (alive.current && !document.hidden) timer = setTimeout(tick, INTERVAL_MS)
    }
    function visibility() {
      setPaused(document.hidden)
      if (!document.hidden && !timer && !running) tick()
      if (document.hidden && timer) {
        clearTimeout(timer)
        timer = null
      }
    }
    document.addEventListener('visibilitychange', visibility)
    tick()
    return () => {
      alive.current = false
      if (timer) clearTimeout(timer)
      ctrl.abort()
      document.removeEventListener('visibilitychange', visibility)
    }
  }, [])
  return { ...state, paused }
}

/** Queue rows: one per model group and priority level. */
function queueRows(queue) {
  const out = []
  for (const [group, g] of Object.entries(queue?.models ?? {})) {
    const prios = Object.entries(g.priorities ?? {})
    prios.sort(([a], [b]) => (a === 'none' ? 1 : b === 'none' ? -1 : Number(a) - Number(b)))
    out.push({ group, g, prios })
  }
  return out.sort((a, b) => a.group.localeCompare(b.group))
}

function testidOf(group) {
  return `queue-${group}`
}

function QueueGroup({ group, g, prios }) {
  return html`<div class="queue-card" data-testid=${testidOf(group)}>
    <div class="queue-head">
      <h3>${group}</h3>
      ${g.queued > 0 ? html`<${Badge} tone="warm">${g.queued} queued<//>` : html`<${Badge} tone="good">no wait<//>`}
    </div>
    <div class="queue-nums">
      <span>In flight: <strong data-field="in-flight">${formatInt(g.inFlight)}</strong>${g.capacity !== null && g.capacity !== undefined ? ` of ${formatInt(g.capacity)}` : ''}</span>
      <span>Queued: <strong data-field="queued">${formatInt(g.queued)}</strong></span>
      <span>Oldest wait: ${formatMs(g.oldestWaitMs)}</span>
    </div>
    <div class="queue-meters">
      <span>RPM <${Meter} used=${g.rpmUsed} limit=${g.rpm} label=${`${group} requests this minute`} /></span>
      <span>TPM <${Meter} used=${g.tpmUsed} limit=${g.tpm} label=${`${group} tokens this minute`} /></span>
    </div>
    ${prios.length > 0 && html`<table class="compact">
      <caption class="visually-hidden">${group} by priority</caption>
      <thead><tr><th scope="col">Priority</th><th scope="col">In flight</th><th scope="col">Queued</th><th scope="col">Oldest wait</th></tr></thead>
      <tbody>${prios.map(([p, s]) => html`<tr key=${p}>
        <td>${p === 'none' ? 'none' : p}</td><td class="num">${formatInt(s.inFlight)}</td>
        <td class="num">${formatInt(s.queued)}</td><td class="num">${formatMs(s.oldestWaitMs)}</td>
      </tr>`)}</tbody>
    </table>`}
  </div>`
}

export default function LivePage() {
  const live = usePoll((signal) => get('/ui/api/live', undefined, { signal }))
  const d = live.data
  const groups = queueRows(d?.queue)
  const queued = groups.reduce((n, x) => n + (x.g.queued ?? 0), 0)
  const cooling = (d?.deployments ?? []).filter((x) => x.cooling).length
  const limits = [
    { key: 'scope', label: 'Scope', render: (r) => html`${r.scope} <code title=${r.id}>${short(r.id, 16)}</code>` },
    { key: 'rpm', label: 'Requests / min', render: (r) => html`<${Meter} used=${r.rpm_used} limit=${r.rpm_limit} label="requests this minute" />` },
    { key: 'tpm', label: 'Tokens / min', render: (r) => html`<${Meter} used=${r.tpm_used} limit=${r.tpm_limit} label="tokens this minute" />` },
    { key: 'par', label: 'Parallel', render: (r) => html`<${Meter} used=${r.parallel_used} limit=${r.parallel_limit} label="calls in flight" />` },
  ]
  const deployments = [
    { key: 'model_group', label: 'Model group' },
    { key: 'model', label: 'Deployment', render: (x) => html`<code>${x.provider}/${x.model}</code>` },
    { key: 'state', label: 'State', render: (x) => (x.cooling ? html`<${Badge} tone="bad">Cooling until ${formatTime(x.cooldown_until)}<//>` : html`<${Badge} tone="good">Ready<//>`) },
    { key: 'rpm', label: 'RPM used', className: 'num', render: (x) => (x.rpm_used === null || x.rpm_used === undefined ? '—' : `${formatInt(x.rpm_used)}${x.rpm_limit ? ` of ${formatInt(x.rpm_limit)}` : ''}`) },
    { key: 'tpm', label: 'TPM used', className: 'num', render: (x) => (x.tpm_used === null || x.tpm_used === undefined ? '—' : `${formatInt(x.tpm_used)}${x.tpm_limit ? ` of ${formatInt(x.tpm_limit)}` : ''}`) },
    { key: 'latency', label: 'Latency (avg)', className: 'num', render: (x) => formatMs(x.latency_ms_avg) },
  ]
  return html`<section>
    <${PageHeader} title="Live">
      <span class="muted" role="status">${live.paused ? 'Paused while the tab is hidden' : d ? `Updated ${formatTime(d.at)}` : ''}</span>
    <//>
    <${ErrorBanner} error=${live.error} />
    ${!d && !live.error ? html`<${Loading} />` : d && html`
      <div class="tiles">
        <${Tile} label="Calls in flight" value=${formatInt(d.in_flight)} testid="live-in-flight" />
        <${Tile} label="Queued" value=${formatInt(queued)} testid="live-queued" />
        <${Tile} label="Deployments cooling" value=${formatInt(cooling)} />
      </div>
      <h2>Priority queue</h2>
      ${d.queue === null || d.queue === undefined
        ? html`<p class="empty">The priority queue is not enabled on this gateway.</p>`
        : groups.length === 0
          ? html`<p class="empty">No model group has been queued yet.</p>`
          : html`<div class="queue-grid">${groups.map((x) => html`<${QueueGroup} key=${x.group} ...${x} />`)}</div>`}
      <h2>Rate limits</h2>
      <${Table} columns=${limits} rows=${d.rate_limits ?? []} rowKey=${(r) => `${r.scope}:${r.id}`} empty="No rate-limit windows in use" />
      <h2>Deployments</h2>
      <${Table} columns=${deployments} rows=${d.deployments ?? []} rowKey=${(x) => x.id} empty="No deployments" />`}
  </section>`
}
