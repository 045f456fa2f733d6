/**
 * Prices of the media operations, from LiteLLM's table (media-prices.ts) under LiteLLM's key names, with a
 * deployment's own prices (the same keys in litellm_params or model_info, and input/output_cost_per_token) merged
 * over the table's, as LiteLLM merges custom pricing.
 *
 * - images: GPT image models that report token usage are billed on it (text and image input tokens, image output
 *   tokens, each at its rate: what OpenAI bills). Otherwise per image of the size and quality made, from the sized
 *   row (`hd/1024-x-1792/dall-e-3`, `low/1024-x-1536/gpt-image-1`; per-image price, else per-pixel price x pixels),
 *   else the model's own row, times the images returned (or asked for).
 * - transcription: token usage when reported (gpt-4o-transcribe), else seconds of audio x the per-second price;
 *   seconds from the reply (`duration`, `usage.seconds`), else the WAV header, else estimated from the file's size
 *   (core/openai/audio.ts). Unlike LiteLLM, which takes output_cost_per_second first and so bills Groq's Whisper
 *   (output price 0) as free, the first non-zero of the input and output per-second prices is used.
 * - speech: characters x input_cost_per_character; token-priced models (gpt-4o-mini-tts) as estimated input tokens
 *   plus the audio's estimated length x output_cost_per_second (OpenAI's audio reply carries no usage).
 * - moderations: input tokens (estimated) x input_cost_per_token: 0 for OpenAI's moderation models.
 * A model found nowhere is priced at MEDIA_FALLBACK and reported 'unpriced', never silently free.
 */
import type { Operation, Usage } from '../openai/types.js'
import type { Target } from '../../providers/types.js'
import type { UploadFile } from '../openai/upload.js'
import { audioSeconds, audioSecondsBound } from '../openai/audio.js'
import { MEDIA_PRICES } from './media-prices.js'
import { promptTokensBound, promptTokensEstimate } from './budget.js'

export type MediaOp = 'images' | 'transcription' | 'speech' | 'moderations'
export type CostSource = 'deployment' | 'table' | 'unpriced' | 'estimated'

export function isMediaOp(op: Operation | undefined): op is MediaOp {
  return op === 'images' || op === 'transcription' || op === 'speech' || op === 'moderations'
}

/** Prices of a model found nowhere, USD: an HD dall-e-3 image; whisper-1's second; tts-1-hd's character. */
export const MEDIA_FALLBACK = { perImage: 0.08, perSecond: 0.0001, perCharacter: 30e-6 } as const

/** Audio tokens per second of input: gpt-4o audio models bill one token per 100 ms. */
const AUDIO_TOKENS_PER_SECOND = 10
/** Text tokens per second of speech, estimated: about 150 words a minute at 1.3 tokens a word. */
const SPOKEN_TOKENS_PER_SECOND = 3.3
/** Characters spoken per second at speed 1 (about 150 words a minute), to estimate a speech reply's length. */
const CHARS_PER_SECOND = 15
/** The slowest plausible speech at speed 1 (a bound): characters per second. */
const MIN_CHARS_PER_SECOND = 5
/** Output audio tokens per second for speech priced per audio token: gpt-4o-mini-tts' $12/M tokens is $0.015/min. */
const SPEECH_AUDIO_TOKENS_PER_SECOND = 21
/** Image tokens one GPT image can cost, a bound: gpt-image-1 high quality 1536x1024 is 6,240. */
const BOUND_IMAGE_OUTPUT_TOKENS = 8_192
/** Sizes and qualities when a request leaves them to the model: OpenAI's defaults. */
const DEFAULT_SIZE = '1024-x-1024'
const DEFAULT_QUALITIES = ['standard', 'medium'] as const

const PRICE_KEYS = [
  'input_cost_per_image', 'output_cost_per_image', 'input_cost_per_pixel', 'output_cost_per_pixel',
  'input_cost_per_second', 'output_cost_per_second', 'input_cost_per_character',
  'input_cost_per_token', 'output_cost_per_token', 'input_cost_per_audio_token', 'output_cost_per_audio_token',
  'input_cost_per_image_token', 'output_cost_per_image_token',
] as const
type Prices = Partial<Record<(typeof PRICE_KEYS)[number], number>>

interface Variant {
  /** '' when the row names no quality. */
  quality: string
  size: string
  prices: Prices
}

interface Entry {
  mode: string | null
  /** The model's row (deployment prices merged), null when neither the table nor the deployment prices it. */
  base: Prices | null
  /** Sized (and quality) image rows. */
  variants: Variant[]
  source: 'deployment' | 'table'
}

type Body = Record<string, unknown>

