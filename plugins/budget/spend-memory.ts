/**
 * What each budget scope had spent the last time the shared (Redis) ledger said so, to seed a ledger that does not
 * know it: the local ledger an outage falls back to, and Redis itself after it lost its keys (a restart without
 * persistence, a flush, an eviction).
 *
 * Why: a ledger seeds a scope it has no entry for from the limit's `seed`, the spend in the key/team/user record the
 * auth plugin cached, which is up to its cache time old (10 s by default) and behind the spend writer besides. Spend
 * made through Redis in that time would be forgotten, and a budget passed by that much again: with a fast key, all
 * of it (the robustness suite's Redis outage showed a $1 budget spent 1.7 times). A seed is only ever raised here,
 * never lowered, and only within the same budget period, so a reset made in the store still wins.
 */
import { LRUCache } from 'lru-cache'
import type { BudgetLimit, ScopeState } from './ledger.js'
import { msOrNull } from './ledger.js'

/** Scopes remembered, most recently used first: 100,000 (a few hundred bytes each). */
const MAX_SCOPES = 100_000

interface Seen { spend: number; resetAt: string | null }

export interface SpendMemory {
  /** Remember what the shared ledger reported (after a settle or a charge). */
  note(states: Readonly<Record<string, ScopeState>>): void
  /** An admin set the spend (key/update `spend`, a reset): that is the new truth. */
  set(scope: string, s: Seen): void
  /** The period was rolled over in the store: forget what the old one spent. */
  forget(scope: string): void
  /** `limits` with each seed raised to the last spend seen in the same period; the same array when none changes. */
  seeded(limits: BudgetLimit[]): BudgetLimit[]
}

export function createSpendMemory(max = MAX_SCOPES): SpendMemory {
  const seen = new LRUCache<string, Seen>({ max })

  /** The better seed of the two, or null to keep the limit's own. */
  function better(l: BudgetLimit, last: Seen): Seen | null {
    const mine = msOrNull(last.resetAt)
    const stored = msOrNull(l.seed.resetAt)
    // Same period: the higher spend (the store's is older). The ledger in a later period than the store (it rolled
    // over, or gave a duration its first reset time, before the store's sweep did): the ledger's. The store in a
    // later period (reset there): the store's.
    if (mine === stored) return last.spend > l.seed.spend ? { spend: last.spend, resetAt: l.seed.resetAt } : null
    if (mine !== null && (stored === null || mine > stored)) return last
    return null
  }

  return {
    note(states) {
      for (const scope in states) {
        const s = states[scope]!
        seen.set(scope, { spend: s.spend, resetAt: s.resetAt })
      }
    },
    set(scope, s) {
      seen.set(scope, { spend: s.spend, resetAt: s.resetAt })
    },
    forget(scope) {
      seen.delete(scope)
    },
    seeded(limits) {
      let out: BudgetLimit[] | null = null
      for (let i = 0; i < limits.length; i++) {
        const l = limits[i]!
        const last = seen.get(l.scope)
        const b = last ? better(l, last) : null
        if (!b) continue
        out ??= limits.slice()
        out[i] = { ...l, seed: b }
      }
      return out ?? limits
    },
  }
}
