/**
 * JSON Schema (what OpenAI tools and `response_format.json_schema` carry) -> the OpenAPI-3.0 subset Gemini takes as
 * `Schema` (FunctionDeclaration.parameters, GenerationConfig.responseSchema). Gemini answers 400 to keywords outside
 * that subset (`$schema`, `additionalProperties`, `$ref`, `strict`, most `format`s), so, as LiteLLM does
 * (`_build_vertex_schema`), the schema is rewritten instead of sent as given:
 * - local `$ref`s into `$defs` / `definitions` are inlined (recursion is refused past MAX_DEPTH, not looped);
 * - `anyOf: [X, {type: null}]` and `type: [X, 'null']` become `X` with `nullable: true`; `oneOf` is read as `anyOf`;
 * - `const` becomes a one-value `enum`; an object with `properties` but no `type` gets `OBJECT`;
 * - types are written as Gemini's `Type` enum (`STRING`, `OBJECT`, ...), int64 bounds as strings (proto3 JSON);
 * - every other keyword is dropped (a whitelist: new JSON Schema keywords cannot leak through).
 * Spec: ../shared/data/gemini/openapi.v1beta.json, components.schemas.Schema.
 */
import { gatewayError } from '../../core/errors.js'

type Obj = Record<string, unknown>

/** Deeper than this is a recursive `$ref` or a schema no model needs; refused with a 400 rather than a stack overflow. */
const MAX_DEPTH = 32

/** Keywords copied as they are (Gemini's Schema fields that need no rewriting). `title` is dropped, as LiteLLM does. */
const COPY: ReadonlySet<string> = new Set(['description', 'nullable', 'minimum', 'maximum', 'pattern', 'example', 'default'])

/** Schema fields typed int64 in the spec: proto3 JSON writes them as strings. */
const INT64: ReadonlySet<string> = new Set(['minItems', 'maxItems', 'minProperties', 'maxProperties', 'minLength', 'maxLength'])

/** The only `format`s Gemini accepts per type; any other format is a 400 upstream, so it is dropped. */
const FORMATS: Readonly<Record<string, ReadonlySet<string>>> = {
  STRING: new Set(['enum', 'date-time']),
  NUMBER: new Set(['float', 'double']),
  INTEGER: new Set(['int32', 'int64']),
}

const TYPES: Readonly<Record<string, string>> = {
  string: 'STRING', number: 'NUMBER', integer: 'INTEGER', boolean: 'BOOLEAN', array: 'ARRAY', object: 'OBJECT', null: 'NULL',
}

interface Ctx {
  defs: Obj
  /** Set for response schemas: `propertyOrdering` keeps the JSON keys in the order the schema gave them. */
  ordering: boolean
  param: string
}

/**
 * The Gemini Schema for a JSON Schema. `param` names the request field in a 400 (`tools`, `response_format`).
 * Returns undefined for an object schema without properties (a tool that takes no arguments): Gemini rejects an
 * OBJECT with empty `properties`, and a declaration without `parameters` means the same.
 */
export function toGeminiSchema(schema: unknown, param: string, ordering = false): Obj | undefined {
  if (!isObj(schema)) return undefined
  const defs = { ...(isObj(schema.definitions) ? schema.definitions : {}), ...(isObj(schema.$defs) ? schema.$defs : {}) }
  const out = convert(schema, { defs, ordering, param }, 0)
  if (out.type === 'OBJECT' && (!isObj(out.properties) || Object.keys(out.properties).length === 0) && !out.anyOf) return undefined
  return out
}

function convert(node: Obj, ctx: Ctx, depth: number): Obj {
  if (depth > MAX_DEPTH) {
    throw gatewayError('GW_ERR_VALIDATION',
      `Invalid '${ctx.param}': the JSON schema nests deeper than ${MAX_DEPTH} levels (a recursive $ref?), which Gemini cannot take.`,
      { param: ctx.param })
  }
  const s = typeof node.$ref === 'string' ? { ...resolve(node.$ref, ctx), ...withoutRef(node) } : node
  const out: Obj = {}
  for (const k in s) {
    if (COPY.has(k)) out[k] = s[k]
    else if (INT64.has(k) && typeof s[k] === 'number') out[k] = String(s[k])
  }
  if (Array.isArray(s.enum)) out.enum = s.enum.map(String)
  else if (s.const !== undefined) out.enum = [String(s.const)]

  applyType(s, out, ctx, depth)

  if (isObj(s.properties)) {
    const props: Obj = {}
    for (const name of Object.keys(s.properties)) {
      const p = s.properties[name]
      // Names are data, not keywords: a property called `$schema` or `title` is kept.
      props[name] = isObj(p) ? convert(p, ctx, depth + 1) : {}
    }
    out.properties = props
    out.type ??= 'OBJECT'
    if (ctx.ordering && Object.keys(props).length > 1) out.propertyOrdering = Object.keys(props)
  }
  if (Array.isArray(s.required) && s.required.length) out.required = s.required.filter((r) => typeof r === 'string')
  if (isObj(s.items)) out.items = convert(s.items, ctx, depth + 1)
  if (out.enum && out.type === undefined) out.type = 'STRING'
  if (typeof s.format === 'string' && typeof out.type === 'string' && FORMATS[out.type]?.has(s.format)) out.format = s.format
  return out
}

/** `type` (a name or a list), `anyOf` / `oneOf`: null folds into `nullable`, several types become `anyOf`. */
function applyType(s: Obj, out: Obj, ctx: Ctx, depth: number): void {
  if (typeof s.type === 'string') {
    out.type = TYPES[s.type] ?? s.type.toUpperCase()
  } else if (Array.isArray(s.type)) {
    const named = s.type.filter((t): t is string => typeof t === 'string' && t !== 'null')
    if (named.length !== s.type.length) out.nullable = true
    if (named.length === 1) out.type = TYPES[named[0]!] ?? named[0]!.toUpperCase()
    else if (named.length > 1) out.anyOf = named.map((t) => ({ type: TYPES[t] ?? t.toUpperCase() }))
  }
  const alternatives = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : null
  if (!alternatives) return
  const branches: Obj[] = []
  for (const a of alternatives) {
    if (!isObj(a)) continue
    if (a.type === 'null' && Object.keys(a).length === 1) out.nullable = true
    else branches.push(convert(a, ctx, depth + 1))
  }
  if (branches.length === 1) {
    // `X | null`: the one branch is the schema itself, marked nullable (what Gemini's docs show).
    for (const k in branches[0]!) if (out[k] === undefined) out[k] = branches[0]![k]
  } else if (branches.length > 1) {
    out.anyOf = branches
  }
}

function resolve(ref: string, ctx: Ctx): Obj {
  const slash = ref.lastIndexOf('/')
  const name = slash === -1 ? ref : ref.slice(slash + 1)
  const target = ref.startsWith('#/') ? ctx.defs[name] : undefined
  if (!isObj(target)) {
    throw gatewayError('GW_ERR_VALIDATION',
      `Invalid '${ctx.param}': the JSON schema references ${ref}, which is not among its $defs; Gemini takes no $ref, so it must resolve locally.`,
      { param: ctx.param })
  }
  return target
}

function withoutRef(node: Obj): Obj {
  const { $ref: _r, ...rest } = node
  return rest
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}
