/**
 * tagger: an in-house plugin written from scratch. It reads the caller's team and tags from request headers,
 * keeps them on ctx.state (declared below by module augmentation), echoes them as `x-switchyard-tags` and logs
 * them with the request's outcome and usage once the response is complete (streams and failures included).
 *
 *   curl -H 'x-team: search' -H 'x-tags: beta, eu' ...   ->   x-switchyard-tags: team:search,beta,eu
 */
import { definePlugin } from '../../core/index.js'

// Declare the per-request field up front; the middleware below initialises it before anything reads it.
// (Outside this repo: `declare module 'switchyard' { ... }`.)
declare module '../../core/state.js' {
  interface GatewayState {
    tagger: { team: string; tags: string[] }
  }
}

interface Options {
  team_header: string
  tags_header: string
  response_header: string
  default_team: string
  max_tags: number
}

export default definePlugin<Options>({
  name: 'tagger',
  // Checked once at boot (ajv, useDefaults): a typo in gateway.yaml fails the start, not a request.
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      team_header: { type: 'string', minLength: 1, default: 'x-team' },
      tags_header: { type: 'string', minLength: 1, default: 'x-tags' },
      response_header: { type: 'string', minLength: 1, default: 'x-switchyard-tags' },
      default_team: { type: 'string', minLength: 1, default: 'unassigned' },
      max_tags: { type: 'integer', minimum: 0, maximum: 32, default: 8 },
    },
  },
  middleware(_cradle, o) {
    return async function tagger(ctx, next) {
      const team = ctx.get(o.team_header).trim() || o.default_team
      const tags = ctx.get(o.tags_header).split(',').map((s) => s.trim()).filter(Boolean).slice(0, o.max_tags)
      ctx.state.tagger = { team, tags }
      // Before next(): a stream writes its headers as soon as the first chunk is ready.
      ctx.set(o.response_header, [`team:${team}`, ...tags].join(','))
      // Work after the response goes on ctx.state.done, not after `await next()`: when the upstream fails, next()
      // throws and code after it never runs. done resolves once the last byte is written (or the client left),
      // with the status, error and usage, whatever happened.
      const log = ctx.state.scope.cradle.log
      void ctx.state.done.then((outcome) => {
        log.info('tagged request', { team, tags, model: ctx.state.model, status: outcome.status, error: outcome.error?.code, usage: outcome.usage })
      })
      return next()
    }
  },
})
