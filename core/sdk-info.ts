/**
 * The SDK's model-table helpers, as LiteLLM's Python SDK has them (`completion_cost`, `token_counter`,
 * `get_model_info`, `supports_function_calling`, `supports_vision`):
 *
 *   const r = await completion({ model: 'openai/gpt-4o-mini', messages })
 *   completionCost(r)                                  // USD, what the proxy's x-litellm-response-cost says
 *   tokenCounter({ model: 'gpt-4o', messages })        // OpenAI's count for the chat
 *   getModelInfo('anthropic/claude-sonnet-4-5-20250929').max_input_tokens
 *   supportsVision('gemini/gemini-2.0-flash')          // true
 *
 * Nothing here is a second copy of the gateway's data: costs come from the proxy's own pricing (core/pricing, the
 * genai-prices table) on a Target built the way the SDK builds one, limits and capability flags from the generated
 * extract of LiteLLM's table (core/pricing/model-limits.ts). No network, no engine: these are table lookups.
 */
import { createRequire } from 'node:module'
import { buildTarget } from './models.js'
import { defaultPricing } from './cost.js'
import { gatewayError, GatewayError } from './errors.js'
import { createProviderRegistry, type ProviderRegistry } from '../providers/registry.js'
import { findModelRow } from './pricing/limits.js'
import { findTableModel, type TableModel } from './pricing/table.js'
import { MODEL_FLAGS, MODEL_LIMITS, type ModelFlag, type ModelLimitsRow } from './pricing/model-limits.js'
import { estimateTextsTokens } from './pricing/tokens.js'
import { promptTokensEstimate } from './pricing/budget.js'
import { usageFromAnthropic } from './formats/anthropic-reply.js'
import type { Operation, Usage } from './openai/types.js'
import type { Target } from '../providers/types.js'

// ---------------------------------------------------------------------------------------------------------------
// model names

let registry: ProviderRegistry | null = null

/** The built-in providers, for parsing model strings only (no adapter is ever called from here). */
function providers(): ProviderRegistry {
  return (registry ??= createProviderRegistry())
}

function known(reg: ProviderRegistry, name: string): boolean {
  return reg.get(name) !== undefined || reg.isPending(name)
}

/**
 * The provider a bare model name belongs to, from LiteLLM's table: `claude-sonnet-4-5` is an Anthropic model,
 * `gemini-2.0-flash` a Vertex AI one, `anthropic.claude-...` a Bedrock one, as LiteLLM resolves them. The table's
 * provider names are mapped to ours: `vertex_ai-language-models` -> vertex_ai, `bedrock_converse` -> bedrock.
 */
function providerOfBareName(reg: ProviderRegistry, model: string): string | undefined {
  const row = MODEL_LIMITS.get(model)
  if (!row || row[2] === '') return undefined
  const name = row[2]
  if (known(reg, name)) return name
  const head = name.split('-')[0]!
  if (known(reg, head)) return head
  if (name.startsWith('bedrock')) return 'bedrock'
  return undefined
}

/**
 * A model string as LiteLLM reads it: `provider/name` (`openai/gpt-4o-mini`, `bedrock/anthropic.claude-...`), or a
 * bare name whose provider LiteLLM's table gives (`claude-...` -> anthropic), else OpenAI's. An explicit
 * `customLlmProvider` wins, as LiteLLM's `custom_llm_provider`.
 */
function resolve(model: string, customLlmProvider?: string): { provider: string; model: string; custom: string | undefined } {
  const reg = providers()
  if (customLlmProvider) return { ...reg.parseModel(model, customLlmProvider), custom: customLlmProvider }
  const parsed = reg.parseModel(model)
  if (model.includes('/')) return { ...parsed, custom: undefined }
  const owner = providerOfBareName(reg, model)
  return owner ? { provider: owner, model, custom: owner } : { ...parsed, custom: undefined }
}

