/**
 * Shared pieces of the pages: the `html` template tag, tables, dialogs, form fields, error and empty states, the
 * inline SVG chart, the copy button, number formatting and a small data-loading hook. No inline styles (the CSP
 * forbids them): everything is styled by class from app.css, and charts use SVG attributes.
 */
import { h } from 'preact'
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks'
import htm from 'htm'

export const html = htm.bind(h)

// ---------------------------------------------------------------- formatting

/** USD with a fixed number of decimals (6 by default: model calls cost fractions of a cent). */
export function formatUsd(v, digits = 6) {
  const n = typeof v === 'number' && Number.isFinite(v) ? v : 0
  return `$${n.toFixed(digits)}`
}

/** A budget or limit in USD, or "—" when none. */
export function formatLimitUsd(v) {
  return typeof v === 'number' ? formatUsd(v, 2) : '—'
}

export function formatInt(v) {
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—'
}

export function formatMs(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—'
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`
}

/** A date-time as local "YYYY-MM-DD HH:MM:SS" (ISO input), "—" when none. */
export function formatTime(v) {
  if (!v) return '—'
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return String(v)
  const p = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

export function formatList(v) {
  return Array.isArray(v) && v.length ? v.join(', ') : '—'
}

/** YYYY-MM-DD of a Date in local time. */
export function isoDay(d) {
  const p = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`
}

/** A long id shortened for a table cell (the full value stays in the title). */
export function short(id, n = 10) {
  if (typeof id !== 'string') return '—'
  return id.length > n + 2 ? `${id.slice(0, n)}…` : id
}

// ---------------------------------------------------------------- data loading

/**
 * Runs `load` (an async function) when `deps` change; returns {data, error, loading, reload}. A result that
 * arrives after a newer load started is dropped.
 */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true })
  const seq = useRef(0)
  const run = useCallback(() => {
    const n = ++seq.current
    setState((s) => ({ ...s, loading: true, error: null }))
    load().then(
      (data) => { if (n === seq.current) setState({ data, error: null, loading: false }) },
      (error) => { if (n === seq.current) setState((s) => ({ data: s.data, error, loading: false })) },
    )
  }, deps)
  useEffect(() => {
    run()
    return () => { seq.current++ }
  }, [run])
  return { ...state, reload: run }
}

// ---------------------------------------------------------------- small pieces

export function ErrorBanner({ error, onDismiss }) {
  if (!error) return null
  const message = typeof error === 'string' ? error : error.message || String(error)
  return html`<div class="error" role="alert">
    <span>${message}</span>
    ${onDismiss && html`<button type="button" class="link" onClick=${onDismiss}>Dismiss</button>`}
  </div>`
}

export function Notice({ children }) {
  if (!children) return null
  return html`<div class="notice" role="status">${children}</div>`
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`
}

export function Loading({ label = 'Loading…' }) {
  return html`<p class="loading" role="status">${label}</p>`
}

export function PageHeader({ title, children }) {
  const ref = useRef(null)
  // Focus the heading when a page opens, so keyboard and screen-reader users start at the new content.
  useEffect(() => { ref.current?.focus({ preventScroll: true }) }, [title])
  return html`<div class="page-header">
    <h1 tabIndex="-1" ref=${ref}>${title}</h1>
    <div class="toolbar">${children}</div>
  </div>`
}

export function Tile({ label, value, testid, hint }) {
  return html`<div class="tile">
    <div class="tile-label">${label}</div>
    <div class="tile-value" data-testid=${testid}>${value}</div>
    ${hint && html`<div class="tile-hint">${hint}</div>`}
  </div>`
}

export function Badge({ tone = 'neutral', children }) {
  return html`<span class=${`badge badge-${tone}`}>${children}</span>`
}

/** Copies `text` to the clipboard; says "Copied" in a live region (the button keeps its name). */
export function CopyButton({ text, label = 'Copy' }) {
  const [done, setDone] = useState('')
  async function copy() {
    try {
      await navigator.clipboard.writeText(text)
      setDone('Copied')
    } catch {
      setDone('Copy failed: select the text and copy it by hand')
    }
  }
  return html`<span class="copy">
    <button type="button" onClick=${copy}>${label}</button>
    <span class="copy-status" role="status">${done}</span>
  </span>`
}

// ---------------------------------------------------------------- table

/**
 * columns: [{key, label, render?(row), className?}]. `onRowClick` makes rows selectable (click, Enter or Space).
 */
export function Table({ columns, rows, rowKey, caption, onRowClick, selectedKey, empty = 'Nothing here yet' }) {
  if (!rows || rows.length === 0) return html`<${Empty}>${empty}<//>`
  const keyOf = (r, i) => (rowKey ? rowKey(r) : i)
  return html`<div class="table-wrap">
    <table>
      ${caption && html`<caption>${caption}</caption>`}
      <thead><tr>${columns.map((c) => html`<th scope="col" class=${c.className}>${c.label}</th>`)}</tr></thead>
      <tbody>
        ${rows.map((r, i) => {
          const k = keyOf(r, i)
          const props = onRowClick
            ? {
                class: `clickable${selectedKey !== undefined && selectedKey === k ? ' selected' : ''}`,
                tabIndex: 0,
                'aria-selected': selectedKey === k ? 'true' : 'false',
                onClick: (e) => { if (!e.target.closest('button, a, input, select')) onRowClick(r) },
                onKeyDown: (e) => {
                  if ((e.key === 'Enter' || e.key === ' ') && e.target === e.currentTarget) {
                    e.preventDefault()
                    onRowClick(r)
                  }
                },
              }
            : {}
          return html`<tr key=${k} ...${props}>
            ${columns.map((c) => html`<td class=${c.className}>${c.render ? c.render(r) : display(r[c.key])}</td>`)}
          </tr>`
        })}
      </tbody>
    </table>
  </div>`
}

