/**
 * core/pricing: call costs from @pydantic/genai-prices, checked against LiteLLM's own table (the vendored
 * ../shared/data/litellm copy) and against genai-prices' calcPrice as an oracle for the arithmetic fast path; token
 * limits from the generated LiteLLM extract; budget bounds and estimates.
 */
import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { calcPrice } from '@pydantic/genai-prices'
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base'
import { createPricing, DEFAULT_FALLBACK, MODEL_LIMITS_SOURCE } from '../../core/pricing/index.js'
import { MODEL_LIMITS } from '../../core/pricing/model-limits.js'
import { promptTokensBound } from '../../core/pricing/budget.js'
import { costOf, formatCost } from '../../core/cost.js'
import { buildRows } from '../../scripts/gen-model-limits.js'
import type { Target } from '../../providers/types.js'
import type { Operation, Usage } from '../../core/openai/types.js'

const LITELLM_PATH = fileURLToPath(new URL('../../../shared/data/litellm/model_prices_and_context_window.json', import.meta.url))
const LITELLM_TEXT = readFileSync(LITELLM_PATH, 'utf8')
const LITELLM = JSON.parse(LITELLM_TEXT) as Record<string, Record<string, unknown>>

/** 12:00 UTC: DeepSeek's standard-price window in genai-prices (its off-peak window is 16:30-00:30 UTC). */
const NOON = Date.parse('2026-11-30T12:00:00Z')

function target(provider: string, model: string, extra: Partial<Target> = {}): Target {
  return {
    id: `${provider}/${model}`, modelName: model, provider, model, timeoutMs: 600_000, streamTimeoutMs: 600_000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, ...extra,
  }
}

function usage(prompt: number, completion: number, extra: Partial<Usage> = {}): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, ...extra }
}

