/**
 * What a model group's capacity is, in each dimension, and the 429s that name the one that is full.
 *
 * - Parallel: the sum of its deployments' `max_parallel_requests`, a deployment without one counting the per-deployment
 *   default (`deployment_max_parallel_requests`, LiteLLM's general_settings.max_parallel_requests) when that is set;
 *   with none of these, the plugin option (per group or one number); else none.
 * - rpm / tpm: the sum of its deployments' `rpm` (`tpm`) when EVERY deployment sets one. One deployment without a
 *   limit can take any number of calls, so the group as a whole has none.
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'
import type { Target } from '../../providers/types.js'
import { retryAfterMinute } from './minute.js'

/** Capacity of a group per dimension (Infinity = none). Gated when any is finite. */
export interface GroupLimits {
  readonly parallel: number
  readonly rpm: number
  readonly tpm: number
  readonly gated: boolean
}

export function groupLimits(targets: readonly Target[], fallbackParallel: number, perDeployment?: number): GroupLimits {
  let parallel = 0
  let parallelKnown = false
  let rpm = 0
  let tpm = 0
  let everyRpm = targets.length > 0
  let everyTpm = targets.length > 0
  for (const t of targets) {
    const own = t.maxParallelRequests ?? perDeployment
    if (own !== undefined) {
      parallel += own
      parallelKnown = true
    }
    if (t.rpm === undefined) everyRpm = false
    else rpm += t.rpm
    if (t.tpm === undefined) everyTpm = false
    else tpm += t.tpm
  }
  const l = {
    parallel: parallelKnown ? parallel : fallbackParallel,
    rpm: everyRpm ? rpm : Infinity,
    tpm: everyTpm ? tpm : Infinity,
  }
  return { ...l, gated: l.parallel !== Infinity || l.rpm !== Infinity || l.tpm !== Infinity }
}

/** What was full: a parallel slot, this minute's rpm or tpm, or (shared gate) this minute without saying which. */
export type FullOn = 'parallel' | 'rpm' | 'tpm' | 'minute'

/** Retry-After for a refusal on parallel slots, seconds: a slot frees when any call of the group ends, usually soon. */
const PARALLEL_RETRY_S = 1

function what(l: GroupLimits, on: FullOn): string {
  switch (on) {
    case 'parallel': return `all ${l.parallel} parallel slots are in use`
    case 'rpm': return `its rpm of ${l.rpm} is used up this minute`
    case 'tpm': return `its tpm of ${l.tpm} cannot take this call this minute`
    case 'minute': return `its per-minute capacity (${describeMinute(l)}) is used up this minute`
  }
}

function describeMinute(l: GroupLimits): string {
  const parts: string[] = []
  if (l.rpm !== Infinity) parts.push(`rpm ${l.rpm}`)
  if (l.tpm !== Infinity) parts.push(`tpm ${l.tpm}`)
  return parts.join(', ')
}

const retryAfter = (on: FullOn, now: number) => (on === 'parallel' ? PARALLEL_RETRY_S : retryAfterMinute(now))

/** The group is full and the call has no priority to queue with (LiteLLM's answer when no deployment is free). */
export function fullError(group: string, l: GroupLimits, on: FullOn, now: number): GatewayError {
  return gatewayError('GW_ERR_RATE_LIMIT',
    `No deployments available for selected model ${group}: ${what(l, on)} and the call has no priority to queue with.`,
    { retryAfter: retryAfter(on, now) })
}

/** The call waited its whole queue timeout. `on`: what held it last, when known. */
export function timedOutError(group: string, l: GroupLimits, on: FullOn, priority: number, timeoutMs: number, now: number): GatewayError {
  const held = on === 'parallel' ? `all ${l.parallel} parallel slots stayed in use` : what(l, on)
  return gatewayError('GW_ERR_RATE_LIMIT',
    `Request timed out after ${timeoutMs} ms in the queue for model ${group} (priority ${priority}); ${held}.`,
    { retryAfter: retryAfter(on, now) })
}
