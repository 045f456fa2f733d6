/**
 * priority-queue: holds model calls (chat, completions, embeddings) to each model group's capacity (the calls it may
 * have in flight at once, and the calls and tokens it may start per clock minute) and lets the most important waiting
 * call go first when capacity frees.
 *
 * - Capacity of a group (limits.ts): parallel = the sum of its deployments' `max_parallel_requests` (litellm_params or
 *   model_info; `deployment_max_parallel_requests` for one that sets none); with none set, the option
 *   `max_parallel_requests` (`{ "<group>": n }`, or one number for every group). rpm / tpm = the sum of its deployments' `rpm` / `tpm` when every deployment sets one. A group with none of
 *   these is not gated at all (one cached lookup per call).
 * - Per minute (minute.ts): a call starts when this clock minute has admitted fewer calls than the rpm and its
 *   prompt's token estimate fits on top of the minute's tokens (an empty minute takes any one call). When the call is
 *   done, its real usage replaces the estimate in the minute it was admitted in. Waiters held by the minute wake at
 *   its boundary (one timer per group while such waiters exist); reservation shares apply to parallel slots only.
 * - Priority (lower = more important): body `priority`, else key metadata `priority` (a number), else team metadata,
 *   else option `default_priority`. A call with none is never queued: at capacity it gets 429 at once (LiteLLM's
 *   answer when no deployment is free). A call whose key or team names a reserved level (`priority: "prod"`) queues
 *   at `default_priority`, else 0, and its level's share does the ordering between levels. A no-priority call refused
 *   for the minute's rpm/tpm gets a `retry-after` of the seconds left in the minute.
 * - Waiting ends when capacity frees (event-driven: `state.done` frees the slot and admits the best waiter at once,
 *   the minute boundary timer admits those the minute held), at the queue timeout (body `timeout` seconds, else
 *   `queue_timeout_ms`) -> 429 with `retry-after`, or when the client disconnects (`state.signal`) -> it leaves the
 *   queue at once and nothing is sent upstream.
 * - Reservation (`priority_reservation: { prod: 0.9, dev: 0.1 }`): below `saturation_threshold` (in flight /
 *   capacity, LiteLLM's default 0.8) any level uses idle capacity; at or above it each level is held to its share
 *   (at least 1 slot, so a small share is never starved).
 * - `state.timings.queue_ms`: how long the call waited (0 when admitted at once).
 * - `GET /queue/status` (master key or a proxy_admin): per group and priority, in flight, queued, oldest wait; per
 *   group its `capacity`, `rpm`, `tpm` (null = none) and this minute's `rpmUsed`, `tpmUsed`.
 *
 * Shared: with a Redis client in the container (state-redis), the gate of every group lives in Redis (gate-redis.ts):
 * capacity (per minute too: the minute's counts live in Redis), priority order and reservation hold across all
 * replicas, and a slot freed on one replica wakes the best waiter on any. If Redis fails, calls are gated in process
 * (each replica then holds the whole capacity on its own, a logged warning, counted in /queue/status as
 * `redis_fallbacks`) and go back to Redis once it answers.
 */
import { asValue } from 'awilix'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import { gatewayError, GatewayError } from '../../core/errors.js'
import type { Cradle } from '../../core/container.js'
import type { GatewayState, Outcome, Principal } from '../../core/state.js'
import type { Operation } from '../../core/openai/types.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import type { Target } from '../../providers/types.js'
import { CapacityGate, NO_PRIORITY, type GateStatus, type ReservationPolicy, type Waiter } from './queue.js'
import { RedisGate, type GroupParams, type SharedWaiter } from './gate-redis.js'
import { fromShared } from './status.js'
import { fullError, groupLimits, timedOutError, type FullOn, type GroupLimits } from './limits.js'

