/**
 * Image-generation replies of Google's two image APIs, for the unit and gateway tests of images on Gemini and Vertex
 * AI. No Imagen traffic is recorded in ../shared/data/gemini, so:
 * - the Imagen `:predict` reply is written from Google's documented shape (PredictResponse in the Gemini spec,
 *   `predictions[]` of `{mimeType, bytesBase64Encoded, prompt?}` or `{raiFilteredReason}`:
 *   https://ai.google.dev/gemini-api/docs/imagen, https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api);
 * - the Gemini image model's `:generateContent` reply is the recorded generateContent answer (REC.generate) with its
 *   text part replaced by an `inlineData` image part and its usage by an image call's (1290 output image tokens is
 *   what one 1024px gemini-2.5-flash-image image costs, https://ai.google.dev/gemini-api/docs/image-generation).
 * The images are real PNGs made here (one pixel of a given colour), so a test can compare bytes end to end.
 */
import { png } from '../helpers/png.js'
import { recording, REC } from './google-fixtures.js'

export { png }

export const RED = png(255, 0, 0)
export const BLUE = png(0, 0, 255)

/** Imagen `:predict` answer: one prediction per image, optionally with the rewritten prompt. */
export function imagenReply(images: Buffer[], revised?: string): Record<string, unknown> {
  return {
    predictions: images.map((img) => ({
      mimeType: 'image/png',
      ...(revised ? { prompt: revised } : {}),
      bytesBase64Encoded: img.toString('base64'),
    })),
  }
}

/** Imagen with include_rai_reason when every image was filtered (Vertex's wording for a person filter). */
export const IMAGEN_FILTERED = {
  predictions: [{
    raiFilteredReason: "Your request resulted in one or more images that contained people. They are filtered out because you selected the 'Don't allow' option for Person Generation. Support codes: 39322892",
  }],
}

/** Imagen's 400 for a prompt its safety filter refused (wording reported by users of imagegeneration@005). */
export const IMAGEN_BLOCKED_400 = {
  error: {
    code: 400,
    message: 'Image generation failed with the following error: The response is blocked, as it may violate our policies. If you believe this is an error, please send feedback to your account team. Error Code: 58061214',
    status: 'INVALID_ARGUMENT',
  },
}

/** Usage of one gemini-2.5-flash-image image from a 7-token prompt. */
export const IMAGE_USAGE = {
  promptTokenCount: 7,
  candidatesTokenCount: 1290,
  totalTokenCount: 1297,
  promptTokensDetails: [{ modality: 'TEXT', tokenCount: 7 }],
  candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1290 }],
}

/** The recorded generateContent answer, turned into a Gemini image model's: a short text part, then the image. */
export function geminiImageReply(image: Buffer, over: Record<string, unknown> = {}): Record<string, any> {
  const recorded = structuredClone(recording(REC.generate)[0]!.response.bodySegments[0]) as Record<string, any>
  const candidate = recorded.candidates[0]
  candidate.content.parts = [{ text: 'Here is the lighthouse you asked for.' }, { inlineData: { mimeType: 'image/png', data: image.toString('base64') } }]
  candidate.finishReason = 'STOP'
  recorded.modelVersion = 'gemini-2.5-flash-image'
  recorded.usageMetadata = IMAGE_USAGE
  return { ...recorded, ...over }
}
