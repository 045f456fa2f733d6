/**
 * The bad-input generator of the fuzz suite (fuzz.test.ts): seeded and deterministic, so a failure is replayed with
 * `FUZZ_SEED=<seed> npx tap test/robust/fuzz.test.ts`.
 *
 * Each JSON route is described by the fields of a valid body (ROUTE_BODIES): name, accepted JSON types, a valid
 * value, required or not. A case is that valid body with ONE mutation: a wrong type, a missing field, extra fields,
 * `__proto__` / `constructor` / `prototype` keys, a huge string or array, deep nesting, odd numbers, null, a
 * non-object top level, truncated JSON, no body, invalid UTF-8, a BOM, an odd content type. Bodies are built as text
 * or raw bytes (never only through JSON.stringify, which drops a `__proto__` set by assignment and cannot write
 * invalid UTF-8), so the gateway sees exactly the bytes an attacker would send.
 *
 * A case says what it may get back: 'client-error' (must be 4xx) or 'no-server-error' (2xx or 4xx: the mutation may
 * be valid, e.g. an unknown extra field, which LiteLLM keeps). Never a 5xx, an empty body or no answer.
 */

/** mulberry32: a 32-bit state PRNG, enough to pick mutations reproducibly (not for anything secret). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The seed: FUZZ_SEED when set, else a fresh one (printed by the test, so a failing run can be replayed). */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FUZZ_SEED
  if (given !== undefined && given !== '') {
    const n = Number(given)
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`FUZZ_SEED must be a non-negative integer, got ${given}`)
    return n >>> 0
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0
}

export class Gen {
  readonly next: () => number
  private counter = 0
  /** Ids of the records the test created first (a key, a team, ...), for bodies that must name existing ones. */
  constructor(readonly seed: number, readonly refs: Readonly<Record<string, string>> = {}) {
    this.next = mulberry32(seed)
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }

  /** A fresh id, unique within the run (so creates do not all collide on one id). */
  id(prefix = 'fz'): string {
    return `${prefix}-${this.seed.toString(36)}-${(this.counter++).toString(36)}`
  }

  ref(name: string): string {
    const v = this.refs[name]
    if (v === undefined) throw new Error(`fuzz: no fixture named '${name}'`)
    return v
  }
}

export type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null'

export interface Field {
  /** A valid value, or how to make one (a fresh id, a fixture's id). */
  valid: unknown
  /** The JSON types the route accepts ('null' when nullable). */
  types: readonly JsonType[]
  required: boolean
  /** The route refuses values outside `types` (a wrong type must be a 4xx); false when it fills the field itself. */
  strict: boolean
}

export interface RouteBody {
  fields: Record<string, Field>
  /** The route takes no body at all as valid (its input can come from the path). */
  optionalBody?: boolean
}

/** A field: `types` as 'string|null', a valid value (or a function of the generator), flags. */
export function field(types: string, valid: unknown, opts: { required?: boolean; strict?: boolean } = {}): Field {
  return { types: types.split('|') as JsonType[], valid, required: opts.required ?? false, strict: opts.strict ?? true }
}
const fresh = (prefix: string) => (g: Gen) => g.id(prefix)
const ref = (name: string) => (g: Gen) => g.ref(name)
const req = { required: true }

function chatBody(fromPath: boolean): RouteBody {
  return {
    fields: {
      // On /openai/deployments/:model/... and /engines/:model/... the path names the model when the body does not.
      model: field('string', (g: Gen) => g.pick(['mock', 'gpt-4o-mini']), { required: !fromPath, strict: !fromPath }),
      messages: field('array', [{ role: 'user', content: 'hi' }], req),
      max_tokens: field('integer|null', 8),
      temperature: field('number|null', 0.5),
      stream: field('boolean|null', false),
      user: field('string', 'fz-end-user'),
      stop: field('string|array|null', ['\n\n']),
    },
  }
}

function completionBody(fromPath: boolean): RouteBody {
  return {
    fields: {
      model: field('string', (g: Gen) => g.pick(['mock', 'gpt-3.5-turbo-instruct']), { required: !fromPath, strict: !fromPath }),
      prompt: field('string|array', 'Say hi', req),
      max_tokens: field('integer|null', 8),
      echo: field('boolean|null', false),
    },
  }
}

