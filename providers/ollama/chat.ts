/**
 * OpenAI chat request -> Ollama `POST /api/chat` body (shared/data/ollama/api.md; schema ChatRequest in
 * openapi.yaml). Sampling parameters become Ollama runtime `options`, as LiteLLM's OllamaChatConfig puts them.
 *
 * Deliberate differences from LiteLLM, each because LiteLLM's choice loses or bends what the client asked:
 * - frequency_penalty / presence_penalty go to Ollama's own `options.frequency_penalty` / `presence_penalty` (same
 *   meaning and scale as OpenAI's) rather than LiteLLM's `repeat_penalty`, whose neutral value is 1, not 0.
 * - tool_choice: 'auto' is Ollama's only behaviour and 'none' is honoured by sending no tools; 'required' or a named
 *   function cannot be enforced by Ollama, so they are unsupported (400 unless drop_params) instead of silently
 *   ignored.
 * - logprobs / top_logprobs are passed on: Ollama's ChatRequest has both, and its per-token entries have OpenAI's
 *   shape.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatRequest } from '../../core/openai/types.js'
import type { ParamMap, ParamRule, Target } from '../types.js'
import { toOllamaMessages } from './messages.js'

/**
 * Ollama runtime options (api.md, "Generate request (With options)") a client may send at the top level or a
 * deployment may set in litellm_params (`num_ctx: 8192`): LiteLLM hands such provider-specific keys to `options`.
 */
export const OLLAMA_OPTIONS: readonly string[] = [
  'num_keep', 'num_predict', 'draft_num_predict', 'top_k', 'min_p', 'typical_p', 'repeat_last_n', 'repeat_penalty',
  'penalize_newline', 'numa', 'num_ctx', 'num_batch', 'num_gpu', 'main_gpu', 'use_mmap', 'num_thread', 'mirostat',
  'mirostat_eta', 'mirostat_tau', 'tfs_z', 'num_gqa',
]

/** Deployment settings (litellm_params) sent beside the options: how long Ollama keeps the model loaded. */
const DEPLOYMENT_TOP_LEVEL = ['keep_alive'] as const

/** A value this provider cannot honour: dropped with drop_params, else LiteLLM's UnsupportedParamsError (400). */
export function unsupported(target: Target, param: string, why: string): undefined {
  if (target.dropParams) return undefined
  throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
    `${target.provider} does not support parameters: ${param} (${why}), for model=${target.model}. ` +
    'To drop these, set `drop_params: true` in litellm_settings (or on the deployment\'s litellm_params).', { param })
}

function toolChoice(value: unknown, _req: ChatRequest, target: Target): undefined {
  if (value === 'auto' || value === 'none') return undefined // 'none' is applied in finish(): no tools are sent
  return unsupported(target, 'tool_choice', 'Ollama cannot force a tool call; use "auto" or "none"')
}

/** response_format -> Ollama's `format`: "json" for JSON mode, the schema itself for structured outputs. */
function format(value: unknown): unknown {
  const rf = value as { type?: unknown; json_schema?: { schema?: unknown } } | null
  if (!rf || typeof rf !== 'object' || rf.type === 'text') return undefined
  if (rf.type === 'json_object') return 'json'
  if (rf.type === 'json_schema') {
    const schema = rf.json_schema?.schema
    return schema && typeof schema === 'object' ? schema : 'json'
  }
  throw gatewayError('GW_ERR_VALIDATION', `Invalid 'response_format.type': ${JSON.stringify(rf.type)}.`, { param: 'response_format.type' })
}

/**
 * reasoning_effort -> `think`, as LiteLLM maps it: other thinking models only know on/off ('minimal' and 'none'
 * turn thinking off); gpt-oss takes a level ("low" | "medium" | "high") and cannot stop thinking, so the lower
 * efforts are "low" and 'xhigh' is its highest, "high".
 */
function think(value: unknown, _req: ChatRequest, target: Target): unknown {
  const on = value === 'low' || value === 'medium' || value === 'high'
  if (target.model.startsWith('gpt-oss')) return on ? value : value === 'xhigh' ? 'high' : 'low'
  return on || value === 'xhigh'
}

