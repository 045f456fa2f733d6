/**
 * auth: master key and static keys, from every header the official SDKs use; the principal it sets; an open
 * gateway without keys; public health routes.
 */
import t from 'tap'
import { definePlugin } from '../../core/plugin.js'
import { startGateway } from '../helpers/gateway.js'
import { extractKey } from '../../plugins/auth/index.js'

// Echoes the principal the auth plugin set, so the test can see who the gateway thinks is calling.
const whoami = definePlugin({
  name: 'whoami',
  dependencies: ['auth'],
  middleware() {
    return async function whoami(ctx, next) {
      ctx.set('x-principal', `${ctx.state.principal?.kind}:${ctx.state.principal?.id}`)
      return next()
    }
  },
})

const models = 'model_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n'

t.test('master key and static keys; each header clients use', async (t) => {
  const gw = await startGateway(t, `pipeline: [request-id, { auth: { master_key: sk-master, keys: [sk-team-a] } }, whoami, router]\n${models}`, { plugins: [whoami] })
  const get = (headers: Record<string, string>) => fetch(`${gw.url}/v1/models`, { headers })
  const master = await get({ authorization: 'Bearer sk-master' })
  t.equal(master.status, 200)
  t.equal(master.headers.get('x-principal'), 'master:master')
  for (const h of ['authorization', 'api-key', 'x-api-key', 'x-goog-api-key', 'x-litellm-api-key']) {
    const res = await get({ [h]: h === 'authorization' ? 'Bearer sk-team-a' : 'sk-team-a' })
    t.equal(res.status, 200, `static key via ${h}`)
    t.match(res.headers.get('x-principal') ?? '', /^key:[0-9a-f]{16}$/, 'a key principal named by its hash, never the key')
  }
  const wrong = await get({ authorization: 'Bearer sk-team-b' })
  t.equal(wrong.status, 401)
  t.match(((await wrong.json()) as { error: { message: string } }).error.message, /Invalid proxy server token/)
  t.equal((await get({})).status, 401, 'no key')
  t.equal((await fetch(`${gw.url}/health/liveliness`)).status, 200, 'health needs no key')
  t.equal((await fetch(`${gw.url}/health/readiness`)).status, 200)
})

t.test('no master key and no keys: open, every caller anonymous', async (t) => {
  const gw = await startGateway(t, `pipeline: [auth, whoami, router]\n${models}`, { plugins: [whoami] })
  const res = await fetch(`${gw.url}/v1/models`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-principal'), 'anonymous:anonymous')
})

t.test('extractKey reads Bearer (any case), Basic-less raw values and the vendor headers', async (t) => {
  t.equal(extractKey({ authorization: 'Bearer abc' }), 'abc')
  t.equal(extractKey({ authorization: 'bearer  abc ' }), 'abc')
  t.equal(extractKey({ authorization: 'abc' }), 'abc', 'a bare value (LiteLLM accepts it)')
  t.equal(extractKey({ 'x-api-key': 'k' }), 'k')
  t.equal(extractKey({ authorization: '', 'api-key': 'az' }), 'az')
  t.equal(extractKey({}), undefined)
})
