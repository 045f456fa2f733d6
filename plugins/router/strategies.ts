/**
 * The routing strategies, as one ranking: every deployment of a group gets keys, and the group is ordered by
 * (`order` ascending, strategy score ascending, second score ascending, a random tie-break). The first is the one
 * the call goes to; the rest are the order retries walk (LiteLLM picks again per retry; an order computed once gives
 * the same first choice and a sensible next one).
 *
 *   simple-shuffle          weighted random without replacement (Efraimidis-Spirakis keys -u^(1/w)); the weight is
 *                           `weight`, else `rpm`, else `tpm`, else 1 (LiteLLM's simple_shuffle)
 *   least-busy              fewest calls in flight
 *   usage-based-routing-v2  most rpm/tpm headroom this minute: lowest max(requests/rpm, tokens/tpm) (0 without
 *                           limits), then fewest tokens this minute
 *   latency-based-routing   lowest mean latency (time to first token for streams, when known); a deployment with no
 *                           sample yet ranks first so it gets measured; within `lowest_latency_buffer` x best of the
 *                           best, deployments count as equally fast and the tie-break spreads them
 *   cost-based-routing      lowest input + output price per token
 *
 * Per group the keys live in typed arrays allocated once (the group array from the model table is stable), and the
 * ranking is an insertion sort of an index array: groups are small, and the call allocates nothing but the targets
 * array it returns.
 */
import type { Target } from '../../providers/types.js'
import { emptyStats, type DeploymentStats } from './stats.js'

export const STRATEGIES = [
  'simple-shuffle', 'least-busy', 'usage-based-routing-v2', 'latency-based-routing', 'cost-based-routing',
] as const
export type Strategy = (typeof STRATEGIES)[number]

/** Why a pre-call check left a deployment out. */
export const KEEP = 0
export const SKIP_RATE = 1
export const SKIP_CONTEXT = 2

/** A group's per-deployment scratch space and constants, built on first use and kept with the group array. */
export interface GroupView {
  readonly targets: readonly Target[]
  readonly ids: readonly string[]
  readonly stats: DeploymentStats[]
  /** `order`, or +inf for deployments without one. */
  readonly ord: Float64Array
  readonly score: Float64Array
  readonly score2: Float64Array
  readonly rnd: Float64Array
  /** KEEP, SKIP_RATE or SKIP_CONTEXT, per deployment, set by the pre-call checks. */
  readonly skip: Uint8Array
  readonly idx: Int32Array
  /** Input + output USD per token (cost-based routing). */
  readonly cost: Float64Array
  /** Context window in tokens; +inf when unknown. */
  readonly window: Float64Array
  /** Whether any deployment has a context window / rpm or tpm: checks that cannot skip anything are not run. */
  readonly anyWindow: boolean
  readonly anyLimit: boolean
}

export interface ViewDeps {
  priceOf(t: Target): { inputPerToken: number; outputPerToken: number }
  contextWindowOf(t: Target): number | null
}

export function buildView(targets: readonly Target[], deps: ViewDeps | null): GroupView {
  const n = targets.length
  const cost = new Float64Array(n)
  const window = new Float64Array(n).fill(Number.POSITIVE_INFINITY)
  let anyWindow = false
  if (deps) {
    for (let i = 0; i < n; i++) {
      const t = targets[i]!
      const p = deps.priceOf(t)
      cost[i] = p.inputPerToken + p.outputPerToken
      const w = maxInputTokens(t) ?? deps.contextWindowOf(t)
      if (w !== null) {
        window[i] = w
        anyWindow = true
      }
    }
  }
  return {
    targets,
    ids: targets.map((t) => t.id),
    stats: targets.map(() => emptyStats()),
    ord: Float64Array.from(targets, (t) => t.order ?? Number.POSITIVE_INFINITY),
    score: new Float64Array(n),
    score2: new Float64Array(n),
    rnd: new Float64Array(n),
    skip: new Uint8Array(n),
    idx: new Int32Array(n),
    cost,
    window,
    anyWindow,
    anyLimit: targets.some((t) => t.rpm !== undefined || t.tpm !== undefined),
  }
}

/** model_info.max_input_tokens, as LiteLLM's pre-call check reads it first. */
function maxInputTokens(t: Target): number | null {
  const v = t.modelInfo.max_input_tokens
  return typeof v === 'number' && v > 0 ? v : null
}

