/**
 * Ollama test data, shared by the unit and gateway tests: the recorded examples from ollama/ollama docs/api.md
 * (../shared/data/ollama/examples, see that folder's README) and validation against Ollama's own OpenAPI spec
 * (openapi.yaml, 3.1: ajv's 2020-12 dialect, formats off, as shared/data/README.md "Validation" says).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import { parse } from 'yaml'
import type { Test } from 'tap'
import type { ResponseMeta, Target } from '../../providers/types.js'

const dataPath = (name: string) => fileURLToPath(new URL(`../../../shared/data/ollama/${name}`, import.meta.url))

/** A recorded example's text (NDJSON streams) or parsed JSON. */
export const fixtureText = (name: string): string => readFileSync(dataPath(`examples/${name}`), 'utf8')
export const fixture = (name: string): any => JSON.parse(fixtureText(name))

/** The recorded request bodies, without the provenance fields around them. */
export const requestOf = (name: string): Record<string, unknown> => fixture(name).request

/** The NDJSON lines of a recorded stream, parsed. */
export const streamLines = (name: string): any[] => fixtureText(name).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))

const SPEC_ID = 'https://switchyard.test/ollama/openapi.yaml'
let ajv: Ajv2020 | null = null
const compiled = new Map<string, ValidateFunction>()

export const ollamaSpec = (): any => parse(readFileSync(dataPath('openapi.yaml'), 'utf8'))

function validator(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (v) return v
  if (!ajv) {
    ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
    ajv.addSchema({ $id: SPEC_ID, components: ollamaSpec().components })
  }
  v = ajv.getSchema(`${SPEC_ID}#/components/schemas/${name}`)
  if (!v) throw new Error(`Ollama spec has no schema components.schemas.${name}`)
  compiled.set(name, v)
  return v
}

export function ollamaSchemaErrors(name: string, body: unknown): ErrorObject[] {
  const v = validator(name)
  return v(body) ? [] : [...(v.errors ?? [])]
}

/** Assert `body` is a valid Ollama `components.schemas.<name>` (ChatRequest, EmbedRequest, ...). */
export function assertOllamaSchema(t: Test, name: string, body: unknown, message = `body is a valid Ollama ${name}`): boolean {
  const errors = ollamaSchemaErrors(name, body)
  return t.ok(errors.length === 0, message, errors.length ? { errors: errors.slice(0, 6).map((e) => `${e.instancePath} ${e.message}`).join('; ') } : {})
}

/** An `ollama_chat/llama3.2` deployment as buildTarget makes it. */
export function target(over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'llama', provider: 'ollama_chat', model: 'llama3.2', timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, ...over,
  }
}

export const meta = (over: Partial<Target> = {}): ResponseMeta => ({ target: target(over), requestId: 'req-1', created: 1_700_000_000 })
