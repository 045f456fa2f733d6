/**
 * A fake Google OAuth token endpoint for the Vertex AI tests: a node:http server on 127.0.0.1, port 0, that checks
 * what a real one checks. A jwt-bearer grant must carry an RS256 JWT whose signature verifies with the service
 * account's public key and whose claims name the account, the cloud-platform scope, this endpoint as audience and a
 * one-hour lifetime; a refresh_token grant must carry the client id, secret and refresh token. Anything else gets
 * OAuth's `{"error": "invalid_grant"}` 400, so a token is only ever issued to a correct request.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export const CLIENT_EMAIL = 'switchyard-test@demo-project.iam.gserviceaccount.com'
export const USER = { client_id: 'cid.apps.googleusercontent.com', client_secret: 'user-secret-xyz', refresh_token: '1//refresh-token-xyz' }

export interface TokenGrant {
  grant: string
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  form: Record<string, string>
}

export interface TokenServer {
  /** The token_uri to put in credentials. */
  uri: string
  /** Grants the server accepted, in order (a refused one is not listed). */
  issued: TokenGrant[]
  /** Requests refused, with the reason the server gave. */
  refused: string[]
  /** When set, every request is refused with this OAuth error (a revoked key, say). */
  failWith: { error: string; error_description: string } | null
  /** Token lifetime the server reports, seconds. */
  expiresIn: number
  publicKey: KeyObject
  /** The PEM private key of the service account this server trusts. */
  privateKeyPem: string
}

/** A fresh RSA key pair: the service account's private key (PEM) and the public key the fake server verifies with. */
export function keyPair(): { privateKeyPem: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey }
}

export async function startTokenServer(t: Test): Promise<TokenServer> {
  const { privateKeyPem, publicKey } = keyPair()
  const state: Omit<TokenServer, 'uri'> = { issued: [], refused: [], failWith: null, expiresIn: 3600, publicKey, privateKeyPem }
  let uri = ''
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (raw += c))
    req.on('end', () => {
      const refuse = (why: string) => {
        state.refused.push(why)
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify(state.failWith ?? { error: 'invalid_grant', error_description: why }))
      }
      if (state.failWith) return refuse('configured to fail')
      if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return refuse('not a form post')
      const form = Object.fromEntries(new URLSearchParams(raw))
      let grant: TokenGrant
      if (form.grant_type === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
        const parts = String(form.assertion).split('.')
        if (parts.length !== 3) return refuse('assertion is not a JWT')
        const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString())
        const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString())
        const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2]!, 'base64url'))
        if (header.alg !== 'RS256' || !ok) return refuse('Invalid JWT Signature.')
        if (claims.iss !== CLIENT_EMAIL || claims.aud !== uri || claims.scope !== 'https://www.googleapis.com/auth/cloud-platform') return refuse('bad claims')
        if (claims.exp - claims.iat !== 3600) return refuse('lifetime is not one hour')
        grant = { grant: 'jwt-bearer', header, claims, form }
      } else if (form.grant_type === 'refresh_token') {
        if (form.client_id !== USER.client_id || form.client_secret !== USER.client_secret || form.refresh_token !== USER.refresh_token) return refuse('bad refresh grant')
        grant = { grant: 'refresh_token', form }
      } else {
        return refuse('unsupported_grant_type')
      }
      state.issued.push(grant)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: `ya29.token-${state.issued.length}`, expires_in: state.expiresIn, token_type: 'Bearer' }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return Object.assign(state, { uri })
}

/** A service-account JSON for the fake server (project demo-project), as Google's console writes it. */
export function serviceAccount(s: TokenServer, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'service_account', project_id: 'demo-project', private_key_id: 'kid-1', private_key: s.privateKeyPem,
    client_email: CLIENT_EMAIL, client_id: '1234', token_uri: s.uri, ...over,
  }
}

/** Write JSON to a file in a temp dir removed at teardown; returns the path. */
export function writeJson(t: Test, name: string, value: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'sy-vertex-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(value))
  return path
}