/** Deterministic PRNG (mulberry32): a failure reproduces from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function close(t: Test, actual: number, expected: number, msg: string, rel = 1e-9): void {
  t.ok(Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), 1e-15), `${msg}: ${actual} ≈ ${expected}`)
}

t.test('cross-check: genai-prices per-token prices agree with LiteLLM within 1% for popular models', async (t) => {
  const pricing = createPricing({ now: () => NOON })
  // [LiteLLM provider, model as configured, LiteLLM table key]
  const models: Array<[string, string, string]> = [
    ['openai', 'gpt-4o', 'gpt-4o'],
    ['openai', 'gpt-4o-mini', 'gpt-4o-mini'],
    ['openai', 'gpt-4.1', 'gpt-4.1'],
    ['openai', 'o3-mini', 'o3-mini'],
    ['openai', 'text-embedding-3-small', 'text-embedding-3-small'],
    ['anthropic', 'claude-sonnet-4-20250514', 'claude-sonnet-4-20250514'],
    ['vertex_ai', 'claude-3-5-sonnet@20240620', 'vertex_ai/claude-3-5-sonnet@20240620'],
    ['bedrock', 'anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic.claude-3-5-haiku-20241022-v1:0'],
    ['bedrock', 'anthropic.claude-3-5-sonnet-20240620-v1:0', 'anthropic.claude-3-5-sonnet-20240620-v1:0'],
    ['gemini', 'gemini-2.0-flash', 'gemini/gemini-2.0-flash'],
    ['gemini', 'gemini-2.5-pro', 'gemini/gemini-2.5-pro'],
    ['mistral', 'mistral-large-2411', 'mistral/mistral-large-2411'],
    ['cohere', 'command-r', 'command-r'],
    ['groq', 'llama-3.3-70b-versatile', 'groq/llama-3.3-70b-versatile'],
    ['groq', 'llama-3.1-8b-instant', 'groq/llama-3.1-8b-instant'],
    ['xai', 'grok-3', 'xai/grok-3'],
    ['perplexity', 'sonar', 'perplexity/sonar'],
    ['together_ai', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 'together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo'],
  ]
  const within = (a: number, b: number) => Math.abs(a - b) <= 0.01 * Math.max(a, b) || (a === 0 && b === 0)
  for (const [provider, model, key] of models) {
    const l = LITELLM[key]
    t.ok(l, `LiteLLM has ${key}`)
    if (!l) continue
    const p = pricing.priceOf(target(provider, model))
    t.equal(p.source, 'table', `${provider}/${model} is in genai-prices`)
    const li = l.input_cost_per_token as number
    const lo = (l.output_cost_per_token as number | undefined) ?? 0
    t.ok(within(p.inputPerToken, li), `${provider}/${model} input: genai-prices ${p.inputPerToken}, LiteLLM ${li}`)
    t.ok(within(p.outputPerToken, lo), `${provider}/${model} output: genai-prices ${p.outputPerToken}, LiteLLM ${lo}`)
    if (typeof l.cache_read_input_token_cost === 'number') {
      t.ok(within(p.cacheReadPerToken, l.cache_read_input_token_cost), `${provider}/${model} cache read: ${p.cacheReadPerToken} vs ${l.cache_read_input_token_cost}`)
    }
    if (typeof l.cache_creation_input_token_cost === 'number') {
      t.ok(within(p.cacheWritePerToken, l.cache_creation_input_token_cost), `${provider}/${model} cache write: ${p.cacheWritePerToken} vs ${l.cache_creation_input_token_cost}`)
    }
  }

  // Tiers: Gemini 2.5 Pro bills the whole call at the higher rate above 200k input tokens, in both tables.
  const g = LITELLM['gemini/gemini-2.5-pro']!
  const long = pricing.cost(target('gemini', 'gemini-2.5-pro'), usage(250_000, 1000))
  close(t, long.usd, 250_000 * (g.input_cost_per_token_above_200k_tokens as number) + 1000 * (g.output_cost_per_token_above_200k_tokens as number),
    'gemini-2.5-pro above 200k', 0.01)
})

t.test('cross-check: recorded disagreements between the two tables (review when either package updates)', async (t) => {
  const pricing = createPricing({ now: () => NOON })
  // [provider, model, LiteLLM key, genai-prices in/out per 1M, LiteLLM in/out per 1M]. LiteLLM is trusted for the
  // first three (its entries cite the vendor's page; genai-prices still has DeepSeek V3's pre-September-2025 prices
  // and points mistral-large-latest at Large 2, while Mistral moved the alias to Large 3, mistral-large-2512).
  // genai-prices is trusted for Vertex's Claude 3.5 Haiku: $0.80/$4 is Anthropic's price since December 2024, and
  // LiteLLM's own Bedrock entry for the same model says so too.
  const recorded: Array<[string, string, string, [number, number], [number, number]]> = [
    ['deepseek', 'deepseek-chat', 'deepseek/deepseek-chat', [0.27, 1.1], [0.28, 0.42]],
    ['deepseek', 'deepseek-reasoner', 'deepseek/deepseek-reasoner', [0.55, 2.19], [0.28, 0.42]],
    ['mistral', 'mistral-large-latest', 'mistral/mistral-large-latest', [2, 6], [0.5, 1.5]],
    ['mistral', 'mistral-small-latest', 'mistral/mistral-small-latest', [0.1, 0.3], [0.06, 0.18]],
    ['vertex_ai', 'claude-3-5-haiku@20241022', 'vertex_ai/claude-3-5-haiku@20241022', [0.8, 4], [1, 5]],
  ]
  for (const [provider, model, key, [gi, go], [li, lo]] of recorded) {
    const p = pricing.priceOf(target(provider, model))
    close(t, p.inputPerToken * 1e6, gi, `${model}: genai-prices input`, 1e-6)
    close(t, p.outputPerToken * 1e6, go, `${model}: genai-prices output`, 1e-6)
    close(t, (LITELLM[key]!.input_cost_per_token as number) * 1e6, li, `${model}: LiteLLM input`, 1e-6)
    close(t, (LITELLM[key]!.output_cost_per_token as number) * 1e6, lo, `${model}: LiteLLM output`, 1e-6)
  }
})

t.test('provider mapping and the by-name fallback', async (t) => {
  const pricing = createPricing()
  const gpt4oMini = pricing.priceOf(target('openai', 'gpt-4o-mini'))
  for (const [provider, model] of [['mock', 'gpt-4o-mini'], ['openai_like', 'gpt-4o-mini'], ['hosted_vllm', 'openai/gpt-4o-mini']] as const) {
    const p = pricing.priceOf(target(provider, model))
    t.equal(p.source, 'table', `${provider}/${model} is priced from the table`)
    t.equal(p.inputPerToken, gpt4oMini.inputPerToken, `${provider}/${model} as gpt-4o-mini`)
  }
  t.equal(pricing.priceOf(target('hosted_vllm', 'llama-3.1-8b-instant')).inputPerToken, 0.05 / 1e6, 'an unknown host serving a known model: the maker/host that lists it')
  t.equal(pricing.priceOf(target('openrouter', 'anthropic/claude-3.5-sonnet')).inputPerToken, 3 / 1e6, 'OpenRouter ids with their vendor prefix')
  t.equal(pricing.priceOf(target('bedrock', 'us.anthropic.claude-3-5-sonnet-20241022-v2:0')).inputPerToken, 3 / 1e6, 'Bedrock cross-region ids')
  t.equal(pricing.priceOf(target('mock', 'mock-1')).source, 'unpriced', 'a mock model with an unknown name is unpriced')
  t.equal(pricing.priceOf(target('constructor', 'gpt-4o-mini')).inputPerToken, gpt4oMini.inputPerToken, "a provider named like an Object key")
  // A provider genai-prices knows, without the model: its price is its own, not the maker's.
  t.equal(pricing.priceOf(target('fireworks_ai', 'accounts/fireworks/models/deepseek-r1-distill-qwen-1p5b')).source, 'unpriced')
  t.equal(pricing.priceOf(target('azure', 'my-deployment')).source, 'unpriced', 'an Azure deployment name without base_model')
  const based = pricing.priceOf(target('azure', 'my-deployment', { modelInfo: { base_model: 'azure/gpt-4o' } }))
  t.same([based.source, based.inputPerToken], ['table', 2.5 / 1e6], 'model_info.base_model prices an Azure deployment')
})

t.test('cost: the arithmetic path equals genai-prices calcPrice on random usages', async (t) => {
  const pricing = createPricing({ now: () => NOON })
  const next = rng(42)
  const int = (max: number) => Math.floor(next() * (max + 1))
  const models: Array<[string, string, string]> = [
    ['openai', 'gpt-4o', 'openai'], ['anthropic', 'claude-sonnet-4-20250514', 'anthropic'], ['groq', 'llama-3.3-70b-versatile', 'groq'],
    ['mistral', 'mistral-large-2411', 'mistral'], ['xai', 'grok-3', 'x-ai'], ['gemini', 'gemini-2.5-pro', 'google'],
    ['perplexity', 'sonar', 'perplexity'], ['deepseek', 'deepseek-chat', 'deepseek'],
  ]
  let checked = 0
  for (const [provider, model, providerId] of models) {
    for (let i = 0; i < 50; i++) {
      const prompt = int(400_000)
      const cached = int(prompt)
      const creation = provider === 'anthropic' ? int(prompt - cached) : 0
      const completion = int(20_000)
      const u = usage(prompt, completion, { prompt_tokens_details: { cached_tokens: cached }, ...(creation ? { cache_creation_input_tokens: creation } : {}) })
      const oracle = calcPrice({ input_tokens: prompt, cache_read_tokens: cached, cache_write_tokens: creation, output_tokens: completion }, model,
        { providerId, timestamp: new Date(NOON) })!
      close(t, pricing.cost(target(provider, model), u).usd, oracle.total_price, `${model} #${i}`)
      checked++
    }
  }
  t.equal(checked, 400)
})

t.test('cost: cached, cache-creation, reasoning, audio tokens and embeddings', async (t) => {
  const pricing = createPricing({ now: () => NOON })
  const gpt4o = target('openai', 'gpt-4o')
  // Cached tokens are part of prompt_tokens: 600 at $2.50/M, 400 at the $1.25/M cache rate.
  close(t, pricing.cost(gpt4o, usage(1000, 100, { prompt_tokens_details: { cached_tokens: 400 } })).usd, (600 * 2.5 + 400 * 1.25 + 100 * 10) / 1e6, 'cached')
  close(t, pricing.cost(gpt4o, usage(1000, 100)).usd, (1000 * 2.5 + 100 * 10) / 1e6, 'uncached')

  const sonnet = target('anthropic', 'claude-sonnet-4-20250514')
  const anthropicUsage = usage(1000, 50, { prompt_tokens_details: { cached_tokens: 200 }, cache_creation_input_tokens: 300 })
  close(t, pricing.cost(sonnet, anthropicUsage).usd, (500 * 3 + 200 * 0.3 + 300 * 3.75 + 50 * 15) / 1e6, 'cache writes at $3.75/M')
  // Anthropic's raw shape (input_tokens excludes both caches) is recognised when the caches cannot fit inside it.
  const raw = usage(100, 50, { cache_read_input_tokens: 2000, cache_creation_input_tokens: 300 })
  close(t, pricing.cost(sonnet, raw).usd, (100 * 3 + 2000 * 0.3 + 300 * 3.75 + 50 * 15) / 1e6, 'caches reported beside the input')

  // Reasoning tokens are inside completion_tokens (OpenAI): billed once, as output.
  const o3mini = target('openai', 'o3-mini')
  const reasoning = usage(100, 500, { completion_tokens_details: { reasoning_tokens: 400 } })
  close(t, pricing.cost(o3mini, reasoning).usd, (100 * 1.1 + 500 * 4.4) / 1e6, 'reasoning not added twice')
  const beside = usage(100, 50, { completion_tokens_details: { reasoning_tokens: 400 } })
  close(t, pricing.cost(o3mini, beside).usd, (100 * 1.1 + 450 * 4.4) / 1e6, 'reasoning reported beside the output is added once')

  // Audio input at its own rate (genai-prices' calcPrice path): gemini-2.0-flash audio is $0.70/M.
  const flash = target('gemini', 'gemini-2.0-flash')
  close(t, pricing.cost(flash, usage(1000, 10, { prompt_tokens_details: { audio_tokens: 400 } })).usd, (600 * 0.1 + 400 * 0.7 + 10 * 0.4) / 1e6, 'audio')

  // Embeddings: input only, whatever the usage says about completions.
  const emb = target('openai', 'text-embedding-3-small')
  close(t, pricing.cost(emb, usage(1000, 99), 'embeddings').usd, 1000 * 0.02 / 1e6, 'embeddings')
  close(t, pricing.cost(emb, { prompt_tokens: 1000, total_tokens: 1000 } as Usage).usd, 1000 * 0.02 / 1e6, 'embedding usage shape')

  // Tiers: above 128k input tokens gemini-1.5-pro bills all input and output at the higher rate.
  const pro = target('gemini', 'gemini-1.5-pro')
  close(t, pricing.cost(pro, usage(100_000, 1000)).usd, (100_000 * 1.25 + 1000 * 5) / 1e6, 'gemini-1.5-pro base tier')
  close(t, pricing.cost(pro, usage(200_000, 1000)).usd, (200_000 * 2.5 + 1000 * 10) / 1e6, 'gemini-1.5-pro above 128k')
})

t.test('cost: time-dependent prices follow the clock on every call', async (t) => {
  let clock = NOON
  const pricing = createPricing({ now: () => clock })
  const ds = target('deepseek', 'deepseek-chat')
  close(t, pricing.cost(ds, usage(1_000_000, 1_000_000)).usd, 0.27 + 1.1, 'standard window')
  clock = Date.parse('2026-11-30T20:00:00Z')
  close(t, pricing.cost(ds, usage(1_000_000, 1_000_000)).usd, 0.135 + 0.55, 'off-peak window, same cached entry')
})

t.test('deployment prices override the table, one side at a time as LiteLLM does', async (t) => {
  const pricing = createPricing()
  const both = target('mock', 'x', { inputCostPerToken: 0.000002, outputCostPerToken: 0.00001 })
  const r = pricing.cost(both, usage(1234, 56))
  t.same(r, { usd: 1234 * 0.000002 + 56 * 0.00001, source: 'deployment' }, 'both sides')

  const inputOnly = pricing.priceOf(target('openai', 'gpt-4o', { inputCostPerToken: 1e-6 }))
  t.same(inputOnly, { inputPerToken: 1e-6, outputPerToken: 10 / 1e6, cacheReadPerToken: 0.5e-6, cacheWritePerToken: 1e-6, source: 'deployment' },
    'input only: output from the table, the table cache discount applied to the deployment price')
  const outputOnly = pricing.priceOf(target('openai', 'gpt-4o', { outputCostPerToken: 1e-6 }))
  t.same([outputOnly.inputPerToken, outputOnly.outputPerToken, outputOnly.source], [2.5 / 1e6, 1e-6, 'deployment'], 'output only')
  const unknown = pricing.priceOf(target('mock', 'not-a-model', { inputCostPerToken: 1e-6 }))
  t.same([unknown.inputPerToken, unknown.outputPerToken, unknown.source], [1e-6, 0, 'deployment'], 'a model in no table: the other side is 0')

  const free = target('openai', 'gpt-4o', { inputCostPerToken: 0, outputCostPerToken: 0 })
  t.equal(pricing.cost(free, usage(1000, 100, { prompt_tokens_details: { cached_tokens: 500 } })).usd, 0, 'a zero-cost deployment stays free with cached tokens')

  const explicit = target('openai', 'gpt-4o', { inputCostPerToken: 1e-6, modelInfo: { cache_read_input_token_cost: 1e-7 } })
  close(t, pricing.cost(explicit, usage(1000, 0, { prompt_tokens_details: { cached_tokens: 400 } })).usd, 600 * 1e-6 + 400 * 1e-7, 'model_info cache price')
})

t.test('unpriced models: the fallback price, reported as such', async (t) => {
  const pricing = createPricing()
  const mock = target('mock', 'mock-1')
  t.same(pricing.priceOf(mock), {
    inputPerToken: DEFAULT_FALLBACK.inputPerToken, outputPerToken: DEFAULT_FALLBACK.outputPerToken,
    cacheReadPerToken: DEFAULT_FALLBACK.inputPerToken, cacheWritePerToken: DEFAULT_FALLBACK.inputPerToken, source: 'unpriced',
  })
  t.equal(DEFAULT_FALLBACK.inputPerToken * 1e6, 2.5, '$2.50 per 1M input tokens')
  t.equal(DEFAULT_FALLBACK.outputPerToken * 1e6, 10, '$10 per 1M output tokens')
  t.same(pricing.cost(mock, usage(1000, 100)), { usd: (1000 * 2.5 + 100 * 10) / 1e6, source: 'unpriced' })
  const custom = createPricing({ fallback: { inputPerToken: 1e-6, outputPerToken: 2e-6 } })
  t.same(custom.cost(mock, usage(1000, 100)), { usd: 1000 * 1e-6 + 100 * 2e-6, source: 'unpriced' }, 'configurable')
  t.ok(costOf(mock, usage(10, 10)) > 0, 'costOf never prices an unknown model at 0')
})

t.test('lookups are cached: the same objects come back', async (t) => {
  const pricing = createPricing()
  const a = target('openai', 'gpt-4o')
  const p = pricing.priceOf(a)
  t.equal(pricing.priceOf(a), p, 'same target')
  // The request path copies a Target to apply per-request timeouts (core/models.ts withTimeouts).
  t.equal(pricing.priceOf(Object.freeze({ ...a, timeoutMs: 5 })), p, 'a copy of the target')
  t.equal(pricing.priceOf(target('openai', 'gpt-4o', { id: 'other' })), p, 'another deployment of the same model')
  t.not(pricing.priceOf(target('openai', 'gpt-4o', { inputCostPerToken: 1e-6 })), p, 'different prices, different entry')
  t.equal(pricing.limitsOf(a), pricing.limitsOf({ ...a }), 'limits too')
  t.ok(Object.isFrozen(p), 'shared objects are frozen')
})

t.test('limits from the generated LiteLLM extract', async (t) => {
  const pricing = createPricing()
  t.same(pricing.limitsOf(target('openai', 'gpt-4o')), { contextWindow: 128_000, maxOutputTokens: 16_384 })
  t.same(pricing.limitsOf(target('groq', 'llama-3.3-70b-versatile')), {
    contextWindow: LITELLM['groq/llama-3.3-70b-versatile']!.max_input_tokens, maxOutputTokens: LITELLM['groq/llama-3.3-70b-versatile']!.max_output_tokens,
  })
  t.same(pricing.limitsOf(target('mock', 'gpt-4o-mini')), { contextWindow: 128_000, maxOutputTokens: 16_384 }, 'by name for a mock deployment')
  t.same(pricing.limitsOf(target('mock', 'mock-1')), { contextWindow: null, maxOutputTokens: null }, 'unknown')
  t.same(pricing.limitsOf(target('openai', 'gpt-4o', { modelInfo: { max_input_tokens: 1000, max_tokens: 10 } })),
    { contextWindow: 1000, maxOutputTokens: 10 }, "model_info's own limits win")
  t.same(pricing.limitsOf(target('openai', 'text-embedding-3-small')), { contextWindow: 8191, maxOutputTokens: null }, 'embeddings')
})

t.test('the generated extract matches the vendored LiteLLM table it names', async (t) => {
  t.equal(MODEL_LIMITS_SOURCE.sha256, createHash('sha256').update(LITELLM_TEXT).digest('hex'), 'generated from this exact file')
  t.equal(MODEL_LIMITS_SOURCE.lastUpdated, LITELLM.last_updated as unknown as string)
  const rows = buildRows(LITELLM)
  t.equal(MODEL_LIMITS.size, rows.size, 'same models')
  t.equal(MODEL_LIMITS_SOURCE.models, rows.size)
  let same = 0
  for (const [k, row] of rows) if (JSON.stringify(MODEL_LIMITS.get(k)) === JSON.stringify(row)) same++
  t.equal(same, rows.size, 'same rows')
  t.notOk(MODEL_LIMITS.has('sample_spec'), 'sample_spec skipped')
  t.ok(MODEL_LIMITS.has('gpt-4o') && MODEL_LIMITS.has('text-embedding-3-small'), 'chat and embedding models kept')
  t.notOk([...MODEL_LIMITS.values()].some((r) => r[3] === 'image_generation'), 'other modes dropped')
})

t.test('worstCase: the limits it assumes', async (t) => {
  const pricing = createPricing()
  const gpt4o = target('openai', 'gpt-4o')
  const messages = [{ role: 'user', content: 'Hello there' }]
  const B = promptTokensBound('chat', { messages })
  t.ok(B >= Buffer.byteLength(JSON.stringify(messages)), 'the prompt bound covers the bytes')

  let w = pricing.worstCase(gpt4o, 'chat', { messages, max_tokens: 100, n: 2 })
  t.equal(w.maxTokens, 100)
  close(t, w.usd, B * 2.5 / 1e6 + 200 * 10 / 1e6, 'prompt bound at the input price, max_tokens × n at the output price')
  t.equal(pricing.worstCase(gpt4o, 'chat', { messages, max_tokens: 100, max_completion_tokens: 50 }).maxTokens, 50, 'max_completion_tokens wins')
  t.equal(pricing.worstCase(target('openai', 'gpt-4o', { defaults: { max_tokens: 77 } }), 'chat', { messages }).maxTokens, 77, "the deployment's default")
  t.equal(pricing.worstCase(gpt4o, 'chat', { messages }).maxTokens, 16_384, "the model's max output")
  t.equal(pricing.worstCase(target('mock', 'mock-1'), 'chat', { messages }).maxTokens, 4096, 'else 4096')

  w = pricing.worstCase(target('openai', 'text-embedding-3-small'), 'embeddings', { input: ['abc', 'def'] })
  t.equal(w.maxTokens, 0, 'embeddings produce no tokens')
  close(t, w.usd, promptTokensBound('embeddings', { input: ['abc', 'def'] }) * 0.02 / 1e6, 'embeddings: input only')

  const byUrl = [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }]
  const inline = [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }]
  t.ok(promptTokensBound('chat', { messages: byUrl }) >= 48_169, 'an image by URL: the largest per-image charge')
  t.ok(promptTokensBound('chat', { messages: inline }) < 1000, 'an inline image is bounded by its bytes')

  const prediction = { type: 'content', content: 'the file as it is now' }
  close(t, pricing.worstCase(gpt4o, 'chat', { messages, max_tokens: 100, prediction }).usd,
    B * 2.5 / 1e6 + (100 + Buffer.byteLength(JSON.stringify(prediction))) * 10 / 1e6, 'rejected predicted-output tokens are billed as output')

  const completions = pricing.worstCase(gpt4o, 'completions', { prompt: ['a', 'b'], best_of: 3, max_tokens: 10 })
  close(t, completions.usd, promptTokensBound('completions', { prompt: ['a', 'b'] }) * 2.5 / 1e6 + 60 * 10 / 1e6, 'best_of × prompts are all billed')
})

t.test('worstCase is never below the cost of any call the request can produce', async (t) => {
  let clock = NOON
  const pricing = createPricing({ now: () => clock })
  const next = rng(7)
  const int = (max: number) => Math.floor(next() * (max + 1))
  const alphabet = ['hello ', 'world ', 'é', '中文', '🦜', '\n', '"', 'ünïcödé ', '0123456789', '<|endoftext|>']
  const text = (n: number) => { let s = ''; while (s.length < n) s += alphabet[int(alphabet.length - 1)]; return s }
  const deployments: Array<[Target, Operation]> = [
    [target('openai', 'gpt-4o'), 'chat'],
    [target('anthropic', 'claude-sonnet-4-20250514'), 'chat'], // cache writes above the input price
    [target('gemini', 'gemini-1.5-pro'), 'chat'], // tiers above 128k
    [target('gemini', 'gemini-2.0-flash'), 'chat'], // audio input at 7x text
    [target('perplexity', 'sonar'), 'chat'], // a per-request fee
    [target('deepseek', 'deepseek-chat'), 'chat'], // time-of-day prices
    [target('openai', 'gpt-4o', { inputCostPerToken: 1e-6 }), 'chat'],
    [target('mock', 'mock-1'), 'chat'],
    [target('openai', 'gpt-3.5-turbo-instruct'), 'completions'],
    [target('openai', 'text-embedding-3-small'), 'embeddings'],
  ]
  let checked = 0
  for (const [dep, op] of deployments) {
    for (let i = 0; i < 40; i++) {
      // Some bodies are long enough (> 200k bytes) that the tiers above 128k/200k input tokens are reachable.
      const size = i % 10 === 0 ? 210_000 : int(3000)
      const body: Record<string, unknown> = op === 'chat'
        ? { messages: [{ role: 'system', content: text(50) }, { role: 'user', content: text(size) }], n: 1 + int(2), max_tokens: 1 + int(500) }
        : op === 'completions' ? { prompt: text(size), max_tokens: 1 + int(500) } : { input: [text(size), text(20)] }
      clock = NOON
      const w = pricing.worstCase(dep, op, body)
      const promptMax = promptTokensBound(op, body)
      const completionMax = op === 'embeddings' ? 0 : w.maxTokens * (typeof body.n === 'number' ? body.n : 1)
      for (let j = 0; j < 10; j++) {
        const prompt = j === 0 ? promptMax : int(promptMax)
        const cached = int(prompt)
        const creation = int(prompt - cached)
        const completion = j === 0 ? completionMax : int(completionMax)
        const u = usage(prompt, completion, {
          prompt_tokens_details: { cached_tokens: cached, audio_tokens: j % 3 === 0 ? int(prompt) : 0 },
          cache_creation_input_tokens: creation,
          completion_tokens_details: { reasoning_tokens: int(completion) },
        })
        clock = j % 2 ? NOON : Date.parse('2026-11-30T20:00:00Z')
        const c = pricing.cost(dep, u, op)
        if (c.usd > w.usd + 1e-15) t.fail(`${dep.provider}/${dep.model} #${i}.${j}: cost ${c.usd} > worst case ${w.usd}`)
        checked++
      }
    }
  }
  t.equal(checked, deployments.length * 400, 'every sampled cost is within the worst case')

  // The bound's premise, checked with a real tokenizer: o200k never needs more tokens than the request has bytes.
  for (let i = 0; i < 30; i++) {
    const messages = [{ role: 'user', content: text(1 + int(3000)) }, { role: 'assistant', content: text(int(500)) }]
    const real = messages.reduce((n, m) => n + countTokens(m.content, { disallowedSpecial: new Set() }) + 4, 3)
    t.ok(real <= promptTokensBound('chat', { messages }), `o200k count ${real} within the bound`)
  }
})

t.test('estimate: a realistic expectation', async (t) => {
  const pricing = createPricing()
  const gpt4o = target('openai', 'gpt-4o')
  const content = 'Summarise the plot of Hamlet in three sentences, for a reader who has not seen the play.'
  const messages = [{ role: 'system', content: 'You are concise.' }, { role: 'user', content }]
  // The text's bytes / 4 (no tokenizer on the request path), plus OpenAI's 3 per message and 3 for the primer.
  const promptTokens = Math.ceil(Buffer.byteLength('You are concise.' + content) / 4) + 2 * 3 + 3
  t.ok(Math.abs(promptTokens - (countTokens('You are concise.') + countTokens(content) + 2 * 3 + 3)) <= 8, 'within a few tokens of the o200k count')
  close(t, pricing.estimate(gpt4o, 'chat', { messages, max_tokens: 100 }), (promptTokens * 2.5 + 100 * 10) / 1e6, 'bytes / 4 + 100 completion tokens')
  close(t, pricing.estimate(gpt4o, 'chat', { messages }), (promptTokens * 2.5 + 256 * 10) / 1e6, '256 completion tokens by default')
  close(t, pricing.estimate(gpt4o, 'chat', { messages, max_tokens: 4000, n: 2 }), (promptTokens * 2.5 + 512 * 10) / 1e6, 'capped at 256 per choice')
  t.ok(pricing.estimate(gpt4o, 'chat', { messages }) < pricing.worstCase(gpt4o, 'chat', { messages }).usd, 'below the worst case')

  const big = 'lorem ipsum dolor sit amet '.repeat(4000)
  const estimate = pricing.estimate(target('openai', 'text-embedding-3-small'), 'embeddings', { input: big })
  close(t, estimate, Math.ceil(Buffer.byteLength(big) / 4) * 0.02 / 1e6, 'large inputs: bytes / 4')

  // Text a tokenizer has never seen (CJK, emoji) is counted as bytes too: no tokenizer work on the request path.
  const cjk = Array.from({ length: 40_000 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('')
  const cjkEstimate = pricing.estimate(target('openai', 'text-embedding-3-small'), 'embeddings', { input: cjk.slice(0, 300) })
  close(t, cjkEstimate, Math.ceil(300 * 3 / 4) * 0.02 / 1e6, '300 CJK characters (900 bytes): bytes / 4')
  const started = performance.now()
  pricing.estimate(gpt4o, 'chat', { messages: [{ role: 'user', content: cjk }] })
  const ms = performance.now() - started
  // Generous (this machine may be shared): a tokenizer pass over the same text takes seconds.
  t.ok(ms < 1500, `estimate of 40k CJK characters without a tokenizer (${ms.toFixed(1)} ms)`)
})

t.test('core/cost.ts keeps its contract', async (t) => {
  const priced = target('mock', 'x', { inputCostPerToken: 0.000002, outputCostPerToken: 0.00001 })
  t.equal(costOf(null, usage(1, 1)), 0)
  t.equal(costOf(priced, null), 0)
  t.equal(costOf(priced, usage(10, 20)), 10 * 0.000002 + 20 * 0.00001)
  close(t, costOf(target('openai', 'gpt-4o-mini'), usage(1000, 100)), (1000 * 0.15 + 100 * 0.6) / 1e6, 'table prices now apply')
  t.equal(formatCost(0), '0')
  t.equal(formatCost(1.5e-7), '0.00000015')
})
