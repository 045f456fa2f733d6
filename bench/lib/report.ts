/**
 * The printed result: a header (date, node, cores, pinning, loader), one block per section, the gateway errors seen,
 * and the issue's targets as MET/MISS lines. Targets are printed, never asserted: figures move with the machine.
 */
import type { LatencyResult } from '../sections/latency.js'
import type { PriorityRun } from '../sections/priority.js'
import type { ReplicasResult } from '../sections/replicas.js'
import type { SaturationResult } from '../sections/saturation.js'
import type { StreamsResult } from '../sections/streams.js'
import type { LayersResult } from '../sections/layers.js'
import type { Measured } from './context.js'

/** The issue's targets. */
export const TARGETS = {
  /** Full-chain throughput over the bare proxy's, plain chat and streams: at least 0.85. */
  throughputRatio: 0.85,
  /** Added p99 over the bare proxy at 1,000 req/s: under 0.3 ms. */
  addedP99Ms: 0.3,
  /** Peak RSS with 1,000 concurrent streams: under 200 MB. */
  streamsRssBytes: 200 * 1024 * 1024,
  /** Issue 19: logging to a live sink plus Prometheus may lower the full-chain ratio by at most 0.05. */
  observabilityCost: 0.05,
} as const

export interface Report {
  header: string[]
  saturation?: SaturationResult
  latency?: LatencyResult
  streams?: StreamsResult
  priority?: { seconds: number; runs: PriorityRun[] }
  replicas?: ReplicasResult
  layers?: LayersResult
  /** Sections that threw: name -> message. */
  failed: { section: string; error: string }[]
}

const MB = 1024 * 1024
const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-')
const n2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-')
const pad = (s: string, w: number) => s.padStart(w)
const mb = (b: number) => `${Number.isFinite(b) ? (b / MB).toFixed(0) : '-'} MB`

function loadRow(label: string, m: Measured, ratio?: number): string {
  return `${label.padEnd(16)}${pad(n0(m.rps), 9)}${pad(n2(m.p50Ms), 9)}${pad(n2(m.p99Ms), 9)}${pad(m.cpuUsPerReq.toFixed(1), 12)}` +
    `${pad(m.cpuPct.toFixed(0), 7)}${pad(Number.isFinite(m.noisePct) ? m.noisePct.toFixed(0) : '-', 8)}${pad(ratio === undefined ? '' : n2(ratio), 8)}${pad(n0(m.errors), 8)}`
}
const LOAD_HEAD = `${''.padEnd(16)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('CPU µs/req', 12)}${pad('CPU %', 7)}${pad('other %', 8)}${pad('ratio', 8)}${pad('errors', 8)}`

function saturationBlock(s: SaturationResult, out: string[]): void {
  out.push('', '1. saturation, closed loop (ratio = req/s over the bare proxy\'s; CPU = the server\'s, all threads;',
    '   other % = CPU other processes took on the server\'s core during the run)', LOAD_HEAD)
  for (const r of s.rows) {
    const bare = s.rows.find((x) => x.kind === r.kind && x.chain === 'bare')!
    out.push(loadRow(`${r.kind.padEnd(7)}${r.chain}`, r.m, r.m.rps / bare.m.rps))
  }
  const ev = s.evidence
  out.push(`   full chain live: ${ev.seen.join(', ')}${ev.missing.length ? `; MISSING: ${ev.missing.join(', ')}` : ''}`)
  out.push(`   spend log: ${n0(s.spend.rows)} rows written for ${n0(s.spend.calls)} calls the load counted ` +
    '(calls in flight when a run ends are answered, not counted)')
}

