/**
 * Remaining budgets of keys, teams and users for LiteLLM's budget gauges (litellm_remaining_api_key_budget_metric,
 * ..._max_budget_metric, ..._budget_remaining_hours_metric), updated as calls end.
 *
 * The records on the principal are auth's cached copies (refreshed every few seconds), so their `spend` may lag the
 * calls this process has seen since. Within one budget period the spend reported is the larger of the record's and
 * what this process has added on top of what it last reported; a new period (budget_reset_at moved) starts from
 * the record again. Only entities with a max_budget are reported.
 */
import type { Principal } from '../../core/state.js'
import type { BudgetFields } from '../../core/store.js'
import type { Labels } from './histogram.js'

export interface BudgetEntry {
  labels: Labels
  max: number
  spent: number
  resetAt: string | null
}

export class BudgetTable {
  readonly keys = new Map<string, BudgetEntry>()
  readonly teams = new Map<string, BudgetEntry>()
  readonly users = new Map<string, BudgetEntry>()

  /** Returns a new entry (the caller sets its labels), or null when one existed or there is no budget. */
  private static track(map: Map<string, BudgetEntry>, id: string, rec: BudgetFields, cost: number): BudgetEntry | null {
    if (rec.max_budget === null || rec.max_budget === undefined) return null
    const e = map.get(id)
    const fromRecord = (rec.spend ?? 0) + cost
    if (!e) {
      const created = { labels: {}, max: rec.max_budget, spent: fromRecord, resetAt: rec.budget_reset_at ?? null }
      map.set(id, created)
      return created
    }
    e.max = rec.max_budget
    if (e.resetAt !== (rec.budget_reset_at ?? null)) {
      e.resetAt = rec.budget_reset_at ?? null
      e.spent = fromRecord
    } else {
      e.spent = Math.max(e.spent + cost, fromRecord)
    }
    return null
  }

  record(p: Principal | null, cost: number): void {
    if (p === null) return
    if (p.key && p.token) {
      const e = BudgetTable.track(this.keys, p.token, p.key, cost)
      if (e) e.labels = { hashed_api_key: p.token, api_key_alias: p.keyAlias ?? '' }
    }
    if (p.team && p.teamId) {
      const e = BudgetTable.track(this.teams, p.teamId, p.team, cost)
      if (e) e.labels = { team: p.teamId, team_alias: p.team.team_alias ?? '' }
    }
    if (p.user && p.userId) {
      const e = BudgetTable.track(this.users, p.userId, p.user, cost)
      if (e) e.labels = { user: p.userId }
    }
  }
}
