/**
 * Validate bodies against OpenAI's published OpenAPI spec (../shared/data/openai/openapi.json, see that folder's
 * README, "Validation"): ajv's 2020-12 dialect, formats off, and every OpenAPI-3.0 `nullable: true` rewritten as
 * `anyOf: [schema, {type: 'null'}]` (without it the stream chunk schema rejects `finish_reason: null`).
 *
 * The spec (3.4 MB) is read and registered once per process; each schema is compiled on first use and cached.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction, type ErrorObject } from 'ajv/dist/2020.js'
import type { Test } from 'tap'

const SPEC_PATH = fileURLToPath(new URL('../../../shared/data/openai/openapi.json', import.meta.url))
const SPEC_ID = 'https://switchyard.test/openai/openapi.json'

let ajv: Ajv2020 | null = null
const compiled = new Map<string, ValidateFunction>()

/** `{..., nullable: true}` -> `{anyOf: [{...}, {type: 'null'}]}`, recursively. */
export function rewriteNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteNullable)
  if (!node || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable') out[k] = rewriteNullable(v)
  if ((node as Record<string, unknown>).nullable === true) {
    // Keep annotations outside; the schema proper goes into the first branch.
    const { description, title, default: dflt, ...schema } = out
    const wrapped: Record<string, unknown> = { anyOf: [schema, { type: 'null' }] }
    if (description !== undefined) wrapped.description = description
    if (title !== undefined) wrapped.title = title
    if (dflt !== undefined) wrapped.default = dflt
    return wrapped
  }
  return out
}

function instance(): Ajv2020 {
  if (ajv) return ajv
  const spec = JSON.parse(readFileSync(SPEC_PATH, 'utf8')) as { components: unknown }
  const a = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
  a.addSchema({ $id: SPEC_ID, components: rewriteNullable(spec.components) })
  ajv = a
  return a
}

/** The compiled validator for `#/components/schemas/<name>`. */
export function validator(name: string): ValidateFunction {
  let v = compiled.get(name)
  if (!v) {
    const a = instance()
    v = a.getSchema(`${SPEC_ID}#/components/schemas/${name}`)
    if (!v) throw new Error(`OpenAI spec has no schema components.schemas.${name}`)
    compiled.set(name, v)
  }
  return v
}

/** ajv errors of `body` against the named schema; empty when valid. */
export function schemaErrors(name: string, body: unknown): ErrorObject[] {
  const v = validator(name)
  return v(body) ? [] : [...(v.errors ?? [])]
}

function describe(errors: ErrorObject[]): string {
  return errors.slice(0, 8).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`).join('; ')
}

/** Assert that `body` validates against `components.schemas.<name>`; the failure message lists the first errors. */
export function assertSchema(t: Test, name: string, body: unknown, message = `body is a valid ${name}`): boolean {
  const errors = schemaErrors(name, body)
  return t.ok(errors.length === 0, message, errors.length ? { errors: describe(errors), body: JSON.stringify(body).slice(0, 2000) } : {})
}
