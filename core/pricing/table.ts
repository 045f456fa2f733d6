/**
 * The price table: @pydantic/genai-prices, searched once per (provider, model) and turned into what the per-call
 * path needs. Most models have plain per-token prices: their cost is a few multiplications over flat rates. Models
 * with tiers (Gemini above 128k/200k input tokens), time-of-day or dated prices, per-request fees or audio go
 * through genai-prices' own calcPrice, handed a one-model provider so it skips its provider and model search.
 */
import { calcPrice, findProvider, type ModelInfo, type ModelPrice, type PriceCalculation, type Provider, type Usage as GenaiUsage } from '@pydantic/genai-prices'
import { GENAI_PROVIDER, SCAN_ORDER } from './providers.js'
import type { TokenParts } from './usage.js'

/** genai-prices quotes `_mtok` keys in USD per million tokens (divided, not multiplied by 1e-6: 2.5 / 1e6 prints as 0.0000025). */
const TOKENS_PER_MTOK = 1e6
/** `requests_kcount`: USD per thousand requests. */
const REQUESTS_PER_KCOUNT = 1e3

/** USD per token. */
export interface Rates {
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
}

/** Flat rates for the arithmetic path; a null cache rate means the model bills those tokens as plain input. */
interface FlatRates {
  input: number
  output: number
  cacheRead: number | null
  cacheWrite: number | null
}

/** The highest rates a call can meet (any tier, any time window, any token kind), for worst-case reservations. */
export interface Bound {
  /** USD per input token. */
  input: number
  /** USD per output token. */
  output: number
  /** USD per call. */
  perRequest: number
}

export interface TableModel {
  /** genai-prices' provider and model ids, for logs. */
  providerId: string
  modelId: string
  /** The model name as it matched (what calcPrice is asked for). */
  name: string
  /** Rates in force when resolved (base tier); cache rates fall back to the input rate when the model has none. */
  rates: Rates
  bound: Bound
  contextWindow: number | null
  flat: FlatRates | null
  /** One-model provider for calcPrice. */
  single: Provider
}

const PROBE: GenaiUsage = { input_tokens: 1, output_tokens: 1 }

function lookup(name: string, providerId: string | undefined, at: Date): PriceCalculation | null {
  try {
    return calcPrice(PROBE, name, providerId === undefined ? { timestamp: at } : { providerId, timestamp: at })
  } catch {
    // A table entry genai-prices itself cannot price (bad data for that model) is as good as none.
    return null
  }
}

/**
 * The model as a LiteLLM name gives it: under its provider when genai-prices knows the provider, else (mock, vLLM,
 * any OpenAI-compatible host) by name among the model makers and hosts.
 *
 * A known provider without the model is not searched further: a host's price is its own (DeepSeek-R1 costs
 * $0.55/$2.19 per 1M tokens at DeepSeek, $3/$8 at Fireworks), and a prefix match elsewhere would price a
 * `deepseek-r1-distill-qwen-1p5b` at DeepSeek-R1's rate. Such a model is unpriced, which says so.
 */
export function findTableModel(provider: string, model: string, now: number): TableModel | null {
  const at = new Date(now)
  const name = model.trim()
  if (name === '') return null
  const providerId = GENAI_PROVIDER.get(provider) ?? provider
  const direct = lookup(name, providerId, at)
  if (direct) return toTableModel(direct, name)
  if (findProvider({ providerId })) return null
  const slash = name.lastIndexOf('/')
  const names = slash >= 0 && slash < name.length - 1 ? [name, name.slice(slash + 1)] : [name]
  for (const n of names) {
    const found = lookup(n, undefined, at) ?? scan(n, at)
    if (found) return toTableModel(found, n)
  }
  return null
}

function scan(name: string, at: Date): PriceCalculation | null {
  for (const id of SCAN_ORDER) {
    const r = lookup(name, id, at)
    if (r) return r
  }
  return null
}

function toTableModel(r: PriceCalculation, name: string): TableModel {
  const mp = r.model_price
  const input = perToken(mp.input_mtok) ?? 0
  const rates: Rates = {
    input,
    output: perToken(mp.output_mtok) ?? 0,
    cacheRead: perToken(mp.cache_read_mtok) ?? input,
    cacheWrite: perToken(mp.cache_write_mtok) ?? input,
  }
  const model: ModelInfo = { ...r.model, match: { equals: name } }
  return {
    providerId: r.provider.id,
    modelId: r.model.id,
    name,
    rates,
    bound: boundOf(r.model.prices),
    contextWindow: r.model.context_window ?? null,
    flat: Array.isArray(r.model.prices) ? null : flatRates(mp),
    single: { id: r.provider.id, name: r.provider.name, api_pattern: r.provider.api_pattern, models: [model] },
  }
}

