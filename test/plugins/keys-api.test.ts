/**
 * keys plugin, virtual keys: /key/generate, /key/update, /key/delete, /key/info, /key/list, /key/regenerate,
 * /key/block, /key/unblock through HTTP against a real gateway (store + auth + keys), with LiteLLM's field names
 * and status codes; the clear key only ever in the generate/regenerate responses; who may call what; no store.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { MASTER, startKeysGateway, type KeysGateway } from './keys-harness.js'

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

function chat(gw: KeysGateway, key: string, model = 'm') {
  return gw.post('/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] }, key)
}

/** A key whose user has `role` (the auth plugin takes a key's rights from its user). */
async function keyWithRole(gw: KeysGateway, role: string, userId = `u-${role}`) {
  const u = await gw.post('/user/new', { user_id: userId, user_role: role })
  if (u.status !== 200) throw new Error(`user/new: ${JSON.stringify(u.body)}`)
  return u.body.key as string
}

t.test('without a store every management route answers 400 "No connected db."', async (t) => {
  const gw = await startKeysGateway(t, { noStore: true })
  for (const [method, path] of [['POST', '/key/generate'], ['GET', '/key/info?key=sk-x'], ['GET', '/key/list'], ['POST', '/team/new'],
    ['GET', '/user/list'], ['POST', '/customer/new'], ['POST', '/budget/new'], ['GET', '/spend/logs'], ['GET', '/global/spend/models']] as const) {
    const res = await gw.call(method, path, method === 'POST' ? {} : undefined)
    t.equal(res.status, 400, `${method} ${path}`)
    t.equal(res.body.error.message, 'No connected db.')
    t.equal(res.body.error.code, 'no_database')
  }
  t.equal((await gw.post('/key/generate', {}, null)).status, 401, 'no key: auth answers first')
})

t.test('/key/generate: LiteLLM fields, the hash stored, the key usable at once', async (t) => {
  const gw = await startKeysGateway(t)
  const before = Date.now()
  const res = await gw.post('/key/generate', {
    key_alias: 'ci-key', duration: '1h', max_budget: 10, soft_budget: 5, budget_duration: '30d', tpm_limit: 1000, rpm_limit: 10,
    max_parallel_requests: 2, metadata: { team: 'core' }, tags: ['prod'], models: ['m'], custom_field: { x: 1 },
    model_max_budget: { m: { budget_limit: 1, time_period: '1d' } }, allowed_routes: ['llm_api_routes'],
  })
  t.equal(res.status, 200)
  const b = res.body
  t.match(b.key, /^sk-[A-Za-z0-9_-]{43}$/, 'sk- + 32 random bytes, base64url')
  t.equal(b.token, sha256(b.key), 'token is the hash')
  t.equal(b.token_id, sha256(b.key))
  t.equal(b.key_name, `sk-...${b.key.slice(-4)}`)
  t.equal(b.key_alias, 'ci-key')
  t.equal(b.max_budget, 10)
  t.equal(b.soft_budget, 5)
  t.equal(b.spend, 0)
  t.equal(b.tpm_limit, 1000)
  t.equal(b.rpm_limit, 10)
  t.equal(b.max_parallel_requests, 2)
  t.same(b.models, ['m'])
  t.same(b.metadata, { team: 'core', tags: ['prod'] }, 'tags also in metadata, as LiteLLM keeps them')
  t.same(b.custom_field, { x: 1 }, 'unknown fields are kept')
  t.same(b.model_max_budget, { m: { budget_limit: 1, time_period: '1d' } })
  t.equal(b.duration, '1h')
  const expires = Date.parse(b.expires)
  t.ok(expires >= before + 3_600_000 && expires <= Date.now() + 3_600_000, 'expires = now + duration')
  const reset = Date.parse(b.budget_reset_at)
  t.ok(reset >= before + 30 * 86_400_000 && reset <= Date.now() + 30 * 86_400_000, 'budget_reset_at = now + budget_duration')
  for (const f of ['user_id', 'team_id', 'budget_id', 'blocked']) t.equal(b[f], null, `${f} null`)

  const stored = await gw.store.get('key', sha256(b.key))
  t.ok(stored, 'stored under its hash')
  t.notOk(JSON.stringify(stored).includes(b.key), 'the clear key is not stored')
  t.equal((await chat(gw, b.key)).status, 200, 'the new key calls a model at once')
  t.equal((await chat(gw, b.key, 'other')).status, 403, 'its models list applies')

  const empty = await gw.post('/key/generate', {})
  t.equal(empty.status, 200, 'every field is optional')
  t.same(empty.body.models, [])
  t.equal(empty.body.expires, null, 'no duration: never expires')
  t.equal(empty.body.budget_reset_at, null)
})