function latencyBlock(l: LatencyResult, seconds: number, out: string[]): void {
  out.push('', `2. latency, plain chat at 1,000 req/s, open loop, ${seconds} s (measured from each call's scheduled send)`,
    `${''.padEnd(16)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('p99.9 ms', 10)}${pad('max ms', 9)}${pad('ok', 8)}${pad('errors', 8)}${pad('sender lag p99', 16)}${pad('other %', 9)}`)
  for (const [name, r] of [['bare', l.bare], ['full', l.full]] as const) {
    out.push(`${name.padEnd(16)}${pad(n2(r.p50Ms), 9)}${pad(n2(r.p99Ms), 9)}${pad(n2(r.p999Ms), 10)}${pad(n2(r.maxMs), 9)}` +
      `${pad(n0(r.ok), 8)}${pad(n0(r.errors), 8)}${pad(`${n2(r.lagP99Ms)} ms`, 16)}${pad(Number.isFinite(r.noisePct) ? r.noisePct.toFixed(0) : '-', 9)}`)
  }
  out.push(`   added p99 (full - bare): ${n2(l.full.p99Ms - l.bare.p99Ms)} ms; added p50: ${n2(l.full.p50Ms - l.bare.p50Ms)} ms`)
  for (const [name, r] of [['bare proxy', l.bare], ['gateway', l.full]] as const) {
    // A backlog (p50 far above a call's cost) means the server cannot keep 1,000/s here; its latency is queueing.
    if (r.errors > 0 || r.p50Ms > 50) out.push(`   note: the ${name} did not keep up with 1,000 req/s on this machine now (calls queued or unanswered 10 s after the last send count as errors)`)
  }
}

function streamsBlock(s: StreamsResult, out: string[]): void {
  const errors = s.non200 + s.incomplete + s.failed
  out.push('', `3. ${n0(s.streams)} concurrent slow SSE streams through the full chain (20 chunks 100-250 ms apart)`,
    `   complete ${n0(s.complete)}/${n0(s.streams)}, errors ${errors} (non-200 ${s.non200}, no [DONE] ${s.incomplete}, failed ${s.failed}), ` +
    `all done in ${s.wallS.toFixed(1)} s`,
    `   gateway RSS: ${mb(s.rssIdleBytes)} after boot, ${mb(s.rssBeforeBytes)} after the warm-up streams, peak ${mb(s.rssPeakBytes)} (VmHWM; largest 100 ms sample ${mb(s.rssSampledPeakBytes)})`)
  if (s.firstError) out.push(`   first error: ${s.firstError}`)
  if (s.fdWarning) out.push(`   note: ${s.fdWarning}`)
}

function priorityBlock(p: { seconds: number; runs: PriorityRun[] }, out: string[]): void {
  out.push('', `4. priority queue at 3x capacity (bench/priority.ts, ${p.seconds} s per route)`)
  for (const r of p.runs) {
    out.push(`   ${r.replicas === 1 ? 'one gateway' : `${r.replicas} gateways on one Redis`}${r.exitCode !== 0 && !r.verdicts.length ? ` (exited ${r.exitCode})` : ''}:`)
    for (const line of r.lines) out.push(`     ${line}`)
  }
}

function replicasBlock(r: ReplicasResult, fullRps: number | undefined, out: string[]): void {
  out.push('', '5. two replicas on one Redis (full chain + state-redis, one SQLite file), plain chat, closed loop', LOAD_HEAD,
    loadRow('one replica', r.one, 1), loadRow('two replicas', r.two, r.two.rps / r.one.rps),
    `   ${r.ownCores ? 'each replica on its own core' : 'both replicas share the gateway core: this shows what sharing state through Redis costs, not scaling'}; ` +
    `Redis ${r.redisCommandsPerReq.toFixed(1)} commands and ${r.redisCpuUsPerReq.toFixed(1)} µs CPU per call (most: ${r.redisTop}; ` +
    `${r.redisIdlePerS.toFixed(0)} commands/s when idle, included)` +
    (fullRps ? `; one replica on Redis vs the full chain on SQLite alone (section 1): ${n2(r.one.rps / fullRps)}` : ''))
}

function layersBlock(l: LayersResult, out: string[]): void {
  out.push('', '6. layers: plain chat, the chain built up one step at a time (closed loop; "+ CPU" = CPU per call over the step before)',
    `${''.padEnd(40)}${pad('req/s', 9)}${pad('CPU µs/req', 12)}${pad('+ CPU', 8)}${pad('ratio', 8)}${pad('other %', 9)}`)
  const row = (label: string, m: Measured, prev: number | null) => out.push(`${label.padEnd(40)}${pad(n0(m.rps), 9)}${pad(m.cpuUsPerReq.toFixed(1), 12)}` +
    `${pad(prev === null ? '' : (m.cpuUsPerReq - prev).toFixed(1), 8)}${pad(n2(m.rps / l.bare.rps), 8)}${pad(Number.isFinite(m.noisePct) ? m.noisePct.toFixed(0) : '-', 9)}`)
  row('bare proxy (the floor)', l.bare, null)
  let prev = l.bare.cpuUsPerReq
  for (const r of l.rows) {
    row(`+ ${r.adds}`, r.m, prev)
    prev = r.m.cpuUsPerReq
  }
}

