/**
 * The Vertex AI adapter, unit by unit: endpoint URLs, LiteLLM's settings and environment variables, Google
 * credentials (service account and authorized_user, as a JSON string, a file or an object), OAuth tokens against a
 * fake token endpoint that verifies the JWT's RS256 signature with the service account's public key (one fetch for
 * many calls, another after expiry on a fake clock, failures as 401s without secrets), text embeddings over the
 * recorded `:predict` exchange, Gemini on Vertex over the recorded answers, and Claude through rawPredict.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createVertexAdapter, vertex_ai } from '../../providers/vertex/index.js'
import { loadCredentials } from '../../providers/vertex/credentials.js'
import { applyParamMap } from '../../providers/param-map.js'
import type { OperationAdapter, ProviderAdapter, ResponseMeta, Target } from '../../providers/types.js'
import type { ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest } from '../../core/openai/types.js'
import { GatewayError } from '../../core/errors.js'
import { SseParser } from '../../core/sse.js'
import { buildConfig } from '../../core/config/load.js'
import { createModelTable } from '../../core/models.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertGeminiSchema, recording, REC, target } from './google-fixtures.js'
import { CLIENT_EMAIL, keyPair, serviceAccount, startTokenServer, USER, writeJson } from './google-token-server.js'

const ANTHROPIC = '../../../shared/data/anthropic/'
const anthropicFile = (name: string) => readFileSync(fileURLToPath(new URL(`${ANTHROPIC}${name}`, import.meta.url)), 'utf8')

const place = { vertex_project: 'my-proj', vertex_location: 'us-central1' }
const vt = (over: Partial<Target> = {}, params: Record<string, unknown> = place) => target('vertex_ai', { params, ...over })
const meta = (tg: Target): ResponseMeta => ({ target: tg, requestId: 'req-v', created: 1_700_000_000 })
const chatOf = (a: ProviderAdapter) => a.chat as OperationAdapter<ChatRequest, ChatCompletion, ChatChunk>

async function rejected(p: unknown): Promise<GatewayError> {
  try {
    await p
  } catch (e) {
    if (e instanceof GatewayError) return e
    throw e
  }
  throw new Error('expected a GatewayError')
}

function build(a: ProviderAdapter, req: Partial<ChatRequest>, tg: Target, stream = false): Record<string, any> {
  const full = { model: 'v', messages: [{ role: 'user', content: 'hi' }], ...req } as ChatRequest
  const op = chatOf(a)
  const body = applyParamMap(full, op.params, tg, op.policy)
  return op.finish ? op.finish(body, full, tg, stream) : body
}

t.test('endpoint URLs', async (t) => {
  const G = 'publishers/google/models'
  const rows: Array<[string, Partial<Target>, Record<string, unknown>, 'chat' | 'embeddings', boolean, string]> = [
    ['gemini', {}, place, 'chat', false, `https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/${G}/gemini-2.5-flash:generateContent`],
    ['gemini stream', {}, place, 'chat', true, `https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/${G}/gemini-2.5-flash:streamGenerateContent?alt=sse`],
    ['location global', {}, { vertex_project: 'p', vertex_location: 'global' }, 'chat', false, `https://aiplatform.googleapis.com/v1/projects/p/locations/global/${G}/gemini-2.5-flash:generateContent`],
    ['default location, LiteLLM alias names', {}, { vertex_ai_project: 'alias-proj' }, 'chat', false, `https://us-central1-aiplatform.googleapis.com/v1/projects/alias-proj/locations/us-central1/${G}/gemini-2.5-flash:generateContent`],
    ['api_base replaces the host', { apiBase: 'http://127.0.0.1:9/' }, { vertex_project: 'p', vertex_location: 'europe-west4' }, 'chat', false, `http://127.0.0.1:9/v1/projects/p/locations/europe-west4/${G}/gemini-2.5-flash:generateContent`],
    ['api_base as the model URL (LiteLLM)', { apiBase: `https://gw.example/v1/projects/p/locations/l/${G}/gemini-2.5-flash` }, place, 'chat', false, `https://gw.example/v1/projects/p/locations/l/${G}/gemini-2.5-flash:generateContent`],
    ['embeddings', { model: 'text-embedding-004' }, place, 'embeddings', false, `https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/${G}/text-embedding-004:predict`],
    ['a numeric model is a deployed endpoint', { model: '4965075652664360960' }, place, 'chat', false, 'https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/endpoints/4965075652664360960:generateContent'],
    ['claude', { model: 'claude-sonnet-4@20250514' }, { vertex_project: 'p', vertex_location: 'us-east5' }, 'chat', false, 'https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict'],
    ['claude stream', { model: 'claude-sonnet-4@20250514' }, { vertex_project: 'p', vertex_location: 'us-east5' }, 'chat', true, 'https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict'],
  ]
  for (const [name, over, params, op, stream, url] of rows) t.equal(vertex_ai.request(op, vt(over, params), stream).url, url, name)
  const noProject = (() => { try { vertex_ai.request('chat', vt({}, {}), false) } catch (e) { return e as GatewayError } })()
  t.match(noProject?.message, /vertex_project or VERTEXAI_PROJECT/, 'no project: a clear error')
})

t.test("LiteLLM's settings and environment variables reach the target", async (t) => {
  const server = await startTokenServer(t)
  const keyFile = writeJson(t, 'sa.json', serviceAccount(server))
  const registry = createProviderRegistry([...builtinProviders(), vertex_ai])
  const config = buildConfig({
    model_list: [
      { model_name: 'from-env', litellm_params: { model: 'vertex_ai/gemini-2.5-flash' } },
      { model_name: 'explicit', litellm_params: { model: 'vertex_ai/gemini-2.5-flash', vertex_project: 'cfg-proj', vertex_location: 'asia-northeast1' } },
    ],
  }, { env: {} })
  const env = { VERTEXAI_PROJECT: 'env-proj', VERTEXAI_LOCATION: 'europe-west1', GOOGLE_APPLICATION_CREDENTIALS: keyFile }
  const models = createModelTable(config, registry, env)
  const fromEnv = models.resolve('from-env')[0]!
  t.same(fromEnv.params, { vertex_project: 'env-proj', vertex_location: 'europe-west1', vertex_credentials: keyFile })
  t.match(vertex_ai.request('chat', fromEnv, false).url, /^https:\/\/europe-west1-aiplatform\.googleapis\.com\/v1\/projects\/env-proj\//)
  const explicit = models.resolve('explicit')[0]!
  t.match(vertex_ai.request('chat', explicit, false).url, /^https:\/\/asia-northeast1-aiplatform\.googleapis\.com\/v1\/projects\/cfg-proj\//, 'litellm_params win over the environment')
  const projectFromKey = createModelTable(config, registry, { VERTEXAI_CREDENTIALS: keyFile }).resolve('from-env')[0]!
  t.match(vertex_ai.request('chat', projectFromKey, false).url, /\/projects\/demo-project\//, "no project set: the service account's project_id")
})

t.test('credentials: a JSON string, a file, an object; clear 401s that echo nothing', async (t) => {
  const server = await startTokenServer(t)
  const sa = serviceAccount(server)
  const fromText = loadCredentials(JSON.stringify(sa), 'vertex_ai')
  const fromFile = loadCredentials(writeJson(t, 'key.json', sa), 'vertex_ai')
  const fromObject = loadCredentials(Object.freeze({ ...sa }), 'vertex_ai')
  for (const c of [fromText, fromFile, fromObject]) {
    t.equal(c.kind, 'service_account')
    t.equal(c.projectId, 'demo-project')
  }
  t.equal(fromText.key, fromFile.key, 'the same key, however given, is one cache entry')
  t.equal(loadCredentials(JSON.stringify({ type: 'authorized_user', ...USER, token_uri: server.uri, quota_project_id: 'qp' }), 'vertex_ai').projectId, 'qp')
  const bad: Array<[unknown, RegExp]> = [
    ['{"type": "service_account", "private_key": ', /not valid JSON/],
    ['/nonexistent/key.json', /cannot read the credentials file \/nonexistent\/key.json \(ENOENT\)/],
    [JSON.stringify({ ...sa, client_email: undefined }), /needs client_email and private_key/],
    [JSON.stringify({ ...sa, private_key: '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END PRIVATE KEY-----\n' }), /private_key is not a valid PEM/],
    [JSON.stringify({ type: 'external_account', audience: 'x' }), /type 'external_account' are not supported/],
    [JSON.stringify({ type: 'authorized_user', client_id: 'x' }), /need client_id, client_secret and refresh_token/],
  ]
  for (const [raw, why] of bad) {
    let e: GatewayError | undefined
    try {
      loadCredentials(raw, 'vertex_ai')
    } catch (err) {
      e = err as GatewayError
    }
    t.equal(e?.code, 'GW_ERR_UPSTREAM_AUTH', `${String(why)}: a 401`)
    t.match(e?.message, why)
    t.notMatch(e?.message, /BEGIN PRIVATE KEY|c2VjcmV0/, 'the key material is never echoed')
  }
})

t.test('tokens: an RS256 JWT the server verifies, one fetch for many calls, another after expiry', async (t) => {
  const server = await startTokenServer(t)
  let clock = Date.UTC(2026, 0, 1, 12, 0, 0)
  const adapter = createVertexAdapter({ now: () => clock })
  const tg = vt({}, { ...place, vertex_credentials: JSON.stringify(serviceAccount(server)) })
  const auth = () => adapter.authorize!(adapter.request('chat', tg, false), '{}', tg) as Promise<{ url: string; headers: Record<string, string> }>

  const concurrent = await Promise.all(Array.from({ length: 10 }, auth))
  t.ok(concurrent.every((r) => r.headers.authorization === 'Bearer ya29.token-1'), 'ten concurrent calls share one token')
  for (let i = 0; i < 5; i++) t.equal((await auth()).headers.authorization, 'Bearer ya29.token-1')
  t.equal(server.issued.length, 1, 'fetched once for fifteen calls')
  const g = server.issued[0]!
  t.same(g.header, { alg: 'RS256', typ: 'JWT', kid: 'kid-1' })
  t.equal(g.claims!.iss, CLIENT_EMAIL)
  t.equal(g.claims!.aud, server.uri)
  t.equal(g.claims!.scope, 'https://www.googleapis.com/auth/cloud-platform')
  t.equal(g.claims!.iat, clock / 1000, 'iat from the injected clock')
  t.equal(g.claims!.exp, clock / 1000 + 3600)

  clock += 54 * 60_000 // 54 minutes: still more than the 5-minute margin left
  t.equal((await auth()).headers.authorization, 'Bearer ya29.token-1')
  clock += 2 * 60_000 // 56 minutes: inside the margin, replaced before it lapses
  t.equal((await auth()).headers.authorization, 'Bearer ya29.token-2')
  t.equal(server.issued.length, 2, 'fetched again near expiry')
  t.equal(server.issued[1]!.claims!.iat, clock / 1000)
  t.equal(server.refused.length, 0)

  const user = vt({}, { ...place, vertex_credentials: { type: 'authorized_user', ...USER, token_uri: server.uri } })
  const r = await adapter.authorize!(adapter.request('chat', user, false), '{}', user)
  t.equal(r.headers.authorization, 'Bearer ya29.token-3', 'authorized_user: the refresh grant')
  t.same(server.issued[2]!.form, { grant_type: 'refresh_token', ...USER })
})

t.test('token failures: 401s with the endpoint\'s reason and no secret; a failure is not cached', async (t) => {
  const server = await startTokenServer(t)
  const adapter = createVertexAdapter()
  const sa = serviceAccount(server)
  const tg = vt({}, { ...place, vertex_credentials: JSON.stringify(sa) })
  const auth = (x: Target = tg) => adapter.authorize!(adapter.request('chat', x, false), '{}', x)

  server.failWith = { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }
  const e = await rejected(auth())
  t.equal(e.code, 'GW_ERR_UPSTREAM_AUTH')
  t.equal(e.status, 401)
  t.match(e.message, /service account switchyard-test@demo-project\.iam\.gserviceaccount\.com.*invalid_grant: Invalid JWT Signature\./)
  t.notMatch(e.message, /eyJ|BEGIN|PRIVATE|assertion=/, 'no JWT, no key in the message')
  server.failWith = null
  t.equal((await auth()).headers.authorization, 'Bearer ya29.token-1', 'the next call fetches again and succeeds')

  const stranger = vt({}, { ...place, vertex_credentials: JSON.stringify({ ...sa, private_key: keyPair().privateKeyPem }) })
  const wrongKey = await rejected(auth(stranger))
  t.match(wrongKey.message, /Invalid JWT Signature/, 'a key the server does not trust: its signature is refused')

  const gone = vt({}, { ...place, vertex_credentials: JSON.stringify({ ...sa, token_uri: 'http://127.0.0.1:1/token' }) })
  const unreachable = await rejected(auth(gone))
  t.equal(unreachable.status, 401)
  t.match(unreachable.message, /could not be reached \(ECONNREFUSED\)/)

  const user = vt({}, { ...place, vertex_credentials: { type: 'authorized_user', ...USER, refresh_token: 'revoked', token_uri: server.uri } })
  const revoked = await rejected(auth(user))
  t.notMatch(revoked.message, /revoked|user-secret/, 'refresh token and client secret stay out of the message')

  const bearer = await auth(vt({ apiKey: 'ya29.pre-fetched' }))
  t.equal(bearer.headers.authorization, 'Bearer ya29.pre-fetched', 'no credentials but an api_key: sent as the bearer token')
  const none = await rejected(auth(vt()))
  t.match(none.message, /no credentials for model m: set litellm_params.vertex_credentials, VERTEXAI_CREDENTIALS or GOOGLE_APPLICATION_CREDENTIALS/)
})

t.test('text embeddings over the recorded :predict exchange', async (t) => {
  const rec = recording(REC.embedVertex)[0]!
  const emb = vertex_ai.embeddings!
  const tg = vt({ model: 'text-embedding-004' })
  const req: EmbeddingRequest = { model: 'e', input: 'Hello world' }
  t.same(emb.finish!(applyParamMap(req, emb.params, tg, emb.policy), req, tg, false), rec.request.bodySegments[0], 'the recorded request body')
  const many: EmbeddingRequest = { model: 'e', input: ['a', 'b'], dimensions: 256, task_type: 'RETRIEVAL_DOCUMENT' }
  t.same(emb.finish!(applyParamMap(many, emb.params, tg, emb.policy), many, tg, false), {
    instances: [{ content: 'a', task_type: 'RETRIEVAL_DOCUMENT' }, { content: 'b', task_type: 'RETRIEVAL_DOCUMENT' }],
    parameters: { outputDimensionality: 256 },
  })
  const out = emb.response(rec.response.bodySegments[0], meta(tg))
  t.equal(out.data.length, 1)
  t.same(out.data[0]!.embedding, rec.response.bodySegments[0].predictions[0].embeddings.values)
  t.same(out.usage, { prompt_tokens: 2, total_tokens: 2 }, 'statistics.token_count -> usage')
  assertSchema(t, 'CreateEmbeddingResponse', out)
})

t.test('Gemini on Vertex: the Gemini mapping, the recorded Vertex answers', async (t) => {
  const tg = vt()
  const rec = recording(REC.generateVertex)[0]!
  const body = build(vertex_ai, { messages: [{ role: 'user', content: 'why is the sky blue?' }], n: 1, max_tokens: 200, thinking: { budget_tokens: 50 } }, tg)
  t.same(body, rec.request.bodySegments[0], 'the recorded Vertex request')
  assertGeminiSchema(t, 'GenerateContentRequest', body)
  const unsupported = (() => { try { build(vertex_ai, { logit_bias: { 1: 1 } }, tg) } catch (e) { return e as GatewayError } })()
  t.equal(unsupported?.param, 'logit_bias', "Gemini's unsupported params hold on Vertex")
  const out = chatOf(vertex_ai).response(rec.response.bodySegments[0], meta(tg))
  t.equal(out.choices[0]!.finish_reason, 'length')
  t.equal(out.usage?.total_tokens, 203)
  assertSchema(t, 'CreateChatCompletionResponse', out)
  const tr = chatOf(vertex_ai).stream!({} as ChatRequest, meta(tg))
  const chunks = recording(REC.streamVertex)[0]!.response.bodySegments.flatMap((s) => tr.event({ event: undefined, data: JSON.stringify(s) }))
  t.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'length')
  t.equal(tr.end().usage?.completion_tokens, 197)
  const err = vertex_ai.error(404, [{ error: { code: 404, message: 'Publisher Model `x` was not found.', status: 'NOT_FOUND' } }], {})
  t.equal(err.code, 'GW_ERR_UPSTREAM_NOT_FOUND')
  t.equal(err.provider, 'vertex_ai')
})

t.test('Claude on Vertex: the Anthropic body without model, with anthropic_version; its answers and errors', async (t) => {
  const tg = vt({ model: 'claude-sonnet-4@20250514' })
  const body = build(vertex_ai, {
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Use the test_tool with value "test"' }],
    max_tokens: 1000,
    tools: [{ type: 'function', function: { name: 'test_tool', description: 'A test tool', parameters: { type: 'object', properties: { value: { type: 'string' } }, required: ['value'] } } }],
  }, tg)
  t.notOk('model' in body, 'no model in the body: it is in the URL')
  t.equal(body.anthropic_version, 'vertex-2023-10-16')
  t.equal(body.max_tokens, 1000)
  t.equal(body.messages.length, 1, 'the system message is not a turn')
  t.equal(body.messages[0].role, 'user')
  t.match(JSON.stringify(body.messages[0].content), /Use the test_tool with value/)
  t.ok(Array.isArray(body.tools) && body.tools[0].name === 'test_tool', 'tools in Anthropic form')
  t.ok(body.system, 'system prompt at the top level')
  t.notOk('stream' in body)
  t.equal(build(vertex_ai, {}, tg, true).stream, true, 'streams ask Anthropic for SSE')

  const recorded = JSON.parse(anthropicFile('messages.tool_use.recorded.json')).interactions[0].response
  const out = chatOf(vertex_ai).response(recorded, meta(tg))
  t.equal(out.choices[0]!.finish_reason, 'tool_calls')
  t.equal(out.choices[0]!.message.tool_calls![0]!.function.name, 'test_tool')
  t.same(JSON.parse(out.choices[0]!.message.tool_calls![0]!.function.arguments), { value: 'test' })
  t.equal(out.usage?.prompt_tokens, 415)

  const tr = chatOf(vertex_ai).stream!({ model: 'v', messages: [] } as ChatRequest, meta(tg))
  const parser = new SseParser()
  const chunks = [...parser.push(anthropicFile('stream.tool_use.sse')), ...parser.end()].flatMap((e) => tr.event(e))
  const args = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).map((d) => d.function?.arguments ?? '').join('')
  t.same(JSON.parse(args), { location: 'Paris' }, 'tool-call argument fragments reassemble')
  t.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]!.finish_reason, 'tool_calls')

  const anthropicShaped = vertex_ai.error(400, JSON.parse(anthropicFile('error.invalid_request.json')), {})
  t.equal(anthropicShaped.code, 'GW_ERR_UPSTREAM_BAD_REQUEST')
  t.equal(anthropicShaped.message, 'max_tokens: Field required', "Anthropic's error shape: Anthropic's mapping")
  const tooLong = vertex_ai.error(400, { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 210000 tokens > 200000 maximum' } }, {})
  t.equal(tooLong.code, 'GW_ERR_CONTEXT_WINDOW')
  const quota = vertex_ai.error(429, { error: { code: 429, message: 'Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model', status: 'RESOURCE_EXHAUSTED' } }, { 'retry-after': '3' })
  t.equal(quota.code, 'GW_ERR_UPSTREAM_RATE_LIMIT', "Vertex's own errors: Google's mapping")
  t.equal(quota.retryAfter, 3)
})