t.test('/key/generate: own key, bad input, alias conflicts, team rules', async (t) => {
  const gw = await startKeysGateway(t)
  const own = await gw.post('/key/generate', { key: 'sk-my-own-key-1234' })
  t.equal(own.status, 200)
  t.equal(own.body.key, 'sk-my-own-key-1234')
  t.equal(own.body.key_name, 'sk-...1234')
  t.equal((await chat(gw, 'sk-my-own-key-1234')).status, 200)

  const cases: Array<[Record<string, unknown>, string]> = [
    [{ key: 'my-key-without-prefix' }, 'key'],
    [{ max_budget: -1 }, 'max_budget'],
    [{ soft_budget: -0.5 }, 'soft_budget'],
    [{ max_budget: '10' }, 'max_budget'],
    [{ duration: '1 fortnight' }, 'duration'],
    [{ budget_duration: 'monthly' }, 'budget_duration'],
    [{ tpm_limit: 1.5 }, 'tpm_limit'],
    [{ rpm_limit: -3 }, 'rpm_limit'],
    [{ models: 'm' }, 'models'],
    [{ models: [1] }, 'models.0'],
    [{ metadata: 'x' }, 'metadata'],
    [{ blocked: 'yes' }, 'blocked'],
    [{ model_max_budget: { m: { budget_limit: -1 } } }, 'model_max_budget.m.budget_limit'],
    [{ model_max_budget: { m: { time_period: '1d' } } }, 'model_max_budget.m'],
    [{ team_id: 'no-such-team' }, 'team_id'],
    [{ budget_id: 'no-such-budget' }, 'budget_id'],
  ]
  for (const [body, param] of cases) {
    const res = await gw.post('/key/generate', body)
    t.equal(res.status, 400, `${JSON.stringify(body)} -> 400`)
    t.equal(res.body.error?.param, param, `param ${param}`)
    t.equal(res.body.error?.type, 'invalid_request_error')
  }
  for (const raw of ['{not json', '[1,2]', '"x"']) {
    const res = await gw.call('POST', '/key/generate', raw)
    t.equal(res.status, 400, `body ${raw}`)
  }

  t.equal((await gw.post('/key/generate', { key_alias: 'dup' })).status, 200)
  const dup = await gw.post('/key/generate', { key_alias: 'dup' })
  t.equal(dup.status, 400, 'a taken key_alias: 400 as LiteLLM')
  t.equal(dup.body.error.code, 'already_exists')
  t.equal(dup.body.error.param, 'key_alias')
  t.equal((await gw.post('/key/generate', { key: 'sk-my-own-key-1234' })).body.error.code, 'already_exists', 'a taken key')

  t.equal((await gw.post('/team/new', { team_id: 'team-a', models: ['m'] })).status, 200)
  const outside = await gw.post('/key/generate', { team_id: 'team-a', models: ['other'] })
  t.equal(outside.status, 400, "a key's models must be within its team's")
  t.equal(outside.body.error.param, 'models')
  const inside = await gw.post('/key/generate', { team_id: 'team-a', models: ['m'] })
  t.equal(inside.status, 200)
  t.equal(inside.body.team_id, 'team-a')
  const noModels = await gw.post('/key/generate', { team_id: 'team-a' })
  t.equal(noModels.status, 200, 'no list: the team decides')
  t.equal((await chat(gw, noModels.body.key, 'other')).status, 403, "the team's models apply")
})

