/**
 * Names a client may use for models, through the official openai client against a gateway booted from a LiteLLM
 * config: `router_settings.model_group_alias` (listed or hidden; the upstream always gets the deployment's own
 * model id, never the alias) and LiteLLM's several-model requests (`model: "a,b"` or a list: one call per model,
 * each with its own spend row, answered as a list; `fastest_response: true` answers with the first and cancels the
 * rest).
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, errorReply, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'
import { admin, deployment, eventually, generateKey, MASTER } from './helpers.js'

/** Answers at once, except for the upstream model `slow-model` (3 s, or until the gateway hangs up). */
const byModel: Behaviour = (ctx) => (ctx.record.body?.model === 'slow-model' ? delay(3_000, defaultChat())(ctx) : defaultChat()(ctx))
const up = await startUpstream(t, { chat: byModel })
const broken = await startUpstream(t, { chat: errorReply(500, { message: 'upstream exploded', type: 'server_error' }) })
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  model_group_alias:
    gpt-4: gpt-4o
    legacy-gpt: { model: gpt-4o, hidden: true }
    claude-x: claude
model_list:
${deployment('gpt-4o', up.url, 'gpt-4o-2024-08-06')}${deployment('claude', up.url, 'claude-upstream')}${deployment('slow', up.url, 'slow-model')}${deployment('broken', broken.url, 'broken-model')}${deployment('odd,name', up.url, 'odd-model')}`)

const client = (key = MASTER) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 20_000 })
const HI = [{ role: 'user' as const, content: 'hi' }]
/** Upstream model ids of the requests that arrived after `from`. */
const sentSince = (from: number) => up.requests.slice(from).map((r) => r.body?.model)

t.test('model_group_alias: the alias serves its group and the upstream gets the deployment\'s model id', async (t) => {
  const from = up.requests.length
  const r = await client().chat.completions.create({ model: 'gpt-4', messages: HI })
  t.equal(r.choices[0]?.message.content, 'Hello from the fake upstream.')
  const hidden = await client().chat.completions.create({ model: 'legacy-gpt', messages: HI })
  t.ok(hidden.id, 'a hidden alias serves too')
  t.same(sentSince(from), ['gpt-4o-2024-08-06', 'gpt-4o-2024-08-06'], 'never the alias name upstream')

  const ids = (await client().models.list()).data.map((m) => m.id)
  t.ok(ids.includes('gpt-4') && ids.includes('claude-x'), 'listed aliases are in /v1/models')
  t.notOk(ids.includes('legacy-gpt'), 'a hidden alias is not listed')

  const bad = await client().chat.completions.create({ model: 'no-such-alias', messages: HI }).catch((e) => e)
  t.equal(bad.status, 400, 'an unknown name is still a 400')
})

t.test('several models in one request: one call each, answered as a list in the order asked', async (t) => {
  const from = up.requests.length
  const res = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: 'gpt-4o, claude', messages: HI }, MASTER)
  t.equal(res.status, 200)
  t.ok(Array.isArray(res.body), 'a JSON list')
  t.equal(res.body.length, 2)
  t.equal(res.body[0].object, 'chat.completion')
  t.equal(res.body[0].model, 'gpt-4o-2024-08-06', 'first answer from the first model')
  t.equal(res.body[1].model, 'claude-upstream', 'second from the second')
  t.same(sentSince(from).sort(), ['claude-upstream', 'gpt-4o-2024-08-06'], 'one upstream call per model')

  const list = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: ['claude-x', 'gpt-4'], messages: HI }, MASTER)
  t.equal(list.status, 200)
  t.same(list.body.map((b: any) => b.model), ['claude-upstream', 'gpt-4o-2024-08-06'], '`model` as a list, aliases too')

  // Through the official client, the body is the list too (it types it as one completion; the JSON is a list).
  const raw = await client().chat.completions.create({ model: 'gpt-4o,claude', messages: HI }).asResponse()
  const viaSdk = await raw.json()
  t.ok(Array.isArray(viaSdk) && viaSdk.length === 2, 'the openai client receives the list')
})

t.test('each call is its own request: own spend row with its own request id', async (t) => {
  const k = await generateKey(t, gw.url, {})
  const res = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: 'gpt-4o,claude', messages: HI }, k.key)
  t.equal(res.status, 200)
  const rows = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${k.token}`)
    return Array.isArray(r.body) && r.body.length >= 2 ? r.body : undefined
  }, 10_000, 'two spend rows')
  t.equal(rows.length, 2, 'two rows for two calls')
  t.same(rows.map((r: any) => r.model_group ?? r.model).sort(), ['claude', 'gpt-4o'])
  t.equal(new Set(rows.map((r: any) => r.request_id)).size, 2, 'distinct request ids')
  t.ok(rows.every((r: any) => r.spend > 0), 'each priced')
})

