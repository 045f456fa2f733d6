/**
 * auth: checks the caller's key and sets `ctx.state.principal`.
 *
 * Keys are read from the headers the official SDKs send: `Authorization: Bearer` (openai), `api-key` (Azure
 * clients), `x-api-key` (anthropic), `x-goog-api-key` (gemini) and LiteLLM's `x-litellm-api-key`.
 *
 * Three kinds of key:
 * - the master key (LiteLLM general_settings.master_key): full access, compared on SHA-256 digests in constant time;
 * - static keys from the options (every model, no limits);
 * - virtual keys from the store (`/key/generate`), looked up by their SHA-256 hex (the store never sees the key).
 *   Expired, blocked (key or team) and unknown keys get 401; a model outside the key's or team's `models` 403;
 *   a route outside `allowed_routes` 403. The key, its team, its user (for the admin role) and the request's end
 *   user (the body's `user`) are cached in LRUs and dropped on the event bus's `invalidate` (which a Redis plugin
 *   relays between replicas); entries also expire after `cache_ttl_ms`, so replicas sharing a database without Redis
 *   converge within that time.
 *
 * With no master key and no keys configured the gateway is open (as LiteLLM is without a master_key): every caller
 * is `anonymous`, except that a virtual key presented and found in the store is honoured (its budgets and limits
 * apply).
 *
 * The admin UI's session cookie (`uiSessions`, registered by the ui plugin) is accepted in place of a key, only when
 * the request carries no key at all and only on non-model routes: it stands for the master key or for the admin key
 * that signed in, which is checked again on every request (a blocked or deleted key, or a user no longer
 * proxy_admin, ends the session at once). A write made with the cookie must carry the session's CSRF token. A
 * request with a key never looks at cookies, so API clients pay nothing for this.
 *
 * For the ui plugin's sign-in, auth registers `keyAuth`: the principal a key stands for, by the same checks a
 * request's key gets, and the session secret derived from the master key (the key itself is never handed out).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { asValue, type AwilixContainer } from 'awilix'
import { LRUCache } from 'lru-cache'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import { gatewayError } from '../../core/errors.js'
import { modelAllowed, routeAllowed } from '../../core/access.js'
import type { Principal } from '../../core/state.js'
import type { EndUserRecord, EntityKind, KeyRecord, RecordOf, Store, TeamRecord, UserRecord } from '../../core/store.js'
import { StoreUnavailableError } from '../../core/store.js'
import type { GatewayContext } from '../../core/http/respond.js'
import type { Cradle } from '../../core/container.js'

/** The ui plugin's session reader (plugins/ui/session.ts UiSessions), as auth uses it. */
interface SessionReader {
  read(cookieHeader: string | undefined): { sub: string; csrf: string } | null
  checkCsrf(method: string, header: string | string[] | undefined, claims: { sub: string; csrf: string }): void
}

/** What auth offers the ui plugin's sign-in (registered as `keyAuth`). */
export interface KeyAuth {
  /** HMAC-SHA256(master_key, label): a secret every replica with this master key derives alike; null without one. */
  deriveSecret(label: string): Buffer | null
  /**
   * Who a clear key is, checked as a request's key header would be (blocked/expired: thrown 401): its principal and
   * the subject a session stores for it ('master', a virtual key's hash; null for a static key). null when unknown.
   */
  authenticate(ctx: GatewayContext, key: string): Promise<{ principal: Principal; subject: string | null } | null>
  /** The principal of a session subject ('master' or a key hash), checked again now; null when it no longer is one. */
  principalOf(ctx: GatewayContext, subject: string): Promise<Principal | null>
}

declare module '../../core/container.js' {
  interface Cradle {
    /** The auth plugin's key checks, for the ui plugin's sign-in (registered only with the auth plugin). */
    keyAuth?: KeyAuth
  }
}

interface Options {
  /** LiteLLM general_settings.master_key: full access. */
  master_key?: string
  /** Static keys with access to every model (virtual keys with limits come from the store). */
  keys: string[]
  /** How long a looked-up key, team, user or end user is trusted without an invalidation, ms. */
  cache_ttl_ms: number
  /** Entries per cache. */
  cache_size: number
  /** How long "no such key" is remembered, ms (short: a key made on another replica must work almost at once). */
  negative_ttl_ms: number
}