t.test('/key/info, /key/update, /key/list', async (t) => {
  const gw = await startKeysGateway(t)
  const events: unknown[] = []
  const bus = gw.gateway.container.cradle.events
  bus.on('invalidate', (e) => void events.push(['invalidate', e]))
  bus.on('spend.set', (e) => void events.push(['spend.set', e]))
  const a = (await gw.post('/key/generate', { key_alias: 'a', user_id: 'alice', metadata: { v: 1 } })).body
  const b = (await gw.post('/key/generate', { key_alias: 'b', user_id: 'bob' })).body

  for (const k of [a.key, a.token]) {
    const info = await gw.get(`/key/info?key=${encodeURIComponent(k)}`)
    t.equal(info.status, 200, 'by clear key and by hash')
    t.equal(info.body.key, a.token, 'answers with the hash')
    t.equal(info.body.info.key_alias, 'a')
    t.notOk('token' in info.body.info, 'no token in info, as LiteLLM')
  }
  const self = await gw.get('/key/info', a.key)
  t.equal(self.status, 200, 'a key sees itself without ?key=')
  t.equal(self.body.info.key_alias, 'a')
  t.equal((await gw.get('/key/info?key=sk-nope')).status, 404)
  t.equal((await gw.get('/key/info')).status, 404, 'the master key is not a stored key')

  events.length = 0
  const upd = await gw.post('/key/update', { key: a.key, key_alias: 'a2', max_budget: 3, spend: 1.5, budget_duration: '1d', duration: '2h', extra: 'kept' })
  t.equal(upd.status, 200)
  t.equal(upd.body.key, a.token)
  t.equal(upd.body.key_alias, 'a2')
  t.equal(upd.body.max_budget, 3)
  t.equal(upd.body.spend, 1.5)
  t.equal(upd.body.extra, 'kept')
  t.same(upd.body.metadata, { v: 1 }, 'metadata untouched when not sent')
  t.ok(Date.parse(upd.body.expires) > Date.now() + 3_500_000, 'a new duration sets a new expiry')
  t.ok(Date.parse(upd.body.budget_reset_at) > Date.now() + 86_000_000, 'a new budget period')
  t.same(events, [
    ['invalidate', { kind: 'key', id: a.token }],
    ['spend.set', { kind: 'key', id: a.token, spend: 1.5, resetAt: upd.body.budget_reset_at }],
  ], 'auth drops its copy; budget counters hear the new spend')
  const never = await gw.post('/key/update', { key: a.token, duration: null, budget_duration: null, metadata: { w: 2 } })
  t.equal(never.body.expires, null, 'duration null: never expires')
  t.equal(never.body.budget_reset_at, null)
  t.same(never.body.metadata, { w: 2 })
  t.equal((await gw.post('/key/update', { key: b.key, key_alias: 'a2' })).body.error.code, 'already_exists')
  t.equal((await gw.post('/key/update', { key: a.key, key_alias: 'a2' })).status, 200, 'its own alias is not a conflict')
  t.equal((await gw.post('/key/update', { key: 'sk-missing', max_budget: 1 })).status, 404)
  t.equal((await gw.post('/key/update', { max_budget: 1 })).body.error.param, 'key')
  t.equal((await gw.post('/key/update', { key: a.key, max_budget: -2 })).body.error.param, 'max_budget')
  t.equal((await gw.post('/key/update', { key: a.key, team_id: 'ghost' })).body.error.param, 'team_id')

  for (let i = 0; i < 5; i++) await gw.post('/key/generate', { user_id: 'carol' })
  const page1 = await gw.get('/key/list?user_id=carol&page=1&size=2')
  t.equal(page1.status, 200)
  t.equal(page1.body.total_count, 5)
  t.equal(page1.body.current_page, 1)
  t.equal(page1.body.total_pages, 3)
  t.equal(page1.body.keys.length, 2)
  t.match(page1.body.keys[0], /^[0-9a-f]{64}$/, 'hashes, not keys')
  const page3 = await gw.get('/key/list?user_id=carol&page=3&size=2')
  t.equal(page3.body.keys.length, 1)
  const full = await gw.get('/key/list?key_alias=b&return_full_object=true')
  t.equal(full.body.keys.length, 1)
  t.equal(full.body.keys[0].user_id, 'bob')
  t.equal((await gw.get(`/key/list?key_hash=${b.token}`)).body.keys[0], b.token)
  t.equal((await gw.get('/key/list')).body.total_count, 7)
  for (const q of ['page=0', 'page=x', 'size=101', 'size=0', 'return_full_object=maybe']) {
    const res = await gw.get(`/key/list?${q}`)
    t.equal(res.status, 400, q)
    t.equal(res.body.error.param, q.split('=')[0])
  }
})

