/**
 * The OpenAI image request -> Google's two image APIs, as param maps (read them as the spec of what is supported):
 * - Imagen (`imagen-*`, `imagegeneration@*`): `:predict` with `{instances: [{prompt}], parameters: {sampleCount,
 *   aspectRatio, ...}}` (https://ai.google.dev/gemini-api/docs/imagen, https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api);
 * - Gemini image models (`gemini-*-image*`): `:generateContent` with the prompt as one user turn, image output asked
 *   for in `generationConfig.responseModalities` and the shape in `generationConfig.imageConfig`
 *   (https://ai.google.dev/gemini-api/docs/image-generation; GenerationConfig / ImageConfig in the spec).
 *
 * OpenAI params, as LiteLLM supports them for these models (`n`, `size`): `n` -> sampleCount / candidateCount, `size`
 * -> the nearest aspect ratio the API takes (`auto` leaves the model's default). Both APIs return image bytes only, so
 * images always come back as `b64_json`: `response_format: b64_json` is accepted, `url` is unsupported (a 400 naming
 * it, or b64_json with drop_params). `quality`, `style`, `user` and the GPT-image fields (`background`,
 * `output_format`, ...) are unsupported: a 400, or dropped with drop_params (LiteLLM's UnsupportedParamsError).
 * Google's own settings pass through under either spelling (LiteLLM passes such extras on): `aspect_ratio` (wins over
 * `size`), `image_size`, `seed`, and for Imagen `person_generation`, `negative_prompt`, `enhance_prompt`,
 * `add_watermark`, `include_rai_reason`, `safety_setting`; for Gemini models `safety_settings`.
 */
import { gatewayError } from '../../core/errors.js'
import type { ImageGenerationRequest } from '../../core/openai/types.js'
import type { ParamMap, ParamRule, Target } from '../types.js'

type Req = ImageGenerationRequest
type ImageMap = ParamMap<Req>

interface Ratio {
  name: string
  /** ln(width / height), so that 2:1 and 1:2 are equally far from 1:1. */
  log: number
}

function ratios(names: readonly string[]): readonly Ratio[] {
  return names.map((name) => {
    const [w, h] = name.split(':').map(Number) as [number, number]
    return { name, log: Math.log(w / h) }
  })
}

/** Imagen's aspect ratios (parameters.aspectRatio). */
export const IMAGEN_RATIOS = ratios(['1:1', '3:4', '4:3', '9:16', '16:9'])
/** Gemini image models' aspect ratios (ImageConfig.aspectRatio in the spec, plus 4:5 and 5:4 from the image-generation docs). */
export const GEMINI_RATIOS = ratios(['1:1', '2:3', '3:2', '3:4', '4:3', '4:5', '5:4', '9:16', '16:9', '21:9'])

const SIZE = /^(\d+)x(\d+)$/

/**
 * OpenAI's `size` -> the nearest aspect ratio in `allowed` (undefined for 'auto': the model's default), by the
 * ratio's logarithm. Nearest rather than LiteLLM's fixed table, which sends 1:1 for any size not in it (a 1536x1024
 * landscape came back square). For Imagen the sizes in LiteLLM's table (1024x1024, 1792x1024, 1024x1792, 1280x896,
 * 896x1280) get the same ratio; Gemini models, which also take 3:2 and 2:3, get those for 1280x896 and 896x1280.
 */
