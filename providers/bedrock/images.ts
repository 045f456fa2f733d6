/**
 * OpenAI image generation -> Bedrock InvokeModel (`POST /model/{id}/invoke`), for the families LiteLLM serves
 * there (litellm/llms/bedrock/image/*), one wire format each:
 * - Amazon Nova Canvas and Titan Image Generator v1/v2: `{taskType: 'TEXT_IMAGE', textToImageParams: {text,
 *   negativeText?}, imageGenerationConfig: {numberOfImages, width, height, quality, cfgScale?, seed?}}`;
 * - Stability SD3 / SD3.5 and Stable Image Core / Ultra: `{prompt, mode?, aspect_ratio?, output_format, seed?,
 *   negative_prompt?}`, one image per call;
 * - Stability SDXL (stable-diffusion-xl-v0/v1): `{text_prompts: [{text, weight}], width?, height?, cfg_scale?,
 *   seed?, steps?, style_preset?}`, one image per call.
 * The reply (base64 images in every family) is mapped in images-response.ts.
 *
 * The param map is the spec: OpenAI's `n`, `size`, `quality` land where each family takes them; Bedrock's own
 * knobs (`seed`, `negativeText` / `negative_prompt`, `cfgScale` / `cfg_scale`, `steps`, ...) are accepted from the
 * body by either name, as LiteLLM passes provider params on; a param the family lacks is unsupported (400 naming
 * it, unless drop_params). `response_format` is dropped: Bedrock answers base64 only, so the reply is `b64_json`
 * whatever was asked, as in LiteLLM (a `url` would need image storage the gateway does not have).
 * API reference: https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html,
 * https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html,
 * https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-text-image.html
 */
import { gatewayError } from '../../core/errors.js'
import type { ImageGenerationRequest } from '../../core/openai/types.js'
import type { ParamMap, ParamRule, Target } from '../types.js'
import { endpointOf } from './endpoint.js'

export type ImageFamily = 'nova' | 'titan' | 'sd3' | 'stable-image' | 'sdxl'

type Families = ReadonlySet<ImageFamily>
const AMAZON: Families = new Set<ImageFamily>(['nova', 'titan'])
const STABILITY3: Families = new Set<ImageFamily>(['sd3', 'stable-image'])
const SDXL: Families = new Set<ImageFamily>(['sdxl'])
const STABILITY: Families = new Set<ImageFamily>(['sd3', 'stable-image', 'sdxl'])

/** Images per call: Nova Canvas and Titan take 1 to 5; the Stability models make one. */
const MAX_IMAGES = 5
/** cfgScale (Nova, Titan) and cfg_scale (SDXL) ranges from the model parameter pages. */
const AMAZON_CFG: readonly [number, number] = [1.1, 10]
const SDXL_CFG: readonly [number, number] = [0, 35]
const SDXL_STEPS: readonly [number, number] = [10, 50]
/** Stable Diffusion 3 / Stable Image aspect ratios (the only size setting they take). */
const ASPECT_RATIOS: ReadonlyArray<readonly [string, number]> = [
  ['21:9', 21 / 9], ['16:9', 16 / 9], ['3:2', 3 / 2], ['5:4', 5 / 4], ['1:1', 1], ['4:5', 4 / 5], ['2:3', 2 / 3],
  ['9:16', 9 / 16], ['9:21', 9 / 21],
]
const OUTPUT_FORMATS: ReadonlySet<string> = new Set(['png', 'jpeg', 'webp'])
/** OpenAI quality -> Nova / Titan quality, as LiteLLM maps it ('auto' leaves the model's default). */
const QUALITY: Readonly<Record<string, string>> = {
  hd: 'premium', premium: 'premium', high: 'premium', standard: 'standard', medium: 'standard', low: 'standard',
}
const SIZE = /^(\d+)x(\d+)$/

const families = new WeakMap<Target, ImageFamily>()