export interface PriorityQueueOptions {
  /** Calls in flight per model group when its deployments set none: one number for all groups, or per group. */
  max_parallel_requests?: number | Record<string, number>
  /** Calls in flight per deployment that sets no max_parallel_requests of its own (LiteLLM general_settings.max_parallel_requests). */
  deployment_max_parallel_requests?: number
  /** Priority of a call that names none (body, key, team); unset = such calls are not queued. */
  default_priority?: number
  /** Longest wait in the queue, ms (a body `timeout`, in seconds, overrides it). */
  queue_timeout_ms: number
  /** Level name -> share of capacity (0..1) held for it under saturation. */
  priority_reservation?: Record<string, number>
  /** In flight / capacity at or above which the shares are enforced, 0..1. */
  saturation_threshold: number
  /** Lease of a slot held in Redis, ms: a replica that dies frees its slots within it (renewed while calls run). */
  lease_ms: number
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS
/** Priority of a call known only by its reserved level and no default_priority: levels share one FIFO band. */
const LEVEL_ONLY_PRIORITY = 0

const schedulers = new WeakMap<object, Scheduler>()

declare module '../../core/container.js' {
  interface Cradle {
    /** Read-only: what GET /queue/status reports, for /metrics (registered only with the priority-queue plugin). */
    priorityQueueStatus?: { status(): Promise<Record<string, unknown>> }
  }
}

export default definePlugin<PriorityQueueOptions>({
  name: 'priority-queue',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      max_parallel_requests: {
        anyOf: [
          { type: 'integer', minimum: 1 },
          { type: 'object', additionalProperties: { type: 'integer', minimum: 1 } },
        ],
      },
      default_priority: { type: 'integer' },
      queue_timeout_ms: { type: 'integer', minimum: 1, default: 30_000 },
      priority_reservation: { type: 'object', additionalProperties: { type: 'number', minimum: 0, maximum: 1 } },
      deployment_max_parallel_requests: { type: 'integer', minimum: 1 },
      saturation_threshold: { type: 'number', minimum: 0, maximum: 1, default: 0.8 },
      lease_ms: { type: 'integer', minimum: 30, default: 30_000 },
    },
  },
  register(container, options) {
    // Resolved lazily: the scheduler is made with the middleware, after every plugin registered.
    container.register({ priorityQueueStatus: asValue({ status: () => schedulerFor(container.cradle, options).status() }) })
  },
  middleware(cradle, options) {
    const scheduler = schedulerFor(cradle, options)
    cradle.groupEntries.push(scheduler.enterGroup)
    return scheduler.middleware
  },
  routes(registrar, cradle, options) {
    const scheduler = schedulerFor(cradle, options)
    registrar.add({
      method: 'GET',
      path: '/queue/status',
      kind: 'management',
      handler: async function queueStatus(ctx) {
        if (!isAdmin(ctx.state.principal)) {
          throw gatewayError('GW_ERR_FORBIDDEN', 'Only the master key or a proxy_admin may read the queue status.')
        }
        ctx.body = await scheduler.status()
      } as GatewayMiddleware,
    })
  },
  async start(cradle, options) {
    await schedulerFor(cradle, options).start()
  },
  async stop(cradle, options) {
    await schedulerFor(cradle, options).stop()
  },
})

/**
 * Test hook: run now what the minute boundary timers of this gateway would run at the boundary (the in-process
 * pumps, and the shared gate's PUMP). The timers are set from the injected clock's distance to the boundary in real
 * milliseconds, so a test that moves a fake clock past a boundary calls this instead of waiting up to a minute.
 * Resolves with how many timers were set (and ran).
 */
export async function fireMinuteBoundaries(cradle: Cradle): Promise<number> {
  return (await schedulers.get(cradle)?.fireBoundaries()) ?? 0
}

function isAdmin(p: Principal | null): boolean {
  return p !== null && (p.kind === 'master' || p.role === 'proxy_admin')
}

/** One scheduler per gateway (cradle), shared by the middleware and the status route. */
function schedulerFor(cradle: Cradle, options: PriorityQueueOptions): Scheduler {
  let s = schedulers.get(cradle)
  if (!s) schedulers.set(cradle, (s = createScheduler(cradle, options)))
  return s
}

const finite = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

/** Where a call's priority comes from: a number to queue with, and its reservation level ('' = none). */
interface Rank {
  priority: number | undefined
  level: string
}

type Scheduler = ReturnType<typeof createScheduler>

