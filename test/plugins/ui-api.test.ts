/**
 * The ui plugin's server side through HTTP against a real gateway (SQLite store, auth with a master key, keys, the
 * LiteLLM default plugins, ui): sign-in with the master key or a proxy_admin's key, the session cookie's flags, the
 * cookie on the management API with its CSRF rule, forged/expired/ended sessions, admin-only routes, static files
 * with their CSP, and /ui/api/usage, /ui/api/logs and /ui/api/live from calls to a fake upstream.
 */
import t, { type Test } from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { encodeSession } from '../../plugins/ui/session.js'
import { eventually } from '../e2e/helpers.js'

const MASTER = 'sk-ui-master-key'
const PIPELINE = ['request-id', 'store-sqlite', 'auth', 'keys', 'ui', 'spend', 'rate-limit', 'priority-queue', 'budget', 'mcp', 'router']

interface Reply { status: number; body: any; headers: Headers }

interface UiGateway extends TestGateway {
  /** Moves the gateway's clock (session expiry). */
  advance(ms: number): void
  call(method: string, path: string, o?: { key?: string | null; cookie?: string; csrf?: string; body?: unknown }): Promise<Reply>
  /** POST /ui/login; the cookie (name=value) and the JSON body. */
  login(key: string): Promise<{ status: number; body: any; cookie: string; setCookie: string }>
}

async function startUi(t: Test, up: FakeUpstream, strategy = 'latency-based-routing'): Promise<UiGateway> {
  let offset = 0
  const yaml = `
general_settings: { master_key: ${MASTER} }
router_settings: { routing_strategy: ${strategy} }
pipeline: [${PIPELINE.join(', ')}]
model_list:
  - model_name: gpt-test
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up }
    model_info: { id: dep-1 }
`
  const gw = await startGateway(t, yaml, { clock: { now: () => Date.now() + offset } })
  const call: UiGateway['call'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = {}
    if (o.key) headers.authorization = `Bearer ${o.key}`
    if (o.cookie) headers.cookie = o.cookie
    if (o.csrf) headers['x-csrf-token'] = o.csrf
    let payload: string | undefined
    if (o.body !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(o.body)
    }
    const res = await fetch(`${gw.url}${path}`, { method, headers, body: payload, redirect: 'manual' })
    const text = await res.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: res.status, body, headers: res.headers }
  }
  return {
    ...gw,
    advance: (ms) => void (offset += ms),
    call,
    async login(key) {
      const r = await call('POST', '/ui/login', { body: { key } })
      const setCookie = r.headers.get('set-cookie') ?? ''
      return { status: r.status, body: r.body, setCookie, cookie: setCookie.split(';')[0]! }
    },
  }
}

/** A virtual key whose user has `role` (null: a key without a user), made with the master key. */
async function keyFor(gw: UiGateway, role: string | null, extra: Record<string, unknown> = {}): Promise<{ key: string; token: string }> {
  let userId: string | undefined
  if (role) {
    userId = `u-${role}-${Math.random().toString(36).slice(2, 8)}`
    const u = await gw.call('POST', '/user/new', { key: MASTER, body: { user_id: userId, user_role: role } })
    if (u.status !== 200) throw new Error(`user/new: ${JSON.stringify(u.body)}`)
  }
  const k = await gw.call('POST', '/key/generate', { key: MASTER, body: { ...(userId ? { user_id: userId } : {}), ...extra } })
  if (k.status !== 200) throw new Error(`key/generate: ${JSON.stringify(k.body)}`)
  return { key: k.body.key, token: k.body.token }
}

function chat(gw: UiGateway, key: string, content = 'hello there') {
  return gw.call('POST', '/v1/chat/completions', { key, body: { model: 'gpt-test', messages: [{ role: 'user', content }] } })
}


