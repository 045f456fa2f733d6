/**
 * ui: the admin web UI at /ui, a single-page app (plugins/ui/static, Preact + htm as plain ES modules, no build
 * step) over the existing management API, signed in with a session cookie instead of a bearer key.
 *
 *   pipeline:
 *     - auth: { master_key: os.environ/LITELLM_MASTER_KEY }
 *     - keys: {}
 *     - ui: { session_ttl_s: 43200 }
 *
 * - POST /ui/login {"key"}: the master key or a proxy_admin's virtual key (checked by the auth plugin, `keyAuth`)
 *   -> a signed, stateless `sy_session` cookie (session.ts) and the CSRF token writes must send. Without a master
 *   key there is no UI sign-in: the session secret is derived from it.
 * - GET /ui/session, POST /ui/logout.
 * - The auth plugin accepts the cookie on management routes (`uiSessions`, registered here); a virtual key's session
 *   is checked again on every request.
 * - /ui/api/*: admin-only views for the UI (api.ts).
 * - Static files with a strict CSP (no inline code; the import map is allowed by its hash), `no-cache` + ETag for the
 *   app's own files and a max-age for the vendored Preact/htm builds, read from node_modules once.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, extname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AwilixContainer } from 'awilix'
import { asValue } from 'awilix'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import { readJsonBody } from '../../core/http/body.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import type { Cradle } from '../../core/container.js'
import type { GatewayContext } from '../../core/http/respond.js'
import type { RouteDef } from '../../core/http/routes.js'
import type { KeyAuth } from '../auth/index.js'
import { uiApiRoutes } from './api.js'
import {
  checkCsrf, COOKIE_NAME, decodeSession, encodeSession, newSession, readCookie, SECRET_LABEL, sessionCookie,
  type SessionClaims, type UiSessions,
} from './session.js'

export interface UiOptions {
  /** How long a sign-in lasts, seconds (default 12 h). */
  session_ttl_s: number
}

declare module '../../core/container.js' {
  interface Cradle {
    /** The UI session cookie's reader, for the auth plugin (registered only with the ui plugin). */
    uiSessions?: UiSessions
  }
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS
/** The CSP of every /ui response; script-src gets the import map's hash added. */
const CSP = "default-src 'self'; script-src 'self'{HASHES}; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
const NO_MASTER_KEY = 'The admin UI needs a master key: set general_settings.master_key (or LITELLM_MASTER_KEY) to use the UI.'
const LOGIN_BODY_LIMIT = 16 * 1024 // 16 KiB: a key, nothing more
const VENDOR_MAX_AGE_S = 86_400 // 1 day: the files change only with the package version

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
}

/** The app's files: next to this module in the source tree, or in the package's plugins/ui/static when built (dist/). */
function staticDir(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  const candidates = [join(here, 'static'), join(here, '..', '..', '..', 'plugins', 'ui', 'static')]
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!
}

/** The vendored browser builds, by the name the import map uses; resolved once (null: the package is missing). */
function vendorFiles(): Map<string, string> {
  const require = createRequire(import.meta.url)
  const out = new Map<string, string>()
  const add = (name: string, pkg: string, file: string) => {
    try {
      out.set(name, join(dirname(require.resolve(pkg)), file))
    } catch {
      // Not installed: /ui/vendor/<name> answers 404 and the UI cannot start; the rest of the gateway is unaffected.
    }
  }
  add('preact.mjs', 'preact', 'preact.mjs')
  add('hooks.mjs', 'preact/hooks', 'hooks.mjs')
  add('htm.mjs', 'htm', 'htm.module.js')
  return out
}

interface StaticFile {
  body: Buffer
  type: string
  etag: string
}

function loadFile(path: string): StaticFile {
  const body = readFileSync(path)
  return {
    body,
    type: TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  }
}