function embeddingBody(fromPath: boolean): RouteBody {
  return {
    fields: {
      model: field('string', (g: Gen) => g.pick(['mock-embedding', 'text-embedding-3-small']), { required: !fromPath, strict: !fromPath }),
      input: field('string|array', 'hello', req),
      dimensions: field('integer', 8),
      encoding_format: field('string', 'float'),
    },
  }
}

function imagesBody(fromPath: boolean): RouteBody {
  return {
    fields: {
      model: field('string', 'dall-e-3', { required: !fromPath, strict: !fromPath }),
      prompt: field('string', 'a lighthouse', req),
      n: field('integer|null', 1),
      size: field('string|null', '1024x1024'),
      response_format: field('string|null', 'b64_json'),
    },
  }
}

function speechBody(fromPath: boolean): RouteBody {
  return {
    fields: {
      model: field('string', 'tts-1', { required: !fromPath, strict: !fromPath }),
      input: field('string', 'Hello there', req),
      voice: field('string|object', 'alloy', req), // a custom voice is {id}
      response_format: field('string|null', 'mp3'),
      speed: field('number|null', 1),
    },
  }
}

/** The model is optional: moderations default to omni-moderation-latest. */
const moderationsBody: RouteBody = {
  fields: { model: field('string', 'omni-moderation-latest', { strict: false }), input: field('string|array', 'some text', req) },
}

/** The Anthropic Messages API (count_tokens takes no max_tokens). */
function messagesBody(create: boolean): RouteBody {
  const fields: RouteBody['fields'] = {
    model: field('string', (g: Gen) => g.pick(['mock', 'gpt-4o-mini']), req),
    messages: field('array', [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], req),
    system: field('string|array|null', 'Be brief.'),
    temperature: field('number|null', 0.5),
    stop_sequences: field('array|null', ['\n\n']),
    metadata: field('object|null', { user_id: 'fz-end-user' }),
    tools: field('array|null', [{ name: 'lookup', description: 'Look a word up', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }]),
  }
  if (create) {
    fields.max_tokens = field('integer', 8, req)
    fields.stream = field('boolean|null', false)
  }
  return { fields }
}

/** The OpenAI Responses API. */
const responsesBody: RouteBody = {
  fields: {
    model: field('string', (g: Gen) => g.pick(['mock', 'gpt-4o-mini']), req),
    input: field('string|array', 'hi', req),
    instructions: field('string|null', 'Be brief.'),
    max_output_tokens: field('integer|null', 16),
    temperature: field('number|null', 0.5),
    store: field('boolean|null', true),
    stream: field('boolean|null', false),
    tools: field('array|null', [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }]),
  },
}

/** A JSON-RPC request to the gateway's MCP endpoint. */
const mcpMessage: RouteBody = {
  fields: {
    jsonrpc: field('string', '2.0', req), id: field('integer|string', 1, { required: true, strict: false }),
    method: field('string', 'tools/list', req), params: field('object|null', {}, { strict: false }),
  },
}

const budgetFields = {
  max_budget: field('number|null', 5),
  budget_duration: field('string|null', '1d'),
  tpm_limit: field('integer|null', 1000),
  metadata: field('object|null', { team: 'fuzz', nested: { a: [1, 2] } }),
}

const customer = (id: RouteBody['fields'][string]): RouteBody => ({
  fields: { user_id: id, alias: field('string|null', 'fz customer'), blocked: field('boolean|null', false), max_budget: field('number|null', 3) },
})
const customerIds: RouteBody = { fields: { user_ids: field('array', (g: Gen) => [g.id('cust')], req) } }

/**
 * Every JSON route's valid body, by path as `GET /routes` lists it. The test fails when the gateway serves a
 * body-taking route missing here, so this table grows with the API.
 */