const SIZE = /^(\d+)-x-(\d+)$/
/**
 * The step tier LiteLLM's Bedrock SDXL rows put after the size (`1024-x-1024/50-steps/stability.stable-diffusion-xl-v1`).
 * LiteLLM picks `max-steps` only past 50 steps (bedrock/image/cost_calculator.py), which Bedrock's SDXL refuses
 * (steps 10..50): the 50-step row is the price, the max-step rows are never used.
 */
const STEPS = /^(?:\d+|max)-steps$/
const QUALITIES: ReadonlySet<string> = new Set(['standard', 'hd', 'low', 'medium', 'high'])

/** `provider|model` -> its sized image rows, indexed once from the table. */
const VARIANTS: ReadonlyMap<string, Variant[]> = (() => {
  const out = new Map<string, Variant[]>()
  for (const [key, [mode, , prices]] of MEDIA_PRICES) {
    if (mode !== 'image_generation') continue
    const parts = key.split('/')
    const at = parts.findIndex((p) => SIZE.test(p))
    if (at < 0) continue
    const quality = at > 0 && QUALITIES.has(parts[at - 1]!) ? parts[at - 1]! : ''
    const prefix = parts.slice(0, quality ? at - 1 : at).join('/')
    let rest = parts.slice(at + 1)
    if (rest.length > 1 && STEPS.test(rest[0]!)) {
      if (rest[0] !== '50-steps') continue
      rest = rest.slice(1)
    }
    const id = `${prefix}|${rest.join('/')}`
    let list = out.get(id)
    if (!list) out.set(id, (list = []))
    list.push({ quality, size: parts[at]!, prices })
  }
  return out
})()

function num(v: unknown): number | undefined {
  return typeof v === 'number' && v >= 0 && Number.isFinite(v) ? v : undefined
}

/** '1024x1024' -> '1024-x-1024'; 'auto', null -> null. */
function sizeKey(size: unknown): string | null {
  if (typeof size !== 'string') return null
  const m = /^(\d+)x(\d+)$/.exec(size)
  return m ? `${m[1]}-x-${m[2]}` : null
}

function pixels(size: string): number {
  const m = SIZE.exec(size)
  return m ? Number(m[1]) * Number(m[2]) : 0
}

/** The deployment's own media prices: LiteLLM's keys in litellm_params (Target.params) or model_info. */
function ownPrices(t: Target): Prices {
  const own: Prices = {}
  for (const k of PRICE_KEYS) {
    const v = num(t.params?.[k]) ?? num(t.modelInfo[k])
    if (v !== undefined) own[k] = v
  }
  if (t.inputCostPerToken !== undefined) own.input_cost_per_token = t.inputCostPerToken
  if (t.outputCostPerToken !== undefined) own.output_cost_per_token = t.outputCostPerToken
  return own
}

/** Model names a deployment is priced as: model_info.base_model (its provider prefix dropped), the model, its last segment. */
/** Adapter names whose models LiteLLM's table lists under another provider's prefix. */
const TABLE_PROVIDER: Readonly<Record<string, string>> = { vertex_ai_beta: 'vertex_ai', cohere_chat: 'cohere', ollama_chat: 'ollama' }

function namesOf(t: Target): string[] {
  const names: string[] = []
  const base = t.modelInfo.base_model
  if (typeof base === 'string' && base !== '') names.push(base.startsWith(`${t.provider}/`) ? base.slice(t.provider.length + 1) : base)
  names.push(t.model)
  const slash = t.model.lastIndexOf('/')
  if (slash >= 0) names.push(t.model.slice(slash + 1))
  return names
}

function buildEntry(t: Target): Entry {
  const own = ownPrices(t)
  const hasOwn = Object.keys(own).length > 0
  let row: readonly [string, string, Readonly<Record<string, number>>] | undefined
  let variants: Variant[] = []
  for (const name of namesOf(t)) {
    for (const prefix of [TABLE_PROVIDER[t.provider] ?? t.provider, '']) {
      row ??= MEDIA_PRICES.get(prefix ? `${prefix}/${name}` : name)
      if (variants.length === 0) variants = VARIANTS.get(`${prefix}|${name}`) ?? []
    }
  }
  const merged = (p: Prices): Prices => (hasOwn ? { ...p, ...own } : p)
  return {
    mode: row?.[0] ?? (t.modelInfo.mode as string | undefined) ?? null,
    base: row ? merged(row[2]) : hasOwn ? own : variants.length ? {} : null,
    variants: variants.map((v) => ({ ...v, prices: merged(v.prices) })),
    source: hasOwn ? 'deployment' : 'table',
  }
}

export interface MediaCost {
  usd: number
  source: CostSource
}

