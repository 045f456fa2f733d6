/**
 * keys plugin: stored models (/model/new, /model/update, /model/delete) served at once, shown by /model/info with
 * db_model, persisted across a restart and reloaded when another replica changes them; spend reports
 * (/spend/logs, /global/spend/*) from the store's spend rows.
 */
import t from 'tap'
import type { SpendLogRow } from '../../core/store.js'
import { startKeysGateway, tempDb, type KeysGateway } from './keys-harness.js'


function chat(gw: KeysGateway, model: string) {
  return gw.post('/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] })
}

/** Lets a listener started by an event (a reload) finish. */
async function settle(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true
    await new Promise((r) => setImmediate(r))
  }
  return false
}

t.test('without store_model_in_db the model routes explain how to enable them', async (t) => {
  const gw = await startKeysGateway(t)
  for (const [path, body] of [['/model/new', { model_name: 'x', litellm_params: { model: 'mock/x' } }], ['/model/update', { model_info: { id: 'a' } }], ['/model/delete', { id: 'a' }]] as const) {
    const res = await gw.post(path, body)
    t.equal(res.status, 400, path)
    t.match(res.body.error.message, /store_model_in_db: true.*STORE_MODEL_IN_DB/)
  }
  t.equal((await chat(gw, 'x')).status, 400, 'nothing was added')
})

t.test('/model/new serves at once; /model/info and /model_group/info show it with db_model', async (t) => {
  const gw = await startKeysGateway(t, { storeModelInDb: true })
  const events: string[] = []
  gw.gateway.container.cradle.events.on('models.changed', () => void events.push('models.changed'))
  t.equal((await chat(gw, 'fresh')).status, 400, 'unknown before')
  const res = await gw.post('/model/new', {
    model_name: 'fresh',
    litellm_params: { model: 'mock/fresh', api_key: 'sk-provider-secret-123', mock_response: 'fresh says hi', rpm: 60 },
    model_info: { id: 'fresh-1', mode: 'chat', team: 'x' },
  })
  t.equal(res.status, 200)
  t.equal(res.body.model_id, 'fresh-1')
  t.equal(res.body.model_name, 'fresh')
  t.equal(res.body.litellm_params.model, 'mock/fresh')
  t.equal(res.body.litellm_params.api_key, '********', 'credentials are not sent back')
  t.equal(res.body.model_info.db_model, true)
  t.same(events, ['models.changed'])

  const call = await chat(gw, 'fresh')
  t.equal(call.status, 200, 'a chat call works without a restart')
  t.equal(call.body.choices[0].message.content, 'fresh says hi')
  t.ok((await gw.get('/v1/models')).body.data.some((m: { id: string }) => m.id === 'fresh'), '/v1/models lists it')

  const info = await gw.get('/model/info')
  const stored = info.body.data.find((d: { model_info: { id: string } }) => d.model_info.id === 'fresh-1')
  t.ok(stored)
  t.equal(stored.model_name, 'fresh')
  t.equal(stored.model_info.db_model, true)
  t.equal(stored.model_info.team, 'x', 'its model_info as given')
  t.notOk(JSON.stringify(info.body).includes('sk-provider-secret-123'), 'no key in /model/info')
  t.equal(info.body.data.find((d: { model_info: { id: string } }) => d.model_info.id === 'config-m').model_info.db_model, false, 'config.yaml ones: false')
  t.equal((await gw.get('/v1/model/info?litellm_model_id=fresh-1')).body.data.length, 1)
  const group = await gw.get('/model_group/info?model_group=fresh')
  t.equal(group.body.data.length, 1)
  t.equal(group.body.data[0].rpm, 60)

  const auto = await gw.post('/model/new', { model_name: 'fresh', litellm_params: { model: 'mock/fresh2' } })
  t.match(auto.body.model_id, /^[0-9a-f-]{36}$/, 'an id is generated; a second deployment of the same name')
  t.equal((await gw.get('/model_group/info?model_group=fresh')).body.data[0].providers.length, 1)
  t.equal((await gw.get('/model/info')).body.data.filter((d: { model_name: string }) => d.model_name === 'fresh').length, 2)

  t.equal((await gw.post('/model/new', { model_name: 'x', litellm_params: { model: 'mock/x' }, model_info: { id: 'config-m' } })).body.error.code, 'already_exists')
  t.equal((await gw.post('/model/new', { model_name: 'x', litellm_params: { model: 'mock/x' }, model_info: { id: 'fresh-1' } })).body.error.code, 'already_exists')
  const unset = await gw.post('/model/new', { model_name: 'envy', litellm_params: { model: 'openai/gpt-4o', api_key: 'os.environ/SWITCHYARD_TEST_UNSET_VAR' } })
  t.equal(unset.status, 400, 'a key from an unset variable is refused, not sent as text')
  t.equal(unset.body.error.param, 'litellm_params.api_key')
  t.equal((await gw.store.list('model', { where: { model_name: 'envy' } })).total, 0, 'and not stored')
  for (const [body, param] of [
    [{ litellm_params: { model: 'mock/x' } }, 'model_name'],
    [{ model_name: 'x' }, 'litellm_params'],
    [{ model_name: 'x', litellm_params: {} }, 'litellm_params.model'],
    [{ model_name: 'x', litellm_params: { model: 3 } }, 'litellm_params.model'],
    [{ model_name: '', litellm_params: { model: 'mock/x' } }, 'model_name'],
  ] as const) {
    const r = await gw.post('/model/new', body)
    t.equal(r.status, 400, JSON.stringify(body))
    t.equal(r.body.error.param, param)
  }
  t.notOk(gw.logText().includes('sk-provider-secret-123'), 'the provider key is not logged')
})

