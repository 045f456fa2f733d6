/**
 * state-redis: gives the gateway one Redis client (`cradle.redis`) for state shared between replicas (budget ledger,
 * rate limits), and relays the event bus between replicas over Redis pub/sub.
 *
 * Connection: `url`, or `host`/`port`/`password`/`db`; unset fields fall back to LiteLLM's variables REDIS_URL,
 * REDIS_HOST, REDIS_PORT, REDIS_PASSWORD (read at register time from the gateway's env). The client
 * - prefixes every key with `key_prefix` (ioredis `keyPrefix`), so replicas of one deployment share keys and another
 *   deployment on the same Redis does not collide with them;
 * - fails fast while Redis is down: a command timeout (`command_timeout_ms`) and, after the first connect, no offline
 *   queue, so callers fall back at once instead of queueing behind an outage;
 * - keeps reconnecting with a capped backoff, logs an outage once (and its end), and never crashes the gateway.
 *
 * Relay: local `invalidate`, `models.changed` and `budget.reset` events are PUBLISHed on `<key_prefix>events` with
 * this process's instance id; a second connection SUBSCRIBEs and re-emits other instances' events locally with
 * `remote: true`. Remote events are never published again, and our own are ignored, so nothing echoes.
 */
import { randomUUID } from 'node:crypto'
import { asValue } from 'awilix'
import { createRequire } from 'node:module'
import type { Redis, RedisOptions } from 'ioredis'
import { definePlugin } from '../../core/plugin.js'
import type { EventBus, EventName } from '../../core/events.js'
import type { Logger } from '../../core/logger.js'

export interface StateRedisOptions {
  url?: string
  host?: string
  port?: number
  password?: string
  db?: number
  /** Client-side command timeout, ms. */
  command_timeout_ms: number
  key_prefix: string
}

const RELAYED: ReadonlySet<EventName> = new Set<EventName>(['invalidate', 'models.changed', 'budget.reset', 'session.revoked'])
/**
 * ioredis is loaded when a client is first made, not with the bundled plugins: a gateway without Redis never pays
 * its ~10 MB of resident memory. Loaded synchronously (CommonJS) so the client is made in register().
 */
const require = createRequire(import.meta.url)
let RedisCtor: typeof Redis | null = null
function loadRedis(): typeof Redis {
  return (RedisCtor ??= (require('ioredis') as { Redis: typeof Redis }).Redis)
}

/** Reconnect backoff: 100 ms more per attempt, capped at 2 s, forever (an outage ends when Redis is back). */
const RETRY_STEP_MS = 100
const RETRY_MAX_MS = 2_000

/** Connection settings: explicit options first, then LiteLLM's environment variables, then ioredis' defaults. */
export function connectionOf(options: StateRedisOptions, env: Record<string, string | undefined>): { url?: string; options: RedisOptions } {
  const out: RedisOptions = {}
  const host = options.host ?? env.REDIS_HOST
  const port = options.port ?? (env.REDIS_PORT ? Number(env.REDIS_PORT) : undefined)
  const password = options.password ?? env.REDIS_PASSWORD
  if (host) out.host = host
  if (port !== undefined && Number.isInteger(port)) out.port = port
  if (password) out.password = password
  if (options.db !== undefined) out.db = options.db
  // An explicit host beats an inherited REDIS_URL; an explicit url beats everything (ioredis reads it first).
  const url = options.url ?? (options.host === undefined ? env.REDIS_URL || undefined : undefined)
  return url === undefined ? { options: out } : { url, options: out }
}

/**
 * A client as the plugin makes it, not yet connected (lazyConnect: `connect()` in start). Exported for tests and for
 * tools that need the same fail-fast behaviour.
 */
export function createStateRedisClient(options: StateRedisOptions, env: Record<string, string | undefined> = process.env): Redis {
  const conn = connectionOf(options, env)
  const behaviour: RedisOptions = {
    ...conn.options,
    lazyConnect: true,
    keyPrefix: options.key_prefix,
    commandTimeout: options.command_timeout_ms,
    // Queue only until the first connect (commands issued during boot); afterwards a call fails at once while Redis
    // is down, and the caller's fallback (e.g. the budget ledger's) takes over.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * RETRY_STEP_MS, RETRY_MAX_MS),
  }
  const RedisClient = loadRedis()
  const client = conn.url === undefined ? new RedisClient(behaviour) : new RedisClient(conn.url, behaviour)
  client.once('ready', () => { client.options.enableOfflineQueue = false })
  return client
}

