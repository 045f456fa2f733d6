/**
 * Pricing: the USD cost of a finished call, what a request may cost before it is sent, and a model's token limits.
 *
 * Precedence, per deployment: its own prices (`input_cost_per_token` / `output_cost_per_token`, and
 * `cache_read_input_token_cost` / `cache_creation_input_token_cost` in model_info), then the genai-prices table,
 * then a fallback price reported as `source: 'unpriced'`, so a model found nowhere is never silently free.
 *
 * A deployment's own price replaces only the sides it sets; the others come from the table, or are 0 when the model
 * is not in it. That is LiteLLM's behaviour: it merges the deployment's keys over its cost-map entry
 * (`register_model`; docs.litellm.ai/docs/proxy/custom_pricing, "Override Model Cost Map": "override the desired
 * keys"), and an entry it cannot find starts empty.
 *
 * Everything a call needs is resolved once per deployment and cached: the next call is a WeakMap hit (the same
 * Target) or one Map lookup (a copy of it, such as the per-request timeout copies).
 */
import type { Operation, Usage } from '../openai/types.js'
import type { Target } from '../../providers/types.js'
import { GENAI_PROVIDER, LITELLM_PROVIDER } from './providers.js'
import { findTableModel, flatCost, tableCost, type Bound, type Rates, type TableModel } from './table.js'
import { lookupLimits, type Limits } from './limits.js'
import { tokenParts } from './usage.js'
import {
  choicesOf, completionEstimate, completionLimit, extraOutputBound, promptTokensBound, promptTokensEstimate,
} from './budget.js'
import { createMediaPricing, isMediaOp, type CostSource } from './media.js'

export interface Price {
  /** USD per token. */
  inputPerToken: number
  outputPerToken: number
  cacheReadPerToken: number
  cacheWritePerToken: number
  source: 'deployment' | 'table' | 'unpriced'
}

export interface PricingOptions {
  /** Price of a model found nowhere, USD per token. Default DEFAULT_FALLBACK. */
  fallback?: { inputPerToken: number; outputPerToken: number }
  /** Clock for prices that depend on time (off-peak windows, dated price changes); ms since the epoch. */
  now?: () => number
}

export interface Pricing {
  /** Cached per (provider, model): a Map lookup after the first call (this runs on every request). */
  priceOf(target: Target): Price
  /** USD for a finished call, from its token usage (chat, completions, embeddings). */
  cost(target: Target, usage: Usage, op?: Operation): { usd: number; source: Price['source'] }
  /**
   * USD for a finished call of any operation: token ops from `usage` (none: 0, source ''); images, transcription,
   * speech and moderations by their own units (core/pricing/media.ts), from the request body and the parsed reply
   * (null when there is none to read: audio bytes, an unread pass-through reply).
   */
  callCost(target: Target, op: Operation, body: Record<string, unknown>, reply: unknown, usage: Usage | null): { usd: number; source: CostSource | '' }
  /** LiteLLM's mode of a media model ('image_generation', 'audio_transcription', 'audio_speech', 'moderation'), else null. */
  mediaMode(target: Target): string | null
  /** Context window and max output tokens, from the LiteLLM table data (null when unknown). */
  limitsOf(target: Target): { contextWindow: number | null; maxOutputTokens: number | null }
  /**
   * An upper bound the call's cost cannot exceed, for budget reservations; `maxTokens` is the completion limit it
   * assumed (per choice), for the caller to set on the request when the client gave none.
   */
  worstCase(target: Target, op: Operation, body: Record<string, unknown>): { usd: number; maxTokens: number }
  /** A realistic expected cost in USD. */
  estimate(target: Target, op: Operation, body: Record<string, unknown>): number
}

/**
 * The price of a model found nowhere: $2.50 per 1M input tokens and $10 per 1M output tokens. A conservative
 * mid-range model price (gpt-4o's list price): an unknown model is never free, and small or local models are
 * over- rather than under-charged. Set a deployment's own prices (0 for a free local model) to replace it.
 */