/**
 * The Target the SDK would build for this model string (core/sdk.ts targetFor): same parser, same defaults. No
 * environment is read, so no key lands in it; it only ever reaches the pricing.
 */
function targetOf(model: string, customLlmProvider?: string): Target {
  try {
    const { custom } = resolve(model, customLlmProvider)
    return buildTarget({ model_name: model, litellm_params: { model, custom_llm_provider: custom } }, providers(), {
      dropParams: false, requestTimeout: 600, streamTimeout: 600, env: {},
    })
  } catch (err) {
    // An unknown custom_llm_provider: the caller's mistake, a 400 as in completion().
    if (err instanceof GatewayError) throw gatewayError('GW_ERR_VALIDATION', err.message, { param: 'model', cause: err })
    throw err
  }
}

function modelArg(model: unknown, fn: string): string {
  if (typeof model !== 'string' || model.trim() === '') {
    throw gatewayError('GW_ERR_VALIDATION', `${fn}() needs a model name (a string such as 'openai/gpt-4o-mini').`, { param: 'model' })
  }
  return model.trim()
}

// ---------------------------------------------------------------------------------------------------------------
// completionCost

/** Token counts as any of the gateway's formats report them: Chat Completions, Responses or Anthropic Messages. */
export interface UsageLike {
  prompt_tokens?: number
  completion_tokens?: number
  total_tokens?: number
  prompt_tokens_details?: { cached_tokens?: number | null; audio_tokens?: number | null } | null
  completion_tokens_details?: { reasoning_tokens?: number | null; audio_tokens?: number | null } | null
  /** Anthropic's cache fields, as LiteLLM keeps them beside the OpenAI ones. */
  cache_creation_input_tokens?: number | null
  cache_read_input_tokens?: number | null
  /** Responses API and Anthropic Messages. */
  input_tokens?: number
  output_tokens?: number
  input_tokens_details?: { cached_tokens?: number | null } | null
  output_tokens_details?: { reasoning_tokens?: number | null } | null
}

/**
 * What completionCost() reads: a result of completion(), embedding(), textCompletion() (or the same JSON from the
 * proxy), or just `{ model, usage }`. `customLlmProvider` / `custom_llm_provider` names the provider when `model`
 * is not a LiteLLM model string.
 */
export interface CompletionCostInput {
  model?: string | null
  usage?: UsageLike | null
  object?: string
  type?: string
  customLlmProvider?: string
  custom_llm_provider?: string
}

/**
 * USD for one call, from its usage: the same number the proxy sends as `x-litellm-response-cost` for that call, as
 * both run the gateway's pricing (core/pricing: genai-prices' table, cache reads and writes at their own rates,
 * tiers, reasoning tokens as output). The model is read from the response (`model`) and, on a result of the SDK, the
 * provider from its `_hidden_params.custom_llm_provider`.
 *
 *   const r = await completion({ model: 'anthropic/claude-sonnet-4-5-20250929', messages })
 *   completionCost(r)                                    // USD, cache reads and writes at their rates
 *   completionCost({ model: 'gpt-4o-mini', usage: { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 } })   // 0.00027
 *
 * A model the price table does not know is priced at the gateway's fallback (what the proxy charges it; LiteLLM
 * raises instead). A response without usage costs 0, as the proxy records it. Prices a deployment set itself
 * (`input_cost_per_token`) are not in the table: the SDK's result carries that cost as `_hidden_params.response_cost`.
 */
export function completionCost(response: CompletionCostInput): number {
  if (response === null || typeof response !== 'object') {
    throw gatewayError('GW_ERR_VALIDATION', 'completionCost() takes a response object or { model, usage }.')
  }
  const hidden = (response as { _hidden_params?: { custom_llm_provider?: unknown } })._hidden_params
  const custom = response.customLlmProvider ?? response.custom_llm_provider ??
    (typeof hidden?.custom_llm_provider === 'string' ? hidden.custom_llm_provider : undefined)
  const model = modelArg(response.model, 'completionCost')
  const usage = usageOf(response)
  const op = operationOf(response)
  const target = targetOf(model, custom || undefined)
  return defaultPricing().callCost(target, op, {}, response, usage).usd
}

