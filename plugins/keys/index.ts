/**
 * keys: LiteLLM's management API over the store: virtual keys, teams, internal users, customers (end users),
 * budgets, stored models and spend reports, with LiteLLM's paths, fields and status codes, so scripts written
 * for the LiteLLM proxy keep working.
 *
 *   pipeline:
 *     - store-sqlite: { path: ./switchyard.db }   # any store plugin, listed before keys (it opens first)
 *     - auth: { master_key: os.environ/LITELLM_MASTER_KEY }
 *     - keys: { store_model_in_db: true }
 *
 * Without a store every route answers 400 "No connected db.", as LiteLLM does without a database. Who may call
 * what is in access.ts; every change is announced on the event bus ('invalidate', 'spend.set', 'models.changed')
 * so auth, budgets and other replicas drop what they cached.
 */
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import type { RouteDef } from '../../core/http/routes.js'
import { checkAccess } from './access.js'
import { readBody } from './input.js'
import { storeError, type Api, type Call, type Deps, type KeysOptions } from './shared.js'
import { keyApis } from './keys.js'
import { teamApis } from './teams.js'
import { userApis } from './users.js'
import { customerApis } from './customers.js'
import { budgetApis } from './budgets.js'
import { createModelSync, modelApis, type ModelSync } from './models.js'
import { spendApis } from './spend.js'

/** One model sync per gateway (cradle), shared by routes() and start(). */
const syncs = new WeakMap<object, ModelSync>()

function syncFor(deps: Deps): ModelSync {
  let s = syncs.get(deps.cradle)
  if (!s) syncs.set(deps.cradle, (s = createModelSync(deps)))
  return s
}

/** Whether the request carries a body at all (routes whose body is optional, e.g. /key/{key}/regenerate). */
function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** A resource's route as the gateway serves it: access check, the store, the body, the JSON response. */
function toRoute(api: Api, deps: Deps): RouteDef {
  const limit = deps.cradle.config.server.body_limit
  const route = typeof api.path === 'string' ? api.path : api.path[0]!
  const handler: GatewayMiddleware = async (ctx) => {
    const principal = ctx.state.principal
    checkAccess(principal, api.access, route)
    const store = deps.cradle.store
    if (!store) throw gatewayError('GW_ERR_NO_STORE', 'No connected db.')
    const call: Call = {
      ctx,
      store,
      principal,
      body: () => readBody(ctx, limit),
      optionalBody: async () => (hasBody(ctx.req.headers) ? readBody(ctx, limit) : {}),
    }
    let result: unknown
    try {
      result = await api.run(call)
    } catch (err) {
      throw storeError(err)
    }
    ctx.status = 200
    if (typeof result === 'number') {
      // Koa sends only strings, buffers, streams and objects; LiteLLM answers some deletes with a bare count.
      ctx.type = 'application/json'
      ctx.body = JSON.stringify(result)
    } else {
      ctx.body = result ?? null
    }
  }
  Object.defineProperty(handler, 'name', { value: api.name })
  return { method: api.method, path: api.path, kind: 'management', handler }
}

export default definePlugin<KeysOptions>({
  name: 'keys',
  dependencies: ['auth'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      store_model_in_db: { type: 'boolean', default: false },
    },
  },
  routes(registrar, cradle, options) {
    const deps: Deps = { cradle, options, now: () => cradle.clock.now() }
    const apis = [
      ...keyApis(deps), ...teamApis(deps), ...userApis(deps), ...customerApis(deps), ...budgetApis(deps),
      ...modelApis(deps, syncFor(deps)), ...spendApis(deps),
    ]
    for (const api of apis) registrar.add(toRoute(api, deps))
  },
  async start(cradle, options) {
    if (!options.store_model_in_db || !cradle.store) return
    const sync = syncFor({ cradle, options, now: () => cradle.clock.now() })
    // Stored models serve from the first request after a restart.
    await sync.load()
    cradle.events.on('models.changed', ({ remote }) => {
      if (!remote) return
      sync.sync().catch((err: unknown) => cradle.logger.error('stored models reload failed', { err }))
    })
  },
})
