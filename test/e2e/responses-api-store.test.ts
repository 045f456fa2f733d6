/**
 * Stored Responses survive a gateway restart, on both stores: the embedded SQLite (a LiteLLM config with a master
 * key gets store-sqlite by default, its file in SWITCHYARD_DATA_DIR) and a real PostgreSQL (general_settings.
 * database_url -> store-postgres). Each scenario creates responses (plain and streamed) with a virtual key, stops the
 * gateway, starts a new one on the same data, then reads, pages, continues and deletes them there. A new gateway has
 * an empty in-memory cache (core/http/responses.ts keeps responses in memory only when the store fails), so whatever
 * the second gateway finds came from the database.
 */
import t from 'tap'
import OpenAI from 'openai'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { startGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { startPostgres } from '../helpers/postgres.js'
import { DEFAULT_REPLY, startUpstream } from '../helpers/upstream.js'
import { deployment, generateKey, MASTER } from './helpers.js'

const up = await startUpstream(t)
const postgres = await startPostgres(t)

for (const store of ['sqlite', 'postgres'] as const) {
  t.test(`a stored response survives a restart (${store})`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sy-resp-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const dbUrl = store === 'postgres' ? postgres.urlFor(await postgres.createDatabase()) : ''
    const yaml = `
general_settings:
  master_key: ${MASTER}
${store === 'postgres' ? `  database_url: ${dbUrl}\n` : ''}model_list:
${deployment('gpt-4o', up.url)}`
    const boot = () => startGateway(t, yaml, { env: { SWITCHYARD_DATA_DIR: dataDir } })

    const gw1 = await boot()
    t.ok(gw1.gateway.plugins.some((p) => p.plugin.name === `store-${store}`), `the default chain has store-${store}`)
    const a = await generateKey(t, gw1.url, { key_alias: `resp-a-${store}` })
    const b = await generateKey(t, gw1.url, { key_alias: `resp-b-${store}` })
    const ca1 = new OpenAI({ baseURL: `${gw1.url}/v1`, apiKey: a.key, maxRetries: 0 })
    const r1 = await ca1.responses.create({ model: 'gpt-4o', input: 'Remember the number 7.', instructions: 'Be brief.' })
    const s = ca1.responses.stream({ model: 'gpt-4o', previous_response_id: r1.id, input: 'Which number?' })
    const r2 = await s.finalResponse()
    const before = (await jsonCall(gw1.url, 'GET', `/v1/responses/${r2.id}`, undefined, a.key)).body
    t.equal(before.id, r2.id, 'stored on the first gateway')
    await gw1.stop()

    if (store === 'sqlite') {
      t.ok(readdirSync(dataDir).some((f) => f.startsWith('switchyard.db')), 'the SQLite file is in SWITCHYARD_DATA_DIR')
    } else {
      const client = new pg.Client({ connectionString: dbUrl })
      await client.connect()
      const { rows } = await client.query('SELECT id, owner FROM sy_responses ORDER BY created_at')
      await client.end()
      t.same(rows.map((r) => r.id).sort(), [r1.id, r2.id].sort(), 'both responses are rows in PostgreSQL')
      t.ok(rows.every((r) => r.owner === a.token), 'owned by key A (its hash)')
    }

    const gw2 = await boot()
    const ca2 = new OpenAI({ baseURL: `${gw2.url}/v1`, apiKey: a.key, maxRetries: 0 })
    const cb2 = new OpenAI({ baseURL: `${gw2.url}/v1`, apiKey: b.key, maxRetries: 0 })
    const after = await jsonCall(gw2.url, 'GET', `/v1/responses/${r2.id}`, undefined, a.key)
    t.equal(after.status, 200, 'the new gateway finds it')
    t.same(after.body, before, 'unchanged across the restart')
    const hidden = await cb2.responses.retrieve(r2.id).catch((e) => e)
    t.ok(hidden instanceof OpenAI.NotFoundError, `ownership survives: key B -> 404 (${hidden?.status})`)

    const items = await jsonCall(gw2.url, 'GET', `/v1/responses/${r2.id}/input_items?order=asc`, undefined, a.key)
    t.same(items.body.data.map((it: any) => [it.role, it.content[0].text]),
      [['user', 'Remember the number 7.'], ['assistant', DEFAULT_REPLY], ['user', 'Which number?']], 'input items from the database')

    const r3 = await ca2.responses.create({ model: 'gpt-4o', previous_response_id: r2.id, input: 'And doubled?' })
    t.equal(r3.status, 'completed', 'continued on the new gateway')
    t.same(up.requestsTo('chat').at(-1)!.body.messages, [
      { role: 'user', content: 'Remember the number 7.' },
      { role: 'assistant', content: DEFAULT_REPLY },
      { role: 'user', content: 'Which number?' },
      { role: 'assistant', content: DEFAULT_REPLY },
      { role: 'user', content: 'And doubled?' },
    ], 'the upstream received every earlier turn, without turn 1\'s instructions')

    const del = await jsonCall(gw2.url, 'DELETE', `/v1/responses/${r1.id}`, undefined, a.key)
    t.equal(del.status, 200, 'deleted on the new gateway')
    await gw2.stop()

    // A third start: the delete and the new turn were written through, not kept in the second gateway's memory.
    const gw3 = await boot()
    t.equal((await jsonCall(gw3.url, 'GET', `/v1/responses/${r1.id}`, undefined, a.key)).status, 404, 'the delete persisted')
    const r3again = await jsonCall(gw3.url, 'GET', `/v1/responses/${r3.id}`, undefined, MASTER)
    t.equal(r3again.status, 200, 'the turn made on the second gateway persisted; the master key reads it')
    t.equal(r3again.body.previous_response_id, r2.id)
    await gw3.stop()
  })
}