function operationOf(r: CompletionCostInput): Operation {
  if (r.object === 'list') return 'embeddings'
  if (r.object === 'text_completion') return 'completions'
  return 'chat'
}

/** The usage in the OpenAI shape the pricing reads, whichever format reported it; null when there is none. */
function usageOf(r: CompletionCostInput): Usage | null {
  const u = r.usage
  if (!u || typeof u !== 'object') return null
  if (typeof u.prompt_tokens === 'number') return u as Usage
  if (typeof u.input_tokens !== 'number') return null
  // Anthropic Messages: input_tokens excludes the cache reads and writes reported beside it.
  if (r.type === 'message' || (u.input_tokens_details == null && (u.cache_read_input_tokens != null || u.cache_creation_input_tokens != null))) {
    return usageFromAnthropic(u)
  }
  // Responses API: input_tokens includes cached ones, output_tokens reasoning ones (OpenAI's convention).
  const prompt = u.input_tokens
  const completion = typeof u.output_tokens === 'number' ? u.output_tokens : 0
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: u.input_tokens_details?.cached_tokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: u.output_tokens_details?.reasoning_tokens ?? 0 },
  }
}

// ---------------------------------------------------------------------------------------------------------------
// tokenCounter

/** A chat message as tokenCounter() reads it: OpenAI's shape (string content or content parts, tool calls). */
export interface TokenCounterMessage {
  role?: string
  content?: string | ReadonlyArray<{ type?: string; text?: string; image_url?: unknown; [k: string]: unknown }> | null
  name?: string
  tool_calls?: ReadonlyArray<{ function?: { name?: string; arguments?: string } }> | null
  [k: string]: unknown
}

export interface TokenCounterParams {
  model: string
  /** Counted as a chat request: per-message tokens and the reply primer included. */
  messages?: readonly TokenCounterMessage[]
  /** Counted as plain text (a list: each text counted, summed). Ignored when `messages` is given. */
  text?: string | readonly string[]
  /** Tool definitions sent with `messages` (OpenAI's `tools`, or the legacy `functions`). */
  tools?: ReadonlyArray<{ type?: string; function?: unknown }>
  functions?: readonly unknown[]
  tool_choice?: unknown
}

type EncodingName = 'o200k_base' | 'cl100k_base'

/**
 * Which of OpenAI's encodings a model uses, by name (any provider serving it: azure/gpt-4o is gpt-4o): o200k_base
 * for gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series, cl100k_base for gpt-4, gpt-3.5-turbo and OpenAI's
 * embeddings. A fine-tune (`ft:gpt-4o-mini:org::id`) uses its base model's.
 */
function encodingFor(model: string): EncodingName | null {
  const name = model.slice(model.lastIndexOf('/') + 1).replace(/^ft:/, '').toLowerCase()
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o[134](-|$)|codex-mini|computer-use|gpt-realtime|gpt-audio|omni-moderation)/.test(name)) return 'o200k_base'
  if (/^(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)/.test(name)) return 'cl100k_base'
  return null
}

/** The parts of gpt-tokenizer used here (its CJS build, loaded on first use). */
interface Encoding {
  countTokens(input: string, opts?: { disallowedSpecial?: Set<string> }): number
}
interface ChatMessage { role?: string; name?: string; content: string; function_call?: { name?: string; arguments?: string } }
interface FunctionCalling {
  computeChatCompletionTokenCount(
    request: { messages: readonly ChatMessage[]; functions?: readonly unknown[]; function_call?: 'none' | 'auto' | { name: string } },
    countStringTokens: (text: string) => number,
  ): number
}

