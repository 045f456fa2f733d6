/**
 * OpenAI embeddings <-> Ollama `POST /api/embed` (openapi.yaml EmbedRequest / EmbedResponse): `{model, input,
 * dimensions?, truncate?}` in, `{embeddings: [[...]], prompt_eval_count}` out.
 */
import { gatewayError } from '../../core/errors.js'
import type { EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import type { OperationAdapter, ParamMap, ResponseMeta, Target } from '../types.js'
import { applyDeployment } from './chat.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'

/** Ollama embeds text only: OpenAI's token-id inputs (number arrays) have no Ollama form. */
function textInput(value: unknown): unknown {
  if (typeof value === 'string') return value
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value
  throw gatewayError('GW_ERR_VALIDATION', `Invalid 'input': Ollama embeds a string or an array of strings, not token ids.`, { param: 'input' })
}

export const embeddingParams: ParamMap<EmbeddingRequest> = {
  model: { to: 'model', map: (_v, _r, t) => t.model, default: (_r: EmbeddingRequest, t: Target) => t.model },
  input: { to: 'input', required: true, map: textInput },
  dimensions: { to: 'dimensions' },
  // Ollama returns floats; the core encodes them as base64 for a client that asked (embeddingsAsBase64).
  encoding_format: 'drop',
  user: 'unsupported',
  truncate: { to: 'truncate' },
  keep_alive: { to: 'keep_alive' },
  options: { to: 'options' },
}

function response(provider: string, body: unknown, meta: ResponseMeta): EmbeddingResponse {
  const r = body as { embeddings?: unknown; prompt_eval_count?: unknown }
  if (!Array.isArray(r.embeddings)) {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} returned an embeddings response without an \`embeddings\` list`, { provider })
  }
  // Ollama counts every embed call's input; for a server that does not, the input is estimated (UTF-8 bytes / 4, as
  // budgets estimate), so a deployment with a price is not served for free.
  const tokens = typeof r.prompt_eval_count === 'number' ? r.prompt_eval_count : (meta.request ? promptTokensEstimate('embeddings', meta.request) : 0)
  return {
    object: 'list',
    data: r.embeddings.map((embedding: number[], index: number) => ({ object: 'embedding' as const, index, embedding })),
    model: meta.target.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  }
}

export function ollamaEmbeddings(provider: string): OperationAdapter<EmbeddingRequest, EmbeddingResponse> {
  return {
    params: embeddingParams,
    policy: { unknown: 'unsupported' },
    finish(body, _req, target) {
      applyDeployment(body, target)
      return body
    },
    response: (body, meta) => response(provider, body, meta),
  }
}