function targetLines(r: Report, out: string[]): void {
  const line = (met: boolean, text: string) => out.push(`  [${met ? 'MET ' : 'MISS'}] ${text}`)
  out.push('', 'targets (issues 16 and 19; printed, never asserted)')
  if (r.saturation) {
    for (const kind of ['plain', 'stream'] as const) {
      const bare = r.saturation.rows.find((x) => x.kind === kind && x.chain === 'bare')!
      const full = r.saturation.rows.find((x) => x.kind === kind && x.chain === 'full')!
      const ratio = full.m.rps / bare.m.rps
      line(ratio >= TARGETS.throughputRatio, `full-chain throughput >= ${TARGETS.throughputRatio} x bare proxy, ${kind === 'plain' ? 'plain chat' : 'streams'}: ${n2(ratio)}`)
      const quiet = r.saturation.rows.find((x) => x.kind === kind && x.chain === 'quiet')
      if (quiet) {
        const cost = (quiet.m.rps - full.m.rps) / bare.m.rps
        line(cost <= TARGETS.observabilityCost, `logging + metrics lower the full-chain ratio by <= ${TARGETS.observabilityCost} (issue 19), ${kind}: ${n2(cost)}`)
      }
    }
  }
  if (r.latency) {
    const added = r.latency.full.p99Ms - r.latency.bare.p99Ms
    line(added < TARGETS.addedP99Ms && r.latency.full.errors === 0, `added p99 at 1,000 req/s < ${TARGETS.addedP99Ms} ms: ${n2(added)} ms` +
      (r.latency.full.errors ? ` (${r.latency.full.errors} errors)` : ''))
  }
  if (r.streams) {
    const s = r.streams
    const errors = s.non200 + s.incomplete + s.failed
    line(errors === 0, `${n0(s.streams)} concurrent streams with zero errors: ${errors}`)
    line(s.rssPeakBytes < TARGETS.streamsRssBytes, `${n0(s.streams)} concurrent streams, peak RSS < ${mb(TARGETS.streamsRssBytes)}: ${mb(s.rssPeakBytes)}`)
  }
  if (r.priority) {
    for (const run of r.priority.runs) {
      const who = run.replicas === 1 ? 'one gateway' : `${run.replicas} gateways on Redis`
      if (!run.verdicts.length) line(false, `priority (${who}): no verdict (exit ${run.exitCode})`)
      for (const v of run.verdicts) line(v.pass, `priority, ${v.route}, ${who}: priority-0 all served, p99 wait within the bar`)
      if (run.held) line(run.held.max <= run.held.capacity, `priority, ${who}: upstream never held more than the capacity: ${run.held.max} of ${run.held.capacity}`)
    }
  }
}

export function render(r: Report, seconds: number): string {
  const out = [...r.header]
  if (r.saturation) saturationBlock(r.saturation, out)
  if (r.latency) latencyBlock(r.latency, seconds, out)
  if (r.streams) streamsBlock(r.streams, out)
  if (r.priority) priorityBlock(r.priority, out)
  const fullPlain = r.saturation?.rows.find((x) => x.kind === 'plain' && x.chain === 'full')?.m.rps
  if (r.replicas) replicasBlock(r.replicas, fullPlain, out)
  if (r.layers) layersBlock(r.layers, out)
  const gatewayErrors = [...r.saturation?.gatewayErrors ?? [], ...r.latency?.gatewayErrors ?? [], ...r.streams?.gatewayErrors ?? [], ...r.replicas?.gatewayErrors ?? []]
  const loadErrors = [...r.saturation?.rows ?? []].filter((x) => x.m.errors > 0).map((x) => `saturation ${x.kind} ${x.chain}: ${x.m.errors} errors (non-2xx or socket)`)
  if (gatewayErrors.length || loadErrors.length) out.push('', 'errors seen', ...[...loadErrors, ...gatewayErrors].map((e) => `  ${e}`))
  for (const f of r.failed) out.push('', `section ${f.section} FAILED: ${f.error}`)
  targetLines(r, out)
  return out.join('\n')
}
