/**
 * Customers (end users: the `user` field of a model call), as LiteLLM's /customer/* routes (also under the old
 * /end_user/* paths): new, info, update, delete, list, block, unblock.
 *
 * A customer's budget is kept on its own record (max_budget, budget_duration, ...), or comes from a budget row
 * (`budget_id`, see budgets.ts). Responses carry LiteLLM's `litellm_budget_table`: that row, or the customer's own
 * limits in its shape.
 */
import { StoreConflictError, type EndUserRecord, type Store } from '../../core/store.js'
import { bodySchema, BUDGET_PROPS, MAX_IDS, queryRequired, S } from './input.js'
import {
  allRows, budgetFields, budgetPatch, conflict, copyPresent, extras, invalid, invalidate, iso, notFound, pyList, spendSet,
  type Api, type Deps,
} from './shared.js'

const CUSTOMER_PROPS = {
  ...BUDGET_PROPS,
  user_id: S.id,
  alias: S.text,
  blocked: S.bool,
  allowed_model_region: { enum: ['eu', 'us', null] },
  default_model: S.text,
  model_max_budget: S.modelMaxBudget,
  budget_reset_at: S.timestamp,
} as const

const HANDLED = new Set([...Object.keys(CUSTOMER_PROPS), 'created_at', 'updated_at', 'litellm_budget_table', 'object_permission'])
const PLAIN = ['alias', 'blocked', 'allowed_model_region', 'default_model'] as const
const LIMIT_FIELDS = ['max_budget', 'soft_budget', 'tpm_limit', 'rpm_limit', 'max_parallel_requests', 'budget_duration'] as const

const checkNew = bodySchema(CUSTOMER_PROPS, ['user_id'])
const checkUpdate = bodySchema(CUSTOMER_PROPS, ['user_id'])
const checkIds = bodySchema({ user_ids: { type: 'array', items: S.id, minItems: 1, maxItems: MAX_IDS } }, ['user_ids'])

function newCustomer(deps: Deps, userId: string, body: Record<string, unknown> = {}): EndUserRecord {
  const record: Record<string, unknown> = {
    ...extras(body, HANDLED),
    ...budgetFields(body, deps.now()),
    user_id: userId,
    alias: null,
    blocked: false,
    allowed_model_region: null,
    default_model: null,
  }
  copyPresent(record, body, PLAIN)
  record.blocked ??= false
  if (typeof body.budget_reset_at === 'string') record.budget_reset_at = new Date(body.budget_reset_at).toISOString()
  return record as unknown as EndUserRecord
}

/** The record with LiteLLM's `litellm_budget_table`: the linked budget row, else its own limits in that shape. */
async function withBudgetTable(store: Store, e: EndUserRecord): Promise<Record<string, unknown>> {
  if (e.budget_id) return { ...e, litellm_budget_table: await store.get('budget', e.budget_id) }
  if (!LIMIT_FIELDS.some((f) => e[f] !== null && e[f] !== undefined)) return { ...e, litellm_budget_table: null }
  const table: Record<string, unknown> = { budget_id: null, budget_reset_at: e.budget_reset_at }
  for (const f of LIMIT_FIELDS) table[f] = e[f] ?? null
  return { ...e, litellm_budget_table: table }
}

async function checkRefs(deps: Deps, store: Store, body: Record<string, unknown>): Promise<void> {
  if (typeof body.budget_id === 'string' && !(await store.get('budget', body.budget_id))) {
    throw invalid(`Budget not found, passed budget_id=${body.budget_id}. Create it with /budget/new.`, 'budget_id')
  }
  if (typeof body.default_model === 'string' && !deps.cradle.models.has(body.default_model)) {
    throw invalid(`Default Model not on proxy. Configure via \`/model/new\` or config.yaml. Default_model=${body.default_model}`, 'default_model')
  }
}

async function setBlocked(deps: Deps, store: Store, ids: readonly string[], blocked: boolean): Promise<EndUserRecord[]> {
  const out: EndUserRecord[] = []
  for (const id of ids) {
    const now = iso(deps.now())
    // LiteLLM upserts: blocking an end user not seen yet creates it, so its first call is already refused.
    let rec = await store.update('end_user', id, { blocked, updated_at: now })
    if (!rec) {
      rec = newCustomer(deps, id, { blocked })
      try {
        await store.insert('end_user', rec)
      } catch (err) {
        // Created meanwhile (a first model call records its end user): block that one.
        if (!(err instanceof StoreConflictError)) throw err
        rec = (await store.update('end_user', id, { blocked, updated_at: now }))!
      }
    }
    invalidate(deps, 'end_user', id)
    out.push(rec)
  }
  return out
}

