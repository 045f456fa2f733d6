/**
 * prometheus: `GET /metrics` in Prometheus text format (prom-client), with LiteLLM's metric and label names so its
 * dashboards work (metrics.ts lists them), plus `switchyard_*` metrics for what LiteLLM has none of: rate-limit
 * rejections, priority-queue depth and wait per model group and priority, logging sink buffers and drops.
 *
 * - The route is public, as LiteLLM's /metrics is by default; `require_auth: true` (LiteLLM's
 *   `litellm_settings.require_auth_for_metrics_endpoint`) puts it behind the request chain, so auth asks for a key.
 * - Calls are recorded when they end (`state.done`: streams once over or cut off, failures too) into in-memory
 *   tables (series.ts, budgets.ts); metrics are computed from them only when scraped, so a call pays a Map lookup
 *   and some additions, never prom-client's per-label hashing.
 * - Put `prometheus` early in the pipeline (after request-id): a call refused by a plugin before it (auth, a rate
 *   limit) never reaches its middleware and is not counted.
 * - Queue depth comes from the priority-queue plugin (`priorityQueueStatus`), cooldowns from the cooldown plugin
 *   (`cooldownStatus`) and sink queues from the logging plugin (`loggingStats`), each read at scrape time when that
 *   plugin is configured (looked up then, so the order of the plugins in the config does not matter).
 */
import type { AwilixContainer } from 'awilix'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import type { Cradle } from '../../core/container.js'
import type { Outcome } from '../../core/state.js'
import { SeriesTable } from './series.js'
import { BudgetTable } from './budgets.js'
import { LATENCY_BUCKETS_S } from './histogram.js'
import { createRegistry, type CooldownView, type QueueStatusView, type SinkStatsView } from './metrics.js'
import type { Registry } from 'prom-client'
import type { GatewayContext } from '../../core/http/respond.js'

export interface PrometheusOptions {
  /** Ask for a key on /metrics (LiteLLM require_auth_for_metrics_endpoint; default false: public). */
  require_auth: boolean
  /** Histogram buckets, seconds (LiteLLM prometheus_latency_buckets); default LiteLLM's LATENCY_BUCKETS. */
  latency_buckets?: number[]
  /** Distinct call series (key x end user x model group x deployment) kept before new ones fold into one. */
  max_series: number
  /** Also export Node's process metrics (process_*, nodejs_*). */
  process_metrics: boolean
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS

interface Instance {
  table: SeriesTable
  budgets: BudgetTable
  registry: Registry
  record(ctx: GatewayContext, outcome: Outcome): void
}

const instances = new WeakMap<object, Instance>()

/** A service another plugin registered, or null when it is not configured (resolved when first needed). */
function optional<T>(container: AwilixContainer<Cradle>, name: string): T | null {
  return container.hasRegistration(name) ? (container.resolve(name) as T) : null
}

function createInstance(container: AwilixContainer<Cradle>, o: PrometheusOptions): Instance {
  const cradle = container.cradle
  const { logger, models, clock } = cradle
  const table = new SeriesTable({
    bounds: o.latency_buckets ?? LATENCY_BUCKETS_S,
    maxSeries: o.max_series,
    onOverflow: () => logger.warn(`prometheus: more than ${o.max_series} call series; further ones are reported as __overflow__`),
  })
  const budgets = new BudgetTable()
  const registry = createRegistry({
    table,
    budgets,
    deployments: () => models.deployments(),
    now: () => clock.now(),
    loggingStats: () => optional<() => SinkStatsView[]>(container, 'loggingStats')?.() ?? null,
    queueStatus: async () => (await optional<{ status(): Promise<unknown> }>(container, 'priorityQueueStatus')?.status() ?? null) as QueueStatusView | null,
    cooldowns: async () => (await optional<{ status(): Promise<CooldownView> }>(container, 'cooldownStatus')?.status()) ?? null,
  }, { buckets: o.latency_buckets ?? LATENCY_BUCKETS_S, processMetrics: o.process_metrics })
  let failedOnce = false
  return {
    table,
    budgets,
    registry,
    record(ctx, outcome) {
      const state = ctx.state
      try {
        table.record(state, outcome, ctx.path, ctx.response.get('x-ratelimit-remaining-requests'), ctx.response.get('x-ratelimit-remaining-tokens'))
        budgets.record(state.principal, state.costUsd)
      } catch (err) {
        // Metrics must never fail a call; say so once rather than per call.
        if (!failedOnce) {
          failedOnce = true
          logger.error('prometheus: recording a call failed; metrics may be incomplete', { err: (err as Error).message })
        }
      }
    },
  }
}

function instanceOf(cradle: object): Instance {
  const i = instances.get(cradle)
  if (!i) throw new Error('prometheus: used before register()')
  return i
}

export default definePlugin<PrometheusOptions>({
  name: 'prometheus',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      require_auth: { type: 'boolean', default: false },
      latency_buckets: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 1 },
      max_series: { type: 'integer', minimum: 1, default: 10_000 },
      process_metrics: { type: 'boolean', default: true },
    },
  },
  register(container, options) {
    if (options.latency_buckets) options = { ...options, latency_buckets: [...options.latency_buckets].sort((a, b) => a - b) }
    instances.set(container.cradle, createInstance(container, options))
  },
  middleware(cradle) {
    const m = instanceOf(cradle)
    return function prometheus(ctx, next) {
      const state = ctx.state
      if (MODEL_KINDS.has(state.kind)) void state.done.then((outcome) => m.record(ctx as GatewayContext, outcome))
      return next()
    } as GatewayMiddleware
  },
  routes(registrar, cradle, options) {
    const m = instanceOf(cradle)
    registrar.add({
      method: 'GET',
      path: ['/metrics', '/metrics/'],
      kind: 'other',
      public: !options.require_auth,
      handler: async function metrics(ctx) {
        ctx.set('content-type', m.registry.contentType)
        ctx.body = await m.registry.metrics()
      } as GatewayMiddleware,
    })
  },
})

/** The gateway's metrics registry (tests, embedding the gateway behind another /metrics). */
export function metricsRegistry(cradle: Cradle): Registry {
  return instanceOf(cradle).registry
}
