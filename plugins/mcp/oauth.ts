/**
 * OAuth 2.0 client credentials for MCP servers with `auth_type: oauth2`: a token is fetched from `token_url`
 * (form-encoded grant_type=client_credentials, client_id, client_secret, scope), kept until 60 s before it expires
 * (half-way for tokens living under two minutes), and fetched once at a time per server however many requests need it.
 */
import type { McpServerSpec } from './types.js'

/** A token is replaced this long before its `expires_in` runs out. */
const EARLY_MS = 60_000
/** A token endpoint that does not answer in this time fails the fetch. */
const FETCH_TIMEOUT_MS = 10_000

interface Cached {
  token: string
  /** Epoch ms after which a new token is fetched; Infinity when the endpoint gave no `expires_in`. */
  renewAt: number
}

/** One server's client-credentials token. */
export interface TokenSource {
  /** A valid access token: the cached one, else a fresh one (one fetch in flight at a time). */
  token(): Promise<string>
  /** Forget the cached token (the server answered 401): the next `token()` fetches a new one. */
  invalidate(): void
}

export function createTokenSource(spec: Pick<McpServerSpec, 'server_name' | 'token_url' | 'client_id' | 'client_secret' | 'scopes'>): TokenSource {
  let cached: Cached | null = null
  let inFlight: Promise<string> | null = null

  async function fetchToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: spec.client_id ?? '', client_secret: spec.client_secret ?? '' })
    if (spec.scopes.length) form.set('scope', spec.scopes.join(' '))
    const what = `MCP server '${spec.server_name}': OAuth token request to ${spec.token_url}`
    let res: Response
    try {
      res = await fetch(spec.token_url ?? '', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form,
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      })
    } catch (err) {
      throw new Error(`${what} failed: ${(err as Error).message}`, { cause: err })
    }
    const text = await res.text()
    if (!res.ok) throw new Error(`${what} failed: HTTP ${res.status} ${text.slice(0, 200)}`)
    let body: { access_token?: unknown; expires_in?: unknown }
    try {
      body = JSON.parse(text) as typeof body
    } catch {
      throw new Error(`${what}: the answer is not JSON: ${text.slice(0, 200)}`)
    }
    if (typeof body.access_token !== 'string' || !body.access_token) throw new Error(`${what}: the answer has no access_token`)
    const lifeMs = Number(body.expires_in) * 1000
    // A token shorter-lived than two minutes is renewed at half its life instead.
    const renewAt = Number.isFinite(lifeMs) && lifeMs > 0 ? Date.now() + Math.max(lifeMs - EARLY_MS, lifeMs / 2) : Infinity
    cached = { token: body.access_token, renewAt }
    return body.access_token
  }

  return {
    token() {
      if (cached && Date.now() < cached.renewAt) return Promise.resolve(cached.token)
      inFlight ??= fetchToken().finally(() => { inFlight = null })
      return inFlight
    },
    invalidate() {
      cached = null
    },
  }
}