export const ROUTE_BODIES: Record<string, RouteBody> = {
  '/v1/chat/completions': chatBody(false),
  '/chat/completions': chatBody(false),
  '/openai/deployments/:model/chat/completions': chatBody(true),
  '/engines/:model/chat/completions': chatBody(true),
  '/v1/completions': completionBody(false),
  '/completions': completionBody(false),
  '/openai/deployments/:model/completions': completionBody(true),
  '/engines/:model/completions': completionBody(true),
  '/v1/embeddings': embeddingBody(false),
  '/embeddings': embeddingBody(false),
  '/openai/deployments/:model/embeddings': embeddingBody(true),
  '/engines/:model/embeddings': embeddingBody(true),
  '/v1/images/generations': imagesBody(false),
  '/images/generations': imagesBody(false),
  '/openai/deployments/:model/images/generations': imagesBody(true),
  '/v1/audio/speech': speechBody(false),
  '/audio/speech': speechBody(false),
  '/openai/deployments/:model/audio/speech': speechBody(true),
  '/v1/moderations': moderationsBody,
  '/moderations': moderationsBody,
  '/v1/messages': messagesBody(true),
  '/messages': messagesBody(true),
  '/v1/messages/count_tokens': messagesBody(false),
  '/messages/count_tokens': messagesBody(false),
  '/v1/responses': responsesBody,
  '/responses': responsesBody,
  // Takes no body; the id in the path names no stored response here (404).
  '/v1/responses/:id': { fields: {}, optionalBody: true },
  '/responses/:id': { fields: {}, optionalBody: true },

  '/key/generate': {
    fields: {
      key_alias: field('string|null', fresh('alias')), models: field('array|null', ['mock']), duration: field('string|null', '1h'),
      tags: field('array|null', ['fuzz']), blocked: field('boolean|null', false), ...budgetFields,
    },
  },
  '/key/update': {
    fields: {
      key: field('string', ref('key'), req), key_alias: field('string|null', fresh('alias')), models: field('array|null', ['mock', 'gpt-4o-mini']),
      ...budgetFields,
    },
  },
  '/key/delete': { fields: { keys: field('array|null', (g: Gen) => [`sk-${g.id('gone')}`]), key_aliases: field('array|null', ['fz-no-such-alias']) } },
  '/key/regenerate': { fields: { key: field('string', ref('regenKey')), max_budget: field('number|null', 9), metadata: field('object|null', { r: 1 }) } },
  '/key/:key/regenerate': { fields: { max_budget: field('number|null', 9), metadata: field('object|null', { r: 1 }) }, optionalBody: true },
  '/key/block': { fields: { key: field('string', ref('blockKey'), req) } },
  '/key/unblock': { fields: { key: field('string', ref('blockKey'), req) } },

  '/team/new': {
    fields: {
      team_id: field('string|null', fresh('team')), team_alias: field('string|null', 'fz team'), models: field('array|null', ['mock']),
      members_with_roles: field('array|null', (g: Gen) => [{ role: 'user', user_id: g.id('member') }]), ...budgetFields,
    },
  },
  '/team/update': { fields: { team_id: field('string', ref('team'), req), team_alias: field('string|null', 'fz team 2'), ...budgetFields } },
  '/team/delete': { fields: { team_ids: field('array', (g: Gen) => [g.id('noteam')], req) } },
  '/team/member_add': {
    fields: { team_id: field('string', ref('team'), req), member: field('object|array', (g: Gen) => ({ role: 'user', user_id: g.id('member') }), req) },
  },
  '/team/member_delete': { fields: { team_id: field('string', ref('team'), req), user_id: field('string|null', fresh('nomember')) } },
  '/team/block': { fields: { team_id: field('string', ref('blockTeam'), req) } },
  '/team/unblock': { fields: { team_id: field('string', ref('blockTeam'), req) } },

  '/user/new': {
    fields: {
      user_id: field('string|null', fresh('user')), user_email: field('string|null', (g: Gen) => `${g.id('u')}@example.com`),
      user_role: field('string|null', 'internal_user'), auto_create_key: field('boolean', false), models: field('array|null', ['mock']), ...budgetFields,
    },
  },
  '/user/update': { fields: { user_id: field('string|null', ref('user')), user_alias: field('string|null', 'fz user'), ...budgetFields } },
  '/user/delete': { fields: { user_ids: field('array', (g: Gen) => [g.id('nouser')], req) } },

  '/customer/new': customer(field('string', fresh('cust'), req)),
  '/end_user/new': customer(field('string', fresh('cust'), req)),
  '/customer/update': customer(field('string', ref('customer'), req)),
  '/end_user/update': customer(field('string', ref('customer'), req)),
  '/customer/delete': customerIds,
  '/end_user/delete': customerIds,
  '/customer/block': customerIds,
  '/end_user/block': customerIds,
  '/customer/unblock': customerIds,
  '/end_user/unblock': customerIds,

  '/budget/new': { fields: { budget_id: field('string|null', fresh('budget')), ...budgetFields } },
  '/budget/update': { fields: { budget_id: field('string', ref('budget'), req), ...budgetFields } },
  '/budget/info': { fields: { budgets: field('array', (g: Gen) => [g.ref('budget')], req) } },
  '/budget/delete': { fields: { id: field('string', fresh('nobudget'), req) } },

  '/model/new': {
    fields: {
      model_name: field('string', fresh('fz-model'), req),
      litellm_params: field('object', { model: 'mock/fz' }, req),
      model_info: field('object|null', (g: Gen) => ({ id: g.id('model') })),
    },
  },
  '/model/update': {
    fields: {
      model_info: field('object', (g: Gen) => ({ id: g.ref('model') }), req),
      model_name: field('string|null', 'fz-model-renamed'),
      litellm_params: field('object|null', { model: 'mock/fz-2' }),
    },
  },
  '/model/delete': { fields: { id: field('string', fresh('nomodel'), req) } },

  // The admin UI's sign-in (a key nobody has: 401) and sign-out (no session: 401).
  '/ui/login': { fields: { key: field('string', 'sk-not-a-key-0000', req) } },
  '/ui/logout': { fields: {}, optionalBody: true },

  // The MCP endpoint takes JSON-RPC (the SDK transport answers a bad message with a JSON-RPC error; without an Accept
  // of JSON and SSE, 406). `params` and `id` are the SDK's to judge: a notification has no id.
  '/mcp': mcpMessage,
  '/mcp/': mcpMessage,
  '/mcp/:servers': mcpMessage,
  '/:servers/mcp': mcpMessage,
  '/mcp-rest/tools/call': {
    fields: { server_id: field('string|null', 'fz-no-server'), name: field('string', 'echo', req), arguments: field('object|null', { q: 1 }) },
  },
  // POST and PUT: a server on a closed port (PUT without server_id is a 400).
  '/v1/mcp/server': {
    fields: {
      server_name: field('string|null', fresh('fzmcp')), url: field('string|null', 'http://127.0.0.1:9/mcp'), transport: field('string|null', 'http'),
      description: field('string|null', 'fuzz'), allowed_tools: field('array|null', ['echo']),
    },
  },
  '/v1/mcp/server/:server_id': { fields: {}, optionalBody: true },
}