/** OpenAI tools are Ollama's ToolDefinition, except that Ollama requires `parameters`. */
function tools(value: unknown): unknown {
  if (!Array.isArray(value)) throw gatewayError('GW_ERR_VALIDATION', `Invalid 'tools': expected an array.`, { param: 'tools' })
  return value.map((tool: { type?: unknown; function?: { name?: unknown; description?: unknown; parameters?: unknown } }, i) => {
    const fn = tool?.function
    if (!fn || typeof fn.name !== 'string') throw gatewayError('GW_ERR_VALIDATION', `Invalid 'tools[${i}]': a function tool needs a name.`, { param: `tools[${i}].function.name` })
    const out: Record<string, unknown> = { name: fn.name }
    if (typeof fn.description === 'string') out.description = fn.description
    out.parameters = fn.parameters && typeof fn.parameters === 'object' ? fn.parameters : { type: 'object', properties: {} }
    return { type: 'function', function: out }
  })
}

type MapFn = NonNullable<ParamRule<ChatRequest>['map']>

/**
 * A rule for `to` whose value is left out when it is null: OpenAI clients send `"temperature": null` for "not
 * set" (LiteLLM drops such values too), and Ollama's option parser rejects a null.
 */
function rule(to: string, map?: MapFn): ParamRule<ChatRequest> {
  return { to, map: map ? (v, r, t) => (v === null ? undefined : map(v, r, t)) : (v) => (v === null ? undefined : v) }
}
const option = (name: string) => rule(`options.${name}`)

export const chatParams: ParamMap<ChatRequest> = {
  model: { to: 'model', map: (_v, _r, t) => t.model, default: (_r: ChatRequest, t: Target) => t.model },
  messages: { to: 'messages', required: true, map: toOllamaMessages },
  tools: rule('tools', tools),
  tool_choice: rule('tool_choice', toolChoice),
  stop: option('stop'),
  // max_completion_tokens is OpenAI's newer name and wins when both are sent, as in LiteLLM.
  max_tokens: rule('options.num_predict', (v, r) => r.max_completion_tokens ?? v),
  max_completion_tokens: option('num_predict'),
  temperature: option('temperature'),
  top_p: option('top_p'),
  seed: option('seed'),
  frequency_penalty: option('frequency_penalty'),
  presence_penalty: option('presence_penalty'),
  response_format: rule('format', format),
  reasoning_effort: rule('think', think),
  logprobs: rule('logprobs'),
  top_logprobs: rule('top_logprobs'),
  n: rule('n', (v, _r, t) => (v === 1 ? undefined : unsupported(t, 'n', 'Ollama returns one choice'))),
  user: 'unsupported',
  logit_bias: 'unsupported',
  parallel_tool_calls: 'unsupported',
  // Ollama's own fields, for clients that speak both dialects.
  format: rule('format'),
  think: rule('think'),
  keep_alive: rule('keep_alive'),
  options: 'drop', // merged in finish(), under the mapped options, whatever the field order
}
for (const name of OLLAMA_OPTIONS) chatParams[name] = option(name)

/** The deployment's litellm_params (`num_ctx: 8192`, `keep_alive: 10m`) fill what the request left unset. */
export function applyDeployment(body: Record<string, unknown>, target: Target): void {
  const p = target.params
  if (!p) return
  let options = body.options as Record<string, unknown> | undefined
  for (const name of OLLAMA_OPTIONS) if (p[name] !== undefined && options?.[name] === undefined) (options ??= {})[name] = p[name]
  if (options) body.options = options
  for (const name of DEPLOYMENT_TOP_LEVEL) if (p[name] !== undefined && body[name] === undefined) body[name] = p[name]
}

/**
 * What the map cannot say: `stream` is always explicit (Ollama streams unless told `false`), the client's native
 * `options` object and the deployment's settings fill what the mapped params left unset, and tool_choice 'none'
 * withholds the tools.
 */
export function finishChat(body: Record<string, unknown>, req: ChatRequest, target: Target, stream: boolean): Record<string, unknown> {
  body.stream = stream
  const native = req.options
  if (native && typeof native === 'object' && !Array.isArray(native)) {
    body.options = { ...(native as Record<string, unknown>), ...(body.options as Record<string, unknown> | undefined) }
  }
  applyDeployment(body, target)
  if (req.tool_choice === 'none') delete body.tools
  return body
}
