/**
 * OpenAI embeddings -> Vertex AI text embeddings (`:predict`, https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api):
 * one instance `{content}` per input string (LiteLLM's `task_type` / `title` go on each instance), `dimensions` ->
 * `parameters.outputDimensionality`. The answer's `predictions[].embeddings` carry `values` and the token count
 * (`statistics.token_count`), summed into usage.
 */
import { gatewayError } from '../../core/errors.js'
import type { EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import { inputTexts } from '../gemini/index.js'
import type { OperationAdapter } from '../types.js'

interface Prediction {
  embeddings?: { values?: number[]; statistics?: { token_count?: number } }
}

export const vertexEmbeddings: OperationAdapter<EmbeddingRequest, EmbeddingResponse> = {
  params: {
    model: 'drop', // in the URL
    input: { to: 'instances', required: true, map: (v: unknown) => inputTexts(v).map((content) => ({ content })) },
    dimensions: { to: 'parameters.outputDimensionality' },
    auto_truncate: { to: 'parameters.autoTruncate' },
    // Read by finish(): they apply to every instance.
    task_type: 'drop',
    title: 'drop',
    // The core turns floats into base64 itself when a client asks for it.
    encoding_format: 'drop',
  },
  policy: { unknown: 'unsupported' },
  finish(body, req) {
    if (typeof req.task_type === 'string' || typeof req.title === 'string') {
      for (const inst of body.instances as Array<Record<string, unknown>>) {
        if (typeof req.task_type === 'string') inst.task_type = req.task_type
        if (typeof req.title === 'string') inst.title = req.title
      }
    }
    return body
  },
  response(body, meta) {
    const predictions = (body as { predictions?: Prediction[] }).predictions
    if (!Array.isArray(predictions)) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${meta.target.provider} returned an embeddings response without \`predictions\``, { provider: meta.target.provider })
    }
    let tokens = 0
    const data = predictions.map((p, index) => {
      const count = p.embeddings?.statistics?.token_count
      if (typeof count === 'number') tokens += count
      return { object: 'embedding' as const, index, embedding: p.embeddings?.values ?? [] }
    })
    return { object: 'list', data, model: meta.target.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }
  },
}