// gpt-tokenizer holds ~45 MB once an encoding is loaded: it is required on the first count, never at import. Its
// CJS build loads synchronously, so tokenCounter() stays a plain function.
const requireLazily = createRequire(import.meta.url)
const encodings = new Map<EncodingName, Encoding>()
let functionCalling: FunctionCalling | null = null

function encoding(name: EncodingName): Encoding {
  let e = encodings.get(name)
  if (!e) {
    e = requireLazily(`gpt-tokenizer/cjs/encoding/${name}`) as Encoding
    encodings.set(name, e)
  }
  return e
}

/** Special-token text (`<|endoftext|>`) in a prompt is counted as text, as LiteLLM does (`disallowed_special=()`). */
const AS_TEXT = { disallowedSpecial: new Set<string>() }

/** A low-detail image costs 85 tokens (OpenAI's vision pricing). */
const LOW_DETAIL_IMAGE_TOKENS = 85
/** Any other image: the gateway's estimate for a 1024x1024 high-detail image on gpt-4o (85 + 4 tiles × 170, budget.ts). */
const IMAGE_TOKENS = 765

/**
 * Tokens in a text or a chat request.
 *
 * OpenAI models count exactly, with gpt-tokenizer (o200k_base or cl100k_base, see encodingFor): a text is its
 * tokens; a chat is counted the way OpenAI's cookbook (`num_tokens_from_messages`) and gpt-tokenizer's
 * `countChatCompletionTokens` do, 3 tokens per message plus its role and content, 1 more for a `name`, 3 for the
 * reply primer, and tool definitions in the form OpenAI renders them. Content parts count their text; images count
 * 85 tokens at `detail: 'low'`, else 765 (LiteLLM fetches the image to size it; this does not). Tool calls count
 * as one function call of their names and arguments.
 *
 * Other models (Claude, Gemini, Llama, ...) get the gateway's own estimate (core/pricing/tokens.ts: UTF-8 bytes / 4,
 * plus the same per-message tokens), not o200k as LiteLLM's default tokenizer would: o200k is not their tokenizer
 * either, so it would only look exact; the estimate is what the gateway itself reserves budgets and counts rpm/tpm
 * with, so the SDK and the proxy agree; and it does not load the 45 MB tokenizer for a model it does not fit.
 *
 *   tokenCounter({ model: 'gpt-4o', text: 'Hello world' })                                   // 2
 *   tokenCounter({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }) // 8
 */
export function tokenCounter(params: TokenCounterParams): number {
  if (params === null || typeof params !== 'object') {
    throw gatewayError('GW_ERR_VALIDATION', 'tokenCounter() takes { model, messages } or { model, text }.')
  }
  const model = modelArg(params.model, 'tokenCounter')
  const { messages, text } = params
  if (messages !== undefined && !Array.isArray(messages)) {
    throw gatewayError('GW_ERR_VALIDATION', "tokenCounter(): 'messages' must be an array.", { param: 'messages' })
  }
  const texts = messages ? null : typeof text === 'string' ? [text] : Array.isArray(text) ? text.filter((s): s is string => typeof s === 'string') : null
  if (!messages && !texts) throw gatewayError('GW_ERR_VALIDATION', 'tokenCounter() needs `messages` or `text`.', { param: 'messages' })
  const enc = encodingFor(model)
  if (!enc) {
    return messages ? promptTokensEstimate('chat', { messages, tools: params.tools }) : estimateTextsTokens(texts!)
  }
  const e = encoding(enc)
  const count = (s: string) => (s === '' ? 0 : e.countTokens(s, AS_TEXT))
  if (!messages) return texts!.reduce((n, s) => n + count(s), 0)
  functionCalling ??= requireLazily('gpt-tokenizer/cjs/functionCalling') as FunctionCalling
  let images = 0
  const chat: ChatMessage[] = messages.map((m) => {
    const { message, imageTokens } = chatMessage(m)
    images += imageTokens
    return message
  })
  const functions = functionsOf(params)
  const functionCall = functionCallOf(params.tool_choice)
  return images + functionCalling.computeChatCompletionTokenCount({
    messages: chat,
    ...(functions.length ? { functions } : {}),
    ...(functionCall ? { function_call: functionCall } : {}),
  }, count)
}