t.test('/model/update and /model/delete: stored ones change at once, config.yaml ones are refused', async (t) => {
  const gw = await startKeysGateway(t, { storeModelInDb: true })
  await gw.post('/model/new', { model_name: 'pet', litellm_params: { model: 'mock/pet', mock_response: 'woof' }, model_info: { id: 'pet-1' } })
  t.equal((await chat(gw, 'pet')).body.choices[0].message.content, 'woof')
  const upd = await gw.post('/model/update', { model_info: { id: 'pet-1', note: 'n' }, litellm_params: { mock_response: 'meow' } })
  t.equal(upd.status, 200)
  t.equal(upd.body.litellm_params.model, 'mock/pet', 'params not sent are kept (LiteLLM merges)')
  t.equal(upd.body.model_info.note, 'n')
  t.equal((await chat(gw, 'pet')).body.choices[0].message.content, 'meow', 'the new params serve at once')
  const renamed = await gw.post('/model/update', { model_name: 'cat', model_info: { id: 'pet-1' } })
  t.equal(renamed.body.model_name, 'cat')
  t.equal((await chat(gw, 'pet')).status, 400, 'the old name is gone')
  t.equal((await chat(gw, 'cat')).status, 200)

  const cfg = await gw.post('/model/update', { model_info: { id: 'config-m' }, litellm_params: { mock_response: 'x' } })
  t.equal(cfg.status, 400)
  t.match(cfg.body.error.message, /Model in config/)
  t.equal((await gw.post('/model/update', { model_info: { id: 'nope' } })).status, 400)
  t.equal((await gw.post('/model/update', { litellm_params: { model: 'x' } })).body.error.param, 'model_info')

  const cfgDel = await gw.post('/model/delete', { id: 'config-m' })
  t.equal(cfgDel.status, 400, 'a config.yaml deployment cannot be deleted via the API')
  t.match(cfgDel.body.error.message, /not found in db.*config\.yaml/)
  t.equal((await chat(gw, 'm')).status, 200, 'and still serves')
  const del = await gw.post('/model/delete', { id: 'pet-1' })
  t.same(del.body, { message: 'Model: pet-1 deleted successfully' })
  t.equal((await chat(gw, 'cat')).status, 400, 'gone at once')
  t.notOk((await gw.get('/model/info')).body.data.some((d: { model_info: { id: string } }) => d.model_info.id === 'pet-1'))
  t.equal((await gw.post('/model/delete', { id: 'pet-1' })).status, 400)
  t.equal((await gw.post('/model/delete', {})).body.error.param, 'id')
})

