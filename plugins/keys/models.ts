/**
 * Stored models, as LiteLLM's /model/new, /model/update and /model/delete with STORE_MODEL_IN_DB (here the keys
 * plugin's `store_model_in_db` option). A stored deployment is written to the store and added to the model table
 * at once (a chat call to it works without a restart); it is loaded again at start. config.yaml deployments stay
 * as the file says: the API cannot change or delete them.
 *
 * Replicas: every change emits 'models.changed'; one arriving from another replica (`remote`) reloads the stored
 * models from the store.
 */
import type { ModelEntry } from '../../core/config/load.js'
import { GatewayError } from '../../core/errors.js'
import type { ModelRecord } from '../../core/store.js'
import { bodySchema, S } from './input.js'
import { actor, allRows, conflict, invalid, invalidate, iso, newId, type Api, type Deps } from './shared.js'

/** litellm_params fields whose values are credentials: never sent back in a response. */
const SECRET = /key|secret|password|token|credential/i

const LITELLM_PARAMS = { type: 'object', required: ['model'], properties: { model: { type: 'string', minLength: 1 } } } as const

const checkNew = bodySchema({
  model_name: { type: 'string', minLength: 1 },
  litellm_params: LITELLM_PARAMS,
  model_info: { type: ['object', 'null'], properties: { id: S.idOrNull } },
}, ['model_name', 'litellm_params'])
const checkUpdate = bodySchema({
  model_name: { type: ['string', 'null'], minLength: 1 },
  litellm_params: { type: ['object', 'null'], properties: { model: { type: 'string', minLength: 1 } } },
  model_info: { type: 'object', required: ['id'], properties: { id: S.id } },
}, ['model_info'])
const checkDelete = bodySchema({ id: S.id }, ['id'])

function entryOf(rec: ModelRecord): ModelEntry {
  return {
    model_name: rec.model_name,
    litellm_params: rec.litellm_params as ModelEntry['litellm_params'],
    model_info: { ...rec.model_info, id: rec.model_id },
  }
}

/** A stored model as a response shows it: credentials masked. */
function shown(rec: ModelRecord): ModelRecord {
  const params: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(rec.litellm_params)) params[k] = SECRET.test(k) && typeof v === 'string' && !v.startsWith('os.environ/') ? '********' : v
  return { ...rec, litellm_params: params }
}

function disabledError(): GatewayError {
  return invalid("Set `store_model_in_db: true` in the keys plugin's options (LiteLLM: STORE_MODEL_IN_DB='True') to enable this feature.", 'store_model_in_db')
}

export interface ModelSync {
  /** Add every stored model to the model table (start, after the store opened). */
  load(): Promise<void>
  /** Make the model table's stored deployments match the store (another replica changed them). */
  sync(): Promise<void>
  /** Record that this replica now serves `rec` (changed through the API), or no longer serves `id`. */
  noteServed(rec: ModelRecord): void
  noteRemoved(id: string): void
}

export function createModelSync(deps: Deps): ModelSync {
  const { models, logger } = deps.cradle
  /** Stored model id -> the updated_at of the version the table serves. */
  const served = new Map<string, string>()

  function serve(rec: ModelRecord): void {
    try {
      if (models.isStored(rec.model_id)) models.update(rec.model_id, entryOf(rec))
      else models.add(entryOf(rec))
      served.set(rec.model_id, rec.updated_at)
    } catch (err) {
      logger.warn('stored model not served', { modelId: rec.model_id, modelName: rec.model_name, error: err instanceof Error ? err.message : String(err) })
    }
  }

  async function all(): Promise<ModelRecord[] | null> {
    const store = deps.cradle.store
    return store ? allRows(store, 'model') : null
  }

  return {
    async load() {
      for (const rec of (await all()) ?? []) serve(rec)
    },
    async sync() {
      const rows = await all()
      if (!rows) return
      const ids = new Set(rows.map((r) => r.model_id))
      for (const id of models.storedIds()) {
        if (!ids.has(id)) {
          models.remove(id)
          served.delete(id)
        }
      }
      for (const rec of rows) if (served.get(rec.model_id) !== rec.updated_at) serve(rec)
    },
    noteServed: (rec) => void served.set(rec.model_id, rec.updated_at),
    noteRemoved: (id) => void served.delete(id),
  }
}

