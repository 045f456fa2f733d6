/**
 * Fuzzing every JSON route (issue 16): the built CLI, as users run it (master key, the embedded SQLite store of the
 * default chain, stored models on, a fake OpenAI upstream behind `openai/...` models and the in-process `mock`),
 * hit with generated bad input (fuzz-gen.ts) on every route `GET /routes` lists. Every answer must be a 2xx or a 4xx
 * with a JSON body, 4xx in the OpenAI error shape; never a 5xx, an empty body or no answer within DEADLINE_MS.
 * Afterwards the process is alive, its log has no crash, a plain chat call still works, and nothing reached
 * Object.prototype.
 *
 * The seed is printed; `FUZZ_SEED=<seed> npx tap test/robust/fuzz.test.ts` replays a run.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, freePort, spawnProc, waitListening } from '../helpers/cli.js'
import { startUpstream } from '../helpers/upstream.js'
import { bodyCases, deepCases, fuzzSeed, Gen, hugeCases, queryCases, ROUTE_BODIES, sample, validBody, type BodyCase, type Expect } from './fuzz-gen.js'

const MASTER = 'sk-master-fuzz-0123456789'
/** Longest any single answer may take, ms: far above a healthy reply, far below "hung". */
const DEADLINE_MS = 10_000
/** The gateway's request timeout in this config, s: a client stalling mid-request must be cut within it. */
const REQUEST_TIMEOUT_S = 2
/** Requests in flight at once: enough to finish in seconds, few enough for a loaded 2-core CI box. */
const CONCURRENCY = 6
/** server.body_limit here, bytes (general_settings.max_request_size_mb: 8): above fuzz-gen's 5 MB huge strings. */
const BODY_LIMIT = 8 * 1024 * 1024
/**
 * POST routes that take something other than a JSON body (transcriptions: multipart uploads, fuzzed by
 * test/http/audio.test.ts): named here so the table check skips them.
 */
const NOT_JSON: ReadonlySet<string> = new Set(['/v1/audio/transcriptions', '/audio/transcriptions', '/openai/deployments/:model/audio/transcriptions'])
/** Query parameters each GET route reads (the rest get generic names); unknown params must be harmless too. */
const QUERY_PARAMS: Record<string, string[]> = {
  '/key/info': ['key'], '/key/list': ['page', 'size', 'return_full_object', 'key_hash', 'team_id'],
  '/team/info': ['team_id'], '/team/list': ['user_id', 'organization_id'], '/user/info': ['user_id'],
  '/user/list': ['page', 'page_size', 'role', 'user_ids', 'user_email', 'team'], '/customer/info': ['end_user_id'],
  '/end_user/info': ['end_user_id'], '/spend/logs': ['api_key', 'user_id', 'request_id', 'start_date', 'end_date'],
  '/global/spend/report': ['start_date', 'end_date', 'group_by', 'api_key', 'customer_id'], '/global/spend/keys': ['limit'],
  '/global/spend/models': ['limit'], '/model/info': ['litellm_model_id'], '/model_group/info': ['model_group'],
  '/health': ['model'], '/v1/health': ['model'],
}
const GENERIC_PARAMS = ['page']
/** Routes whose errors are in Anthropic's shape (the Messages API). */
const ANTHROPIC_ROUTES: ReadonlySet<string> = new Set(['/v1/messages', '/messages', '/v1/messages/count_tokens', '/messages/count_tokens'])
/**
 * Handlers that get the megabyte-sized bodies in one run, besides the three model operations (always): a seeded
 * sample, so runs with different seeds cover them all while one run stays within its time.
 */
const HUGE_HANDLERS_PER_RUN = 5
/** Share of the light cases a path alias runs (the first path of a handler runs them all), seeded. */
const ALIAS_SHARE = 0.25
/** GET routes that call every deployment (slow by design): a few query cases each, not all. */
const COSTLY_GETS: ReadonlySet<string> = new Set(['/health', '/v1/health'])

const seed = fuzzSeed()
t.comment(`fuzz seed ${seed} (replay: FUZZ_SEED=${seed} npx tap test/robust/fuzz.test.ts)`)

