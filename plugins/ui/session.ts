/**
 * The admin UI's session: a stateless signed cookie, so a session survives restarts and works on every replica
 * without a session table.
 *
 *   sy_session = base64url(JSON {sub, exp, csrf}) + '.' + base64url(HMAC-SHA256(secret, payload))
 *
 * `sub` is 'master' or a virtual key's hash (the store's id for it, never the key itself); `exp` is unix seconds;
 * `csrf` is a random token the page sends back in `x-csrf-token` on writes (a cross-site form cannot read it).
 * The secret is derived from the master key by the auth plugin (HMAC(master_key, SECRET_LABEL)): every replica
 * with the same master key derives the same one, and changing the master key ends every session.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'

export const COOKIE_NAME = 'sy_session'
/** The label the session secret is derived under, so the secret is useless for anything else. */
export const SECRET_LABEL = 'switchyard-ui-session'
export const CSRF_HEADER = 'x-csrf-token'

export interface SessionClaims {
  /** 'master', or the virtual key's hash. */
  sub: string
  /** Expiry, unix seconds. */
  exp: number
  csrf: string
}

function sign(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest()
}

/** A new session for `sub`, valid `ttlS` seconds from `nowMs`. */
export function newSession(sub: string, nowMs: number, ttlS: number): SessionClaims {
  return { sub, exp: Math.floor(nowMs / 1000) + ttlS, csrf: randomBytes(24).toString('base64url') }
}

/** The cookie value for `claims`. */
export function encodeSession(secret: Buffer, claims: SessionClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url')
  return `${payload}.${sign(secret, payload).toString('base64url')}`
}

/** The claims of a cookie value, or null when it is malformed, forged (bad signature) or expired. */
export function decodeSession(secret: Buffer, value: string, nowMs: number): SessionClaims | null {
  const dot = value.indexOf('.')
  if (dot <= 0 || value.length > 2048) return null
  const payload = value.slice(0, dot)
  const given = Buffer.from(value.slice(dot + 1), 'base64url')
  const expected = sign(secret, payload)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
  let claims: unknown
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return null
  }
  if (!claims || typeof claims !== 'object') return null
  const { sub, exp, csrf } = claims as Record<string, unknown>
  if (typeof sub !== 'string' || !sub || typeof exp !== 'number' || typeof csrf !== 'string' || !csrf) return null
  if (exp * 1000 <= nowMs) return null
  return { sub, exp, csrf }
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string = COOKIE_NAME): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() !== name) continue
    const v = part.slice(eq + 1).trim()
    return v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v
  }
  return undefined
}

/** Methods that change nothing and so need no CSRF token. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Refuse a write authenticated by the cookie that lacks the session's CSRF token (403 `csrf_failed`): a page on
 * another site can make the browser send the cookie (SameSite=Strict aside), but it cannot read the token.
 */
export function checkCsrf(method: string, header: string | string[] | undefined, claims: SessionClaims): void {
  if (SAFE_METHODS.has(method)) return
  const given = typeof header === 'string' ? Buffer.from(header) : null
  const expected = Buffer.from(claims.csrf)
  if (given && given.length === expected.length && timingSafeEqual(given, expected)) return
  throw gatewayError('GW_ERR_FORBIDDEN',
    `CSRF check failed: a request signed in with the UI session cookie must send the session's token in the ${CSRF_HEADER} header (GET /ui/session returns it).`,
    { openaiCode: 'csrf_failed' })
}

/** The Set-Cookie value for a session (maxAgeS 0 clears it). */
export function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${COOKIE_NAME}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`
}

/**
 * What the UI plugin registers for the auth plugin (`uiSessions` in the container): the claims of the request's
 * session cookie, verified. Auth decides who they stand for (the master key, or a virtual key checked again).
 */
export interface UiSessions {
  /** The verified claims of the Cookie header's session, or null (no cookie, forged, expired, no master key). */
  read(cookieHeader: string | undefined): SessionClaims | null
  /** checkCsrf above, for a request the cookie signed in. */
  checkCsrf(method: string, header: string | string[] | undefined, claims: SessionClaims): void
}
