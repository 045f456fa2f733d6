/**
 * What /metrics reports about model calls, accumulated in memory as calls end and turned into metrics only when
 * Prometheus scrapes (metrics.ts). A call costs one key string, one Map lookup and some additions: its series
 * (who called, which end user, which model group, which deployment) holds counters and histograms; the labels of a
 * series are computed once, when its first call ends.
 *
 * Bounded: past `maxSeries` distinct series, new ones are folded into one series labelled `__overflow__` (logged
 * once), so a flood of end-user ids cannot grow memory without limit (LiteLLM bounds its series the same way).
 */
import { publicApiBase } from '../../core/models.js'
import type { GatewayState, Outcome, Principal } from '../../core/state.js'
import type { Target } from '../../providers/types.js'
import { Hist, type Labels } from './histogram.js'

/** Every label a call series can report; each metric picks the ones LiteLLM gives it. */
export interface CallLabels extends Labels {
  end_user: string
  hashed_api_key: string
  api_key_alias: string
  team: string
  team_alias: string
  user: string
  requested_model: string
  model_group: string
  model: string
  litellm_model_name: string
  model_id: string
  api_base: string
  api_provider: string
}

/** How calls of a series ended: per route, status and error class. */
export interface EndCount {
  route: string
  status: string
  exceptionClass: string
  failed: boolean
  count: number
}

/** Upstream attempts of a series: per deployment, status and error code. */
export interface AttemptCount {
  deployment: string
  status: number
  code: string
  count: number
}

/** Calls that went to a fallback group: per group reached, success or not, and the first failure that caused it. */
export interface FallbackCount {
  fallbackModel: string
  ok: boolean
  status: string
  exceptionClass: string
  count: number
}

export class CallSeries {
  requests = 0
  llmFailures = 0
  spend = 0
  input = 0
  output = 0
  total = 0
  cached = 0
  readonly totalLatency: Hist
  readonly overhead: Hist
  apiLatency: Hist | null = null
  ttft: Hist | null = null
  queue: Hist | null = null
  readonly ends = new Map<string, EndCount>()
  readonly attempts = new Map<string, AttemptCount>()
  fallbacks: Map<string, FallbackCount> | null = null
  /** The gateway's own x-ratelimit-remaining-* on the last reply (the tightest of the key's limits); NaN = none. */
  remainingRequests = Number.NaN
  remainingTokens = Number.NaN
  constructor(readonly labels: CallLabels, readonly bounds: readonly number[]) {
    this.totalLatency = new Hist(bounds)
    this.overhead = new Hist(bounds)
  }
}

/** A deployment as /metrics labels it. */
export interface DeploymentLabels extends Labels {
  litellm_model_name: string
  model_id: string
  api_base: string
  api_provider: string
  model_group: string
}

/** Refusals by the gateway's own limits (rate-limit, priority queue, all deployments cooling): switchyard_*. */
export interface RejectionCount {
  labels: Labels
  count: number
}

const SEP = '\u001f'
const OVERFLOW = '__overflow__'

/** The deployment's API base without credentials or query (a key in a URL must never reach a label). */
/** The API base label: core/models.ts publicApiBase, '' when none. */
export function cleanApiBase(t: Target): string {
  return publicApiBase(t) ?? ''
}

function keyLabel(p: Principal | null): string {
  // A virtual key's hash, a static key's digest prefix, 'master' or 'anonymous': never the key itself.
  return p === null ? '' : (p.token ?? p.id)
}

/** Why the gateway refused a call itself, from its error (only read for refusals: never on the success path). */
function limitOf(err: { message: string; headers?: Record<string, string> | undefined }): string {
  const h = err.headers
  if (h?.['x-ratelimit-remaining-requests'] === '0') return 'rpm'
  if (h?.['x-ratelimit-remaining-tokens'] === '0') return 'tpm'
  const m = err.message
  if (m.startsWith('Max parallel')) return 'parallel'
  if (m.startsWith('Request timed out')) return 'queue_timeout'
  return 'capacity'
}

