/**
 * keys plugin, bad input on every route: malformed JSON, bodies that are not objects, wrong types, nulls, negative
 * and huge numbers, bad durations and dates, unknown ids. Every answer is a 4xx in the OpenAI error shape (400s
 * name the field in `param`), never a 500, and the gateway keeps serving.
 */
import t from 'tap'
import { startKeysGateway } from './keys-harness.js'

const WEIRD: unknown[] = [null, -1, 'str', [], {}, true, 1e308, [{ a: 1 }], '']
const FIELDS = ['key', 'keys', 'key_aliases', 'team_id', 'team_ids', 'user_id', 'user_ids', 'user_email', 'id', 'budget_id', 'budgets',
  'max_budget', 'spend', 'duration', 'budget_duration', 'models', 'metadata', 'member', 'model_name', 'litellm_params', 'model_info',
  'model_max_budget', 'expires', 'blocked', 'user_role', 'tpm_limit', 'budget_reset_at', 'auto_create_key', 'default_model']
const MANAGEMENT = /^\/(key|team|user|customer|end_user|budget|spend|global)\/|^\/model\/(new|update|delete)$/

t.test('every management route answers bad input with a 4xx, never a 500', async (t) => {
  const gw = await startKeysGateway(t, { storeModelInDb: true, bodyLimit: '1mb' })
  // Something to find, so ids that exist are exercised too.
  await gw.post('/team/new', { team_id: 'str' })
  await gw.post('/user/new', { user_id: 'str', auto_create_key: false })
  await gw.post('/budget/new', { budget_id: 'str' })
  await gw.post('/customer/new', { user_id: 'str' })

  const routes = ((await gw.get('/routes')).body.routes as Array<{ path: string; methods: string[] }>)
    .filter((r) => MANAGEMENT.test(r.path))
  t.ok(routes.length >= 45, `all management routes listed (${routes.length})`)
  let checked = 0
  for (const r of routes) {
    const method = r.methods[0] as 'GET' | 'POST'
    const path = r.path.replace(':key', 'sk-not-a-real-key')
    if (method === 'POST') {
      for (const raw of ['{not json', '[1]', '"text"', '42', 'null']) {
        const res = await gw.call('POST', path, raw)
        t.ok(res.status === 400 || res.status === 404, `${path} body ${raw}: ${res.status}`)
        t.type(res.body.error?.message, 'string')
        checked++
      }
      // Each field with three of the odd values (rotated, so every value meets every field over the routes), then
      // every field at once with each value.
      const bodies: Array<Record<string, unknown>> = []
      FIELDS.forEach((field, i) => {
        for (let j = 0; j < 3; j++) bodies.push({ [field]: WEIRD[(i + j * 3 + routes.indexOf(r)) % WEIRD.length] })
      })
      for (const v of WEIRD) bodies.push(Object.fromEntries(FIELDS.map((f) => [f, v])))
      for (const body of bodies) {
        const res = await gw.post(path, body)
        if (res.status >= 500) t.fail(`${path} ${JSON.stringify(body)} -> ${res.status} ${JSON.stringify(res.body)}`)
        if (res.status >= 400) t.type(res.body.error?.message, 'string', `${path}: an OpenAI-shaped error`)
        if (res.status === 400 && res.body.error.code === 'invalid_value') t.type(res.body.error.param, 'string', `${path} names the field`)
        checked++
      }
    } else {
      for (const q of ['page=-1', 'size=abc', 'page_size=0', 'limit=-5', 'start_date=yesterday&end_date=today', 'return_full_object=2',
        'team_id=', 'user_id=%00', 'end_user_id=nope', 'key=sk-x', 'group_by=x&start_date=2024-01-01&end_date=2024-01-02']) {
        const res = await gw.get(`${path}?${q}`)
        t.ok(res.status < 500, `${path}?${q}: ${res.status}`)
        checked++
      }
    }
  }
  t.ok(checked > 3000, `${checked} bad requests answered`)
  t.equal((await gw.get('/key/list')).status, 200, 'the gateway still serves')

  const tooBig = await gw.call('POST', '/key/generate', JSON.stringify({ metadata: { blob: 'x'.repeat(2 * 1024 * 1024) } }))
  t.equal(tooBig.status, 413, 'a body over server.body_limit')
})
