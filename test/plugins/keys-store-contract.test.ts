/**
 * The in-memory store (test/helpers/memory-store.ts) keeps the Store contract as the SQLite store does: the same
 * checks run against both, so unit tests written against the memory store hold on the real one.
 */
import t from 'tap'
import type { Test } from 'tap'
import { SqliteStore } from '../../plugins/store-sqlite/index.js'
import { StoreConflictError, type KeyRecord, type SpendLogRow, type Store } from '../../core/store.js'
import { createMemoryStore } from '../helpers/memory-store.js'
import { tempDb } from './keys-harness.js'

const TS = '2030-01-01T00:00:00.000Z'

function key(token: string, o: Partial<KeyRecord> = {}): KeyRecord {
  return {
    token, key_name: 'sk-...abcd', key_alias: null, user_id: null, team_id: null, models: [], blocked: null, expires: null,
    allowed_routes: [], model_max_budget: {}, model_spend: {}, created_by: null, max_budget: null, soft_budget: null, spend: 0,
    budget_duration: null, budget_reset_at: null, tpm_limit: null, rpm_limit: null, max_parallel_requests: null, budget_id: null,
    metadata: {}, created_at: TS, updated_at: TS, ...o,
  }
}

function row(request_id: string, o: Partial<SpendLogRow> = {}): SpendLogRow {
  return {
    request_id, call_type: 'chat', api_key: '', key_alias: null, team_id: null, user: null, end_user: null, model: 'x', model_group: 'm',
    model_id: null, custom_llm_provider: null, api_base: null, prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, cached_tokens: 0,
    reasoning_tokens: 0, spend: 1, cost_source: 'priced', startTime: '2030-01-02T10:00:00.000Z', endTime: '2030-01-02T10:00:01.000Z',
    status: 'success', request_tags: [], metadata: {}, error: null, ...o,
  }
}