const HEADERS = ['api-key', 'x-api-key', 'x-goog-api-key']
/** An open gateway (no master key, no keys) lets anyone in, with the rights LiteLLM gives them then: all of them. */
const OPEN: Principal = Object.freeze({ id: 'anonymous', kind: 'anonymous', role: 'proxy_admin' })
const MASTER: Principal = Object.freeze({ id: 'master', kind: 'master', role: 'proxy_admin' })
const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** The store's id for a virtual key: SHA-256 hex, as LiteLLM's hash_token. */
export function hashKey(key: string): string {
  return digest(key).toString('hex')
}

export function extractKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  // LiteLLM's own header wins: MCP clients send the gateway key there and keep Authorization for an upstream's
  // token. It may carry a `Bearer ` prefix, as LiteLLM's docs write it.
  const own = headers['x-litellm-api-key']
  if (typeof own === 'string' && own.trim()) return stripBearer(own.trim())
  const auth = headers.authorization
  if (typeof auth === 'string' && auth) {
    const space = auth.indexOf(' ')
    const scheme = space === -1 ? '' : auth.slice(0, space).toLowerCase()
    const value = (scheme === 'bearer' || scheme === 'basic' ? auth.slice(space + 1) : auth).trim()
    if (value) return value
  }
  for (const h of HEADERS) {
    const v = headers[h]
    if (typeof v === 'string' && v.trim()) return v.trim()
  }
  return undefined
}

function stripBearer(v: string): string {
  return v.length > 7 && v.slice(0, 7).toLowerCase() === 'bearer ' ? v.slice(7).trim() : v
}

/** "Not in the store", cached briefly (lru-cache cannot hold null). */
const MISSING = Object.freeze({ missing: true as const })
type Cached<T> = T | typeof MISSING

/**
 * One cache per record kind, filled from the store. `get` answers synchronously when the entry is fresh (the hot
 * path: no promise, no await) and otherwise returns the store lookup's promise; concurrent misses share one lookup.
 * A lookup that fails while a stale copy exists serves the stale copy (the database is down; the key was valid).
 */
function recordCache<K extends EntityKind>(store: Store, kind: K, o: Options) {
  const cache = new LRUCache<string, Cached<RecordOf[K]>>({
    max: o.cache_size,
    ttl: o.cache_ttl_ms,
    allowStaleOnFetchRejection: true,
    noDeleteOnStaleGet: true,
    fetchMethod: async (id) => (await store.get(kind, id)) ?? MISSING,
  })
  return {
    get(id: string): RecordOf[K] | null | Promise<RecordOf[K] | null> {
      const hit = cache.get(id)
      if (hit !== undefined) return hit === MISSING ? null : (hit as RecordOf[K])
      return cache.fetch(id).then((v) => {
        if (v === MISSING || v === undefined) {
          if (v === MISSING) cache.set(id, MISSING, { ttl: o.negative_ttl_ms })
          return null
        }
        return v as RecordOf[K]
      })
    },
    delete(id: string): void {
      cache.delete(id)
    },
    clear(): void {
      cache.clear()
    },
  }
}

function storeDown(err: unknown): never {
  if (err instanceof StoreUnavailableError) {
    throw gatewayError('GW_ERR_STORE_UNAVAILABLE', 'Authentication is unavailable: the key database cannot be reached. Retry shortly.')
  }
  throw err
}

/** One gateway's key checks, shared by the middleware and the `keyAuth` service (made once per cradle). */
interface AuthInstance {
  middleware: GatewayMiddleware
  keyAuth: KeyAuth
}

const instances = new WeakMap<object, AuthInstance>()
/** Per cradle: finds the ui plugin's session reader when that plugin is configured (asked on first use). */
const sessionReaders = new WeakMap<object, () => SessionReader | null>()

function authFor(cradle: Cradle, options: Options): AuthInstance {
  let inst = instances.get(cradle)
  if (!inst) instances.set(cradle, (inst = createAuth(cradle, options)))
  return inst
}

