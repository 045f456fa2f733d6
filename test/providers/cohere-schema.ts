/**
 * JSON Schemas (2020-12) for the Cohere v2 request bodies the adapter builds, written for these tests from Cohere's
 * API reference (https://docs.cohere.com/reference/chat, /reference/embed; the `ChatMessageV2`, `ToolV2`,
 * `ResponseFormatV2`, `Thinking` and `V2EmbedRequest` shapes) and checked against the recorded requests in
 * ../shared/data/cohere/. The full spec is proprietary and not vendored, so this is a transcription of the fields
 * and constraints, not a copy. `additionalProperties: false` at every level a translator writes, so an OpenAI-only
 * field leaking through (`top_p`, `n`, `user`, `stop`, `max_completion_tokens`, a message `name`) fails.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'

const text = { type: 'object', required: ['type', 'text'], additionalProperties: false, properties: { type: { const: 'text' }, text: { type: 'string' } } }
const thinking = { type: 'object', required: ['type', 'thinking'], additionalProperties: false, properties: { type: { const: 'thinking' }, thinking: { type: 'string' } } }
const image = {
  type: 'object', required: ['type', 'image_url'], additionalProperties: false,
  properties: {
    type: { const: 'image_url' },
    image_url: { type: 'object', required: ['url'], additionalProperties: false, properties: { url: { type: 'string' }, detail: { enum: ['auto', 'low', 'high'] } } },
  },
}
const document = {
  type: 'object', required: ['type', 'document'], additionalProperties: false,
  properties: { type: { const: 'document' }, document: { type: 'object', required: ['data'], properties: { data: { type: 'object' }, id: { type: 'string' } } } },
}
const contentOf = (...parts: object[]) => ({ oneOf: [{ type: 'string' }, { type: 'array', items: { oneOf: parts } }] })

const toolCall = {
  type: 'object', required: ['id', 'type'], additionalProperties: false,
  properties: {
    id: { type: 'string' },
    type: { const: 'function' },
    function: { type: 'object', additionalProperties: false, properties: { name: { type: 'string' }, arguments: { type: 'string' } } },
  },
}

const message = {
  oneOf: [
    { type: 'object', required: ['role', 'content'], additionalProperties: false, properties: { role: { const: 'system' }, content: contentOf(text) } },
    { type: 'object', required: ['role', 'content'], additionalProperties: false, properties: { role: { const: 'user' }, content: contentOf(text, image) } },
    {
      type: 'object', required: ['role'], additionalProperties: false,
      properties: {
        role: { const: 'assistant' },
        content: contentOf(text, thinking),
        tool_calls: { type: 'array', items: toolCall },
        tool_plan: { type: 'string' },
        citations: { type: 'array' },
      },
    },
    {
      type: 'object', required: ['role', 'tool_call_id', 'content'], additionalProperties: false,
      properties: { role: { const: 'tool' }, tool_call_id: { type: 'string' }, content: contentOf(text, document) },
    },
  ],
}

const tool = {
  type: 'object', required: ['type', 'function'], additionalProperties: false,
  properties: {
    type: { const: 'function' },
    function: {
      type: 'object', required: ['name', 'parameters'], additionalProperties: false,
      properties: { name: { type: 'string' }, description: { type: 'string' }, parameters: { type: 'object' } },
    },
  },
}

export const chatRequestSchema = {
  $id: 'https://switchyard.test/cohere/v2-chat-request',
  type: 'object',
  required: ['model', 'messages'],
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    stream: { type: 'boolean' },
    messages: { type: 'array', items: message },
    tools: { type: 'array', items: tool },
    strict_tools: { type: 'boolean' },
    documents: { type: 'array', items: { oneOf: [{ type: 'string' }, { type: 'object', required: ['data'] }] } },
    citation_options: { type: 'object', properties: { mode: { enum: ['ENABLED', 'DISABLED', 'FAST', 'ACCURATE', 'OFF'] } } },
    response_format: {
      oneOf: [
        { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { const: 'text' } } },
        { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { const: 'json_object' }, json_schema: { type: 'object' } } },
      ],
    },
    safety_mode: { enum: ['CONTEXTUAL', 'STRICT', 'OFF'] },
    max_tokens: { type: 'integer' },
    stop_sequences: { type: 'array', items: { type: 'string' } },
    temperature: { type: 'number', minimum: 0, maximum: 1 },
    seed: { type: 'integer', minimum: 0 },
    frequency_penalty: { type: 'number', minimum: 0, maximum: 1 },
    presence_penalty: { type: 'number', minimum: 0, maximum: 1 },
    k: { type: 'integer', minimum: 0, maximum: 500 },
    p: { type: 'number', minimum: 0.01, maximum: 0.99 },
    logprobs: { type: 'boolean' },
    tool_choice: { enum: ['REQUIRED', 'NONE'] },
    thinking: {
      type: 'object', required: ['type'], additionalProperties: false,
      properties: { type: { enum: ['enabled', 'disabled'] }, token_budget: { type: 'integer', minimum: 1 } },
    },
    priority: { type: 'integer', minimum: 0, maximum: 999 },
  },
}

export const embedRequestSchema = {
  $id: 'https://switchyard.test/cohere/v2-embed-request',
  type: 'object',
  required: ['model', 'input_type'],
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    texts: { type: 'array', minItems: 1, maxItems: 96, items: { type: 'string' } },
    images: { type: 'array', minItems: 1, items: { type: 'string' } },
    input_type: { enum: ['search_document', 'search_query', 'classification', 'clustering', 'image'] },
    embedding_types: { type: 'array', items: { enum: ['float', 'int8', 'uint8', 'binary', 'ubinary', 'base64'] } },
    output_dimension: { type: 'integer' },
    max_tokens: { type: 'integer' },
    truncate: { enum: ['NONE', 'START', 'END'] },
  },
}

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
const chatValidator: ValidateFunction = ajv.compile(chatRequestSchema)
const embedValidator: ValidateFunction = ajv.compile(embedRequestSchema)

function run(v: ValidateFunction, body: unknown): ErrorObject[] {
  return v(body) ? [] : [...(v.errors ?? [])]
}

/** ajv errors of a /v2/chat body; empty when valid. */
export const chatRequestErrors = (body: unknown): ErrorObject[] => run(chatValidator, body)
/** ajv errors of a /v2/embed body; empty when valid. */
export const embedRequestErrors = (body: unknown): ErrorObject[] => run(embedValidator, body)

export function describeErrors(errors: ErrorObject[]): string {
  return errors.slice(0, 6).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`).join('; ')
}