t.test('/key/block, /key/unblock, /key/delete: the key stops and starts working', async (t) => {
  const gw = await startKeysGateway(t)
  const k = (await gw.post('/key/generate', { key_alias: 'blockme' })).body
  t.equal((await chat(gw, k.key)).status, 200)
  const blocked = await gw.post('/key/block', { key: k.key })
  t.equal(blocked.status, 200)
  t.equal(blocked.body.blocked, true)
  const refused = await chat(gw, k.key)
  t.equal(refused.status, 401, 'a blocked key is refused at once (auth dropped its cached copy)')
  t.equal((await gw.post('/key/unblock', { key: k.token })).body.blocked, false)
  t.equal((await chat(gw, k.key)).status, 200)
  t.equal((await gw.post('/key/block', { key: 'sk-unknown' })).status, 404)
  t.equal((await gw.post('/key/block', {})).body.error.param, 'key')

  const x = (await gw.post('/key/generate', { key_alias: 'x' })).body
  const y = (await gw.post('/key/generate', { key_alias: 'y' })).body
  const del = await gw.post('/key/delete', { keys: [k.key, x.token] })
  t.equal(del.status, 200)
  t.same(del.body, { deleted_keys: [k.key, x.token] }, 'LiteLLM echoes what was asked')
  t.equal((await chat(gw, k.key)).status, 401, 'a deleted key is refused')
  t.equal((await gw.post('/key/delete', { key_aliases: ['y'] })).body.deleted_keys[0], 'y')
  t.equal(await gw.store.get('key', y.token), null)
  t.equal((await gw.post('/key/delete', { keys: ['sk-gone'] })).status, 404)
  t.equal((await gw.post('/key/delete', {})).status, 400)
  t.equal((await gw.post('/key/delete', { keys: 'sk-a' })).body.error.param, 'keys')
})

t.test('/key/regenerate: a new secret with the same settings; the old one stops', async (t) => {
  const gw = await startKeysGateway(t)
  const k = (await gw.post('/key/generate', { key_alias: 'rot', max_budget: 7, metadata: { a: 1 }, models: ['m'] })).body
  await gw.post('/key/update', { key: k.key, spend: 2 })
  const r = await gw.post('/key/regenerate', { key: k.key, max_budget: 9 })
  t.equal(r.status, 200)
  t.not(r.body.key, k.key)
  t.match(r.body.key, /^sk-/)
  t.equal(r.body.token_id, sha256(r.body.key))
  t.equal(r.body.key_name, `sk-...${r.body.key.slice(-4)}`)
  t.equal(r.body.key_alias, 'rot', 'same settings')
  t.same(r.body.models, ['m'])
  t.equal(r.body.spend, 2, 'spend carries over')
  t.equal(r.body.max_budget, 9, 'new fields applied')
  t.equal((await chat(gw, r.body.key)).status, 200)
  t.equal((await chat(gw, k.key)).status, 401, 'the old key no longer works')
  t.equal(await gw.store.get('key', k.token), null)

  const viaPath = await gw.call('POST', `/key/${r.body.key}/regenerate`)
  t.equal(viaPath.status, 200, '/key/{key}/regenerate, no body')
  t.equal((await chat(gw, viaPath.body.key)).status, 200)
  const chosen = await gw.post(`/key/${viaPath.body.token_id}/regenerate`, { new_key: 'sk-chosen-new-key-9999' })
  t.equal(chosen.body.key, 'sk-chosen-new-key-9999', 'by hash, with new_key')
  t.equal((await gw.post('/key/regenerate', { key: 'sk-chosen-new-key-9999', new_key: 'no-prefix' })).body.error.param, 'new_key')
  t.equal((await gw.post('/key/regenerate', { key: 'sk-never-made' })).status, 404)
  t.equal((await gw.post('/key/regenerate', {})).status, 400)

  const logs = gw.logText()
  for (const clear of [k.key, r.body.key, viaPath.body.key, 'sk-chosen-new-key-9999']) {
    t.notOk(logs.includes(clear), 'no clear key in the logs (the path key is logged as sk-...xxxx)')
  }
  t.ok(logs.includes(`/key/sk-...${r.body.key.slice(-4)}/regenerate`), 'the regenerate route is logged with the short form')
})