export interface SeriesTableOptions {
  bounds: readonly number[]
  maxSeries: number
  onOverflow(): void
}

export class SeriesTable {
  readonly calls = new Map<string, CallSeries>()
  /** Deployments seen in calls, by id (labels for the per-attempt metrics). */
  readonly deployments = new Map<string, DeploymentLabels>()
  /** Last attempt's result per deployment: 0 healthy, 1 failed (LiteLLM's "partial outage"). */
  readonly deploymentState = new Map<string, number>()
  readonly rejections = new Map<string, RejectionCount>()
  /** Queue wait per model group and priority (switchyard_queue_wait_seconds). */
  readonly queueWait = new Map<string, { labels: Labels; hist: Hist }>()
  private readonly apiBases = new WeakMap<Target, string>()
  private overflowed = false

  constructor(private readonly o: SeriesTableOptions) {}

  private baseOf(t: Target): string {
    let v = this.apiBases.get(t)
    if (v === undefined) this.apiBases.set(t, (v = cleanApiBase(t)))
    return v
  }

  private deploymentOf(id: string, state: GatewayState): DeploymentLabels | undefined {
    let d = this.deployments.get(id)
    if (d) return d
    const t = state.target?.id === id ? state.target : state.targets.find((x) => x.id === id)
    if (!t) return undefined
    d = { litellm_model_name: t.model, model_id: t.id, api_base: this.baseOf(t), api_provider: t.provider, model_group: t.modelName }
    this.deployments.set(id, d)
    return d
  }

  private seriesOf(state: GatewayState, deploymentId: string, lastModel: string, lastProvider: string): CallSeries {
    const p = state.principal
    const endUser = p?.endUserId ?? ''
    const key = (p?.id ?? '') + SEP + endUser + SEP + state.model + SEP + deploymentId
    let s = this.calls.get(key)
    if (s) return s
    if (this.calls.size >= this.o.maxSeries) {
      s = this.calls.get(OVERFLOW)
      if (s) return s
      if (!this.overflowed) {
        this.overflowed = true
        this.o.onOverflow()
      }
    }
    const d = deploymentId ? this.deploymentOf(deploymentId, state) : undefined
    const over = this.calls.size >= this.o.maxSeries
    const labels: CallLabels = over
      ? {
        end_user: OVERFLOW, hashed_api_key: OVERFLOW, api_key_alias: OVERFLOW, team: OVERFLOW, team_alias: OVERFLOW, user: OVERFLOW,
        requested_model: OVERFLOW, model_group: OVERFLOW, model: OVERFLOW, litellm_model_name: OVERFLOW, model_id: OVERFLOW, api_base: '', api_provider: '',
      }
      : {
        end_user: endUser,
        hashed_api_key: keyLabel(p),
        api_key_alias: p?.keyAlias ?? '',
        team: p?.teamId ?? '',
        team_alias: p?.team?.team_alias ?? '',
        user: p?.userId ?? '',
        requested_model: state.model,
        model_group: state.model,
        model: d?.litellm_model_name ?? lastModel,
        litellm_model_name: d?.litellm_model_name ?? lastModel,
        model_id: deploymentId,
        api_base: d?.api_base ?? '',
        api_provider: d?.api_provider ?? lastProvider,
      }
    s = new CallSeries(labels, this.o.bounds)
    this.calls.set(over ? OVERFLOW : key, s)
    return s
  }

  /**
   * Account one finished model call. `route`: the path it came in on; `remaining`: the gateway's
   * x-ratelimit-remaining-{requests,tokens} reply headers (undefined when none was sent).
   */
  record(state: GatewayState, outcome: Outcome, route: string, remainingRequests: unknown, remainingTokens: unknown): void {
    const attempts = state.attempts
    const last = attempts.length > 0 ? attempts[attempts.length - 1]! : null
    const deploymentId = state.target?.id ?? last?.targetId ?? ''
    const s = this.seriesOf(state, deploymentId, state.target?.model ?? last?.model ?? '', state.target?.provider ?? last?.provider ?? '')
    const err = outcome.error ?? state.error
    const failed = err !== null || outcome.status >= 400 || outcome.aborted
    const status = outcome.aborted ? 499 : outcome.status