t.test('sign-in: the master key gets a session cookie (HttpOnly, SameSite=Strict, Path=/) and /ui/session answers', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const before = Date.now()
  const r = await gw.login(MASTER)
  t.equal(r.status, 200, r.status === 200 ? 'ok' : JSON.stringify(r.body))
  t.equal(r.body.role, 'proxy_admin')
  t.match(r.body.csrf, /^[A-Za-z0-9_-]{20,}$/)
  const exp = Date.parse(r.body.expires_at)
  t.ok(exp >= before + 43_200_000 - 1000 && exp <= Date.now() + 43_200_000, 'expires in 12 h (default session_ttl_s)')
  t.match(r.setCookie, /^sy_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+;/)
  for (const flag of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']) t.ok(r.setCookie.split('; ').includes(flag), flag)
  t.notOk(/Secure/.test(r.setCookie), 'no Secure flag over plain http')
  t.notOk(r.setCookie.includes(MASTER), 'the key is not in the cookie')

  const s = await gw.call('GET', '/ui/session', { cookie: r.cookie })
  t.equal(s.status, 200)
  t.same(s.body, r.body, 'the same role, csrf and expiry')
  t.equal((await gw.call('GET', '/ui/session')).status, 401, 'no cookie: not signed in')

  const https = await gw.call('POST', '/ui/login', { body: { key: MASTER }, key: null })
  t.notOk(/Secure/.test(https.headers.get('set-cookie') ?? ''))
  const viaProxy = await fetch(`${gw.url}/ui/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ key: MASTER }),
  })
  t.ok((viaProxy.headers.get('set-cookie') ?? '').split('; ').includes('Secure'), 'Secure behind an https proxy')
})

t.test('sign-in: an admin user\'s key works, a non-admin key is 403, a wrong or missing key 401', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const admin = await keyFor(gw, 'proxy_admin')
  const r = await gw.login(admin.key)
  t.equal(r.status, 200, r.status === 200 ? 'ok' : JSON.stringify(r.body))
  t.equal(r.body.role, 'proxy_admin')
  t.equal((await gw.call('GET', '/ui/session', { cookie: r.cookie })).status, 200)
  t.equal((await gw.call('GET', '/key/list', { cookie: r.cookie })).status, 200, 'the admin key\'s session manages keys')

  const plain = await keyFor(gw, null)
  const np = await gw.login(plain.key)
  t.equal(np.status, 403)
  t.equal(np.body.error.type, 'permission_error')
  t.match(np.body.error.message, /not an admin/)
  t.equal(np.setCookie, '', 'no cookie for a non-admin')
  const viewer = await keyFor(gw, 'proxy_admin_viewer')
  t.equal((await gw.login(viewer.key)).status, 403, 'a viewer is not an admin either')
  const internal = await keyFor(gw, 'internal_user')
  t.equal((await gw.login(internal.key)).status, 403)

  const wrong = await gw.login('sk-wrong-key')
  t.equal(wrong.status, 401)
  t.equal(wrong.body.error.type, 'authentication_error')
  t.equal(wrong.setCookie, '')
  const none = await gw.call('POST', '/ui/login', { body: {} })
  t.equal(none.status, 401)
  t.match(none.body.error.message, /key/)
})

t.test('the cookie on the management API: reads pass, writes need x-csrf-token', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const { cookie, body } = await gw.login(MASTER)
  const list = await gw.call('GET', '/key/list', { cookie })
  t.equal(list.status, 200, list.status === 200 ? '/key/list' : JSON.stringify(list.body))
  t.ok(Array.isArray(list.body.keys))

  const noCsrf = await gw.call('POST', '/key/generate', { cookie, body: { key_alias: 'from-ui' } })
  t.equal(noCsrf.status, 403)
  t.equal(noCsrf.body.error.code, 'csrf_failed')
  const badCsrf = await gw.call('POST', '/key/generate', { cookie, csrf: 'x'.repeat(body.csrf.length), body: { key_alias: 'from-ui' } })
  t.equal(badCsrf.status, 403, 'a wrong token')
  t.equal(badCsrf.body.error.code, 'csrf_failed')
  const ok = await gw.call('POST', '/key/generate', { cookie, csrf: body.csrf, body: { key_alias: 'from-ui' } })
  t.equal(ok.status, 200, ok.status === 200 ? 'with the token' : JSON.stringify(ok.body))
  t.equal(ok.body.key_alias, 'from-ui')
  const listed = await gw.call('GET', '/key/list?return_full_object=true', { cookie })
  t.ok(listed.body.keys.some((k: any) => k.key_alias === 'from-ui'), 'made once, with the token')

  // A key header wins over the cookie: a non-admin key with an admin's cookie stays a non-admin.
  const plain = await keyFor(gw, null)
  t.equal((await gw.call('GET', '/key/list', { cookie, key: plain.key })).status, 403, 'the key decides, not the cookie')
  // The cookie is ignored on model routes.
  const model = await gw.call('POST', '/v1/chat/completions', { cookie, csrf: body.csrf, body: { model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] } })
  t.equal(model.status, 401, 'no model calls on the UI session')
  t.equal(up.requests.length, 0)
})

t.test('forged, expired, logged-out and ended sessions', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  let { cookie } = await gw.login(MASTER)
  const [payload, sig] = cookie.slice('sy_session='.length).split('.') as [string, string]

  // Another subject, signed with the old signature.
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'f'.repeat(64) })).toString('base64url')
  for (const [name, value] of [
    ['payload changed', `${forgedPayload}.${sig}`],
    ['signature changed', `${payload}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`],
    ['no signature', payload],
    ['garbage', 'not-a-session'],
  ] as const) {
    t.equal((await gw.call('GET', '/key/list', { cookie: `sy_session=${value}` })).status, 401, name)
    t.equal((await gw.call('GET', '/ui/session', { cookie: `sy_session=${value}` })).status, 401, `${name}: /ui/session`)
  }
  // Signed with another master key's secret.
  const otherSecret = createHmac('sha256', 'sk-another-master').update('switchyard-ui-session').digest()
  const foreign = encodeSession(otherSecret, { sub: 'master', exp: Math.floor(Date.now() / 1000) + 3600, csrf: 'c'.repeat(32) })
  t.equal((await gw.call('GET', '/key/list', { cookie: `sy_session=${foreign}` })).status, 401, 'another gateway\'s session')
  // Signed with this gateway's secret (HMAC(master_key, label)): accepted, which shows the derivation is the designed one.
  const secret = createHmac('sha256', MASTER).update('switchyard-ui-session').digest()
  const minted = encodeSession(secret, { sub: 'master', exp: Math.floor(Date.now() / 1000) + 3600, csrf: 'c'.repeat(32) })
  t.equal((await gw.call('GET', '/key/list', { cookie: `sy_session=${minted}` })).status, 200, 'same master key, same secret (restarts, replicas)')

  // Logout clears the cookie.
  const out = await gw.call('POST', '/ui/logout', { cookie })
  t.equal(out.status, 200)
  t.same(out.body, {})
  const cleared = out.headers.get('set-cookie') ?? ''
  t.match(cleared, /^sy_session=;/)
  t.ok(cleared.split('; ').includes('Max-Age=0'), 'Max-Age=0')
  t.equal((await gw.call('GET', '/key/list', { cookie })).status, 401, 'a copy of the signed-out cookie no longer works')
  t.equal((await gw.call('GET', '/ui/session', { cookie })).status, 401)

  // Expiry, by the gateway's clock.
  ;({ cookie } = await gw.login(MASTER))
  t.equal((await gw.call('GET', '/key/list', { cookie })).status, 200, 'valid before its expiry')
  gw.advance(43_200_000 + 1000)
  const expired = await gw.call('GET', '/key/list', { cookie })
  t.equal(expired.status, 401, 'expired after session_ttl_s')
  t.equal((await gw.call('GET', '/ui/session', { cookie })).status, 401)
})

t.test('a blocked admin key\'s session ends at once; so does a role change', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const admin = await keyFor(gw, 'proxy_admin')
  const { cookie } = await gw.login(admin.key)
  t.equal((await gw.call('GET', '/key/list', { cookie })).status, 200)
  t.equal((await gw.call('POST', '/key/block', { key: MASTER, body: { key: admin.key } })).status, 200)
  const after = await gw.call('GET', '/key/list', { cookie })
  t.equal(after.status, 401, 'blocked: the next request is refused')
  t.equal((await gw.call('GET', '/ui/session', { cookie })).status, 401)
  t.equal((await gw.call('POST', '/key/unblock', { key: MASTER, body: { key: admin.key } })).status, 200)
  t.equal((await gw.call('GET', '/key/list', { cookie })).status, 200, 'unblocked: the (unexpired) session works again')

  const other = await keyFor(gw, 'proxy_admin')
  const s2 = await gw.login(other.key)
  t.equal((await gw.call('GET', '/ui/api/live', { cookie: s2.cookie })).status, 200)
  const userId = (await gw.call('GET', `/key/info?key=${other.key}`, { key: MASTER })).body.info.user_id
  t.equal((await gw.call('POST', '/user/update', { key: MASTER, body: { user_id: userId, user_role: 'internal_user' } })).status, 200)
  t.equal((await gw.call('GET', '/ui/api/live', { cookie: s2.cookie })).status, 401, 'no longer an admin: the session ended')
  t.equal((await gw.call('POST', '/key/delete', { key: MASTER, body: { keys: [admin.key] } })).status, 200)
  t.equal((await gw.call('GET', '/key/list', { cookie })).status, 401, 'deleted key: the session ended')
})

/** The admin-only routes the UI calls: 401 without credentials, 403 for a non-admin key. */
const ADMIN_ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['GET', '/ui/api/live'], ['GET', '/ui/api/usage'], ['GET', '/ui/api/logs'], ['GET', '/ui/api/logs/some-request-id'],
  ['GET', '/key/list'], ['POST', '/key/generate'], ['POST', '/key/update'], ['POST', '/key/delete'], ['POST', '/key/block'],
  ['POST', '/key/unblock'], ['POST', '/key/regenerate'],
  ['GET', '/team/list'], ['GET', '/team/info?team_id=x'], ['POST', '/team/new'], ['POST', '/team/update'], ['POST', '/team/delete'],
  ['POST', '/team/block'], ['POST', '/team/unblock'], ['POST', '/team/member_add'], ['POST', '/team/member_delete'],
  ['GET', '/user/list'], ['POST', '/user/new'], ['POST', '/user/update'], ['POST', '/user/delete'],
  ['GET', '/customer/list'], ['GET', '/customer/info?end_user_id=x'], ['POST', '/customer/new'], ['POST', '/customer/update'],
  ['POST', '/customer/delete'], ['POST', '/customer/block'], ['POST', '/customer/unblock'],
  ['GET', '/budget/list'], ['POST', '/budget/info'], ['POST', '/budget/new'], ['POST', '/budget/update'], ['POST', '/budget/delete'],
  ['POST', '/model/new'], ['POST', '/model/update'], ['POST', '/model/delete'],
  ['GET', '/spend/logs'], ['GET', '/global/spend/report?start_date=2024-01-01&end_date=2024-01-02'], ['GET', '/global/spend/keys'],
  ['GET', '/global/spend/teams'], ['GET', '/global/spend/models'],
  ['GET', '/queue/status'], ['POST', '/v1/mcp/server'],
]

t.test('every admin route the UI uses: 401 without credentials, 403 for a non-admin key, 200-ish for the session', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const plain = await keyFor(gw, null)
  const internal = await keyFor(gw, 'internal_user')
  const { cookie } = await gw.login(MASTER)
  for (const [method, path] of ADMIN_ROUTES) {
    const body = method === 'POST' ? {} : undefined
    const anon = await gw.call(method, path, { body })
    t.equal(anon.status, 401, `${method} ${path} without credentials`)
    t.equal(anon.body?.error?.type, 'authentication_error', `${method} ${path}: OpenAI-shaped 401`)
    for (const k of [plain, internal]) {
      const r = await gw.call(method, path, { body, key: k.key })
      t.equal(r.status, 403, `${method} ${path} with a non-admin key`)
      t.equal(r.body?.error?.type, 'permission_error', `${method} ${path}: OpenAI-shaped 403`)
    }
    if (method === 'GET') {
      const s = await gw.call(method, path, { cookie })
      t.notOk(s.status === 401 || s.status === 403, `${method} ${path} with the session: ${s.status}`)
    } else {
      t.equal((await gw.call(method, path, { body, cookie })).status, 403, `${method} ${path}: the session without CSRF token`)
    }
  }
})

t.test('/ui and the vendored modules: content types, CSP, caching', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const html = readFileSync(new URL('../../plugins/ui/static/index.html', import.meta.url), 'utf8')
  for (const path of ['/ui', '/ui/', '/ui/index.html']) {
    const r = await gw.call('GET', path)
    t.equal(r.status, 200, path)
    t.equal(r.headers.get('content-type'), 'text/html; charset=utf-8')
    t.equal(r.body, html, 'index.html as on disk')
    t.equal(r.headers.get('cache-control'), 'no-cache')
    const csp = r.headers.get('content-security-policy') ?? ''
    for (const d of ["default-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'"]) {
      t.ok(csp.includes(d), `CSP has ${d}`)
    }
    t.notOk(csp.includes('unsafe-inline'), 'no unsafe-inline')
    const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)
    if (map) t.ok(csp.includes(`'sha256-${createHash('sha256').update(map[1]!).digest('base64')}'`), 'the import map allowed by its hash')
    t.equal(r.headers.get('x-content-type-options'), 'nosniff')
    const etag = r.headers.get('etag')
    t.ok(etag)
    const again = await fetch(`${gw.url}${path}`, { headers: { 'if-none-match': etag! } })
    t.equal(again.status, 304, 'unchanged: 304')
  }
  const require = createRequire(import.meta.url)
  const vendor: Array<[string, string]> = [
    ['/ui/vendor/preact.mjs', join(dirname(require.resolve('preact')), 'preact.mjs')],
    ['/ui/vendor/hooks.mjs', join(dirname(require.resolve('preact/hooks')), 'hooks.mjs')],
    ['/ui/vendor/htm.mjs', join(dirname(require.resolve('htm')), 'htm.module.js')],
  ]
  for (const [path, file] of vendor) {
    const r = await gw.call('GET', path)
    t.equal(r.status, 200, path)
    t.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8')
    t.match(r.headers.get('cache-control'), /max-age=\d+/)
    t.ok(r.headers.get('content-security-policy'))
    t.equal(r.body, readFileSync(file, 'utf8'), `${path} is the package's browser build`)
    t.match(r.body, /\bexport\b/, 'an ES module')
  }
  for (const path of ['/ui/vendor/nope.mjs', '/ui/nope.js', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui/.hidden']) {
    t.equal((await gw.call('GET', path)).status, 404, `${path}: 404`)
  }
  t.equal((await gw.call('POST', '/ui/index.html')).status, 405, 'static files are GET only')
})

t.test('/ui/api/usage, /ui/api/logs and /ui/api/live report the calls made', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up)
  const k = await keyFor(gw, null, { key_alias: 'usage-key', rpm_limit: 100, tpm_limit: 100_000 })
  const ids: string[] = []
  for (const content of ['one', 'two']) {
    const r = await chat(gw, k.key, content)
    t.equal(r.status, 200, r.status === 200 ? 'ok' : JSON.stringify(r.body))
    ids.push(r.headers.get('x-request-id')!)
  }
  const m = await chat(gw, MASTER, 'from the master key')
  t.equal(m.status, 200)
  t.equal(up.requests.length, 3)
  const { cookie } = await gw.login(MASTER)

  const all = await eventually(async () => {
    const r = await gw.call('GET', '/ui/api/logs', { cookie })
    return r.status === 200 && r.body.total === 3 ? r.body : null
  }, 10_000, 'three spend rows')
  t.equal(all.rows.length, 3)
  t.ok(all.rows.every((r: any) => r.model_group === 'gpt-test' && r.status === 'success'))

  const mine = await gw.call('GET', `/ui/api/logs?api_key=${k.key}`, { cookie })
  t.equal(mine.body.total, 2, 'filtered by the clear key (hashed)')
  t.same(new Set(mine.body.rows.map((r: any) => r.request_id)), new Set(ids))
  t.equal((await gw.call('GET', `/ui/api/logs?api_key=${k.token}`, { cookie })).body.total, 2, 'or by its hash')
  const paged = await gw.call('GET', '/ui/api/logs?limit=1&offset=1', { cookie })
  t.equal(paged.body.rows.length, 1)
  t.equal(paged.body.total, 3, 'total counts every matching row')
  t.equal((await gw.call('GET', '/ui/api/logs?status=failure', { cookie })).body.total, 0)
  t.equal((await gw.call('GET', '/ui/api/logs?model_group=other', { cookie })).body.total, 0)
  t.equal((await gw.call('GET', '/ui/api/logs?limit=0', { cookie })).status, 400, 'limit out of range')

  const one = await gw.call('GET', `/ui/api/logs/${ids[0]}`, { cookie })
  t.equal(one.status, 200)
  t.equal(one.body.request_id, ids[0])
  t.equal(one.body.key_alias, 'usage-key')
  t.equal(one.body.key_name, `sk-...${k.key.slice(-4)}`)
  t.equal(one.body.api_key, k.token)
  t.ok(one.body.duration_ms >= 0)
  t.equal((await gw.call('GET', '/ui/api/logs/no-such-request', { cookie })).status, 404)

  const usage = await gw.call('GET', '/ui/api/usage', { cookie })
  t.equal(usage.status, 200, usage.status === 200 ? '/ui/api/usage' : JSON.stringify(usage.body))
  const u = usage.body
  const spend = all.rows.reduce((s: number, r: any) => s + r.spend, 0)
  t.ok(spend > 0, 'the calls were priced')
  t.equal(u.totals.calls, 3)
  t.ok(Math.abs(u.totals.spend - spend) < 1e-12, 'total spend = the rows\' spend')
  t.equal(u.totals.prompt_tokens, all.rows.reduce((s: number, r: any) => s + r.prompt_tokens, 0))
  t.equal(u.totals.completion_tokens, all.rows.reduce((s: number, r: any) => s + r.completion_tokens, 0))
  t.ok(u.totals.prompt_tokens > 0 && u.totals.completion_tokens > 0)
  t.equal(u.days.length, 30, 'the last 30 days by default')
  const today = new Date().toISOString().slice(0, 10)
  t.equal(u.days.at(-1).date, today)
  t.equal(u.days.at(-1).calls, 3)
  const byKey = u.by_key.find((r: any) => r.api_key === k.token)
  t.match(byKey, { key_alias: 'usage-key', calls: 2 })
  t.equal(u.by_key.reduce((s: number, r: any) => s + r.calls, 0), 3)
  t.match(u.by_model, [{ model_group: 'gpt-test', calls: 3 }])
  t.match(u.by_provider, [{ provider: 'openai', calls: 3 }])
  t.equal(u.by_team.length, 1, 'no teams: one unassigned group')
  const ranged = await gw.call('GET', `/ui/api/usage?start_date=${today}&end_date=${today}`, { cookie })
  t.equal(ranged.body.days.length, 1)
  t.equal(ranged.body.totals.calls, 3)
  const past = await gw.call('GET', '/ui/api/usage?start_date=2020-01-01&end_date=2020-01-31', { cookie })
  t.equal(past.body.totals.calls, 0, 'nothing outside the window')
  t.equal((await gw.call('GET', '/ui/api/usage?start_date=2020-02-01&end_date=2020-01-01', { cookie })).status, 400)

  const live = await gw.call('GET', '/ui/api/live', { cookie })
  t.equal(live.status, 200, live.status === 200 ? '/ui/api/live' : JSON.stringify(live.body))
  const l = live.body
  t.ok(Math.abs(Date.parse(l.at) - Date.now()) < 5000)
  t.equal(l.in_flight, 0, 'nothing in flight now')
  t.ok(l.queue && typeof l.queue === 'object', 'the priority queue\'s /queue/status body')
  t.same(l.queue, (await gw.call('GET', '/queue/status', { key: MASTER })).body)
  t.match(l.deployments, [{ model_group: 'gpt-test', id: 'dep-1', provider: 'openai', model: 'gpt-4o-mini', cooling: false, cooldown_until: null, rpm_used: 3 }])
  t.ok(l.deployments[0].tpm_used > 0, 'tokens this minute, from the router')
  t.type(l.deployments[0].latency_ms_avg, 'number', 'latency from the router (latency-based-routing keeps it)')
  const rl = l.rate_limits.find((r: any) => r.scope === 'key' && r.id === k.token)
  t.match(rl, { rpm_limit: 100, rpm_used: 2, tpm_limit: 100_000, parallel_limit: null, parallel_used: 0 })
  t.ok(rl.tpm_used > 0)
})

