/**
 * Test helpers for the Bedrock adapter, shared by bedrock.test.ts and bedrock-gateway.test.ts:
 * - the recorded examples in ../shared/data/bedrock/examples;
 * - JSON Schemas built from the Bedrock Runtime API model (botocore service-2.json): each shape becomes a schema
 *   (structures closed with additionalProperties: false, unions exactly one member, enums, min/max, anchored
 *   patterns), so a body the adapter builds is checked against what AWS validates;
 * - OpenAI's spec for what the gateway emits (the `nullable` rewrite from ../shared/data/README.md);
 * - an independent SigV4 (AWS's documented algorithm, node:crypto only), to check the signer's output.
 */
import { createHash, createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'

export const examplePath = (name: string) => fileURLToPath(new URL(`../../../shared/data/bedrock/examples/${name}`, import.meta.url))
export const readExample = (name: string): any => JSON.parse(readFileSync(examplePath(name), 'utf8'))
export const readFrames = (name: string): Buffer => readFileSync(examplePath(name))

const SPEC_PATH = fileURLToPath(new URL('../../../shared/data/bedrock/bedrock-runtime-2023-09-30.service-2.json', import.meta.url))
const OPENAI_PATH = fileURLToPath(new URL('../../../shared/data/openai/openapi.json', import.meta.url))

type Shape = Record<string, any>

/** One botocore shape -> JSON Schema; members located in the URI or headers are not body fields. */
function shapeSchema(s: Shape): Record<string, unknown> {
  switch (s.type) {
    case 'structure': {
      if (s.document) return {}
      const properties: Record<string, unknown> = {}
      const bodyMembers = Object.entries(s.members as Record<string, Shape>).filter(([, m]) => !m.location)
      for (const [name, m] of bodyMembers) properties[name] = { $ref: `#/$defs/${m.shape}` }
      const required = (s.required as string[] | undefined ?? []).filter((r) => bodyMembers.some(([n]) => n === r))
      const out: Record<string, unknown> = { type: 'object', properties, additionalProperties: false }
      if (required.length) out.required = required
      if (s.union) Object.assign(out, { minProperties: 1, maxProperties: 1 })
      return out
    }
    case 'list':
      return { type: 'array', items: { $ref: `#/$defs/${s.member.shape}` }, ...(s.min !== undefined ? { minItems: s.min } : {}), ...(s.max !== undefined ? { maxItems: s.max } : {}) }
    case 'map':
      return { type: 'object', additionalProperties: { $ref: `#/$defs/${s.value.shape}` } }
    case 'string': {
      const out: Record<string, unknown> = { type: 'string' }
      if (s.enum) out.enum = s.enum
      if (s.min !== undefined) out.minLength = s.min
      if (s.max !== undefined) out.maxLength = s.max
      // AWS matches the whole value; patterns that anchor themselves are left as written.
      if (typeof s.pattern === 'string') {
        const p = /[\^$]/.test(s.pattern) ? s.pattern : `^(?:${s.pattern})$`
        try {
          new RegExp(p, 'u')
          out.pattern = p
        } catch {
          // a Java-only construct: length limits still apply
        }
      }
      return out
    }
    case 'blob':
      return { type: 'string', minLength: s.min ?? 0 } // base64 in JSON
    case 'integer':
    case 'long':
      return { type: 'integer', ...(s.min !== undefined ? { minimum: s.min } : {}), ...(s.max !== undefined ? { maximum: s.max } : {}) }
    case 'float':
    case 'double':
      return { type: 'number', ...(s.min !== undefined ? { minimum: s.min } : {}), ...(s.max !== undefined ? { maximum: s.max } : {}) }
    case 'boolean':
      return { type: 'boolean' }
    case 'timestamp':
      return { type: ['string', 'number'] }
    default:
      return {}
  }
}

let bedrockAjv: Ajv2020 | null = null
const bedrockValidators = new Map<string, ValidateFunction>()

/** A validator for one shape of the Bedrock Runtime model (`ConverseRequest`, `ConverseStreamOutput`, ...). */
export function bedrockShape(name: string): ValidateFunction {
  let v = bedrockValidators.get(name)
  if (v) return v
  if (!bedrockAjv) {
    const spec = JSON.parse(readFileSync(SPEC_PATH, 'utf8')) as { shapes: Record<string, Shape> }
    const $defs: Record<string, unknown> = {}
    for (const [k, s] of Object.entries(spec.shapes)) $defs[k] = shapeSchema(s)
    bedrockAjv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
    bedrockAjv.addSchema({ $id: 'bedrock', $defs })
  }
  v = bedrockAjv.compile({ $ref: `bedrock#/$defs/${name}` })
  bedrockValidators.set(name, v)
  return v
}

/** OpenAPI 3.0 `nullable: true` -> `anyOf [schema, null]`, as ../shared/data/README.md says. */
function rewriteNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteNullable)
  if (!node || typeof node !== 'object') return node
  const o: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable') o[k] = rewriteNullable(v)
  return (node as { nullable?: unknown }).nullable === true ? { anyOf: [o, { type: 'null' }] } : o
}

let openaiAjv: Ajv2020 | null = null
/** A validator for one OpenAI component schema (`CreateChatCompletionResponse`, ...). */
export function openaiSchema(name: string): ValidateFunction {
  if (!openaiAjv) {
    const spec = JSON.parse(readFileSync(OPENAI_PATH, 'utf8')) as { components: unknown }
    openaiAjv = new Ajv2020({ strict: false, validateFormats: false })
    openaiAjv.addSchema({ $id: 'openai', components: rewriteNullable(spec.components) })
  }
  return openaiAjv.getSchema(`openai#/components/schemas/${name}`)!
}

const hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest()

/** AWS's URI encoding (RFC 3986 unreserved kept), applied to one path segment. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

export interface SigV4Input {
  method: string
  /** The path as sent on the wire (already URL-encoded once). */
  path: string
  /** The headers to sign, names in any case. */
  headers: Record<string, string>
  body: string
  amzDate: string
  accessKeyId: string
  secretAccessKey: string
  region: string
  service: string
}

/**
 * The Authorization header value AWS expects, computed from the documented steps
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html): the canonical URI
 * encodes each segment of the path as sent once more (all services but S3), so `%3A` becomes `%253A`.
 */
export function sigV4Reference(i: SigV4Input): { authorization: string; canonicalRequest: string } {
  const names = Object.keys(i.headers).map((h) => h.toLowerCase()).sort()
  const lower: Record<string, string> = {}
  for (const [k, v] of Object.entries(i.headers)) lower[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ')
  const canonicalUri = i.path.split('/').map(uriEncode).join('/')
  const canonicalRequest = [
    i.method, canonicalUri, '', ...names.map((n) => `${n}:${lower[n]}`), '', names.join(';'), hex(i.body),
  ].join('\n')
  const day = i.amzDate.slice(0, 8)
  const scope = `${day}/${i.region}/${i.service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', i.amzDate, scope, hex(canonicalRequest)].join('\n')
  const key = hmac(hmac(hmac(hmac(`AWS4${i.secretAccessKey}`, day), i.region), i.service), 'aws4_request')
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex')
  return {
    authorization: `AWS4-HMAC-SHA256 Credential=${i.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
    canonicalRequest,
  }
}

/** `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=a;b, Signature=...` */
export function parseAuthorization(h: string): { accessKeyId: string; day: string; region: string; service: string; signedHeaders: string[]; signature: string } | null {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(h)
  if (!m) return null
  return { accessKeyId: m[1]!, day: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! }
}