    s.requests++
    const statusText = String(status)
    const cls = failed ? (err?.name ?? (outcome.aborted ? 'ClientDisconnectError' : 'Error')) : ''
    const endKey = route + SEP + statusText + SEP + cls
    const end = s.ends.get(endKey)
    if (end) end.count++
    else s.ends.set(endKey, { route, status: statusText, exceptionClass: cls, failed, count: 1 })

    s.spend += state.costUsd
    const u = state.usage ?? outcome.usage
    if (u) {
      s.input += u.prompt_tokens ?? 0
      s.output += u.completion_tokens ?? 0
      s.total += u.total_tokens ?? (u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0)
      s.cached += u.prompt_tokens_details?.cached_tokens ?? 0
    }

    s.totalLatency.observe((performance.now() - state.startedHr) / 1000)
    const t = state.timings
    if (t.overhead_ms !== undefined) s.overhead.observe(t.overhead_ms / 1000)
    if (last !== null) (s.apiLatency ??= new Hist(s.bounds)).observe(Math.max(0, Date.now() - last.startedAt) / 1000)
    // LiteLLM observes time to first token for streams only; response_ms is a stream's first event.
    if (state.stream && t.response_ms !== undefined && status < 400) (s.ttft ??= new Hist(s.bounds)).observe(t.response_ms / 1000)
    if (t.queue_ms !== undefined) {
      const wait = t.queue_ms / 1000
      ;(s.queue ??= new Hist(s.bounds)).observe(wait)
      const priority = typeof state.priority === 'number' ? String(state.priority) : 'none'
      const qk = state.model + SEP + priority
      let q = this.queueWait.get(qk)
      if (!q) this.queueWait.set(qk, (q = { labels: { model_group: state.model, priority }, hist: new Hist(s.bounds) }))
      q.hist.observe(wait)
    }

    for (const a of attempts) {
      const code = a.errorCode ?? ''
      const ak = a.targetId + SEP + a.status + SEP + code
      const c = s.attempts.get(ak)
      if (c) c.count++
      else {
        this.deploymentOf(a.targetId, state)
        s.attempts.set(ak, { deployment: a.targetId, status: a.status, code, count: 1 })
      }
      this.deploymentState.set(a.targetId, a.status >= 200 && a.status < 300 ? 0 : 1)
    }
    if (failed && attempts.length > 0) s.llmFailures++

    if (state.fallbacks > 0) {
      const first = attempts.find((a) => a.status < 200 || a.status >= 300)
      const fb = state.target?.modelName ?? ''
      const fStatus = first ? String(first.status) : ''
      const fClass = first?.errorCode ?? ''
      const fk = fb + SEP + (failed ? '0' : '1') + SEP + fStatus + SEP + fClass
      const map = (s.fallbacks ??= new Map())
      const c = map.get(fk)
      if (c) c.count++
      else map.set(fk, { fallbackModel: fb, ok: !failed, status: fStatus, exceptionClass: fClass, count: 1 })
    }

    // Refused by the gateway itself (no upstream status behind it, no attempt made): a limit, the queue, cooldowns.
    if (err !== null && err.code === 'GW_ERR_RATE_LIMIT' && err.upstreamStatus === undefined && err.provider === undefined && attempts.length === 0) {
      const limit = limitOf(err)
      const rk = s.labels.hashed_api_key + SEP + state.model + SEP + limit
      const r = this.rejections.get(rk)
      if (r) r.count++
      else {
        const l = s.labels
        this.rejections.set(rk, {
          labels: { hashed_api_key: l.hashed_api_key, api_key_alias: l.api_key_alias, team: l.team, requested_model: state.model, limit },
          count: 1,
        })
      }
    }

    if (remainingRequests !== undefined && remainingRequests !== '') s.remainingRequests = Number(remainingRequests)
    if (remainingTokens !== undefined && remainingTokens !== '') s.remainingTokens = Number(remainingTokens)
  }
}
