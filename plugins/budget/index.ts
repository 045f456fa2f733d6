/**
 * budget: spend limits per key, per model on a key, per team, per user and per end user, exact under concurrency.
 *
 * Admission reserves money in the ledger before the call; when the response is over (`state.done`, so streams and
 * client aborts too) the reservation is replaced by the call's real cost. Two modes (general_settings.budget_mode):
 * - `strict` reserves the worst case (prompt bytes x input price + max output tokens x output price), so spend can
 *   never pass a budget: a call that could overshoot is refused up front.
 * - `estimate` (default) reserves a realistic estimate; a budget is passed by at most the estimation error of the
 *   calls admitted at the same time, never more, because every admitted call's estimate is held until it settles.
 * Over budget -> 400 `budget_exceeded` with the figures, as the LiteLLM proxy answers.
 *
 * The ledger is in-process, or in Redis when a state-redis plugin registered a client (replicas then share one
 * budget). If Redis cannot be reached the call is admitted on a local ledger and its cost charged to Redis once it
 * is back; a warning says so. Persisted spend (the store, written by the spend plugin) seeds the ledger, so nothing
 * resets on restart. A sweep rolls budget periods over in the store (`budget_duration`).
 */
import { LRUCache } from 'lru-cache'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import { gatewayError } from '../../core/errors.js'
import { formatCost } from '../../core/cost.js'
import { rollForward } from '../../core/duration.js'
import type { Cradle } from '../../core/container.js'
import type { Principal } from '../../core/state.js'
import type { BudgetRecord, ModelBudget, Store } from '../../core/store.js'
import type { Operation } from '../../core/openai/types.js'
import { createLocalLedger, LedgerUnavailableError, type BudgetLimit, type Ledger, type Reservation, type ReserveResult } from './ledger.js'
import { createRedisLedger } from './ledger-redis.js'
import { createSpendMemory } from './spend-memory.js'
import { createPendingCharges } from './pending.js'

interface Options {
  /** strict: reserve the worst case; estimate: reserve an estimate (LiteLLM's behaviour is closer to no reservation). */
  mode: 'estimate' | 'strict'
  /** Reservation lease, ms: renewed while the call lives, released by a crash after this long. */
  lease_ms: number
  /** LiteLLM litellm_settings.max_end_user_budget: the default budget of an end user without one, USD. */
  max_end_user_budget?: number
  /** Period of that default end-user budget ('1d', '30d', ...); none = never resets. */
  end_user_budget_duration?: string
  /** How often the store is swept for budget periods to roll over, ms. */
  reset_interval_ms: number
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS

export default definePlugin<Options>({
  name: 'budget',
  dependencies: ['auth'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mode: { enum: ['estimate', 'strict'], default: 'estimate' },
      lease_ms: { type: 'integer', minimum: 1000, default: 60_000 },
      max_end_user_budget: { type: 'number', minimum: 0 },
      end_user_budget_duration: { type: 'string', minLength: 2 },
      reset_interval_ms: { type: 'integer', minimum: 100, default: 1_000 },
    },
  },
  middleware(cradle, options) {
    return createBudget(cradle, options).middleware
  },
  start(cradle) {
    budgets.get(cradle)?.start()
  },
  async stop(cradle) {
    await budgets.get(cradle)?.stop()
  },
})

const budgets = new WeakMap<object, ReturnType<typeof createBudget>>()

