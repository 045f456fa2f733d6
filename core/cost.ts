/**
 * Cost of one call in USD, from the deployment's own prices (`input_cost_per_token` / `output_cost_per_token` in
 * litellm_params or model_info, as LiteLLM reads them) and the usage the provider reported. A deployment without
 * prices costs 0 here; the price table (keys issue) fills that gap later.
 */
import type { Usage } from './openai/types.js'
import type { Target } from '../providers/types.js'

export function costOf(target: Target | null, usage: Usage | null): number {
  if (!target || !usage) return 0
  const input = target.inputCostPerToken
  const output = target.outputCostPerToken
  if (input === undefined && output === undefined) return 0
  const prompt = usage.prompt_tokens ?? 0
  const completion = usage.completion_tokens ?? 0
  return prompt * (input ?? 0) + completion * (output ?? 0)
}

/** A cost as LiteLLM prints it in `x-litellm-response-cost`: a plain decimal, no exponent for tiny values. */
export function formatCost(usd: number): string {
  if (usd === 0) return '0'
  const s = String(usd)
  return s.includes('e') ? usd.toFixed(12).replace(/0+$/, '') : s
}
