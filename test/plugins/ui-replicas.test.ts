/**
 * The admin UI's session across replicas: two real gateways on one real redis-server. A session made on one works on
 * the other (the cookie is signed with HMAC(master_key, label), no shared state needed); signing out on one ends it
 * on the other too, through state-redis's relay of `session.revoked`.
 */
import t, { type Test } from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { eventually } from '../e2e/helpers.js'

const MASTER = 'sk-ui-replica-master'

async function replica(t: Test, redisUrl: string): Promise<TestGateway> {
  return startGateway(t, `
general_settings: { master_key: ${MASTER} }
pipeline: [{ state-redis: { url: '${redisUrl}' } }, request-id, auth, ui]
model_list: [{ model_name: m, litellm_params: { model: mock/m } }]
`)
}

async function status(gw: TestGateway, method: string, path: string, cookie: string): Promise<number> {
  const res = await fetch(`${gw.url}${path}`, { method, headers: { cookie } })
  await res.arrayBuffer()
  return res.status
}

t.test('a session made on one replica works on the other; signing out on one ends it on both', async (t) => {
  const redis = await startRedis(t)
  const a = await replica(t, redis.url)
  const b = await replica(t, redis.url)

  const login = await fetch(`${a.url}/ui/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: MASTER }),
  })
  t.equal(login.status, 200, 'signed in on A')
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
  t.match(cookie, /^sy_session=.+/)

  t.equal(await status(a, 'GET', '/ui/session', cookie), 200, 'valid on A')
  t.equal(await status(b, 'GET', '/ui/session', cookie), 200, 'and on B, which never saw the sign-in')

  // A copy of the cookie kept by someone else: sign out on A, then B must refuse the copy.
  t.equal(await status(a, 'POST', '/ui/logout', cookie), 200, 'signed out on A')
  t.equal(await status(a, 'GET', '/ui/session', cookie), 401, 'A refuses it at once')
  await eventually(async () => (await status(b, 'GET', '/ui/session', cookie)) === 401, 10_000, 'B to refuse the signed-out session')
  t.equal(await status(b, 'GET', '/ui/session', cookie), 401, 'B refuses it too (relayed as session.revoked)')
  t.equal(await status(b, 'POST', '/ui/logout', cookie), 401, 'and there is nothing left to sign out of on B')
})
