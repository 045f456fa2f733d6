/**
 * OpenAI wire types of the media operations: image generation, audio transcription, text to speech and
 * moderations. As in types.ts they describe what the core touches and let unknown fields through. Shapes follow
 * OpenAI's OpenAPI spec (../shared/data/openai/openapi.yaml): CreateImageRequest / ImagesResponse,
 * CreateTranscriptionRequest / CreateTranscriptionResponseJson (and VerboseJson), CreateSpeechRequest,
 * CreateModerationRequest / CreateModerationResponse.
 */
import type { UploadFile } from './upload.js'

export interface ImageGenerationRequest {
  model: string
  prompt: string
  n?: number | null
  /** '1024x1024', '1792x1024', ..., or 'auto' (GPT image models). */
  size?: string | null
  /** 'standard' | 'hd' (dall-e-3), 'low' | 'medium' | 'high' | 'auto' (GPT image models). */
  quality?: string | null
  response_format?: 'url' | 'b64_json' | null
  style?: string | null
  user?: string
  [extra: string]: unknown
}

export interface ImageObject {
  url?: string
  b64_json?: string
  revised_prompt?: string
  [extra: string]: unknown
}

/** GPT image models report tokens (ImageGenUsage): the input's text and image tokens, the output's image tokens. */
export interface ImagesUsage {
  input_tokens: number
  output_tokens: number
  total_tokens: number
  input_tokens_details?: { text_tokens?: number; image_tokens?: number }
  [extra: string]: unknown
}

export interface ImagesResponse {
  created: number
  data: ImageObject[]
  usage?: ImagesUsage
  /** GPT image models: the size and quality actually used ('auto' resolved). */
  size?: string
  quality?: string
  [extra: string]: unknown
}

export type TranscriptionFormat = 'json' | 'text' | 'srt' | 'verbose_json' | 'vtt' | 'diarized_json'

/** A transcription request as the gateway holds it: the multipart form read into fields, the audio as an UploadFile. */
export interface TranscriptionRequest {
  model: string
  file: UploadFile
  language?: string
  prompt?: string
  response_format?: TranscriptionFormat
  temperature?: number
  timestamp_granularities?: Array<'word' | 'segment'>
  include?: string[]
  [extra: string]: unknown
}

/** Models billed by tokens (gpt-4o-transcribe) report tokens; others may report the audio's duration. */
export type TranscriptionUsage =
  | { type: 'tokens'; input_tokens: number; output_tokens: number; total_tokens: number; input_token_details?: { text_tokens?: number; audio_tokens?: number } }
  | { type: 'duration'; seconds: number }

export interface TranscriptionResponse {
  text: string
  language?: string
  /** Seconds of audio (verbose_json). */
  duration?: number
  usage?: TranscriptionUsage
  [extra: string]: unknown
}

export type SpeechFormat = 'mp3' | 'opus' | 'aac' | 'flac' | 'wav' | 'pcm'

export interface SpeechRequest {
  model: string
  /** At most 4096 characters. */
  input: string
  voice: string | { id: string }
  instructions?: string
  response_format?: SpeechFormat
  /** 0.25 to 4. */
  speed?: number
  [extra: string]: unknown
}

/**
 * Speech from a provider whose API answers JSON (base64 audio) rather than audio bytes: its `speech.response()`
 * returns this, and the core sends `audio` with `contentType` as it sends a binary reply.
 */
export interface SpeechAudio {
  contentType: string
  audio: Uint8Array
}

export interface ModerationRequest {
  /** Optional: the gateway picks a moderation model when none is named (core/http/handlers.ts). */
  model?: string
  input: string | string[] | Array<Record<string, unknown>>
  [extra: string]: unknown
}

export interface ModerationResult {
  flagged: boolean
  categories: Record<string, boolean>
  category_scores: Record<string, number>
  [extra: string]: unknown
}

export interface ModerationResponse {
  id: string
  model: string
  results: ModerationResult[]
  [extra: string]: unknown
}
