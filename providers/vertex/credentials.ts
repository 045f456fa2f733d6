/**
 * Google credentials for Vertex AI, from `vertex_credentials` (LiteLLM's litellm_param: a JSON string, a path to a
 * JSON file, or a YAML object), else VERTEXAI_CREDENTIALS, else GOOGLE_APPLICATION_CREDENTIALS (a file path).
 * Two kinds are understood: a service account (`type: service_account`: client_email + private_key, signed into a
 * JWT, see token.ts) and a user login from `gcloud auth application-default login` (`type: authorized_user`:
 * client_id + client_secret + refresh_token). Other kinds (external_account / workload identity federation) are
 * refused with a clear error rather than half-supported.
 *
 * Loaded once per distinct value and kept (a file is read once); a failure is not kept, so a fixed file is picked
 * up by the next request. Errors are 401s that name the problem but never echo the file's contents.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { gatewayError } from '../../core/errors.js'

/** Google's token endpoint, when the JSON names none. */
export const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token'

export interface ServiceAccount {
  kind: 'service_account'
  /** Stable identity of this credential, for the token cache (a hash, not the secret). */
  key: string
  clientEmail: string
  privateKey: KeyObject
  privateKeyId: string | undefined
  tokenUri: string
  projectId: string | undefined
}

export interface AuthorizedUser {
  kind: 'authorized_user'
  key: string
  clientId: string
  clientSecret: string
  refreshToken: string
  tokenUri: string
  projectId: string | undefined
}

export type GoogleCredentials = ServiceAccount | AuthorizedUser

const byText = new Map<string, GoogleCredentials>()
const byObject = new WeakMap<object, GoogleCredentials>()

/** The credentials a deployment names, parsed (and cached). `raw` is the resolved vertex_credentials value. */
export function loadCredentials(raw: unknown, provider: string): GoogleCredentials {
  if (raw !== null && typeof raw === 'object') {
    let c = byObject.get(raw)
    if (!c) byObject.set(raw, (c = parse(raw as Record<string, unknown>, JSON.stringify(raw), provider, 'vertex_credentials')))
    return c
  }
  if (typeof raw !== 'string' || !raw.trim()) throw authError(provider, 'vertex_credentials is empty')
  let c = byText.get(raw)
  if (c) return c
  const text = raw.trimStart().startsWith('{') ? raw : readCredentialFile(raw, provider)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw authError(provider, raw === text ? 'vertex_credentials is not valid JSON' : `the credentials file ${raw} is not valid JSON`)
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw authError(provider, 'vertex_credentials must be a JSON object')
  c = parse(json as Record<string, unknown>, text, provider, raw === text ? 'vertex_credentials' : raw)
  byText.set(raw, c)
  return c
}

function readCredentialFile(path: string, provider: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw authError(provider, `cannot read the credentials file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

function parse(j: Record<string, unknown>, text: string, provider: string, source: string): GoogleCredentials {
  const key = createHash('sha256').update(text).digest('hex')
  const tokenUri = str(j.token_uri) ?? DEFAULT_TOKEN_URI
  if (!tokenUri.startsWith('https://') && !tokenUri.startsWith('http://')) throw authError(provider, `${source}: token_uri must be an http(s) URL`)
  if (j.type === 'authorized_user') {
    const clientId = str(j.client_id)
    const clientSecret = str(j.client_secret)
    const refreshToken = str(j.refresh_token)
    if (!clientId || !clientSecret || !refreshToken) throw authError(provider, `${source}: authorized_user credentials need client_id, client_secret and refresh_token`)
    return { kind: 'authorized_user', key, clientId, clientSecret, refreshToken, tokenUri, projectId: str(j.quota_project_id) }
  }
  if (j.type !== undefined && j.type !== 'service_account') {
    throw authError(provider, `${source}: credentials of type '${String(j.type)}' are not supported; use a service account key or authorized_user credentials`)
  }
  const clientEmail = str(j.client_email)
  const pem = str(j.private_key)
  if (!clientEmail || !pem) throw authError(provider, `${source}: a service account key needs client_email and private_key`)
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch {
    throw authError(provider, `${source}: private_key is not a valid PEM private key`)
  }
  return { kind: 'service_account', key, clientEmail, privateKey, privateKeyId: str(j.private_key_id), tokenUri, projectId: str(j.project_id) }
}

export function authError(provider: string, why: string) {
  return gatewayError('GW_ERR_UPSTREAM_AUTH', `${provider}: ${why}`, { provider })
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}
