/**
 * Fixtures for the Bedrock image tests (bedrock-images.test.ts, bedrock-images-gateway.test.ts).
 *
 * ../shared/data/bedrock has the Bedrock Runtime API model, where InvokeModel's body is an opaque blob: the model
 * families' own request bodies have no machine-readable spec there. The schemas below are *authored* from the AWS
 * model parameter pages (closed objects, enums, documented ranges), so a body the adapter builds is checked
 * against what each model documents:
 * - Nova Canvas TEXT_IMAGE: https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html
 * - Titan Image Generator: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html
 * - SD3 / SD3.5 / Stable Image Core and Ultra:
 *   https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-text-image.html
 * - SDXL: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-1-0-text-image.html
 * Replies are built in the documented shapes, around real PNG bytes made here (so a test can decode what the client
 * got and compare it byte for byte).
 */
import { png } from '../helpers/png.js'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'

const int = (minimum: number, maximum: number, extra: Record<string, unknown> = {}) => ({ type: 'integer', minimum, maximum, ...extra })
const str = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength })

function amazonSchema(textMax: number, seedMax: number, side: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['taskType', 'textToImageParams'],
    properties: {
      taskType: { const: 'TEXT_IMAGE' },
      textToImageParams: {
        type: 'object', additionalProperties: false, required: ['text'],
        properties: {
          text: str(textMax), negativeText: str(textMax),
          // Nova Canvas only (Titan v1 has neither): visual styles and a conditioning image.
          style: { enum: ['3D_ANIMATED_FAMILY_FILM', 'DESIGN_SKETCH', 'FLAT_VECTOR_ILLUSTRATION', 'GRAPHIC_NOVEL_ILLUSTRATION', 'MAXIMALISM', 'MIDCENTURY_RETRO', 'PHOTOREALISM', 'SOFT_DIGITAL_PAINTING'] },
          conditionImage: { type: 'string' }, controlMode: { enum: ['CANNY_EDGE', 'SEGMENTATION'] }, controlStrength: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
      imageGenerationConfig: {
        type: 'object', additionalProperties: false,
        properties: {
          numberOfImages: int(1, 5), width: side, height: side, quality: { enum: ['standard', 'premium'] },
          cfgScale: { type: 'number', minimum: 1.1, maximum: 10 }, seed: int(0, seedMax),
        },
      },
    },
  }
}

export const SCHEMAS: Record<'nova' | 'titan' | 'sd3' | 'stable-image' | 'sdxl', Record<string, unknown>> = {
  // Nova: each side 320..4096 px, divisible by 16; seed up to 858,993,459; prompt up to 1,024 characters.
  nova: amazonSchema(1024, 858_993_459, int(320, 4096, { multipleOf: 16 })),
  // Titan: sides from its size list (256..1408 px, multiples of 64 but 1173); seed up to 2,147,483,646; 512 characters.
  titan: amazonSchema(512, 2_147_483_646, int(256, 1408)),
  sd3: {
    type: 'object', additionalProperties: false, required: ['prompt'],
    properties: {
      prompt: str(10_000), mode: { enum: ['text-to-image', 'image-to-image'] },
      aspect_ratio: { enum: ['16:9', '1:1', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'] },
      output_format: { enum: ['jpeg', 'png'] }, seed: int(0, 4_294_967_294), negative_prompt: str(10_000),
    },
  },
  // Core and Ultra: as SD3 with webp output and no mode.
  'stable-image': {
    type: 'object', additionalProperties: false, required: ['prompt'],
    properties: {
      prompt: str(10_000), aspect_ratio: { enum: ['16:9', '1:1', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'] },
      output_format: { enum: ['jpeg', 'png', 'webp'] }, seed: int(0, 4_294_967_294), negative_prompt: str(10_000),
    },
  },
  sdxl: {
    type: 'object', additionalProperties: false, required: ['text_prompts'],
    properties: {
      text_prompts: {
        type: 'array', minItems: 1,
        items: { type: 'object', additionalProperties: false, required: ['text'], properties: { text: str(2000), weight: { type: 'number' } } },
      },
      height: int(128, 1536, { multipleOf: 64 }), width: int(128, 1536, { multipleOf: 64 }), cfg_scale: { type: 'number', minimum: 0, maximum: 35 },
      clip_guidance_preset: { type: 'string' }, sampler: { type: 'string' }, samples: int(1, 1), seed: int(0, 4_294_967_295), steps: int(10, 50),
      style_preset: { enum: ['3d-model', 'analog-film', 'anime', 'cinematic', 'comic-book', 'digital-art', 'enhance', 'fantasy-art', 'isometric', 'line-art', 'low-poly', 'modeling-compound', 'neon-punk', 'origami', 'photographic', 'pixel-art', 'tile-texture'] },
    },
  },
}

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
const compiled = new Map<string, ValidateFunction>()

/** The validator for one family's request body. */
export function imageRequestSchema(family: keyof typeof SCHEMAS): ValidateFunction {
  let v = compiled.get(family)
  if (!v) compiled.set(family, (v = ajv.compile(SCHEMAS[family])))
  return v
}

// ---- PNG bytes --------------------------------------------------------------------------------------------------

export { png }

export const RED = png(255, 0, 0)
export const BLUE = png(0, 0, 255)
export const GREEN = png(0, 255, 0)
export const b64 = (b: Buffer): string => b.toString('base64')

/** Documented reply shapes, around real PNGs. */
export const REPLIES = {
  amazon: (images: Buffer[]) => ({ images: images.map(b64) }),
  stability3: (images: Buffer[]) => ({ seeds: images.map((_, i) => 2130420379 + i), finish_reasons: images.map(() => null), images: images.map(b64) }),
  stability3Filtered: (reason = 'Filter reason: prompt') => ({ finish_reasons: [reason] }),
  sdxl: (images: Buffer[]) => ({ result: 'success', artifacts: images.map((b, i) => ({ seed: 1000 + i, base64: b64(b), finishReason: 'SUCCESS' })) }),
  sdxlFiltered: () => ({ result: 'success', artifacts: [{ seed: 7, base64: b64(GREEN), finishReason: 'CONTENT_FILTERED' }] }),
}

/** The message Nova Canvas and Titan send (HTTP 400 ValidationException) when the prompt or the image is refused. */
export const NOVA_BLOCKED = 'This request has been blocked by our content filters. Our filters automatically flagged this prompt ' +
  'because it may conflict our AUP or AWS Responsible AI Policy. Please adjust your text prompt to submit a new request.'