/** The deployment's image family (cached per Target); a model outside them is refused by name. */
export function imageFamily(t: Target): ImageFamily {
  let f = families.get(t)
  if (f) return f
  const m = endpointOf(t).baseModel
  if (m.startsWith('amazon.nova-canvas')) f = 'nova'
  else if (m.startsWith('amazon.titan-image-generator')) f = 'titan'
  else if (m.startsWith('stability.sd3')) f = 'sd3'
  // Core and Ultra only: the other stability.stable-image-* models edit an input image (inpaint, upscale, ...).
  else if (m.startsWith('stability.stable-image-core') || m.startsWith('stability.stable-image-ultra')) f = 'stable-image'
  else if (m.startsWith('stability.stable-diffusion-xl')) f = 'sdxl'
  else {
    throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION',
      `bedrock image generation supports amazon.nova-canvas-*, amazon.titan-image-generator-*, stability.sd3-*, ` +
      `stability.stable-image-core-*, stability.stable-image-ultra-* and stability.stable-diffusion-xl-* models, not ${t.model}`,
      { param: 'model' })
  }
  families.set(t, f)
  return f
}

function unsupported(t: Target, param: string): undefined {
  if (t.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${t.provider} does not support parameters: ${param}, for model=${t.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param })
}

function inRange(param: string, v: unknown, [min, max]: readonly [number, number], t: Target): unknown {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw gatewayError('GW_ERR_VALIDATION', `${param} must be a number`, { param })
  if (v < min || v > max) {
    throw gatewayError('GW_ERR_PARAM_RANGE',
      `Invalid '${param}': ${v} is out of range for ${t.provider} model ${t.model}; expected a value from ${min} to ${max}.`, { param })
  }
  return v
}

/** `'1024x768'` -> [1024, 768]; 'auto' or null -> null (the model's default). */
export function parseSize(v: unknown): [number, number] | null {
  if (v === null || v === 'auto') return null
  const m = typeof v === 'string' ? SIZE.exec(v) : null
  if (!m) throw gatewayError('GW_ERR_VALIDATION', `size must be 'WIDTHxHEIGHT' (e.g. '1024x1024') or 'auto', got ${JSON.stringify(v)}`, { param: 'size' })
  return [Number(m[1]), Number(m[2])]
}

/**
 * The supported aspect ratio nearest to a size. Compared on a log scale, so 2:1 and 1:2 are equally far from 1:1
 * (LiteLLM compares plain ratios, which favours the wide ones); the two agree on every size OpenAI documents.
 */
export function aspectRatio(width: number, height: number): string {
  const want = Math.log(width / height)
  let best = ASPECT_RATIOS[0]!
  for (const r of ASPECT_RATIOS) if (Math.abs(Math.log(r[1]) - want) < Math.abs(Math.log(best[1]) - want)) best = r
  return best[0]
}

type Rule = ParamRule<ImageGenerationRequest>
type MapFn = (v: unknown, req: ImageGenerationRequest, t: Target) => unknown

/** A rule for the families in `fams`: the value (transformed) goes to `to`; a null is "not set". */
function on(fams: Families, to: string, f?: MapFn): Rule {
  return { to, map: (v, r, t) => (v === null || !fams.has(imageFamily(t)) ? undefined : f ? f(v, r, t) : v) }
}

/** The 400 for a non-null value of `param` on a family outside `fams`. */
function elsewhereUnsupported(fams: Families, param: string): Rule {
  return { to: param, map: (v, _r, t) => (v === null || fams.has(imageFamily(t)) ? undefined : unsupported(t, param)) }
}

/** One param a few families take, by one of its names; the others refuse it. */
function only(fams: Families, to: string, param: string, f?: MapFn): Rule[] {
  return [elsewhereUnsupported(fams, param), on(fams, to, f)]
}

