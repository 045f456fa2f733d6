/**
 * OpenAI embeddings <-> Mistral `POST /v1/embeddings` (openapi.json EmbeddingRequest / EmbeddingResponse):
 * mistral-embed, and codestral-embed whose width is `output_dimension` (OpenAI's `dimensions`, as LiteLLM maps it).
 * The request object is closed, so `user` and token-id input are refused here rather than with Mistral's 422.
 */
import { gatewayError } from '../../core/errors.js'
import type { EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import type { OperationAdapter, ParamMap, ResponseMeta, Target } from '../types.js'

function textInput(value: unknown): unknown {
  if (typeof value === 'string') return value
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value
  throw gatewayError('GW_ERR_VALIDATION', `Invalid 'input': Mistral embeds a string or an array of strings, not token ids.`, { param: 'input' })
}

export const embeddingParams: ParamMap<EmbeddingRequest> = {
  model: { to: 'model', map: (_v, _r, t) => t.model, default: (_r: EmbeddingRequest, t: Target) => t.model },
  input: { to: 'input', required: true, map: textInput },
  dimensions: { to: 'output_dimension' },
  // Floats are asked for: the core encodes them as OpenAI's float32 base64 for a client that wants base64
  // (embeddingsAsBase64); Mistral's own base64 is not documented to be that layout.
  encoding_format: 'drop',
  user: 'unsupported',
  output_dimension: { to: 'output_dimension' },
  output_dtype: { to: 'output_dtype' },
}

function response(body: unknown, meta: ResponseMeta): EmbeddingResponse {
  const b = body as { data?: unknown; usage?: { prompt_tokens?: unknown; total_tokens?: unknown } }
  if (!Array.isArray(b.data)) {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', 'mistral returned an embeddings response without a `data` list', { provider: 'mistral' })
  }
  const prompt = typeof b.usage?.prompt_tokens === 'number' ? b.usage.prompt_tokens : 0
  return {
    object: 'list',
    data: b.data.map((d: { index?: unknown; embedding: number[] }, i: number) => ({
      object: 'embedding' as const,
      index: typeof d.index === 'number' ? d.index : i,
      embedding: d.embedding,
    })),
    model: meta.target.model,
    usage: { prompt_tokens: prompt, total_tokens: typeof b.usage?.total_tokens === 'number' ? b.usage.total_tokens : prompt },
  }
}

export const embeddings: OperationAdapter<EmbeddingRequest, EmbeddingResponse> = {
  params: embeddingParams,
  policy: { unknown: 'unsupported' },
  response,
}
