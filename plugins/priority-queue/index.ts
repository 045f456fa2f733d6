/**
 * priority-queue: holds model calls (chat, completions, embeddings) to each model group's capacity, the number of
 * calls it may have in flight at once, and lets the most important waiting call go first when a slot frees.
 *
 * - Capacity of a group: the sum of its deployments' `max_parallel_requests` (litellm_params or model_info); with
 *   none set, the option `max_parallel_requests` (`{ "<group>": n }`, or one number for every group); with none of
 *   those, the group is not gated at all.
 * - Priority (lower = more important): body `priority`, else key metadata `priority` (a number), else team metadata,
 *   else option `default_priority`. A call with none is never queued: at capacity it gets 429 at once (LiteLLM's
 *   answer when no deployment is free). A call whose key or team names a reserved level (`priority: "prod"`) queues
 *   at `default_priority`, else 0, and its level's share does the ordering between levels.
 * - Waiting ends when a slot is free (event-driven: `state.done` frees the slot and admits the best waiter at once),
 *   at the queue timeout (body `timeout` seconds, else `queue_timeout_ms`) -> 429 with `retry-after`, or when the
 *   client disconnects (`state.signal`) -> it leaves the queue at once and nothing is sent upstream.
 * - Reservation (`priority_reservation: { prod: 0.9, dev: 0.1 }`): below `saturation_threshold` (in flight /
 *   capacity, LiteLLM's default 0.8) any level uses idle capacity; at or above it each level is held to its share
 *   (at least 1 slot, so a small share is never starved).
 * - `state.timings.queue_ms`: how long the call waited (0 when admitted at once).
 * - `GET /queue/status` (master key or a proxy_admin): per group and priority, in flight, queued, oldest wait.
 *
 * Shared: with a Redis client in the container (state-redis), the gate of every group lives in Redis (gate-redis.ts):
 * capacity, priority order and reservation hold across all replicas, and a slot freed on one replica wakes the best
 * waiter on any. If Redis fails, calls are gated in process (each replica then holds the whole capacity on its own,
 * a logged warning, counted in /queue/status as `redis_fallbacks`) and go back to Redis once it answers.
 */
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import type { Cradle } from '../../core/container.js'
import type { GatewayState, Principal } from '../../core/state.js'
import type { Target } from '../../providers/types.js'
import { CapacityGate, NO_PRIORITY, type GateStatus, type PriorityStats, type ReservationPolicy, type Waiter } from './queue.js'
import { RedisGate, type GroupParams, type SharedStatus, type SharedWaiter } from './gate-redis.js'

