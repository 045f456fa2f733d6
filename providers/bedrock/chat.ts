/**
 * OpenAI chat request -> Converse request body, as LiteLLM's AmazonConverseConfig maps it:
 * - the param map below is the spec: sampling params go to `inferenceConfig` (Converse's ranges: temperature and
 *   top_p 0..1), tools to `toolConfig`, Claude's `thinking` / `reasoning_effort` and `top_k` to
 *   `additionalModelRequestFields`; OpenAI params Converse has no field for are unsupported (400 unless drop_params);
 * - finish() does what a map cannot say: `tool_choice: "none"` drops the tools (Converse has no "none"),
 *   `response_format` becomes a forced `json_tool_call` tool (LiteLLM's JSON mode; see response.ts), and any other
 *   field the client sent (provider-specific, e.g. `anthropic_beta`) goes into `additionalModelRequestFields`,
 *   where LiteLLM puts model-specific params.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatMessage, ChatRequest } from '../../core/openai/types.js'
import type { ParamMap, Target } from '../types.js'
import { endpointOf, isAnthropic, isNova } from './endpoint.js'
import { converseMessages, hasToolBlocks, systemBlocks, type ConverseMessage } from './messages.js'

/** LiteLLM's reserved tool name for JSON mode (RESPONSE_FORMAT_TOOL_NAME): its call is the reply's content. */
export const JSON_TOOL = 'json_tool_call'

/** Claude thinking budgets for `reasoning_effort`, LiteLLM's (AnthropicConfig._map_reasoning_effort); tokens. */
const EFFORT_BUDGET_TOKENS: Readonly<Record<string, number>> = { minimal: 1024, low: 1024, medium: 2048, high: 4096 }
/** Output room beside a thinking budget when the client set no max_tokens (LiteLLM's default); tokens. */
const THINKING_ANSWER_TOKENS = 4096

/**
 * Converse members a deployment may set in litellm_params (Target.params), as LiteLLM passes them on (a guardrail for
 * every call of the deployment); the request's own value wins.
 */
const DEPLOYMENT_FIELDS = ['guardrailConfig', 'performanceConfig', 'requestMetadata'] as const

/** Top-level Converse request members; any other field left in the body is model-specific. */
const CONVERSE_FIELDS: ReadonlySet<string> = new Set([
  'messages', 'system', 'inferenceConfig', 'toolConfig', 'guardrailConfig', 'additionalModelRequestFields',
  'promptVariables', 'additionalModelResponseFieldPaths', 'requestMetadata', 'performanceConfig', 'serviceTier',
  'outputConfig',
])

type Tool = { type?: unknown; function?: { name?: unknown; description?: unknown; parameters?: unknown } }

/** The unsupported-param 400 for a value only some models or values lack; dropped under drop_params. */
function unsupported(target: Target, param: string): undefined {
  if (target.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${target.provider} does not support parameters: ${param}, for model=${target.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param })
}

/** A JSON null is "not set": Converse refuses nulls where it wants a value. */
const keep = (v: unknown): unknown => v ?? undefined

function toolSpecs(value: unknown): unknown {
  if (value === null) return undefined
  if (!Array.isArray(value)) throw gatewayError('GW_ERR_VALIDATION', 'tools must be an array', { param: 'tools' })
  if (value.length === 0) return undefined
  return (value as Tool[]).map((t, i) => {
    const fn = t?.function
    if (t?.type !== 'function' || typeof fn?.name !== 'string') {
      throw gatewayError('GW_ERR_VALIDATION', `tools[${i}]: bedrock supports function tools with a name only`, { param: `tools[${i}]` })
    }
    const spec: Record<string, unknown> = { name: fn.name, inputSchema: { json: fn.parameters ?? { type: 'object', properties: {} } } }
    // ToolSpecification.description is a NonEmptyString.
    if (typeof fn.description === 'string' && fn.description) spec.description = fn.description
    return { toolSpec: spec }
  })
}

