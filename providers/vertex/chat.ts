/**
 * Chat on Vertex AI serves two wire formats behind one provider name: Gemini models (generateContent, the Gemini
 * translation) and Claude models (`claude-*`, Anthropic's Messages body through rawPredict). The core holds one
 * chat operation per adapter and calls it without the target except in finish() / response() / stream(), so this
 * operation takes the request through as given (only the gateway's own fields are stripped by the core) and, in
 * finish(), applies the param map of the model's format; response and stream pick the same way.
 */
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import { applyParamMap } from '../param-map.js'
import type { OperationAdapter, Target } from '../types.js'

type ChatOp = OperationAdapter<ChatRequest, ChatCompletion, ChatChunk>

/** Vertex model ids for Anthropic's models start with `claude` (`claude-sonnet-4@20250514`). */
export function isClaude(model: string): boolean {
  return model.startsWith('claude')
}

export function vertexChat(gemini: ChatOp, claude: ChatOp): ChatOp {
  const pick = (t: Target) => (isClaude(t.model) ? claude : gemini)
  return {
    // Everything passes here; the chosen format's map decides in finish() (unsupported params included).
    params: {},
    policy: { unknown: 'pass' },
    finish(body, req, target, stream) {
      const op = pick(target)
      const mapped = applyParamMap(body as ChatRequest, op.params, target, op.policy)
      return op.finish ? op.finish(mapped, req, target, stream) : mapped
    },
    response: (body, meta) => pick(meta.target).response(body, meta),
    stream: (req, meta) => pick(meta.target).stream!(req, meta),
  }
}