export interface RankInput {
  strategy: Strategy
  /** The request streams: latency-based routing compares time to first token. */
  stream: boolean
  /** LiteLLM routing_strategy_args.lowest_latency_buffer: 0.5 = within 1.5x the best counts as equally fast. */
  latencyBuffer: number
  random: () => number
  /** Rank by `order` first (false: ignore it, for the bare weighted shuffle). */
  useOrder: boolean
}

/** LiteLLM's simple-shuffle weight: `weight`, else rpm, else tpm, else 1 (a `weight: 1` is the default, not a choice). */
export function weightOf(t: Target): number {
  return t.weight !== 1 ? t.weight : (t.rpm ?? t.tpm ?? 1)
}

function utilisation(t: Target, s: DeploymentStats): number {
  let u = 0
  if (t.rpm !== undefined) u = t.rpm > 0 ? s.requests / t.rpm : Number.POSITIVE_INFINITY
  if (t.tpm !== undefined) u = Math.max(u, t.tpm > 0 ? s.tokens / t.tpm : Number.POSITIVE_INFINITY)
  return u
}

/** Fill the score keys for the strategy (view.stats must be current for the stats-based ones). */
function scoreAll(view: GroupView, r: RankInput): void {
  const { targets, stats, score, score2, rnd } = view
  const n = targets.length
  for (let i = 0; i < n; i++) {
    rnd[i] = r.random()
    score2[i] = 0
    switch (r.strategy) {
      case 'simple-shuffle': {
        const w = weightOf(targets[i]!)
        // A weight of 0 (or less) never leads: it goes after every weighted deployment.
        score[i] = w > 0 ? -Math.pow(r.random(), 1 / w) : 1
        break
      }
      case 'least-busy':
        score[i] = stats[i]!.inFlight
        break
      case 'usage-based-routing-v2':
        score[i] = utilisation(targets[i]!, stats[i]!)
        score2[i] = stats[i]!.tokens
        break
      case 'latency-based-routing': {
        const s = stats[i]!
        const ms = r.stream && s.ttftMs >= 0 ? s.ttftMs : s.latencyMs
        score[i] = ms < 0 ? 0 : ms
        break
      }
      case 'cost-based-routing':
        score[i] = view.cost[i]!
        break
    }
  }
  if (r.strategy === 'latency-based-routing' && r.latencyBuffer > 0) applyBuffer(view, r.useOrder, r.latencyBuffer)
}

/** Within each `order` tier, latencies up to (1 + buffer) x the tier's best become the best: equally fast. */
function applyBuffer(view: GroupView, useOrder: boolean, buffer: number): void {
  const { ord, score, skip } = view
  const n = score.length
  for (let i = 0; i < n; i++) {
    if (skip[i] !== KEEP) continue
    let best = Number.POSITIVE_INFINITY
    for (let j = 0; j < n; j++) {
      if (skip[j] === KEEP && (!useOrder || ord[j] === ord[i]) && score[j]! < best) best = score[j]!
    }
    // Scores are only lowered to a tier's best, so a second pass over an already lowered one changes nothing.
    if (score[i]! <= best * (1 + buffer)) score[i] = best
  }
}

function before(view: GroupView, a: number, b: number, useOrder: boolean): boolean {
  if (useOrder && view.ord[a] !== view.ord[b]) return view.ord[a]! < view.ord[b]!
  if (view.score[a] !== view.score[b]) return view.score[a]! < view.score[b]!
  if (view.score2[a] !== view.score2[b]) return view.score2[a]! < view.score2[b]!
  return view.rnd[a]! < view.rnd[b]!
}

/**
 * Order the deployments the pre-call checks kept (view.skip), by the strategy. Returns how many there are; their
 * indexes are view.idx[0..count).
 */
export function rank(view: GroupView, r: RankInput): number {
  scoreAll(view, r)
  const { idx, skip } = view
  let m = 0
  for (let i = 0; i < skip.length; i++) {
    if (skip[i] !== KEEP) continue
    // Insertion sort: small groups, no comparator closure, no allocation.
    let j = m
    while (j > 0 && before(view, i, idx[j - 1]!, r.useOrder)) {
      idx[j] = idx[j - 1]!
      j--
    }
    idx[j] = i
    m++
  }
  return m
}

/** The ranked deployments as a new array (the one allocation per call). */
export function ranked(view: GroupView, count: number): Target[] {
  const out = new Array<Target>(count)
  for (let k = 0; k < count; k++) out[k] = view.targets[view.idx[k]!]!
  return out
}
