/**
 * Scale-out, with real servers: two gateway processes (the CLI, as users run it) sharing one Redis and one
 * PostgreSQL hold ONE budget between them; a gateway killed with SIGKILL mid-call leaves no reservation behind once
 * its lease time has passed; a PostgreSQL restart under load loses no spend row; a graceful restart keeps every
 * counter. The fake LLM upstreams run in this test process; everything else is the real thing.
 */
import t from 'tap'
import OpenAI from 'openai'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, freePort, spawnProc, waitListening, type Proc } from '../helpers/cli.js'
import { startUpstream, delay, defaultChat } from '../helpers/upstream.js'
import { startPostgres } from '../helpers/postgres.js'
import { startRedis } from '../helpers/redis.js'
import { admin, deployment, eventually, generateKey, INPUT_PRICE, MASTER, OUTPUT_PRICE } from './helpers.js'
import { promptTokensBound } from '../../core/pricing/budget.js'

const LEASE_MS = 2000
const fast = await startUpstream(t)
const slow = await startUpstream(t, { chat: delay(8000, defaultChat()) })
const pg = await startPostgres(t)
const redis = await startRedis(t)
const dir = mkdtempSync(join(tmpdir(), 'sy-scale-'))
const db = await pg.createDatabase()
const configPath = join(dir, 'config.yaml')
writeFileSync(configPath, `
general_settings:
  master_key: ${MASTER}
  database_url: ${pg.urlFor(db)}
  budget_mode: strict
router_settings:
  redis_url: ${redis.url}
pipeline:
  - request-id
  - store-postgres
  - state-redis
  - auth
  - keys
  - spend: { flush_interval_ms: 50 }
  - budget: { lease_ms: ${LEASE_MS} }
  - router
model_list:
${deployment('gpt-4o-mini', fast.url)}${deployment('slow-model', slow.url, 'gpt-4o-mini')}`)

async function gateway(): Promise<{ proc: Proc; url: string }> {
  const port = await freePort()
  const proc = spawnProc(t, process.execPath, [CLI, '--config', configPath, '--port', String(port), '--host', '127.0.0.1'], { SWITCHYARD_DATA_DIR: dir })
  return { proc, url: await waitListening(proc) }
}

const BODY = { messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 8 }
/** What strict mode reserves for one call: the prompt's byte bound and 8 output tokens. Each call costs 0.017. */
const WORST = promptTokensBound('chat', BODY) * INPUT_PRICE + 8 * OUTPUT_PRICE
const COST = INPUT_PRICE + 8 * OUTPUT_PRICE

const chat = (url: string, key: string, model = 'gpt-4o-mini') =>
  new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 })
    .chat.completions.create({ model, ...BODY })
    .then(() => 'ok' as const, (e) => (e?.status === 400 && /budget/i.test(e.message) ? ('budget' as const) : Promise.reject(e)))

let a = await gateway()
let b = await gateway()

t.test('a key made through one process works through the other at once', async (t) => {
  const k = await generateKey(t, a.url, { key_alias: 'cross' })
  t.equal(await chat(b.url, k.key), 'ok')
})

t.test('two processes sharing Redis + PostgreSQL hold one budget', async (t) => {
  const max = 0.3
  const k = await generateKey(t, a.url, { max_budget: max })
  // Waves of 10 concurrent calls, half to each process, until both refuse. One budget: the served calls cost at most
  // 0.3 in all. Two separate budgets would let each process serve about that much (twice the budget).
  let ok = 0
  for (let wave = 0; wave < 20; wave++) {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(i % 2 ? a.url : b.url, k.key)))
    ok += results.filter((r) => r === 'ok').length
    if (results.every((r) => r === 'budget')) break
  }
  t.ok(ok * COST <= max + 1e-9, `served calls cost ${(ok * COST).toFixed(3)} <= ${max} (one budget for both processes)`)
  t.ok(ok * COST > max - WORST - COST, `and the budget was used up to its last worst case (${ok} calls)`)
  const spend = await eventually(async () => {
    const r = await admin(a.url, 'GET', `/key/info?key=${k.token}`)
    return Math.abs(r.body.info.spend - ok * COST) < 1e-9 ? r.body.info.spend : undefined
  }, 10_000, 'stored spend')
  t.ok(spend <= max, `stored spend ${spend} <= ${max}`)
})