/** The CSP hashes of the inline import map(s) in index.html (the only inline script the CSP allows). */
function importMapHashes(html: string): string {
  let out = ''
  for (const m of html.matchAll(/<script\b[^>]*\btype\s*=\s*["']?importmap["']?[^>]*>([\s\S]*?)<\/script>/gi)) {
    out += ` 'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`
  }
  return out
}

function notFound(ctx: GatewayContext): never {
  throw gatewayError('GW_ERR_ROUTE_NOT_FOUND', `Unknown request URL: ${ctx.method} ${ctx.path}.`)
}

/** Whether the request came over https (directly, or through a proxy that says so). */
function secure(ctx: GatewayContext): boolean {
  const fwd = ctx.get('x-forwarded-proto')
  return ctx.protocol === 'https' || fwd.split(',')[0]!.trim().toLowerCase() === 'https'
}

function sessionBody(claims: SessionClaims): Record<string, unknown> {
  return { role: 'proxy_admin', csrf: claims.csrf, expires_at: new Date(claims.exp * 1000).toISOString() }
}

/** Per gateway (cradle): its container and the count of model calls in flight. */
interface UiState {
  container: AwilixContainer<Cradle>
  inFlight: number
  /** Per deployment, this clock minute's calls, tokens and latency (for the Live and Models pages). */
  usage: Map<string, DeploymentMinute>
  /** Sessions signed out before they expired: their csrf token (unique per session) -> expiry, unix seconds. */
  revoked: Map<string, number>
}
const states = new WeakMap<object, UiState>()

export interface DeploymentMinute {
  minute: number
  requests: number
  tokens: number
  latencyMsTotal: number
}

/** One finished call in its deployment's current clock minute (a new minute starts the counts over). */
function countMinute(usage: Map<string, DeploymentMinute>, id: string, now: number, tokens: number, latencyMs: number): void {
  const minute = Math.floor(now / 60_000)
  let m = usage.get(id)
  if (!m || m.minute !== minute) usage.set(id, (m = { minute, requests: 0, tokens: 0, latencyMsTotal: 0 }))
  m.requests++
  m.tokens += tokens
  m.latencyMsTotal += latencyMs
}

function stateOf(cradle: object): UiState {
  const st = states.get(cradle)
  if (!st) throw new Error('ui: used before register()')
  return st
}

function keyAuthOf(container: AwilixContainer<Cradle>): KeyAuth | null {
  return container.hasRegistration('keyAuth') ? container.resolve<KeyAuth>('keyAuth') : null
}

/** Remember a signed-out session until it would have expired anyway (then it is refused by its expiry). */
function revoke(st: UiState, id: string, exp: number, nowMs: number): void {
  st.revoked.set(id, exp)
  if (st.revoked.size > 1000) for (const [k, e] of st.revoked) if (e * 1000 <= nowMs) st.revoked.delete(k)
}

function createSessions(container: AwilixContainer<Cradle>, st: UiState): UiSessions & { secret(): Buffer | null } {
  let secret: Buffer | null | undefined
  const secretOf = (): Buffer | null => (secret ??= keyAuthOf(container)?.deriveSecret(SECRET_LABEL) ?? null)
  return {
    secret: secretOf,
    read(cookieHeader: string | undefined): SessionClaims | null {
      const s = secretOf()
      if (!s) return null
      const value = readCookie(cookieHeader, COOKIE_NAME)
      const claims = value ? decodeSession(s, value, container.cradle.clock.now()) : null
      return claims && !st.revoked.has(claims.csrf) ? claims : null
    },
    checkCsrf,
  }
}

function uiRoutes(container: AwilixContainer<Cradle>, options: UiOptions, st: UiState): RouteDef[] {
  const cradle = container.cradle
  const sessions = createSessions(container, st)
  const dir = staticDir()
  const root = resolve(dir) + sep
  const vendor = vendorFiles()
  const cache = new Map<string, StaticFile>()
  let csp: string | undefined

  /** The CSP, with the import map's hash from index.html (read once). */
  function cspOf(): string {
    if (csp === undefined) {
      let html = ''
      try {
        html = readFileSync(join(dir, 'index.html'), 'utf8')
      } catch {
        // No index.html yet: no import map to allow.
      }
      csp = CSP.replace('{HASHES}', importMapHashes(html))
    }
    return csp
  }

  function send(ctx: GatewayContext, file: StaticFile, cacheControl: string): void {
    ctx.set('content-security-policy', cspOf())
    ctx.set('x-content-type-options', 'nosniff')
    ctx.set('referrer-policy', 'no-referrer')
    ctx.set('cache-control', cacheControl)
    ctx.set('etag', file.etag)
    if (ctx.get('if-none-match') === file.etag) {
      ctx.status = 304
      return
    }
    ctx.type = file.type
    ctx.body = file.body
  }

  /** A file under the static dir, by its path below /ui/; null when there is none (or the path leaves the dir). */
  function staticFile(rel: string): StaticFile | null {
    const hit = cache.get(rel)
    if (hit) return hit
    if (rel.split('/').some((seg) => seg === '' || seg === '..' || seg.startsWith('.'))) return null
    const path = resolve(dir, rel)
    if (!path.startsWith(root)) return null
    try {
      if (!statSync(path).isFile()) return null
    } catch {
      return null
    }
    const file = loadFile(path)
    cache.set(rel, file)
    return file
  }

  const index: GatewayMiddleware = async function uiIndex(ctx) {
    const file = staticFile('index.html') ?? notFound(ctx)
    send(ctx, file, 'no-cache')
  }

  const vendorFile: GatewayMiddleware = async function uiVendor(ctx) {
    const name = String((ctx as unknown as { params: { file: string } }).params.file)
    const path = vendor.get(name) ?? notFound(ctx)
    let file = cache.get(`vendor/${name}`)
    if (!file) cache.set(`vendor/${name}`, (file = loadFile(path)))
    send(ctx, file, `public, max-age=${VENDOR_MAX_AGE_S}`)
  }

  const asset: GatewayMiddleware = async function uiAsset(ctx) {
    let rel: string
    try {
      rel = decodeURIComponent(ctx.path.slice('/ui/'.length))
    } catch {
      notFound(ctx)
    }
    if (rel.startsWith('api/') || rel.startsWith('vendor/')) notFound(ctx)
    send(ctx, staticFile(rel) ?? notFound(ctx), 'no-cache')
  }

  const login: GatewayMiddleware = async function uiLogin(ctx) {
    const keyAuth = keyAuthOf(container)
    const secret = sessions.secret()
    if (!keyAuth || !secret) throw gatewayError('GW_ERR_AUTH', NO_MASTER_KEY, { openaiCode: 'ui_needs_master_key' })
    const body = await readJsonBody(ctx.req, LOGIN_BODY_LIMIT)
    const key = typeof body.key === 'string' ? body.key.trim() : ''
    if (!key) throw gatewayError('GW_ERR_AUTH', 'Sign in with the master key or an admin key: send {"key": "sk-..."}.', { param: 'key' })
    const who = await keyAuth.authenticate(ctx, key)
    if (!who) throw gatewayError('GW_ERR_AUTH', 'Authentication Error, Invalid proxy server token passed. Check the key and try again.')
    const p = who.principal
    if (!who.subject || !(p.kind === 'master' || p.role === 'proxy_admin')) {
      throw gatewayError('GW_ERR_FORBIDDEN',
        `This key is not an admin: the UI takes the master key or a key whose user has user_role proxy_admin (this one's role: ${p.role ?? 'none'}).`,
        { openaiCode: 'admin_only' })
    }
    const claims = newSession(who.subject, cradle.clock.now(), options.session_ttl_s)
    ctx.set('set-cookie', sessionCookie(encodeSession(secret, claims), options.session_ttl_s, secure(ctx)))
    ctx.set('cache-control', 'no-store')
    ctx.body = sessionBody(claims)
  }

  const logout: GatewayMiddleware = async function uiLogout(ctx) {
    // The session ends here and on every replica, not only in this browser: a copied cookie stops working too.
    const claims = sessions.read(ctx.get('cookie') || undefined)
    if (claims) cradle.events.emit('session.revoked', { id: claims.csrf, exp: claims.exp })
    ctx.set('set-cookie', sessionCookie('', 0, secure(ctx)))
    ctx.set('cache-control', 'no-store')
    // Without a live session there was nothing to end: 401 as /ui/session answers (the cookie is cleared anyway).
    if (!claims) throw gatewayError('GW_ERR_AUTH', 'Not signed in to the admin UI.')
    ctx.body = {}
  }

  const session: GatewayMiddleware = async function uiSession(ctx) {
    ctx.set('cache-control', 'no-store')
    const keyAuth = keyAuthOf(container)
    if (!keyAuth || !sessions.secret()) throw gatewayError('GW_ERR_AUTH', NO_MASTER_KEY, { openaiCode: 'ui_needs_master_key' })
    const claims = sessions.read(ctx.get('cookie') || undefined)
    // A virtual key's session is checked again: blocked, deleted or no longer an admin's, it has ended.
    if (!claims || !(await keyAuth.principalOf(ctx, claims.sub))) throw gatewayError('GW_ERR_AUTH', 'Not signed in to the admin UI.')
    ctx.body = sessionBody(claims)
  }

  const pub = (method: RouteDef['method'], path: string | string[], handler: GatewayMiddleware): RouteDef =>
    ({ method, path, kind: 'other', public: true, handler })
  return [
    pub('POST', '/ui/login', login),
    pub('POST', '/ui/logout', logout),
    pub('GET', '/ui/session', session),
    // Before the catch-all: /ui/api/* runs the request chain (auth takes the cookie there).
    ...uiApiRoutes({ container, inFlight: () => st.inFlight, usage: st.usage }),
    pub('GET', ['/ui', '/ui/', '/ui/index.html'], index),
    pub('GET', '/ui/vendor/:file', vendorFile),
    pub('GET', '/ui/{*path}', asset),
  ]
}

export default definePlugin<UiOptions>({
  name: 'ui',
  dependencies: ['auth'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      session_ttl_s: { type: 'integer', minimum: 60, default: 43_200 },
    },
  },
  register(container) {
    const st: UiState = { container, inFlight: 0, usage: new Map(), revoked: new Map() }
    states.set(container.cradle, st)
    // A sign-out on any replica ends the session on this one too (state-redis relays the event).
    container.cradle.events.on('session.revoked', ({ id, exp }) => revoke(st, id, exp, container.cradle.clock.now()))
    container.register({ uiSessions: asValue(createSessions(container, st)) })
  },
  middleware(cradle) {
    const st = stateOf(cradle)
    const { clock } = cradle
    // Counts model calls in progress, and per deployment the minute's calls, tokens and latency, for /ui/api/live.
    return function ui(ctx, next) {
      const state = ctx.state
      if (!MODEL_KINDS.has(state.kind)) return next()
      st.inFlight++
      void state.done.then(() => {
        st.inFlight--
        const last = state.attempts[state.attempts.length - 1]
        if (last) countMinute(st.usage, last.targetId, clock.now(), state.usage?.total_tokens ?? 0, last.durationMs)
      })
      return next()
    } as GatewayMiddleware
  },
  routes(registrar, cradle, options) {
    const st = stateOf(cradle)
    for (const r of uiRoutes(st.container, options, st)) registrar.add(r)
  },
})
