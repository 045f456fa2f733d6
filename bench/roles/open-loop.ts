/**
 * Open-loop sender, run as its own process (pinned beside the upstream): POSTs BODY to URL at RATE calls a second
 * on a fixed schedule, whether or not earlier calls have answered, for WARMUP seconds (discarded) and then SECONDS.
 * Each call's latency is measured from its *scheduled* send time, so a gateway stall that delays later sends counts
 * against the gateway instead of being hidden (coordinated omission, the reason wrk2 exists). The sender's own
 * lateness (timer granularity, about 1 ms) is reported beside it as `lagP99Ms`: it is in the bare and the gateway
 * figures alike, so it cancels in "added p99".
 *
 * Calls still unanswered GRACE_MS after the last send count as errors (a gateway that cannot keep the rate would
 * otherwise make the run as long as its backlog).
 *
 * Sends the result to the parent over IPC: { sent, ok, errors, p50Ms, p99Ms, p999Ms, maxMs, lagP99Ms }.
 */
import { Pool } from 'undici'
import { percentile } from '../lib/stats.js'

const url = process.env.URL!
const body = process.env.BODY!
const key = process.env.KEY!
const rate = Number(process.env.RATE)
const seconds = Number(process.env.SECONDS)
const warmup = Number(process.env.WARMUP)
/** Enough sockets that a stall of a few hundred ms never makes a scheduled call wait for a free one. */
const CONNECTIONS = 512
/** How long calls may still answer after the last scheduled send: 10 s. */
const GRACE_MS = 10_000
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${key}` }

const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 })
const total = Math.round(rate * (warmup + seconds))
const firstMeasured = Math.round(rate * warmup)
const intervalMs = 1000 / rate
const latencies: number[] = []
const lags: number[] = []
let errors = 0
let done = 0
let sent = 0
let finished = false

function send(i: number, scheduled: number): void {
  const measured = i >= firstMeasured
  if (measured) lags.push(performance.now() - scheduled)
  pool.request({ method: 'POST', path: '/v1/chat/completions', headers: HEADERS, body }).then(async (r) => {
    await r.body.text()
    if (measured) {
      if (r.statusCode === 200) latencies.push(performance.now() - scheduled)
      else errors++
    }
  }, () => { if (measured) errors++ }).finally(() => {
    if (++done === total) finish()
  })
}

function finish(): void {
  if (finished) return
  finished = true
  // Whatever has not answered by now is an error: measured calls sent minus those that ended either way.
  const unanswered = total - firstMeasured - latencies.length - errors
  errors += unanswered
  latencies.sort((a, b) => a - b)
  lags.sort((a, b) => a - b)
  const result = {
    sent: total - firstMeasured, ok: latencies.length, errors,
    p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), p999Ms: percentile(latencies, 0.999),
    maxMs: latencies[latencies.length - 1] ?? NaN, lagP99Ms: percentile(lags, 0.99),
  }
  // destroy, not close: close would wait for the unanswered calls.
  pool.destroy().finally(() => process.send!(result, () => process.exit(0)))
}

const start = performance.now()
// A 1 ms tick sends every call whose scheduled time has come; the schedule, not the tick, is the clock.
const tick = setInterval(() => {
  const now = performance.now()
  while (sent < total && start + sent * intervalMs <= now) {
    send(sent, start + sent * intervalMs)
    sent++
  }
  if (sent >= total) {
    clearInterval(tick)
    setTimeout(finish, GRACE_MS)
  }
}, 1)
process.on('disconnect', () => process.exit(0))
