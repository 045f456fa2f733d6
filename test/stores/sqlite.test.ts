/**
 * store-sqlite: the Store contract on a real SQLite file, plus what is particular to the embedded store: two
 * instances (two worker threads, as two processes would) on one file see each other's writes at once; the event
 * loop keeps turning while a large batch is written; a worker that dies rejects its calls and is replaced; the
 * worker also runs from compiled JavaScript (dist/) with plain node; the plugin registers, opens and closes it.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { StoreUnavailableError, type Store } from '../../core/store.js'
import { SqliteStore } from '../../plugins/store-sqlite/store.js'
import { openSqliteDriver } from '../../plugins/store-sqlite/driver.js'
import { createSqlStore } from '../../core/store/sql.js'
import type { SqlDriver, SqlExecutor } from '../../core/store/driver.js'
import sqlitePlugin from '../../plugins/store-sqlite/index.js'
import { startGateway } from '../helpers/gateway.js'
import { storeContract } from './contract.js'
import { keyRecord, spendRow, teamRecord } from './fixtures.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'sy-sqlite-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const paths = new WeakMap<Store, string>()
let seq = 0

async function makeStore(t: Test, sameDatabaseAs?: Store): Promise<SqliteStore> {
  const path = sameDatabaseAs ? paths.get(sameDatabaseAs)! : join(dir, `db-${++seq}.db`)
  const store = new SqliteStore({ path, busyTimeoutMs: 5000 })
  paths.set(store, path)
  t.teardown(() => store.close())
  await store.open()
  return store
}

t.test('contract', async (t) => storeContract(t, makeStore))

t.test('writeSpend SQL: one UPDATE per entity per batch, in id order; nothing for a re-sent batch', async (t) => {
  // The shared SQL seen through a recording driver (in-process here: the statements, not the thread, are under test).
  const statements: string[] = []
  const inner = openSqliteDriver(join(dir, 'recorded.db'), 1000)
  const record = (q: SqlExecutor): SqlExecutor => ({ query: (sql, params) => { statements.push(sql); return q.query(sql, params) } })
  const driver: SqlDriver = {
    ...inner, ...record(inner),
    transaction: (fn) => inner.transaction((tx) => fn(record(tx))),
    exclusive: (fn) => inner.exclusive((tx) => fn(record(tx))),
  }
  const store = createSqlStore(driver)
  t.teardown(() => store.close())
  await store.open()
  const keys = ['z', 'a', 'm'].map((n) => keyRecord(`rec-${n}`, { team_id: `team-${n}` }))
  for (const k of keys) await store.insert('key', k)
  const rows = Array.from({ length: 120 }, (_, i) => spendRow({ request_id: `rec-${i}`, api_key: keys[i % 3]!.token,
    team_id: keys[i % 3]!.team_id, user: 'one-user', model_group: i % 2 ? 'g1' : 'g2' }))
  statements.length = 0
  await store.writeSpend(rows)
  const updates = (table: string) => statements.filter((s) => s.startsWith(`UPDATE ${table} `))
  t.equal(updates('sy_keys').length, 3, '3 keys: 3 UPDATEs for 120 rows')
  t.equal(updates('sy_teams').length, 3, '3 teams: 3 UPDATEs')
  t.equal(updates('sy_users').length, 1, '1 user: 1 UPDATE')
  t.equal(statements.filter((s) => s.startsWith('INSERT INTO sy_key_model_spend')).length, 6, 'one per key and model group')
  t.equal(statements.filter((s) => s.startsWith('INSERT INTO sy_spend_logs')).length, 3, 'rows inserted 50 at a time')
  statements.length = 0
  const order: string[] = []
  const tracing: SqlDriver = { ...driver, transaction: (fn) => driver.transaction((tx) => fn({
    query: (sql, params) => { if (sql.startsWith('UPDATE sy_keys')) order.push(String(params![1])); return tx.query(sql, params) },
  })) }
  const traced = createSqlStore(tracing)
  await traced.writeSpend(rows.map((r) => ({ ...r, request_id: `again-${r.request_id}` })).reverse())
  t.same(order, [...keys.map((k) => k.token)].sort(), 'keys updated in sorted id order, whatever the row order (no lock-order deadlock)')
  statements.length = 0
  await store.writeSpend(rows)
  t.same(statements.filter((s) => !s.startsWith('INSERT INTO sy_spend_logs') && !/^(BEGIN|COMMIT)/.test(s)), [], 'a re-sent batch: no UPDATE at all')
})

t.test('two instances on one file: a write by one is read by the other at once', async (t) => {
  const a = await makeStore(t)
  const b = await makeStore(t, a)
  t.not(a.worker?.threadId, b.worker?.threadId, 'two worker threads, two connections')
  const k = keyRecord('shared1', { key_alias: 'shared' })
  await a.insert('key', k)
  t.same(await b.get('key', k.token), k, 'read by the other instance right after the insert')
  await b.update('key', k.token, { blocked: true })
  t.equal((await a.get('key', k.token))?.blocked, true, 'and the other way round')
  await b.writeSpend([spendRow({ api_key: k.token, spend: 0.5 })])
  t.equal((await a.get('key', k.token))?.spend, 0.5, 'spend written by one is read by the other')
  await t.rejects(b.insert('key', keyRecord('shared2', { key_alias: 'shared' })), { name: 'StoreConflictError', field: 'key_alias' },
    'a unique alias holds across instances')
})

t.test('the event loop keeps turning while a large batch is written', async (t) => {
  const store = await makeStore(t)
  await store.insert('team', teamRecord('big'))
  const rows = Array.from({ length: 10_000 }, (_, i) => spendRow({ request_id: `big-${i}`, team_id: 'big', end_user: `c${i % 50}` }))
  let ticks = 0
  let maxGap = 0
  let last = performance.now()
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    ticks++
  }, 2)
  const started = performance.now()
  await store.writeSpend(rows)
  const took = performance.now() - started
  clearInterval(timer)
  // On the main thread the write would be one synchronous block: no tick at all until it ends.
  t.ok(ticks >= 10, `${ticks} timer ticks during a ${took.toFixed(0)} ms write`)
  t.ok(maxGap < took / 2, `longest pause of the event loop ${maxGap.toFixed(0)} ms, well under the write's ${took.toFixed(0)} ms`)
  t.equal((await store.get('team', 'big'))?.spend, 2500, 'and the batch landed')
})

t.test('a worker that dies rejects its calls and is replaced on the next call', async (t) => {
  const store = await makeStore(t)
  const k = keyRecord('crash1')
  await store.insert('key', k)
  const first = store.worker!
  const rows = Array.from({ length: 5000 }, (_, i) => spendRow({ request_id: `crash-${i}`, api_key: k.token, spend: 1 }))
  const inFlight = store.writeSpend(rows)
  const waiting = store.get('key', k.token) // queued behind the batch in the same worker
  await new Promise((r) => setTimeout(r, 20))
  await first.terminate()
  await t.rejects(inFlight, StoreUnavailableError, 'the call in flight rejects (never hangs)')
  await t.rejects(waiting, StoreUnavailableError, 'so does the one queued behind it')
  t.equal(store.worker, null, 'no live worker until the next call')
  const after = await store.get('key', k.token)
  t.ok(store.worker && store.worker !== first, 'a new worker answered')
  const logged = (await store.spendLogs({ api_key: k.token, limit: 10_000 })).length
  t.ok(logged === 0 || logged === 5000, `the batch is all or nothing (${logged} rows)`)
  t.equal(after?.spend, logged, 'spend matches the rows that landed')
  await store.writeSpend(rows)
  t.equal((await store.get('key', k.token))?.spend, 5000, 'the retried batch lands once')
  await store.close()
  await t.rejects(store.get('key', k.token), StoreUnavailableError, 'a closed store refuses calls')
})

t.test('the worker runs from compiled JavaScript with plain node (as from dist/)', async (t) => {
  // Transpile the store's files to .js in the same layout dist/ has, then drive them from a node without tsx.
  const out = mkdtempSync(join(tmpdir(), 'sy-sqlite-js-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const files = ['core/store.ts', 'core/store/driver.ts', 'core/store/schema.ts', 'core/store/rows.ts', 'core/store/sql.ts',
    'core/store/spend.ts', 'plugins/store-sqlite/store.ts', 'plugins/store-sqlite/worker.ts', 'plugins/store-sqlite/driver.ts']
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(join(ROOT, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText
    mkdirSync(dirname(join(out, f)), { recursive: true })
    writeFileSync(join(out, f.replace(/\.ts$/, '.js')), js)
  }
  writeFileSync(join(out, 'package.json'), '{"type":"module"}')
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'))
  const db = join(dir, 'compiled.db')
  const script = `
    import { SqliteStore } from ${JSON.stringify(join(out, 'plugins/store-sqlite/store.js'))}
    const s = new SqliteStore({ path: ${JSON.stringify(db)}, busyTimeoutMs: 1000 })
    await s.open()
    await s.insert('team', { team_id: 'js', spend: 0, created_at: '2024-01-01T00:00:00.000Z', metadata: {} })
    console.log(JSON.stringify(await s.get('team', 'js')))
    await s.close()`
  // No NODE_OPTIONS: the test runner's own loaders (tsx) must not reach the child.
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH } })
  t.equal(res.status, 0, `exit 0 ${res.stderr}`)
  t.match(JSON.parse(res.stdout), { team_id: 'js', spend: 0, metadata: {} }, 'a round trip through the compiled worker')
  t.ok(existsSync(db), 'the database file was written')
})

t.test('the plugin: options, register, start opens, stop closes', async (t) => {
  const file = join(dir, 'nested', 'deeper', 'gw.db')
  const gw = await startGateway(t, `pipeline: [request-id, { store-sqlite: { path: ${JSON.stringify(file)}, busy_timeout_ms: 2000 } }, router]\n` +
    'model_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n', { plugins: [sqlitePlugin] })
  const store = gw.gateway.container.cradle.store!
  t.ok(store instanceof SqliteStore, 'registered as the `store` service')
  t.equal(store.kind, 'sqlite')
  t.ok(existsSync(file), 'the directory was created and the schema opened at start')
  await store.insert('team', teamRecord('via-plugin'))
  t.equal((await store.get('team', 'via-plugin'))?.team_id, 'via-plugin')
  await gw.stop()
  await t.rejects(store.get('team', 'via-plugin'), StoreUnavailableError, 'stop closed it')

  const schema = sqlitePlugin.options as { properties: Record<string, { default?: unknown }> }
  t.equal(schema.properties.path?.default, undefined, 'no fixed default: the data dir decides')
  const dataDir = join(dir, 'data-dir')
  const gw0 = await startGateway(t, 'pipeline: [request-id, store-sqlite, router]\nmodel_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n',
    { plugins: [sqlitePlugin], env: { ...process.env, SWITCHYARD_DATA_DIR: dataDir } })
  t.ok(existsSync(join(dataDir, 'switchyard.db')), 'default path: $SWITCHYARD_DATA_DIR/switchyard.db (else ./data/switchyard.db)')
  await gw0.stop()
  t.equal(schema.properties.busy_timeout_ms?.default, 5000, 'default busy timeout, ms')
  await t.rejects(startGateway(t, 'pipeline: [{ store-sqlite: { nope: 1 } }]\n', { plugins: [sqlitePlugin] }),
    { code: 'GW_ERR_PLUGIN_OPTIONS' }, 'unknown options refused at boot')

  // A relative path is resolved against the working directory at register time.
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => process.chdir(cwd))
  const gw2 = await startGateway(t, 'pipeline: [request-id, { store-sqlite: { path: rel/x.db } }, router]\n' +
    'model_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n', { plugins: [sqlitePlugin] })
  process.chdir(cwd)
  t.ok(existsSync(join(dir, 'rel', 'x.db')), 'relative path under the working directory')
  await gw2.stop()
})
