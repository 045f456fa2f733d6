/**
 * Pricing: the cost of every call from a maintained price table (@pydantic/genai-prices), context windows and max
 * output tokens from LiteLLM's table, and token estimates for budgets. See pricing.ts for the precedence rules.
 */
export { createPricing, DEFAULT_FALLBACK, type Price, type Pricing, type PricingOptions } from './pricing.js'
export { DEFAULT_MAX_TOKENS } from './budget.js'
export { MODEL_LIMITS_SOURCE } from './model-limits.js'
export { MEDIA_FALLBACK, isMediaOp, type CostSource, type MediaOp } from './media.js'
export { MEDIA_PRICES_SOURCE } from './media-prices.js'