t.test('/ui/api/live counts each deployment\'s minute itself when the router keeps no stats (simple-shuffle)', async (t) => {
  const up = await startUpstream(t)
  const gw = await startUi(t, up, 'simple-shuffle')
  const { cookie } = await gw.login(MASTER)
  // Mid-minute on the gateway's clock, so the two calls count in one minute.
  gw.advance(30_000 - (Date.now() % 60_000))
  for (let i = 0; i < 2; i++) t.equal((await chat(gw, MASTER)).status, 200)
  const l = await eventually(async () => {
    const b = (await gw.call('GET', '/ui/api/live', { cookie })).body
    return b.deployments?.[0]?.rpm_used === 2 ? b : null
  }, 10_000, 'two calls counted')
  t.ok(l.deployments[0].tpm_used > 0, 'with their tokens')
  t.type(l.deployments[0].latency_ms_avg, 'number', 'and their latency')
  gw.advance(60_000)
  const next = (await gw.call('GET', '/ui/api/live', { cookie })).body
  t.equal(next.deployments[0].rpm_used, 0, 'a new minute starts at 0')
})

t.test('without a master key there is no UI sign-in', async (t) => {
  const up = await startUpstream(t)
  const gw = await startGateway(t, `
pipeline: [request-id, store-sqlite, auth, keys, ui, router]
model_list:
  - model_name: gpt-test
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up }
`)
  const r = await fetch(`${gw.url}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'anything' }) })
  t.equal(r.status, 401)
  const body = await r.json() as any
  t.match(body.error.message, /master_key/)
  t.equal(body.error.code, 'ui_needs_master_key')
  t.equal(r.headers.get('set-cookie'), null)
  const s = await fetch(`${gw.url}/ui/session`)
  t.equal(s.status, 401)
  t.equal(((await s.json()) as any).error.code, 'ui_needs_master_key')
  t.equal((await fetch(`${gw.url}/ui`)).status, 200, 'the page itself is served (it says how to enable sign-in)')
})
