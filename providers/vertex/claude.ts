/**
 * Claude on Vertex AI: the Anthropic Messages translation (providers/anthropic, the declared base for these
 * models), sent to `publishers/anthropic/models/{model}:rawPredict` (`:streamRawPredict` for streams). Vertex takes
 * the model from the URL and the API version from the body: `model` is removed and
 * `anthropic_version: "vertex-2023-10-16"` added (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude).
 * Errors raised by Anthropic's side keep Anthropic's shape (`{"type":"error","error":{...}}`); Vertex's own (auth,
 * quota, unknown model) are Google's.
 */
import type { GatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import { anthropicChat, anthropicError } from '../anthropic/index.js'
import { geminiError } from '../gemini/index.js'
import type { OperationAdapter } from '../types.js'

export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16'

export const vertexClaudeChat: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> = {
  ...anthropicChat,
  finish(body, req, target, stream) {
    const out = anthropicChat.finish ? anthropicChat.finish(body, req, target, stream) : body
    delete out.model
    out.anthropic_version = VERTEX_ANTHROPIC_VERSION
    return out
  },
}

/** An error body in Anthropic's shape goes to Anthropic's mapping; anything else is Google's. */
export function vertexError(provider: string, status: number, body: unknown, headers: Record<string, string | string[] | undefined>): GatewayError {
  if (body && typeof body === 'object' && (body as { type?: unknown }).type === 'error') return anthropicError(provider, status, body, headers)
  return geminiError(provider, status, body, headers)
}
