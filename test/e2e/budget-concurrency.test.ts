/**
 * Budgets are exact under concurrency, on both stores and in both modes. 200 calls at once (half streamed) through
 * the official client, over keys with their own budgets, a team shared by two keys, a user's budget and a new end
 * user under litellm_settings.max_end_user_budget:
 * - strict: no budget is ever passed (the worst case is reserved before each call);
 * - estimate: a budget is passed by at most what the calls admitted at the same time under-estimated;
 * - every call leaves one spend row (refused ones as failures), and the rows' costs sum to each key's, team's,
 *   user's and end user's stored spend.
 */
import t from 'tap'
import OpenAI from 'openai'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway } from '../helpers/gateway.js'
import { chatChunks, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { startPostgres } from '../helpers/postgres.js'
import { admin, deployment, eventually, generateKey, INPUT_PRICE, MASTER, OUTPUT_PRICE } from './helpers.js'

/** Replies with min(max_tokens, 8) tokens ("abc " per token, as the fake counts 4 characters a token). */
const REPLY_TOKENS = 8
function reply(body: any): string {
  const n = Math.min(typeof body?.max_tokens === 'number' && body.__honour ? body.max_tokens : REPLY_TOKENS, REPLY_TOKENS)
  return 'abc '.repeat(n).trimEnd()
}
function priced(honourMaxTokens: boolean): Behaviour {
  return (ctx) => {
    const body = ctx.record.body
    if (honourMaxTokens) body.__honour = true
    const content = reply(body)
    const res = ctx.res
    if (body?.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const c of chatChunks(body, content)) res.write(`data: ${JSON.stringify(c)}\n\n`)
      res.end('data: [DONE]\n\n')
      return
    }
    const prompt = body.messages.map((m: any) => m.content).join('\n')
    const p = Math.max(1, Math.ceil(prompt.length / 4))
    const c = Math.max(1, Math.ceil(content.length / 4))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({
      id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
    }))
  }
}

const pg = await startPostgres(t)
const CALLS = 200
/** The cost of one call the fake answers in full: 1 prompt token ("hi") + 8 completion tokens. */
const FULL_COST = INPUT_PRICE + REPLY_TOKENS * OUTPUT_PRICE

const BUDGETS = { k1: 0.3, team: 0.4, user: 0.3, endUser: 0.2 }

