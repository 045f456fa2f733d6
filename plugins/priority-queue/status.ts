/** /queue/status of a group shared through Redis, in the same shape as the in-process gate's (queue.ts). */
import type { GroupParams, SharedStatus } from './gate-redis.js'
import { NO_PRIORITY, type GateStatus, type PriorityStats } from './queue.js'

const orNull = (n: number): number | null => (n === Infinity ? null : n)

/** /queue/status numbers of a group from what Redis holds. */
export function fromShared(s: SharedStatus, now: number, reserved: boolean, p: GroupParams): GateStatus {
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
  return {
    capacity: orNull(s.capacity), rpm: orNull(s.rpm), tpm: orNull(s.tpm), rpmUsed: s.rpmUsed, tpmUsed: s.tpmUsed,
    inFlight, queued, oldestWaitMs: oldest, priorities, levels,
  }
}
