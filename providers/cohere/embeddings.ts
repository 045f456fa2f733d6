/**
 * OpenAI embeddings <-> Cohere v2 embed (POST /v2/embed, https://docs.cohere.com/reference/embed).
 * Request: `input` -> `texts` (or `images` with input_type 'image' when every input is an image data URL, as
 * LiteLLM sends base64 images); `input_type` defaults to 'search_document' (LiteLLM's default, required by v3+
 * models) and a client's own `input_type` wins; `dimensions` -> `output_dimension`. Floats are always asked for:
 * the core turns them into base64 for `encoding_format: 'base64'`, as for every float-only provider.
 * Response: `embeddings.float[i]` -> `data[i]`; usage from `meta.billed_units` (input_tokens + image_tokens, what
 * LiteLLM reads), else `meta.tokens.input_tokens`.
 */
import { gatewayError } from '../../core/errors.js'
import type { EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import type { ParamMap, ResponseMeta, Target } from '../types.js'
import { cohereModel, dropNulls } from './chat.js'

/** Cohere's documented default for embedding models v3 and later, and LiteLLM's. */
const DEFAULT_INPUT_TYPE = 'search_document'
const DATA_IMAGE = 'data:image/'

function inputs(v: unknown, target: Target): string[] {
  const list = typeof v === 'string' ? [v] : v
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string')) {
    // Token-id arrays (number[] / number[][]) are OpenAI-only: Cohere embeds text.
    throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', `${target.provider} embeds text only: 'input' must be a string or a list of strings.`, { param: 'input' })
  }
  return list as string[]
}

export const embeddingParams: ParamMap<EmbeddingRequest> = {
  model: { to: 'model', map: (_v, _r, t) => cohereModel(t), default: (_r: EmbeddingRequest, t: Target) => cohereModel(t) },
  input: { to: 'texts', required: true, map: (v, _r, t) => inputs(v, t) },
  // Floats always (see above); the core encodes base64 for the client.
  encoding_format: 'drop',
  dimensions: { to: 'output_dimension' },
  input_type: { to: 'input_type' },
  truncate: { to: 'truncate' },
  user: 'unsupported',
}

/** Image data URLs go in `images` with input_type 'image'; text gets the default input_type; floats always. */
export function finishEmbeddings(body: Record<string, unknown>): Record<string, unknown> {
  dropNulls(body)
  const texts = body.texts as string[]
  const images = texts.every((s) => s.startsWith(DATA_IMAGE))
  if (images) {
    body.images = texts
    delete body.texts
  }
  body.input_type ??= images ? 'image' : DEFAULT_INPUT_TYPE
  body.embedding_types = ['float']
  return body
}

interface CohereEmbed {
  embeddings?: { float?: unknown } | unknown[]
  meta?: { billed_units?: { input_tokens?: unknown; image_tokens?: unknown }; tokens?: { input_tokens?: unknown } }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

export function fromCohereEmbed(provider: string, body: unknown, meta: ResponseMeta): EmbeddingResponse {
  const b = body as CohereEmbed
  // v2 answers embeddings by type; an `embeddings_floats` reply (v1 style) is the float list itself.
  const floats = Array.isArray(b.embeddings) ? b.embeddings : (b.embeddings as { float?: unknown } | undefined)?.float
  if (!Array.isArray(floats)) {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned an embed response without float embeddings`, { provider })
  }
  const billed = b.meta?.billed_units
  const text = num(billed?.input_tokens)
  const images = num(billed?.image_tokens)
  const prompt = text !== undefined || images !== undefined ? (text ?? 0) + (images ?? 0) : num(b.meta?.tokens?.input_tokens) ?? 0
  return {
    object: 'list',
    data: floats.map((embedding, index) => ({ object: 'embedding' as const, index, embedding: embedding as number[] })),
    model: meta.target.model,
    usage: { prompt_tokens: prompt, total_tokens: prompt },
  }
}
