/**
 * OpenAI chat request -> Cohere v2 chat body (POST /v2/chat, https://docs.cohere.com/reference/chat), as a param
 * map a reviewer can read against Cohere's spec. Ranges are Cohere's own (temperature 0..1, p 0.01..0.99,
 * penalties 0..1): a value outside them is a 400 naming the param, never a silent clamp.
 *
 * OpenAI params with no Cohere counterpart are 'unsupported' (a 400 naming them, or dropped with drop_params, as
 * LiteLLM's UnsupportedParamsError): n > 1, logprobs / top_logprobs, logit_bias, user, parallel_tool_calls=false,
 * the legacy functions API, audio, and anything else not named here (the 'unsupported' policy). Cohere's own
 * request fields (documents, citation_options, safety_mode, k, strict_tools, thinking) pass through, as LiteLLM
 * forwards provider-specific params.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatRequest } from '../../core/openai/types.js'
import type { ParamMap, ParamPolicy, Target } from '../types.js'
import { toCohereMessages } from './messages.js'

export const UNSUPPORTED_UNKNOWN: ParamPolicy = { unknown: 'unsupported' }

/**
 * LiteLLM routes `cohere_chat/v2/<model>` to the v2 API and `.../v1/<model>` to v1; only v2 is spoken here, so the
 * route segment is not part of the model id Cohere sees.
 */
export function cohereModel(target: Target): string {
  const m = target.model
  return m.startsWith('v2/') || m.startsWith('v1/') ? m.slice(3) : m
}

/** A param OpenAI accepts with a value Cohere cannot honour: a 400 naming it, unless the deployment drops params. */
function unsupportedValue(target: Target, param: string, what: string): undefined {
  if (target.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${target.provider} does not support ${what}, for model=${target.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param })
}

type Tool = NonNullable<ChatRequest['tools']>[number]

/** OpenAI function tools are Cohere v2's shape; Cohere requires `parameters`, OpenAI does not. */
function toCohereTools(tools: unknown, _req: ChatRequest, target: Target): unknown {
  if (!Array.isArray(tools)) return tools
  return (tools as Tool[]).map((t, i) => {
    if (t.type !== 'function') {
      throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', `${target.provider} supports only function tools (tools[${i}].type is '${String(t.type)}').`, { param: `tools[${i}]` })
    }
    const f = t.function
    const out: Record<string, unknown> = { name: f.name, parameters: f.parameters ?? { type: 'object', properties: {} } }
    if (f.description !== undefined) out.description = f.description
    return { type: 'function', function: out }
  })
}

/** 'required' -> REQUIRED, 'none' -> NONE, 'auto' -> Cohere's default (omitted); a named function, see finish(). */
function toolChoice(v: unknown, _req: ChatRequest, target: Target): unknown {
  if (v == null || v === 'auto') return undefined
  if (v === 'required') return 'REQUIRED'
  if (v === 'none') return 'NONE'
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'function') return 'REQUIRED'
  throw gatewayError('GW_ERR_VALIDATION', `Invalid 'tool_choice' for ${target.provider}: ${JSON.stringify(v)}.`, { param: 'tool_choice' })
}

/** OpenAI json_object / json_schema -> Cohere's `{type: 'json_object', json_schema?}`; text stays text. */
function responseFormat(v: unknown, _req: ChatRequest, target: Target): unknown {
  if (v == null) return undefined
  const f = v as { type?: unknown; json_schema?: { schema?: unknown } }
  if (f.type === 'text') return { type: 'text' }
  if (f.type === 'json_object') return { type: 'json_object' }
  if (f.type === 'json_schema') {
    const schema = f.json_schema?.schema
    return schema && typeof schema === 'object' ? { type: 'json_object', json_schema: schema } : { type: 'json_object' }
  }
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM', `${target.provider} does not support response_format type ${JSON.stringify(f.type)}.`, { param: 'response_format' })
}

/** Anthropic-style `thinking: {type, budget_tokens}` (as LiteLLM accepts it) -> Cohere's `{type, token_budget}`. */
function thinking(v: unknown): unknown {
  if (!v || typeof v !== 'object') return v
  const { budget_tokens, ...rest } = v as Record<string, unknown>
  return budget_tokens !== undefined && rest.token_budget === undefined ? { ...rest, token_budget: budget_tokens } : v
}