const up = await startUpstream(t)
const dir = mkdtempSync(join(tmpdir(), 'sy-fuzz-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const configPath = join(dir, 'config.yaml')
const openai = (name: string, mode?: string) => `  - model_name: ${name}
    litellm_params: { model: openai/${name}, api_base: ${up.url}, api_key: sk-upstream }
${mode ? `    model_info: { mode: ${mode} }\n` : ''}`
writeFileSync(configPath, `
general_settings:
  master_key: ${MASTER}
  max_request_size_mb: ${BODY_LIMIT / 1024 / 1024}
  store_model_in_db: true
litellm_settings:
  request_timeout: ${REQUEST_TIMEOUT_S}
model_list:
  - model_name: mock
    litellm_params: { model: mock/mock-1 }
  - model_name: mock-embedding
    litellm_params: { model: mock/mock-embedding }
    model_info: { mode: embedding }
${openai('gpt-4o-mini')}${openai('gpt-3.5-turbo-instruct', 'completion')}${openai('text-embedding-3-small', 'embedding')}\
${openai('dall-e-3', 'image_generation')}${openai('tts-1', 'audio_speech')}${openai('omni-moderation-latest', 'moderation')}`)

const port = await freePort()
const proc = spawnProc(t, process.execPath, [CLI, '--config', configPath, '--port', String(port), '--host', '127.0.0.1'], { SWITCHYARD_DATA_DIR: dir })
const base = await waitListening(proc)
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
t.teardown(() => agent.destroy())

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  ms: number
}

/** One HTTP request with a deadline; rejects with 'no answer' instead of hanging. */
function send(method: string, path: string, headers: Record<string, string>, body: Buffer | null): Promise<Reply> {
  const started = Date.now()
  // Node frames a GET or DELETE body only when told its length (it sends no chunked encoding for them): unframed,
  // the body would reach the gateway as the start of the next request on the socket.
  if (body && (method === 'GET' || method === 'DELETE') && headers['content-length'] === undefined) headers = { ...headers, 'content-length': String(body.length) }
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started })
      })
      res.on('error', fail)
    })
    const timer = setTimeout(() => {
      req.destroy()
      reject(new Error(`no answer within ${DEADLINE_MS} ms`))
    }, DEADLINE_MS)
    function fail(err: Error) {
      clearTimeout(timer)
      reject(err)
    }
    req.on('error', fail)
    req.end(body ?? undefined)
  })
}

const auth = (key: string | null = MASTER): Record<string, string> => (key === null ? {} : { authorization: `Bearer ${key}` })

async function json(method: string, path: string, body?: unknown, key: string | null = MASTER): Promise<{ status: number; body: any }> {
  const headers = auth(key)
  let payload: Buffer | null = null
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  }
  const r = await send(method, path, headers, payload)
  let parsed: unknown = r.text
  try {
    parsed = JSON.parse(r.text)
  } catch { /* kept as text for the message */ }
  return { status: r.status, body: parsed }
}

/** Why an answer breaks the contract, or null when it keeps it. */
function verdict(r: Reply, expect: Expect, statuses?: readonly number[], route = ''): string | null {
  if (r.status >= 500) return `status ${r.status}`
  if (r.status < 200 || (r.status >= 300 && r.status < 400)) return `status ${r.status}`
  if (expect === 'client-error' && r.status < 400) return `status ${r.status}, expected a 4xx`
  if (statuses && !statuses.includes(r.status)) return `status ${r.status}, expected ${statuses.join('/')}`
  if (r.text === '') return `status ${r.status} with an empty body`
  // A speech reply is the audio itself.
  if (r.status < 300 && String(r.headers['content-type'] ?? '').startsWith('audio/')) return null
  // The admin UI's pages and scripts (/ui).
  if (r.status < 300 && /^text\/(html|javascript|css)/.test(String(r.headers['content-type'] ?? ''))) return null
  let body: any
  try {
    body = JSON.parse(r.text)
  } catch {
    return `status ${r.status}, body is not JSON`
  }
  // The Messages API answers errors in Anthropic's shape: {"type":"error","error":{type,message},"request_id"}.
  if (r.status >= 400 && ANTHROPIC_ROUTES.has(route)) {
    const e = body?.error
    if (body?.type !== 'error' || !e || typeof e !== 'object') return `status ${r.status} without Anthropic's error shape`
    if (typeof e.message !== 'string' || e.message === '') return `status ${r.status}: error.message is not a string`
    if (typeof e.type !== 'string' || e.type === '') return `status ${r.status}: error.type is not a string`
    return null
  }
  if (r.status >= 400) {
    const e = body?.error
    if (!e || typeof e !== 'object') return `status ${r.status} without an "error" object`
    if (typeof e.message !== 'string' || e.message === '') return `status ${r.status}: error.message is not a string`
    if (typeof e.type !== 'string' || e.type === '') return `status ${r.status}: error.type is not a string`
    if (!('param' in e) || !('code' in e)) return `status ${r.status}: error.param or error.code missing`
  }
  return null
}

