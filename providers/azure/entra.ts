/**
 * Microsoft Entra ID (Azure AD) bearer tokens for Azure deployments that have no API key, as LiteLLM takes them
 * (litellm/llms/azure/common_utils.py): a static `azure_ad_token` / AZURE_AD_TOKEN, or the client-credentials flow
 * from `tenant_id`, `client_id`, `client_secret` (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) for the scope
 * `azure_scope` (AZURE_SCOPE, default https://cognitiveservices.azure.com/.default).
 *
 * The token comes from `{authority}/{tenant}/oauth2/v2.0/token`
 * (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow), the authority being
 * AZURE_AUTHORITY_HOST (azure-identity's variable, for sovereign clouds) or https://login.microsoftonline.com.
 * One token per credential is kept until shortly before it expires; calls that find none share one fetch. Past the
 * refresh point but before expiry the current token is still used while one background fetch replaces it, so a slow
 * or failing token endpoint does not stall traffic until the token really expires.
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'

export const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com'
export const DEFAULT_SCOPE = 'https://cognitiveservices.azure.com/.default'

/** Refresh this long before expiry (azure-identity / MSAL refresh 5 minutes early too); milliseconds. */
const REFRESH_MARGIN_MS = 5 * 60_000
/** Longest wait for the token endpoint; milliseconds. */
const TOKEN_TIMEOUT_MS = 10_000
/** Credentials cached at once; past it the oldest is dropped (a deployment list has a handful). */
const MAX_CREDENTIALS = 256

export interface ClientCredentials {
  authority: string
  tenantId: string
  clientId: string
  clientSecret: string
  scope: string
  /** Cache key: the four fields and the authority, joined once. */
  key: string
}

export interface EntraDeps {
  /** Clock, milliseconds since the epoch (tests inject a fake one). */
  now?: () => number
  /** HTTP client for the token endpoint (the global fetch by default). */
  fetch?: typeof fetch
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** The static bearer token of a deployment (litellm_params.azure_ad_token or AZURE_AD_TOKEN), if any. */
export function staticToken(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  return str(params?.azure_ad_token)
}

/** The client credentials of a deployment, when all three of tenant, client id and secret are set. */
export function clientCredentials(params: Readonly<Record<string, unknown>> | undefined): ClientCredentials | null {
  if (!params) return null
  const tenantId = str(params.tenant_id)
  const clientId = str(params.client_id)
  const clientSecret = str(params.client_secret)
  if (!tenantId || !clientId || !clientSecret) return null
  let authority = str(params.azure_authority_host) ?? DEFAULT_AUTHORITY
  while (authority.endsWith('/')) authority = authority.slice(0, -1)
  const scope = str(params.azure_scope) ?? DEFAULT_SCOPE
  return { authority, tenantId, clientId, clientSecret, scope, key: `${authority}\n${tenantId}\n${clientId}\n${scope}\n${clientSecret}` }
}

interface Entry {
  token: string | null
  /** Use a fetched token until then, then refresh. */
  refreshAt: number
  /** The token is no good after this. */
  expiresAt: number
  pending: Promise<string> | null
}

export class EntraTokens {
  private readonly now: () => number
  private readonly fetch: typeof fetch
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly provider: string, deps: EntraDeps = {}) {
    this.now = deps.now ?? Date.now
    this.fetch = deps.fetch ?? globalThis.fetch
  }

  /** The bearer token for `c`: synchronously when a fresh one is cached, else once fetched. */
  token(c: ClientCredentials): string | Promise<string> {
    const key = c.key
    let e = this.entries.get(key)
    if (!e) {
      if (this.entries.size >= MAX_CREDENTIALS) this.entries.delete(this.entries.keys().next().value!)
      this.entries.set(key, (e = { token: null, refreshAt: 0, expiresAt: 0, pending: null }))
    }
    const now = this.now()
    if (e.token !== null && now < e.refreshAt) return e.token
    const pending = (e.pending ??= this.refresh(e, c))
    if (e.token !== null && now < e.expiresAt) {
      // Still valid: use it; the refresh runs in the background and its failure is retried on the next call.
      pending.catch(ignore)
      return e.token
    }
    return pending
  }

  private async refresh(e: Entry, c: ClientCredentials): Promise<string> {
    try {
      const started = this.now()
      const { token, expiresInS } = await this.request(c)
      const lifetime = expiresInS * 1000
      e.token = token
      e.expiresAt = started + lifetime
      // A short-lived token (tests, odd tenants) refreshes halfway instead of never being fresh.
      e.refreshAt = started + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2)
      return token
    } finally {
      e.pending = null
    }
  }

  private async request(c: ClientCredentials): Promise<{ token: string; expiresInS: number }> {
    const url = `${c.authority}/${encodeURIComponent(c.tenantId)}/oauth2/v2.0/token`
    const form = new URLSearchParams({
      grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: c.scope,
    })
    let res: Response
    let body: unknown = null
    try {
      res = await this.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      })
      const text = await res.text()
      try {
        body = JSON.parse(text)
      } catch {
        body = null
      }
    } catch (err) {
      const e = err as (Error & { cause?: { code?: unknown } }) | null
      const timedOut = e?.name === 'TimeoutError'
      // fetch says only "fetch failed"; the socket's code (ECONNREFUSED, ENOTFOUND) is on its cause.
      const code = typeof e?.cause?.code === 'string' ? ` (${e.cause.code})` : ''
      const why = timedOut ? `timed out after ${TOKEN_TIMEOUT_MS} ms` : `${e?.message ?? String(err)}${code}`
      throw gatewayError(timedOut ? 'GW_ERR_UPSTREAM_TIMEOUT' : 'GW_ERR_UPSTREAM_CONNECTION',
        `Azure AD token request to ${c.authority} failed: ${why}`, { provider: this.provider, cause: err })
    }
    const b = (body ?? {}) as { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown }
    if (!res.ok) throw tokenError(this.provider, res.status, b, c)
    const expiresInS = Number(b.expires_in)
    if (typeof b.access_token !== 'string' || !b.access_token || !Number.isFinite(expiresInS) || expiresInS <= 0) {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `Azure AD token response from ${c.authority} has no access_token / expires_in`,
        { provider: this.provider })
    }
    return { token: b.access_token, expiresInS }
  }
}

/**
 * A refused token request: the endpoint's own words (`invalid_client: AADSTS7000215: Invalid client secret ...`),
 * never the secret, as a 401 for bad credentials or the 5xx class when the endpoint is down.
 */
function tokenError(provider: string, status: number, b: { error?: unknown; error_description?: unknown }, c: ClientCredentials): GatewayError {
  const what = [str(b.error), str(b.error_description)?.split('\n', 1)[0]!.trim()].filter(Boolean).join(': ') || `HTTP ${status}`
  // Defence in depth: the endpoint has no reason to echo the secret, and if it does it stays out of the message.
  const message = `Azure AD token request for client ${c.clientId} failed: ${what}`.replaceAll(c.clientSecret, '***')
  const code = status >= 500 ? 'GW_ERR_UPSTREAM_UNAVAILABLE' : status === 429 ? 'GW_ERR_UPSTREAM_RATE_LIMIT' : 'GW_ERR_UPSTREAM_AUTH'
  return gatewayError(code, message, { provider, upstreamStatus: status })
}

function ignore(): void {}
