/**
 * The chat operation over the Messages API: the param map (read it as the spec of what is sent), finish() for what
 * depends on several params at once, and the response and stream translators.
 *
 * Params follow LiteLLM's AnthropicConfig (get_supported_openai_params / map_openai_params): stop, temperature,
 * top_p, max_tokens / max_completion_tokens, tools, tool_choice, parallel_tool_calls, response_format, user,
 * web_search_options, thinking and reasoning_effort are mapped; top_k passes through; OpenAI params Anthropic has no
 * equivalent for are 'unsupported' (400 naming them unless drop_params). Fields the map does not name are sent on,
 * as LiteLLM sends provider-specific params.
 *
 * The body includes `model`: the Vertex AI adapter wraps this operation, removes it and adds anthropic_version.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatChunk, ChatCompletion, ChatMessage, ChatRequest } from '../../core/openai/types.js'
import type { OperationAdapter, ParamMap, Target } from '../types.js'
import { anthropicTurns, systemBlocks } from './messages.js'
import { toChatCompletion } from './response.js'
import { AnthropicStream } from './stream.js'
import { JSON_TOOL_NAME, jsonModeTool, mapToolChoice, mapTools, parallelOnly, webSearchTool } from './tools.js'

/** max_tokens when the request sets none: the API requires one (LiteLLM's DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS). */
export const DEFAULT_MAX_TOKENS = 4096 // tokens
/**
 * reasoning_effort -> thinking.budget_tokens (LiteLLM's DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET). With thinking on
 * and no max_tokens, max_tokens is the budget + DEFAULT_MAX_TOKENS, as LiteLLM sets it: it must exceed the budget.
 */
export const THINKING_BUDGETS: Readonly<Record<string, number>> = { low: 1024, medium: 2048, high: 4096 } // tokens

/**
 * Params that LiteLLM stages for finish(): JSON mode's tool and the web search tool join `tools`, after the
 * request's own. Never sent: finish() removes them.
 */
const JSON_TOOL_SLOT = '\u0000jsonTool'
const WEB_SEARCH_SLOT = '\u0000webSearchTool'

/** LiteLLM leaves `user` out when it is an email or a phone number: the API refuses those as a user_id. */
const EMAIL = /^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$/
const PHONE = /^\+?[\d\s()-]{7,}$/

function userId(v: unknown): string | undefined {
  return typeof v === 'string' && v && !EMAIL.test(v) && !PHONE.test(v) ? v : undefined
}

function stopSequences(v: unknown, _req: ChatRequest, target: Target): string[] | undefined {
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? (v as unknown[]).filter((s): s is string => typeof s === 'string') : []
  // The API refuses whitespace-only stop sequences; LiteLLM drops them only under drop_params, and so do we.
  const out = target.dropParams ? list.filter((s) => s.trim() !== '') : list
  return out.length ? out : undefined
}

/** reasoning_effort ('low' | 'medium' | 'high', or the Responses API's {effort}) -> Anthropic's thinking config. */
function effortToThinking(v: unknown): Record<string, unknown> | undefined {
  const effort = v && typeof v === 'object' ? (v as { effort?: unknown }).effort : v
  if (effort === null || effort === undefined || effort === 'none') return undefined
  const budget = typeof effort === 'string' ? THINKING_BUDGETS[effort] : undefined
  if (budget === undefined) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid 'reasoning_effort': ${JSON.stringify(effort)}; Anthropic takes low, medium or high.`, { param: 'reasoning_effort' })
  }
  return { type: 'enabled', budget_tokens: budget }
}

/** n: one choice is all the API gives; n > 1 is unsupported (dropped under drop_params). */
function singleChoice(v: unknown, _req: ChatRequest, target: Target): undefined {
  if (v === null || v === undefined || v === 1 || target.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${target.provider} does not support parameters: n, for model=${target.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param: 'n' })
}

export const chatParams: ParamMap<ChatRequest> = {
  model: { to: 'model', map: (_v, _r, t) => t.model, default: (_r: ChatRequest, t: Target) => t.model },
  messages: { to: 'messages', required: true, map: (v: unknown) => anthropicTurns(v as ChatMessage[]) },
  stream: 'drop', // set by finish() from the dispatch's own decision
  stream_options: 'drop', // Anthropic always reports usage in a stream
  max_tokens: { to: 'max_tokens' },
  max_completion_tokens: { to: 'max_tokens' },
  temperature: { to: 'temperature', range: [0, 1] },
  top_p: { to: 'top_p', range: [0, 1] },
  top_k: { to: 'top_k' },
  stop: { to: 'stop_sequences', map: stopSequences as never },
  tools: { to: 'tools', map: mapTools },
  tool_choice: { to: 'tool_choice', map: mapToolChoice as never },
  parallel_tool_calls: { to: 'tool_choice', map: parallelOnly as never },
  response_format: { to: JSON_TOOL_SLOT, map: jsonModeTool },
  web_search_options: { to: WEB_SEARCH_SLOT, map: webSearchTool },
  user: { to: 'metadata.user_id', map: userId },
  thinking: { to: 'thinking' },
  reasoning_effort: { to: 'thinking', map: effortToThinking },
  n: { to: 'n', map: singleChoice as never },
  // A header setting in LiteLLM; in a body it would only earn a 400.
  extra_headers: 'drop',
  presence_penalty: 'unsupported',
  frequency_penalty: 'unsupported',
  logit_bias: 'unsupported',
  logprobs: 'unsupported',
  top_logprobs: 'unsupported',
  seed: 'unsupported',
  functions: 'unsupported',
  function_call: 'unsupported',
  modalities: 'unsupported',
  audio: 'unsupported',
  prediction: 'unsupported',
  store: 'unsupported',
  service_tier: 'unsupported',
}

function thinkingEnabled(body: Record<string, unknown>): number | null {
  const t = body.thinking as { type?: unknown; budget_tokens?: unknown } | undefined
  if (!t || t.type !== 'enabled') return null
  return typeof t.budget_tokens === 'number' ? t.budget_tokens : 0
}

export function finishChat(body: Record<string, unknown>, req: ChatRequest, _target: Target, stream: boolean): Record<string, unknown> {
  // OpenAI clients send `null` for "not set"; the Messages API refuses null for every scalar param.
  for (const k in body) if (body[k] === null) delete body[k]
  const system = systemBlocks(req.messages)
  if (system.length) body.system = system
  if (stream) body.stream = true
  const budget = thinkingEnabled(body)
  const extra: Record<string, unknown>[] = []
  const jsonTool = body[JSON_TOOL_SLOT] as Record<string, unknown> | undefined
  if (jsonTool) {
    extra.push(jsonTool)
    // Forcing a tool is refused while thinking is on; the model is then only asked, through the tool's presence.
    if (budget === null) body.tool_choice = { type: 'tool', name: JSON_TOOL_NAME }
  }
  const webSearch = body[WEB_SEARCH_SLOT] as Record<string, unknown> | undefined
  if (webSearch) extra.push(webSearch)
  delete body[JSON_TOOL_SLOT]
  delete body[WEB_SEARCH_SLOT]
  if (extra.length) body.tools = [...((body.tools as unknown[] | undefined) ?? []), ...extra]
  if (body.max_tokens === undefined || body.max_tokens === null) body.max_tokens = (budget ?? 0) + DEFAULT_MAX_TOKENS
  return body
}

export const anthropicChat: OperationAdapter<ChatRequest, ChatCompletion, ChatChunk> = {
  params: chatParams,
  finish: finishChat,
  response: toChatCompletion,
  stream: (req, meta) => new AnthropicStream(req, meta),
}
