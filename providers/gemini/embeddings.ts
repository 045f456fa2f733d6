/**
 * OpenAI embeddings -> Gemini `:batchEmbedContents` (one call for a list input): each input string is one
 * EmbedContentRequest `{model: 'models/<id>', content: {parts: [{text}]}}`, `dimensions` -> outputDimensionality,
 * LiteLLM's `task_type` -> taskType. The answer `{embeddings: [{values}]}` keeps the input order.
 * Spec: ../shared/data/gemini/openapi.v1beta.json, BatchEmbedContentsRequest / BatchEmbedContentsResponse.
 */
import { gatewayError } from '../../core/errors.js'
import type { EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import type { OperationAdapter, ResponseMeta } from '../types.js'
import { GEMINI_POLICY } from './params.js'

/** The input as a list of strings; token-id input (number arrays) has no Gemini equivalent. */
export function inputTexts(input: unknown): string[] {
  if (typeof input === 'string') return [input]
  if (Array.isArray(input) && input.every((s) => typeof s === 'string')) return input as string[]
  throw gatewayError('GW_ERR_VALIDATION', "Invalid 'input': Google embedding models take a string or a list of strings, not token ids.", { param: 'input' })
}

/** The model's resource name: `models/<id>`, or a tuned model's own name. */
export function resourceName(model: string): string {
  return model.startsWith('models/') || model.startsWith('tunedModels/') ? model : `models/${model}`
}

export const geminiEmbeddings: OperationAdapter<EmbeddingRequest, EmbeddingResponse> = {
  params: {
    model: 'drop', // in the URL, and per request below
    input: { to: 'requests', required: true, map: (v: unknown) => inputTexts(v).map((text) => ({ content: { parts: [{ text }] } })) },
    // Read by finish(): they apply to every request of the batch.
    dimensions: 'drop',
    task_type: 'drop',
    // The core turns floats into base64 itself when a client asks for it.
    encoding_format: 'drop',
  },
  policy: GEMINI_POLICY,
  finish(body, req, target) {
    const model = resourceName(target.model)
    for (const r of body.requests as Array<Record<string, unknown>>) {
      r.model = model
      if (typeof req.dimensions === 'number') r.outputDimensionality = req.dimensions
      if (typeof req.task_type === 'string') r.taskType = req.task_type
    }
    return body
  },
  response(body, meta) {
    const list = (body as { embeddings?: Array<{ values?: number[] }> }).embeddings
    if (!Array.isArray(list)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${meta.target.provider} returned an embeddings response without \`embeddings\``, { provider: meta.target.provider })
    }
    const prompt = estimatedTokens(meta)
    return {
      object: 'list',
      data: list.map((e, index) => ({ object: 'embedding' as const, index, embedding: e.values ?? [] })),
      model: meta.target.model,
      usage: { prompt_tokens: prompt, total_tokens: prompt },
    }
  },
}

/** batchEmbedContents reports no token counts: the input (`meta.request`) is estimated as budgets estimate it. */
function estimatedTokens(meta: ResponseMeta): number {
  return meta.request ? promptTokensEstimate('embeddings', meta.request) : 0
}