export type Expect = 'client-error' | 'no-server-error'

export interface BodyCase {
  /** What the mutation was, for failure messages. */
  name: string
  /** Raw bytes to send; null = no body at all. */
  body: Buffer | null
  /** Content-Type header; null = none. */
  contentType: string | null
  /** Extra request headers (e.g. content-encoding). */
  headers?: Record<string, string>
  expect: Expect
}

/** Markers replaced by raw text after JSON.stringify (never a value the generator otherwise produces). */
const RAW = '\u0001fz-raw\u0001'
const JSON_TYPE = 'application/json'
const POLLUTE = { sy_fuzz_polluted: 'yes', isAdmin: true, role: 'proxy_admin' }
/** The sample value per type for wrong-type mutations. */
const SAMPLES: Record<Exclude<JsonType, 'null'>, unknown> = {
  string: 'fuzz-string', integer: 7, number: 1.5, boolean: true, object: { a: 1 }, array: [1, { b: 2 }],
}

function resolve(v: unknown, g: Gen): unknown {
  return typeof v === 'function' ? (v as (g: Gen) => unknown)(g) : structuredClone(v)
}

/** A valid body for the route: each field's valid value (fresh ids drawn anew). */
export function validBody(spec: RouteBody, g: Gen): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, f] of Object.entries(spec.fields)) out[name] = resolve(f.valid, g)
  return out
}

/** The body as JSON text with `field` set to raw JSON text (which may be anything, valid JSON or not). */
function withRaw(body: Record<string, unknown>, name: string, raw: string): string {
  return JSON.stringify({ ...body, [name]: RAW }).replace(JSON.stringify(RAW), () => raw)
}

