/**
 * The metrics /metrics serves, in their own prom-client Registry (never the global one: two gateways in a process
 * must not share series). Names and label names are LiteLLM's (litellm/types/integrations/prometheus.py) so its
 * Grafana dashboards work; what LiteLLM has no metric for is `switchyard_*`.
 *
 * Naming: LiteLLM's Python client exposes a Counter named `x` as `x_total`, and dashboards query `x_total`; prom-client
 * writes names as given, so counters here carry the `_total` suffix themselves. Latencies are seconds, in LiteLLM's
 * buckets. LiteLLM's `client_ip`, `user_agent` and `user_email` labels are left out: per-client values would make
 * a series per caller.
 *
 * Every value is computed at scrape time from the tables the request path fills (series.ts, budgets.ts) and from
 * what other plugins expose (queue depth, cooldowns, the logging plugin's sink queues), read through `Sources`.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Target } from '../../providers/types.js'
import { DerivedHistogram, type Hist, type Labels } from './histogram.js'
import { cleanApiBase, type CallSeries, type SeriesTable } from './series.js'
import type { BudgetEntry, BudgetTable } from './budgets.js'

/** The priority queue's /queue/status, as far as /metrics reads it. */
export interface QueueStatusView {
  models: Record<string, {
    capacity: number | null
    inFlight: number
    queued: number
    priorities: Record<string, { inFlight: number; queued: number; oldestWaitMs: number }>
  }>
}

/** The cooldown plugin's state: deployments cooling now, and how often each was cooled (per status that did it). */
export interface CooldownView {
  cooling: ReadonlyArray<{ id: string; until: number }>
  cooledDown: ReadonlyArray<{ id: string; status: number; count: number }>
}

export interface SinkStatsView {
  sink: string
  buffered: number
  sent: number
  dropped: number
  failures: number
}

export interface Sources {
  table: SeriesTable
  budgets: BudgetTable
  deployments(): readonly Target[]
  now(): number
  loggingStats(): readonly SinkStatsView[] | null
  queueStatus(): Promise<QueueStatusView | null>
  cooldowns(): Promise<CooldownView | null>
}

type Add = (labels: Labels, v: number) => void
type Fill = (add: Add) => void | Promise<void>

function pick(all: Labels, names: readonly string[]): Labels {
  const out: Labels = {}
  for (const n of names) out[n] = all[n] ?? ''
  return out
}

// LiteLLM's label sets (PrometheusMetricLabels), less client_ip / user_agent / user_email.
const KEY_TEAM = ['hashed_api_key', 'api_key_alias', 'team', 'team_alias']
const REQUESTS = ['end_user', 'hashed_api_key', 'api_key_alias', 'model', 'team', 'team_alias', 'user', 'model_id']
const TOKENS = [...REQUESTS, 'requested_model']
const PROXY_TOTAL = ['end_user', 'hashed_api_key', 'api_key_alias', 'requested_model', 'team', 'team_alias', 'user', 'status_code', 'route', 'model_id']
const PROXY_FAILED = ['end_user', 'hashed_api_key', 'api_key_alias', 'requested_model', 'team', 'team_alias', 'user', 'exception_status',
  'exception_class', 'route', 'model_id']
const TOTAL_LATENCY = ['end_user', 'hashed_api_key', 'api_key_alias', 'requested_model', 'team', 'team_alias', 'user', 'model', 'model_id']
const API_LATENCY = ['model', 'hashed_api_key', 'api_key_alias', 'team', 'team_alias', 'requested_model', 'end_user', 'user', 'model_id']
const DEPLOYMENT_CALL = ['model_group', 'api_provider', 'api_base', 'litellm_model_name', 'hashed_api_key', 'api_key_alias', 'model_id']
const CACHE = ['model', 'hashed_api_key', 'api_key_alias', 'team', 'team_alias', 'end_user', 'user', 'model_id']
const DEPLOYMENT = ['litellm_model_name', 'model_id', 'api_base', 'api_provider']
const DEPLOYMENT_TOTAL = ['requested_model', 'litellm_model_name', 'model_id', 'api_base', 'api_provider', ...KEY_TEAM]
const DEPLOYMENT_FAILED = [...DEPLOYMENT_TOTAL, 'exception_status', 'exception_class']
const FALLBACK = ['requested_model', 'fallback_model', ...KEY_TEAM, 'exception_status', 'exception_class', 'model_id']