function toolChoice(value: unknown): unknown {
  if (value === null) return undefined
  if (value === 'auto') return { auto: {} }
  if (value === 'required') return { any: {} }
  if (value === 'none') return undefined // finish() drops the tools
  const name = (value as { function?: { name?: unknown } } | null)?.function?.name
  if (typeof name === 'string') return { tool: { name } }
  throw gatewayError('GW_ERR_VALIDATION', "tool_choice must be 'auto', 'required', 'none' or a named function", { param: 'tool_choice' })
}

function stopList(value: unknown): unknown {
  // Converse refuses an empty stop sequence (NonEmptyString); an empty list is fine.
  if (typeof value === 'string') return value === '' ? undefined : [value]
  return Array.isArray(value) ? value.filter((s) => typeof s === 'string' && s !== '') : undefined
}

function effortThinking(value: unknown, _req: ChatRequest, target: Target): unknown {
  if (value === 'none' || value === null) return undefined
  if (!isAnthropic(endpointOf(target))) return unsupported(target, 'reasoning_effort')
  const budget = EFFORT_BUDGET_TOKENS[String(value)]
  if (budget === undefined) {
    throw gatewayError('GW_ERR_VALIDATION', "reasoning_effort must be 'minimal', 'low', 'medium', 'high' or 'none'", { param: 'reasoning_effort' })
  }
  return { type: 'enabled', budget_tokens: budget }
}

export const chatParams: ParamMap<ChatRequest> = {
  model: 'drop', // the model is in the URL
  stream: 'drop', // ConverseStream is another path (request())
  stream_options: 'drop', // usage always comes (metadata event)
  messages: [
    { to: 'messages', required: true, map: (v) => converseMessages(v as ChatMessage[]) },
    { to: 'system', map: (v) => { const s = systemBlocks(v as ChatMessage[]); return s.length ? s : undefined } },
  ],
  max_tokens: { to: 'inferenceConfig.maxTokens', map: keep },
  max_completion_tokens: { to: 'inferenceConfig.maxTokens', map: keep },
  temperature: { to: 'inferenceConfig.temperature', range: [0, 1], map: keep },
  top_p: { to: 'inferenceConfig.topP', range: [0, 1], map: keep },
  stop: { to: 'inferenceConfig.stopSequences', map: stopList },
  tools: { to: 'toolConfig.tools', map: toolSpecs },
  tool_choice: { to: 'toolConfig.toolChoice', map: toolChoice },
  response_format: 'drop', // read by finish(): a forced json_tool_call tool
  top_k: [
    // Nova reads it inside its own inferenceConfig; Claude and Mistral as top_k (LiteLLM's _handle_top_k_value).
    { to: 'additionalModelRequestFields.inferenceConfig.topK', map: (v, _r, t) => (isNova(endpointOf(t)) ? keep(v) : undefined) },
    { to: 'additionalModelRequestFields.top_k', map: (v, _r, t) => (isNova(endpointOf(t)) ? undefined : keep(v)) },
  ],
  thinking: { to: 'additionalModelRequestFields.thinking', map: keep },
  reasoning_effort: { to: 'additionalModelRequestFields.thinking', map: effortThinking },
  n: { to: 'n', map: (v, _r, t) => (v === 1 || v === null ? undefined : unsupported(t, 'n')) },
  // Bedrock's own request members, accepted from the body as LiteLLM does.
  guardrailConfig: { to: 'guardrailConfig', map: keep },
  performanceConfig: { to: 'performanceConfig', map: keep },
  requestMetadata: { to: 'requestMetadata', map: keep },
  additionalModelRequestFields: { to: 'additionalModelRequestFields', map: (v: unknown) => (v && typeof v === 'object' ? { ...v } : undefined) },
  // OpenAI params Converse has no field for.
  frequency_penalty: 'unsupported',
  presence_penalty: 'unsupported',
  logit_bias: 'unsupported',
  logprobs: 'unsupported',
  top_logprobs: 'unsupported',
  seed: 'unsupported',
  user: 'unsupported',
  parallel_tool_calls: 'unsupported',
  service_tier: 'unsupported',
  store: 'unsupported',
  modalities: 'unsupported',
  audio: 'unsupported',
  prediction: 'unsupported',
  web_search_options: 'unsupported',
  functions: 'unsupported',
  function_call: 'unsupported',
  verbosity: 'unsupported',
  prompt_cache_key: 'unsupported',
  safety_identifier: 'unsupported',
}

