/**
 * Converse response -> OpenAI chat.completion, and the pieces the stream translator shares with it: the stop
 * reason and usage mappings.
 *
 * - text blocks join into `content`; `toolUse` blocks become `tool_calls` (input re-serialised as the JSON string
 *   OpenAI carries); `reasoningContent` becomes `reasoning_content` plus LiteLLM's `thinking_blocks` (with the
 *   signature a client must send back for Claude's multi-turn thinking);
 * - a `json_tool_call` tool use is the JSON-mode answer (chat.ts): its input is the content, not a tool call;
 * - usage: Converse's inputTokens leaves cache reads and writes out; OpenAI's prompt_tokens holds them, with
 *   reads in prompt_tokens_details.cached_tokens and writes in cache_creation_input_tokens (LiteLLM's shape).
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax
 */
import { randomUUID } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/openai/types.js'
import type { ResponseMeta } from '../types.js'
import { JSON_TOOL } from './chat.js'

/** Converse StopReason -> OpenAI finish_reason. */
const STOP_REASONS: Readonly<Record<string, FinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  guardrail_intervened: 'content_filter',
  content_filtered: 'content_filter',
}

export function finishReason(stopReason: unknown): FinishReason {
  return (typeof stopReason === 'string' ? STOP_REASONS[stopReason] : undefined) ?? 'stop'
}

function n(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}

export function mapUsage(u: unknown): Usage | null {
  if (!u || typeof u !== 'object') return null
  const x = u as Record<string, unknown>
  const cacheRead = n(x.cacheReadInputTokens)
  const cacheWrite = n(x.cacheWriteInputTokens)
  const prompt = n(x.inputTokens) + cacheRead + cacheWrite
  const completion = n(x.outputTokens)
  const usage: Usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead },
  }
  if (cacheRead) usage.cache_read_input_tokens = cacheRead
  if (cacheWrite) usage.cache_creation_input_tokens = cacheWrite
  return usage
}

export function chatId(meta: ResponseMeta): string {
  return `chatcmpl-${meta.requestId || randomUUID()}`
}

type Block = {
  text?: unknown
  toolUse?: { toolUseId?: unknown; name?: unknown; input?: unknown }
  reasoningContent?: { reasoningText?: { text?: unknown; signature?: unknown }; redactedContent?: unknown }
}

export function chatResponse(body: unknown, meta: ResponseMeta): ChatCompletion {
  const b = body as { output?: { message?: { content?: unknown } }; stopReason?: unknown; usage?: unknown }
  const content = b.output?.message?.content
  if (!Array.isArray(content)) {
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', 'bedrock returned a Converse response without output.message.content', { provider: 'bedrock' })
  }
  let text = ''
  let reasoning = ''
  let json: string | null = null
  const toolCalls: ToolCall[] = []
  const thinking: Array<Record<string, unknown>> = []
  for (const block of content as Block[]) {
    if (typeof block.text === 'string') text += block.text
    else if (block.toolUse) {
      const tu = block.toolUse
      const args = JSON.stringify(tu.input ?? {})
      if (tu.name === JSON_TOOL) json = args
      else toolCalls.push({ id: String(tu.toolUseId), type: 'function', function: { name: String(tu.name), arguments: args } })
    } else if (block.reasoningContent) {
      const rc = block.reasoningContent
      if (rc.reasoningText && typeof rc.reasoningText.text === 'string') {
        reasoning += rc.reasoningText.text
        thinking.push({ type: 'thinking', thinking: rc.reasoningText.text, signature: rc.reasoningText.signature ?? null })
      } else if (typeof rc.redactedContent === 'string') {
        thinking.push({ type: 'redacted_thinking', data: rc.redactedContent })
      }
    }
  }
  if (json !== null) text += json
  let finish = finishReason(b.stopReason)
  // The JSON-mode tool call was the answer: the model finished, it did not ask for a tool.
  if (json !== null && finish === 'tool_calls' && toolCalls.length === 0) finish = 'stop'
  const message: ChatCompletion['choices'][number]['message'] = {
    role: 'assistant',
    content: text === '' && toolCalls.length > 0 ? null : text,
    refusal: null, // required by OpenAI's schema; Bedrock reports refusals as a stop reason
  }
  if (toolCalls.length) message.tool_calls = toolCalls
  if (thinking.length) {
    message.reasoning_content = reasoning
    message.thinking_blocks = thinking
  }
  const out: ChatCompletion = {
    id: chatId(meta),
    object: 'chat.completion',
    created: meta.created,
    model: meta.target.model,
    choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
  }
  const usage = mapUsage(b.usage)
  if (usage) out.usage = usage
  return out
}
