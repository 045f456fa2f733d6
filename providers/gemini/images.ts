/**
 * `/v1/images/generations` on Google's image models, shared by the Gemini (AI Studio) and Vertex AI adapters. Which
 * API a model speaks is read off its name, as LiteLLM decides it: a name with `gemini` in it (`gemini-2.5-flash-image`)
 * is a Gemini model, answered through `:generateContent`; anything else (`imagen-4.0-generate-001`,
 * `imagegeneration@006`, a deployed endpoint's id) is Imagen, through `:predict`. The request maps are in
 * images-params.ts; this file picks one per call and reads the answers:
 * - Imagen: `predictions[]` -> `data[]` (`bytesBase64Encoded` -> `b64_json`, the rewritten prompt `prompt` ->
 *   `revised_prompt`). Imagen leaves out images its safety filters removed (or lists only their `raiFilteredReason`):
 *   a reply with no image at all is a content-policy error, as OpenAI reports a refused image prompt.
 * - Gemini: `inlineData` image parts of every candidate -> `data[]`; `usageMetadata` -> OpenAI's image usage (input
 *   text / image tokens, output image tokens), which the core prices per token. A blocked prompt, or candidates that
 *   stopped for safety with no image, are content-policy errors; an answer in text only is a bad upstream response
 *   that quotes the text.
 * The core calls an operation's param map without the target, so `params` lets everything through (the gateway's
 * own fields are stripped by the core first) and finish() applies the model's map, as Vertex chat does.
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'
import type { ImageGenerationRequest, ImageObject, ImagesResponse, ImagesUsage } from '../../core/openai/types.js'
import { applyParamMap } from '../param-map.js'
import type { OperationAdapter, ParamPolicy } from '../types.js'
import { googleErrorOf, geminiError } from './errors.js'
import { geminiImageParams, imagenParams } from './images-params.js'
import { isFiltered, refusal } from './response.js'

export { aspectRatio, GEMINI_RATIOS, IMAGEN_RATIOS } from './images-params.js'

type Obj = Record<string, unknown>

const POLICY: ParamPolicy = { unknown: 'unsupported' }
/** Most of a text-only answer quoted in the error: 300 characters. */
const QUOTE_CHARS = 300
/** `image/png` -> ImagesResponse.output_format. */
const FORMATS: Readonly<Record<string, string>> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/webp': 'webp' }

/** A Gemini image model (generateContent), not Imagen (predict). */
export function isGeminiImageModel(model: string): boolean {
  return model.includes('gemini')
}

/** The method an image request for `model` calls. */
export function imageMethod(model: string): 'generateContent' | 'predict' {
  return isGeminiImageModel(model) ? 'generateContent' : 'predict'
}

export function googleImages(provider: string): OperationAdapter<ImageGenerationRequest, ImagesResponse> {
  return {
    params: {},
    policy: { unknown: 'pass' },
    finish(body, _req, target) {
      // OpenAI clients send null for "not set"; removed so defaults apply and an unsupported null is no error.
      for (const k in body) if (body[k] === null) delete body[k]
      const map = isGeminiImageModel(target.model) ? geminiImageParams : imagenParams
      return applyParamMap(body as ImageGenerationRequest, map, target, POLICY)
    },
    response: (body, meta) => (isGeminiImageModel(meta.target.model) ? fromGenerateContent(provider, body as Obj, meta.created) : fromPredict(provider, body as Obj, meta.created)),
  }
}

function contentPolicy(provider: string, message: string): GatewayError {
  return gatewayError('GW_ERR_CONTENT_POLICY', message, { provider, upstreamStatus: 200 })
}

function badResponse(provider: string, message: string): GatewayError {
  return gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', message, { provider })
}

/** The reply, with `output_format` when every image has the same known type. */
function reply(created: number, data: ImageObject[], types: Set<string>): ImagesResponse {
  const out: ImagesResponse = { created, data }
  if (types.size === 1) {
    const format = FORMATS[types.values().next().value!]
    if (format) out.output_format = format
  }
  return out
}

