/**
 * The OpenAI chat request -> Gemini GenerateContentRequest, as a param map (read it as the spec of what is
 * supported), following LiteLLM's VertexGeminiConfig.map_openai_params. Fields not named here are unsupported:
 * a 400 naming them, or dropped with drop_params (logit_bias, parallel_tool_calls, functions, user, audio, ...).
 * The model goes in the URL, not the body. Spec: ../shared/data/gemini/openapi.v1beta.json, GenerateContentRequest.
 */
import { gatewayError } from '../../core/errors.js'
import type { ChatRequest } from '../../core/openai/types.js'
import type { ParamMap, ParamPolicy, Target } from '../types.js'
import { systemInstruction, toContents } from './messages.js'
import { toGeminiSchema } from './schema.js'

type Obj = Record<string, unknown>

export const GEMINI_POLICY: ParamPolicy = { unknown: 'unsupported' }

/**
 * reasoning_effort -> thinkingBudget in tokens, LiteLLM's defaults (litellm/constants.py
 * DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET). 'minimal' is the smallest budget the model family accepts.
 */
const EFFORT_BUDGET: Readonly<Record<string, number>> = { low: 1024, medium: 2048, high: 4096 }

/** Gemini 3 takes `thinkingLevel` instead of a budget (LOW or HIGH on the Pro models). */
const EFFORT_LEVEL: Readonly<Record<string, string>> = { minimal: 'LOW', low: 'LOW', medium: 'HIGH', high: 'HIGH' }

/** Google tools a client may list beside functions (LiteLLM passes these through): `{googleSearch: {}}` etc. */
const GOOGLE_TOOLS: ReadonlySet<string> = new Set(['googleSearch', 'googleSearchRetrieval', 'codeExecution', 'code_execution', 'urlContext', 'enterpriseWebSearch'])

export const geminiChatParams: ParamMap<ChatRequest> = {
  model: 'drop', // in the URL
  messages: [
    { to: 'systemInstruction', map: (v) => systemInstruction(v as ChatRequest['messages']) },
    { to: 'contents', required: true, map: (v) => toContents(v as ChatRequest['messages']) },
  ],
  temperature: { to: 'generationConfig.temperature', range: [0, 2] },
  top_p: { to: 'generationConfig.topP', range: [0, 1] },
  top_k: { to: 'generationConfig.topK' },
  n: { to: 'generationConfig.candidateCount', range: [1, 8] },
  max_tokens: { to: 'generationConfig.maxOutputTokens' },
  max_completion_tokens: { to: 'generationConfig.maxOutputTokens' },
  stop: { to: 'generationConfig.stopSequences', map: (v: unknown) => (typeof v === 'string' ? [v] : v) },
  presence_penalty: { to: 'generationConfig.presencePenalty', range: [-2, 2] },
  frequency_penalty: { to: 'generationConfig.frequencyPenalty', range: [-2, 2] },
  seed: { to: 'generationConfig.seed' },
  logprobs: { to: 'generationConfig.responseLogprobs' },
  top_logprobs: { to: 'generationConfig.logprobs', range: [0, 20] },
  response_format: [
    { to: 'generationConfig.responseMimeType', map: responseMimeType },
    { to: 'generationConfig.responseSchema', map: responseSchema },
  ],
  modalities: { to: 'generationConfig.responseModalities', map: (v: unknown) => (Array.isArray(v) ? v.map((m) => String(m).toUpperCase()) : v) },
  reasoning_effort: { to: 'generationConfig.thinkingConfig', map: thinkingFromEffort },
  thinking: { to: 'generationConfig.thinkingConfig', map: thinkingFromParam },
  tools: { to: 'tools', map: mapTools },
  tool_choice: { to: 'toolConfig', map: mapToolChoice },
  // Gemini's own fields, as LiteLLM accepts them in a request or on the deployment.
  safety_settings: { to: 'safetySettings' },
  cached_content: { to: 'cachedContent' },
}

function responseMimeType(v: unknown): string | undefined {
  const type = (v as { type?: unknown } | null)?.type
  if (type === 'json_object' || type === 'json_schema') return 'application/json'
  if (type === 'text') return 'text/plain'
  return undefined
}

