/**
 * state-redis: two real gateways (two containers, two event buses) on one real redis-server. The relay delivers an
 * event to the other replica once and never echoes it; the client survives a Redis restart and the relay works again
 * afterwards; an outage is logged once; stop() closes both connections.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import stateRedis, { connectionOf } from '../../plugins/state-redis/index.js'
import type { EventName, GatewayEvents } from '../../core/events.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { freePort, startRedis } from '../helpers/redis.js'

const MODELS = 'model_list: [{ model_name: m, litellm_params: { model: mock/m } }]\n'
const CHANNEL = 'sy:events'

async function gateway(t: Test, options: string, env: Record<string, string | undefined> = {}): Promise<TestGateway> {
  return startGateway(t, `pipeline: [{ state-redis: ${options} }]\n${MODELS}`, { plugins: [stateRedis], env })
}

/** Every payload a bus emitted for an event, in order. */
function record<E extends EventName>(gw: TestGateway, event: E): Array<GatewayEvents[E]> {
  const seen: Array<GatewayEvents[E]> = []
  gw.gateway.container.cradle.events.on(event, (p) => void seen.push(p))
  return seen
}

/** Poll a condition (bounded: 10 s); the relay is asynchronous by nature. */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function rawClient(t: Test, url: string): Promise<Redis> {
  const c = new Redis(url, { lazyConnect: true })
  c.on('error', () => {})
  await c.connect()
  t.teardown(() => { c.disconnect() })
  return c
}

const subscribers = async (raw: Redis) => Number(((await raw.pubsub('NUMSUB', CHANNEL)) as [string, number])[1])

t.test('two gateways relay invalidate to each other once, never echo', async (t) => {
  const redis = await startRedis(t)
  const a = await gateway(t, `{ url: '${redis.url}' }`)
  const b = await gateway(t, `{ url: '${redis.url}' }`)
  const raw = await rawClient(t, redis.url)
  t.equal(await subscribers(raw), 2, 'both subscribed once start() returned')

  // A third party counts what crosses the channel.
  const wire = await rawClient(t, redis.url)
  const onWire: string[] = []
  wire.on('message', (_ch: string, m: string) => void onWire.push(m))
  await wire.subscribe(CHANNEL)

  const seenA = record(a, 'invalidate')
  const seenB = record(b, 'invalidate')
  a.gateway.container.cradle.events.emit('invalidate', { kind: 'key', id: 'hash-1' })
  await until('b to receive the event', () => seenB.length > 0)
  t.same(seenB, [{ kind: 'key', id: 'hash-1', remote: true }], 'b re-emits it locally, marked remote')

  // A probe published on b's own connection after b handled the event: if b had echoed it, the echo would reach the
  // channel (and a) before the probe, since one connection's commands run in order.
  const seenModelsA = record(a, 'models.changed')
  const seenModelsB = record(b, 'models.changed')
  await b.gateway.container.cradle.redis!.publish(CHANNEL, JSON.stringify({ from: 'probe', event: 'models.changed', payload: {} }))
  await until('the probe on both', () => seenModelsA.length === 1 && seenModelsB.length === 1 && onWire.length === 2)
  t.same(seenA, [{ kind: 'key', id: 'hash-1' }], 'a saw its own event once, no echo came back')
  t.same(seenB, [{ kind: 'key', id: 'hash-1', remote: true }], 'b saw it once')
  t.equal(onWire.length, 2, 'one relay message and the probe crossed the channel, no re-publish')
  t.match(JSON.parse(onWire[0]!), { event: 'invalidate', payload: { kind: 'key', id: 'hash-1' } })
  t.same(seenModelsA, [{ remote: true }])

  // The other direction, and the other relayed events.
  const resetsA = record(a, 'budget.reset')
  b.gateway.container.cradle.events.emit('budget.reset', { kind: 'team', id: 't1' })
  b.gateway.container.cradle.events.emit('invalidate', { kind: 'team', id: 't1' })
  await until('a to receive both', () => resetsA.length === 1 && seenA.length === 2)
  t.same(resetsA, [{ kind: 'team', id: 't1', remote: true }])
  t.same(seenA[1], { kind: 'team', id: 't1', remote: true })

  // Events that are not relayed stay local.
  const softB = record(b, 'budget.soft')
  a.gateway.container.cradle.events.emit('budget.soft', { scope: 'key:x', spend: 1, soft_budget: 1 })
  a.gateway.container.cradle.events.emit('invalidate', { kind: 'key', id: 'marker' })
  await until('the marker', () => seenB.some((p) => p.id === 'marker'))
  t.same(softB, [], 'budget.soft is not relayed')
})