t.test('stored models survive a restart; another replica\'s changes are reloaded', async (t) => {
  const dbPath = tempDb(t)
  const first = await startKeysGateway(t, { dbPath, storeModelInDb: true })
  await first.post('/model/new', { model_name: 'kept', litellm_params: { model: 'mock/kept', mock_response: 'still here' }, model_info: { id: 'kept-1' } })
  await first.stop()

  const second = await startKeysGateway(t, { dbPath, storeModelInDb: true })
  const call = await chat(second, 'kept')
  t.equal(call.status, 200, 'served after the restart')
  t.equal(call.body.choices[0].message.content, 'still here')
  t.equal((await second.get('/model/info?litellm_model_id=kept-1')).body.data[0].model_info.db_model, true)

  // A second replica on the same store: it learns of changes through a relayed 'models.changed'.
  const replica = await startKeysGateway(t, { dbPath, storeModelInDb: true })
  await second.post('/model/new', { model_name: 'late', litellm_params: { model: 'mock/late' }, model_info: { id: 'late-1' } })
  t.equal((await chat(replica, 'late')).status, 400, 'not seen without the event')
  const bus = replica.gateway.container.cradle.events
  bus.emit('models.changed', { remote: true })
  t.ok(await settle(async () => (await chat(replica, 'late')).status === 200), 'reloaded after a remote models.changed')
  await second.post('/model/update', { model_info: { id: 'kept-1' }, litellm_params: { mock_response: 'changed' } })
  await second.post('/model/delete', { id: 'late-1' })
  bus.emit('models.changed', { remote: true })
  t.ok(await settle(async () => (await chat(replica, 'late')).status === 400), 'a deletion too')
  t.equal((await chat(replica, 'kept')).body.choices[0].message.content, 'changed', 'and an update')
  bus.emit('models.changed', {})
  t.equal((await chat(replica, 'kept')).status, 200, 'a local event does not reload')
})

function spendRow(o: Partial<SpendLogRow> & { request_id: string; startTime: string }): SpendLogRow {
  return {
    call_type: 'chat', api_key: '', key_alias: null, team_id: null, user: null, end_user: null, model: 'gpt-4o-mini', model_group: 'm',
    model_id: 'config-m', custom_llm_provider: 'openai', api_base: null, prompt_tokens: 10, completion_tokens: 5, total_tokens: 15,
    cached_tokens: 0, reasoning_tokens: 0, spend: 0.5, cost_source: 'priced', endTime: o.startTime, status: 'success',
    request_tags: [], metadata: {}, error: null, ...o,
  }
}