function responseSchema(v: unknown): Obj | undefined {
  const f = v as { type?: unknown; json_schema?: { schema?: unknown }; response_schema?: unknown } | null
  const schema = f?.type === 'json_schema' ? f.json_schema?.schema : f?.response_schema
  return schema === undefined ? undefined : toGeminiSchema(schema, 'response_format', true)
}

function thinkingFromEffort(v: unknown, _req: ChatRequest, target: Target): Obj | undefined {
  if (typeof v !== 'string') return undefined
  if (v === 'none' || v === 'disable') return target.model.startsWith('gemini-3') ? { thinkingLevel: 'LOW' } : { thinkingBudget: 0 }
  if (target.model.startsWith('gemini-3')) {
    const level = EFFORT_LEVEL[v]
    return level ? { thinkingLevel: level, includeThoughts: true } : badEffort(v)
  }
  if (v === 'minimal') return { thinkingBudget: minimalBudget(target.model), includeThoughts: true }
  const budget = EFFORT_BUDGET[v]
  return budget !== undefined ? { thinkingBudget: budget, includeThoughts: true } : badEffort(v)
}

/** The smallest thinking budget per 2.5 family (LiteLLM's *_MINIMAL_THINKING_BUDGET_GEMINI_2_5_* defaults). */
function minimalBudget(model: string): number {
  if (model.includes('flash-lite')) return 512
  if (model.includes('flash')) return 1
  return 128
}

function badEffort(v: string): never {
  throw gatewayError('GW_ERR_VALIDATION', `Invalid 'reasoning_effort': '${v}'. Expected one of minimal, low, medium, high, none.`, { param: 'reasoning_effort' })
}

/** Anthropic-style `thinking: {type: 'enabled', budget_tokens}` (LiteLLM accepts it for every reasoning model). */
function thinkingFromParam(v: unknown): Obj | undefined {
  const t = v as { type?: unknown; budget_tokens?: unknown } | null
  if (!t || typeof t !== 'object') return undefined
  if (t.type === 'disabled') return { thinkingBudget: 0 }
  const out: Obj = {}
  if (t.type === 'enabled') out.includeThoughts = true
  if (typeof t.budget_tokens === 'number') out.thinkingBudget = t.budget_tokens
  return out
}

function mapTools(v: unknown): Obj[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined
  const declarations: Obj[] = []
  const others: Obj[] = []
  for (let i = 0; i < v.length; i++) {
    const tool = v[i] as Obj
    const fn = tool?.function as { name?: unknown; description?: unknown; parameters?: unknown } | undefined
    if (tool?.type === 'function' && fn && typeof fn.name === 'string') {
      // `description` is required by the spec's FunctionDeclaration; an empty one says "none given".
      const decl: Obj = { name: fn.name, description: typeof fn.description === 'string' ? fn.description : '' }
      const params = toGeminiSchema(fn.parameters, 'tools')
      if (params) decl.parameters = params
      declarations.push(decl)
    } else if (tool && typeof tool === 'object' && Object.keys(tool).some((k) => GOOGLE_TOOLS.has(k))) {
      others.push(tool)
    } else {
      throw gatewayError('GW_ERR_VALIDATION', `Invalid 'tools[${i}]': Gemini takes function tools (type 'function' with function.name).`, { param: `tools[${i}]` })
    }
  }
  return declarations.length ? [{ functionDeclarations: declarations }, ...others] : others
}

function mapToolChoice(v: unknown): Obj | undefined {
  if (v === null) return undefined
  if (v === 'auto') return { functionCallingConfig: { mode: 'AUTO' } }
  if (v === 'none') return { functionCallingConfig: { mode: 'NONE' } }
  if (v === 'required') return { functionCallingConfig: { mode: 'ANY' } }
  const name = (v as { function?: { name?: unknown } } | null)?.function?.name
  if (typeof name === 'string' && name) return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [name] } }
  throw gatewayError('GW_ERR_VALIDATION',
    `Invalid 'tool_choice': Gemini supports 'auto', 'none', 'required' or {type: 'function', function: {name}}.`, { param: 'tool_choice' })
}