t.test('survives a Redis restart: one outage log, the relay works again', async (t) => {
  const redis = await startRedis(t)
  const a = await gateway(t, `{ url: '${redis.url}' }`)
  const b = await gateway(t, `{ url: '${redis.url}' }`)
  const seenB = record(b, 'invalidate')

  // Down for 0.7 s: every connection fails to reconnect a few times (an 'error' each time).
  const back = redis.restart(700)
  await until('a to notice', () => a.gateway.container.cradle.redis!.status !== 'ready')
  // During the outage, emitting must neither throw nor crash the process, and calls fail fast.
  a.gateway.container.cradle.events.emit('invalidate', { kind: 'key', id: 'during' })
  await t.rejects(a.gateway.container.cradle.redis!.get('k'), 'a command fails while Redis is down')
  await back
  const raw = await rawClient(t, redis.url)
  await until('both subscribers back', async () => (await subscribers(raw)) === 2)
  await until('a\'s command connection back', () => a.gateway.container.cradle.redis!.status === 'ready')

  a.gateway.container.cradle.events.emit('invalidate', { kind: 'key', id: 'after' })
  await until('b to receive the event', () => seenB.some((p) => p.id === 'after'))
  t.same(seenB.filter((p) => p.id === 'after'), [{ kind: 'key', id: 'after', remote: true }])

  t.equal(await a.gateway.container.cradle.redis!.set('k', 'v'), 'OK', 'the shared client works again')
  t.equal(await raw.get('sy:k'), 'v', 'with the key prefix')
  for (const [name, gw] of [['a', a], ['b', b]] as const) {
    const down = gw.logs.filter((l) => String(l.msg).includes('Redis unreachable'))
    const back = gw.logs.filter((l) => String(l.msg).includes('Redis reachable again'))
    t.equal(down.length, 1, `${name}: the outage logged once`)
    t.equal(back.length, 1, `${name}: its end logged once`)
  }
})

t.test('fails fast while Redis is down, and stop() closes both connections', async (t) => {
  const redis = await startRedis(t)
  const a = await gateway(t, `{ url: '${redis.url}', command_timeout_ms: 300 }`)
  const raw = await rawClient(t, redis.url)
  const client = a.gateway.container.cradle.redis!
  t.equal(await subscribers(raw), 1)
  const clients = String(await raw.client('LIST')).trim().split('\n').length
  await a.stop()
  t.equal(client.status, 'end')
  t.equal(await subscribers(raw), 0, 'the subscriber quit')
  t.equal(String(await raw.client('LIST')).trim().split('\n').length, clients - 2, 'both connections gone')
  raw.disconnect()

  const b = await gateway(t, `{ url: '${redis.url}' }`)
  const bClient = b.gateway.container.cradle.redis!
  let reconnects = 0
  const back = redis.restart(500)
  await until('b to notice', () => bClient.status !== 'ready')
  const started = Date.now()
  await t.rejects(bClient.get('x'))
  t.ok(Date.now() - started < 1000, 'a command fails within a second instead of queueing')
  await b.stop()
  bClient.on('connect', () => void reconnects++)
  await back
  // Redis is back: a client that was not closed for good would reconnect within its backoff cap (2 s).
  await new Promise((r) => setTimeout(r, 2_300))
  t.equal(reconnects, 0, 'stop() during an outage closed the connections for good')
  const raw2 = await rawClient(t, redis.url)
  t.equal(String(await raw2.client('LIST')).trim().split('\n').length, 1, 'only the checking client is connected')
})

t.test('boots while Redis is unreachable, and stops', async (t) => {
  const port = await freePort()
  const a = await gateway(t, `{ host: 127.0.0.1, port: ${port} }`)
  t.ok(a.logs.some((l) => String(l.msg).includes('unreachable')), 'a warning, not a failed boot')
  a.gateway.container.cradle.events.emit('invalidate', { kind: 'key', id: 'x' })   // no crash, no throw
  await a.stop()
})

t.test('connection settings: options first, then LiteLLM\'s REDIS_* variables', async (t) => {
  const redis = await startRedis(t)
  const env = { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) }
  const a = await gateway(t, '{}', env)
  t.equal(await a.gateway.container.cradle.redis!.ping(), 'PONG', 'REDIS_HOST / REDIS_PORT used at register time')
  const b = await gateway(t, '{}', { REDIS_URL: redis.url })
  t.equal(await b.gateway.container.cradle.redis!.ping(), 'PONG', 'REDIS_URL used')

  const base = { command_timeout_ms: 500, key_prefix: 'sy:' }
  t.same(connectionOf({ ...base, url: 'redis://h:1' }, { REDIS_URL: 'redis://e:2' }), { url: 'redis://h:1', options: {} })
  t.same(connectionOf({ ...base, host: 'h' }, { REDIS_URL: 'redis://e:2', REDIS_PORT: '7000', REDIS_PASSWORD: 'pw' }),
    { options: { host: 'h', port: 7000, password: 'pw' } }, 'an explicit host beats REDIS_URL; the rest fills in')
  t.same(connectionOf({ ...base, port: 1234, db: 2 }, { REDIS_HOST: 'e' }), { options: { host: 'e', port: 1234, db: 2 } })
  t.same(connectionOf(base, {}), { options: {} }, 'ioredis defaults (127.0.0.1:6379)')
})
