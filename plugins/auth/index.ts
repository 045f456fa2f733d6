/**
 * auth: checks the caller's key and sets `ctx.state.principal`.
 *
 * Keys are read from the headers the official SDKs send: `Authorization: Bearer` (openai), `api-key` (Azure
 * clients), `x-api-key` (anthropic), `x-goog-api-key` (gemini) and LiteLLM's `x-litellm-api-key`. Comparison is on
 * SHA-256 digests in constant time. With no master key and no keys configured the gateway is open (as LiteLLM is
 * without a master_key) and every caller is `anonymous`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { definePlugin } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import type { Principal } from '../../core/state.js'

interface Options {
  /** LiteLLM general_settings.master_key: full access. */
  master_key?: string
  /** Static keys with access to every model (virtual keys with limits come from the keys plugin). */
  keys: string[]
}

const HEADERS = ['api-key', 'x-api-key', 'x-goog-api-key', 'x-litellm-api-key']
const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', kind: 'anonymous' })
const MASTER: Principal = Object.freeze({ id: 'master', kind: 'master' })

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

export function extractKey(headers: Record<string, string | string[] | undefined>): string | undefined {
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

export default definePlugin<Options>({
  name: 'auth',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      master_key: { type: 'string', minLength: 1 },
      keys: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    },
  },
  middleware(_cradle, options) {
    const master = options.master_key ? digest(options.master_key) : null
    const statics = options.keys.map((k) => ({ digest: digest(k), principal: { id: digest(k).toString('hex').slice(0, 16), kind: 'key' } as Principal }))
    const open = !master && statics.length === 0
    return function auth(ctx, next) {
      if (open) {
        ctx.state.principal = ANONYMOUS
        return next()
      }
      const key = extractKey(ctx.req.headers)
      if (!key) {
        throw gatewayError('GW_ERR_AUTH', 'Authentication Error, No api key passed in. Send it as `Authorization: Bearer <key>`.')
      }
      const d = digest(key)
      if (master && timingSafeEqual(d, master)) {
        ctx.state.principal = MASTER
        return next()
      }
      for (const s of statics) {
        if (timingSafeEqual(d, s.digest)) {
          ctx.state.principal = s.principal
          return next()
        }
      }
      throw gatewayError('GW_ERR_AUTH', 'Authentication Error, Invalid proxy server token passed. Check the key and try again.')
    }
  },
})
