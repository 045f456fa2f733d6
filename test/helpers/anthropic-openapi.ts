/**
 * Validate bodies against Anthropic's published spec (../shared/data/anthropic/openapi.yaml, JSON text despite the
 * name; see that folder's README, "Validation"). The spec is OpenAPI 3.1, so its schemas are JSON Schema 2020-12
 * already: nullable fields are written `anyOf: [..., {type: 'null'}]` and no `nullable` rewrite is needed (unlike
 * OpenAI's 3.0 spec in ./openapi.ts). ajv runs with strict off (the spec carries `discriminator` and `x-stainless-*`
 * annotations) and formats off (`format: byte`).
 *
 * "Strict" here is the spec's own strictness: it lists every response field as required, nullable ones included,
 * so a body missing `stop_sequence` or `citations` fails even though the real SDKs would parse it.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction, type ErrorObject } from 'ajv/dist/2020.js'
import type { Test } from 'tap'

const SPEC_PATH = fileURLToPath(new URL('../../../shared/data/anthropic/openapi.yaml', import.meta.url))
const SPEC_ID = 'https://switchyard.test/anthropic/openapi.json'

let ajv: Ajv2020 | null = null
const compiled = new Map<string, ValidateFunction>()

function instance(): Ajv2020 {
  if (ajv) return ajv
  const spec = JSON.parse(readFileSync(SPEC_PATH, 'utf8')) as { components: unknown }
  const a = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
  a.addSchema({ $id: SPEC_ID, components: spec.components })
  ajv = a
  return a
}

/** The compiled validator for `#/components/schemas/<name>`. */
export function anthropicValidator(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (!v) {
    v = instance().getSchema(`${SPEC_ID}#/components/schemas/${name}`)
    if (!v) throw new Error(`Anthropic spec has no schema components.schemas.${name}`)
    compiled.set(name, v)
  }
  return v
}

/** ajv errors of `body` against the named schema; empty when valid. */
export function anthropicSchemaErrors(name: string, body: unknown): ErrorObject[] {
  const v = anthropicValidator(name)
  return v(body) ? [] : [...(v.errors ?? [])]
}

function describe(errors: ErrorObject[]): string {
  return errors.slice(0, 8).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`).join('; ')
}

/** Assert that `body` validates against `components.schemas.<name>`; the failure message lists the first errors. */
export function assertAnthropicSchema(t: Test, name: string, body: unknown, message = `body is a valid Anthropic ${name}`): boolean {
  const errors = anthropicSchemaErrors(name, body)
  return t.ok(errors.length === 0, message, errors.length ? { errors: describe(errors), body: JSON.stringify(body).slice(0, 2000) } : {})
}

/** Stream event type -> its schema (MessageStreamEvent's parts; `error` events are ErrorResponse bodies). */
export const EVENT_SCHEMAS: Readonly<Record<string, string>> = {
  message_start: 'MessageStartEvent',
  message_delta: 'MessageDeltaEvent',
  message_stop: 'MessageStopEvent',
  content_block_start: 'ContentBlockStartEvent',
  content_block_delta: 'ContentBlockDeltaEvent',
  content_block_stop: 'ContentBlockStopEvent',
  error: 'ErrorResponse',
}