/** An OpenAI message as gpt-tokenizer's ChatMessage (string content), and the image tokens it carries beside. */
function chatMessage(m: TokenCounterMessage): { message: ChatMessage; imageTokens: number } {
  if (!m || typeof m !== 'object') return { message: { content: '' }, imageTokens: 0 }
  let content = ''
  let imageTokens = 0
  if (typeof m.content === 'string') content = m.content
  else if (Array.isArray(m.content)) {
    const parts: string[] = []
    for (const p of m.content) {
      if (!p || typeof p !== 'object') continue
      if (typeof p.text === 'string') parts.push(p.text)
      else if (p.type === 'image_url') imageTokens += imageDetail(p.image_url) === 'low' ? LOW_DETAIL_IMAGE_TOKENS : IMAGE_TOKENS
    }
    content = parts.join('\n')
  }
  const message: ChatMessage = { content }
  if (typeof m.role === 'string') message.role = m.role
  if (typeof m.name === 'string' && m.name !== '') message.name = m.name
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls.filter((c) => c && typeof c.function === 'object') : []
  if (calls.length) {
    message.function_call = {
      name: calls.map((c) => c.function?.name ?? '').join(','),
      arguments: calls.map((c) => c.function?.arguments ?? '').join('\n'),
    }
  }
  return { message, imageTokens }
}

function imageDetail(image: unknown): unknown {
  return image && typeof image === 'object' ? (image as { detail?: unknown }).detail : undefined
}

/** OpenAI's `tools` (function tools) or the legacy `functions`, as function definitions. */
function functionsOf(params: TokenCounterParams): unknown[] {
  const out: unknown[] = []
  if (Array.isArray(params.tools)) {
    for (const t of params.tools) if (t && typeof t === 'object' && t.function && typeof t.function === 'object') out.push(t.function)
  }
  if (Array.isArray(params.functions)) for (const f of params.functions) if (f && typeof f === 'object') out.push(f)
  return out
}

function functionCallOf(choice: unknown): 'none' | { name: string } | null {
  if (choice === 'none') return 'none'
  if (!choice || typeof choice !== 'object') return null
  const fn = (choice as { function?: { name?: unknown }; name?: unknown })
  const name = typeof fn.function?.name === 'string' ? fn.function.name : typeof fn.name === 'string' ? fn.name : null
  return name ? { name } : null
}

// ---------------------------------------------------------------------------------------------------------------
// getModelInfo, supports*

/**
 * What getModelInfo() returns, under LiteLLM's field names. Limits and `supports_*` flags are LiteLLM's table's;
 * prices are the gateway's price table's (genai-prices, what the proxy charges), USD per token, null when the
 * model has no price there (the proxy then charges its fallback price).
 */
export interface ModelInfo extends Record<ModelFlag, boolean> {
  /** The key of LiteLLM's table the model was found under (`gpt-4o-mini`, `groq/llama-3.3-70b-versatile`). */
  key: string
  litellm_provider: string
  /** 'chat', 'completion', 'responses' or 'embedding'; null for a model only the price table knows. */
  mode: string | null
  /** LiteLLM's legacy field: the max output tokens (the max input for an embedding model). */
  max_tokens: number | null
  max_input_tokens: number | null
  max_output_tokens: number | null
  input_cost_per_token: number | null
  output_cost_per_token: number | null
  /** Present when the model prices cache reads / writes apart from input. */
  cache_read_input_token_cost?: number
  cache_creation_input_token_cost?: number
}

/**
 * Everything the gateway knows about a model, as LiteLLM's `get_model_info`. Throws a 404 NotFoundError for a
 * model neither LiteLLM's table nor the price table knows, as LiteLLM raises.
 *
 *   const info = getModelInfo('gpt-4o-mini')
 *   info.max_input_tokens          // 128000
 *   info.input_cost_per_token      // 1.5e-7
 *   info.supports_vision           // true
 */