type PriceValue = ModelPrice[string]

function perToken(v: PriceValue): number | null {
  if (typeof v === 'number') return v / TOKENS_PER_MTOK
  if (v && typeof v === 'object') return v.base / TOKENS_PER_MTOK
  return null
}

function highest(v: PriceValue): number {
  if (typeof v === 'number') return v
  if (!v || typeof v !== 'object') return 0
  let max = v.base
  for (const t of v.tiers) if (t.price > max) max = t.price
  return max
}

function boundOf(prices: ModelInfo['prices']): Bound {
  const sets = Array.isArray(prices) ? prices.map((c) => c.prices) : [prices]
  const b: Bound = { input: 0, output: 0, perRequest: 0 }
  for (const set of sets) {
    for (const [key, v] of Object.entries(set)) {
      const max = highest(v)
      if (key === 'requests_kcount') b.perRequest = Math.max(b.perRequest, max / REQUESTS_PER_KCOUNT)
      else if (!key.endsWith('_mtok')) continue
      else if (key.startsWith('output_')) b.output = Math.max(b.output, max / TOKENS_PER_MTOK)
      // input_*, cache_read_*, cache_write_* (Anthropic's 1h write is 2x input): all bill input tokens.
      else if (key.startsWith('input_') || key.startsWith('cache_')) b.input = Math.max(b.input, max / TOKENS_PER_MTOK)
    }
  }
  return b
}

const FLAT_KEYS = new Set(['input_mtok', 'output_mtok', 'cache_read_mtok', 'cache_write_mtok'])

/**
 * Keys our usage never feeds, so they add nothing to a call's cost: tool-call fees, the 5m/1h split of cache writes
 * (usage reports writes as one count), and audio rates (a usage with audio tokens takes the calcPrice path).
 */
function inert(key: string): boolean {
  return (key.endsWith('_kcount') && key !== 'requests_kcount') || key === 'cache_write_1h_mtok' ||
    key === 'cache_write_5m_mtok' || key.includes('audio')
}

function flatRates(mp: ModelPrice): FlatRates | null {
  for (const [key, v] of Object.entries(mp)) {
    if (v === undefined || inert(key)) continue
    if (!FLAT_KEYS.has(key) || typeof v !== 'number') return null
  }
  const cacheRead = perToken(mp.cache_read_mtok)
  const cacheWrite = perToken(mp.cache_write_mtok)
  return { input: perToken(mp.input_mtok) ?? 0, output: perToken(mp.output_mtok) ?? 0, cacheRead, cacheWrite }
}

/** USD for one call at the table's prices. */
export function tableCost(m: TableModel, p: TokenParts, now: number): number {
  const f = m.flat
  if (f && p.inputAudio === 0 && p.outputAudio === 0) {
    // genai-prices' partition: each priced kind of token at its rate, the rest of the input at the input rate.
    let rest = p.input
    let usd = p.output * f.output
    if (f.cacheRead !== null) { rest -= p.cacheRead; usd += p.cacheRead * f.cacheRead }
    if (f.cacheWrite !== null) { rest -= p.cacheWrite; usd += p.cacheWrite * f.cacheWrite }
    return usd + rest * f.input
  }
  try {
    const r = calcPrice(genaiUsage(p), m.name, { provider: m.single, timestamp: new Date(now) })
    if (r) return r.total_price
  } catch {
    // genai-prices refuses usages it cannot split exactly (audio and cache reads both reported for a model that
    // prices cached audio separately): the base rates below are the closest answer.
  }
  return flatCost(m.rates, p)
}

/** Plain arithmetic over rates: cache reads and writes at their rates, the rest of the input at the input rate. */
export function flatCost(r: Rates, p: TokenParts): number {
  return (p.input - p.cacheRead - p.cacheWrite) * r.input + p.cacheRead * r.cacheRead + p.cacheWrite * r.cacheWrite +
    p.output * r.output
}

function genaiUsage(p: TokenParts): GenaiUsage {
  const u: GenaiUsage = { input_tokens: p.input, output_tokens: p.output }
  if (p.cacheRead > 0) u.cache_read_tokens = p.cacheRead
  if (p.cacheWrite > 0) u.cache_write_tokens = p.cacheWrite
  if (p.inputAudio > 0) u.input_audio_tokens = p.inputAudio
  if (p.outputAudio > 0) u.output_audio_tokens = p.outputAudio
  return u
}