export const DEFAULT_FALLBACK = { inputPerToken: 2.5e-6, outputPerToken: 10e-6 } as const

/** Distinct (provider, model, prices) entries kept; SDK calls can name any model. Oldest dropped first past this. */
const MAX_ENTRIES = 4096

interface Entry {
  price: Price
  rates: Rates
  /** Prices calls when the table alone prices the deployment; null for the deployment's own or fallback prices. */
  table: TableModel | null
  bound: Bound
  limits: { contextWindow: number | null; maxOutputTokens: number | null }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && v >= 0 && Number.isFinite(v) ? v : undefined
}

function positive(v: unknown): number | undefined {
  return typeof v === 'number' && v > 0 && Number.isFinite(v) ? v : undefined
}

/** A bounded Map: past `max` entries the oldest is dropped (insertion order). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MAX_ENTRIES) map.delete(map.keys().next().value!)
  map.set(key, value)
}

export function createPricing(opts: PricingOptions = {}): Pricing {
  const fallback: Rates = {
    input: opts.fallback?.inputPerToken ?? DEFAULT_FALLBACK.inputPerToken,
    output: opts.fallback?.outputPerToken ?? DEFAULT_FALLBACK.outputPerToken,
    cacheRead: opts.fallback?.inputPerToken ?? DEFAULT_FALLBACK.inputPerToken,
    cacheWrite: opts.fallback?.inputPerToken ?? DEFAULT_FALLBACK.inputPerToken,
  }
  const now = opts.now ?? Date.now
  const media = createMediaPricing(fallback.input)
  const byTarget = new WeakMap<Target, Entry>()
  const byKey = new Map<string, Entry>()
  const tables = new Map<string, TableModel | null>()

  function tableFor(provider: string, model: string): TableModel | null {
    const key = `${provider}\n${model}`
    let t = tables.get(key)
    if (t === undefined) {
      t = findTableModel(provider, model, now())
      remember(tables, key, t)
    }
    return t
  }

  function entryOf(target: Target): Entry {
    let e = byTarget.get(target)
    if (e) return e
    const info = target.modelInfo
    const key = [
      target.provider, target.model, info.base_model, target.inputCostPerToken, target.outputCostPerToken,
      info.cache_read_input_token_cost, info.cache_creation_input_token_cost, info.max_input_tokens,
      info.max_output_tokens, info.max_tokens,
    ].join('\n')
    e = byKey.get(key)
    if (!e) {
      e = build(target)
      remember(byKey, key, e)
    }
    byTarget.set(target, e)
    return e
  }

  function build(target: Target): Entry {
    const info = target.modelInfo
    const { provider, model } = pricedAs(target)
    const table = tableFor(provider, model)
    const limits = Object.freeze(limitsFor(provider, model, table, info))
    const input = target.inputCostPerToken
    const output = target.outputCostPerToken
    const cacheRead = num(info.cache_read_input_token_cost)
    const cacheWrite = num(info.cache_creation_input_token_cost)
    if (input === undefined && output === undefined && cacheRead === undefined && cacheWrite === undefined) {
      if (table) return { price: freezePrice(table.rates, 'table'), rates: table.rates, table, bound: table.bound, limits }
      const bound = { input: fallback.input, output: fallback.output, perRequest: 0 }
      return { price: freezePrice(fallback, 'unpriced'), rates: fallback, table: null, bound, limits }
    }
    const t = table?.rates
    const inRate = input ?? t?.input ?? 0
    // The table's cache discounts carry over to the deployment's own input price: a negotiated rate keeps the
    // provider's cache ratio, and a model made free (input 0) stays free for cached tokens too.
    const scaled = (tableRate: number) => (t && t.input > 0 ? inRate * (tableRate / t.input) : inRate)
    const rates: Rates = {
      input: inRate,
      output: output ?? t?.output ?? 0,
      cacheRead: cacheRead ?? scaled(t?.cacheRead ?? inRate),
      cacheWrite: cacheWrite ?? scaled(t?.cacheWrite ?? inRate),
    }
    // Calls are priced with these flat rates, so their maxima bound them.
    const bound = { input: Math.max(rates.input, rates.cacheRead, rates.cacheWrite), output: rates.output, perRequest: 0 }
    return { price: freezePrice(rates, 'deployment'), rates, table: null, bound, limits }
  }

  function cost(target: Target, usage: Usage, op?: Operation): { usd: number; source: Price['source'] } {
    const e = entryOf(target)
    const parts = tokenParts(usage, op)
    const usd = e.table ? tableCost(e.table, parts, now()) : flatCost(e.rates, parts)
    return { usd, source: e.price.source }
  }

  return {
    priceOf(target) {
      return entryOf(target).price
    },

    cost,

    callCost(target, op, body, reply, usage) {
      if (isMediaOp(op)) return media.cost(target, op, body, reply, usage)
      return usage ? cost(target, usage, op) : { usd: 0, source: '' }
    },

    mediaMode(target) {
      return media.modeOf(target)
    },

    limitsOf(target) {
      return entryOf(target).limits
    },

    worstCase(target, op, body) {
      if (isMediaOp(op)) return { usd: media.worstCase(target, op, body), maxTokens: 0 }
      const e = entryOf(target)
      if (op === 'embeddings') return { usd: promptTokensBound(op, body) * e.bound.input + e.bound.perRequest, maxTokens: 0 }
      const maxTokens = completionLimit(body, target.defaults, e.limits.maxOutputTokens)
      const output = maxTokens * choicesOf(op, body) + extraOutputBound(body)
      const usd = promptTokensBound(op, body) * e.bound.input + output * e.bound.output + e.bound.perRequest
      return { usd, maxTokens }
    },

    estimate(target, op, body) {
      if (isMediaOp(op)) return media.estimate(target, op, body)
      const e = entryOf(target)
      return promptTokensEstimate(op, body) * e.rates.input + completionEstimate(op, body) * e.rates.output +
        e.bound.perRequest
    },
  }
}

function freezePrice(r: Rates, source: Price['source']): Price {
  return Object.freeze({
    inputPerToken: r.input, outputPerToken: r.output, cacheReadPerToken: r.cacheRead, cacheWritePerToken: r.cacheWrite, source,
  })
}

/**
 * The model a deployment is priced as: LiteLLM's `model_info.base_model` when set (an Azure deployment named
 * `my-gpt4o` with `base_model: azure/gpt-4o`), else its own provider and model.
 */