export function getModelInfo(model: string, customLlmProvider?: string): ModelInfo {
  const name = modelArg(model, 'getModelInfo')
  const target = targetOf(name, customLlmProvider)
  const found = findModelRow(target.provider, target.model)
  const table = priceTableModel(target)
  if (!found && !table) {
    throw gatewayError('GW_ERR_MODEL_NOT_FOUND',
      `This model isn't mapped yet: '${name}' is in neither LiteLLM's model table nor the price table.`, { param: 'model' })
  }
  // The proxy's own limits for this model: LiteLLM's table under the same keys, then the price table's context window.
  const limits = defaultPricing().limitsOf(target)
  const row: ModelLimitsRow | null = found?.row ?? null
  const mode = row ? row[3] : null
  const info = {
    key: found?.key ?? table!.name,
    litellm_provider: row ? row[2] : target.provider,
    mode,
    max_tokens: mode === 'embedding' ? limits.contextWindow : limits.maxOutputTokens,
    max_input_tokens: limits.contextWindow,
    max_output_tokens: limits.maxOutputTokens,
    input_cost_per_token: table ? table.rates.input : null,
    output_cost_per_token: table ? table.rates.output : null,
  } as ModelInfo
  if (table && pricesKey(table, 'cache_read_mtok')) info.cache_read_input_token_cost = table.rates.cacheRead
  if (table && pricesKey(table, 'cache_write_mtok')) info.cache_creation_input_token_cost = table.rates.cacheWrite
  const flags = row ? row[4] : 0
  for (let i = 0; i < MODEL_FLAGS.length; i++) info[MODEL_FLAGS[i]!] = (flags & (1 << i)) !== 0
  return info
}

/** The price table's entry for the target (genai-prices, the lookup the proxy's pricing makes). */
function priceTableModel(target: Target): TableModel | null {
  return findTableModel(target.provider, target.model, Date.now())
}

/** Whether the table gives the model a price of this kind (else the pricing bills those tokens as plain input). */
function pricesKey(table: TableModel, key: 'cache_read_mtok' | 'cache_write_mtok'): boolean {
  const prices = table.single.models[0]?.prices
  const sets = Array.isArray(prices) ? prices.map((c) => c.prices) : prices ? [prices] : []
  return sets.some((s) => s[key] !== undefined)
}

/** The model's flag from LiteLLM's table; false for a model it does not know, as LiteLLM answers. */
function supports(model: unknown, flag: ModelFlag, customLlmProvider?: string): boolean {
  if (typeof model !== 'string' || model.trim() === '') return false
  let provider: string
  let name: string
  try {
    ({ provider, model: name } = resolve(model.trim(), customLlmProvider))
  } catch {
    return false
  }
  const found = findModelRow(provider, name)
  return found !== null && (found.row[4] & (1 << MODEL_FLAGS.indexOf(flag))) !== 0
}

/**
 * Whether the model takes `tools` (LiteLLM's `supports_function_calling`); false for a model LiteLLM's table does
 * not know.
 *
 *   supportsFunctionCalling('gpt-4o-mini')          // true
 *   supportsFunctionCalling('bedrock/amazon.titan-text-express-v1')   // false
 */
export function supportsFunctionCalling(model: string, customLlmProvider?: string): boolean {
  return supports(model, 'supports_function_calling', customLlmProvider)
}

/**
 * Whether the model takes images in its messages (LiteLLM's `supports_vision`); false for a model LiteLLM's table
 * does not know.
 *
 *   supportsVision('anthropic/claude-sonnet-4-5-20250929')   // true
 *   supportsVision('gpt-3.5-turbo')                          // false
 */
export function supportsVision(model: string, customLlmProvider?: string): boolean {
  return supports(model, 'supports_vision', customLlmProvider)
}