/** `{"<key>": <raw>, ...body}` as text: how a `__proto__` key really arrives (JSON.stringify would drop it). */
function prependKey(body: Record<string, unknown>, key: string, raw: string): string {
  const rest = JSON.stringify(body).slice(1)
  return `{${JSON.stringify(key)}:${raw}${rest === '}' ? '' : ','}${rest}`
}

/** Numbers JSON allows but code may not expect (1e309 parses to Infinity, 1e-400 to 0, 2^53 + 1 loses its 1). */
const ODD_NUMBERS = ['1e309', '-1e309', '-0', '"NaN"', '9007199254740993', '-1', '1e-400']

/** `n` distinct items of `items`, seeded. */
export function sample<T>(g: Gen, items: readonly T[], n: number): T[] {
  const pool = [...items]
  const out: T[] = []
  while (out.length < n && pool.length) out.push(pool.splice(Math.floor(g.next() * pool.length), 1)[0]!)
  return out
}

function wrongTypes(f: Field): unknown[] {
  const out: unknown[] = []
  for (const [t, v] of Object.entries(SAMPLES) as Array<[JsonType, unknown]>) {
    if (f.types.includes(t)) continue
    if (t === 'integer' && f.types.includes('number')) continue
    out.push(v)
  }
  return out
}

/** `size` bytes of seeded printable text: huge strings without a 5 MB random draw per case. */
function hugeText(g: Gen, size: number): string {
  const chunk = Array.from({ length: 64 }, () => String.fromCharCode(g.int(0x61, 0x7a))).join('')
  return chunk.repeat(Math.ceil(size / 64)).slice(0, size)
}

const MB = 1024 * 1024
/** Huge strings: 1-5 MB (server.body_limit in the test is above 5 MB, so these reach the handlers). */
export const HUGE_STRING_BYTES: readonly [number, number] = [1 * MB, 5 * MB]
export const HUGE_ARRAY_LENGTH = 100_000
export const DEEP_LEVELS = 10_000

export const deepArray = (levels = DEEP_LEVELS) => '['.repeat(levels) + ']'.repeat(levels)
export const deepObject = (levels = DEEP_LEVELS) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels)

const text = (s: string) => Buffer.from(s, 'utf8')

type Add = (name: string, body: Buffer | string | null, expect: Expect, contentType?: string | null, headers?: Record<string, string>) => void

function collector(): { cases: BodyCase[]; add: Add } {
  const cases: BodyCase[] = []
  const add: Add = (name, body, expect, contentType = JSON_TYPE, headers) =>
    void cases.push({ name, body: typeof body === 'string' ? text(body) : body, contentType, expect, ...(headers ? { headers } : {}) })
  return { cases, add }
}

const fieldsOf = (spec: RouteBody, type: JsonType) => Object.entries(spec.fields).filter(([, f]) => f.types.includes(type)).map(([n]) => n)