/** Imagen `:predict` -> ImagesResponse. */
export function fromPredict(provider: string, body: Obj, created: number): ImagesResponse {
  if (googleErrorOf(body)) throw geminiError(provider, 0, body, {})
  const predictions = body.predictions
  if (predictions !== undefined && !Array.isArray(predictions)) throw badResponse(provider, `${provider} returned \`predictions\` that is not a list`)
  const data: ImageObject[] = []
  const types = new Set<string>()
  const filtered: string[] = []
  for (const p of (predictions ?? []) as Obj[]) {
    if (!p || typeof p !== 'object') continue
    if (typeof p.bytesBase64Encoded === 'string' && p.bytesBase64Encoded !== '') {
      const image: ImageObject = { b64_json: p.bytesBase64Encoded }
      if (typeof p.prompt === 'string' && p.prompt !== '') image.revised_prompt = p.prompt
      data.push(image)
      types.add(typeof p.mimeType === 'string' ? p.mimeType : '')
    } else if (typeof p.raiFilteredReason === 'string') {
      filtered.push(p.raiFilteredReason)
    }
  }
  if (data.length === 0) {
    throw contentPolicy(provider, filtered.length
      ? `${provider} filtered every image: ${filtered.join(' ')}`
      : `${provider} returned no image: Imagen leaves out images its safety filters removed (include_rai_reason: true says why)`)
  }
  return reply(created, data, types)
}

/** Gemini `:generateContent` with image output -> ImagesResponse. */
export function fromGenerateContent(provider: string, body: Obj, created: number): ImagesResponse {
  const refused = refusal(provider, body)
  if (refused) throw refused
  const data: ImageObject[] = []
  const types = new Set<string>()
  let text = ''
  let filteredBy: string | null = null
  for (const c of (Array.isArray(body.candidates) ? body.candidates : []) as Obj[]) {
    if (!c || typeof c !== 'object') continue
    if (isFiltered(c.finishReason)) filteredBy ??= String(c.finishReason)
    const parts = (c.content as { parts?: unknown } | undefined)?.parts
    for (const p of (Array.isArray(parts) ? parts : []) as Obj[]) {
      const inline = p?.inlineData as { mimeType?: unknown; data?: unknown } | undefined
      const type = typeof inline?.mimeType === 'string' ? inline.mimeType : ''
      if (typeof inline?.data === 'string' && inline.data !== '' && (type === '' || type.startsWith('image/'))) {
        data.push({ b64_json: inline.data })
        types.add(type)
      } else if (typeof p?.text === 'string' && p.thought !== true) {
        text += p.text
      }
    }
  }
  if (data.length === 0) {
    const said = text.trim().slice(0, QUOTE_CHARS)
    if (filteredBy) throw contentPolicy(provider, `${provider} made no image (finishReason ${filteredBy})${said ? `: ${said}` : ''}`)
    throw badResponse(provider, `${provider} returned no image${said ? `; the model answered: ${said}` : ''}`)
  }
  const out = reply(created, data, types)
  const usage = imagesUsage(body.usageMetadata)
  if (usage) out.usage = usage
  return out
}

/** Tokens of one modality in a `*TokensDetails` list ([{modality: 'IMAGE', tokenCount}]); null when there is no list. */
function modality(details: unknown, name: string): number | null {
  if (!Array.isArray(details)) return null
  let n = 0
  for (const d of details as Obj[]) if (d?.modality === name) n += num(d.tokenCount)
  return n
}

/**
 * usageMetadata -> OpenAI's image usage (ImageGenUsage). Output counts thoughts too when Gemini reports them beside
 * the candidates (as chat usage does, see response.ts toUsage); without a per-modality breakdown the candidates are
 * taken as image tokens, which is what an image call makes.
 */
export function imagesUsage(um: unknown): ImagesUsage | undefined {
  if (!um || typeof um !== 'object') return undefined
  const u = um as Obj
  if (u.promptTokenCount === undefined && u.candidatesTokenCount === undefined) return undefined
  const input = num(u.promptTokenCount)
  const candidates = num(u.candidatesTokenCount)
  const thoughts = num(u.thoughtsTokenCount)
  const inclusive = u.totalTokenCount !== undefined && input + candidates === num(u.totalTokenCount)
  const output = inclusive ? candidates : candidates + thoughts
  const inputImage = modality(u.promptTokensDetails, 'IMAGE') ?? 0
  const outputImage = modality(u.candidatesTokensDetails, 'IMAGE') ?? candidates
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    input_tokens_details: { text_tokens: input - inputImage, image_tokens: inputImage },
    output_tokens_details: { text_tokens: output - outputImage, image_tokens: outputImage },
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}
