/**
 * An Anthropic Message -> an OpenAI ChatCompletion, as LiteLLM reports it (AnthropicConfig.transform_parsed_response):
 * text blocks joined into `content`, `tool_use` blocks as `tool_calls` (arguments as a JSON string), thinking blocks
 * as `reasoning_content` plus `thinking_blocks`, the stop reason mapped, and usage with the prompt caches.
 *
 * Usage: Anthropic's `input_tokens` excludes both cache reads and cache writes; OpenAI's `prompt_tokens` is the
 * whole input. So prompt_tokens = input + cache_read + cache_creation, cached_tokens = cache_read, and
 * `cache_creation_input_tokens` / `cache_read_input_tokens` are kept beside them as LiteLLM does (the spend code
 * prices cache writes from that field). Anthropic does not count thinking tokens apart from the output; they are
 * estimated from the thinking text (LiteLLM counts them with a tokenizer) and never exceed completion_tokens.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/openai/types.js'
import { estimateTextsTokens } from '../../core/pricing/tokens.js'
import type { ResponseMeta } from '../types.js'
import { JSON_TOOL_NAME } from './tools.js'

export interface AnthropicUsage {
  input_tokens?: number | null
  output_tokens?: number | null
  cache_creation_input_tokens?: number | null
  cache_read_input_tokens?: number | null
}

/** Anthropic stop_reason -> OpenAI finish_reason. */
const FINISH: Readonly<Record<string, FinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
}

export function finishReason(stopReason: unknown): FinishReason {
  return (typeof stopReason === 'string' && FINISH[stopReason]) || 'stop'
}

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0)

/** Anthropic usage (+ the thinking text, for the reasoning estimate) -> OpenAI usage. */
export function toUsage(u: AnthropicUsage | null | undefined, thinking: string): Usage {
  const cacheRead = n(u?.cache_read_input_tokens)
  const cacheWrite = n(u?.cache_creation_input_tokens)
  const prompt = n(u?.input_tokens) + cacheRead + cacheWrite
  const completion = n(u?.output_tokens)
  const usage: Usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead },
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
  }
  if (thinking) usage.completion_tokens_details = { reasoning_tokens: Math.min(completion, estimateTextsTokens([thinking])) }
  return usage
}

/**
 * JSON mode's answer: the one `json_tool_call` call's arguments become the content (unwrapping a `values` key, as
 * LiteLLM does). Recognised by the tool name alone, since the response side does not see the request.
 */
export function jsonModeContent(toolCalls: readonly ToolCall[]): string | null {
  if (toolCalls.length !== 1 || toolCalls[0]!.function.name !== JSON_TOOL_NAME) return null
  const args = toolCalls[0]!.function.arguments
  try {
    const v = JSON.parse(args) as unknown
    if (v && typeof v === 'object' && !Array.isArray(v) && (v as { values?: unknown }).values !== undefined) {
      return JSON.stringify((v as { values: unknown }).values)
    }
  } catch {
    // not JSON: the text as the model wrote it
  }
  return args
}

interface ContentBlock {
  type?: string
  text?: string
  id?: string
  name?: string
  input?: unknown
  thinking?: string
  signature?: string
  data?: string
}

export function toChatCompletion(body: unknown, meta: ResponseMeta): ChatCompletion {
  const msg = body as { id?: unknown; content?: unknown; stop_reason?: unknown; usage?: AnthropicUsage }
  if (!Array.isArray(msg.content)) {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${meta.target.provider} returned a message without a \`content\` list`, { provider: meta.target.provider })
  }
  let text = ''
  let thinking = ''
  const toolCalls: ToolCall[] = []
  const thinkingBlocks: Array<Record<string, unknown>> = []
  for (const b of msg.content as ContentBlock[]) {
    if (!b || typeof b !== 'object') continue
    if (b.type === 'text' && typeof b.text === 'string') text += b.text
    else if (b.type === 'tool_use') {
      toolCalls.push({ id: String(b.id), type: 'function', function: { name: String(b.name), arguments: JSON.stringify(b.input ?? {}) } })
    } else if (b.type === 'thinking') {
      thinking += b.thinking ?? ''
      thinkingBlocks.push({ type: 'thinking', thinking: b.thinking ?? '', signature: b.signature })
    } else if (b.type === 'redacted_thinking') {
      thinkingBlocks.push({ type: 'redacted_thinking', data: b.data })
    }
  }
  let finish = finishReason(msg.stop_reason)
  const message: ChatCompletion['choices'][number]['message'] = { role: 'assistant', content: text || null, refusal: null }
  const json = jsonModeContent(toolCalls)
  if (json !== null) {
    message.content = json
    finish = 'stop'
  } else if (toolCalls.length) {
    message.tool_calls = toolCalls
  }
  if (thinkingBlocks.length) {
    message.reasoning_content = thinking
    message.thinking_blocks = thinkingBlocks
  }
  return {
    id: typeof msg.id === 'string' ? msg.id : `chatcmpl-${meta.requestId}`,
    object: 'chat.completion',
    created: meta.created,
    model: meta.target.model,
    choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
    usage: toUsage(msg.usage, thinking),
  }
}
