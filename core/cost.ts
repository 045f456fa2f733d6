/**
 * Cost of one call in USD: the deployment's own prices (`input_cost_per_token` / `output_cost_per_token`, as LiteLLM
 * reads them), else the price table, else a conservative fallback price (see core/pricing). `costOf` keeps the
 * one-number form the request path records; `defaultPricing().cost()` also says where the price came from.
 */
import type { Operation, Usage } from './openai/types.js'
import type { Target } from '../providers/types.js'
import { createPricing, type Pricing } from './pricing/index.js'

let shared: Pricing | null = null

/** The process-wide pricing with default options, created on first use. */
export function defaultPricing(): Pricing {
  return (shared ??= createPricing())
}

export function costOf(target: Target | null, usage: Usage | null, op?: Operation): number {
  if (!target || !usage) return 0
  return defaultPricing().cost(target, usage, op).usd
}

/** A cost as LiteLLM prints it in `x-litellm-response-cost`: a plain decimal, no exponent for tiny values. */
export function formatCost(usd: number): string {
  if (usd === 0) return '0'
  const s = String(usd)
  return s.includes('e') ? usd.toFixed(12).replace(/0+$/, '') : s
}