const prompt: MapFn = (v) => {
  if (typeof v !== 'string' || v === '') throw gatewayError('GW_ERR_VALIDATION', 'prompt must be a non-empty string', { param: 'prompt' })
  return v
}
const stringParam = (param: string): MapFn => (v) => {
  if (typeof v !== 'string') throw gatewayError('GW_ERR_VALIDATION', `${param} must be a string`, { param })
  return v
}

/** Stability makes one image a call: n = 1 is fine, more is unsupported (LiteLLM sends it and Bedrock refuses). */
const oneImage: MapFn = (v, _r, t) => (v === 1 ? undefined : unsupported(t, 'n'))

const width: MapFn = (v) => parseSize(v)?.[0]
const height: MapFn = (v) => parseSize(v)?.[1]
/** An explicit `aspect_ratio` wins over one derived from `size`. */
const sizeRatio: MapFn = (v, r) => {
  if (r.aspect_ratio != null) return undefined
  const s = parseSize(v)
  return s ? aspectRatio(s[0], s[1]) : undefined
}

function amazonQuality(v: unknown): unknown {
  if (v === 'auto') return undefined
  const q = typeof v === 'string' ? QUALITY[v] : undefined
  if (!q) throw gatewayError('GW_ERR_VALIDATION', "quality must be 'standard', 'hd' / 'premium', 'low', 'medium', 'high' or 'auto'", { param: 'quality' })
  return q
}

/** OpenAI's `output_format`: Stability SD3 / Stable Image choose it; Nova, Titan and SDXL answer PNG only. */
const stabilityFormat: MapFn = (v) => {
  if (typeof v !== 'string' || !OUTPUT_FORMATS.has(v)) throw gatewayError('GW_ERR_VALIDATION', "output_format must be 'png', 'jpeg' or 'webp'", { param: 'output_format' })
  return v
}
const pngOnly: MapFn = (v, _r, t) => (v === 'png' ? undefined : unsupported(t, 'output_format'))

function object(param: string): MapFn {
  return (v) => {
    if (typeof v !== 'object' || Array.isArray(v)) throw gatewayError('GW_ERR_VALIDATION', `${param} must be an object`, { param })
    return undefined // merged by finish(), under the mapped values
  }
}

