/**
 * Legacy text completions (/v1/completions) over chat-only providers: prompt -> one user message, and the chat
 * answer back into `text_completion` objects, as LiteLLM does for providers without a completions endpoint.
 */
import type { ChatChunk, ChatCompletion, TextCompletion } from './types.js'

export function textToChatRequest(req: Record<string, unknown>): Record<string, unknown> {
  const { prompt, echo: _echo, best_of: _bestOf, suffix: _suffix, ...rest } = req
  const text = Array.isArray(prompt) ? prompt.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('\n') : String(prompt ?? '')
  return { ...rest, messages: [{ role: 'user', content: text }] }
}

export function chatToText(res: ChatCompletion): TextCompletion {
  return {
    id: res.id,
    object: 'text_completion',
    created: res.created,
    model: res.model,
    choices: res.choices.map((c) => ({ index: c.index, text: c.message.content ?? '', finish_reason: c.finish_reason, logprobs: null })),
    ...(res.usage ? { usage: res.usage } : {}),
  }
}

export function chatChunkToText(chunk: ChatChunk): TextCompletion {
  return {
    id: chunk.id,
    object: 'text_completion',
    created: chunk.created,
    model: chunk.model,
    choices: chunk.choices.map((c) => ({ index: c.index, text: c.delta.content ?? '', finish_reason: c.finish_reason, logprobs: null })),
    ...(chunk.usage ? { usage: chunk.usage } : {}),
  }
}
