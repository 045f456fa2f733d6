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
import { admin, deployment, eventually, generateKey, MASTER } from './helpers.js'

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

const chat = (url: string, key: string, model = 'gpt-4o-mini') =>
  new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 })
    .chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 })
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
  // Each call costs 0.017 and reserves its worst case (~0.05): one process alone would admit ~18 calls for 0.3;
  // two with separate budgets would spend up to twice the budget.
  const results = await Promise.all(Array.from({ length: 80 }, (_, i) => chat(i % 2 ? a.url : b.url, k.key)))
  const ok = results.filter((r) => r === 'ok').length
  t.ok(results.includes('budget'), 'the budget was reached')
  t.ok(ok * 0.017 <= max + 1e-9, `served calls cost ${(ok * 0.017).toFixed(3)} <= ${max} (one budget for both processes)`)
  const spend = await eventually(async () => {
    const r = await admin(a.url, 'GET', `/key/info?key=${k.token}`)
    return Math.abs(r.body.info.spend - ok * 0.017) < 1e-9 ? r.body.info.spend : undefined
  }, 10_000, 'stored spend')
  t.ok(spend <= max, `stored spend ${spend} <= ${max}`)
})

t.test('SIGKILL mid-call: no reservation outlives its lease', async (t) => {
  const k = await generateKey(t, a.url, { max_budget: 0.2 })
  // Three slow calls through A hold three worst-case reservations (~0.15 of 0.2): a fourth cannot fit.
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
  const info = await admin(b.url, 'GET', `/key/info?key=${k.token}`)
  t.ok(info.body.info.spend < 0.05, 'the killed calls were never charged as spend')
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
  await pg.restart()
  await new Promise((r) => setTimeout(r, 500))
  stop = true
  await load
  t.ok(served > 10, `${served} calls served around the restart`)
  const rows = await eventually(async () => {
    const r = await admin(b.url, 'GET', `/spend/logs?api_key=${k.token}&limit=10000`)
    const list = Array.isArray(r.body) ? r.body : r.body?.data
    return Array.isArray(list) && list.filter((x: any) => x.status === 'success').length >= served ? list : undefined
  }, 30_000, 'every row written after the restart')
  t.equal(rows.filter((x: any) => x.status === 'success').length, served, 'one success row per served call')
})

t.test('a graceful restart keeps every counter', async (t) => {
  const k = await generateKey(t, b.url, { max_budget: 0.1 })
  for (let i = 0; i < 3; i++) t.equal(await chat(b.url, k.key), 'ok')
  b.proc.child.kill('SIGTERM')
  t.equal((await b.proc.exited).code, 0, 'clean exit')
  await redis.restart() // the shared counters are gone: they must come back from the database
  b = await gateway()
  const info = await admin(b.url, 'GET', `/key/info?key=${k.token}`)
  t.ok(Math.abs(info.body.info.spend - 3 * 0.017) < 1e-9, `spend survived the restart (${info.body.info.spend})`)
  // 0.1 budget, 0.051 spent, worst case ~0.05 per call: strictly at most one more call fits.
  const r1 = await chat(b.url, k.key)
  const r2 = await chat(b.url, k.key)
  t.same([r1, r2].filter((x) => x === 'ok').length <= 1, true, `the budget continues where it was (${r1}, ${r2})`)
  t.equal(r2, 'budget')
})
