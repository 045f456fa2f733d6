/**
 * router: orders the deployments of the requested model into `ctx.state.targets`, the order the attempt chain tries
 * them in, by LiteLLM's `routing_strategy` (strategies.ts): simple-shuffle (default), least-busy,
 * usage-based-routing-v2, latency-based-routing, cost-based-routing. Deployments with a lower `order` always come
 * first. A principal restricted to some models gets 403 for others.
 *
 * `enable_pre_call_checks` leaves out deployments whose context window is too small for the prompt or whose
 * rpm/tpm is used up this minute, and fails at once when none is left (checks.ts); usage-based routing applies the
 * rpm/tpm part always, as LiteLLM's v2 strategy does.
 *
 * The strategies that need numbers (in flight, this minute's requests and tokens, latency) read them from a
 * RouterStats (stats.ts): in process, or shared through Redis when a state plugin registered `cradle.redis`
 * (stats-redis.ts). A routed call counts as in flight and as a request for the deployment it goes to first; when
 * `state.done` resolves its attempts are read back: requests that went elsewhere (retries, fallbacks), latency
 * samples (an attempt's duration; streams are primed, so a stream's duration is its time to first token) and the
 * tokens of `state.usage` for the deployment that answered. Calls routed with simple-shuffle or cost-based routing
 * and no pre-call checks keep no stats at all.
 *
 * A group the checks empty is not refused here: `state.routeError` carries the 429/400 into the attempt chain, where
 * the fallback plugin can still move the call to another group. A fallback group is ranked and checked the same way
 * (`enterGroup`, registered in `cradle.groupEntries`); one the checks empty is skipped for the next.
 */
import { asValue } from 'awilix'
import { definePlugin } from '../../core/plugin.js'
import { isModelOperation } from '../../core/openai/operations.js'
import { gatewayError } from '../../core/errors.js'
import type { Clock } from '../../core/container.js'
import type { GatewayState } from '../../core/state.js'
import type { Logger } from '../../core/logger.js'
import type { Operation, Target } from '../../providers/types.js'
import { buildView, rank, ranked, STRATEGIES, type GroupView, type RankInput, type Strategy, type ViewDeps } from './strategies.js'
import { emptyStats, localRouterStats, type DeploymentStats, type RouterStats, type StatsParams } from './stats.js'
import { redisRouterStats } from './stats-redis.js'
import { noDeploymentError, runChecks, type CheckFlags } from './checks.js'

export { weightOf, STRATEGIES, type Strategy } from './strategies.js'
export type { RouterStats, DeploymentStats } from './stats.js'

export interface RoutingStrategyArgs {
  /** Latency-based: deployments within (1 + buffer) x the fastest count as equally fast (LiteLLM default 0). */
  lowest_latency_buffer: number
  /** Latency-based: seconds a latency sample counts (LiteLLM default 1 h). */
  ttl: number
  /** Latency-based: samples kept per deployment (LiteLLM default 10). */
  max_latency_list_size: number
}

export interface RouterOptions {
  routing_strategy: Strategy
  routing_strategy_args: RoutingStrategyArgs
  enable_pre_call_checks: boolean
}

/** Strategies that rank on stats; the others rank on config alone. */
/** Per gateway (cradle): the stats the middleware keeps (null: its strategy needs none), for `routerStatsView`. */
const statsOf = new WeakMap<object, RouterStats | null>()

declare module '../../core/container.js' {
  interface Cradle {
    /** Read-only: deployments' in-flight calls, rpm/tpm this minute and latency; null when the router keeps no stats. */
    routerStatsView?: { read(ids: readonly string[], now: number): DeploymentStats[] | null }
  }
}

const STATS_STRATEGIES: ReadonlySet<Strategy> = new Set<Strategy>(['least-busy', 'usage-based-routing-v2', 'latency-based-routing'])

function isModelCall(kind: GatewayState['kind']): kind is Operation {
  return isModelOperation(kind)
}

/** Weighted random order without replacement, ignoring `order` (LiteLLM's simple-shuffle within one order). */
export function weightedShuffle(group: readonly Target[], random: () => number = Math.random): Target[] {
  return shuffle(group, random, false)
}

/** simple-shuffle: lower `order` first (deployments without one last), weighted random within an order. */
export function orderTargets(group: readonly Target[], random: () => number = Math.random): Target[] {
  return shuffle(group, random, true)
}

function shuffle(group: readonly Target[], random: () => number, useOrder: boolean): Target[] {
  if (group.length < 2) return group.slice()
  const view = buildView(group, null)
  return ranked(view, rank(view, { strategy: 'simple-shuffle', stream: false, latencyBuffer: 0, random, useOrder }))
}

/** Settles a routed call once its response is over: see the header comment. */
function settle(stats: RouterStats, clock: Clock, logger: Logger, state: GatewayState, picked: Target, handle: number, pickedAt: number): void {
  try {
    record(stats, clock.now(), state, picked, handle, pickedAt)
  } catch (err) {
    // Stats are advisory: a bug here must not become an unhandled rejection that takes the process down.
    logger.error('router: recording call stats failed', { requestId: state.requestId, err })
  }
}

function record(stats: RouterStats, now: number, state: GatewayState, picked: Target, handle: number, pickedAt: number): void {
  stats.release(picked.id, handle)
  let pickedTried = false
  for (const a of state.attempts) {
    if (!pickedTried && a.targetId === picked.id) pickedTried = true
    else stats.count(a.targetId, now, 1, 0)
    // A timed-out attempt is a sample too: its duration is the least that deployment takes now.
    if (a.status === 200 || a.status === 408) stats.sample(a.targetId, a.durationMs, state.stream, now)
  }
  // Counted at pick time but never called (another plugin moved the call): take the request back, in its minute.
  if (!pickedTried) stats.count(picked.id, pickedAt, -1, 0)
  const tokens = state.usage?.total_tokens
  if (state.target && tokens) stats.count(state.target.id, now, 0, tokens)
}

