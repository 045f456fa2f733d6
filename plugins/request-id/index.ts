/**
 * request-id: the core gives every request a UUID and echoes it as `x-request-id`. This plugin lets a trusted
 * caller (another proxy, a tracing header) supply the id instead, so one id follows the call across systems.
 */
import { definePlugin } from '../../core/plugin.js'

interface Options {
  /** Header read (and echoed). */
  header: string
  /** Use the caller's id when it is well-formed. */
  trust_incoming: boolean
}

/** Printable, no spaces, at most 128 characters: safe in logs and headers. */
const VALID_ID = /^[A-Za-z0-9._:\-]{1,128}$/

export default definePlugin<Options>({
  name: 'request-id',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      header: { type: 'string', minLength: 1, default: 'x-request-id' },
      trust_incoming: { type: 'boolean', default: true },
    },
  },
  middleware(_cradle, options) {
    const header = options.header.toLowerCase()
    return function requestId(ctx, next) {
      const incoming = options.trust_incoming ? ctx.get(header) : ''
      if (incoming && VALID_ID.test(incoming)) {
        // One call of a several-model request: the caller's id plus its place, so each call keeps its own id.
        ctx.state.requestId = ctx.state.batchIndex === null ? incoming : `${incoming}-${ctx.state.batchIndex}`
        if (ctx.state.batchIndex === null) {
          ctx.set('x-request-id', incoming)
          ctx.set('x-litellm-call-id', incoming)
        }
      }
      if (header !== 'x-request-id') ctx.set(header, ctx.state.requestId)
      return next()
    }
  },
})
