/**
 * Virtual keys end to end, on both stores: the official `openai` client with a key from /key/generate against a
 * gateway on an unchanged LiteLLM-style config (default chain: store, auth, keys, spend, budget, router).
 * Allowed model -> 200 with the cost header; another model -> 403; expired, blocked, deleted, unknown key -> 401;
 * budget spent -> 400 budget_exceeded; it resets after its duration (fake clock); /v1/models lists only the key's
 * models; the key is never stored or logged in clear.
 */
import t from 'tap'
import OpenAI from 'openai'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'
import { startPostgres } from '../helpers/postgres.js'
import { admin, deployment, eventually, generateKey, MASTER } from './helpers.js'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'

const up = await startUpstream(t)
const pg = await startPostgres(t)

/** 1 prompt token ("hi") x 0.001 + 8 completion tokens (the fake's reply) x 0.002. */
const CALL_COST = 0.017

for (const store of ['sqlite', 'postgres'] as const) {
  t.test(`virtual keys with the openai client (${store})`, async (t) => {
    let now = Date.now()
    const clock = { now: () => now }
    const dataDir = mkdtempSync(join(tmpdir(), 'sy-keys-'))
    const dbName = store === 'postgres' ? await pg.createDatabase() : ''
    const yaml = `
general_settings:
  master_key: ${MASTER}
${store === 'postgres' ? `  database_url: ${pg.urlFor(dbName)}\n` : ''}model_list:
${deployment('gpt-4o-mini', up.url)}${deployment('gpt-4o', up.url)}`
    const gw = await startGateway(t, yaml, { clock, env: { SWITCHYARD_DATA_DIR: dataDir } })

    const { key, token } = await generateKey(t, gw.url, { models: ['gpt-4o-mini'], max_budget: 0.05, budget_duration: '1h', key_alias: 'e2e' })
    t.match(key, /^sk-[A-Za-z0-9_-]{30,}$/, 'a sk- key from a CSPRNG, long enough')
    t.match(token, /^[0-9a-f]{64}$/, 'its id is the SHA-256 hex')
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 })

    const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    t.equal(data.object, 'chat.completion')
    t.equal(Number(response.headers.get('x-litellm-response-cost')), CALL_COST, 'the cost header carries the call\'s price')
    t.equal(response.headers.get('x-litellm-key-max-budget'), '0.05')
    t.ok(response.headers.get('x-litellm-key-spend') !== null, 'key spend header')

    const forbidden = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    t.ok(forbidden instanceof OpenAI.PermissionDeniedError, `another model -> 403 (${forbidden?.status})`)
    const listed = await client.models.list()
    t.same(listed.data.map((m) => m.id), ['gpt-4o-mini'], '/v1/models lists only the key\'s models')

    // Streams count too: spend the rest of the budget (0.05 / 0.017 -> the third call passes it).
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
    for await (const _ of stream) { /* drain */ }
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    const over = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    t.ok(over instanceof OpenAI.BadRequestError, `budget spent -> 400 (${over?.status} ${over?.message})`)
    t.equal(over?.type ?? over?.error?.type, 'budget_exceeded')
    t.match(over?.message, /Budget has been exceeded.*Max budget: 0\.05/)

    const info = await eventually(async () => {
      const r = await admin(gw.url, 'GET', `/key/info?key=${encodeURIComponent(key)}`)
      return r.body?.info?.spend >= 3 * CALL_COST - 1e-9 ? r.body.info : undefined
    }, 10_000, 'spend on the key')
    t.ok(Math.abs(info.spend - 3 * CALL_COST) < 1e-9, `key spend ${info.spend} = 3 calls`)

    // An hour later (fake clock) the budget period rolls over and the key works again.
    now += 3_600_000 + 1000
    const again = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    t.equal(again.object, 'chat.completion', 'budget reset after budget_duration')

    // Blocked, expired, deleted and unknown keys: 401 in the OpenAI error shape.
    const call = (k: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k, maxRetries: 0 })
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    t.equal((await admin(gw.url, 'POST', '/key/block', { key })).status, 200)
    const blocked = await call(key)
    t.ok(blocked instanceof OpenAI.AuthenticationError, `blocked -> 401 (${blocked?.status})`)
    t.equal((await admin(gw.url, 'POST', '/key/unblock', { key })).status, 200)
    t.equal((await call(key)).object, 'chat.completion', 'unblocked works again')

    const short = await generateKey(t, gw.url, { duration: '30s' })
    t.equal((await call(short.key)).object, 'chat.completion', 'fresh key works')
    now += 31_000
    const expired = await call(short.key)
    t.ok(expired instanceof OpenAI.AuthenticationError, `expired -> 401 (${expired?.status})`)
    t.match(expired?.message, /Expired Key/)

    t.equal((await admin(gw.url, 'POST', '/key/delete', { keys: [key] })).status, 200)
    const deleted = await call(key)
    t.ok(deleted instanceof OpenAI.AuthenticationError, `deleted -> 401 (${deleted?.status})`)
    const unknown = await call('sk-never-issued-0000000000000000000000')
    t.ok(unknown instanceof OpenAI.AuthenticationError, 'unknown -> 401')

    // The key never appears in clear: not in the logs, not in the database files.
    await gw.stop()
    const logs = JSON.stringify(gw.logs)
    t.notOk(logs.includes(key), 'the clear key is not in the logs')
    t.notOk(logs.includes(short.key), 'nor the second key')
    if (store === 'sqlite') {
      const files = readdirSync(dataDir).filter((f) => f.startsWith('switchyard.db'))
      t.ok(files.length > 0, `database files: ${files.join(', ')}`)
      for (const f of files) {
        const bytes = readFileSync(join(dataDir, f))
        t.notOk(bytes.includes(key), `${f} does not hold the key`)
        t.notOk(bytes.includes(short.key), `${f} does not hold the second key`)
      }
      t.ok(files.some((f) => readFileSync(join(dataDir, f)).includes(short.token)), 'the key\'s hash is stored')
    } else {
      const dump = await pg.dump(dbName)
      t.ok(dump.includes(short.token), 'the dump holds the key\'s hash')
      t.notOk(dump.includes(key) || dump.includes(short.key), 'the PostgreSQL dump does not hold a key')
    }
  })
}