interface Failure {
  route: string
  case: string
  got: string
  body: string
}

/** Run `jobs` CONCURRENCY at a time; each job returns a failure or null. */
async function pool(jobs: Array<() => Promise<Failure | null>>): Promise<Failure[]> {
  const failures: Failure[] = []
  let i = 0
  const worker = async () => {
    while (i < jobs.length) {
      const f = await jobs[i++]!()
      if (f) failures.push(f)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return failures
}

function job(route: string, name: string, method: string, path: string, headers: Record<string, string>, body: Buffer | null,
  expect: Expect, statuses?: readonly number[]): () => Promise<Failure | null> {
  return async () => {
    let r: Reply
    try {
      r = await send(method, path, headers, body)
    } catch (err) {
      return { route, case: name, got: (err as Error).message, body: '' }
    }
    const why = verdict(r, expect, statuses, route)
    return why ? { route, case: name, got: why, body: r.text.slice(0, 300) } : null
  }
}

function report(t: Test, what: string, count: number, failures: readonly Failure[]): void {
  t.same(failures.slice(0, 20), [], `${what}: ${count} cases, ${failures.length} broke the contract (seed ${seed})`)
}

/**
 * A valid chat call must still work between the fuzz batches: the fuzzer is not hitting a dead gateway. It goes to
 * the in-process mock or the fake upstream, depending on the batch.
 */
async function control(t: Test, after: string): Promise<void> {
  const model = after.length % 2 ? 'mock' : 'gpt-4o-mini'
  const r = await json('POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'still there?' }] })
  t.equal(r.status, 200, `control call (${model}) after ${after}${r.status === 200 ? '' : `: ${JSON.stringify(r.body).slice(0, 200)}`}`)
}

interface RawReply {
  status: number
  headers: Record<string, string>
  body: string
  closed: boolean
  ms: number
}

/**
 * Raw bytes on a fresh socket (for what an HTTP client refuses to send: oversized or malformed headers, a stalled
 * body). Resolves with the parsed answer when the socket closes or `waitMs` passes.
 */
function raw(chunks: Array<string | Buffer>, waitMs = DEADLINE_MS): Promise<RawReply> {
  const started = Date.now()
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    const data: Buffer[] = []
    let closed = false
    const finish = () => {
      clearTimeout(timer)
      const all = Buffer.concat(data).toString('latin1')
      const end = all.indexOf('\r\n\r\n')
      const head = end < 0 ? all : all.slice(0, end)
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
      }
      const body = end < 0 ? '' : Buffer.from(all.slice(end + 4), 'latin1').toString('utf8')
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body, closed, ms: Date.now() - started })
      sock.destroy()
    }
    const timer = setTimeout(finish, waitMs)
    sock.on('data', (c: Buffer) => data.push(c))
    sock.on('error', () => { /* a reset after the answer: the answer is what counts */ })
    sock.on('close', () => {
      closed = true
      finish()
    })
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c)
    })
  })
}

function rawVerdict(r: RawReply, statuses: readonly number[], route = ''): string | null {
  if (r.status === 0) return `no answer (closed: ${r.closed}, after ${r.ms} ms)`
  return verdict({ status: r.status, headers: r.headers, text: r.body, ms: r.ms }, 'client-error', statuses, route)
}