t.test('access: admins, viewers, internal users, no key', async (t) => {
  const gw = await startKeysGateway(t)
  const viewer = await keyWithRole(gw, 'proxy_admin_viewer')
  const admin = await keyWithRole(gw, 'proxy_admin')
  const user = await keyWithRole(gw, 'internal_user', 'iu')
  const mine2 = (await gw.post('/key/generate', { user_id: 'iu' })).body
  const other = (await gw.post('/key/generate', { user_id: 'someone-else' })).body

  const gen = await gw.post('/key/generate', {}, admin)
  t.equal(gen.status, 200, 'a proxy_admin user may do everything')
  t.equal(gen.body.created_by, 'u-proxy_admin')

  t.equal((await gw.get('/key/list', viewer)).status, 200, 'a viewer may list')
  t.equal((await gw.get(`/key/info?key=${other.token}`, viewer)).status, 200, 'and read any key')
  t.equal((await gw.get('/team/list', viewer)).status, 200)
  t.equal((await gw.post('/budget/info', { budgets: ['x'] }, viewer)).status, 200, '/budget/info reads')
  const denied = await gw.post('/key/generate', {}, viewer)
  t.equal(denied.status, 403, 'but not change anything')
  t.equal(denied.body.error.type, 'permission_error')
  t.equal((await gw.post('/team/new', {}, viewer)).status, 403)

  t.equal((await gw.get('/key/info', user)).status, 200, 'a key reads itself')
  t.equal((await gw.get(`/key/info?key=${mine2.token}`, user)).status, 200, 'and the keys of its own user')
  t.equal((await gw.get(`/key/info?key=${other.token}`, user)).status, 403, 'not other keys')
  t.equal((await gw.get('/key/info?key=sk-does-not-exist', user)).status, 403, 'a missing key looks the same')
  t.equal((await gw.get('/user/info', user)).status, 200, 'its own user')
  t.equal((await gw.get('/user/info?user_id=iu', user)).status, 200)
  t.equal((await gw.get('/user/info?user_id=someone-else', user)).status, 403)
  for (const [m, p] of [['GET', '/key/list'], ['POST', '/key/generate'], ['POST', '/key/delete'], ['GET', '/team/list'], ['GET', '/user/list'],
    ['GET', '/customer/list'], ['GET', '/spend/logs'], ['GET', '/global/spend/keys'], ['POST', '/model/new'], ['GET', '/budget/list']] as const) {
    const res = await gw.call(m, p, m === 'POST' ? {} : undefined, user)
    t.equal(res.status, 403, `internal_user: ${m} ${p}`)
    t.equal(res.body.error.code, 'admin_only')
  }
  t.equal((await gw.get('/key/list', null)).status, 401, 'no key: 401 from auth')
  t.equal((await gw.get('/key/list', 'sk-wrong')).status, 401)
  t.equal((await gw.get('/key/list', MASTER)).status, 200)
})

t.test('the clear key is never logged or stored', async (t) => {
  const gw = await startKeysGateway(t)
  const made: string[] = []
  made.push((await gw.post('/key/generate', { key_alias: 's1' })).body.key)
  made.push((await gw.post('/user/new', { user_id: 'su' })).body.key)
  const r = await gw.post('/key/regenerate', { key: made[0] })
  made.push(r.body.key)
  for (const k of made) {
    await chat(gw, k)
    await gw.get(`/key/info?key=${k}`)
    await gw.get(`/spend/logs?api_key=${k}`)
  }
  await gw.post('/key/update', { key: made[1], max_budget: 1 })
  await gw.post('/key/delete', { keys: [made[1]] })
  const logs = gw.logText()
  t.ok(gw.logs.length > 10, 'the gateway logged its requests')
  const dump = JSON.stringify(await Promise.all(['key', 'user'].map((k) => gw.store.list(k as 'key'))))
  for (const k of made) {
    t.notOk(logs.includes(k), 'not in the logs')
    t.notOk(dump.includes(k), 'not in the store')
  }
})