/** The cases for one route, each a few KB at most (the megabyte-sized ones are hugeCases and deepCases). */
export function bodyCases(spec: RouteBody, g: Gen): BodyCase[] {
  const { cases, add } = collector()
  const names = Object.keys(spec.fields)
  const fields = Object.entries(spec.fields)
  const valid = () => validBody(spec, g)

  add('valid body', JSON.stringify(valid()), 'no-server-error')
  for (const [name, f] of fields) {
    const wrong = wrongTypes(f)
    if (wrong.length) add(`wrong type for '${name}'`, withRaw(valid(), name, JSON.stringify(g.pick(wrong))), f.strict ? 'client-error' : 'no-server-error')
    add(`'${name}': null`, withRaw(valid(), name, 'null'), f.types.includes('null') || !f.strict ? 'no-server-error' : 'client-error')
    if (f.required) {
      const b = valid()
      delete b[name]
      add(`missing required '${name}'`, JSON.stringify(b), f.strict ? 'client-error' : 'no-server-error')
    }
    if (f.types.includes('number') || f.types.includes('integer')) {
      for (const n of sample(g, ODD_NUMBERS, 2)) add(`'${name}': ${n}`, withRaw(valid(), name, n), 'no-server-error')
    }
    if (f.types.includes('string')) {
      // One of the two per field, seeded: both are decoded before any field is looked at.
      if (g.next() < 0.5) add(`lone surrogate in '${name}'`, withRaw(valid(), name, '"a\\ud800b"'), 'no-server-error')
      else {
        const [head, tail] = withRaw(valid(), name, `"a${RAW}b"`).split(RAW) as [string, string]
        add(`invalid UTF-8 bytes in '${name}'`, Buffer.concat([text(head), Buffer.from([0xff, 0xfe, 0xc3]), text(tail)]), 'no-server-error')
      }
    }
  }
  const allNull = Object.fromEntries(names.map((n) => [n, null]))
  add('every field null', JSON.stringify(allNull), 'no-server-error')
  const extra = valid()
  for (let i = 0; i < 5; i++) extra[`fz_extra_${g.id('f')}`] = g.pick([1, 'x', true, null, { z: [1] }, [{}]])
  add('extra unknown fields', JSON.stringify(extra), 'no-server-error')

  // Prototype keys, as raw JSON text at the top level and nested in the object fields (or an extra one).
  const pollute = JSON.stringify(POLLUTE)
  add('top-level __proto__', prependKey(valid(), '__proto__', pollute), 'no-server-error')
  add('top-level constructor.prototype', prependKey(valid(), 'constructor', `{"prototype":${pollute}}`), 'no-server-error')
  add('top-level prototype', prependKey(valid(), 'prototype', pollute), 'no-server-error')
  add('escaped \\u005f_proto__ key', prependKey(valid(), '\u005f_proto__', pollute).replace('"__proto__"', '"\\u005f_proto__"'), 'no-server-error')
  const objectFields = fieldsOf(spec, 'object')
  for (const name of objectFields.length ? objectFields : ['fz_nested']) {
    add(`nested __proto__ in '${name}'`, withRaw(valid(), name, `{"__proto__":${pollute},"constructor":{"prototype":${pollute}}}`), 'no-server-error')
  }
  const arrayField = fieldsOf(spec, 'array')[0]
  if (arrayField) add(`__proto__ inside '${arrayField}' items`, withRaw(valid(), arrayField, `[{"__proto__":${pollute}}]`), 'no-server-error')

  // Not an object, not JSON, or no body at all: a seeded few of each kind per route (all of them over a few runs).
  for (const top of sample(g, ['[]', '[{}]', '"a string"', '42', 'null', 'true'], 3)) add(`top level ${top}`, top, 'client-error')
  const full = JSON.stringify(valid())
  const broken: Array<[string, Buffer | string]> = [
    ['truncated JSON', full.slice(0, g.int(1, full.length - 1))],
    ['single quotes', full.replaceAll('"', "'")],
    ['trailing garbage', `${full}}`],
    ['whitespace only', ' \n\t '],
    ['invalid UTF-8 outside strings', Buffer.concat([Buffer.from([0xff, 0xfe]), text(full)])],
  ]
  for (const [name, body] of sample(g, broken, 3)) add(name, body, 'client-error')
  add('empty body', null, spec.optionalBody ? 'no-server-error' : 'client-error')
  add('empty body with a content type', '', spec.optionalBody ? 'no-server-error' : 'client-error')
  add('UTF-8 BOM prefix', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text(full)]), 'no-server-error')
  add('NUL bytes', `${full.slice(0, -1)},"fz\\u0000k":"a\\u0000b"}`, 'no-server-error')

  // Content types: the body is JSON whatever they say (LiteLLM parses it anyway), or not JSON at all.
  const types = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=fz', 'application/json; charset=latin1', 'application/json; charset=utf-16', null]
  for (const ct of sample(g, types, 2)) add(`valid JSON sent as ${ct ?? 'no content type'}`, full, 'no-server-error', ct)
  const notJson: Array<[string, string, string | null, Record<string, string> | undefined]> = [
    ['a real form body', 'model=mock&messages=hi', 'application/x-www-form-urlencoded', undefined],
    ['a real multipart body', `--fz\r\ncontent-disposition: form-data; name="model"\r\n\r\nmock\r\n--fz--\r\n`, 'multipart/form-data; boundary=fz', undefined],
    ['gzip content-encoding on a plain body', full, JSON_TYPE, { 'content-encoding': 'gzip' }],
  ]
  for (const [name, body, ct, headers] of sample(g, notJson, 2)) add(name, body, 'client-error', ct, headers)

  return cases
}