t.test('a failing model holds its error in the list; all failing is an error response', async (t) => {
  const res = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: 'gpt-4o,broken', messages: HI }, MASTER)
  t.equal(res.status, 200)
  t.equal(res.body[0].object, 'chat.completion')
  t.match(res.body[1], { error: { message: String, type: String } }, 'the failed call\'s OpenAI error in its place')
  const all = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: 'broken,broken', messages: HI }, MASTER)
  t.ok(all.status >= 500, `every call failed: the first error (${all.status})`)
  t.match(all.body, { error: { message: String } })
})

t.test('fastest_response: the first answer wins and the slower call is cancelled', async (t) => {
  const from = up.requests.length
  const started = Date.now()
  const r = await client().chat.completions.create({ model: 'slow,gpt-4o', messages: HI, fastest_response: true } as any)
  t.ok(Date.now() - started < 2_000, 'did not wait for the slow model')
  t.equal(r.model, 'gpt-4o-2024-08-06', 'one completion, from the fast model')
  t.notOk('fastest_response' in (up.requests[from]?.body ?? {}), 'the flag is not sent upstream')
  const slowReq = up.requests.slice(from).findIndex((x) => x.body?.model === 'slow-model')
  t.ok(slowReq >= 0, 'the slow model was called')
  const closed = await up.waitClosed(from + slowReq, 5_000)
  t.equal(closed.aborted, true, 'and its call was cancelled')
})

t.test('edge cases: streaming several models is a 400; a configured name with a comma is not split', async (t) => {
  const s = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: 'gpt-4o,claude', messages: HI, stream: true }, MASTER)
  t.equal(s.status, 400)
  t.match(s.body, { error: { param: 'stream', type: 'invalid_request_error' } })
  const from = up.requests.length
  const odd = await client().chat.completions.create({ model: 'odd,name', messages: HI })
  t.equal(odd.model, 'odd-model')
  t.same(sentSince(from), ['odd-model'])
  const bad = await jsonCall(gw.url, 'POST', '/v1/chat/completions', { model: [1, 2], messages: HI }, MASTER)
  t.equal(bad.status, 400, 'a list of non-strings is refused')
  t.match(bad.body, { error: { param: 'model' } })
})

t.test('a key allowed a group may call its aliases and sees them; a key allowed another group may not', async (t) => {
  const k = await generateKey(t, gw.url, { models: ['gpt-4o'] })
  const r = await client(k.key).chat.completions.create({ model: 'gpt-4', messages: HI })
  t.equal(r.model, 'gpt-4o-2024-08-06', 'the alias of an allowed group is allowed')
  const ids = (await client(k.key).models.list()).data.map((m) => m.id).sort()
  t.same(ids, ['gpt-4', 'gpt-4o'], 'its /v1/models lists the group and its listed alias')
  const other = await generateKey(t, gw.url, { models: ['claude'] })
  const refused = await client(other.key).chat.completions.create({ model: 'gpt-4', messages: HI }).catch((e) => e)
  t.equal(refused.status, 403, 'a key allowed another group cannot reach it through an alias')
  const byAlias = await generateKey(t, gw.url, { models: ['claude-x'] })
  t.equal((await client(byAlias.key).chat.completions.create({ model: 'claude-x', messages: HI })).model, 'claude-upstream',
    'a key allowed the alias name itself calls it')
})
