/**
 * Budget rows, as LiteLLM's /budget/* routes: new, info, update, delete, list. A key or a customer links one with
 * `budget_id`; its limits then apply (the budget plugin reads them).
 */
import type { BudgetRecord } from '../../core/store.js'
import { bodySchema, BUDGET_PROPS, MAX_IDS, S } from './input.js'
import {
  actor, allRows, budgetFields, budgetPatch, conflict, extras, invalid, invalidate, iso, modelBudgets, newId, notFound, spendSet,
  type Api, type Deps,
} from './shared.js'

const BUDGET_ROW_PROPS = {
  ...BUDGET_PROPS,
  budget_id: S.idOrNull,
  model_max_budget: S.modelMaxBudget,
  budget_reset_at: S.timestamp,
} as const

const HANDLED = new Set([...Object.keys(BUDGET_ROW_PROPS), 'created_at', 'updated_at', 'created_by', 'updated_by'])

const checkNew = bodySchema(BUDGET_ROW_PROPS)
const checkUpdate = bodySchema({ ...BUDGET_ROW_PROPS, budget_id: S.id }, ['budget_id'])
const checkInfo = bodySchema({ budgets: { type: 'array', items: { type: 'string' }, maxItems: MAX_IDS } }, ['budgets'])
const checkDelete = bodySchema({ id: S.id }, ['id'])

export function budgetApis(deps: Deps): Api[] {
  return [
    {
      method: 'POST', path: '/budget/new', access: 'admin', name: 'newBudget',
      async run(call) {
        const body = checkNew(await call.body())
        const id = (body.budget_id as string | null | undefined) ?? newId()
        if (await call.store.get('budget', id)) throw conflict(`Budget with id '${id}' already exists.`, 'budget_id')
        const record: Record<string, unknown> = {
          ...extras(body, HANDLED),
          ...budgetFields(body, deps.now()),
          budget_id: id,
          model_max_budget: modelBudgets(body.model_max_budget),
          created_by: actor(call.principal),
          updated_by: actor(call.principal),
        }
        // LiteLLM lets the first reset instant be given; otherwise one period from now.
        if (typeof body.budget_reset_at === 'string') record.budget_reset_at = new Date(body.budget_reset_at).toISOString()
        await call.store.insert('budget', record as unknown as BudgetRecord)
        invalidate(deps, 'budget', id)
        return record
      },
    },
    {
      method: 'POST', path: '/budget/update', access: 'admin', name: 'updateBudget',
      async run(call) {
        const body = checkUpdate(await call.body())
        const id = body.budget_id as string
        if (!(await call.store.get('budget', id))) throw notFound(`Budget not found, passed budget_id=${id}`, 'budget_id')
        const now = deps.now()
        const patch: Record<string, unknown> = extras(body, HANDLED)
        const spendOrPeriod = budgetPatch(patch, body, now)
        delete patch.budget_id
        if (body.model_max_budget !== undefined) patch.model_max_budget = modelBudgets(body.model_max_budget)
        if (typeof body.budget_reset_at === 'string') patch.budget_reset_at = new Date(body.budget_reset_at).toISOString()
        patch.updated_at = iso(now)
        patch.updated_by = actor(call.principal)
        const updated = await call.store.update('budget', id, patch)
        if (!updated) throw notFound(`Budget not found, passed budget_id=${id}`, 'budget_id')
        invalidate(deps, 'budget', id)
        if (spendOrPeriod || body.budget_reset_at !== undefined) spendSet(deps, 'budget', updated, id)
        return updated
      },
    },
    {
      method: 'POST', path: '/budget/info', access: 'read', name: 'budgetInfo',
      async run(call) {
        const ids = checkInfo(await call.body()).budgets as string[]
        if (ids.length === 0) throw invalid(`Specify list of budget id's to query. Passed in=${JSON.stringify(ids)}`, 'budgets')
        const out: BudgetRecord[] = []
        for (const id of ids) {
          const b = await call.store.get('budget', id)
          if (b) out.push(b)
        }
        return out
      },
    },
    {
      method: 'GET', path: '/budget/list', access: 'read', name: 'listBudgets',
      run: (call) => allRows(call.store, 'budget'),
    },
    {
      method: 'POST', path: '/budget/delete', access: 'admin', name: 'deleteBudget',
      async run(call) {
        const id = checkDelete(await call.body()).id as string
        const budget = await call.store.get('budget', id)
        if (!budget) throw notFound(`Budget not found, passed id=${id}`, 'id')
        // LiteLLM's database refuses to drop a budget still linked (foreign key); say so instead of failing.
        const keys = (await call.store.list('key', { where: { budget_id: id }, limit: 1 })).total
        const customers = (await call.store.list('end_user', { where: { budget_id: id }, limit: 1 })).total
        if (keys + customers > 0) {
          throw invalid(`Budget ${id} is still used by ${keys} key(s) and ${customers} customer(s); unlink them (budget_id: null) first.`, 'id')
        }
        await call.store.delete('budget', id)
        invalidate(deps, 'budget', id)
        return budget
      },
    },
  ]
}
