/**
 * store-postgres: the Store contract on a real PostgreSQL server (one empty database per store), plus what is
 * particular to a server: an outage mid-way (calls reject with StoreUnavailableError, the same Store works again
 * once the server is back), migrations that are a no-op the second time and safe when several processes start at
 * once, and the plugin's options (DATABASE_URL, pool size).
 */
import t, { type Test } from 'tap'
import pg from 'pg'
import { StoreUnavailableError, type Store } from '../../core/store.js'
import postgresPlugin, { createPostgresStore } from '../../plugins/store-postgres/index.js'
import { startGateway } from '../helpers/gateway.js'
import { startPostgres } from '../helpers/postgres.js'
import { storeContract } from './contract.js'
import { SCHEMA_VERSION } from '../../core/store/schema.js'
import { keyRecord, spendRow, teamRecord } from './fixtures.js'

const server = await startPostgres(t)
const urls = new WeakMap<Store, string>()

function newStore(t: Test, url: string, max = 10): Store {
  const store = createPostgresStore({ url, max, connectionTimeoutMs: 2000, statementTimeoutMs: 30_000 })
  urls.set(store, url)
  t.teardown(() => store.close())
  return store
}

async function makeStore(t: Test, sameDatabaseAs?: Store): Promise<Store> {
  const store = newStore(t, sameDatabaseAs ? urls.get(sameDatabaseAs)! : server.urlFor(await server.createDatabase()))
  await store.open()
  return store
}

async function sql<T = Record<string, unknown>>(db: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: server.urlFor(db) })
  await c.connect()
  try {
    return (await c.query(text)).rows as T[]
  } finally {
    await c.end()
  }
}

t.test('contract', async (t) => storeContract(t, makeStore))

t.test('a server restart: calls during the outage reject, the same Store works after it', async (t) => {
  const warnings: string[] = []
  const db = await server.createDatabase()
  const store = createPostgresStore({ url: server.urlFor(db), max: 4, connectionTimeoutMs: 2000, statementTimeoutMs: 30_000,
    onIdleError: (err) => warnings.push(err.message) })
  t.teardown(() => store.close())
  await store.open()
  const k = keyRecord('outage1')
  await store.insert('key', k)
  await store.insert('team', teamRecord('outage'))
  // Several idle connections in the pool when the server goes away.
  await Promise.all(Array.from({ length: 8 }, () => store.get('key', k.token)))
  const before = server.pid()

  const inFlight = store.writeSpend(Array.from({ length: 2000 }, (_, i) => spendRow({ request_id: `out-${i}`, api_key: k.token, team_id: 'outage', spend: 1 })))
    .then(() => 'committed', (e) => e)
  await server.restart({
    whileDown: async () => {
      await t.rejects(store.get('key', k.token), StoreUnavailableError, 'get during the outage')
      await t.rejects(store.writeSpend([spendRow({ api_key: k.token, spend: 1 })]), StoreUnavailableError, 'writeSpend during the outage')
      await t.rejects(store.update('team', 'outage', { team_alias: 'x' }), StoreUnavailableError, 'update during the outage')
      await t.rejects(store.ping(), StoreUnavailableError, 'ping during the outage')
    },
  })
  t.not(server.pid(), before, 'a new postmaster')
  const settled = await inFlight
  t.ok(settled === 'committed' || settled instanceof StoreUnavailableError, `the batch cut by the restart committed or rejected as unavailable (${settled})`)

  await store.ping()
  t.equal((await store.get('key', k.token))?.token, k.token, 'the same Store reads again')
  const logged = (await store.spendLogs({ api_key: k.token, limit: 10_000 })).length
  t.ok(logged === 0 || logged === 2000, `the cut batch is all or nothing (${logged} rows)`)
  t.equal((await store.get('key', k.token))?.spend, logged, 'spend matches the rows that landed')
  await store.writeSpend([spendRow({ request_id: 'after', api_key: k.token, spend: 0.5 })])
  t.equal((await store.get('key', k.token))?.spend, logged + 0.5, 'and writes again')
  t.ok(warnings.length > 0, `lost idle connections were reported, not thrown (${warnings.length})`)
})

t.test('migrations: a second open is a no-op; several processes may start at once', async (t) => {
  const db = await server.createDatabase()
  await newStore(t, server.urlFor(db)).open()
  const first = await server.dump(db)
  t.match(first, /CREATE TABLE public\.sy_keys/)
  await newStore(t, server.urlFor(db)).open()
  t.equal(await server.dump(db), first, 'the dump after a second open is byte for byte the same')
  t.same(await sql(db, 'SELECT version FROM sy_schema_version ORDER BY version'), [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }])

  const fresh = await server.createDatabase()
  await Promise.all(Array.from({ length: 4 }, () => newStore(t, server.urlFor(fresh)).open()))
  t.same(await sql(fresh, 'SELECT version FROM sy_schema_version ORDER BY version'), [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }], 'each migration applied once')
  const indexes = (d: string) => sql(d, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname")
  t.same(await indexes(fresh), await indexes(db), 'the same tables and indexes as a sequential start')
  t.same(await sql(fresh, 'SELECT indexrelid FROM pg_index WHERE NOT indisvalid'), [], 'no index left invalid')
  t.ok((await indexes(fresh)).some((i) => i.indexname === 'sy_spend_logs_api_key_idx'))
})

t.test('the plugin: database_url or $DATABASE_URL, pool size, start opens, stop closes', async (t) => {
  const models = 'model_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n'
  const saved = process.env.DATABASE_URL
  t.teardown(() => { if (saved === undefined) delete process.env.DATABASE_URL; else process.env.DATABASE_URL = saved })

  delete process.env.DATABASE_URL
  await t.rejects(startGateway(t, `pipeline: [request-id, store-postgres, router]\n${models}`, { plugins: [postgresPlugin] }),
    { code: 'GW_ERR_PLUGIN_OPTIONS', message: /database_url.*DATABASE_URL/ }, 'neither set: a boot error')
  await t.rejects(startGateway(t, `pipeline: [request-id, { store-postgres: { database_url: x, pool: 1 } }, router]\n${models}`, { plugins: [postgresPlugin] }),
    { code: 'GW_ERR_PLUGIN_OPTIONS' }, 'unknown options refused')

  const db = await server.createDatabase()
  process.env.DATABASE_URL = server.urlFor(db)
  const gw = await startGateway(t, `pipeline: [request-id, { store-postgres: { connection_limit: 2 } }, router]\n${models}`, { plugins: [postgresPlugin] })
  const store = gw.gateway.container.cradle.store!
  t.equal(store.kind, 'postgres', 'registered as the `store` service, from $DATABASE_URL')
  t.same(await sql(db, 'SELECT max(version) AS v FROM sy_schema_version'), [{ v: SCHEMA_VERSION }], 'start migrated the database')
  await store.insert('team', teamRecord('via-plugin'))
  await Promise.all(Array.from({ length: 30 }, () => store.get('team', 'via-plugin')))
  const conns = await sql<{ n: number }>(db, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'switchyard'")
  t.ok(conns[0]!.n <= 2, `connection_limit 2 holds under 30 concurrent calls (${conns[0]!.n} open)`)
  await gw.stop()
  await t.rejects(store.get('team', 'via-plugin'), StoreUnavailableError, 'stop closed the pool')

  const schema = postgresPlugin.options as { properties: Record<string, { default?: unknown }> }
  t.same([schema.properties.connection_limit?.default, schema.properties.connection_timeout_ms?.default, schema.properties.statement_timeout_ms?.default],
    [10, 5000, 30_000], 'defaults: 10 connections, 5 s to connect, 30 s per statement')
})
