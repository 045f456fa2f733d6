/**
 * Mistral test data, shared by the unit and gateway tests. ../shared/data/mistral holds Mistral's OpenAPI spec
 * (openapi.json) but no recorded traffic, so the replies here are authored from the spec's schemas
 * (ChatCompletionChoice, UsageInfo, CompletionChunk, ContentChunk/ThinkChunk) and its own embeddings example, and
 * the unit test checks every one of them against those schemas before using it. Validation: ajv's 2020-12 dialect,
 * formats off (shared/data/README.md "Validation").
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import type { Test } from 'tap'

const SPEC_PATH = fileURLToPath(new URL('../../../shared/data/mistral/openapi.json', import.meta.url))
const SPEC_ID = 'https://switchyard.test/mistral/openapi.json'

export const mistralSpec: any = JSON.parse(readFileSync(SPEC_PATH, 'utf8'))

let ajv: Ajv2020 | null = null
const compiled = new Map<string, ValidateFunction>()

function validator(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (v) return v
  if (!ajv) {
    ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
    ajv.addSchema({ $id: SPEC_ID, components: mistralSpec.components })
  }
  v = ajv.getSchema(`${SPEC_ID}#/components/schemas/${name}`)
  if (!v) throw new Error(`Mistral spec has no schema components.schemas.${name}`)
  compiled.set(name, v)
  return v
}

export function mistralSchemaErrors(name: string, body: unknown): ErrorObject[] {
  const v = validator(name)
  return v(body) ? [] : [...(v.errors ?? [])]
}

export function assertMistralSchema(t: Test, name: string, body: unknown, message = `body is a valid Mistral ${name}`): boolean {
  const errors = mistralSchemaErrors(name, body)
  return t.ok(errors.length === 0, message, errors.length ? { errors: errors.slice(0, 6).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join('; ') } : {})
}

/** The spec's own embeddings reply example (paths./v1/embeddings 200 userExample). */
export const embeddingsExample: any = mistralSpec.paths['/v1/embeddings'].post.responses['200'].content['application/json'].examples.userExample.value

const base = { id: 'cmpl-e5cc70bb28c444948073e77776eb30ef', object: 'chat.completion', model: 'mistral-small-latest', created: 1702256327 }

export const chatResponse = {
  ...base,
  usage: { prompt_tokens: 16, completion_tokens: 34, total_tokens: 50 },
  choices: [{ index: 0, message: { role: 'assistant', content: 'The sky looks blue because of Rayleigh scattering.', tool_calls: null, prefix: false }, finish_reason: 'stop' }],
}

export const toolResponse = {
  ...base,
  usage: { prompt_tokens: 82, completion_tokens: 21, total_tokens: 103 },
  choices: [{
    index: 0,
    message: { role: 'assistant', content: '', tool_calls: [{ id: 'D681PevKs', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' }, index: 0 }] },
    finish_reason: 'tool_calls',
  }],
}

/** A Magistral reply: content as a list of a thinking chunk and a text chunk. */
export const magistralResponse = {
  ...base,
  model: 'magistral-medium-latest',
  usage: { prompt_tokens: 10, completion_tokens: 120, total_tokens: 130 },
  choices: [{
    index: 0,
    message: { role: 'assistant', content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'Six times seven is 42.' }] }, { type: 'text', text: '42' }] },
    finish_reason: 'stop',
  }],
}

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ id: 'a1b2c3', object: 'chat.completion.chunk', created: 1702256327, model: 'mistral-small-latest', choices, ...extra })

export const textChunks = [
  chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
  chunk([{ index: 0, delta: { content: 'Hello' }, finish_reason: null }]),
  chunk([{ index: 0, delta: { content: ' world' }, finish_reason: 'stop' }], { usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } }),
]

export const toolChunks = [
  chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
  chunk([{ index: 0, delta: { tool_calls: [{ id: 'D681PevKs', function: { name: 'get_weather', arguments: '{"city": "Paris"}' }, index: 0 }] }, finish_reason: 'tool_calls' }],
    { usage: { prompt_tokens: 82, completion_tokens: 21, total_tokens: 103 } }),
]

export const magistralChunks = [
  chunk([{ index: 0, delta: { role: 'assistant', content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'Six times ' }] }] }, finish_reason: null }]),
  chunk([{ index: 0, delta: { content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'seven.' }] }] }, finish_reason: null }]),
  chunk([{ index: 0, delta: { content: '42' }, finish_reason: 'stop' }], { usage: { prompt_tokens: 10, completion_tokens: 30, total_tokens: 40 } }),
]

/** Chunks as Mistral's SSE body: `data: {...}` events, then `data: [DONE]`. */
export const sse = (chunks: unknown[], done = true): string => chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + (done ? 'data: [DONE]\n\n' : '')