function display(v) {
  if (v === null || v === undefined || v === '') return '—'
  if (Array.isArray(v)) return formatList(v)
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

export function Pager({ page, pages, onPage, total }) {
  if (!pages || pages <= 1) return total ? html`<p class="pager-info">${formatInt(total)} total</p>` : null
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous</button>
    <span>Page ${page} of ${pages}${total !== undefined ? ` (${formatInt(total)} total)` : ''}</span>
    <button type="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Next</button>
  </nav>`
}

// ---------------------------------------------------------------- dialog

/**
 * A modal <dialog>, open while mounted: showModal() on mount, Escape (the dialog's cancel event) calls onClose,
 * and focus goes back to what had it before the dialog opened.
 */
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null)
  const titleId = useId()
  useEffect(() => {
    const d = ref.current
    const before = document.activeElement
    if (d && !d.open) d.showModal()
    // Focus the first field, else the first button (showModal focuses the first focusable, but be explicit).
    const first = d?.querySelector('input, select, textarea') ?? d?.querySelector('button:not(.dialog-close)') ?? d
    first?.focus()
    return () => {
      if (d?.open) d.close()
      if (before && typeof before.focus === 'function' && document.contains(before)) before.focus()
      else document.querySelector('h1')?.focus()
    }
  }, [])
  const cancel = (e) => {
    e.preventDefault()
    onClose()
  }
  return html`<dialog ref=${ref} class=${wide ? 'wide' : ''} aria-labelledby=${titleId} onCancel=${cancel}>
    <div class="dialog-head">
      <h2 id=${titleId}>${title}</h2>
      <button type="button" class="dialog-close" aria-label="Close" onClick=${onClose}>×</button>
    </div>
    ${children}
  </dialog>`
}

/** "Are you sure?" with a confirm button named `confirmLabel`; runs `onConfirm` (async) and shows its error. */
export function ConfirmDialog({ title, message, confirmLabel, onConfirm, onClose, danger = true }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  async function go() {
    setBusy(true)
    setError(null)
    try {
      await onConfirm()
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>${message}</p>
    <${ErrorBanner} error=${error} />
    <div class="dialog-actions">
      <button type="button" onClick=${onClose}>Cancel</button>
      <button type="button" class=${danger ? 'danger' : 'primary'} disabled=${busy} onClick=${go}>${confirmLabel}</button>
    </div>
  <//>`
}

// ---------------------------------------------------------------- fields and forms

/**
 * A labelled input. type: text | number | password | date | select (options: [{value, label}] or strings) |
 * checkbox | textarea.
 */
export function Field({ label, type = 'text', value, onChange, options, hint, required, placeholder, name, step, min, autocomplete, disabled }) {
  const id = useId()
  const hintId = hint ? `${id}-hint` : undefined
  let control
  if (type === 'select') {
    control = html`<select id=${id} name=${name} value=${value ?? ''} required=${required} disabled=${disabled}
      aria-describedby=${hintId} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${(options ?? []).map((o) => (typeof o === 'string' ? { value: o, label: o } : o)).map((o) =>
        html`<option value=${o.value}>${o.label}</option>`)}
    </select>`
  } else if (type === 'checkbox') {
    return html`<div class="field field-check">
      <input id=${id} name=${name} type="checkbox" checked=${!!value} disabled=${disabled} aria-describedby=${hintId}
        onChange=${(e) => onChange(e.currentTarget.checked)} />
      <label for=${id}>${label}</label>
      ${hint && html`<div class="hint" id=${hintId}>${hint}</div>`}
    </div>`
  } else if (type === 'textarea') {
    control = html`<textarea id=${id} name=${name} value=${value ?? ''} required=${required} placeholder=${placeholder}
      aria-describedby=${hintId} onInput=${(e) => onChange(e.currentTarget.value)} rows="4"></textarea>`
  } else {
    control = html`<input id=${id} name=${name} type=${type} value=${value ?? ''} required=${required} disabled=${disabled}
      placeholder=${placeholder} step=${step} min=${min} autocomplete=${autocomplete ?? 'off'} aria-describedby=${hintId}
      onInput=${(e) => onChange(e.currentTarget.value)} />`
  }
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${control}
    ${hint && html`<div class="hint" id=${hintId}>${hint}</div>`}
  </div>`
}

/** A form value as the API wants it: number fields to numbers (empty = null), list fields to arrays. */
export function fieldValue(f, raw) {
  if (f.type === 'number') {
    if (raw === '' || raw === null || raw === undefined) return null
    const n = Number(raw)
    return Number.isFinite(n) ? n : raw
  }
  if (f.type === 'list') {
    return String(raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  }
  if (f.type === 'checkbox') return !!raw
  if (raw === '' || raw === undefined) return null
  return raw
}

/** A record's value as a form shows it. */
export function formValue(f, v) {
  if (f.type === 'list') return Array.isArray(v) ? v.join(', ') : ''
  if (f.type === 'checkbox') return !!v
  if (v === null || v === undefined) return ''
  return String(v)
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * A dialog with a form built from `fields` ([{name, label, type, options, hint, required, placeholder}]; type
 * 'list' is a comma-separated input). `initial` is the record being edited (null to create). onSubmit(body)
 * receives the converted values: every non-empty one when creating, only the changed ones when editing.
 * Whatever onSubmit returns that is truthy replaces the form (e.g. a key shown once).
 */
export function FormDialog({ title, fields, initial, submitLabel, onSubmit, onClose, intro }) {
  const [values, setValues] = useState(() => Object.fromEntries(fields.map((f) => [f.name, formValue(f, initial?.[f.name] ?? f.default)])))
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  const [result, setResult] = useState(null)
  const set = (name) => (v) => setValues((s) => ({ ...s, [name]: v }))
  async function submit(e) {
    e.preventDefault()
    setBusy(true)
    setError(null)
    const body = {}
    for (const f of fields) {
      if (f.readOnly) continue
      const v = fieldValue(f, values[f.name])
      if (initial) {
        if (!same(v, fieldValue(f, formValue(f, initial[f.name])))) body[f.name] = v
      } else if (v !== null && !(Array.isArray(v) && v.length === 0 && !f.keepEmpty)) {
        body[f.name] = v
      }
    }
    try {
      const out = await onSubmit(body)
      if (out) {
        setResult(out)
        setBusy(false)
      }
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }
  return html`<${Dialog} title=${title} onClose=${onClose}>
    ${result
      ? html`${result}<div class="dialog-actions"><button type="button" class="primary" onClick=${onClose}>Done</button></div>`
      : html`<form onSubmit=${submit} novalidate>
          ${intro && html`<p class="intro">${intro}</p>`}
          <div class="form-grid">
            ${fields.map((f) => html`<${Field} key=${f.name} label=${f.label} name=${f.name}
              type=${f.type === 'list' ? 'text' : f.type ?? 'text'} options=${f.options} hint=${f.hint}
              required=${f.required} placeholder=${f.placeholder} step=${f.step ?? (f.type === 'number' ? 'any' : undefined)}
              min=${f.type === 'number' ? 0 : undefined} disabled=${f.readOnly}
              value=${values[f.name]} onChange=${set(f.name)} />`)}
          </div>
          <${ErrorBanner} error=${error} />
          <div class="dialog-actions">
            <button type="button" onClick=${onClose}>Cancel</button>
            <button type="submit" class="primary" disabled=${busy}>${busy ? 'Working…' : submitLabel}</button>
          </div>
        </form>`}
  <//>`
}

/** A secret shown once (a new or regenerated key), with a Copy button. */
export function SecretOnce({ label, value, note }) {
  return html`<div class="secret">
    <p>${label}</p>
    <div class="secret-row">
      <code data-testid="new-key">${value}</code>
      <${CopyButton} text=${value} />
    </div>
    <p class="hint">${note ?? 'This is the only time the key is shown. Store it now; the gateway keeps only its hash.'}</p>
  </div>`
}

// ---------------------------------------------------------------- chart

const CH = { w: 720, h: 220, l: 64, r: 16, t: 12, b: 34 }

function niceMax(v) {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

/**
 * An inline SVG line or bar chart of points [{x: label, y: number}]. `format` formats y values (axis and tooltips);
 * `integer` keeps the axis on whole numbers (counts).
 * The data is also given as a visually hidden table for screen readers.
 */
export function Chart({ points, kind = 'line', label, format = (v) => String(v), integer = false }) {
  if (!points || points.length === 0) return html`<${Empty}>No data for this period<//>`
  const top = niceMax(Math.max(...points.map((p) => p.y)))
  // Counts: a top that is a multiple of 4, so the quarter ticks are whole numbers.
  const max = integer ? Math.max(4, Math.ceil(top / 4) * 4) : top
  const iw = CH.w - CH.l - CH.r
  const ih = CH.h - CH.t - CH.b
  const n = points.length
  const step = iw / n
  const xOf = (i) => CH.l + step * i + step / 2
  const yOf = (v) => CH.t + ih - (v / max) * ih
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max)
  const every = Math.max(1, Math.ceil(n / 8))
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${xOf(i).toFixed(1)},${yOf(p.y).toFixed(1)}`).join(' ')
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${CH.w} ${CH.h}`} role="img" aria-label=${label} preserveAspectRatio="xMidYMid meet">
      ${ticks.map((v) => html`<g>
        <line x1=${CH.l} x2=${CH.w - CH.r} y1=${yOf(v)} y2=${yOf(v)} class="grid" />
        <text x=${CH.l - 6} y=${yOf(v) + 4} text-anchor="end" class="axis">${format(v)}</text>
      </g>`)}
      ${points.map((p, i) => (i % every === 0
        ? html`<text x=${xOf(i)} y=${CH.h - 12} text-anchor="middle" class="axis">${p.x}</text>`
        : null))}
      ${kind === 'bar'
        ? points.map((p, i) => html`<rect class="bar" x=${xOf(i) - Math.min(step * 0.35, 18)} width=${Math.min(step * 0.7, 36)}
            y=${yOf(p.y)} height=${Math.max(0, CH.t + ih - yOf(p.y))}><title>${`${p.x}: ${format(p.y)}`}</title></rect>`)
        : html`<path d=${path} class="line" fill="none" />
            ${points.map((p, i) => html`<circle cx=${xOf(i)} cy=${yOf(p.y)} r="3" class="dot"><title>${`${p.x}: ${format(p.y)}`}</title></circle>`)}`}
    </svg>
    <table class="visually-hidden">
      <caption>${label}</caption>
      <thead><tr><th scope="col">Date</th><th scope="col">Value</th></tr></thead>
      <tbody>${points.map((p) => html`<tr><td>${p.x}</td><td>${format(p.y)}</td></tr>`)}</tbody>
    </table>
  </figure>`
}

/** A horizontal meter (used / limit) drawn in SVG; "no limit" when limit is null. */
export function Meter({ used, limit, label }) {
  const has = typeof limit === 'number' && limit > 0
  const frac = has ? Math.min(1, (used ?? 0) / limit) : 0
  const tone = frac >= 0.9 ? 'hot' : frac >= 0.6 ? 'warm' : 'ok'
  return html`<span class="meter">
    <svg viewBox="0 0 100 8" width="100" height="8" aria-hidden="true">
      <rect x="0" y="0" width="100" height="8" rx="4" class="meter-bg" />
      ${has && html`<rect x="0" y="0" width=${Math.max(frac * 100, used ? 2 : 0)} height="8" rx="4" class=${`meter-fg ${tone}`} />`}
    </svg>
    <span class="meter-text" aria-label=${label}>${formatInt(used ?? 0)} / ${has ? formatInt(limit) : 'no limit'}</span>
  </span>`
}
