/**
 * Bedrock image replies -> OpenAI ImagesResponse (`data: [{b64_json}]`), per family (images.ts):
 * - Nova Canvas / Titan: `{images: [base64...], error?}`;
 * - Stability SD3 / Stable Image: `{seeds, finish_reasons: [null | 'Filter reason: prompt' | ...], images}`;
 * - Stability SDXL: `{result, artifacts: [{seed, base64, finishReason: 'SUCCESS' | 'CONTENT_FILTERED' | 'ERROR'}]}`.
 * A 200 that carries a refusal instead of images (a Stability filter reason, a filtered SDXL artifact, a Titan
 * `error` naming the content filter) is a content-policy error, as the same refusal sent as a 400 is (errors.ts);
 * any other 200 without images is a bad upstream response, which retry and fallback act on.
 * Bedrock images are PNG unless a Stability request asked for another `output_format`; the reply says which.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-ultra-text-image-request-response.html
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'
import type { ImageObject, ImagesResponse } from '../../core/openai/types.js'
import type { ResponseMeta } from '../types.js'
import { isContentRefusal } from './errors.js'
import { imageFamily } from './images.js'

const PROVIDER = 'bedrock'
/** Stability's finish reasons that mean a filter stopped the image ('Filter reason: prompt', ... 'output image'). */
const FILTER_PREFIX = 'Filter reason'
const SDXL_FILTERED = 'CONTENT_FILTERED'

function refused(model: string, why: string): GatewayError {
  return gatewayError('GW_ERR_CONTENT_POLICY', `bedrock model ${model} refused the image: blocked by its content filter (${why})`, { provider: PROVIDER })
}

function noImages(model: string, why: string): GatewayError {
  return gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `bedrock model ${model} returned no image: ${why}`, { provider: PROVIDER })
}

function isB64(v: unknown): v is string {
  return typeof v === 'string' && v !== ''
}

/** Nova Canvas / Titan. */
function amazonImages(b: Record<string, unknown>, model: string): string[] {
  const images = Array.isArray(b.images) ? b.images.filter(isB64) : []
  if (images.length) return images
  const error = typeof b.error === 'string' ? b.error : ''
  if (error && isContentRefusal(error)) throw gatewayError('GW_ERR_CONTENT_POLICY', error, { provider: PROVIDER })
  throw noImages(model, error || 'the reply has no `images`')
}

/** SD3 / Stable Image: `finish_reasons[i]` is null for a good `images[i]`. */
function stability3Images(b: Record<string, unknown>, model: string): string[] {
  const images = Array.isArray(b.images) ? b.images : []
  const reasons = Array.isArray(b.finish_reasons) ? b.finish_reasons : []
  const out: string[] = []
  let why = ''
  for (let i = 0; i < Math.max(images.length, reasons.length); i++) {
    const reason = reasons[i]
    if (reason != null) why ||= String(reason)
    else if (isB64(images[i])) out.push(images[i] as string)
  }
  if (out.length) return out
  if (why.startsWith(FILTER_PREFIX)) throw refused(model, why)
  // 'Inference error': the model failed; another attempt may do better.
  if (why) throw gatewayError('GW_ERR_UPSTREAM_SERVER', `bedrock model ${model} failed to make the image: ${why}`, { provider: PROVIDER })
  throw noImages(model, 'the reply has no `images`')
}

/** SDXL: artifacts whose finishReason is not SUCCESS are left out. */
function sdxlImages(b: Record<string, unknown>, model: string): string[] {
  const artifacts = Array.isArray(b.artifacts) ? (b.artifacts as Array<Record<string, unknown> | null>) : []
  const out: string[] = []
  let filtered = false
  for (const a of artifacts) {
    if (!a) continue
    if (a.finishReason === SDXL_FILTERED) filtered = true
    else if (isB64(a.base64) && (a.finishReason === undefined || a.finishReason === 'SUCCESS')) out.push(a.base64)
  }
  if (out.length) return out
  if (filtered) throw refused(model, SDXL_FILTERED)
  throw noImages(model, artifacts.length ? 'every artifact failed' : 'the reply has no `artifacts`')
}

export function imagesResponse(body: unknown, meta: ResponseMeta): ImagesResponse {
  const b = body as Record<string, unknown>
  const target = meta.target
  const f = imageFamily(target)
  const images = f === 'nova' || f === 'titan' ? amazonImages(b, target.model)
    : f === 'sdxl' ? sdxlImages(b, target.model)
    : stability3Images(b, target.model)
  const data: ImageObject[] = images.map((b64_json) => ({ b64_json }))
  const asked = f === 'sd3' || f === 'stable-image' ? meta.request?.output_format : undefined
  return { created: meta.created, data, output_format: typeof asked === 'string' ? asked : 'png' }
}