t.test('SIGKILL mid-call: no reservation outlives its lease', async (t) => {
  const k = await generateKey(t, a.url, { max_budget: 3.5 * WORST })
  // Three slow calls through A hold three worst-case reservations: a fourth cannot fit.
  const held = [chat(a.url, k.key, 'slow-model'), chat(a.url, k.key, 'slow-model'), chat(a.url, k.key, 'slow-model')]
  for (const h of held) h.catch(() => undefined)
  await slow.waitForRequests(3, 10_000)
  t.equal(await chat(b.url, k.key), 'budget', 'B sees A\'s reservations (shared ledger)')
  a.proc.child.kill('SIGKILL')
  await a.proc.exited
  const killedAt = Date.now()
  // Renewals stopped with A; after the lease the money is free again, with nothing spent.
  const served = await eventually(async () => ((await chat(b.url, k.key)) === 'ok' ? Date.now() : undefined), 3 * LEASE_MS + 5000, 'budget freed')
  t.ok(served - killedAt <= 2 * LEASE_MS + 3000, `freed ${served - killedAt} ms after the kill (lease ${LEASE_MS} ms)`)
  const spend = await eventually(async () => {
    const v = (await admin(b.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend
    return v > 0 ? { v } : undefined
  }, 5000, 'B\'s call in the spend')
  await new Promise((r) => setTimeout(r, 300)) // anything else would be written within this (flush interval 50 ms)
  t.ok(Math.abs(spend.v - COST) < 1e-9 && (await admin(b.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend === spend.v,
    `only B's call was charged (${spend.v}): the killed calls left nothing behind`)
  a = await gateway()
})

t.test('a PostgreSQL restart under load loses no spend row', async (t) => {
  const k = await generateKey(t, b.url, { key_alias: 'pg-restart' })
  let served = 0
  let stop = false
  const load = (async () => {
    while (!stop) {
      const r = await Promise.all(Array.from({ length: 4 }, () => chat(b.url, k.key).catch(() => 'error')))
      served += r.filter((x) => x === 'ok').length
    }
  })()
  await new Promise((r) => setTimeout(r, 500))
  const readiness = { status: 0, body: {} as any }
  await pg.restart({
    whileDown: async () => {
      // Readiness says so while the database is down (LiteLLM answers 503 then too); calls go on meanwhile.
      const r = await fetch(`${b.url}/health/readiness`)
      readiness.status = r.status
      readiness.body = await r.json()
      await new Promise((r) => setTimeout(r, 300))
    },
  })
  await new Promise((r) => setTimeout(r, 500))
  stop = true
  await load
  t.ok(served > 10, `${served} calls served around the restart`)
  t.same([readiness.status, readiness.body.db], [503, 'disconnected'], 'readiness 503 while the database was down')
  const back = await fetch(`${b.url}/health/readiness`)
  t.same([back.status, ((await back.json()) as any).db], [200, 'connected'], 'and 200 once it is back')
  const rows = await eventually(async () => {
    const r = await admin(b.url, 'GET', `/spend/logs?api_key=${k.token}&limit=10000`)
    const list = Array.isArray(r.body) ? r.body : r.body?.data
    return Array.isArray(list) && list.filter((x: any) => x.status === 'success').length >= served ? list : undefined
  }, 30_000, 'every row written after the restart')
  t.equal(rows.filter((x: any) => x.status === 'success').length, served, 'one success row per served call')
})

t.test('a graceful restart keeps every counter', async (t) => {
  // Sequential calls on a fresh key with this budget: how many fit before the first refusal.
  const max = 4 * WORST
  const servedUntilRefused = async (key: string) => {
    for (let n = 0; n < 50; n++) if ((await chat(b.url, key)) === 'budget') return n
    throw new Error('never refused')
  }
  const fresh = await generateKey(t, b.url, { max_budget: max })
  const fits = await servedUntilRefused(fresh.key)
  t.ok(fits >= 3, `${fits} calls fit a fresh budget`)

  const k = await generateKey(t, b.url, { max_budget: max })
  for (let i = 0; i < 3; i++) t.equal(await chat(b.url, k.key), 'ok')
  b.proc.child.kill('SIGTERM')
  t.equal((await b.proc.exited).code, 0, 'clean exit')
  await redis.restart() // the shared counters are gone: they must come back from the database
  b = await gateway()
  const info = await admin(b.url, 'GET', `/key/info?key=${k.token}`)
  t.ok(Math.abs(info.body.info.spend - 3 * COST) < 1e-9, `spend survived the restart (${info.body.info.spend})`)
  t.equal(await servedUntilRefused(k.key), fits - 3, 'the budget continues where it was: exactly the rest fits')
})

t.test('a key blocked through one process is refused by the other at once (Redis relays the invalidation)', async (t) => {
  const k = await generateKey(t, a.url, {})
  t.equal(await chat(b.url, k.key), 'ok', 'B has the key cached (for 10 s without a relay)')
  t.equal((await admin(a.url, 'POST', '/key/block', { key: k.key })).status, 200)
  const status = () => fetch(`${b.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', ...BODY }),
  }).then((r) => r.status)
  const refused = await eventually(async () => ((await status()) === 401 ? Date.now() : undefined), 2000, 'B refusing the blocked key')
  t.ok(refused, 'B refuses within 2 s, well inside its cache time')
})

t.test('Redis down: calls are still served and charged; budgets fall back to each process', async (t) => {
  const k = await generateKey(t, b.url, { max_budget: 1 })
  await redis.stop()
  const results = []
  for (let i = 0; i < 5; i++) results.push(await chat(b.url, k.key))
  t.same(results, ['ok', 'ok', 'ok', 'ok', 'ok'], 'served without Redis')
  const spend = await eventually(async () => {
    const v = (await admin(b.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend
    return Math.abs(v - 5 * COST) < 1e-9 ? { v } : undefined
  }, 10_000, 'spend of the calls made while Redis was down')
  t.ok(spend.v > 0, 'every call charged in the database')
  t.match(b.proc.stderr(), /Redis unreachable/, 'a warning says budgets are per process meanwhile')
})

t.test('two processes on one machine share one SQLite file: a key made through one works through the other', async (t) => {
  const sqliteDir = mkdtempSync(join(tmpdir(), 'sy-sqlite-shared-'))
  const cfg = join(sqliteDir, 'config.yaml')
  writeFileSync(cfg, `general_settings:\n  master_key: ${MASTER}\nmodel_list:\n${deployment('gpt-4o-mini', fast.url)}`)
  const start = async () => {
    const port = await freePort()
    const proc = spawnProc(t, process.execPath, [CLI, '--config', cfg, '--port', String(port), '--host', '127.0.0.1'], { SWITCHYARD_DATA_DIR: sqliteDir })
    return { proc, url: await waitListening(proc) }
  }
  const [one, two] = await Promise.all([start(), start()])
  const k = await generateKey(t, one.url, { key_alias: 'shared-file' })
  t.equal(await chat(two.url, k.key), 'ok', 'the other process finds the key in the shared file at once')
  const info = await eventually(async () => {
    const r = await admin(one.url, 'GET', `/key/info?key=${k.token}`)
    return r.body.info.spend > 0 ? r.body.info : undefined
  }, 10_000, 'the spend written by the other process')
  t.ok(Math.abs(info.spend - COST) < 1e-9, 'and its spend, written by the other process, is read by the first')
  for (const p of [one, two]) p.proc.child.kill('SIGTERM')
  for (const p of [one, two]) t.equal((await p.proc.exited).code, 0)
  for (const p of [one, two, a, b]) t.notOk(p.proc.stderr().includes(k.key), 'no gateway process ever logged a key')
})