export interface MetricsOptions {
  buckets: readonly number[]
  processMetrics: boolean
}

export function createRegistry(src: Sources, o: MetricsOptions): Registry {
  const reg = new Registry()
  if (o.processMetrics) collectDefaultMetrics({ register: reg })
  const { table, budgets } = src

  const counter = (name: string, help: string, labelNames: readonly string[], fill: Fill) => new Counter({
    name, help, labelNames, registers: [reg],
    async collect() {
      this.reset()
      await fill((l, v) => {
        if (v > 0) this.inc(pick(l, labelNames), v)
      })
    },
  })
  const gauge = (name: string, help: string, labelNames: readonly string[], fill: Fill) => new Gauge({
    name, help, labelNames, registers: [reg],
    async collect() {
      this.reset()
      await fill((l, v) => this.set(pick(l, labelNames), v))
    },
  })
  const histogram = (name: string, help: string, labelNames: readonly string[], read: (s: CallSeries) => Hist | null) =>
    new DerivedHistogram(name, help, labelNames, o.buckets, (add) => {
      for (const s of table.calls.values()) {
        const h = read(s)
        if (h) add(s.labels, h)
      }
    }).register(reg)
  const perSeries = (v: (s: CallSeries) => number): Fill => (add) => {
    for (const s of table.calls.values()) add(s.labels, v(s))
  }

  // ---- client requests ----
  counter('litellm_proxy_total_requests_metric_total', 'Total number of requests made to the proxy server - track number of client side requests',
    PROXY_TOTAL, (add) => {
      for (const s of table.calls.values()) {
        for (const e of s.ends.values()) add({ ...s.labels, status_code: e.status, route: e.route }, e.count)
      }
    })
  counter('litellm_proxy_failed_requests_metric_total',
    'Total number of failed responses from proxy - the client did not get a success response from the proxy', PROXY_FAILED, (add) => {
      for (const s of table.calls.values()) {
        for (const e of s.ends.values()) {
          if (e.failed) add({ ...s.labels, exception_status: e.status, exception_class: e.exceptionClass, route: e.route }, e.count)
        }
      }
    })
  counter('litellm_requests_metric_total', 'Total number of LLM calls - per API key, team, user, model', REQUESTS, perSeries((s) => s.requests))
  counter('litellm_llm_api_failed_requests_metric_total', 'Total number of failed LLM API calls', REQUESTS, perSeries((s) => s.llmFailures))
  counter('litellm_spend_metric_total', 'Total spend on LLM requests (USD)', REQUESTS, perSeries((s) => s.spend))
  counter('litellm_total_tokens_metric_total', 'Total number of input + output tokens from LLM requests', TOKENS, perSeries((s) => s.total))
  counter('litellm_input_tokens_metric_total', 'Total number of input tokens from LLM requests', TOKENS, perSeries((s) => s.input))
  counter('litellm_output_tokens_metric_total', 'Total number of output tokens from LLM requests', TOKENS, perSeries((s) => s.output))
  counter('litellm_cached_tokens_metric_total', 'Prompt tokens read from a provider cache', CACHE, perSeries((s) => s.cached))

  // ---- latency (seconds) ----
  histogram('litellm_request_total_latency_metric', 'Total latency (seconds) for a request to the proxy', TOTAL_LATENCY, (s) => s.totalLatency)
  histogram('litellm_llm_api_latency_metric', 'Total latency (seconds) for a model\'s LLM API call', API_LATENCY, (s) => s.apiLatency)
  histogram('litellm_llm_api_time_to_first_token_metric', 'Time to first token (seconds) for a streamed LLM API call', API_LATENCY, (s) => s.ttft)
  histogram('litellm_overhead_latency_metric', 'Latency overhead (seconds) added by the gateway', DEPLOYMENT_CALL, (s) => s.overhead)
  histogram('litellm_request_queue_time_seconds', 'Time spent in the request queue before processing starts (seconds)', TOTAL_LATENCY, (s) => s.queue)

  // ---- limits ----
  gauge('litellm_remaining_requests_metric', 'Remaining requests in the current minute for the key\'s tightest limit (the gateway\'s x-ratelimit-remaining-requests)',
    DEPLOYMENT_CALL, (add) => {
      for (const s of table.calls.values()) if (!Number.isNaN(s.remainingRequests)) add(s.labels, s.remainingRequests)
    })
  gauge('litellm_remaining_tokens_metric', 'Remaining tokens in the current minute for the key\'s tightest limit (the gateway\'s x-ratelimit-remaining-tokens)',
    DEPLOYMENT_CALL, (add) => {
      for (const s of table.calls.values()) if (!Number.isNaN(s.remainingTokens)) add(s.labels, s.remainingTokens)
    })
  counter('switchyard_rate_limit_rejections_total', 'Model calls the gateway refused itself (rate limits, queue capacity or timeout, every deployment cooling), by limit',
    ['hashed_api_key', 'api_key_alias', 'team', 'requested_model', 'limit'], (add) => {
      for (const r of table.rejections.values()) add(r.labels, r.count)
    })

  // ---- budgets ----
  const budgetGauges = (kind: string, names: readonly string[], map: () => Map<string, BudgetEntry>) => {
    gauge(`litellm_remaining_${kind}_budget_metric`, `Remaining budget for ${kind.replace('_', ' ')} (USD)`, names, (add) => {
      for (const e of map().values()) add(e.labels, e.max - e.spent)
    })
    gauge(`litellm_${kind}_max_budget_metric`, `Maximum budget set for ${kind.replace('_', ' ')} (USD)`, names, (add) => {
      for (const e of map().values()) add(e.labels, e.max)
    })
    gauge(`litellm_${kind}_budget_remaining_hours_metric`, `Hours until the ${kind.replace('_', ' ')} budget resets`, names, (add) => {
      const now = src.now()
      for (const e of map().values()) {
        const at = e.resetAt ? Date.parse(e.resetAt) : Number.NaN
        if (Number.isFinite(at)) add(e.labels, Math.max(0, (at - now) / 3_600_000))
      }
    })
  }
  budgetGauges('api_key', ['hashed_api_key', 'api_key_alias'], () => budgets.keys)
  budgetGauges('team', ['team', 'team_alias'], () => budgets.teams)
  budgetGauges('user', ['user'], () => budgets.users)

  // ---- deployments ----
  const deploymentLabels = new WeakMap<Target, Labels>()
  const labelsOfTarget = (t: Target): Labels => {
    let l = deploymentLabels.get(t)
    if (!l) deploymentLabels.set(t, (l = { litellm_model_name: t.model, model_id: t.id, api_base: cleanApiBase(t), api_provider: t.provider }))
    return l
  }
  const attemptCounter = (name: string, help: string, names: readonly string[], which: (status: number) => boolean, failed: boolean) =>
    counter(name, help, names, (add) => {
      for (const s of table.calls.values()) {
        for (const a of s.attempts.values()) {
          if (!which(a.status)) continue
          const d = table.deployments.get(a.deployment) ?? { litellm_model_name: '', model_id: a.deployment, api_base: '', api_provider: '' }
          const l: Labels = { ...s.labels, ...d, model_id: a.deployment }
          if (failed) {
            l.exception_status = String(a.status)
            l.exception_class = a.code
          }
          add(l, a.count)
        }
      }
    })
  const ok = (st: number) => st >= 200 && st < 300
  attemptCounter('litellm_deployment_total_requests_total', 'LLM deployment analytics - total number of requests to a deployment', DEPLOYMENT_TOTAL, () => true, false)
  attemptCounter('litellm_deployment_success_responses_total', 'LLM deployment analytics - successful responses of a deployment', DEPLOYMENT_TOTAL, ok, false)
  attemptCounter('litellm_deployment_failure_responses_total', 'LLM deployment analytics - failed responses of a deployment', DEPLOYMENT_FAILED,
    (st) => !ok(st), true)
  const fallbacks = (name: string, help: string, success: boolean) => counter(name, help, FALLBACK, (add) => {
    for (const s of table.calls.values()) {
      if (!s.fallbacks) continue
      for (const f of s.fallbacks.values()) {
        if (f.ok === success) add({ ...s.labels, fallback_model: f.fallbackModel, exception_status: f.status, exception_class: f.exceptionClass }, f.count)
      }
    }
  })
  fallbacks('litellm_deployment_successful_fallbacks_total', 'Calls answered by a fallback model group after the requested one failed', true)
  fallbacks('litellm_deployment_failed_fallbacks_total', 'Calls that failed in their fallback model groups too', false)

  gauge('litellm_deployment_state', 'LLM deployment analytics - the state of the deployment: 0 = healthy, 1 = partial outage (its last call failed), 2 = complete outage (cooling down)',
    DEPLOYMENT, async (add) => {
      const cd = await src.cooldowns()
      const now = src.now()
      const cooling = new Set<string>()
      for (const c of cd?.cooling ?? []) if (c.until > now) cooling.add(c.id)
      for (const t of src.deployments()) {
        add(labelsOfTarget(t), cooling.has(t.id) ? 2 : (table.deploymentState.get(t.id) ?? 0))
      }
    })
  counter('litellm_deployment_cooled_down_total', 'LLM deployment analytics - number of times a deployment was cooled down; exception_status is the status that caused it',
    [...DEPLOYMENT, 'exception_status'], async (add) => {
      const cd = await src.cooldowns()
      if (!cd) return
      const byId = new Map<string, Target>()
      for (const t of src.deployments()) byId.set(t.id, t)
      for (const c of cd.cooledDown) {
        const t = byId.get(c.id)
        const l = t ? labelsOfTarget(t) : { litellm_model_name: '', model_id: c.id, api_base: '', api_provider: '' }
        add({ ...l, exception_status: String(c.status) }, c.count)
      }
    })
  gauge('litellm_deployment_rpm_limit', 'Deployment RPM limit found in config', DEPLOYMENT, (add) => {
    for (const t of src.deployments()) if (t.rpm !== undefined) add(labelsOfTarget(t), t.rpm)
  })
  gauge('litellm_deployment_tpm_limit', 'Deployment TPM limit found in config', DEPLOYMENT, (add) => {
    for (const t of src.deployments()) if (t.tpm !== undefined) add(labelsOfTarget(t), t.tpm)
  })

  // ---- priority queue ----
  const queueGauge = (name: string, help: string, v: (p: { inFlight: number; queued: number; oldestWaitMs: number }) => number) =>
    gauge(name, help, ['model_group', 'priority'], async (add) => {
      const st = await src.queueStatus()
      if (!st) return
      for (const [group, g] of Object.entries(st.models)) {
        for (const [priority, p] of Object.entries(g.priorities)) add({ model_group: group, priority }, v(p))
      }
    })
  queueGauge('switchyard_queue_depth', 'Model calls waiting in the priority queue, per model group and priority', (p) => p.queued)
  queueGauge('switchyard_queue_in_flight', 'Model calls admitted by the priority queue and still running, per model group and priority', (p) => p.inFlight)
  queueGauge('switchyard_queue_oldest_wait_seconds', 'How long the oldest waiting call has waited, per model group and priority', (p) => p.oldestWaitMs / 1000)
  gauge('switchyard_queue_capacity', 'Calls a model group may have in flight (priority queue capacity)', ['model_group'], async (add) => {
    const st = await src.queueStatus()
    if (!st) return
    for (const [group, g] of Object.entries(st.models)) if (g.capacity !== null) add({ model_group: group }, g.capacity)
  })
  new DerivedHistogram('switchyard_queue_wait_seconds', 'Time model calls waited in the priority queue (0 when admitted at once), per model group and priority',
    ['model_group', 'priority'], o.buckets, (add) => {
      for (const q of table.queueWait.values()) add(q.labels, q.hist)
    }).register(reg)

  // ---- logging sinks ----
  const sinkMetric = (make: typeof counter, name: string, help: string, v: (s: SinkStatsView) => number) =>
    make(name, help, ['sink'], (add) => {
      for (const s of src.loggingStats() ?? []) add({ sink: s.sink }, v(s))
    })
  sinkMetric(gauge, 'switchyard_logging_buffered', 'Log records waiting in a sink\'s queue', (s) => s.buffered)
  sinkMetric(counter, 'switchyard_logging_sent_total', 'Log records a sink delivered', (s) => s.sent)
  sinkMetric(counter, 'switchyard_logging_dropped_total', 'Log records a sink gave up on (buffer full, or refused for good)', (s) => s.dropped)
  sinkMetric(counter, 'switchyard_logging_failures_total', 'Failed send attempts of a sink', (s) => s.failures)
  counter('litellm_callback_logging_failures_metric_total', 'Failed send attempts of a logging callback', ['callback_name'], (add) => {
    for (const s of src.loggingStats() ?? []) add({ callback_name: s.sink }, s.failures)
  })
  return reg
}