t.test('spend reports from the spend rows', async (t) => {
  const gw = await startKeysGateway(t)
  await gw.post('/team/new', { team_id: 'red', team_alias: 'Red' })
  const k1 = (await gw.post('/key/generate', { key_alias: 'k1', team_id: 'red', user_id: 'ann' })).body
  const k2 = (await gw.post('/key/generate', { key_alias: 'k2' })).body
  const day = (offset: number) => new Date(Date.now() - offset * 86_400_000).toISOString().slice(0, 10)
  const today = day(0)
  const yesterday = day(1)
  await gw.store.writeSpend([
    spendRow({ request_id: 'r1', startTime: `${yesterday}T10:00:00.000Z`, api_key: k1.token, team_id: 'red', user: 'ann', end_user: 'cust', spend: 1 }),
    spendRow({ request_id: 'r2', startTime: `${today}T09:00:00.000Z`, api_key: k1.token, team_id: 'red', user: 'ann', spend: 2, model: 'gpt-4o' }),
    spendRow({ request_id: 'r3', startTime: `${today}T11:00:00.000Z`, api_key: k2.token, spend: 4, end_user: 'cust' }),
    spendRow({ request_id: 'old', startTime: `${day(60)}T11:00:00.000Z`, api_key: k2.token, spend: 100 }),
  ])

  const all = await gw.get('/spend/logs')
  t.equal(all.status, 200)
  t.same(all.body.map((r: SpendLogRow) => r.request_id), ['r3', 'r2', 'r1', 'old'], 'rows, newest first')
  t.same((await gw.get(`/spend/logs?api_key=${k1.key}`)).body.map((r: SpendLogRow) => r.request_id), ['r2', 'r1'], 'by clear key')
  t.same((await gw.get(`/spend/logs?api_key=${k1.token}`)).body.length, 2, 'or by hash')
  t.same((await gw.get('/spend/logs?request_id=r3')).body[0].spend, 4)
  t.same((await gw.get('/spend/logs?user_id=ann')).body.length, 2)
  const days = await gw.get(`/spend/logs?start_date=${yesterday}&end_date=${day(-1)}`)
  t.equal(days.status, 200)
  t.same(days.body.map((d: { startTime: string }) => d.startTime), [yesterday, today, day(-1)], 'one entry per day, empty days filled')
  t.equal(days.body[1].spend, 6)
  t.same(days.body[1].models, { 'gpt-4o': 2, 'gpt-4o-mini': 4 })
  t.same(days.body[1].users, { ann: 2, null: 4 })
  t.equal(days.body[1][k2.token], 4, 'spend per key hash')
  t.same(days.body[2], { startTime: day(-1), spend: 0, users: {}, models: {} })
  t.equal((await gw.get('/spend/logs?start_date=2024-13-01&end_date=2024-12-31')).body.error.param, 'start_date')

  const report = await gw.get(`/global/spend/report?start_date=${yesterday}&end_date=${today}`)
  t.equal(report.status, 200)
  t.same(report.body.map((d: { group_by_day: string }) => d.group_by_day), [`${yesterday}T00:00:00+00:00`, `${today}T00:00:00+00:00`])
  const todayTeams = report.body[1].teams
  t.same(todayTeams.map((x: { team_name: string; total_spend: number }) => [x.team_name, x.total_spend]).sort(), [['Red', 2], ['Unassigned Team', 4]])
  t.same(todayTeams.find((x: { team_name: string }) => x.team_name === 'Red').metadata, [{ model: 'gpt-4o', api_key: k1.token, spend: 2, total_tokens: 15 }])
  const byCustomer = await gw.get(`/global/spend/report?start_date=${yesterday}&end_date=${today}&group_by=customer`)
  t.same(byCustomer.body[0].customers.map((c: { customer: string }) => c.customer), ['cust'])
  const byKey = await gw.get(`/global/spend/report?start_date=${yesterday}&end_date=${today}&group_by=api_key`)
  t.same(byKey.body.map((k: { api_key: string; total_cost: number }) => [k.api_key, k.total_cost]), [[k2.token, 4], [k1.token, 3]])
  t.same(byKey.body[1].model_details.map((m: { model: string }) => m.model).sort(), ['gpt-4o', 'gpt-4o-mini'])
  t.equal((await gw.get(`/global/spend/report?start_date=${yesterday}&end_date=${today}&api_key=${k1.key}`)).body.length, 1)
  t.equal((await gw.get('/global/spend/report')).status, 400, 'dates are required')
  t.equal((await gw.get(`/global/spend/report?start_date=${today}&end_date=${yesterday}`)).status, 400)
  t.equal((await gw.get(`/global/spend/report?start_date=${today}&end_date=${today}&group_by=planet`)).body.error.param, 'group_by')

  const keys = await gw.get('/global/spend/keys?limit=1')
  t.same(keys.body, [{ api_key: k2.token, key_alias: 'k2', key_name: k2.key_name, total_spend: 4 }], 'top keys of the last 30 days')
  t.equal((await gw.get('/global/spend/keys')).body.length, 2)
  t.equal((await gw.get('/global/spend/keys?limit=0')).status, 400)
  const teams = await gw.get('/global/spend/teams')
  t.same(teams.body.teams.sort(), ['Red', 'Unassigned'])
  t.same(teams.body.total_spend_per_team, [{ team_id: 'Unassigned', total_spend: 4 }, { team_id: 'Red', total_spend: 3 }])
  t.same(teams.body.daily_spend.find((d: { date: string }) => d.date === today), { date: today, Red: 2, Unassigned: 4 })
  const models = await gw.get('/global/spend/models?limit=5')
  t.same(models.body, [{ model: 'gpt-4o-mini', total_spend: 5 }, { model: 'gpt-4o', total_spend: 2 }])
  t.equal((await gw.get('/global/spend/models?limit=x')).body.error.param, 'limit')
})