function createScheduler(cradle: Cradle, options: PriorityQueueOptions) {
  const { clock, models } = cradle
  const now = () => clock.now()
  const policy: ReservationPolicy = {
    shares: new Map(Object.entries(options.priority_reservation ?? {})),
    saturationThreshold: options.saturation_threshold,
  }
  const gates = new Map<string, CapacityGate>()
  // resolve() hands back the same array for a configured group: its limits are summed once.
  const limitsCache = new WeakMap<readonly Target[], GroupLimits>()
  const perGroup = typeof options.max_parallel_requests === 'object' ? options.max_parallel_requests : null
  const everyGroup = typeof options.max_parallel_requests === 'number' ? options.max_parallel_requests : undefined
  let seq = 0

  /** `targets`: the group's deployments, as models.resolve() returned them (the caller has them already). */
  function limitsOf(group: string, targets: readonly Target[]): GroupLimits {
    let l = limitsCache.get(targets)
    if (l === undefined) {
      l = groupLimits(targets, perGroup?.[group] ?? everyGroup ?? Infinity, options.deployment_max_parallel_requests)
      limitsCache.set(targets, l)
    }
    return l
  }

  function rankOf(state: GatewayState): Rank {
    const p = state.principal
    const keyMeta = p?.key?.metadata ?? p?.metadata
    const teamMeta = p?.team?.metadata
    const kp = keyMeta?.priority
    const tp = teamMeta?.priority
    let level = ''
    if (policy.shares.size > 0) {
      if (typeof kp === 'string' && policy.shares.has(kp)) level = kp
      else if (typeof tp === 'string' && policy.shares.has(tp)) level = tp
    }
    const priority = typeof state.priority === 'number' ? state.priority
      : finite(kp) ?? finite(tp) ?? options.default_priority ?? (level !== '' ? LEVEL_ONLY_PRIORITY : undefined)
    return { priority, level }
  }

  /**
   * Tokens a call counts against its group's tpm at admission: its prompt, estimated as the router's deployment
   * checks count it (the reply's tokens are not known yet; its real usage replaces the estimate when it is done).
   */
  function estimateOf(state: GatewayState, l: GroupLimits): number {
    return l.tpm === Infinity || state.body === null ? 0 : Math.ceil(promptTokensEstimate(state.kind as Operation, state.body))
  }

  function gateOf(group: string, l: GroupLimits): CapacityGate {
    let g = gates.get(group)
    if (!g) gates.set(group, (g = new CapacityGate(l.parallel, policy, { rpm: l.rpm, tpm: l.tpm, now })))
    else g.setLimits(l.parallel, l.rpm, l.tpm)
    return g
  }

  const closed = () => gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request while it waited in the queue')

  function timeoutOf(state: GatewayState): number {
    const body = state.body
    const timeoutS = body ? finite(body.timeout) : undefined
    return timeoutS !== undefined && timeoutS > 0 ? timeoutS * 1000 : options.queue_timeout_ms
  }

  /** Frees a slot when the call is done, with its outcome (its real usage corrects the minute's tokens). */
  type Release = (o: Outcome) => void

  /** The call's real tokens, or -1 when unknown (no usage reported: its estimate stands). */
  const realTokens = (o: Outcome): number => {
    const n = o.usage?.total_tokens
    return typeof n === 'number' && n >= 0 ? Math.ceil(n) : -1
  }

  function localRelease(gate: CapacityGate, level: string, priority: number, minute: number, tokens: number): Release {
    // Only tokens need correcting, and only where they are a limit.
    if (minute < 0 || gate.tpm === Infinity) return () => gate.release(level, priority)
    return (o) => {
      const real = realTokens(o)
      if (real >= 0) gate.correct(minute, tokens, real)
      gate.release(level, priority)
    }
  }

  /** Queue on the in-process gate; resolves once admitted, rejects on timeout or disconnect. */
  function waitLocal(gate: CapacityGate, group: string, l: GroupLimits, state: GatewayState, priority: number, level: string,
    tokens: number, queuedAt: number, timeoutMs: number): Promise<Release> {
    const signal = state.signal
    return new Promise<Release>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const onAbort = () => {
        if (!gate.remove(waiter)) return
        clearTimeout(timer)
        reject(closed())
      }
      const waiter: Waiter = {
        priority,
        seq: seq++,
        level,
        queuedAt,
        index: -1,
        tokens,
        admit: (minute) => {
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          resolve(localRelease(gate, level, priority, minute, tokens))
        },
      }
      if (signal.aborted) {
        reject(closed())
        return
      }
      signal.addEventListener('abort', onAbort, { once: true })
      timer = setTimeout(() => {
        // What held it, read before it leaves (leaving may let the next waiter in).
        const on: FullOn = gate.heldByMinute ?? 'parallel'
        if (!gate.remove(waiter)) return
        signal.removeEventListener('abort', onAbort)
        reject(timedOutError(group, l, on, priority, timeoutMs, clock.now()))
      }, Math.max(0, queuedAt + timeoutMs - clock.now()))
      gate.enqueue(waiter)
    })
  }

  /** In process: a slot now (sync), a queued wait, or a 429 for a call with no priority. */
  function acquireLocal(group: string, l: GroupLimits, state: GatewayState, rank: Rank, tokens: number): Release | Promise<Release> {
    const gate = gateOf(group, l)
    const { priority, level } = rank
    // Invariant kept by the gate: no queued waiter may start now, so a call that may start jumps no one.
    const refused = gate.refuses(level, tokens)
    if (refused === null) {
      const held = priority ?? NO_PRIORITY
      return localRelease(gate, level, held, gate.take(level, held, tokens), tokens)
    }
    if (priority === undefined) throw fullError(group, l, refused, clock.now())
    return waitLocal(gate, group, l, state, priority, level, tokens, clock.now(), timeoutOf(state))
  }

  // ---- shared through Redis ----
  let fallbacks = 0
  const shared = cradle.redis
    ? new RedisGate({
      redis: cradle.redis,
      now,
      leaseMs: options.lease_ms,
      onState(up, err) {
        if (up) cradle.logger.info('priority-queue: Redis reachable again; queues are shared again')
        else cradle.logger.warn('priority-queue: Redis unreachable; calls are queued in process until it is back', { err: err?.message })
      },
    })
    : null
  /** Levels in a fixed order ('' first), the same on every replica with the same config. */
  const levels = ['', ...[...policy.shares.keys()].sort()]
  const paramsCache = new Map<string, GroupParams>()

  function paramsOf(group: string, l: GroupLimits): GroupParams {
    let p = paramsCache.get(group)
    if (p && p.capacity === l.parallel && p.rpm === l.rpm && p.tpm === l.tpm) return p
    const probe = new CapacityGate(l.parallel, policy)
    p = {
      capacity: l.parallel, rpm: l.rpm, tpm: l.tpm, levels, limits: levels.map((x) => probe.levelLimit(x)),
      reserved: policy.shares.size > 0, saturation: policy.saturationThreshold,
    }
    paramsCache.set(group, p)
    return p
  }

  async function acquireShared(gate: RedisGate, group: string, l: GroupLimits, state: GatewayState, rank: Rank, tokens: number): Promise<Release> {
    const { priority, level } = rank
    const queuedAt = clock.now()
    const w: SharedWaiter & { admit: () => void; moved: () => void } = {
      group,
      level,
      priority: priority ?? NO_PRIORITY,
      tokens,
      queuedAt,
      member: gate.newMember(queuedAt, priority ?? NO_PRIORITY, tokens),
      admit: () => {},
      moved: () => {},
    }
    const sharedRelease: Release = (o) => gate.release(w.member, realTokens(o))
    const r = await gate.enter(w, paramsOf(group, l), priority !== undefined)
    if (r === null) {
      fallbacks++
      return acquireLocal(group, l, state, rank, tokens)
    }
    if (r === 'admitted') return sharedRelease
    if (r === 'full') throw fullError(group, l, 'parallel', clock.now())
    if (r === 'minute-full') throw fullError(group, l, 'minute', clock.now())
    const timeoutMs = timeoutOf(state)
    const signal = state.signal
    return new Promise<Release>((resolve, reject) => {
      // Set when Redis failed while this call waited: it waits in process from then on.
      let local: Promise<Release> | null = null
      const cleanup = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const onAbort = () => {
        if (local || !gate.leave(w)) return
        cleanup()
        reject(closed())
      }
      w.admit = () => {
        cleanup()
        resolve(sharedRelease)
      }
      w.moved = () => {
        cleanup()
        fallbacks++
        local = waitLocal(gateOf(group, l), group, l, state, priority!, level, tokens, queuedAt, timeoutMs)
        local.then(resolve, reject)
      }
      const timer = setTimeout(() => {
        if (local || !gate.leave(w)) return
        cleanup()
        // The shared gate does not say what held it: the minute when the group has no parallel limit.
        reject(timedOutError(group, l, l.parallel === Infinity ? 'minute' : 'parallel', priority!, timeoutMs, clock.now()))
      }, timeoutMs)
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  const middleware = async function priorityQueue(ctx, next) {
    const state = ctx.state
    if (!MODEL_KINDS.has(state.kind)) return next()
    // The group's own name: an alias (model_group_alias) shares its group's gate, not a second one beside it.
    const targets = models.resolve(state.model)
    const group = targets[0]?.modelName ?? state.model
    const l = limitsOf(group, targets)
    if (!l.gated) return next()
    const rank = rankOf(state)
    const tokens = estimateOf(state, l)
    const started = clock.now()
    let release
    try {
      release = shared ? acquireShared(shared, group, l, state, rank, tokens) : acquireLocal(group, l, state, rank, tokens)
      if (typeof release !== 'function') {
        release = await release
        state.timings.queue_ms = clock.now() - started
      } else {
        state.timings.queue_ms = 0
      }
    } catch (err) {
      // Refused (full with no priority to queue with, or the queue wait ran out): LiteLLM's "no deployments
      // available". Not thrown here: as state.routeError it fails the group inside the attempt chain, where the
      // fallback plugin can still send the call to another group; with none, the client gets this 429 as it is.
      if (!(err instanceof GatewayError) || err.code !== 'GW_ERR_RATE_LIMIT' || state.routeError !== null) throw err
      state.routeError = err
      state.timings.queue_ms = clock.now() - started
      return next()
    }
    void state.done.then(release)
    return next()
  } as GatewayMiddleware

  /**
   * A fallback group (core/pipeline.ts GroupEntry): held to its own capacity, in the same priority order, as the
   * requested group was; the slot is freed when the call is done. A refusal (full with no priority, or the wait ran
   * out) is thrown: the fallback plugin moves on to its next group.
   */
  async function enterGroup(state: GatewayState, name: string, targets: readonly Target[]): Promise<readonly Target[]> {
    const group = targets[0]?.modelName ?? name
    const l = limitsOf(group, targets)
    if (!l.gated) return targets
    const rank = rankOf(state)
    const tokens = estimateOf(state, l)
    const started = clock.now()
    const got = shared ? acquireShared(shared, group, l, state, rank, tokens) : acquireLocal(group, l, state, rank, tokens)
    // Only a real wait adds to queue_ms (admitted at once adds 0, as on the requested group).
    const release = typeof got === 'function' ? got : await got
    state.timings.queue_ms = (state.timings.queue_ms ?? 0) + (typeof got === 'function' ? 0 : clock.now() - started)
    void state.done.then(release)
    return targets
  }

  async function status(): Promise<Record<string, unknown>> {
    const at = clock.now()
    const out: Record<string, GateStatus & { local?: GateStatus }> = {}
    if (shared) {
      // Every gated group, also those this replica has not served yet: others may have queued calls in Redis.
      for (const m of models.list()) {
        const l = limitsOf(m.id, models.resolve(m.id))
        if (l.gated) paramsOf(m.id, l)
      }
      for (const group of paramsCache.keys()) {
        const s = await shared.status(group, paramsCache.get(group)!)
        if (s) out[group] = fromShared(s, at, policy.shares.size > 0, paramsCache.get(group)!)
      }
    }
    for (const [group, gate] of gates) {
      const st = gate.status(at)
      if (!shared) out[group] = st
      else if (st.inFlight > 0 || st.queued > 0) (out[group] ??= st).local = st
    }
    return shared ? { models: out, shared: true, redis_fallbacks: fallbacks } : { models: out }
  }

  async function fireBoundaries(): Promise<number> {
    let n = 0
    for (const gate of gates.values()) if (gate.fireBoundary()) n++
    if (shared) n += await shared.fireBoundaries()
    return n
  }

  return {
    middleware,
    enterGroup,
    status,
    fireBoundaries,
    start: () => shared?.start(),
    async stop() {
      for (const gate of gates.values()) gate.close()
      await shared?.stop()
    },
  }
}