function pricedAs(target: Target): { provider: string; model: string } {
  const base = target.modelInfo.base_model
  if (typeof base !== 'string' || base === '') return { provider: target.provider, model: target.model }
  const slash = base.indexOf('/')
  const prefix = slash > 0 ? base.slice(0, slash) : ''
  if (prefix && GENAI_PROVIDER.has(prefix)) return { provider: prefix, model: base.slice(slash + 1) }
  return { provider: target.provider, model: base }
}

/**
 * model_info's own limits (LiteLLM reads them there too), then LiteLLM's table under the deployment's provider, then
 * under the provider whose price was found (llama-3.1-8b-instant on a vLLM host: Groq's row), then genai-prices'
 * context window.
 */
function limitsFor(provider: string, model: string, table: TableModel | null, info: Readonly<Record<string, unknown>>): Limits {
  const owner = table ? LITELLM_PROVIDER.get(table.providerId) : undefined
  const row = lookupLimits(provider, model) ?? (table && owner ? lookupLimits(owner, table.name) : null)
  return {
    contextWindow: positive(info.max_input_tokens) ?? row?.contextWindow ?? table?.contextWindow ?? null,
    maxOutputTokens: positive(info.max_output_tokens) ?? positive(info.max_tokens) ?? row?.maxOutputTokens ?? null,
  }
}