/** `response_format` -> the schema of the forced JSON tool, or null for plain text. */
function jsonSchemaOf(rf: unknown): { schema: unknown; description?: string } | null {
  const f = rf as { type?: unknown; json_schema?: { schema?: unknown; description?: unknown }; response_schema?: unknown } | null
  if (!f || f.type === 'text') return null
  if (f.type === 'json_schema') {
    const d = f.json_schema?.description
    return { schema: f.json_schema?.schema ?? { type: 'object' }, ...(typeof d === 'string' && d ? { description: d } : {}) }
  }
  if (f.type === 'json_object') {
    // An object with any properties: what LiteLLM sends when no schema is given.
    return { schema: f.response_schema ?? { type: 'object', additionalProperties: true, properties: {} } }
  }
  throw gatewayError('GW_ERR_VALIDATION', "response_format.type must be 'text', 'json_object' or 'json_schema'", { param: 'response_format' })
}

export function finishChat(body: Record<string, unknown>, req: ChatRequest, target: Target): Record<string, unknown> {
  const endpoint = endpointOf(target)
  const extra = (body.additionalModelRequestFields ?? {}) as Record<string, unknown>
  // Client fields the map does not name: model-specific, so they go where Converse takes those.
  for (const k of Object.keys(body)) {
    if (CONVERSE_FIELDS.has(k)) continue
    if (body[k] !== null) extra[k] = body[k]
    delete body[k]
  }
  let tc = body.toolConfig as { tools?: unknown[]; toolChoice?: unknown } | undefined
  if (req.tool_choice === 'none' && tc) {
    // Converse has no "none": the tools go (LiteLLM's way), unless the history holds tool blocks, which Converse
    // refuses without a toolConfig; then the tools stay, without a choice.
    if (hasToolBlocks(body.messages as ConverseMessage[])) delete tc.toolChoice
    else tc = undefined
  }
  const json = jsonSchemaOf(req.response_format)
  const thinking = (extra.thinking as { type?: unknown; budget_tokens?: unknown } | undefined)
  const thinkingOn = thinking?.type === 'enabled'
  if (json) {
    const spec: Record<string, unknown> = { name: JSON_TOOL, inputSchema: { json: json.schema } }
    if (json.description) spec.description = json.description
    tc = { ...tc, tools: [...(tc?.tools ?? []), { toolSpec: spec }] }
    // Only Claude and Nova take a named tool choice; Claude refuses a forced tool while thinking.
    if ((isAnthropic(endpoint) || isNova(endpoint)) && !thinkingOn) tc.toolChoice = { tool: { name: JSON_TOOL } }
  }
  if (tc && tc.tools?.length) body.toolConfig = tc
  else delete body.toolConfig
  if (thinkingOn && typeof thinking.budget_tokens === 'number') {
    const inf = (body.inferenceConfig ??= {}) as Record<string, unknown>
    // Converse's default maxTokens may be below the budget, which Claude refuses.
    if (inf.maxTokens === undefined) inf.maxTokens = thinking.budget_tokens + THINKING_ANSWER_TOKENS
  }
  const params = target.params
  if (params) for (const k of DEPLOYMENT_FIELDS) if (body[k] === undefined && params[k] && typeof params[k] === 'object') body[k] = params[k]
  if (Object.keys(extra).length) body.additionalModelRequestFields = extra
  else delete body.additionalModelRequestFields
  return body
}