export const imageParams: ParamMap<ImageGenerationRequest> = {
  model: 'drop', // in the URL
  response_format: 'drop', // always b64_json (see above)
  user: 'drop', // LiteLLM removes it before every Bedrock image call
  prompt: [
    { ...on(AMAZON, 'textToImageParams.text', prompt), required: true },
    on(STABILITY3, 'prompt', prompt),
    on(SDXL, 'text_prompts', (v, r, t) => [{ text: prompt(v, r, t), weight: 1 }]),
  ],
  n: [
    on(AMAZON, 'imageGenerationConfig.numberOfImages', (v, _r, t) => inRange('n', v, [1, MAX_IMAGES], t)),
    on(STABILITY, 'n', oneImage),
  ],
  size: [
    on(AMAZON, 'imageGenerationConfig.width', width),
    on(AMAZON, 'imageGenerationConfig.height', height),
    on(SDXL, 'width', width),
    on(SDXL, 'height', height),
    on(STABILITY3, 'aspect_ratio', sizeRatio),
  ],
  quality: [
    on(AMAZON, 'imageGenerationConfig.quality', amazonQuality),
    on(STABILITY, 'quality', (v, _r, t) => (v === 'auto' ? undefined : unsupported(t, 'quality'))),
  ],
  output_format: [on(STABILITY3, 'output_format', stabilityFormat), on(AMAZON, 'output_format', pngOnly), on(SDXL, 'output_format', pngOnly)],
  seed: [
    on(AMAZON, 'imageGenerationConfig.seed'),
    on(STABILITY, 'seed'),
  ],
  // Negative prompts, by Amazon's name or Stability's; SDXL's goes into text_prompts with weight -1 (finish()).
  negativeText: [
    on(AMAZON, 'textToImageParams.negativeText', stringParam('negativeText')),
    on(STABILITY3, 'negative_prompt', stringParam('negativeText')),
  ],
  negative_prompt: [
    on(AMAZON, 'textToImageParams.negativeText', stringParam('negative_prompt')),
    on(STABILITY3, 'negative_prompt', stringParam('negative_prompt')),
  ],
  cfgScale: [
    on(AMAZON, 'imageGenerationConfig.cfgScale', (v, _r, t) => inRange('cfgScale', v, AMAZON_CFG, t)),
    on(SDXL, 'cfg_scale', (v, _r, t) => inRange('cfgScale', v, SDXL_CFG, t)),
    elsewhereUnsupported(new Set([...AMAZON, ...SDXL]), 'cfgScale'),
  ],
  cfg_scale: [
    on(AMAZON, 'imageGenerationConfig.cfgScale', (v, _r, t) => inRange('cfg_scale', v, AMAZON_CFG, t)),
    on(SDXL, 'cfg_scale', (v, _r, t) => inRange('cfg_scale', v, SDXL_CFG, t)),
    elsewhereUnsupported(new Set([...AMAZON, ...SDXL]), 'cfg_scale'),
  ],
  taskType: only(AMAZON, 'taskType', 'taskType', (v) => {
    if (v !== 'TEXT_IMAGE') throw gatewayError('GW_ERR_VALIDATION', "image generation takes taskType 'TEXT_IMAGE' only (the other tasks need an input image)", { param: 'taskType' })
    return v
  }),
  imageGenerationConfig: only(AMAZON, 'imageGenerationConfig', 'imageGenerationConfig', object('imageGenerationConfig')),
  textToImageParams: only(AMAZON, 'textToImageParams', 'textToImageParams', object('textToImageParams')),
  aspect_ratio: only(STABILITY3, 'aspect_ratio', 'aspect_ratio', stringParam('aspect_ratio')),
  steps: only(SDXL, 'steps', 'steps', (v, _r, t) => inRange('steps', v, SDXL_STEPS, t)),
  style_preset: only(SDXL, 'style_preset', 'style_preset', stringParam('style_preset')),
  // OpenAI params no Bedrock image model has.
  style: 'unsupported',
  background: 'unsupported',
  moderation: 'unsupported',
  output_compression: 'unsupported',
  partial_images: 'unsupported',
}

function merged(base: unknown, over: unknown): Record<string, unknown> | undefined {
  const b = base && typeof base === 'object' ? (base as Record<string, unknown>) : undefined
  const o = over && typeof over === 'object' ? (over as Record<string, unknown>) : undefined
  return b || o ? { ...b, ...o } : undefined
}

/**
 * What the map cannot say: the task type and the family's required defaults, the client's own Nova / Titan objects
 * merged under the mapped values, SDXL's negative prompt as a second weighted text prompt.
 */
export function finishImages(body: Record<string, unknown>, req: ImageGenerationRequest, target: Target): Record<string, unknown> {
  const f = imageFamily(target)
  if (AMAZON.has(f)) {
    const text = merged(req.textToImageParams, body.textToImageParams)
    const config = merged(req.imageGenerationConfig, body.imageGenerationConfig)
    const out: Record<string, unknown> = { taskType: 'TEXT_IMAGE', textToImageParams: text }
    if (config) out.imageGenerationConfig = config
    return out
  }
  if (f === 'sdxl') {
    const negative = req.negative_prompt ?? req.negativeText
    if (negative != null) {
      if (typeof negative !== 'string') throw gatewayError('GW_ERR_VALIDATION', 'negative_prompt must be a string', { param: 'negative_prompt' })
      if (negative !== '') (body.text_prompts as unknown[]).push({ text: negative, weight: -1 })
    }
    return body
  }
  // Stable Diffusion 3 documents a text-to-image `mode` (image-to-image is the other); Core and Ultra have none.
  if (f === 'sd3') body.mode = 'text-to-image'
  // PNG unless asked otherwise: what OpenAI's b64_json images are.
  body.output_format ??= 'png'
  return body
}