const CHAT = '/v1/chat/completions'
const validChat = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] })
const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`

// Records the fuzzed bodies refer to (update, block, regenerate, ...): made first, with the master key.
async function create(path: string, body: Record<string, unknown>, pick: (b: any) => string): Promise<string> {
  const r = await json('POST', path, body)
  if (r.status !== 200) throw new Error(`fixture ${path} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`)
  return pick(r.body)
}
const g0 = new Gen(seed)
const refs: Record<string, string> = {
  key: await create('/key/generate', { key_alias: g0.id('fixture') }, (b) => b.key),
  regenKey: await create('/key/generate', {}, (b) => b.key),
  pathRegenKey: await create('/key/generate', {}, (b) => b.key),
  blockKey: await create('/key/generate', {}, (b) => b.key),
  team: await create('/team/new', { team_id: g0.id('team') }, (b) => b.team_id),
  blockTeam: await create('/team/new', { team_id: g0.id('team') }, (b) => b.team_id),
  user: await create('/user/new', { user_id: g0.id('user'), auto_create_key: false }, (b) => b.user_id),
  customer: await create('/customer/new', { user_id: g0.id('cust') }, (b) => b.user_id),
  budget: await create('/budget/new', { budget_id: g0.id('budget') }, (b) => b.budget_id),
  model: await create('/model/new', { model_name: 'fz-fixture-model', litellm_params: { model: 'mock/fz' }, model_info: { id: g0.id('model') } }, (b) => b.model_info.id),
}

const listed = await json('GET', '/routes')
const routes: Array<{ path: string; methods: string[]; name: string }> = listed.body?.routes ?? []
t.ok(routes.length > 20, `GET /routes lists the routes (${routes.length})`)
const bodyRoutes = routes.filter((r) => r.methods.some((m) => m !== 'GET' && m !== 'HEAD'))
const getRoutes = routes.filter((r) => r.methods.includes('GET'))

/**
 * Clients that stall mid-request: started before the fuzz and checked after it, so their wait for the request
 * timeout overlaps the rest of the run (and the gateway must cut them off while busy).
 */
const STALL_LIMIT_MS = REQUEST_TIMEOUT_S * 1000 + 10_000 // + Node's check interval (a quarter of the timeout) and a loaded CI box whose gateway is busy with the fuzz
/** [name, what the client sends, the route whose error shape applies (default: the OpenAI shape)] */
const stallCases: Array<[string, Array<string | Buffer>, string?]> = [
  [`${CHAT}: body stalled`, [head([`POST ${CHAT} HTTP/1.1`, 'host: x', `authorization: Bearer ${MASTER}`, 'content-type: application/json', 'content-length: 1000']), '{"model":']],
  ['/v1/messages: body stalled (Anthropic\'s error shape)', [head(['POST /v1/messages HTTP/1.1', 'host: x', `x-api-key: ${MASTER}`, 'content-type: application/json', 'content-length: 1000']), '{"model":'], '/v1/messages'],
  ['/key/generate: body stalled', [head(['POST /key/generate HTTP/1.1', 'host: x', `authorization: Bearer ${MASTER}`, 'content-type: application/json', 'content-length: 1000']), '{"key_alias":']],
  ['headers stalled', [`POST ${CHAT} HTTP/1.1\r\nhost: x\r\nx-slow: `]],
]
const stalled = Promise.all(stallCases.map(([, chunks]) => raw(chunks, STALL_LIMIT_MS)))

t.test('every body-taking route has a description in the fuzz table', async (t) => {
  const missing = bodyRoutes.filter((r) => !ROUTE_BODIES[r.path] && !NOT_JSON.has(r.path)).map((r) => `${r.methods.join(',')} ${r.path}`)
  t.same(missing, [], 'routes with no valid-body description in fuzz-gen.ts ROUTE_BODIES (add them)')
  const served = new Set(bodyRoutes.map((r) => r.path))
  t.same(Object.keys(ROUTE_BODIES).filter((p) => !served.has(p)), [], 'described routes the gateway no longer serves')
})

// Query strings first, while the store holds only the fixtures: the list routes return every record, and the
// body fuzz stores megabyte-sized ones.
t.test('bad query strings on every GET route', async (t) => {
  for (const route of getRoutes) {
    const g = new Gen((seed ^ hash(`GET ${route.path}`)) >>> 0, refs)
    const path = route.path.replace('*model', 'mock')
    let cases = queryCases(QUERY_PARAMS[route.path] ?? GENERIC_PARAMS, g)
    if (COSTLY_GETS.has(route.path)) cases = sample(g, cases, 4)
    const jobs = cases.map((c) => job(route.path, c.name, 'GET', `${path}?${c.query}`, auth(), null, 'no-server-error'))
    jobs.push(job(route.path, 'GET with a JSON body', 'GET', path, { ...auth(), 'content-type': 'application/json' }, Buffer.from('{"__proto__":{"x":1}'), 'no-server-error'))
    const started = Date.now()
    const failures = await pool(jobs)
    report(t, `GET ${route.path} (${Date.now() - started} ms)`, jobs.length, failures)
  }
  await control(t, 'the GET routes')
})

/** A concrete path for a route pattern: `:model` and `:key` filled with working values. */
function concrete(path: string, g: Gen): string {
  const model = path.includes('embeddings') ? g.pick(['mock-embedding', 'text-embedding-3-small'])
    : path.includes('/completions') && !path.includes('chat') ? g.pick(['mock', 'gpt-3.5-turbo-instruct']) : g.pick(['mock', 'gpt-4o-mini'])
  return path.replace(':model', encodeURIComponent(model)).replace(':key', encodeURIComponent(g.ref('pathRegenKey')))
}

/**
 * Which handler serves a route: /routes names it, but the three model operations share one name, so the body's
 * field names tell them apart. Paths with the same key are aliases of one another.
 */
function handlerKey(route: { path: string; name: string }): string {
  return `${route.name} ${Object.keys(ROUTE_BODIES[route.path]?.fields ?? {}).join(',')}`
}

function bodyJob(route: { path: string; methods: string[] }, c: BodyCase, g: Gen): () => Promise<Failure | null> {
  const headers: Record<string, string> = { ...auth(), ...c.headers }
  if (c.contentType !== null) headers['content-type'] = c.contentType
  return job(route.path, c.name, route.methods[0]!, concrete(route.path, g), headers, c.body, c.expect)
}

t.test('bad bodies on every JSON route', async (t) => {
  const handlers = new Set<string>()
  for (const route of bodyRoutes) {
    const spec = ROUTE_BODIES[route.path]
    if (!spec) continue
    const method = route.methods[0]!
    const g = new Gen((seed ^ hash(route.path)) >>> 0, refs)
    let cases = bodyCases(spec, g)
    // A path alias runs the same handler: a seeded share of the cases is enough there.
    if (handlers.has(handlerKey(route))) cases = sample(g, cases, Math.ceil(cases.length * ALIAS_SHARE))
    handlers.add(handlerKey(route))
    const jobs = cases.map((c) => bodyJob(route, c, g))
    // Without a key, or with a wrong one: 401 whatever the body.
    const valid = Buffer.from(JSON.stringify(validBody(spec, g)))
    jobs.push(job(route.path, 'no key', method, concrete(route.path, g), { 'content-type': 'application/json' }, valid, 'client-error', [401]))
    jobs.push(job(route.path, 'wrong key', method, concrete(route.path, g), { ...auth('sk-wrong-0000'), 'content-type': 'application/json' }, valid, 'client-error', [401]))
    jobs.push(job(route.path, 'no key, broken JSON', method, concrete(route.path, g), { 'content-type': 'application/json' }, Buffer.from('{"a":'), 'client-error'))
    const started = Date.now()
    const failures = await pool(jobs)
    report(t, `${method} ${route.path} (${Date.now() - started} ms)`, jobs.length, failures)
    await control(t, route.path)
  }
})

t.test('odd path parameters', async (t) => {
  const odd = ['__proto__', 'constructor', 'prototype', '%ff%fe', 'a%00b', '%2e%2e%2fkey%2fgenerate', 'x'.repeat(4000), 'no-such-model', '%E0%A4%A']
  const jobs = []
  for (const route of bodyRoutes.filter((r) => r.path.includes(':'))) {
    for (const v of odd) {
      const path = route.path.replace(/:model|:key/, v)
      const body = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], prompt: 'hi', input: 'hi' }))
      jobs.push(job(route.path, `path parameter ${v.slice(0, 30)}`, route.methods[0]!, path, { ...auth(), 'content-type': 'application/json' }, body, 'no-server-error'))
    }
  }
  for (const v of odd) jobs.push(job('/v1/models/*model', `model id ${v.slice(0, 30)}`, 'GET', `/v1/models/${v}`, auth(), null, 'no-server-error'))
  report(t, 'path parameters', jobs.length, await pool(jobs))
})

t.test('odd authorization headers', async (t) => {
  const shapes: Record<string, string> = {
    'empty bearer': 'Bearer ', 'bearer only': 'Bearer', 'basic scheme': `Basic ${Buffer.from('a:b').toString('base64')}`,
    'latin-1 bytes': 'Bearer sk-\u00ff\u00fe\u00e9', 'tabs and spaces': 'Bearer \t sk-x \t', '8 KB key': `Bearer sk-${'k'.repeat(8 * 1024)}`,
    'master key with a suffix': `Bearer ${MASTER}x`, 'master key prefix': `Bearer ${MASTER.slice(0, -1)}`, 'two schemes': `Bearer Bearer ${MASTER}`,
  }
  const jobs = []
  for (const [name, value] of Object.entries(shapes)) {
    for (const path of ['/v1/chat/completions', '/key/generate', '/key/list']) {
      const post = path !== '/key/list'
      const body = post ? Buffer.from(JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] })) : null
      jobs.push(job(path, `authorization: ${name}`, post ? 'POST' : 'GET', path, { authorization: value, 'content-type': 'application/json' }, body, 'client-error', [401]))
    }
  }
  report(t, 'authorization headers', jobs.length, await pool(jobs))
})

t.test('oversized and malformed HTTP', async (t) => {
  const many = Array.from({ length: 200 }, (_, i) => `x-fz-${i}: ${'v'.repeat(100)}`)
  const cases: Array<[string, Array<string | Buffer>, number[]]> = [
    ['a 100 KB authorization header', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', `authorization: Bearer ${'k'.repeat(100 * 1024)}`, 'content-length: 0'])], [431]],
    ['200 headers, 20 KB in all', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', ...many, 'content-length: 0'])], [431]],
    ['a 20 KB URL', [head([`GET /key/list?x=${'q'.repeat(20 * 1024)} HTTP/1.1`, 'host: x'])], [431, 414]],
    ['a garbage request line', ['GARBAGE\r\n\r\n'], [400]],
    ['a space in a header name', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', 'x fz: 1', 'content-length: 0'])], [400]],
    ['content-length: abc', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', 'content-length: abc'])], [400]],
    ['content-length and chunked together', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', 'content-length: 5', 'transfer-encoding: chunked']) + '0\r\n\r\n'], [400]],
    ['a bad chunk size', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', `authorization: Bearer ${MASTER}`, 'transfer-encoding: chunked']) + 'zz\r\n{}\r\n0\r\n\r\n'], [400]],
    ['NUL in a header value', [head([`POST ${CHAT} HTTP/1.1`, 'host: x', 'x-fz: a\u0000b', 'content-length: 0'])], [400]],
  ]
  for (const [name, chunks, statuses] of cases) {
    const r = await raw(chunks)
    t.equal(rawVerdict(r, statuses), null, `${name}: ${r.status} ${r.body.slice(0, 200)}`)
  }
  // 200 small headers are fine: the request is served.
  const ok = await send('POST', CHAT, { ...auth(), 'content-type': 'application/json', ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-fz-${i}`, 'v'])) }, Buffer.from(validChat))
  t.equal(ok.status, 200, '200 small headers: served')
})

