/**
 * OpenAI chat request -> Mistral `POST /v1/chat/completions` (shared/data/mistral/openapi.json
 * ChatCompletionRequest). OpenAI-like, with LiteLLM's MistralConfig differences: `seed` is `random_seed`,
 * `max_completion_tokens` is `max_tokens`, tool_choice `required` is `any`. The request object is closed
 * (`additionalProperties: false`): every field OpenAI has and Mistral lacks (logit_bias, logprobs, top_logprobs,
 * user, stream_options, service_tier, ...) is unsupported (400 unless drop_params) rather than a 422 from Mistral.
 * Ranges are the spec's, so an out-of-range value is the gateway's clear 400, not Mistral's 422.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatRequest } from '../../core/openai/types.js'
import type { ParamMap, ParamRule, Target } from '../types.js'
import { toMistralMessages } from './messages.js'

type Obj = Record<string, unknown>

function invalid(message: string, param: string): never {
  throw gatewayError('GW_ERR_VALIDATION', message, { param })
}

/** tool_choice: the strings Mistral shares with OpenAI pass, `required` is Mistral's `any`, a named function stays. */
function toolChoice(value: unknown): unknown {
  if (value === 'auto' || value === 'none' || value === 'any') return value
  if (value === 'required') return 'any'
  const name = value && typeof value === 'object' ? ((value as Obj).function as Obj | undefined)?.name : undefined
  if (typeof name === 'string') return { type: 'function', function: { name } }
  return invalid(`Invalid 'tool_choice': ${JSON.stringify(value)}.`, 'tool_choice')
}

/**
 * Mistral's Tool/Function (closed objects; `parameters` required). A JSON Schema's top-level `$schema` / `$id`
 * (zod-to-json-schema writes them) trip Mistral's grammar compiler, so they are left out, as LiteLLM does.
 */
function tools(value: unknown): unknown {
  if (!Array.isArray(value)) invalid(`Invalid 'tools': expected an array.`, 'tools')
  return value.map((tool: Obj | null, i) => {
    const fn = tool?.function as Obj | undefined
    if (!fn || typeof fn.name !== 'string') invalid(`Invalid 'tools[${i}]': a function tool needs a name.`, `tools[${i}].function.name`)
    const out: Obj = { name: fn.name }
    if (typeof fn.description === 'string') out.description = fn.description
    let params = fn.parameters && typeof fn.parameters === 'object' ? (fn.parameters as Obj) : { type: 'object', properties: {} }
    if ('$schema' in params || '$id' in params) {
      const { $schema: _s, $id: _i, ...rest } = params
      params = rest
    }
    out.parameters = params
    if (typeof fn.strict === 'boolean') out.strict = fn.strict
    return { type: 'function', function: out }
  })
}

/** OpenAI's response_format is Mistral's ResponseFormat / JsonSchema, field for field; rebuilt to drop extras. */
function responseFormat(value: unknown): unknown {
  const rf = value as Obj | null
  if (!rf || typeof rf !== 'object') invalid(`Invalid 'response_format': expected an object.`, 'response_format')
  if (rf.type !== 'json_schema') return { type: rf.type }
  const js = (rf.json_schema ?? {}) as Obj
  const out: Obj = { name: typeof js.name === 'string' ? js.name : 'response', schema: js.schema ?? {} }
  if (typeof js.description === 'string') out.description = js.description
  if (typeof js.strict === 'boolean') out.strict = js.strict
  return { type: 'json_schema', json_schema: out }
}

/**
 * reasoning_effort on a Magistral model -> `prompt_mode: "reasoning"` (Mistral's switch for its reasoning system
 * prompt, which LiteLLM writes into the messages by hand). Other models have no reasoning control.
 */
function reasoning(value: unknown, _req: ChatRequest, target: Target): unknown {
  if (target.model.toLowerCase().includes('magistral')) return value === 'none' ? undefined : 'reasoning'
  if (target.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${target.provider} does not support parameters: reasoning_effort (only Magistral models reason), for model=${target.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param: 'reasoning_effort' })
}

type MapFn = NonNullable<ParamRule<ChatRequest>['map']>

/**
 * A rule for `to` whose value is left out when it is null: OpenAI clients send `"stop": null` for "not set"
 * (LiteLLM drops such values too), and several of Mistral's fields (top_p, stop, penalties) refuse a null.
 */
function rule(to: string, map?: MapFn, range?: readonly [number, number]): ParamRule<ChatRequest> {
  const r: ParamRule<ChatRequest> = { to, map: map ? (v, q, t) => (v === null ? undefined : map(v, q, t)) : (v) => (v === null ? undefined : v) }
  if (range) r.range = range
  return r
}

export const chatParams: ParamMap<ChatRequest> = {
  model: { to: 'model', map: (_v, _r, t) => t.model, default: (_r: ChatRequest, t: Target) => t.model },
  messages: { to: 'messages', required: true, map: toMistralMessages },
  temperature: rule('temperature', undefined, [0, 1.5]),
  top_p: rule('top_p', undefined, [0, 1]),
  // max_completion_tokens is OpenAI's newer name and wins when both are sent, as in LiteLLM.
  max_tokens: rule('max_tokens', (v, r) => r.max_completion_tokens ?? v),
  max_completion_tokens: rule('max_tokens'),
  stop: rule('stop'),
  seed: rule('random_seed'),
  response_format: rule('response_format', responseFormat),
  tools: rule('tools', tools),
  tool_choice: rule('tool_choice', toolChoice),
  presence_penalty: rule('presence_penalty', undefined, [-2, 2]),
  frequency_penalty: rule('frequency_penalty', undefined, [-2, 2]),
  n: rule('n'),
  prediction: rule('prediction'),
  parallel_tool_calls: rule('parallel_tool_calls'),
  reasoning_effort: rule('prompt_mode', reasoning),
  // Mistral's own fields, for clients that know them.
  random_seed: rule('random_seed'),
  safe_prompt: rule('safe_prompt'),
  prompt_mode: rule('prompt_mode'),
  // OpenAI fields Mistral's API does not have (named for the reader; any other unknown field is treated alike).
  logit_bias: 'unsupported',
  logprobs: 'unsupported',
  top_logprobs: 'unsupported',
  user: 'unsupported',
  service_tier: 'unsupported',
  store: 'unsupported',
  modalities: 'unsupported',
  audio: 'unsupported',
  functions: 'unsupported',
  function_call: 'unsupported',
}

/** Mistral request fields a deployment may set in litellm_params (`safe_prompt: true`), as LiteLLM passes them on. */
const DEPLOYMENT_FIELDS = ['safe_prompt', 'prompt_mode', 'random_seed'] as const

/**
 * `stream` is sent only when true (Mistral's default is false). No `stream_options`: Mistral's request has no such
 * field, and its streams carry usage on the last chunk anyway. Deployment settings fill what the request left out.
 */
export function finishChat(body: Record<string, unknown>, _req: ChatRequest, target: Target, stream: boolean): Record<string, unknown> {
  if (stream) body.stream = true
  const p = target.params
  if (p) for (const k of DEPLOYMENT_FIELDS) if (p[k] !== undefined && body[k] === undefined) body[k] = p[k]
  return body
}