export const chatParams: ParamMap<ChatRequest> = {
  model: { to: 'model', map: (_v, _r, t) => cohereModel(t), default: (_r: ChatRequest, t: Target) => cohereModel(t) },
  messages: { to: 'messages', required: true, map: (v, _r, t) => toCohereMessages(t.provider, v) },
  // Set by finish() from the call's own streaming flag; stream_options is the core's (usage is always reported).
  stream: 'drop',
  stream_options: 'drop',
  temperature: { to: 'temperature', range: [0, 1] },
  top_p: { to: 'p', range: [0.01, 0.99] },
  // max_completion_tokens wins when both are sent (OpenAI's newer name).
  max_tokens: { to: 'max_tokens', map: (v: unknown, r: ChatRequest) => (r.max_completion_tokens != null ? undefined : v) },
  max_completion_tokens: { to: 'max_tokens' },
  stop: { to: 'stop_sequences', map: (v: unknown) => (typeof v === 'string' ? [v] : v) },
  seed: { to: 'seed' },
  frequency_penalty: { to: 'frequency_penalty', range: [0, 1] },
  presence_penalty: { to: 'presence_penalty', range: [0, 1] },
  tools: { to: 'tools', map: toCohereTools },
  tool_choice: { to: 'tool_choice', map: toolChoice },
  response_format: { to: 'response_format', map: responseFormat },
  // One generation per call: n = 1 is the default, anything more is unsupported (Cohere v2 has no num_generations).
  n: { to: 'n', map: (v, _r, t) => (v == null || v === 1 ? undefined : unsupportedValue(t, 'n', `n=${String(v)}`)) },
  // Cohere may call several tools in one turn and cannot be told not to.
  parallel_tool_calls: { to: 'parallel_tool_calls', map: (v, _r, t) => (v === false ? unsupportedValue(t, 'parallel_tool_calls', 'parallel_tool_calls=false') : undefined) },
  logprobs: 'unsupported',
  top_logprobs: 'unsupported',
  logit_bias: 'unsupported',
  user: 'unsupported',
  functions: 'unsupported',
  function_call: 'unsupported',
  reasoning_effort: 'unsupported',
  // Cohere's own params, passed through as LiteLLM does.
  documents: { to: 'documents' },
  citation_options: { to: 'citation_options' },
  safety_mode: { to: 'safety_mode' },
  k: { to: 'k', range: [0, 500] },
  strict_tools: { to: 'strict_tools' },
  thinking: { to: 'thinking', map: thinking },
}

/**
 * Explicit nulls (OpenAI's "not set", which some SDKs send for every param) are left out: Cohere validates the
 * types it gets. Top level only; a null inside a value (a JSON schema) is the client's meaning.
 */
export function dropNulls(body: Record<string, unknown>): void {
  for (const k in body) if (body[k] === null) delete body[k]
}

/**
 * What the map cannot say: nulls (above), the streaming flag, a named tool_choice (Cohere only has REQUIRED, so the tool list is
 * narrowed to the named function, which is what "call this function" means), and OpenAI's per-tool `strict`
 * (Cohere's is one request-wide `strict_tools`).
 */
export function finishChat(body: Record<string, unknown>, req: ChatRequest, _target: Target, stream: boolean): Record<string, unknown> {
  dropNulls(body)
  if (stream) body.stream = true
  const choice = req.tool_choice as { type?: unknown; function?: { name?: unknown } } | undefined
  if (choice && typeof choice === 'object' && Array.isArray(body.tools)) {
    const name = choice.function?.name
    const tools = (body.tools as Array<{ function: { name: unknown } }>).filter((t) => t.function.name === name)
    if (tools.length === 0) {
      throw gatewayError('GW_ERR_VALIDATION', `tool_choice names function ${JSON.stringify(name)}, which is not in 'tools'.`, { param: 'tool_choice' })
    }
    body.tools = tools
  }
  if (body.strict_tools === undefined && req.tools?.some((t) => (t.function as { strict?: unknown }).strict === true)) body.strict_tools = true
  return body
}