async function contract(t: Test, store: Store): Promise<void> {
  await store.open()
  t.teardown(() => store.close())

  await store.insert('key', key('t1', { key_alias: 'a', model_max_budget: { m: { budget_limit: 1, time_period: '1d' } }, budget_duration: '1d', budget_reset_at: '2030-01-03T00:00:00Z', extra: { x: 1 } }))
  const conflictOn = async (fn: () => Promise<unknown>) => {
    try {
      await fn()
      return null
    } catch (err) {
      return err instanceof StoreConflictError ? err.field : `other: ${String(err)}`
    }
  }
  t.equal(await conflictOn(() => store.insert('key', key('t1'))), 'token', 'a taken id')
  t.equal(await conflictOn(() => store.insert('key', key('t2', { key_alias: 'a' }))), 'key_alias', 'a taken key_alias')
  await store.insert('key', key('t2', { key_alias: 'b', team_id: 'red', created_at: '2030-01-01T00:00:01.000Z' }))
  t.equal(await conflictOn(() => store.update('key', 't2', { key_alias: 'a' })), 'key_alias', 'an update to a taken alias')
  await store.insert('team', { team_id: 'red', team_alias: 'Same', spend: 0, created_at: TS } as never)
  t.equal(await conflictOn(() => store.insert('team', { team_id: 'blue', team_alias: 'Same', spend: 0, created_at: TS } as never)), null, 'team_alias is not unique')
  t.rejects(store.insert('user', { user_id: '' } as never), TypeError, 'an empty id is refused')

  const got = await store.get('key', 't1')
  t.equal(got!.budget_reset_at, '2030-01-03T00:00:00.000Z', 'timestamps normalised')
  t.same(got!.extra, { x: 1 }, 'unknown fields round-trip')
  got!.key_alias = 'mutated'
  t.equal((await store.get('key', 't1'))!.key_alias, 'a', 'a returned record is a copy')
  t.equal(await store.get('key', 'nope'), null)
  const upd = await store.update('key', 't1', { max_budget: 5, key_alias: undefined })
  t.equal(upd!.max_budget, 5)
  t.equal(upd!.key_alias, 'a', 'undefined in a patch changes nothing')
  t.equal(await store.update('key', 'nope', { max_budget: 1 }), null)

  const page = await store.list('key', { offset: 1, limit: 1 })
  t.same(page.rows.map((r) => r.token), ['t2'], 'ordered by creation')
  t.equal(page.total, 2)
  t.same((await store.list('key', { where: { team_id: 'red' } })).rows.map((r) => r.token), ['t2'])
  t.same((await store.list('key', { where: { team_id: null } })).rows.map((r) => r.token), ['t1'], 'null matches no value')
  t.rejects(store.list('key', { where: { spend: '1' } as never }), TypeError, 'only filter fields filter')

  await store.insert('user', { user_id: 'ann', teams: [], spend: 0, created_at: TS } as never)
  await store.writeSpend([
    row('r1', { api_key: 't1', team_id: 'red', user: 'ann', end_user: 'cust', spend: 2 }),
    row('r2', { api_key: 't1', spend: 0.5, model_group: 'n', status: 'failure', startTime: '2030-01-03T00:30:00.000Z', endTime: '2030-01-03T00:30:01.000Z' }),
    row('r1', { api_key: 't1', spend: 100 }),
    row('r3', { api_key: 'gone', spend: 7 }),
  ])
  await store.writeSpend([row('r2', { api_key: 't1', spend: 0.5 })])
  const k = await store.get('key', 't1')
  t.equal(k!.spend, 2.5, 'each request_id counted once')
  t.same(k!.model_spend, { m: 2, n: 0.5 })
  t.equal((await store.get('team', 'red'))!.spend, 2)
  t.equal((await store.get('user', 'ann'))!.spend, 2)
  t.equal((await store.get('end_user', 'cust'))!.spend, 2, 'an end user is created on first spend')
  t.same((await store.spendLogs({})).map((r) => r.request_id), ['r2', 'r3', 'r1'], 'newest first, then by request_id')
  t.same((await store.spendLogs({ api_key: 't1', end_date: '2030-01-02' })).map((r) => r.request_id), ['r1'], 'an end date covers its whole day')
  t.same((await store.spendLogs({ start_date: '2030-01-03' })).map((r) => r.request_id), ['r2'])
  t.same((await store.spendLogs({ limit: 1, offset: 1 })).map((r) => r.request_id), ['r3'])
  const daily = await store.dailySpend({ entity: 'key', entity_id: 't1' })
  t.same(daily.map((d) => [d.date, d.model_group, d.spend, d.requests, d.failed_requests]), [['2030-01-02', 'm', 2, 1, 0], ['2030-01-03', 'n', 0.5, 1, 1]])
  t.equal((await store.dailySpend({ entity: 'key', entity_id: 'gone' })).length, 1, 'daily totals even for a deleted key')

  t.same((await store.dueForReset('2030-01-03T00:00:00.000Z')).map((d) => [d.kind, d.id, d.budget_duration]), [['key', 't1', '1d']])
  t.equal(await store.resetSpend('key', 't1', '2030-01-01T00:00:00.000Z', '2030-01-04T00:00:00.000Z'), false, 'only from the expected period')
  t.equal(await store.resetSpend('key', 't1', '2030-01-03T00:00:00.000Z', '2030-01-04T00:00:00.000Z'), true)
  const reset = await store.get('key', 't1')
  t.equal(reset!.spend, 0.5, 'the new period keeps the spend of calls that ended in it')
  t.equal(reset!.budget_reset_at, '2030-01-04T00:00:00.000Z')
  t.same(reset!.model_spend, { m: 0, n: 0.5 }, "model budgets sharing the key's period roll over with it")
  t.equal(await store.resetSpend('key', 't1', '2030-01-03T00:00:00.000Z', '2030-01-05T00:00:00.000Z'), false, 'once')

  await store.upsert('key', key('t1', { spend: 99, key_alias: 'a', max_budget: 8, created_at: '2040-01-01T00:00:00.000Z' }))
  const up = await store.get('key', 't1')
  t.equal(up!.spend, 0.5, 'an upsert keeps the spend')
  t.equal(up!.created_at, TS, 'and created_at')
  t.equal(up!.max_budget, 8)
  t.equal(await store.delete('key', 't2'), true)
  t.equal(await store.delete('key', 't2'), false)
  await store.ping()
}

t.test('memory store', (t) => contract(t, createMemoryStore()))
t.test('sqlite store', (t) => contract(t, new SqliteStore({ path: tempDb(t), busyTimeoutMs: 5000 })))
