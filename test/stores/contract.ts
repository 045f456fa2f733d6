/**
 * The Store contract (core/store.ts), one suite for every backend. `makeStore(t)` returns a new, opened store on an
 * empty database; `makeStore(t, other)` a second instance (its own worker or pool) on the same database as `other`.
 * Both are closed by the factory in t's teardown.
 */
import type { Test } from 'tap'
import { StoreConflictError, type KeyRecord, type SpendLogRow, type Store } from '../../core/store.js'
import {
  T0, budgetRecord, endUserRecord, keyRecord, modelRecord, spendRow, teamRecord, tokenOf, userRecord,
} from './fixtures.js'

export type MakeStore = (t: Test, sameDatabaseAs?: Store) => Promise<Store>

/** resetSpend as the SQL stores take it: an optional list of a key's model_spend entries to zero. */
type ResetWithModels = (kind: 'key', id: string, expected: string | null, next: string | null, models?: readonly string[]) => Promise<boolean>

export function storeContract(t: Test, makeStore: MakeStore): void {
  t.test('stored responses: put, replace, get from a second instance, delete', async (t) => {
    const store = await makeStore(t)
    const other = await makeStore(t, store)
    t.ok(store.putResponse && store.getResponse && store.deleteResponse, 'the store keeps responses')
    const rec = {
      id: 'resp_abc', owner: 'tok1', created_at: '2024-05-01T10:00:00.000Z',
      response: { id: 'resp_abc', object: 'response', output: [{ type: 'message', content: [{ type: 'output_text', text: 'héllo \u2028 "q"' }] }] },
      input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
    }
    await store.putResponse!(rec)
    t.same(await other.getResponse!('resp_abc'), rec, 'read back whole, by another instance on the same database')
    await store.putResponse!({ ...rec, owner: null, input: [] })
    t.same(await store.getResponse!('resp_abc'), { ...rec, owner: null, input: [] }, 'a second put replaces')
    t.equal(await store.getResponse!('resp_missing'), null, 'unknown id -> null')
    t.equal(await other.deleteResponse!('resp_abc'), true, 'delete -> true')
    t.equal(await store.getResponse!('resp_abc'), null, 'gone')
    t.equal(await store.deleteResponse!('resp_abc'), false, 'a second delete -> false')
  })

  t.test('every kind round-trips as given; unknown ids answer null / false', async (t) => {
    const store = await makeStore(t)
    const records = {
      key: keyRecord('alpha1', { key_alias: 'alpha', team_id: 't1', user_id: 'u1', max_budget: 10, budget_duration: '30d',
        budget_reset_at: '2024-05-31T10:00:00.000Z', model_max_budget: { 'gpt-4o': { budget_limit: 1, time_period: '1d' } },
        model_spend: { 'gpt-4o': 0.5, 'gpt-4o-mini': 0.125 }, spend: 1.5, metadata: { tags: ['a'], nested: { deep: [1, { x: null }] } },
        expires: '2025-01-01T00:00:00.000Z', blocked: false }),
      team: teamRecord('t1', { team_alias: 'Team One', organization_id: 'org1', max_budget: 100, tpm_limit: 1000 }),
      user: userRecord('u1', { user_role: 'proxy_admin', teams: ['t1'], spend: 2 }),
      end_user: endUserRecord('customer-1', { alias: 'Customer', budget_id: 'b1', allowed_model_region: 'eu' }),
      budget: budgetRecord('b1', { max_budget: 5, budget_duration: '1d', budget_reset_at: '2024-05-02T00:00:00.000Z',
        model_max_budget: { 'gpt-4o': { budget_limit: 2 } } }),
      model: modelRecord('m1', { model_info: { id: 'm1', mode: 'chat', tags: ['x'] } }),
    } as const
    for (const [kind, record] of Object.entries(records)) {
      await store.insert(kind as 'key', record as KeyRecord)
    }
    t.same(await store.get('key', records.key.token), records.key, 'key')
    t.same(await store.get('team', 't1'), records.team, 'team')
    t.same(await store.get('user', 'u1'), records.user, 'user')
    t.same(await store.get('end_user', 'customer-1'), records.end_user, 'end user')
    t.same(await store.get('budget', 'b1'), records.budget, 'budget')
    t.same(await store.get('model', 'm1'), records.model, 'model')
    const got = await store.get('key', records.key.token)
    t.equal(typeof got?.spend, 'number', 'spend is a number')
    t.equal(got?.blocked, false, 'booleans stay booleans')

    for (const kind of ['key', 'team', 'user', 'end_user', 'budget', 'model'] as const) {
      t.equal(await store.get(kind, 'missing'), null, `get ${kind} unknown -> null`)
      t.equal(await store.update(kind, 'missing', { metadata: {} }), null, `update ${kind} unknown -> null`)
      t.equal(await store.delete(kind, 'missing'), false, `delete ${kind} unknown -> false`)
    }
    t.equal(await store.resetSpend('team', 'missing', null, null), false, 'resetSpend unknown -> false')
    await store.ping()
    t.pass('ping answers')
  })

  t.test('insert conflicts: id, key_alias; team_alias may repeat', async (t) => {
    const store = await makeStore(t)
    const k = keyRecord('conf1', { key_alias: 'shared' })
    await store.insert('key', k)
    const dupId = await store.insert('key', { ...k, key_alias: 'other' }).catch((e) => e)
    t.ok(dupId instanceof StoreConflictError, 'same token -> StoreConflictError')
    t.equal(dupId.field, 'token')
    const dupAlias = await store.insert('key', keyRecord('conf2', { key_alias: 'shared' })).catch((e) => e)
    t.ok(dupAlias instanceof StoreConflictError, 'same key_alias -> StoreConflictError')
    t.equal(dupAlias.field, 'key_alias')
    t.equal(await store.get('key', tokenOf('sk-conf2')), null, 'the refused key was not written')
    await store.insert('key', keyRecord('conf3'))
    await store.insert('key', keyRecord('conf4'))
    t.pass('any number of keys without an alias')
    const viaUpdate = await store.update('key', tokenOf('sk-conf3'), { key_alias: 'shared' }).catch((e) => e)
    t.ok(viaUpdate instanceof StoreConflictError && viaUpdate.field === 'key_alias', 'update onto a taken alias -> conflict')
    t.equal((await store.get('key', tokenOf('sk-conf3')))?.key_alias, null, 'and changes nothing')
    const viaUpsert = await store.upsert('key', keyRecord('conf4', { key_alias: 'shared' })).catch((e) => e)
    t.ok(viaUpsert instanceof StoreConflictError && viaUpsert.field === 'key_alias', 'upsert onto a taken alias -> conflict')

    await store.insert('team', teamRecord('ta', { team_alias: 'Same' }))
    await store.insert('team', teamRecord('tb', { team_alias: 'Same' }))
    t.equal((await store.list('team', { where: { team_alias: 'Same' } })).total, 2, 'two teams with one alias (as LiteLLM allows)')
    const dupTeam = await store.insert('team', teamRecord('ta')).catch((e) => e)
    t.ok(dupTeam instanceof StoreConflictError && dupTeam.field === 'team_id', 'same team_id -> conflict')
    for (const [kind, rec] of [['user', userRecord('u')], ['end_user', endUserRecord('e')], ['budget', budgetRecord('b')], ['model', modelRecord('m')]] as const) {
      await store.insert(kind, rec as never)
      const e = await store.insert(kind, rec as never).catch((err) => err)
      t.ok(e instanceof StoreConflictError, `${kind}: same id -> conflict (${e?.field})`)
    }
  })

  t.test('update: shallow merge in one step; upsert; delete', async (t) => {
    const store = await makeStore(t)
    const k = keyRecord('upd1', { key_alias: 'before', metadata: { a: 1, b: { c: 2 } }, model_spend: { m: 1 }, spend: 3 })
    await store.insert('key', k)
    const updated = await store.update('key', k.token, { key_alias: 'after', metadata: { b: 1 }, max_budget: 9, token: 'ignored' } as Partial<KeyRecord>)
    t.same(updated, { ...k, key_alias: 'after', metadata: { b: 1 }, max_budget: 9 }, 'fields replaced whole (metadata is not deep-merged); the id stays')
    t.same(await store.get('key', k.token), updated, 'update returns what get then reads')
    t.equal((await store.list('key', { where: { key_alias: 'after' } })).total, 1, 'a changed filter field is found by list')
    t.equal((await store.list('key', { where: { key_alias: 'before' } })).total, 0)

    const admin = await store.update('key', k.token, { spend: 0.5, model_spend: { other: 0.25 } })
    t.equal(admin?.spend, 0.5, 'an admin update sets spend')
    t.same(admin?.model_spend, { other: 0.25 }, 'and replaces model_spend')
    t.same((await store.get('key', k.token))?.model_spend, { other: 0.25 })

    // upsert: a new id is inserted, an existing one replaced, keeping its spend and created_at (spend moves only by
    // increments; a record is created once).
    const team = teamRecord('up', { spend: 4, team_alias: 'x' })
    await store.upsert('team', team)
    t.same(await store.get('team', 'up'), team, 'upsert inserts')
    await store.upsert('team', { ...team, team_alias: 'y', spend: 0, created_at: '2030-01-01T00:00:00.000Z', models: ['m'] })
    t.same(await store.get('team', 'up'), { ...team, team_alias: 'y', models: ['m'] }, 'upsert replaces, spend and created_at kept')
    await store.upsert('end_user', endUserRecord('eu-new'))
    t.same(await store.get('end_user', 'eu-new'), endUserRecord('eu-new'), 'an end user created on first use')

    t.equal(await store.delete('key', k.token), true)
    t.equal(await store.get('key', k.token), null)
    t.equal(await store.delete('key', k.token), false, 'a second delete finds nothing')
    await store.insert('key', { ...k, model_spend: {} })
    t.same((await store.get('key', k.token))?.model_spend, {}, 'a deleted key leaves no model_spend behind')
  })

  t.test('list: filters, null filters, order, paging, total; other fields refused', async (t) => {
    const store = await makeStore(t)
    // created_at out of insertion order, with a tie broken by id.
    const at = (m: number) => new Date(Date.parse(T0) + m * 60_000).toISOString()
    await store.insert('key', keyRecord('l3', { team_id: 'ta', user_id: 'u1', created_at: at(3) }))
    await store.insert('key', keyRecord('l1', { team_id: 'ta', user_id: 'u2', created_at: at(1), key_alias: 'one', budget_id: 'b' }))
    await store.insert('key', keyRecord('l2', { team_id: 'tb', user_id: 'u1', created_at: at(2), model_spend: { m: 2 } }))
    await store.insert('key', keyRecord('l0', { team_id: null, created_at: at(1) }))
    const ids = (rows: { token: string }[]) => rows.map((r) => r.token)
    const byTime = [[at(1), tokenOf('sk-l0')], [at(1), tokenOf('sk-l1')], [at(2), tokenOf('sk-l2')], [at(3), tokenOf('sk-l3')]]
      .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : 1)).map((x) => x[1])
    const all = await store.list('key')
    t.same(ids(all.rows), byTime, 'ordered by created_at, then id')
    t.equal(all.total, 4)
    t.same(all.rows.find((r) => r.token === tokenOf('sk-l2'))?.model_spend, { m: 2 }, 'listed keys carry model_spend')
    t.same(ids((await store.list('key', { where: { team_id: 'ta' } })).rows).sort(), [tokenOf('sk-l1'), tokenOf('sk-l3')].sort(), 'team_id')
    t.same(ids((await store.list('key', { where: { team_id: 'ta', user_id: 'u1' } })).rows), [tokenOf('sk-l3')], 'two filters')
    t.same(ids((await store.list('key', { where: { team_id: null } })).rows), [tokenOf('sk-l0')], 'null = IS NULL')
    t.same(ids((await store.list('key', { where: { key_alias: 'one' } })).rows), [tokenOf('sk-l1')], 'key_alias')
    t.same(ids((await store.list('key', { where: { budget_id: 'b' } })).rows), [tokenOf('sk-l1')], 'budget_id')
    const page = await store.list('key', { offset: 1, limit: 2 })
    t.same(ids(page.rows), byTime.slice(1, 3), 'offset and limit')
    t.equal(page.total, 4, 'total ignores paging')
    const filteredPage = await store.list('key', { where: { user_id: 'u1' }, offset: 1, limit: 1 })
    t.equal(filteredPage.rows.length, 1)
    t.equal(filteredPage.total, 2, 'total counts the filtered rows')
    t.same((await store.list('key', { offset: 10 })).rows, [], 'past the end')

    await store.insert('user', userRecord('ua', { user_role: 'proxy_admin' }))
    await store.insert('user', userRecord('ub'))
    t.same((await store.list('user', { where: { user_role: 'proxy_admin' } })).rows.map((u) => u.user_id), ['ua'], 'user_role')
    t.same((await store.list('user', { where: { user_email: 'ub@example.com' } })).rows.map((u) => u.user_id), ['ub'], 'user_email')
    await store.insert('team', teamRecord('tx', { organization_id: 'o1' }))
    t.equal((await store.list('team', { where: { organization_id: 'o1' } })).total, 1, 'organization_id')
    await store.insert('end_user', endUserRecord('ex', { alias: 'A', budget_id: 'b9' }))
    t.equal((await store.list('end_user', { where: { alias: 'A', budget_id: 'b9' } })).total, 1, 'end user alias + budget_id')
    await store.insert('model', modelRecord('ma', { model_name: 'claude' }))
    await store.insert('model', modelRecord('mb'))
    t.same((await store.list('model', { where: { model_name: 'claude' } })).rows.map((m) => m.model_id), ['ma'], 'model_name')

    await t.rejects(store.list('key', { where: { models: 'x' } }), TypeError, 'a field that is not a filter field -> TypeError')
    await t.rejects(store.list('budget', { where: { budget_id: 'x' } }), TypeError, 'budgets have no filter fields')

    for (let i = 0; i < 105; i++) await store.insert('budget', budgetRecord(`b${String(i).padStart(3, '0')}`))
    const first = await store.list('budget')
    t.equal(first.rows.length, 100, 'default limit 100')
    t.equal(first.total, 105)
    t.equal((await store.list('budget', { limit: 5000 })).rows.length, 105, 'limit capped at 1000 (all 105 here)')
  })

  t.test('writeSpend: increments land everywhere once; a re-sent batch adds nothing', async (t) => {
    const store = await makeStore(t)
    const ka = keyRecord('wa', { team_id: 'team-a', user_id: 'user-a', model_spend: { 'gpt-4o-mini': 1 } })
    const kb = keyRecord('wb')
    await store.insert('key', ka)
    await store.insert('key', kb)
    await store.insert('team', teamRecord('team-a'))
    await store.insert('user', userRecord('user-a'))
    await store.insert('end_user', endUserRecord('cust-old', { spend: 1 }))
    const base = { api_key: ka.token, team_id: 'team-a', user: 'user-a' }
    const rows: SpendLogRow[] = [
      spendRow({ ...base, request_id: 'w1', spend: 0.25, end_user: 'cust-new' }),
      spendRow({ ...base, request_id: 'w2', spend: 0.5, model_group: 'gpt-4o', end_user: 'cust-old', prompt_tokens: 5, completion_tokens: 7 }),
      spendRow({ ...base, request_id: 'w3', spend: 0, status: 'failure', error: 'GW_ERR_UPSTREAM_SERVER: boom' }),
      spendRow({ api_key: kb.token, request_id: 'w4', spend: 0.125, startTime: '2024-05-02T00:00:00.000Z', endTime: '2024-05-02T00:00:01.000Z' }),
      spendRow({ api_key: '', request_id: 'w5', spend: 2, team_id: 'team-a' }),
      spendRow({ ...base, request_id: 'w1', spend: 100 }), // the same request_id twice in one batch counts once
    ]
    await store.writeSpend(rows)
    const key = await store.get('key', ka.token)
    t.equal(key?.spend, 0.75, 'key spend: its rows summed')
    t.same(key?.model_spend, { 'gpt-4o-mini': 1.25, 'gpt-4o': 0.5 }, 'model_spend per model_group, added to what was there')
    t.equal((await store.get('key', kb.token))?.spend, 0.125)
    t.equal((await store.get('team', 'team-a'))?.spend, 2.75, 'team: its key rows and the master-key row')
    t.equal((await store.get('user', 'user-a'))?.spend, 0.75, 'user')
    t.equal((await store.get('end_user', 'cust-old'))?.spend, 1.5, 'existing end user incremented')
    const created = await store.get('end_user', 'cust-new')
    t.match(created, { user_id: 'cust-new', spend: 0.25, alias: null, blocked: false, budget_id: null, max_budget: null, metadata: {} }, 'missing end user created with its spend')
    t.match(created?.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)

    const daily = await store.dailySpend({})
    const day = (entity: string, id: string, model = 'gpt-4o-mini', date = '2024-05-01') =>
      daily.find((d) => d.entity === entity && d.entity_id === id && d.model_group === model && d.date === date)
    t.same(day('key', ka.token), { date: '2024-05-01', entity: 'key', entity_id: ka.token, model_group: 'gpt-4o-mini', spend: 0.25, prompt_tokens: 20, completion_tokens: 40, requests: 2, failed_requests: 1 }, 'daily key totals, failures counted')
    t.same(day('key', ka.token, 'gpt-4o'), { date: '2024-05-01', entity: 'key', entity_id: ka.token, model_group: 'gpt-4o', spend: 0.5, prompt_tokens: 5, completion_tokens: 7, requests: 1, failed_requests: 0 })
    t.equal(day('key', kb.token, 'gpt-4o-mini', '2024-05-02')?.spend, 0.125, 'UTC day of startTime')
    t.equal(day('team', 'team-a')?.spend, 2.25)
    t.equal(day('team', 'team-a')?.requests, 3)
    t.equal(day('user', 'user-a')?.requests, 2)
    t.equal(day('end_user', 'cust-new')?.spend, 0.25)
    t.notOk(daily.some((d) => d.entity === 'key' && d.entity_id === ''), 'no key entry for master-key rows')
    t.equal((await store.spendLogs({ limit: 100 })).length, 5, 'five distinct rows logged')

    const snapshot = JSON.stringify([await store.get('key', ka.token), await store.get('team', 'team-a'), await store.dailySpend({})])
    await store.writeSpend(rows)
    t.equal(JSON.stringify([await store.get('key', ka.token), await store.get('team', 'team-a'), await store.dailySpend({})]), snapshot, 're-sent batch: nothing added')
    await store.writeSpend([rows[0]!, spendRow({ ...base, request_id: 'w6', spend: 1 })])
    t.equal((await store.get('key', ka.token))?.spend, 1.75, 'a half-new batch adds only its new rows')
    await store.delete('key', kb.token)
    await store.writeSpend([spendRow({ api_key: kb.token, request_id: 'w7', spend: 1 })])
    t.equal(await store.get('key', kb.token), null, 'spend for a deleted key is logged without recreating the key')
    t.equal((await store.spendLogs({ request_id: 'w7' })).length, 1)
    await store.writeSpend([])
    t.pass('an empty batch is fine')
  })

  t.test('spendLogs: rows round-trip, newest first, filters, dates, paging', async (t) => {
    const store = await makeStore(t)
    const row = spendRow({ request_id: 'full', api_key: tokenOf('sk-x'), key_alias: 'x', team_id: 'tm', user: 'us', end_user: 'eu', cached_tokens: 3, reasoning_tokens: 4, metadata: { a: { b: [1, 2] } } })
    const { ttft_ms: _omit, ...noTtft } = spendRow({ request_id: 'no-ttft' })
    await store.writeSpend([row, noTtft])
    t.same((await store.spendLogs({ request_id: 'full' }))[0], row, 'every field round-trips')
    t.same((await store.spendLogs({ request_id: 'no-ttft' }))[0], noTtft, 'ttft_ms absent stays absent')

    const at = (iso: string, over: Partial<SpendLogRow>) => spendRow({ startTime: iso, endTime: iso, ...over })
    await store.writeSpend([
      at('2024-06-01T23:59:59.999Z', { request_id: 'd1-late', api_key: 'k1', team_id: 'ta', model_group: 'a' }),
      at('2024-06-01T00:00:00.000Z', { request_id: 'd1-early', api_key: 'k1', user: 'u1', status: 'failure' }),
      at('2024-06-02T00:00:00.000Z', { request_id: 'd2', api_key: 'k2', end_user: 'e1' }),
      // Another offset: stored and compared as UTC (2024-05-31T22:00Z).
      at('2024-06-01T00:00:00+02:00', { request_id: 'd0', api_key: 'k1' }),
    ])
    const names = (rows: SpendLogRow[]) => rows.map((r) => r.request_id)
    t.same(names(await store.spendLogs({ api_key: 'k1' })), ['d1-late', 'd1-early', 'd0'], 'newest first')
    t.equal((await store.spendLogs({ request_id: 'd0' }))[0]?.startTime, '2024-05-31T22:00:00.000Z', 'times come back as ISO UTC')
    t.same(names(await store.spendLogs({ team_id: 'ta' })), ['d1-late'], 'team_id')
    t.same(names(await store.spendLogs({ user: 'u1' })), ['d1-early'], 'user')
    t.same(names(await store.spendLogs({ end_user: 'e1' })), ['d2'], 'end_user')
    t.same(names(await store.spendLogs({ api_key: 'k1', model_group: 'a' })), ['d1-late'], 'model_group')
    t.same(names(await store.spendLogs({ status: 'failure', api_key: 'k1' })), ['d1-early'], 'status')
    t.same(names(await store.spendLogs({ start_date: '2024-06-01', end_date: '2024-06-01' })), ['d1-late', 'd1-early'], 'a date alone covers that whole UTC day, both ends inclusive')
    t.same(names(await store.spendLogs({ start_date: '2024-06-01T00:00:00.000Z', end_date: '2024-06-02T00:00:00.000Z' })), ['d2', 'd1-late', 'd1-early'], 'date-times are inclusive')
    t.same(names(await store.spendLogs({ start_date: '2024-06-01T12:00:00Z' })), ['d2', 'd1-late'], 'start only')
    t.same(names(await store.spendLogs({ end_date: '2024-05-31' , api_key: 'k1' })), ['d0'], 'end only')
    t.same(names(await store.spendLogs({ api_key: 'k1', offset: 1, limit: 1 })), ['d1-early'], 'offset and limit')
    t.same(names(await store.spendLogs({ api_key: 'nobody' })), [], 'no match')

    const daily = await store.dailySpend({ entity: 'key', entity_id: 'k1' })
    t.same(daily.map((d) => [d.date, d.model_group, d.requests]), [['2024-05-31', 'gpt-4o-mini', 1], ['2024-06-01', 'a', 1], ['2024-06-01', 'gpt-4o-mini', 1]], 'daily by entity, in date order')
    t.same((await store.dailySpend({ entity: 'key', start_date: '2024-06-01', end_date: '2024-06-01' })).map((d) => d.entity_id).sort(), ['k1', 'k1'], 'daily date range')
    t.same((await store.dailySpend({ model_group: 'a' })).map((d) => d.entity).sort(), ['key', 'team'], 'daily by model_group')
  })

  t.test('a NUL character (which PostgreSQL cannot store) is dropped, never fails a batch', async (t) => {
    const store = await makeStore(t)
    const row = spendRow({ request_id: 'nul-1', end_user: 'cu\0st', metadata: { note: 'a\0b', ['k']: ['\0'] }, request_tags: ['t\0'], error: 'e\0' })
    await store.writeSpend([row])
    const [got] = await store.spendLogs({ request_id: 'nul-1' })
    t.same(got, { ...row, end_user: 'cust', metadata: { note: 'ab', k: [''] }, request_tags: ['t'], error: 'e' }, 'stored without it')
    t.equal((await store.get('end_user', 'cu\0st'))?.spend, 0.25, 'and found again by the same id')
    await store.insert('team', teamRecord('nul\0team', { team_alias: 'x\0', metadata: { a: '\0' } }))
    t.match(await store.get('team', 'nulteam'), { team_id: 'nulteam', team_alias: 'x', metadata: { a: '' } })
  })

  t.test('20 concurrent batches of 50 rows over shared keys and teams sum exactly (two store instances)', async (t) => {
    const a = await makeStore(t)
    const b = await makeStore(t, a)
    const keys = ['c1', 'c2', 'c3'].map((n) => keyRecord(n, { team_id: `team-${n === 'c3' ? 'y' : 'x'}` }))
    for (const k of keys) await a.insert('key', k)
    await a.insert('team', teamRecord('team-x'))
    await a.insert('team', teamRecord('team-y'))
    // Multiples of 1/64: every partial sum is exact in binary floating point, so "exactly" means ===.
    const expected = new Map<string, number>()
    const batches = Array.from({ length: 20 }, (_, bi) => Array.from({ length: 50 }, (_, ri) => {
      const k = keys[(bi + ri) % 3]!
      const spend = ((bi * 50 + ri) % 7 + 1) / 64
      expected.set(k.token, (expected.get(k.token) ?? 0) + spend)
      expected.set(k.team_id!, (expected.get(k.team_id!) ?? 0) + spend)
      // Batches interleave their keys in different orders and share end users: the worst case for lock order.
      return spendRow({ request_id: `c-${bi}-${ri}`, api_key: k.token, team_id: k.team_id, end_user: `cust-${ri % 4}`, model_group: ri % 2 ? 'm1' : 'm2', spend })
    }).reverse())
    await Promise.all(batches.map((rows, i) => (i % 2 ? a : b).writeSpend(rows)))
    for (const k of keys) {
      const got = await b.get('key', k.token)
      t.equal(got?.spend, expected.get(k.token), `key ${k.token.slice(0, 6)} spend exact`)
      t.equal((got?.model_spend.m1 ?? 0) + (got?.model_spend.m2 ?? 0), expected.get(k.token), 'its model_spend adds up')
    }
    t.equal((await a.get('team', 'team-x'))?.spend, expected.get('team-x'), 'team-x exact')
    t.equal((await a.get('team', 'team-y'))?.spend, expected.get('team-y'), 'team-y exact')
    const customers = await a.list('end_user')
    t.equal(customers.total, 4, 'each end user created once')
    const total = [...expected].filter(([id]) => id.startsWith('team-')).reduce((s, [, v]) => s + v, 0)
    t.equal(customers.rows.reduce((s, r) => s + r.spend, 0), total, 'end users hold all the spend')
    const daily = await a.dailySpend({ entity: 'key' })
    t.equal(daily.reduce((s, d) => s + d.requests, 0), 1000, 'daily requests: 1000')
    t.equal((await a.spendLogs({ limit: 10_000 })).length, 1000, '1000 rows')
    await Promise.all(batches.map((rows, i) => (i % 2 ? b : a).writeSpend(rows)))
    t.equal((await a.get('key', keys[0]!.token))?.spend, expected.get(keys[0]!.token), 'all re-sent at once: nothing added')
  })

  t.test('resetSpend is compare-and-set; dueForReset finds what is due', async (t) => {
    const store = await makeStore(t)
    const due = '2024-05-02T00:00:00.000Z'
    const next = '2024-05-03T00:00:00.000Z'
    await store.insert('key', keyRecord('r1', { budget_duration: '1d', budget_reset_at: due, spend: 2, model_spend: { a: 1, b: 1, c: 1 },
      model_max_budget: { a: { budget_limit: 1, time_period: '1d' }, b: { budget_limit: 1, time_period: '30d' }, c: { budget_limit: 1 } } }))
    await store.insert('team', teamRecord('rt', { budget_duration: '30d', budget_reset_at: '2024-05-01T23:59:59.999Z', spend: 5 }))
    await store.insert('user', userRecord('ru', { budget_duration: '1h', budget_reset_at: '2024-05-02T00:00:00.001Z', spend: 1 }))
    await store.insert('end_user', endUserRecord('re', { budget_duration: '7d', budget_reset_at: due }))
    await store.insert('budget', budgetRecord('rb', { budget_duration: '1mo', budget_reset_at: '2024-04-01T00:00:00.000Z' }))
    await store.insert('team', teamRecord('never', { spend: 5 }))

    const found = await store.dueForReset('2024-05-02T00:00:00+00:00')
    t.same(found.map((d) => `${d.kind}:${d.id}`).sort(), ['budget:rb', 'end_user:re', `key:${tokenOf('sk-r1')}`, 'team:rt'], 'at or before now; null never due')
    t.same(found.find((d) => d.kind === 'team'), { kind: 'team', id: 'rt', budget_reset_at: '2024-05-01T23:59:59.999Z', budget_duration: '30d' })

    const token = tokenOf('sk-r1')
    t.equal(await store.resetSpend('key', token, '2024-05-01T00:00:00.000Z', next), false, 'a stale expected value: no reset')
    t.equal((await store.get('key', token))?.spend, 2)
    t.equal(await store.resetSpend('key', token, due, next), true, 'the expected value: reset')
    const k = await store.get('key', token)
    t.equal(k?.spend, 0)
    t.equal(k?.budget_reset_at, next)
    t.same(k?.model_spend, { a: 0, b: 1, c: 1 }, 'model budgets sharing the key period reset with it')
    t.equal(await store.resetSpend('key', token, due, next), false, 'a second replica with the same expected value: no reset')
    await store.writeSpend([spendRow({ api_key: token, spend: 0.5, model_group: 'b' })])
    t.equal(await store.resetSpend('key', token, due, '2024-05-04T00:00:00.000Z'), false)
    t.equal((await store.get('key', token))?.spend, 0.5, 'spend after the rollover is kept by a late reset')
    t.equal(await (store.resetSpend as ResetWithModels)('key', token, next, null, ['b']), true, 'expected matched; next = null')
    t.same((await store.get('key', token))?.model_spend, { a: 0, b: 0, c: 1 }, 'the caller may name the model entries')
    t.equal((await store.get('key', token))?.budget_reset_at, null)

    t.equal(await store.resetSpend('team', 'never', null, '2024-06-01T00:00:00.000Z'), true, 'expected null matches a null reset time')
    t.equal((await store.get('team', 'never'))?.spend, 0)
    t.equal(await store.resetSpend('team', 'never', null, null), false, 'and then no longer')
    t.equal(await store.resetSpend('team', 'rt', '2024-05-02T01:59:59.999+02:00', next), true, 'times compare as instants, whatever the offset')
    t.same((await store.dueForReset('2024-05-02T00:00:00.000Z')).map((d) => d.id).sort(), ['rb', 're'], 'reset records are no longer due')

    // The sweep runs a little after the boundary: calls that ended after it (and were already written) belong to
    // the new period, as the ledger counted them; they are not zeroed with the old period.
    await store.insert('team', teamRecord('carry', { budget_duration: '1d', budget_reset_at: due }))
    await store.writeSpend([
      spendRow({ team_id: 'carry', spend: 0.25, startTime: '2024-05-01T23:59:59.000Z', endTime: '2024-05-01T23:59:59.900Z' }),
      spendRow({ team_id: 'carry', spend: 0.5, startTime: '2024-05-01T23:59:59.500Z', endTime: '2024-05-02T00:00:00.200Z' }),
    ])
    t.equal((await store.get('team', 'carry'))?.spend, 0.75)
    t.equal(await store.resetSpend('team', 'carry', due, next), true)
    t.equal((await store.get('team', 'carry'))?.spend, 0.5, 'the call that ended after the boundary stays in the new period')
  })
}