t.test('bodies above the body limit', async (t) => {
  const over = Buffer.alloc(BODY_LIMIT + 1024, 0x20)
  for (const path of [CHAT, '/key/generate']) {
    const r = await send('POST', path, { ...auth(), 'content-type': 'application/json' }, over)
    t.equal(verdict(r, 'client-error', [413]), null, `${path}: ${BODY_LIMIT + 1024} bytes -> ${r.status} ${r.text.slice(0, 200)}`)
    const chunked = await raw([head([`POST ${path} HTTP/1.1`, 'host: x', `authorization: Bearer ${MASTER}`, 'transfer-encoding: chunked', 'connection: close']),
      `${(BODY_LIMIT + 1).toString(16)}\r\n`, Buffer.alloc(BODY_LIMIT + 1, 0x20), '\r\n0\r\n\r\n'])
    t.equal(rawVerdict(chunked, [413]), null, `${path}: chunked over the limit -> ${chunked.status} ${chunked.body.slice(0, 200)}`)
    // A declared length far past the limit is refused at once, before any of it is read.
    const declared = await raw([head([`POST ${path} HTTP/1.1`, 'host: x', `authorization: Bearer ${MASTER}`, 'content-type: application/json', `content-length: ${200 * 1024 * 1024}`]), '{"model":'])
    t.equal(rawVerdict(declared, [413]), null, `${path}: content-length 200 MiB -> ${declared.status} ${declared.body.slice(0, 200)}`)
  }
})

