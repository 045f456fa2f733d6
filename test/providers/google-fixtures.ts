/**
 * Shared by the Gemini and Vertex AI tests: the recorded Google traffic in ../shared/data/gemini/recordings (real
 * HTTP exchanges from googleapis/js-genai's system tests: request and response bodies, one segment per SSE event)
 * and a validator for the bodies the gateway builds, against the Gemini API's own spec (openapi.v1beta.json).
 *
 * The spec's object schemas list their fields but do not close them, so a misspelt field (`inline_data`,
 * `maxTokens`) would pass; the validator here closes every object schema that lists properties and says nothing
 * about others (`additionalProperties: false`), so only fields Gemini defines get through. `model` is dropped from
 * GenerateContentRequest's `required`: it is the URL's path parameter, and Google's own SDK (the recordings) never
 * sends it in the body.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import type { Test } from 'tap'
import type { Target } from '../../providers/types.js'

const DATA = '../../../shared/data/gemini/'
const SPEC_ID = 'https://switchyard.test/gemini/openapi.json'

export interface Interaction {
  request: { method: string; url: string; bodySegments: any[] }
  response: { statusCode: number; headers: Record<string, string>; bodySegments: any[] }
}

/** The interactions of one recording, by file name without `.json`. */
export function recording(name: string): Interaction[] {
  const path = fileURLToPath(new URL(`${DATA}recordings/${name}.json`, import.meta.url))
  return (JSON.parse(readFileSync(path, 'utf8')) as { interactions: Interaction[] }).interactions
}

export const REC = {
  generate: 'Client_Tests_generateContent_ML_Dev_should_generate_content_with_specified_parameters',
  generateVertex: 'Client_Tests_generateContent_Vertex_AI_should_generate_content_with_specified_parameters',
  functionDecl: 'Client_Tests_generateContent_ML_Dev_should_be_able_to_help_build_the_FunctionDeclaration',
  stream: 'Client_Tests_generateContentStream_ML_Dev_should_stream_generate_content_with_specified_parameters',
  streamVertex: 'Client_Tests_generateContentStream_Vertex_AI_should_stream_generate_content_with_specified_parameters',
  functionStream: 'Chats_Tests_chats_function_calling_Google_AI_with_function_calling_stream',
  notFound: 'Chats_Tests_sendMessage_Send_message_stream_with_error',
  embedVertex: 'Client_Tests_embedContent_Vertex_AI_should_embed_content_with_specified_parameters',
} as const

/** The SSE body Google sent for a streamed interaction: one `data:` event per recorded segment. */
export function sseBody(segments: readonly unknown[]): string {
  return segments.map((s) => `data: ${JSON.stringify(s)}\r\n\r\n`).join('')
}

let ajv: Ajv2020 | null = null
const compiled = new Map<string, ValidateFunction>()

/** Close object schemas that list properties (see the header); recursive. */
function closeObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeObjects)
  if (!node || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' ? mapValues(v as Record<string, unknown>) : closeObjects(v)
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false
  return out
}

function mapValues(props: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(props)) out[k] = closeObjects(v)
  return out
}

function instance(): Ajv2020 {
  if (ajv) return ajv
  const spec = JSON.parse(readFileSync(fileURLToPath(new URL(`${DATA}openapi.v1beta.json`, import.meta.url)), 'utf8'))
  const schemas = closeObjects(spec.components.schemas) as Record<string, any>
  schemas.GenerateContentRequest.required = ['contents']
  ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
  ajv.addSchema({ $id: SPEC_ID, components: { schemas } })
  return ajv
}

export function geminiSchemaErrors(name: string, body: unknown): ErrorObject[] {
  let v = compiled.get(name)
  if (!v) {
    v = instance().getSchema(`${SPEC_ID}#/components/schemas/${name}`)
    if (!v) throw new Error(`Gemini spec has no schema ${name}`)
    compiled.set(name, v)
  }
  return v(body) ? [] : [...(v.errors ?? [])]
}

/** Assert that a body the gateway builds is a valid `name` of the Gemini spec (closed objects, see the header). */
export function assertGeminiSchema(t: Test, name: string, body: unknown, message = `valid ${name}`): boolean {
  const errors = geminiSchemaErrors(name, body)
  const detail = errors.slice(0, 6).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('; ')
  return t.ok(errors.length === 0, message, errors.length ? { errors: detail, body: JSON.stringify(body).slice(0, 1500) } : {})
}

export function target(provider: string, over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'm', provider, model: 'gemini-2.5-flash', timeoutMs: 5_000, streamTimeoutMs: 5_000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, params: {}, ...over,
  }
}