export interface MediaPricing {
  /** USD of a finished call; `reply` is the parsed JSON reply when there is one (null for audio, or unread). */
  cost(target: Target, op: MediaOp, body: Body, reply: unknown, usage: Usage | null): MediaCost
  /** An upper bound, for strict budget holds. */
  worstCase(target: Target, op: MediaOp, body: Body): number
  estimate(target: Target, op: MediaOp, body: Body): number
  /** LiteLLM's mode of the model ('image_generation', 'audio_transcription', 'audio_speech', 'moderation'), or null. */
  modeOf(target: Target): string | null
}

/** `fallbackPerToken`: the price of an unknown moderation model's input tokens (the token pricing's fallback). */
export function createMediaPricing(fallbackPerToken: number): MediaPricing {
  const entries = new WeakMap<Target, Entry>()
  const entryOf = (t: Target): Entry => {
    let e = entries.get(t)
    if (!e) entries.set(t, (e = buildEntry(t)))
    return e
  }

  function cost(target: Target, op: MediaOp, body: Body, reply: unknown, usage: Usage | null): MediaCost {
    const e = entryOf(target)
    const r = (reply && typeof reply === 'object' ? reply : {}) as Body
    if (op === 'images') return imageCost(e, body, r, usage)
    if (op === 'transcription') return transcriptionCost(e, body, r, usage)
    if (op === 'speech') return speechCost(e, body)
    // Moderations: OpenAI's reply has no usage; the input is estimated (free models stay exactly free).
    const tokens = usage?.prompt_tokens ?? promptTokensEstimate(op, body)
    if (!e.base) return { usd: tokens * fallbackPerToken, source: 'unpriced' }
    const rate = e.base.input_cost_per_token ?? 0
    return { usd: tokens * rate, source: usage || rate === 0 ? e.source : 'estimated' }
  }

  return {
    cost,
    worstCase(target, op, body) {
      const e = entryOf(target)
      if (op === 'images') return imageBound(e, body)
      if (op === 'transcription') return transcriptionCostFor(e, body, audioSecondsBound(fileOf(body).data, fileOf(body).filename), promptTokensBound(op, body))
      if (op === 'speech') return speechCostFor(e, body, MIN_CHARS_PER_SECOND, promptTokensBound(op, body))
      return promptTokensBound(op, body) * (e.base ? e.base.input_cost_per_token ?? 0 : fallbackPerToken)
    },
    estimate(target, op, body) {
      return cost(target, op, body, null, null).usd
    },
    modeOf(target) {
      return entryOf(target).mode
    },
  }
}

// ---- images ----------------------------------------------------------------------------------------------------

/** The larger of two optional prices (LiteLLM rows set one side and 0 or nothing on the other). */
function larger(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b)
}

/** USD per image of `size`: the flat per-image price, else the per-pixel price x pixels; undefined when unpriced. */
function perImage(p: Prices, size: string): number | undefined {
  const flat = larger(p.output_cost_per_image, p.input_cost_per_image)
  const pixel = larger(p.output_cost_per_pixel, p.input_cost_per_pixel)
  if (flat !== undefined && (flat > 0 || pixel === undefined)) return flat
  return pixel === undefined ? undefined : pixel * pixels(size)
}

function hasTokenPrices(p: Prices): boolean {
  return p.input_cost_per_token !== undefined || p.output_cost_per_token !== undefined ||
    p.input_cost_per_image_token !== undefined || p.output_cost_per_image_token !== undefined
}

function imageCount(body: Body, reply: Body): number {
  if (Array.isArray(reply.data)) return reply.data.length
  return num(body.n) ?? 1
}

function imageCost(e: Entry, body: Body, reply: Body, usage: Usage | null): MediaCost {
  const n = imageCount(body, reply)
  if (usage && e.base && hasTokenPrices(e.base)) {
    const p = e.base
    const d = usage.prompt_tokens_details
    const image = d?.image_tokens ?? 0
    const text = d?.text_tokens ?? Math.max(0, usage.prompt_tokens - image)
    const usd = text * (p.input_cost_per_token ?? 0) + image * (p.input_cost_per_image_token ?? p.input_cost_per_token ?? 0) +
      usage.completion_tokens * (p.output_cost_per_image_token ?? p.output_cost_per_token ?? 0)
    return { usd, source: e.source }
  }
  // GPT image models report the size and quality they chose for 'auto'.
  const size = sizeKey(reply.size) ?? sizeKey(body.size) ?? DEFAULT_SIZE
  const asked = typeof (reply.quality ?? body.quality) === 'string' ? String(reply.quality ?? body.quality) : 'auto'
  const qualities = asked === 'auto' ? DEFAULT_QUALITIES : [asked]
  let price: number | undefined
  for (const q of [...qualities, '']) {
    const v = e.variants.find((x) => x.size === size && x.quality === q)
    if (v) price = perImage(v.prices, size)
    if (price !== undefined) break
  }
  if (price === undefined && e.base) price = perImage(e.base, size)
  if (price === undefined) return { usd: n * MEDIA_FALLBACK.perImage, source: 'unpriced' }
  return { usd: n * price, source: e.source }
}