function createAuth(cradle: Cradle, options: Options): AuthInstance {
  const master = options.master_key ? digest(options.master_key) : null
  const statics = options.keys.map((k) => ({ digest: digest(k), principal: { id: digest(k).toString('hex').slice(0, 16), kind: 'key' } as Principal }))
  const open = !master && statics.length === 0
  const { store, clock, models } = cradle
  const caches = store
    ? { key: recordCache(store, 'key', options), team: recordCache(store, 'team', options), user: recordCache(store, 'user', options), end_user: recordCache(store, 'end_user', options) }
    : null
  if (caches) {
    cradle.events.on('invalidate', ({ kind, id }) => {
      if (kind === 'key' || kind === 'team' || kind === 'user' || kind === 'end_user') caches[kind].delete(id)
      else if (kind === 'budget') for (const c of Object.values(caches)) c.clear()
    })
  }
  // The clear key -> what it is (master, a static key's principal, or a virtual key's hash), so a busy key is
  // hashed once, not per call. The clear key only ever lives in this process's memory.
  const known = new LRUCache<string, Principal | string>({ max: options.cache_size })
  function classify(key: string): Principal | string {
    let c = known.get(key)
    if (c !== undefined) return c
    const d = digest(key)
    if (master && timingSafeEqual(d, master)) c = MASTER
    else c = statics.find((s) => timingSafeEqual(d, s.digest))?.principal ?? d.toString('hex')
    known.set(key, c)
    return c
  }

  /** A virtual key's principal, or null when the store has no such key. Throws 401/403 for refused keys. */
  async function virtualKey(ctx: GatewayContext, token: string): Promise<Principal | null> {
    const c = caches!
    let key: KeyRecord | null
    try {
      const k = c.key.get(token)
      key = k instanceof Promise ? await k : k
    } catch (err) {
      storeDown(err)
    }
    if (!key) return null
    if (key.blocked === true) {
      throw gatewayError('GW_ERR_KEY_BLOCKED', 'Authentication Error - Key is blocked. Update via `/key/unblock` if you\'re admin.')
    }
    if (key.expires && Date.parse(key.expires) < clock.now()) {
      throw gatewayError('GW_ERR_KEY_EXPIRED', `Authentication Error - Expired Key. Key Expiry time ${key.expires} and current time ${new Date(clock.now()).toISOString()}`)
    }
    let team: TeamRecord | null = null
    let user: UserRecord | null = null
    try {
      if (key.team_id) {
        const t = c.team.get(key.team_id)
        team = t instanceof Promise ? await t : t
      }
      if (key.user_id) {
        const u = c.user.get(key.user_id)
        user = u instanceof Promise ? await u : u
      }
    } catch (err) {
      storeDown(err)
    }
    if (team?.blocked === true) {
      throw gatewayError('GW_ERR_KEY_BLOCKED', `Authentication Error - Team=${team.team_id} is blocked. Update via \`/team/unblock\` if you're admin.`)
    }
    const path = ctx.path
    if (!routeAllowed(key.allowed_routes, path)) {
      throw gatewayError('GW_ERR_FORBIDDEN', `Key is not allowed to call ${path}. Allowed routes: ${JSON.stringify(key.allowed_routes)}`)
    }
    return {
      id: `key:${token.slice(0, 16)}`,
      kind: 'key',
      token,
      keyAlias: key.key_alias ?? undefined,
      teamId: key.team_id ?? undefined,
      userId: key.user_id ?? undefined,
      models: key.models?.length ? key.models : team?.models,
      metadata: key.metadata,
      role: user?.user_role,
      allowedRoutes: key.allowed_routes,
      key,
      team,
      user,
    }
  }

  /** Model allow-lists and the end user, for model calls. */
  async function modelCall(ctx: GatewayContext, p: Principal): Promise<Principal> {
    const state = ctx.state
    const model = state.model
    // An alias (model_group_alias) may be called by whoever may call its group, as well as by its own name.
    const group = models.aliasOf(model)
    const allowed = (list: readonly string[] | null | undefined) => modelAllowed(list, model) || (group !== undefined && modelAllowed(list, group))
    if (p.key && !allowed(p.key.models.includes('all-team-models') ? null : p.key.models)) {
      throw gatewayError('GW_ERR_FORBIDDEN',
        `key not allowed to access model. This key can only access models=${JSON.stringify(p.key.models)}. Tried to access ${model}`, { param: 'model' })
    }
    if (p.team && !allowed(p.team.models)) {
      throw gatewayError('GW_ERR_FORBIDDEN',
        `team not allowed to access model. This team can only access models=${JSON.stringify(p.team.models)}. Tried to access ${model}`, { param: 'model' })
    }
    const endUser = state.body?.user
    if (typeof endUser !== 'string' || endUser === '') return p
    let rec: EndUserRecord | null = null
    if (caches) {
      try {
        const e = caches.end_user.get(endUser)
        rec = e instanceof Promise ? await e : e
      } catch (err) {
        storeDown(err)
      }
      if (rec?.blocked === true) {
        throw gatewayError('GW_ERR_FORBIDDEN', `End user ${endUser} is blocked. Update via \`/customer/unblock\` if you're admin.`, { param: 'user' })
      }
    }
    return { ...p, endUserId: endUser, endUser: rec }
  }

  /** The principal a UI session's subject stands for now: the master key, or a virtual key still of a proxy_admin. */
  async function principalOf(ctx: GatewayContext, subject: string): Promise<Principal | null> {
    if (subject === 'master') return master ? MASTER : null
    if (!caches) return null
    const p = await virtualKey(ctx, subject)
    return p && p.role === 'proxy_admin' ? p : null
  }

  // The ui plugin's reader, looked up on the first request that carries a cookie and no key.
  let reader: SessionReader | null | undefined
  /** The UI session's principal for a request without a key (writes checked for the CSRF token); else null. */
  async function fromSession(ctx: GatewayContext): Promise<Principal | null> {
    reader ??= sessionReaders.get(cradle)?.() ?? null
    if (!reader) return null
    const claims = reader.read(ctx.req.headers.cookie)
    if (!claims) return null
    const p = await principalOf(ctx, claims.sub)
    if (p) reader.checkCsrf(ctx.method, ctx.req.headers['x-csrf-token'], claims)
    return p
  }

  const keyAuth: KeyAuth = {
    deriveSecret: (label) => (options.master_key ? createHmac('sha256', options.master_key).update(label).digest() : null),
    async authenticate(ctx, key) {
      const c = classify(key)
      if (typeof c !== 'string') return { principal: c, subject: c === MASTER ? 'master' : null }
      if (!caches) return null
      const p = await virtualKey(ctx, c)
      return p ? { principal: p, subject: c } : null
    },
    principalOf,
  }

  const middleware: GatewayMiddleware = async function auth(ctx, next) {
    const state = ctx.state
    const key = extractKey(ctx.req.headers)
    let principal: Principal | null = null
    if (key !== undefined) {
      const c = classify(key)
      if (typeof c !== 'string') principal = c
      else if (caches) principal = await virtualKey(ctx, c)
    } else if (master && ctx.req.headers.cookie !== undefined && !MODEL_KINDS.has(state.kind)) {
      // No key: the admin UI's session cookie, never on model routes (the UI makes no model calls).
      principal = await fromSession(ctx)
    }
    if (!principal) {
      if (!open) {
        throw gatewayError('GW_ERR_AUTH', key === undefined
          ? 'Authentication Error, No api key passed in. Send it as `Authorization: Bearer <key>`.'
          : 'Authentication Error, Invalid proxy server token passed. Check the key and try again.')
      }
      principal = OPEN
    }
    state.principal = MODEL_KINDS.has(state.kind) ? await modelCall(ctx, principal) : principal
    return next()
  }
  return { middleware, keyAuth }
}

export default definePlugin<Options>({
  name: 'auth',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      master_key: { type: 'string', minLength: 1 },
      keys: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
      cache_ttl_ms: { type: 'integer', minimum: 0, default: 10_000 },
      cache_size: { type: 'integer', minimum: 1, default: 50_000 },
      negative_ttl_ms: { type: 'integer', minimum: 1, default: 1_000 },
    },
  },
  register(container: AwilixContainer<Cradle>, options) {
    const cradle = container.cradle
    sessionReaders.set(cradle, () => (container.hasRegistration('uiSessions') ? container.resolve<SessionReader>('uiSessions') : null))
    container.register({ keyAuth: asValue<KeyAuth>({
      deriveSecret: (label) => authFor(cradle, options).keyAuth.deriveSecret(label),
      authenticate: (ctx, key) => authFor(cradle, options).keyAuth.authenticate(ctx, key),
      principalOf: (ctx, subject) => authFor(cradle, options).keyAuth.principalOf(ctx, subject),
    }) })
  },
  middleware(cradle, options) {
    return authFor(cradle, options).middleware
  },
})
