/**
 * OpenAI embeddings over Bedrock InvokeModel (`POST /model/{id}/invoke`), for the families LiteLLM serves there:
 * - Amazon Titan text (amazon.titan-embed-text-v1 / -v2:0, amazon.titan-embed-g1-text-02) and Titan multimodal
 *   (amazon.titan-embed-image-v1, text input): one text per call, `{inputText}`; `dimensions` is `dimensions` on v2
 *   and `embeddingConfig.outputEmbeddingLength` on the image model. Answer `{embedding, inputTextTokenCount}`.
 * - Cohere (cohere.embed-english-v3, -multilingual-v3, -v4): `{texts, input_type}`, `input_type` defaulting to
 *   `search_document` as in LiteLLM; `dimensions` is v4's `output_dimension`. Answer `{embeddings}` (a list, or
 *   `{float: [...]}` when embedding types were asked for).
 * Vectors come back as floats; the core encodes them when the client asked for base64.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html,
 * https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html
 */
import { gatewayError } from '../../core/errors.js'
import type { EmbeddingRequest, EmbeddingResponse } from '../../core/openai/types.js'
import type { OperationAdapter, ParamMap, ResponseMeta, Target } from '../types.js'
import { endpointOf } from './endpoint.js'

type Family = 'titan-v1' | 'titan-v2' | 'titan-image' | 'cohere' | 'cohere-v4' | null

/** Cohere's answer carries no token count (InvokeModel puts it in a header): estimated at 4 characters a token. */
const CHARS_PER_TOKEN = 4

function family(t: Target): Family {
  const m = endpointOf(t).baseModel
  if (m.startsWith('amazon.titan-embed-text-v2')) return 'titan-v2'
  if (m.startsWith('amazon.titan-embed-text') || m.startsWith('amazon.titan-embed-g1-text')) return 'titan-v1'
  if (m.startsWith('amazon.titan-embed-image')) return 'titan-image'
  if (m.startsWith('cohere.embed-v4')) return 'cohere-v4'
  if (m.startsWith('cohere.embed')) return 'cohere'
  return null
}

const isCohere = (f: Family): boolean => f === 'cohere' || f === 'cohere-v4'
/** Families with an output-size setting (named differently in each). */
const SIZED: ReadonlySet<Family> = new Set<Family>(['titan-v2', 'titan-image', 'cohere-v4'])

function unsupported(t: Target, param: string): undefined {
  if (t.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${t.provider} does not support parameters: ${param}, for model=${t.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param })
}

function textList(v: unknown): string[] {
  const list = typeof v === 'string' ? [v] : v
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string')) {
    throw gatewayError('GW_ERR_VALIDATION', 'bedrock embeddings take input as a string or a list of strings (not token ids)', { param: 'input' })
  }
  return list as string[]
}

/**
 * Titan embeds one text per InvokeModel call. The core makes one upstream call per request, so a list of several
 * is refused rather than cut short; LiteLLM loops over the list.
 */
function oneText(v: unknown): string {
  const list = textList(v)
  if (list.length !== 1) {
    throw gatewayError('GW_ERR_VALIDATION', `bedrock Titan embedding models take one input per request (got ${list.length})`, { param: 'input' })
  }
  return list[0]!
}

const params: ParamMap<EmbeddingRequest> = {
  model: 'drop', // in the URL
  encoding_format: 'drop', // the core turns floats into base64 when asked
  input: [
    { to: 'inputText', map: (v, _r, t) => (isCohere(family(t)) ? undefined : oneText(v)) },
    { to: 'texts', map: (v, _r, t) => (isCohere(family(t)) ? textList(v) : undefined) },
  ],
  dimensions: [
    { to: 'dimensions', map: (v, _r, t) => (family(t) === 'titan-v2' ? v : undefined) },
    { to: 'embeddingConfig.outputEmbeddingLength', map: (v, _r, t) => (family(t) === 'titan-image' ? v : undefined) },
    { to: 'output_dimension', map: (v, _r, t) => (family(t) === 'cohere-v4' ? v : undefined) },
    { to: 'dimensions', map: (_v, _r, t) => (SIZED.has(family(t)) ? undefined : unsupported(t, 'dimensions')) },
  ],
  input_type: { to: 'input_type', map: (v, _r, t) => (isCohere(family(t)) ? v : unsupported(t, 'input_type')) },
  user: 'unsupported',
}

function finish(body: Record<string, unknown>, _req: EmbeddingRequest, target: Target): Record<string, unknown> {
  const f = family(target)
  if (f === null) {
    throw gatewayError('GW_ERR_UNSUPPORTED_OPERATION',
      `bedrock embeddings support amazon.titan-embed-* and cohere.embed-* models, not ${target.model}`, { param: 'model' })
  }
  if (isCohere(f) && body.input_type === undefined) body.input_type = 'search_document'
  return body
}

function bad(what: string): never {
  throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `bedrock returned an embedding response without ${what}`, { provider: 'bedrock' })
}

function response(body: unknown, meta: ResponseMeta): EmbeddingResponse {
  const b = body as { embedding?: unknown; inputTextTokenCount?: unknown; embeddings?: unknown; texts?: unknown }
  const model = meta.target.model
  if (!isCohere(family(meta.target))) {
    if (!Array.isArray(b.embedding)) bad('`embedding`')
    const tokens = typeof b.inputTextTokenCount === 'number' ? b.inputTextTokenCount : 0
    return {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: b.embedding as number[] }],
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    }
  }
  const e = b.embeddings
  const vectors = Array.isArray(e) ? e : (e as { float?: unknown } | undefined)?.float
  if (!Array.isArray(vectors)) bad('`embeddings`')
  let chars = 0
  if (Array.isArray(b.texts)) for (const t of b.texts) if (typeof t === 'string') chars += t.length
  const tokens = Math.ceil(chars / CHARS_PER_TOKEN)
  return {
    object: 'list',
    data: (vectors as number[][]).map((embedding, index) => ({ object: 'embedding' as const, index, embedding })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  }
}

export const embeddings: OperationAdapter<EmbeddingRequest, EmbeddingResponse> = {
  params,
  policy: { unknown: 'unsupported' },
  finish,
  response,
}
