/**
 * Request validation for the OpenAI operations, compiled once at boot (ajv). Only what the gateway must be able to
 * rely on is checked; unknown fields pass through to the provider, as OpenAI-compatible proxies do. Error messages
 * and codes follow OpenAI's own ("Invalid type for 'messages': expected an array, but got a string instead.").
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { gatewayError, type GatewayError } from '../errors.js'
import type { Operation } from '../openai/types.js'
import { UploadFile } from '../openai/upload.js'

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
/** Images in one request: OpenAI's documented maximum (`n`, 1 to 10). */
const MAX_IMAGES = 10
/** Characters of text to speech in one request (OpenAI's limit for `input` and `instructions`). */
export const MAX_SPEECH_CHARS = 4096

/** Operations whose `stream: true` the gateway does not serve (their event streams are not chat chunks). */
const NO_STREAM: ReadonlySet<Operation> = new Set<Operation>(['images', 'transcription'])

const schemas: Record<Exclude<Operation, 'transcription'>, object> = {
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
  images: {
    type: 'object',
    required: ['model', 'prompt'],
    properties: {
      model: common.model,
      prompt: { type: 'string', minLength: 1 },
      n: { type: ['integer', 'null'], minimum: 1, maximum: MAX_IMAGES },
      // 'auto' or WIDTHxHEIGHT: pricing reads the pixels off it.
      size: { type: ['string', 'null'], pattern: '^(auto|[1-9][0-9]{0,4}x[1-9][0-9]{0,4})$' },
      quality: { type: ['string', 'null'] },
      response_format: { enum: ['url', 'b64_json', null] },
      style: { type: ['string', 'null'] },
      stream: bool,
      user: { type: 'string' },
      priority: common.priority,
    },
  },
  speech: {
    type: 'object',
    required: ['model', 'input', 'voice'],
    properties: {
      model: common.model,
      input: { type: 'string', minLength: 1, maxLength: MAX_SPEECH_CHARS },
      voice: { type: ['string', 'object'] },
      instructions: { type: 'string', maxLength: MAX_SPEECH_CHARS },
      response_format: { enum: ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] },
      speed: { type: 'number', minimum: 0.25, maximum: 4 },
      // 'sse' streams base64 audio events: not served here; the audio itself streams.
      stream_format: { enum: ['audio'] },
      priority: common.priority,
    },
  },
  moderations: {
    type: 'object',
    required: ['input'],
    properties: {
      model: common.model,
      input: { type: ['string', 'array'], minItems: 1, items: { type: ['string', 'object'] } },
      priority: common.priority,
    },
  },
}

/**
 * A transcription arrives as a form: every field is text. Coercion turns `temperature: "0.2"` into 0.2 and a single
 * `timestamp_granularities` value into a list, in place, before the provider's param map sees them.
 */
const transcriptionSchema = {
  type: 'object',
  required: ['model', 'file'],
  properties: {
    model: common.model,
    file: { type: 'object' },
    language: { type: 'string' },
    prompt: { type: 'string' },
    response_format: { enum: ['json', 'text', 'srt', 'verbose_json', 'vtt', 'diarized_json'] },
    temperature: { type: 'number', minimum: 0, maximum: 1 },
    timestamp_granularities: { type: 'array', items: { enum: ['word', 'segment'] } },
    include: { type: 'array', items: { type: 'string' } },
    stream: { type: 'boolean' },
    priority: common.priority,
  },
}

const ajv = new Ajv({ allErrors: false, strict: false })
const validators = Object.fromEntries(
  Object.entries(schemas).map(([op, s]) => [op, ajv.compile(s)]),
) as Record<Operation, ValidateFunction>
validators.transcription = new Ajv({ allErrors: false, strict: false, coerceTypes: 'array' }).compile(transcriptionSchema)

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
  if (e.keyword === 'maxLength') {
    const limit = (e.params as { limit: number }).limit
    return gatewayError('GW_ERR_VALIDATION',
      `Invalid '${param}': string too long. Expected a string with maximum length ${limit}, but got a string with length ${[...String(value)].length} instead.`,
      { param, openaiCode: 'string_above_max_length' })
  }
  if (e.keyword === 'minLength') {
    return gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': empty string. Expected a string with minimum length 1.`, { param, openaiCode: 'empty_string' })
  }
  if (e.keyword === 'pattern') {
    return gatewayError('GW_ERR_VALIDATION', `Invalid value for '${param}': '${String(value)}'.`, { param, openaiCode: 'invalid_value' })
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => `'${String(v)}'`).join(', ')
    return gatewayError('GW_ERR_VALIDATION', `Invalid value: '${String(value)}'. Supported values are: ${allowed}.`, { param, openaiCode: 'invalid_value' })
  }
  return gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': ${e.message ?? 'invalid value'}.`, { param, openaiCode: 'invalid_value' })
}

/** Throws a 400 GatewayError naming the first invalid parameter. */
export function validateRequest(op: Operation, body: Record<string, unknown>): void {
  if (op === 'transcription') checkFile(body.file)
  const v = validators[op]
  if (!v(body)) throw toError(v.errors![0]!, body)
  if (body.stream === true && NO_STREAM.has(op)) {
    throw gatewayError('GW_ERR_VALIDATION', `Streaming (\`stream: true\`) is not supported for ${op} by this gateway; send the request without it.`,
      { param: 'stream', openaiCode: 'unsupported_value' })
  }
}

/** The upload must be one file part: a text field, or several files, under `file` is the caller's mistake. */
function checkFile(file: unknown): void {
  if (file === undefined) return
  if (!(file instanceof UploadFile)) {
    throw gatewayError('GW_ERR_VALIDATION', "Invalid 'file': expected one file upload (a multipart/form-data part with a filename).",
      { param: 'file', openaiCode: 'invalid_type' })
  }
  if (file.size === 0) throw gatewayError('GW_ERR_VALIDATION', "Invalid 'file': the uploaded file is empty.", { param: 'file', openaiCode: 'invalid_value' })
}
