/**
 * OAuth access tokens for Vertex AI, made with node:crypto alone (no google-auth-library):
 * - a service account signs a JWT (RS256; iss = client_email, scope cloud-platform, aud = token_uri, one hour) and
 *   trades it at its `token_uri` (grant_type jwt-bearer, RFC 7523; https://developers.google.com/identity/protocols/oauth2/service-account#httprest);
 * - authorized_user credentials trade their refresh token (grant_type refresh_token).
 * A token is cached per credential until REFRESH_MARGIN_MS before it expires; callers that arrive while one is being
 * fetched share that fetch. A failure is not cached (the next call tries again) and becomes a 401 whose message
 * carries the token endpoint's error code, never the assertion, key or refresh token.
 */
import { sign } from 'node:crypto'
import { request, type Dispatcher } from 'undici'
import { gatewayError, type GatewayError } from '../../core/errors.js'
import type { GoogleCredentials } from './credentials.js'

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform'

/** Lifetime asked for in the JWT: one hour, Google's maximum. */
const ASSERTION_TTL_S = 3600
/** A token is replaced this long before it expires, so none is sent that lapses in flight: 5 minutes. */
const REFRESH_MARGIN_MS = 5 * 60_000
/** Longest wait for the token endpoint's headers, and between body chunks: 30 seconds. */
const TOKEN_TIMEOUT_MS = 30_000
/** Used when the endpoint gives no `expires_in`: Google's usual one hour. */
const DEFAULT_EXPIRES_S = 3600

export interface TokenSourceDeps {
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number
  /** undici dispatcher for the token endpoint; the global one by default. */
  dispatcher?: Dispatcher
}

interface Entry {
  token: string | null
  /** Epoch ms after which the token is not used. */
  refreshAt: number
  pending: Promise<string> | null
}

export class TokenSource {
  private readonly entries = new Map<string, Entry>()
  private readonly now: () => number
  private readonly dispatcher: Dispatcher | undefined

  constructor(private readonly provider: string, deps: TokenSourceDeps = {}) {
    this.now = deps.now ?? Date.now
    this.dispatcher = deps.dispatcher
  }

  /** A valid access token for these credentials: cached, or fetched once for all concurrent callers. */
  token(creds: GoogleCredentials): Promise<string> {
    let e = this.entries.get(creds.key)
    if (!e) this.entries.set(creds.key, (e = { token: null, refreshAt: 0, pending: null }))
    if (e.token !== null && this.now() < e.refreshAt) return Promise.resolve(e.token)
    if (e.pending) return e.pending
    const entry = e
    entry.pending = this.fetch(creds).then(
      ({ token, expiresIn }) => {
        entry.token = token
        entry.refreshAt = this.now() + expiresIn * 1000 - REFRESH_MARGIN_MS
        entry.pending = null
        return token
      },
      (err: unknown) => {
        entry.pending = null
        throw err
      },
    )
    return entry.pending
  }

  private async fetch(creds: GoogleCredentials): Promise<{ token: string; expiresIn: number }> {
    const form = new URLSearchParams()
    if (creds.kind === 'service_account') {
      form.set('grant_type', 'urn:ietf:params:oauth:grant-type:jwt-bearer')
      form.set('assertion', this.assertion(creds))
    } else {
      form.set('grant_type', 'refresh_token')
      form.set('client_id', creds.clientId)
      form.set('client_secret', creds.clientSecret)
      form.set('refresh_token', creds.refreshToken)
    }
    const who = creds.kind === 'service_account' ? `service account ${creds.clientEmail}` : 'authorized_user credentials'
    let status: number
    let text: string
    try {
      const res = await request(creds.tokenUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        headersTimeout: TOKEN_TIMEOUT_MS,
        bodyTimeout: TOKEN_TIMEOUT_MS,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      })
      status = res.statusCode
      text = await res.body.text()
    } catch (err) {
      throw this.failure(who, `the token endpoint could not be reached (${(err as { code?: string }).code ?? 'error'})`, err)
    }
    let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {}
    try {
      json = JSON.parse(text)
    } catch {
      // described below from the status
    }
    if (status >= 400 || typeof json.access_token !== 'string' || !json.access_token) {
      // OAuth's `error` / `error_description` ("invalid_grant: Invalid JWT Signature.") name the problem and hold no secret.
      const detail = typeof json.error === 'string'
        ? `${json.error}${typeof json.error_description === 'string' ? `: ${json.error_description}` : ''}`
        : `HTTP ${status}`
      throw this.failure(who, `the token endpoint refused the credentials (${detail})`)
    }
    const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_EXPIRES_S
    return { token: json.access_token, expiresIn }
  }

  /** The signed JWT (header.claims.signature, base64url) a service account trades for a token. */
  private assertion(creds: Extract<GoogleCredentials, { kind: 'service_account' }>): string {
    const iat = Math.floor(this.now() / 1000)
    const header = { alg: 'RS256', typ: 'JWT', ...(creds.privateKeyId ? { kid: creds.privateKeyId } : {}) }
    const claims = { iss: creds.clientEmail, scope: CLOUD_PLATFORM_SCOPE, aud: creds.tokenUri, iat, exp: iat + ASSERTION_TTL_S }
    const unsigned = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const signature = sign('sha256', Buffer.from(unsigned), creds.privateKey).toString('base64url')
    return `${unsigned}.${signature}`
  }

  private failure(who: string, why: string, cause?: unknown): GatewayError {
    return gatewayError('GW_ERR_UPSTREAM_AUTH', `${this.provider}: no access token for ${who}: ${why}`, { provider: this.provider, cause })
  }
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url')
}
