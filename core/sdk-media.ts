/**
 * The SDK's media functions: image generation, transcription, speech and moderation, through the same engine as
 * completion() (sdk.ts run): providers, validation, retries, pricing. Results are OpenAI's shapes, as the openai
 * package returns them: speech a fetch Response streaming the audio, a text/srt/vtt transcription a string.
 */
import { gatewayError } from './errors.js'
import type {
  ImageGenerationRequest, ImagesResponse, ModerationRequest, ModerationResponse, SpeechRequest, TranscriptionRequest,
  TranscriptionResponse,
} from './openai/types.js'
import { toUpload, type Uploadable } from './openai/upload.js'
import { asInputError, hideParams, run, type CallOptions, type Runner } from './sdk.js'

export type ImageGenerationParams = ImageGenerationRequest & CallOptions
/**
 * `file`: the audio as bytes, a Blob or File (`toFile()` from the openai package fits), a readable stream
 * (fs.createReadStream) or an UploadFile; `filename` names it when the value carries no name (the provider reads
 * the format from the name's extension; without either, one is made from the bytes' format).
 */
export type TranscriptionParams = Omit<TranscriptionRequest, 'file'> & { file: Uploadable; filename?: string } & CallOptions
export type SpeechParams = SpeechRequest & CallOptions
/** `model` defaults to OpenAI's `omni-moderation-latest`. */
export type ModerationParams = ModerationRequest & CallOptions

/** OpenAI's default moderation model (the proxy's default too). */
const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest'

/** Image generation; the reply as the provider gave it (`data` of URLs or b64_json), GPT image models' usage included. */
export function imageGeneration(params: ImageGenerationParams): Promise<ImagesResponse> {
  return imageGenerationOn(run, params)
}

async function imageGenerationOn(run: Runner, params: ImageGenerationParams): Promise<ImagesResponse> {
  const { result } = await run('images', params)
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'imageGeneration() got no JSON reply')
  return result.body as ImagesResponse
}

/**
 * Speech to text. JSON formats (json, verbose_json, diarized_json) give the transcription object; text, srt and vtt
 * give the text itself, as the openai package does.
 */
export function transcription(params: TranscriptionParams & { response_format: 'text' | 'srt' | 'vtt' }): Promise<string>
export function transcription(params: TranscriptionParams & { response_format?: 'json' | 'verbose_json' | 'diarized_json' }): Promise<TranscriptionResponse>
export function transcription(params: TranscriptionParams): Promise<TranscriptionResponse | string>
export function transcription(params: TranscriptionParams): Promise<TranscriptionResponse | string> {
  return transcriptionOn(run, params)
}

async function transcriptionOn(run: Runner, params: TranscriptionParams): Promise<TranscriptionResponse | string> {
  let request: Record<string, unknown>
  try {
    if (params === null || typeof params !== 'object') throw new TypeError('expected one object of parameters')
    const { file, filename, ...rest } = params
    if (file === undefined || file === null) {
      throw gatewayError('GW_ERR_VALIDATION', "Missing required parameter: 'file'.", { param: 'file', openaiCode: 'missing_required_parameter' })
    }
    request = { ...rest, file: await toUpload(file, filename) }
  } catch (err) {
    throw asInputError(err, 'transcription')
  }
  const { result } = await run('transcription', request)
  if (result.kind === 'json') return result.body as TranscriptionResponse
  if (result.kind !== 'binary') throw gatewayError('GW_ERR_INTERNAL', 'transcription() got a stream')
  const parts: Buffer[] = []
  for await (const c of result.chunks) parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength))
  return Buffer.concat(parts).toString('utf8')
}

/**
 * Text to speech. Returns a fetch `Response` whose body streams the audio as the provider sends it, with its
 * `content-type`, as the openai package's `audio.speech.create()` does: `Buffer.from(await r.arrayBuffer())`, or
 * read `r.body` as it arrives. `_hidden_params` (non-enumerable) carries the cost.
 */
export function speech(params: SpeechParams): Promise<Response> {
  return speechOn(run, params)
}

async function speechOn(run: Runner, params: SpeechParams): Promise<Response> {
  const { result, hidden } = await run('speech', params)
  if (result.kind !== 'binary') throw gatewayError('GW_ERR_INTERNAL', 'speech() got no audio')
  const it = result.chunks[Symbol.asyncIterator]()
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const step = await it.next()
      if (step.done) controller.close()
      else controller.enqueue(step.value)
    },
    async cancel() {
      await it.return?.(undefined)
    },
  })
  const response = new Response(body, { status: 200, headers: { 'content-type': result.contentType } })
  if (hidden) hideParams(response, hidden)
  return response
}

/** Content moderation; `model` defaults to `omni-moderation-latest` (OpenAI). */
export function moderation(params: ModerationParams): Promise<ModerationResponse> {
  return moderationOn(run, params)
}

async function moderationOn(run: Runner, params: ModerationParams): Promise<ModerationResponse> {
  const given = params && typeof params === 'object' ? params : ({} as ModerationParams)
  const withModel = given.model ? given : { ...given, model: DEFAULT_MODERATION_MODEL }
  const { result } = await run('moderations', params && typeof params === 'object' ? withModel : params)
  if (result.kind !== 'json') throw gatewayError('GW_ERR_INTERNAL', 'moderation() got no JSON reply')
  return result.body as ModerationResponse
}

/** The media functions on another engine (a Router's). */
export function mediaFunctions(run: Runner): {
  imageGeneration(params: ImageGenerationParams): Promise<ImagesResponse>
  transcription(params: TranscriptionParams): Promise<TranscriptionResponse | string>
  speech(params: SpeechParams): Promise<Response>
  moderation(params: ModerationParams): Promise<ModerationResponse>
} {
  return {
    imageGeneration: (p) => imageGenerationOn(run, p),
    transcription: (p) => transcriptionOn(run, p),
    speech: (p) => speechOn(run, p),
    moderation: (p) => moderationOn(run, p),
  }
}