/** Log an outage once across both connections, and its end once. */
function watchOutages(logger: Logger): (c: Redis, role: string) => void {
  const down = new Set<Redis>()
  return (c, role) => {
    c.on('error', (err: Error) => {
      if (down.size === 0) {
        logger.warn('state-redis: Redis unreachable; calls that need it fall back until it is back', { connection: role, err: err.message })
      }
      down.add(c)
    })
    c.on('ready', () => {
      if (down.delete(c) && down.size === 0) logger.info('state-redis: Redis reachable again')
    })
  }
}

interface Instance {
  id: string
  channel: string
  watch: (c: Redis, role: string) => void
  subscriber: Redis | null
  unsubscribe: Array<() => void>
}

/** Per-client state (one plugin object may serve several gateways in one process, as in tests). */
const instances = new WeakMap<Redis, Instance>()

function relay(client: Redis, inst: Instance, events: EventBus): void {
  for (const event of RELAYED) {
    inst.unsubscribe.push(events.on(event, (payload) => {
      if (payload.remote) return
      const message = JSON.stringify({ from: inst.id, event, payload })
      // While Redis is down the publish fails fast and the event is lost: other replicas' caches expire on their own.
      client.publish(inst.channel, message).catch(() => {})
    }))
  }
}

function onMessage(inst: Instance, events: EventBus, logger: Logger) {
  return function stateRedisRelay(channel: string, message: string): void {
    if (channel !== inst.channel) return
    let m: { from?: unknown; event?: unknown; payload?: unknown }
    try {
      m = JSON.parse(message)
    } catch {
      logger.debug('state-redis: ignored a malformed relay message')
      return
    }
    if (m.from === inst.id || typeof m.event !== 'string' || !RELAYED.has(m.event as EventName)) return
    const payload = m.payload && typeof m.payload === 'object' ? m.payload : {}
    events.emit(m.event as EventName, { ...payload, remote: true } as never)
  }
}

/** Connect, or wait for the connect a command already started (lazyConnect connects on the first command). */
function connectOnce(c: Redis): Promise<void> {
  if (c.status === 'wait') return c.connect()
  if (c.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const ready = () => { c.off('error', failed); resolve() }
    const failed = (err: Error) => { c.off('ready', ready); reject(err) }
    c.once('ready', ready)
    c.once('error', failed)
  })
}

/** Wait for a QUIT to close the socket: 1 s, then the socket is dropped. */
const QUIT_WAIT_MS = 1_000

async function close(c: Redis): Promise<void> {
  if (c.status === 'end') return
  if (c.status !== 'ready') {
    // Down or reconnecting: a QUIT cannot be sent; this cancels the pending reconnect for good.
    c.disconnect()
    return
  }
  const ended = new Promise<void>((resolve) => {
    const timer = setTimeout(() => { c.disconnect(); resolve() }, QUIT_WAIT_MS)
    c.once('end', () => { clearTimeout(timer); resolve() })
  })
  await c.quit().catch(() => c.disconnect())
  await ended
}

export default definePlugin<StateRedisOptions>({
  name: 'state-redis',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      url: { type: 'string', pattern: '^rediss?://' },
      host: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      password: { type: 'string' },
      db: { type: 'integer', minimum: 0 },
      command_timeout_ms: { type: 'integer', minimum: 1, default: 500 },
      key_prefix: { type: 'string', default: 'sy:' },
    },
  },

  register(container, options) {
    const { env, logger } = container.cradle
    const client = createStateRedisClient(options, env)
    const watch = watchOutages(logger)
    watch(client, 'commands')
    instances.set(client, { id: randomUUID(), channel: `${options.key_prefix}events`, watch, subscriber: null, unsubscribe: [] })
    container.register({ redis: asValue(client) })
  },

  async start({ redis, events, logger }) {
    const inst = redis && instances.get(redis)
    if (!redis || !inst) return
    // Unreachable at boot: the gateway starts anyway (the 'error' listener logged it) and the client keeps trying.
    const connected = await connectOnce(redis).then(() => true, () => false)
    // The subscriber keeps its offline queue and has no command timeout: SUBSCRIBE waits for Redis however long it
    // is down, and ioredis re-subscribes by itself after every reconnect.
    const sub = redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, lazyConnect: true })
    inst.subscriber = sub
    inst.watch(sub, 'subscriber')
    sub.on('message', onMessage(inst, events, logger))
    const subscribed = sub.subscribe(inst.channel).catch((err: Error) => {
      logger.warn('state-redis: cannot subscribe to the relay channel', { err: err.message })
    })
    if (connected) await subscribed
    relay(redis, inst, events)
  },

  async stop({ redis }) {
    const inst = redis && instances.get(redis)
    if (!redis || !inst) return
    for (const off of inst.unsubscribe.splice(0)) off()
    if (inst.subscriber) await close(inst.subscriber)
    await close(redis)
  },
})
