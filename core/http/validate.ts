/**
 * Request validation for the OpenAI operations, compiled once at boot (ajv). Only what the gateway must be able to
 * rely on is checked; unknown fields pass through to the provider, as OpenAI-compatible proxies do. Error messages
 * and codes follow OpenAI's own ("Invalid type for 'messages': expected an array, but got a string instead.").
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { gatewayError, type GatewayError } from '../errors.js'
import type { Operation } from '../openai/types.js'

const num = { type: ['number', 'null'] }
const int = { type: ['integer', 'null'] }
const bool = { type: ['boolean', 'null'] }
const common = {
  model: { type: 'string', minLength: 1 },
  stream: bool,
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
  temperature: num,
  top_p: num,
  n: { type: ['integer', 'null'], minimum: 1 },
  max_tokens: int,
  presence_penalty: num,
  frequency_penalty: num,
  seed: int,
  user: { type: 'string' },
  stop: { type: ['string', 'array', 'null'], items: { type: 'string' } },
  logit_bias: { type: ['object', 'null'] },
  // LiteLLM's scheduler field: lower = more important. Read by the core into state.priority.
  priority: { type: 'integer' },
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function']

/** Inputs in one embeddings request: OpenAI's documented maximum. */
const MAX_EMBEDDING_INPUTS = 2048
/**
 * Widest embedding accepted, floats: OpenAI's widest model has 3072; this leaves room for others while a stray
 * `dimensions: 1e15` is a 400 here instead of an allocation that fails in a provider (a 500).
 */
const MAX_EMBEDDING_DIMENSIONS = 16_384

const schemas: Record<Operation, object> = {
  chat: {
    type: 'object',
    required: ['model', 'messages'],
    properties: {
      ...common,
      messages: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['role'],
          properties: {
            role: { enum: ROLES },
            content: { type: ['string', 'array', 'null'] },
            name: { type: 'string' },
            tool_calls: { type: 'array' },
            tool_call_id: { type: 'string' },
          },
        },
      },
      max_completion_tokens: int,
      logprobs: bool,
      top_logprobs: int,
      tools: { type: ['array', 'null'], items: { type: 'object', required: ['type'] } },
      tool_choice: { type: ['string', 'object', 'null'] },
      parallel_tool_calls: bool,
      response_format: { type: ['object', 'null'], required: ['type'], properties: { type: { type: 'string' } } },
    },
  },
  completions: {
    type: 'object',
    required: ['model', 'prompt'],
    properties: {
      ...common,
      prompt: { type: ['string', 'array'] },
      echo: bool,
      best_of: int,
      suffix: { type: ['string', 'null'] },
    },
  },
  embeddings: {
    type: 'object',
    required: ['model', 'input'],
    properties: {
      model: common.model,
      // OpenAI takes at most 2048 inputs per request; past it a provider (or the mock, which computes every vector
      // in process) would build a reply of hundreds of MB before anyone refuses it.
      input: { type: ['string', 'array'], minLength: 1, minItems: 1, maxItems: MAX_EMBEDDING_INPUTS },
      encoding_format: { enum: ['float', 'base64'] },
      dimensions: { type: 'integer', minimum: 1, maximum: MAX_EMBEDDING_DIMENSIONS },
      user: { type: 'string' },
      priority: common.priority,
    },
  },
}

const ajv = new Ajv({ allErrors: false, strict: false })
const validators = Object.fromEntries(
  Object.entries(schemas).map(([op, s]) => [op, ajv.compile(s)]),
) as Record<Operation, ValidateFunction>

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', number: 'a decimal', integer: 'an integer', boolean: 'a boolean', array: 'an array', object: 'an object', null: 'null',
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal'
  return TYPE_NAMES[typeof v] ?? typeof v
}

/** "/messages/0/role" -> "messages[0].role" */
function paramPath(pointer: string): string {
  let out = ''
  for (const part of pointer.split('/').slice(1)) out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part
  return out
}

function toError(e: ErrorObject, body: unknown): GatewayError {
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty)
    const param = paramPath(e.instancePath) ? `${paramPath(e.instancePath)}.${missing}` : missing
    return gatewayError('GW_ERR_VALIDATION', `Missing required parameter: '${param}'.`, { param, openaiCode: 'missing_required_parameter' })
  }
  const param = paramPath(e.instancePath)
  let value: unknown = body
  for (const part of e.instancePath.split('/').slice(1)) value = (value as Record<string, unknown>)?.[part]
  if (e.keyword === 'type') {
    const want = String((e.params as { type: string | string[] }).type).split(',').filter((t) => t !== 'null')
    return gatewayError('GW_ERR_VALIDATION',
      `Invalid type for '${param}': expected ${want.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}, but got ${typeName(value)} instead.`,
      { param, openaiCode: 'invalid_type' })
  }
  if (e.keyword === 'minItems') {
    return gatewayError('GW_ERR_VALIDATION',
      `Invalid '${param}': empty array. Expected an array with minimum length ${(e.params as { limit: number }).limit}, but got an empty array instead.`,
      { param, openaiCode: 'empty_array' })
  }
  if (e.keyword === 'maxItems') {
    const limit = (e.params as { limit: number }).limit
    return gatewayError('GW_ERR_VALIDATION',
      `Invalid '${param}': array too long. Expected an array with maximum length ${limit}, but got an array with length ${(value as unknown[]).length} instead.`,
      { param, openaiCode: 'array_above_max_length' })
  }
  if (e.keyword === 'maximum' || e.keyword === 'minimum') {
    const { limit, comparison } = e.params as { limit: number; comparison: string }
    const above = e.keyword === 'maximum'
    const kind = Number.isInteger(value) ? 'integer' : 'decimal'
    return gatewayError('GW_ERR_VALIDATION',
      `Invalid '${param}': ${kind} ${above ? 'above maximum' : 'below minimum'} value. Expected a value ${comparison} ${limit}, but got ${String(value)} instead.`,
      { param, openaiCode: `${kind}_${above ? 'above_max' : 'below_min'}_value` })
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => `'${String(v)}'`).join(', ')
    return gatewayError('GW_ERR_VALIDATION', `Invalid value: '${String(value)}'. Supported values are: ${allowed}.`, { param, openaiCode: 'invalid_value' })
  }
  return gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': ${e.message ?? 'invalid value'}.`, { param, openaiCode: 'invalid_value' })
}

/** Throws a 400 GatewayError naming the first invalid parameter. */
export function validateRequest(op: Operation, body: Record<string, unknown>): void {
  const v = validators[op]
  if (!v(body)) throw toError(v.errors![0]!, body)
}