t.test('a client that stalls mid-request is cut off within the request timeout', async (t) => {
  const replies = await stalled
  stallCases.forEach(([name, , route], i) => {
    const r = replies[i]!
    t.ok(r.closed, `${name}: connection closed within ${STALL_LIMIT_MS} ms (after ${r.ms} ms)`)
    t.equal(rawVerdict(r, [408], route), null, `${name}: answered 408 in the error shape: ${r.status} ${r.body.slice(0, 200)}`)
  })
})

t.test('huge strings and arrays, deep nesting: once per handler', async (t) => {
  // Path aliases share their handler; the records these cases store are slow to read back, hence last.
  const first = new Map<string, { path: string; methods: string[] }>()
  for (const route of bodyRoutes) if (ROUTE_BODIES[route.path] && !first.has(handlerKey(route))) first.set(handlerKey(route), route)
  const g = new Gen((seed ^ hash('huge')) >>> 0, refs)
  const models = [...first.values()].filter((r) => r.path.startsWith('/v1/'))
  const huge = new Set([...models, ...sample(g, [...first.values()].filter((r) => !models.includes(r)), HUGE_HANDLERS_PER_RUN)])
  const jobs = []
  for (const route of first.values()) {
    const rg = new Gen((seed ^ hash(`heavy ${route.path}`)) >>> 0, refs)
    const spec = ROUTE_BODIES[route.path]!
    for (const c of [...deepCases(spec, rg), ...(huge.has(route) ? hugeCases(spec, rg) : [])]) jobs.push(bodyJob(route, c, rg))
  }
  const started = Date.now()
  const failures = await pool(jobs)
  const names = [...huge].map((r) => r.path).join(', ')
  report(t, `deep nesting on ${first.size} handlers, megabyte-sized bodies on ${names} (${Date.now() - started} ms)`, jobs.length, failures)
  await control(t, 'the megabyte-sized bodies')
})