for (const store of ['sqlite', 'postgres'] as const) {
  for (const mode of ['strict', 'estimate'] as const) {
    t.test(`${CALLS} concurrent calls, ${mode} mode, ${store}`, async (t) => {
      // strict: the fake honours max_tokens (the provider contract the worst case relies on).
      // estimate: the fake ignores it and answers 8 tokens for an estimate of 4, so calls cost more than reserved.
      const up = await startUpstream(t, { chat: priced(mode === 'strict') })
      const dataDir = mkdtempSync(join(tmpdir(), 'sy-conc-'))
      const db = store === 'postgres' ? await pg.createDatabase() : ''
      const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
  budget_mode: ${mode}
${store === 'postgres' ? `  database_url: ${pg.urlFor(db)}\n` : ''}litellm_settings:
  max_end_user_budget: ${BUDGETS.endUser}
model_list:
${deployment('gpt-4o-mini', up.url)}`, { env: { SWITCHYARD_DATA_DIR: dataDir } })

      const team = await admin(gw.url, 'POST', '/team/new', { team_alias: 'conc', max_budget: BUDGETS.team })
      t.equal(team.status, 200, 'team/new')
      const teamId = team.body.team_id
      const user = await admin(gw.url, 'POST', '/user/new', { user_id: `u-${mode}`, max_budget: BUDGETS.user, auto_create_key: false })
      t.equal(user.status, 200, 'user/new')
      const k1 = await generateKey(t, gw.url, { max_budget: BUDGETS.k1 })
      const k2a = await generateKey(t, gw.url, { team_id: teamId })
      const k2b = await generateKey(t, gw.url, { team_id: teamId })
      const k3 = await generateKey(t, gw.url, { user_id: `u-${mode}` })
      const endUser = `eu-${mode}-${store}`
      const plan = Array.from({ length: CALLS }, (_, i) => {
        const which = i % 5
        const key = [k1, k2a, k2b, k3, k2a][which]!
        return { key, user: which === 4 ? endUser : undefined, stream: i % 2 === 0 }
      })

      const results = await Promise.all(plan.map(async (p) => {
        const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: p.key.key, maxRetries: 0, timeout: 30_000 })
        const req = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: mode === 'strict' ? 8 : 4, ...(p.user ? { user: p.user } : {}) }
        try {
          if (p.stream) {
            const s = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } })
            for await (const _ of s) { /* drain */ }
          } else {
            await client.chat.completions.create(req)
          }
          return 'ok'
        } catch (e: any) {
          if (e?.status === 400 && /budget/i.test(e.message)) return 'budget'
          throw e
        }
      }))
      const ok = results.filter((r) => r === 'ok').length
      const refused = results.filter((r) => r === 'budget').length
      t.equal(ok + refused, CALLS, `every call either served or refused for budget (${ok} served, ${refused} refused)`)
      t.ok(refused > 0, 'budgets were reached')
      t.ok(ok > 0, 'calls were served')

      // Every call leaves exactly one row; the served ones carry their cost.
      const rows: any[] = await eventually(async () => {
        const r = await admin(gw.url, 'GET', '/spend/logs?limit=10000')
        const list = Array.isArray(r.body) ? r.body : r.body?.data
        return Array.isArray(list) && list.length >= CALLS ? list : undefined
      }, 15_000, `${CALLS} spend rows`)
      t.equal(rows.length, CALLS, 'one spend row per call')
      t.equal(new Set(rows.map((r) => r.request_id)).size, CALLS, 'no row twice')
      t.equal(rows.filter((r) => r.status === 'success').length, ok, 'success rows = calls served')
      const sum = (f: (r: any) => boolean) => rows.filter(f).reduce((a, r) => a + Number(r.spend), 0)

      const spendOf = async (path: string, pick: (b: any) => number) => pick((await admin(gw.url, 'GET', path)).body)
      const scopes = [
        { name: 'k1', max: BUDGETS.k1, rows: (r: any) => r.api_key === k1.token, stored: () => spendOf(`/key/info?key=${k1.token}`, (b) => b.info.spend) },
        { name: 'team', max: BUDGETS.team, rows: (r: any) => r.team_id === teamId, stored: () => spendOf(`/team/info?team_id=${teamId}`, (b) => b.team_info.spend) },
        { name: 'user', max: BUDGETS.user, rows: (r: any) => r.user === `u-${mode}`, stored: () => spendOf(`/user/info?user_id=u-${mode}`, (b) => b.user_info?.spend ?? b.spend) },
        { name: 'end user', max: BUDGETS.endUser, rows: (r: any) => r.end_user === endUser, stored: () => spendOf(`/customer/info?end_user_id=${endUser}`, (b) => b.spend) },
      ]
      // Estimate mode: a call is admitted while spend + reserved < max, holding its estimate (1 + 4 tokens), so at most
      // max / estimate + 1 calls are in flight when a budget is crossed; each costs FULL_COST - estimate more than held.
      const estimate = INPUT_PRICE + 4 * OUTPUT_PRICE
      for (const s of scopes) {
        const fromRows = sum(s.rows)
        const stored = await eventually(async () => {
          const v = await s.stored()
          return Math.abs(v - fromRows) < 1e-9 ? { v } : undefined
        }, 10_000, `${s.name} stored spend = rows`)
        t.ok(Math.abs(stored.v - fromRows) < 1e-9, `${s.name}: stored spend ${stored.v} = sum of its rows ${fromRows}`)
        t.ok(fromRows > 0, `${s.name} was charged`)
        if (mode === 'strict') {
          t.ok(fromRows <= s.max + 1e-9, `${s.name}: strict never passes the budget (${fromRows} <= ${s.max})`)
        } else {
          const inflight = Math.floor(s.max / estimate) + 1
          const bound = s.max + inflight * (FULL_COST - estimate) + FULL_COST
          t.ok(fromRows <= bound, `${s.name}: estimate overshoot bounded (${fromRows} <= ${bound.toFixed(4)})`)
        }
      }
      // Each key's spend also equals its rows (keys k2a/k2b share the team budget).
      for (const k of [k2a, k2b, k3]) {
        const info = await admin(gw.url, 'GET', `/key/info?key=${k.token}`)
        t.ok(Math.abs(info.body.info.spend - sum((r) => r.api_key === k.token)) < 1e-9, 'key spend = its rows')
      }
    })
  }
}