export function customerApis(deps: Deps): Api[] {
  return [
    {
      method: 'POST', path: ['/customer/new', '/end_user/new'], access: 'admin', name: 'newCustomer',
      async run(call) {
        const body = checkNew(await call.body())
        if (body.max_budget !== undefined && body.max_budget !== null && body.budget_id !== undefined && body.budget_id !== null) {
          throw invalid("Set either 'max_budget' or 'budget_id', not both.", 'max_budget')
        }
        const id = body.user_id as string
        if (await call.store.get('end_user', id)) throw conflict(`Customer already exists, passed user_id=${id}. Please pass a new user_id.`, 'user_id')
        await checkRefs(deps, call.store, body)
        const rec = newCustomer(deps, id, body)
        await call.store.insert('end_user', rec)
        invalidate(deps, 'end_user', id)
        return withBudgetTable(call.store, rec)
      },
    },
    {
      method: 'GET', path: ['/customer/info', '/end_user/info'], access: 'read', name: 'customerInfo',
      async run(call) {
        const id = queryRequired(call.ctx, 'end_user_id')
        const rec = await call.store.get('end_user', id)
        if (!rec) throw notFound(`End User Id=${id} does not exist in db`, 'end_user_id')
        return withBudgetTable(call.store, rec)
      },
    },
    {
      method: 'POST', path: ['/customer/update', '/end_user/update'], access: 'admin', name: 'updateCustomer',
      async run(call) {
        const body = checkUpdate(await call.body())
        const id = body.user_id as string
        if (!(await call.store.get('end_user', id))) throw notFound(`End User Id=${id} does not exist in db`, 'user_id')
        await checkRefs(deps, call.store, body)
        const now = deps.now()
        const patch: Record<string, unknown> = extras(body, HANDLED)
        copyPresent(patch, body, PLAIN)
        if (body.blocked === null) patch.blocked = false
        const spendOrPeriod = budgetPatch(patch, body, now)
        if (typeof body.budget_reset_at === 'string') patch.budget_reset_at = new Date(body.budget_reset_at).toISOString()
        patch.updated_at = iso(now)
        const updated = await call.store.update('end_user', id, patch)
        if (!updated) throw notFound(`End User Id=${id} does not exist in db`, 'user_id')
        invalidate(deps, 'end_user', id)
        if (spendOrPeriod || body.budget_reset_at !== undefined) spendSet(deps, 'end_user', updated, id)
        return withBudgetTable(call.store, updated)
      },
    },
    {
      method: 'POST', path: ['/customer/delete', '/end_user/delete'], access: 'admin', name: 'deleteCustomers',
      async run(call) {
        const ids = checkIds(await call.body()).user_ids as string[]
        const missing: string[] = []
        for (const id of ids) if (!(await call.store.get('end_user', id))) missing.push(id)
        if (missing.length) throw notFound(`End User Id(s)=${missing.join(', ')} do not exist in db`, 'user_ids')
        let deleted = 0
        for (const id of ids) {
          if (await call.store.delete('end_user', id)) deleted++
          invalidate(deps, 'end_user', id)
        }
        return { deleted_customers: deleted, message: `Successfully deleted customers with ids: ${pyList(ids)}` }
      },
    },
    {
      method: 'GET', path: ['/customer/list', '/end_user/list'], access: 'read', name: 'listCustomers',
      async run(call) {
        const out = []
        for (const e of await allRows(call.store, 'end_user')) out.push(await withBudgetTable(call.store, e))
        return out
      },
    },
    {
      method: 'POST', path: ['/customer/block', '/end_user/block'], access: 'admin', name: 'blockCustomers',
      async run(call) {
        return { blocked_users: await setBlocked(deps, call.store, checkIds(await call.body()).user_ids as string[], true) }
      },
    },
    {
      method: 'POST', path: ['/customer/unblock', '/end_user/unblock'], access: 'admin', name: 'unblockCustomers',
      async run(call) {
        return { unblocked_users: await setBlocked(deps, call.store, checkIds(await call.body()).user_ids as string[], false) }
      },
    },
  ]
}