export function aspectRatio(size: unknown, allowed: readonly Ratio[]): string | undefined {
  if (size === undefined || size === null || size === 'auto') return undefined
  const m = typeof size === 'string' ? SIZE.exec(size) : null
  const w = m ? Number(m[1]) : 0
  const h = m ? Number(m[2]) : 0
  if (w === 0 || h === 0) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid 'size': expected 'auto' or WIDTHxHEIGHT, got ${JSON.stringify(size)}.`, { param: 'size' })
  }
  const want = Math.log(w / h)
  let best = allowed[0]!
  for (const r of allowed) if (Math.abs(r.log - want) < Math.abs(best.log - want)) best = r
  return best.name
}

/** A request that names its aspect ratio itself (Google's setting) keeps it; `size` then says nothing. */
function ownRatio(req: Req): boolean {
  return req.aspect_ratio !== undefined || req.aspectRatio !== undefined
}

/** `response_format`: nothing is sent (the APIs answer bytes); `url` cannot be honoured. */
const RESPONSE_FORMAT: ParamRule<Req> = {
  to: 'response_format',
  map(v: unknown, _req: Req, t: Target) {
    if (v === 'url' && !t.dropParams) {
      throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
        `${t.provider} does not support parameters: response_format='url', for model=${t.model}: Google's image APIs return ` +
        'image bytes only, sent as b64_json. Leave response_format out (or set `drop_params: true`) to receive b64_json.',
        { param: 'response_format' })
    }
    return undefined
  },
}

/** Google's own settings (both spellings) -> where they go under `root`. */
function extras(root: string, names: Readonly<Record<string, string>>): ImageMap {
  const map: ImageMap = {}
  for (const k in names) map[k] = { to: `${root}.${names[k]}` }
  return map
}

export const imagenParams: ImageMap = {
  model: 'drop', // in the URL
  prompt: { to: 'instances', required: true, map: (v: unknown) => [{ prompt: v }] },
  // OpenAI's default is one image; Imagen's own default is four (billed as four).
  n: { to: 'parameters.sampleCount', default: 1 },
  size: { to: 'parameters.aspectRatio', map: (v: unknown, req: Req) => (ownRatio(req) ? undefined : aspectRatio(v, IMAGEN_RATIOS)) },
  response_format: RESPONSE_FORMAT,
  ...extras('parameters', {
    aspect_ratio: 'aspectRatio', aspectRatio: 'aspectRatio',
    image_size: 'sampleImageSize', imageSize: 'sampleImageSize', sampleImageSize: 'sampleImageSize',
    seed: 'seed',
    person_generation: 'personGeneration', personGeneration: 'personGeneration',
    negative_prompt: 'negativePrompt', negativePrompt: 'negativePrompt',
    enhance_prompt: 'enhancePrompt', enhancePrompt: 'enhancePrompt',
    add_watermark: 'addWatermark', addWatermark: 'addWatermark',
    include_rai_reason: 'includeRaiReason', includeRaiReason: 'includeRaiReason',
    safety_setting: 'safetySetting', safetySetting: 'safetySetting',
  }),
}

/**
 * TEXT and IMAGE: the combination every Gemini image model accepts (the 2.0 image preview takes no other), and
 * Google's default in its examples; a text part beside the image is not returned to the client.
 */
const MODALITIES = ['TEXT', 'IMAGE'] as const

export const geminiImageParams: ImageMap = {
  model: 'drop', // in the URL
  prompt: [
    { to: 'contents', required: true, map: (v: unknown) => [{ role: 'user', parts: [{ text: v }] }] },
    // The prompt is required, so this rule always runs: image output is what the operation is for.
    { to: 'generationConfig.responseModalities', map: () => [...MODALITIES] },
  ],
  // 1 is the default and is not sent: image models that make a single candidate may refuse the field.
  n: { to: 'generationConfig.candidateCount', map: (v: unknown) => (v === 1 ? undefined : v) },
  size: { to: 'generationConfig.imageConfig.aspectRatio', map: (v: unknown, req: Req) => (ownRatio(req) ? undefined : aspectRatio(v, GEMINI_RATIOS)) },
  response_format: RESPONSE_FORMAT,
  ...extras('generationConfig', {
    aspect_ratio: 'imageConfig.aspectRatio', aspectRatio: 'imageConfig.aspectRatio',
    image_size: 'imageConfig.imageSize', imageSize: 'imageConfig.imageSize',
    seed: 'seed',
  }),
  safety_settings: { to: 'safetySettings' },
}
