/**
 * The Amazon Bedrock adapter: LiteLLM's `bedrock/` models (plain ids, `converse/` and `invoke/` routes,
 * cross-region inference profiles such as `us.anthropic.claude-3-5-sonnet-20241022-v2:0`, and ARNs) over the
 * Bedrock Runtime Converse API; embeddings and image generation over InvokeModel.
 *
 *   chat        POST {endpoint}/model/{modelId}/converse         (JSON)
 *   chat stream POST {endpoint}/model/{modelId}/converse-stream  (application/vnd.amazon.eventstream)
 *   embeddings  POST {endpoint}/model/{modelId}/invoke
 *   images      POST {endpoint}/model/{modelId}/invoke           (Nova Canvas, Titan Image, Stability: images.ts)
 *
 * Endpoint and region: endpoint.ts; SigV4 or a Bedrock API key: sign.ts; request mapping: chat.ts + messages.ts;
 * response: response.ts; stream framing: eventstream.ts; stream translation: stream.ts; errors: errors.ts.
 * The `invoke/` route is served by Converse too: one wire format for every model family, as Bedrock recommends.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_Operations_Amazon_Bedrock_Runtime.html
 */
import type { Operation, ProviderAdapter, ProviderRequest, Target } from '../types.js'
import { chatParams, finishChat } from './chat.js'
import { embeddings } from './embeddings.js'
import { ENV_REGION_PARAM, endpointOf } from './endpoint.js'
import { bedrockError } from './errors.js'
import { BedrockEventDecoder } from './eventstream.js'
import { finishImages, imageParams } from './images.js'
import { imagesResponse } from './images-response.js'
import { chatResponse } from './response.js'
import { authorize } from './sign.js'
import { BedrockStream } from './stream.js'

const JSON_TYPE = 'application/json'
const EVENT_STREAM_TYPE = 'application/vnd.amazon.eventstream'

function request(op: Operation, target: Target, stream: boolean): ProviderRequest {
  const e = endpointOf(target)
  const action = op === 'embeddings' || op === 'images' ? 'invoke' : stream ? 'converse-stream' : 'converse'
  const headers: Record<string, string> = { 'content-type': JSON_TYPE, accept: stream ? EVENT_STREAM_TYPE : JSON_TYPE }
  for (const k in target.extraHeaders) headers[k.toLowerCase()] = target.extraHeaders[k]!
  return { url: `${e.base}${e.modelPath}/${action}`, headers }
}

export const bedrock: ProviderAdapter = {
  name: 'bedrock',
  operations: new Set<Operation>(['chat', 'embeddings', 'images']),
  env: {
    // A Bedrock API key, sent as a bearer token instead of SigV4 (LiteLLM reads the same variable).
    apiKey: ['AWS_BEARER_TOKEN_BEDROCK'],
    params: {
      aws_access_key_id: ['AWS_ACCESS_KEY_ID'],
      aws_secret_access_key: ['AWS_SECRET_ACCESS_KEY'],
      aws_session_token: ['AWS_SESSION_TOKEN'],
      aws_bedrock_runtime_endpoint: ['AWS_BEDROCK_RUNTIME_ENDPOINT'],
      [ENV_REGION_PARAM]: ['AWS_REGION_NAME', 'AWS_REGION'],
    },
  },
  request,
  authorize: (req, body, target) => authorize(req, body, target),
  chat: {
    params: chatParams,
    finish: (body, req, target) => finishChat(body, req, target),
    decoder: () => new BedrockEventDecoder(),
    response: chatResponse,
    stream: (req, meta) => new BedrockStream(req, meta),
  },
  embeddings,
  images: {
    params: imageParams,
    // Bedrock's own knobs are named in the map; anything else is a param these models lack.
    policy: { unknown: 'unsupported' },
    finish: (body, req, target) => finishImages(body, req, target),
    response: imagesResponse,
  },
  error: bedrockError,
}