/**
 * The megabyte-sized cases for one route: a 1-5 MB string (in a string field or an extra one) and a 100k-element
 * array, both stored by the routes that store what they get. The test runs them on a seeded sample of handlers per
 * run, after the light cases (records this size make every later read of them slow).
 */
export function hugeCases(spec: RouteBody, g: Gen): BodyCase[] {
  const { cases, add } = collector()
  const valid = () => validBody(spec, g)
  const stringField = g.pick([...fieldsOf(spec, 'string'), 'fz_big'])
  const size = g.int(HUGE_STRING_BYTES[0], HUGE_STRING_BYTES[1])
  add(`huge string (${size} bytes) in '${stringField}'`, withRaw(valid(), stringField, JSON.stringify(hugeText(g, size))), 'no-server-error')
  const arrayField = g.pick([...fieldsOf(spec, 'array'), 'fz_list'])
  const element = g.pick(['"x"', '1', '{}', 'null', '[]'])
  const bigArray = `[${new Array(HUGE_ARRAY_LENGTH).fill(element).join(',')}]`
  add(`huge array (${HUGE_ARRAY_LENGTH} x ${element}) in '${arrayField}'`, withRaw(valid(), arrayField, bigArray), 'no-server-error')
  return cases
}

/** 10k levels of `[` and of `{"a":`, at the top and inside a field: a 400, whatever the route. */
export function deepCases(spec: RouteBody, g: Gen): BodyCase[] {
  const { cases, add } = collector()
  const valid = () => validBody(spec, g)
  add(`deep nesting: ${DEEP_LEVELS} levels of [`, deepArray(), 'client-error')
  add(`deep nesting: ${DEEP_LEVELS} levels of {"a": at the top`, deepObject(), 'client-error')
  const objectField = g.pick([...fieldsOf(spec, 'object'), 'fz_deep'])
  add(`deep nesting: ${DEEP_LEVELS} levels of {"a": in '${objectField}'`, withRaw(valid(), objectField, deepObject()), 'client-error')
  const arrayField = g.pick([...fieldsOf(spec, 'array'), 'fz_deep'])
  add(`deep nesting: ${DEEP_LEVELS} levels of [ in '${arrayField}'`, withRaw(valid(), arrayField, deepArray()), 'client-error')
  return cases
}

const ODD_QUERY_VALUES = ['abc', '-1', '0', '1e309', 'NaN', '1.5', '99999999999999999999', '', 'true', 'null', '[]', '{}', '2024-13-45', '0000-00-00']

/** Query strings for GET routes: wrong types, huge and repeated values, prototype keys, bad percent-encoding. */
export function queryCases(params: readonly string[], g: Gen): Array<{ name: string; query: string }> {
  const out: Array<{ name: string; query: string }> = []
  const enc = encodeURIComponent
  for (const p of params) {
    for (const v of sample(g, ODD_QUERY_VALUES, 3)) out.push({ name: `${p}=${JSON.stringify(v)}`, query: `${enc(p)}=${enc(v)}` })
    out.push({ name: `${p} repeated`, query: `${enc(p)}=1&${enc(p)}=2&${enc(p)}=abc` })
    out.push({ name: `${p}[] array syntax`, query: `${enc(p)}[]=1&${enc(p)}[a]=2` })
    out.push({ name: `${p} 8 KB value`, query: `${enc(p)}=${hugeText(g, 8 * 1024)}` })
    out.push({ name: `${p} bad percent-encoding`, query: `${enc(p)}=%ff%fe%&x=%E0%A4%A` })
    out.push({ name: `${p} NUL and control bytes`, query: `${enc(p)}=a%00b%0d%0a` })
  }
  for (const q of ['__proto__=1', '__proto__[isAdmin]=true', 'constructor[prototype][sy_fuzz_polluted]=yes', 'prototype=1', new Array(600).fill('a=1').join('&')]) {
    out.push({ name: `query ${q.slice(0, 40)}`, query: q })
  }
  return out
}
