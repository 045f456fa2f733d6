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
 * In process only: each replica gates its own calls (a shared Redis gate is a later step).
 */
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import type { Cradle } from '../../core/container.js'
import type { GatewayState, Principal } from '../../core/state.js'
import type { Target } from '../../providers/types.js'
import { CapacityGate, NO_PRIORITY, type GateStatus, type ReservationPolicy, type Waiter } from './queue.js'

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
        ctx.body = scheduler.status()
      } as GatewayMiddleware,
    })
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

  /** Wait for a slot; resolves once admitted (the slot is then held), rejects on timeout or disconnect. */
  function wait(gate: CapacityGate, group: string, state: GatewayState, priority: number, level: string): Promise<void> {
    const body = state.body
    const timeoutS = body ? finite(body.timeout) : undefined
    const timeoutMs = timeoutS !== undefined && timeoutS > 0 ? timeoutS * 1000 : options.queue_timeout_ms
    const signal = state.signal
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const onAbort = () => {
        if (!gate.remove(waiter)) return
        clearTimeout(timer)
        reject(gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request while it waited in the queue'))
      }
      const waiter: Waiter = {
        priority,
        seq: seq++,
        level,
        queuedAt: clock.now(),
        index: -1,
        admit: () => {
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      if (signal.aborted) {
        reject(gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request before it was queued'))
        return
      }
      signal.addEventListener('abort', onAbort, { once: true })
      timer = setTimeout(() => {
        if (!gate.remove(waiter)) return
        signal.removeEventListener('abort', onAbort)
        reject(gatewayError('GW_ERR_RATE_LIMIT',
          `Request timed out after ${timeoutMs} ms in the queue for model ${group} (priority ${priority}); all ${gate.capacity} parallel slots stayed in use.`,
          { retryAfter: RETRY_AFTER_S }))
      }, timeoutMs)
      gate.enqueue(waiter)
    })
  }

  const middleware = async function priorityQueue(ctx, next) {
    const state = ctx.state
    if (!MODEL_KINDS.has(state.kind)) return next()
    const group = state.model
    const capacity = capacityOf(group)
    if (capacity === Infinity) return next()
    const gate = gateOf(group, capacity)
    const { priority, level } = rankOf(state)
    const started = clock.now()
    // Invariant kept by the gate: no queued waiter's level is admissible, so a call that may start now jumps no one.
    if (gate.canAdmit(level)) {
      gate.take(level, priority ?? NO_PRIORITY)
      state.timings.queue_ms = 0
    } else {
      if (priority === undefined) throw full(group, capacity)
      await wait(gate, group, state, priority, level)
      state.timings.queue_ms = clock.now() - started
    }
    const held = priority ?? NO_PRIORITY
    void state.done.then(() => gate.release(level, held))
    return next()
  } as GatewayMiddleware

  function status(): { models: Record<string, GateStatus> } {
    const now = clock.now()
    const out: Record<string, GateStatus> = {}
    for (const [group, gate] of gates) out[group] = gate.status(now)
    return { models: out }
  }

  return { middleware, status }
}