export default definePlugin<RouterOptions>({
  name: 'router',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      routing_strategy: { enum: [...STRATEGIES], default: 'simple-shuffle' },
      routing_strategy_args: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: {
          lowest_latency_buffer: { type: 'number', minimum: 0, default: 0 },
          ttl: { type: 'number', exclusiveMinimum: 0, default: 3600 },
          max_latency_list_size: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
        },
      },
      enable_pre_call_checks: { type: 'boolean', default: false },
    },
  },
  register(container) {
    container.register({
      routerStatsView: asValue({
        read(ids: readonly string[], now: number): DeploymentStats[] | null {
          const stats = statsOf.get(container.cradle)
          if (!stats) return null
          const out = ids.map(() => emptyStats())
          stats.read(ids, now, out)
          return out
        },
      }),
    })
  },
  middleware(cradle, o) {
    const { models, pricing, clock, redis, logger, groupEntries } = cradle
    const strategy = o.routing_strategy
    const args = o.routing_strategy_args
    const flags: CheckFlags = { usage: o.enable_pre_call_checks || strategy === 'usage-based-routing-v2', contextWindow: o.enable_pre_call_checks }
    const checks = flags.usage || flags.contextWindow
    const params: StatsParams = { samples: args.max_latency_list_size, latencyTtlMs: args.ttl * 1000 }
    // Shared through Redis when a state plugin gave the gateway a client; none at all when nothing reads them.
    const stats: RouterStats | null = !(STATS_STRATEGIES.has(strategy) || checks) ? null
      : redis ? redisRouterStats(redis, localRouterStats(params), params, logger) : localRouterStats(params)
    statsOf.set(cradle, stats)
    const deps: ViewDeps = { priceOf: (t) => pricing.priceOf(t), contextWindowOf: (t) => pricing.limitsOf(t).contextWindow }
    // Keyed by the model table's group array, which stays the same until the group's deployments change.
    const views = new WeakMap<readonly Target[], GroupView>()
    // Reused for every call: everything from reading the stats to building the targets array runs synchronously.
    const input: RankInput = { strategy, stream: false, latencyBuffer: args.lowest_latency_buffer, random: Math.random, useOrder: true }
    const prompt = { tokens: -1 }

    /** Checks, ranks and counts the call; synchronous from reading the stats to the targets array (see `input`). */
    function route(state: GatewayState, view: GroupView): void {
      if (stats) stats.read(view.ids, clock.now(), view.stats)
      const now = clock.now()
      if (checks && runChecks(view, flags, state.kind as Operation, state.body ?? {}, prompt) === 0) {
        // Not thrown here: the attempt chain fails the group with it, where the fallback plugin can still move the
        // call to its context_window_fallbacks / fallbacks (state.routeError). Nothing is counted: nothing is sent.
        state.routeError = noDeploymentError(view, state.model, prompt.tokens, now)
        state.targets = view.targets.slice()
        return
      }
      input.stream = state.stream
      const targets = ranked(view, rank(view, input))
      state.targets = targets
      if (!stats) return
      const picked = targets[0]!
      const handle = stats.acquire(picked.id, now)
      // One closure per call: `done` is the only signal that a call, and its stream, is over.
      state.done.then(() => settle(stats, clock, logger, state, picked, handle, now))
    }

    /**
     * A fallback group (core/pipeline.ts GroupEntry): ranked by the same strategy and checks. Nothing is acquired
     * for it; its attempts are counted with the call's others when `done` resolves (record()).
     */
    async function enterGroup(state: GatewayState, _name: string, targets: readonly Target[]): Promise<readonly Target[]> {
      if (targets.length === 1 && !checks) return targets
      let view = views.get(targets)
      if (!view) views.set(targets, (view = buildView(targets, deps)))
      const first = stats?.ready(view.ids, clock.now())
      if (first) await first
      if (stats) stats.read(view.ids, clock.now(), view.stats)
      if (checks && runChecks(view, flags, state.kind as Operation, state.body ?? {}, prompt) === 0) {
        throw noDeploymentError(view, targets[0]!.modelName, prompt.tokens, clock.now())
      }
      input.stream = state.stream
      return ranked(view, rank(view, input))
    }
    groupEntries.push(enterGroup)

    // Not async: only a group's first pick with shared stats waits (stats.ready), every other call stays synchronous.
    return function router(ctx, next) {
      const state = ctx.state
      if (!isModelCall(state.kind)) return next()
      const allowed = state.principal?.models
      if (allowed && allowed.length && !allowed.includes(state.model) && !allowed.includes(models.aliasOf(state.model) ?? state.model)) {
        throw gatewayError('GW_ERR_FORBIDDEN', `This key is not allowed to call model ${state.model}.`, { param: 'model', openaiCode: 'model_not_allowed' })
      }
      const group = models.resolve(state.model)
      if (group.length === 1 && !stats) {
        state.targets = [group[0]!]
        return next()
      }
      let view = views.get(group)
      if (!view) views.set(group, (view = buildView(group, deps)))
      const first = stats?.ready(view.ids, clock.now())
      if (first) {
        const v = view
        return first.then(() => {
          route(state, v)
          return next()
        })
      }
      route(state, view)
      return next()
    }
  },
})