t.test('nothing reached Object.prototype, and the gateway is still well', async (t) => {
  const pollute = '{"sy_fuzz_polluted":"yes","isAdmin":true,"role":"proxy_admin","max_budget":-5,"models":["gpt-4o-mini"]}'
  const laden = `{"__proto__":${pollute},"constructor":{"prototype":${pollute}},"models":["mock"],` +
    `"metadata":{"__proto__":${pollute},"constructor":{"prototype":${pollute}},"team":"x"}}`
  const made = await json('POST', '/key/generate', laden)
  t.equal(made.status, 200, `a key from a __proto__-laden body: ${made.status}`)
  const key: string = made.body.key
  const info = await json('GET', `/key/info?key=${encodeURIComponent(key)}`)
  t.equal(info.status, 200)
  const rec = info.body.info ?? {}
  for (const k of ['sy_fuzz_polluted', 'isAdmin', 'role']) t.notOk(Object.hasOwn(rec, k), `/key/info has no '${k}' from the __proto__ payload`)
  t.not(rec.max_budget, -5, 'max_budget did not come from the __proto__ payload')
  t.same(rec.models, ['mock'], 'models are the ones sent, not the payload\'s')
  // The key is an ordinary key: no admin rights, no models beyond its own.
  const asKey = await json('POST', '/key/generate', {}, key)
  t.equal(asKey.status, 403, `the key cannot use the management API: ${asKey.status}`)
  const other = await json('POST', CHAT, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, key)
  t.equal(other.status, 403, `the key cannot call a model outside its list: ${other.status}`)

  // An update carrying __proto__: nothing of it lands on the record (stores merge patches with for..in).
  const upd = await json('POST', '/key/update', `{"key":${JSON.stringify(key)},"__proto__":${pollute},"key_alias":"after-proto"}`)
  t.equal(upd.status, 200, `/key/update with __proto__: ${upd.status} ${JSON.stringify(upd.body).slice(0, 200)}`)
  const after = (await json('GET', `/key/info?key=${encodeURIComponent(key)}`)).body.info ?? {}
  t.not(after.max_budget, -5, 'max_budget not taken from an update\'s __proto__')
  t.same(after.models, ['mock'], 'models not taken from an update\'s __proto__')
  t.notOk(Object.hasOwn(after, 'sy_fuzz_polluted'), 'no polluted field after the update')

  // A fresh record and the lists: a polluted Object.prototype would show in every record the store writes.
  const clean = await json('POST', '/key/generate', { key_alias: `clean-${seed}` })
  const cleanInfo = await json('GET', `/key/info?key=${encodeURIComponent(clean.body.key)}`)
  t.notOk(JSON.stringify(cleanInfo.body).includes('sy_fuzz_polluted'), 'a key made after the fuzz carries nothing polluted')
  const keys = await json('GET', '/key/list?return_full_object=true&size=100')
  const teams = await json('GET', '/team/list')
  t.equal(keys.status, 200)
  t.equal(teams.status, 200)
  for (const r of [...(keys.body.keys ?? []), ...(Array.isArray(teams.body) ? teams.body : [])]) {
    if (Object.hasOwn(r, 'sy_fuzz_polluted') || Object.hasOwn(r, 'isAdmin')) t.fail(`a listed record gained a polluted field: ${JSON.stringify(r).slice(0, 200)}`)
  }

  // Users named like Object.prototype members: spend reports keep them as names, with numbers.
  const names = ['constructor', '__proto__', 'toString']
  for (const userId of names) {
    const k = await json('POST', '/key/generate', { user_id: userId })
    const r = await json('POST', CHAT, { model: 'mock', user: userId, messages: [{ role: 'user', content: 'hi' }] }, k.body.key)
    t.equal(r.status, 200, `a call by a key of user ${userId}`)
  }
  const day = new Date().toISOString().slice(0, 10)
  let users: Record<string, unknown> = {}
  for (let i = 0; i < 100 && !names.every((n) => typeof users[n] === 'number'); i++) {
    const report = (await json('GET', `/spend/logs?start_date=${day}&end_date=${day}`)).body
    users = Array.isArray(report) ? report[0]?.users ?? {} : {}
    await new Promise((r) => setTimeout(r, 100))
  }
  for (const n of names) {
    t.ok(Object.hasOwn(users, n) && typeof users[n] === 'number', `/spend/logs users['${n}'] is a number: ${JSON.stringify(users[n])?.slice(0, 80)}`)
  }

  // Still alive, still serving, and the log shows no crash.
  const chat = await json('POST', CHAT, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'last call' }] })
  t.equal(chat.status, 200, 'a normal chat completion works after the fuzz')
  t.equal(typeof chat.body?.choices?.[0]?.message?.content, 'string')
  t.equal(proc.child.exitCode, null, 'the gateway process is alive')
  const lines = proc.stderr().split('\n').filter((l) => l !== '')
  const bad = lines.filter((l) => /unhandled|uncaught|TypeError|RangeError|ReferenceError|SyntaxError|"level":"(?:error|fatal)"|^\s+at \S/i.test(l))
  t.same(bad.slice(0, 10), [], 'no crash, stack trace or error line in the gateway log')
  const notJson = lines.filter((l) => { try { JSON.parse(l); return false } catch { return true } })
  t.same(notJson.slice(0, 10), [], 'every log line is JSON (nothing printed by a crash)')
  // The logger copies a record's fields with for..in: a polluted prototype would show in every line.
  const polluted = lines.filter((l) => { try { return Object.hasOwn(JSON.parse(l), 'sy_fuzz_polluted') } catch { return false } })
  t.equal(polluted.length, 0, 'no log line carries a polluted field')
})

/** FNV-1a, to derive a per-route seed from the run's seed (same route, same cases, whatever the route order). */
function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}
