/**
 * router: orders the deployments of the requested model into `ctx.state.targets`, the order the attempt chain
 * tries them in. `simple-shuffle` (LiteLLM's default): deployments with a lower `order` come first; within one
 * order, a random pick weighted by `weight` (else `rpm`, else `tpm`, else equal), without replacement.
 * A principal restricted to some models gets 403 for others.
 */
import { definePlugin } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import type { Target } from '../../providers/types.js'

interface Options {
  routing_strategy: 'simple-shuffle'
}

function weightOf(t: Target): number {
  return t.weight !== 1 ? t.weight : (t.rpm ?? t.tpm ?? 1)
}

/** Weighted random order without replacement (Efraimidis-Spirakis keys: u^(1/w)). */
export function weightedShuffle(group: readonly Target[], random: () => number = Math.random): Target[] {
  if (group.length < 2) return group.slice()
  return group
    .map((t) => {
      const w = weightOf(t)
      return { t, k: w > 0 ? Math.pow(random(), 1 / w) : -1 }
    })
    .sort((a, b) => b.k - a.k)
    .map((x) => x.t)
}

export function orderTargets(group: readonly Target[], random?: () => number): Target[] {
  if (group.length < 2) return group.slice()
  if (!group.some((t) => t.order !== undefined)) return weightedShuffle(group, random)
  const byOrder = new Map<number, Target[]>()
  for (const t of group) {
    const o = t.order ?? Number.MAX_SAFE_INTEGER
    let g = byOrder.get(o)
    if (!g) byOrder.set(o, (g = []))
    g.push(t)
  }
  return [...byOrder.keys()].sort((a, b) => a - b).flatMap((o) => weightedShuffle(byOrder.get(o)!, random))
}

export default definePlugin<Options>({
  name: 'router',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: { routing_strategy: { enum: ['simple-shuffle'], default: 'simple-shuffle' } },
  },
  middleware({ models }) {
    return function router(ctx, next) {
      const state = ctx.state
      if (state.kind === 'chat' || state.kind === 'completions' || state.kind === 'embeddings') {
        const allowed = state.principal?.models
        if (allowed && allowed.length && !allowed.includes(state.model)) {
          throw gatewayError('GW_ERR_FORBIDDEN', `This key is not allowed to call model ${state.model}.`, { param: 'model', openaiCode: 'model_not_allowed' })
        }
        state.targets = orderTargets(models.resolve(state.model))
      }
      return next()
    }
  },
})