export function modelApis(deps: Deps, sync: ModelSync): Api[] {
  const { models, events } = deps.cradle
  const enabled = () => {
    if (!deps.options.store_model_in_db) throw disabledError()
  }
  const changed = (id: string) => {
    invalidate(deps, 'model', id)
    events.emit('models.changed', {})
  }
  return [
    {
      method: 'POST', path: '/model/new', access: 'admin', name: 'newModel',
      async run(call) {
        enabled()
        const body = checkNew(await call.body())
        const info = (body.model_info as Record<string, unknown> | null | undefined) ?? {}
        const id = (info.id as string | null | undefined) ?? newId()
        if (models.isStored(id) || models.deployments().some((t) => t.id === id)) throw conflict(`A deployment with id ${id} already exists.`, 'model_info.id')
        const ts = iso(deps.now())
        const rec: ModelRecord = {
          model_id: id,
          model_name: body.model_name as string,
          litellm_params: body.litellm_params as Record<string, unknown>,
          model_info: { ...info, id },
          created_at: ts,
          updated_at: ts,
          created_by: actor(call.principal),
          updated_by: actor(call.principal),
        }
        await call.store.insert('model', rec)
        try {
          models.add(entryOf(rec))
        } catch (err) {
          // Not servable (an unset environment variable, a taken id): nothing stays stored.
          await call.store.delete('model', id)
          throw err
        }
        sync.noteServed(rec)
        changed(id)
        return { ...shown(rec), model_info: { ...rec.model_info, db_model: true } }
      },
    },
    {
      method: 'POST', path: '/model/update', access: 'admin', name: 'updateModel',
      async run(call) {
        enabled()
        const body = checkUpdate(await call.body())
        const info = body.model_info as Record<string, unknown>
        const id = info.id as string
        const rec = await call.store.get('model', id)
        if (!rec) {
          if (models.deployments().some((t) => t.id === id) && !models.isStored(id)) {
            throw invalid("Can't edit model. Model in config. Store model in db via `/model/new`. to edit.", 'model_info.id')
          }
          throw invalid(`Model with id=${id} not found in db`, 'model_info.id')
        }
        // LiteLLM merges: fields not sent keep their stored values.
        const next: ModelRecord = {
          ...rec,
          model_name: (body.model_name as string | null | undefined) ?? rec.model_name,
          litellm_params: { ...rec.litellm_params, ...((body.litellm_params as Record<string, unknown> | null | undefined) ?? {}) },
          model_info: { ...rec.model_info, ...info, id },
          updated_at: iso(deps.now()),
          updated_by: actor(call.principal),
        }
        models.update(id, entryOf(next))
        try {
          await call.store.update('model', id, next)
        } catch (err) {
          models.update(id, entryOf(rec))
          throw err
        }
        sync.noteServed(next)
        changed(id)
        return shown(next)
      },
    },
    {
      method: 'POST', path: '/model/delete', access: 'admin', name: 'deleteModel',
      async run(call) {
        enabled()
        const id = checkDelete(await call.body()).id as string
        const rec = await call.store.get('model', id)
        if (!rec) {
          const fromConfig = models.deployments().some((t) => t.id === id) && !models.isStored(id)
          throw invalid(`Model with id=${id} not found in db${fromConfig ? ' (it comes from config.yaml; edit the config to remove it)' : ''}`, 'id')
        }
        await call.store.delete('model', id)
        if (models.isStored(id)) models.remove(id)
        sync.noteRemoved(id)
        changed(id)
        return { message: `Model: ${id} deleted successfully` }
      },
    },
  ]
}