function createBudget(cradle: Cradle, options: Options) {
  const { logger, events, models, clock } = cradle
  const store = cradle.store
  const pricing = cradle.pricing
  const newLocal = () => createLocalLedger({ leaseMs: options.lease_ms, now: () => clock.now() })
  let local = newLocal()
  const shared: Ledger | null = cradle.redis ? createRedisLedger({ redis: cradle.redis, leaseMs: options.lease_ms, now: () => clock.now() }) : null
  const budgetRows = store ? budgetRowCache(store) : null
  // The spend Redis last reported per scope: seeds the local ledger of an outage, and Redis after it lost its keys,
  // instead of the auth cache's older figure (spend-memory.ts).
  const memory = shared ? createSpendMemory() : null
  // Costs settled on the local ledger while Redis was down, charged to Redis once it answers again.
  const pending = createPendingCharges()
  let sharedDown = false
  /** Redis answered since the local ledger was made: the next outage starts from a fresh one. */
  let usedShared = false
  let failedBefore = false

  events.on('invalidate', ({ kind, id }) => {
    if (kind === 'budget') budgetRows?.delete(id)
  })
  events.on('budget.reset', ({ kind, id }) => memory?.forget(`${kind}:${id}`))
  events.on('spend.set', ({ kind, id, spend, resetAt }) => {
    const scope = `${kind}:${id}`
    memory?.set(scope, { spend, resetAt })
    void local.set(scope, { spend, resetAt }).catch(() => undefined)
    if (shared && !sharedDown) void shared.set(scope, { spend, resetAt }).catch(() => undefined)
  })

  function exceeded(r: Extract<ReserveResult, { ok: false }>): never {
    const [kind, id] = splitScope(r.scope)
    const reset = r.resetAt ? ` Budget resets at ${r.resetAt}.` : ''
    throw gatewayError('GW_ERR_BUDGET_EXCEEDED',
      `Budget has been exceeded! ${describe(kind, id)} Current cost: ${formatCost(r.spend)}, Max budget: ${formatCost(r.max)}` +
      (r.reserved > 0 ? `, in-flight reservations: ${formatCost(r.reserved)}` : '') + `.${reset}`)
  }

  /**
   * strict: the worst case must fit. estimate: admitted while any money is left (one micro-dollar must fit), holding
   * the estimate meanwhile, so calls admitted together share what is left instead of each assuming all of it.
   */
  const need = (amount: number) => (options.mode === 'strict' ? amount : 1e-6)

  async function reserve(limits: BudgetLimit[], amount: number): Promise<{ r: ReserveResult; on: Ledger }> {
    if (shared && !sharedDown) {
      try {
        // What the outage admitted goes to Redis first: admitting through Redis without it would let the budget be
        // used a second time, up to every call in flight until the replay landed.
        if (pending.size()) await replayPending()
        const r = await shared.reserve(memory!.seeded(limits), amount, need(amount))
        usedShared = true
        return { r, on: shared }
      } catch (err) {
        if (!(err instanceof LedgerUnavailableError)) throw err
        sharedDown = true
        // The start of an outage (Redis answered since the last one, or never failed before): say so once, and start
        // a fresh local ledger, seeded from what Redis last reported (else the stored spend): one left from an earlier
        // outage would hold stale spend (everything charged through Redis since). The old one lives on for its
        // reservations, then closes. While the outage lasts, Redis is retried every second and the same local
        // ledger is used.
        if (usedShared || !failedBefore) {
          logger.warn('budget: Redis unreachable, admitting on this replica\'s own ledger until it is back', { cause: err.message })
          usedShared = false
          failedBefore = true
          const old = local
          local = newLocal()
          setTimeout(() => void old.close(), options.lease_ms * 2).unref()
        }
        setTimeout(() => (sharedDown = false), 1000).unref() // try Redis again after 1 s
      }
    }
    return { r: await local.reserve(memory ? memory.seeded(limits) : limits, amount, need(amount)), on: local }
  }

  async function replayPending(): Promise<void> {
    const charged = await pending.replay(async (limits, cost) => {
      memory!.note(await shared!.charge(memory!.seeded(limits), cost))
    })
    if (charged && !pending.size()) logger.warn(`budget: Redis back; ${charged} cost(s) admitted meanwhile charged to the shared ledger`)
  }

  async function settle(on: Ledger, res: Reservation, limits: BudgetLimit[], cost: number, p: Principal): Promise<void> {
    try {
      const states = await on.settle(res, cost)
      if (on === shared) memory!.note(states)
      if (on === local && shared && cost > 0) pending.add(limits, cost)
      softAlerts(p, states, cost)
    } catch (err) {
      // The reservation expires with its lease; the cost is charged to the shared ledger once Redis answers again
      // (a reply lost after Redis applied it charges twice: an over-count, never a budget passed).
      if (on === shared && cost > 0) pending.add(limits, cost)
      logger.warn('budget: settlement failed; the reservation will expire with its lease', { cause: (err as Error).message })
    }
  }

  function softAlerts(p: Principal, states: Record<string, { spend: number }>, cost: number): void {
    const check = (scope: string, soft: number | null | undefined) => {
      const s = states[scope]
      if (soft == null || !s || cost <= 0) return
      if (s.spend >= soft && s.spend - cost < soft) {
        events.emit('budget.soft', { scope, spend: s.spend, soft_budget: soft })
        logger.warn('soft budget crossed', { scope: scope.startsWith('key:') ? `key:${scope.slice(4, 20)}` : scope, spend: s.spend, softBudget: soft })
      }
    }
    if (p.token) check(`key:${p.token}`, p.key?.soft_budget)
    if (p.team) check(`team:${p.team.team_id}`, p.team.soft_budget)
    if (p.user) check(`user:${p.user.user_id}`, p.user.soft_budget)
  }

  async function limitsFor(p: Principal, model: string): Promise<BudgetLimit[]> {
    const limits: BudgetLimit[] = []
    const key = p.key
    if (key && p.token) {
      const row = key.budget_id && budgetRows ? await budgetRows.get(key.budget_id) : null
      const max = key.max_budget ?? row?.max_budget ?? null
      const duration = key.budget_duration ?? row?.budget_duration ?? null
      limits.push({ scope: `key:${p.token}`, max, duration, seed: { spend: key.spend ?? 0, resetAt: key.budget_reset_at } })
      const perModel: ModelBudget | undefined = key.model_max_budget?.[model] ?? row?.model_max_budget?.[model]
      if (perModel && typeof perModel.budget_limit === 'number') {
        const d = perModel.time_period ?? null
        // The period boundaries are anchored on the key's creation, so every replica and a restart agree on them.
        limits.push({
          scope: `key:${p.token}:model:${model}`, max: perModel.budget_limit, duration: d,
          seed: { spend: key.model_spend?.[model] ?? 0, resetAt: d ? rollForward(key.created_at, d, clock.now()) : null },
        })
      }
    }
    const team = p.team
    if (team && team.max_budget != null) {
      limits.push({ scope: `team:${team.team_id}`, max: team.max_budget, duration: team.budget_duration, seed: { spend: team.spend ?? 0, resetAt: team.budget_reset_at } })
    }
    const user = p.user
    if (user && user.max_budget != null) {
      limits.push({ scope: `user:${user.user_id}`, max: user.max_budget, duration: user.budget_duration, seed: { spend: user.spend ?? 0, resetAt: user.budget_reset_at } })
    }
    if (p.endUserId) {
      const e = p.endUser
      const row = e?.budget_id && budgetRows ? await budgetRows.get(e.budget_id) : null
      const max = e?.max_budget ?? row?.max_budget ?? options.max_end_user_budget ?? null
      if (max != null) {
        const duration = e?.budget_duration ?? row?.budget_duration ?? options.end_user_budget_duration ?? null
        limits.push({ scope: `end_user:${p.endUserId}`, max, duration, seed: { spend: e?.spend ?? 0, resetAt: e?.budget_reset_at ?? null } })
      }
    }
    return limits
  }

  /** The money to hold for this call: the largest over the deployments it may be sent to. */
  function amountFor(op: Operation, model: string, body: Record<string, unknown>): number {
    const targets = models.resolve(model)
    let usd = 0
    if (options.mode === 'strict') {
      let setMax = 0
      for (const t of targets) {
        const w = pricing.worstCase(t, op, body)
        if (w.usd > usd) usd = w.usd
        if (pricing.limitsOf(t).maxOutputTokens == null) setMax = Math.max(setMax, w.maxTokens)
      }
      // The bound assumed a default output cap for a model whose maximum is unknown: make the call honour it.
      if (setMax > 0 && op !== 'embeddings' && body.max_tokens == null && body.max_completion_tokens == null) body.max_tokens = setMax
    } else {
      for (const t of targets) usd = Math.max(usd, pricing.estimate(t, op, body))
    }
    return usd
  }

  let sweepTimer: NodeJS.Timeout | null = null
  let sweeping = false
  async function sweep(): Promise<void> {
    if (!store || sweeping) return
    sweeping = true
    try {
      const now = clock.now()
      for (const due of await store.dueForReset(new Date(now).toISOString())) {
        const next = rollForward(due.budget_reset_at, due.budget_duration, now)
        if (await store.resetSpend(due.kind, due.id, due.budget_reset_at, next)) {
          events.emit('budget.reset', { kind: due.kind, id: due.id })
          events.emit('invalidate', { kind: due.kind, id: due.id })
        }
      }
    } catch (err) {
      logger.debug('budget: reset sweep failed; retried next tick', { cause: (err as Error).message })
    } finally {
      sweeping = false
    }
  }

  const self = {
    start() {
      if (store && !sweepTimer) {
        sweepTimer = setInterval(() => void sweep(), options.reset_interval_ms)
        sweepTimer.unref()
      }
    },
    async stop() {
      if (sweepTimer) clearInterval(sweepTimer)
      sweepTimer = null
      await local.close()
      await shared?.close()
    },
    middleware: (async function budget(ctx, next) {
      const state = ctx.state
      const p: Principal | null = state.principal
      if (!p || !MODEL_KINDS.has(state.kind) || (!p.token && !p.endUserId)) return next()
      const limits = await limitsFor(p, state.model)
      if (limits.length === 0) return next()
      const amount = amountFor(state.kind as Operation, state.model, state.body!)
      const { r, on } = await reserve(limits, amount)
      if (!r.ok) exceeded(r)
      if (p.token) {
        const k = r.states[`key:${p.token}`]
        if (k) ctx.set('x-litellm-key-spend', formatCost(k.spend))
        const max = limits[0]!.max
        if (max != null) ctx.set('x-litellm-key-max-budget', String(max))
      }
      const reservation = r.reservation
      void state.done.then(() => settle(on, reservation, limits, state.costUsd, p))
      return next()
    }) as GatewayMiddleware,
  }
  budgets.set(cradle, self)
  return self
}

function budgetRowCache(store: Store) {
  const cache = new LRUCache<string, BudgetRecord | false>({
    max: 10_000,
    ttl: 10_000, // 10 s; invalidations drop entries at once
    fetchMethod: async (id) => (await store.get('budget', id)) ?? false,
  })
  return {
    async get(id: string): Promise<BudgetRecord | null> {
      const v = cache.get(id) ?? (await cache.fetch(id))
      return v ? v : null
    },
    delete: (id: string) => void cache.delete(id),
  }
}

function splitScope(scope: string): [string, string] {
  const i = scope.indexOf(':')
  return [scope.slice(0, i), scope.slice(i + 1)]
}

/** Which budget, in LiteLLM's words, never printing a key's hash in full. */
function describe(kind: string, id: string): string {
  if (kind === 'key') {
    const m = id.indexOf(':model:')
    return m === -1 ? `Key=${id.slice(0, 12)}...` : `Key=${id.slice(0, 12)}... model=${id.slice(m + 7)}`
  }
  if (kind === 'end_user') return `EndUser=${id}`
  return `${kind[0]!.toUpperCase()}${kind.slice(1)}=${id}`
}