export interface PriorityQueueOptions {
  /** Calls in flight per model group when its deployments set none: one number for all groups, or per group. */
  max_parallel_requests?: number | Record<string, number>
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

const MODEL_KINDS: ReadonlySet<string> = new Set(['chat', 'completions', 'embeddings'])
/** Retry-After for a refusal, seconds: a slot frees when any call of the group ends, usually within a second or so. */
const RETRY_AFTER_S = 1
/** Priority of a call known only by its reserved level and no default_priority: levels share one FIFO band. */
const LEVEL_ONLY_PRIORITY = 0

const schedulers = new WeakMap<object, Scheduler>()

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
      saturation_threshold: { type: 'number', minimum: 0, maximum: 1, default: 0.8 },
      lease_ms: { type: 'integer', minimum: 30, default: 30_000 },
    },
  },
  middleware(cradle, options) {
    return schedulerFor(cradle, options).middleware
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
  const policy: ReservationPolicy = {
    shares: new Map(Object.entries(options.priority_reservation ?? {})),
    saturationThreshold: options.saturation_threshold,
  }
  const gates = new Map<string, CapacityGate>()
  // resolve() hands back the same array for a configured group: its capacity is summed once.
  const capacities = new WeakMap<readonly Target[], number>()
  const perGroup = typeof options.max_parallel_requests === 'object' ? options.max_parallel_requests : null
  const everyGroup = typeof options.max_parallel_requests === 'number' ? options.max_parallel_requests : undefined
  let seq = 0

  function capacityOf(group: string): number {
    const targets = models.resolve(group)
    let c = capacities.get(targets)
    if (c !== undefined) return c
    let sum = 0
    let known = false
    for (const t of targets) {
      const n = t.maxParallelRequests
      if (n !== undefined) {
        sum += n
        known = true
      }
    }
    c = known ? sum : (perGroup?.[group] ?? everyGroup ?? Infinity)
    capacities.set(targets, c)
    return c
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

  function gateOf(group: string, capacity: number): CapacityGate {
    let g = gates.get(group)
    if (!g) gates.set(group, (g = new CapacityGate(capacity, policy)))
    else g.setCapacity(capacity)
    return g
  }

  function full(group: string, capacity: number): Error {
    return gatewayError('GW_ERR_RATE_LIMIT',
      `No deployments available for selected model ${group}: all ${capacity} parallel slots are in use and the call has no priority to queue with.`,
      { retryAfter: RETRY_AFTER_S })
  }

  function timedOut(group: string, priority: number, capacity: number, timeoutMs: number): Error {
    return gatewayError('GW_ERR_RATE_LIMIT',
      `Request timed out after ${timeoutMs} ms in the queue for model ${group} (priority ${priority}); all ${capacity} parallel slots stayed in use.`,
      { retryAfter: RETRY_AFTER_S })
  }

  const closed = () => gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request while it waited in the queue')

  function timeoutOf(state: GatewayState): number {
    const body = state.body
    const timeoutS = body ? finite(body.timeout) : undefined
    return timeoutS !== undefined && timeoutS > 0 ? timeoutS * 1000 : options.queue_timeout_ms
  }

  /** Frees a slot when the call is done. */
  type Release = () => void

  /** Queue on the in-process gate; resolves once admitted, rejects on timeout or disconnect. */
  function waitLocal(gate: CapacityGate, group: string, state: GatewayState, priority: number, level: string,
    queuedAt: number, timeoutMs: number): Promise<Release> {
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
        admit: () => {
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          resolve(() => gate.release(level, priority))
        },
      }
      if (signal.aborted) {
        reject(closed())
        return
      }
      signal.addEventListener('abort', onAbort, { once: true })
      timer = setTimeout(() => {
        if (!gate.remove(waiter)) return
        signal.removeEventListener('abort', onAbort)
        reject(timedOut(group, priority, gate.capacity, timeoutMs))
      }, Math.max(0, queuedAt + timeoutMs - clock.now()))
      gate.enqueue(waiter)
    })
  }

  /** In process: a slot now (sync), a queued wait, or a 429 for a call with no priority. */
  function acquireLocal(group: string, capacity: number, state: GatewayState, rank: Rank): Release | Promise<Release> {
    const gate = gateOf(group, capacity)
    const { priority, level } = rank
    // Invariant kept by the gate: no queued waiter's level is admissible, so a call that may start now jumps no one.
    if (gate.canAdmit(level)) {
      const held = priority ?? NO_PRIORITY
      gate.take(level, held)
      return () => gate.release(level, held)
    }
    if (priority === undefined) throw full(group, capacity)
    return waitLocal(gate, group, state, priority, level, clock.now(), timeoutOf(state))
  }

  // ---- shared through Redis ----
  let fallbacks = 0
  const shared = cradle.redis
    ? new RedisGate({
      redis: cradle.redis,
      now: clock.now,
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

  function paramsOf(group: string, capacity: number): GroupParams {
    let p = paramsCache.get(group)
    if (p && p.capacity === capacity) return p
    const probe = new CapacityGate(capacity, policy)
    p = { capacity, levels, limits: levels.map((l) => probe.levelLimit(l)), reserved: policy.shares.size > 0, saturation: policy.saturationThreshold }
    paramsCache.set(group, p)
    return p
  }

  async function acquireShared(gate: RedisGate, group: string, capacity: number, state: GatewayState, rank: Rank): Promise<Release> {
    const { priority, level } = rank
    const queuedAt = clock.now()
    const w: SharedWaiter & { admit: () => void; moved: () => void } = {
      group,
      level,
      priority: priority ?? NO_PRIORITY,
      queuedAt,
      member: gate.newMember(queuedAt, priority ?? NO_PRIORITY),
      admit: () => {},
      moved: () => {},
    }
    const r = await gate.enter(w, paramsOf(group, capacity), priority !== undefined)
    if (r === null) {
      fallbacks++
      return acquireLocal(group, capacity, state, rank)
    }
    if (r === 'admitted') return () => gate.release(w.member)
    if (r === 'full') throw full(group, capacity)
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
        resolve(() => gate.release(w.member))
      }
      w.moved = () => {
        cleanup()
        fallbacks++
        local = waitLocal(gateOf(group, capacity), group, state, priority!, level, queuedAt, timeoutMs)
        local.then(resolve, reject)
      }
      const timer = setTimeout(() => {
        if (local || !gate.leave(w)) return
        cleanup()
        reject(timedOut(group, priority!, capacity, timeoutMs))
      }, timeoutMs)
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  const middleware = async function priorityQueue(ctx, next) {
    const state = ctx.state
    if (!MODEL_KINDS.has(state.kind)) return next()
    // The group's own name: an alias (model_group_alias) shares its group's gate, not a second one beside it.
    const group = models.resolve(state.model)[0]?.modelName ?? state.model
    const capacity = capacityOf(group)
    if (capacity === Infinity) return next()
    const rank = rankOf(state)
    const started = clock.now()
    let release = shared ? acquireShared(shared, group, capacity, state, rank) : acquireLocal(group, capacity, state, rank)
    if (typeof release !== 'function') {
      release = await release
      state.timings.queue_ms = clock.now() - started
    } else {
      state.timings.queue_ms = 0
    }
    void state.done.then(release)
    return next()
  } as GatewayMiddleware

  async function status(): Promise<Record<string, unknown>> {
    const now = clock.now()
    const out: Record<string, GateStatus & { local?: GateStatus }> = {}
    if (shared) {
      // Every gated group, also those this replica has not served yet: others may have queued calls in Redis.
      for (const m of models.list()) {
        const capacity = capacityOf(m.id)
        if (capacity !== Infinity) paramsOf(m.id, capacity)
      }
      for (const group of paramsCache.keys()) {
        const s = await shared.status(group, paramsCache.get(group)!)
        if (s) out[group] = fromShared(s, now, policy.shares.size > 0, paramsCache.get(group)!)
      }
    }
    for (const [group, gate] of gates) {
      const st = gate.status(now)
      if (!shared) out[group] = st
      else if (st.inFlight > 0 || st.queued > 0) (out[group] ??= st).local = st
    }
    return shared ? { models: out, shared: true, redis_fallbacks: fallbacks } : { models: out }
  }

  return {
    middleware,
    status,
    start: () => shared?.start(),
    stop: () => shared?.stop(),
  }
}

/** /queue/status numbers of a group from what Redis holds. */
function fromShared(s: SharedStatus, now: number, reserved: boolean, p: GroupParams): GateStatus {
  const priorities: Record<string, PriorityStats> = {}
  const stat = (pr: number) => (priorities[pr === NO_PRIORITY ? 'none' : String(pr)] ??= { inFlight: 0, queued: 0, oldestWaitMs: 0 })
  let inFlight = 0
  let queued = 0
  let oldest = 0
  const levels: GateStatus['levels'] = {}
  s.levels.forEach((l, i) => {
    for (const m of l.inFlight) stat(m.priority).inFlight++
    for (const m of l.queued) {
      const st = stat(m.priority)
      st.queued++
      const waited = Math.max(0, now - m.queuedAt)
      if (waited > st.oldestWaitMs) st.oldestWaitMs = waited
      if (waited > oldest) oldest = waited
    }
    inFlight += l.inFlight.length
    queued += l.queued.length
    if (reserved && (l.inFlight.length || l.queued.length)) {
      const limit = p.limits[i]!
      levels[l.level] = { inFlight: l.inFlight.length, queued: l.queued.length, limit: limit === Infinity ? null : limit }
    }
  })
  return { capacity: s.capacity, inFlight, queued, oldestWaitMs: oldest, priorities, levels }
}