/** The dearest image the request allows (its size and quality if it names them), times `n`, plus its prompt's tokens. */
function imageBound(e: Entry, body: Body): number {
  const n = num(body.n) ?? 1
  const size = sizeKey(body.size)
  const quality = typeof body.quality === 'string' && body.quality !== 'auto' ? body.quality : null
  let max = 0
  for (const v of e.variants) {
    if ((size && v.size !== size) || (quality && v.quality && v.quality !== quality)) continue
    max = Math.max(max, perImage(v.prices, v.size) ?? 0)
  }
  if (e.base) {
    max = Math.max(max, perImage(e.base, size ?? DEFAULT_SIZE) ?? 0)
    const outRate = e.base.output_cost_per_image_token ?? e.base.output_cost_per_token ?? 0
    max = Math.max(max, BOUND_IMAGE_OUTPUT_TOKENS * outRate)
  } else if (e.variants.length === 0) {
    max = MEDIA_FALLBACK.perImage
  }
  const promptRate = e.base?.input_cost_per_token ?? 0
  return n * max + promptTokensBound('images', body) * promptRate
}

// ---- transcription -----------------------------------------------------------------------------------------------

function fileOf(body: Body): UploadFile {
  return body.file as UploadFile
}

function transcriptionCost(e: Entry, body: Body, reply: Body, usage: Usage | null): MediaCost {
  const p = e.base
  if (usage && p && (p.input_cost_per_audio_token !== undefined || p.input_cost_per_token !== undefined)) {
    const d = usage.prompt_tokens_details
    const audio = d?.audio_tokens ?? usage.prompt_tokens
    const text = d?.text_tokens ?? Math.max(0, usage.prompt_tokens - audio)
    const usd = audio * (p.input_cost_per_audio_token ?? p.input_cost_per_token ?? 0) + text * (p.input_cost_per_token ?? 0) +
      usage.completion_tokens * (p.output_cost_per_token ?? 0)
    return { usd, source: e.source }
  }
  const replied = num(reply.duration) ?? (reply.usage && (reply.usage as Body).type === 'duration' ? num((reply.usage as Body).seconds) : undefined)
  const file = fileOf(body)
  const measured = replied === undefined ? audioSeconds(file.data, file.filename) : { seconds: replied, exact: true }
  const usd = transcriptionCostFor(e, body, measured.seconds, promptTokensEstimate('transcription', body))
  const perSecond = !!p && !!(p.input_cost_per_second || p.output_cost_per_second)
  if (!p) return { usd, source: 'unpriced' }
  return { usd, source: measured.exact && perSecond ? e.source : 'estimated' }
}

/** USD for `seconds` of audio: per second when the model is priced so, else as the audio and text tokens they make. */
function transcriptionCostFor(e: Entry, _body: Body, seconds: number, promptTokens: number): number {
  const p = e.base
  if (!p) return seconds * MEDIA_FALLBACK.perSecond
  const perSecond = p.input_cost_per_second || p.output_cost_per_second
  if (perSecond) return seconds * perSecond
  const audioRate = p.input_cost_per_audio_token ?? p.input_cost_per_token ?? 0
  return seconds * AUDIO_TOKENS_PER_SECOND * audioRate + promptTokens * (p.input_cost_per_token ?? 0) +
    seconds * SPOKEN_TOKENS_PER_SECOND * (p.output_cost_per_token ?? 0)
}

// ---- speech ------------------------------------------------------------------------------------------------------

function speechCost(e: Entry, body: Body): MediaCost {
  const usd = speechCostFor(e, body, CHARS_PER_SECOND, promptTokensEstimate('speech', body))
  if (!e.base) return { usd, source: 'unpriced' }
  return { usd, source: e.base.input_cost_per_character ? e.source : 'estimated' }
}

/** Characters as LiteLLM counts them (code points). */
function characters(s: unknown): number {
  if (typeof s !== 'string') return 0
  let n = 0
  for (const _c of s) n++
  return n
}

function speechCostFor(e: Entry, body: Body, charsPerSecond: number, inputTokens: number): number {
  const chars = characters(body.input)
  const p = e.base
  if (!p) return chars * MEDIA_FALLBACK.perCharacter
  if (p.input_cost_per_character) return chars * p.input_cost_per_character
  const speed = num(body.speed) || 1
  const seconds = chars / charsPerSecond / speed
  const audio = p.output_cost_per_second ? seconds * p.output_cost_per_second
    : seconds * SPEECH_AUDIO_TOKENS_PER_SECOND * (p.output_cost_per_audio_token ?? 0)
  return inputTokens * (p.input_cost_per_token ?? 0) + audio
}
