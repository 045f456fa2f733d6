/**
 * Costs admitted on a replica's own ledger while Redis could not be reached, waiting to be charged to Redis once it
 * answers again. Summed per set of scopes (a key, its team, its user...), so a long outage costs one charge per
 * distinct set when it ends, not one per call; sums are kept in integer micro-dollars, as the ledgers keep money, so
 * the total charged is exactly what per-call charges would have added.
 *
 * `replay` is shared: callers that arrive while one runs wait for the same one. The budget plugin awaits it before
 * admitting through Redis again, so the money an outage used is counted before anyone is admitted on top of it.
 */
import { fromMicros, toMicros, type BudgetLimit } from './ledger.js'

/** Distinct scope sets held: 100,000 (the oldest is dropped beyond; the store's spend still has every call). */
const MAX_ENTRIES = 100_000

export interface PendingCharges {
  add(limits: BudgetLimit[], cost: number): void
  /** Entries waiting (distinct scope sets). */
  size(): number
  /** Charge every entry through `charge`; an entry whose charge fails stays for the next replay. Resolves with the
   *  calls charged. Never rejects. */
  replay(charge: (limits: BudgetLimit[], cost: number) => Promise<void>): Promise<number>
}

export function createPendingCharges(max = MAX_ENTRIES): PendingCharges {
  const entries = new Map<string, { limits: BudgetLimit[]; micros: number; calls: number }>()
  let running: Promise<number> | null = null

  function put(id: string, limits: BudgetLimit[], micros: number, calls: number): void {
    const e = entries.get(id)
    if (e) {
      e.micros += micros
      e.calls += calls
      return
    }
    entries.set(id, { limits, micros, calls })
    if (entries.size > max) entries.delete(entries.keys().next().value!)
  }

  async function run(charge: (limits: BudgetLimit[], cost: number) => Promise<void>): Promise<number> {
    let charged = 0
    const batch = [...entries]
    entries.clear()
    for (const [id, e] of batch) {
      try {
        await charge(e.limits, fromMicros(e.micros))
        charged += e.calls
      } catch {
        put(id, e.limits, e.micros, e.calls)
      }
    }
    return charged
  }

  return {
    add(limits, cost) {
      let id = ''
      for (const l of limits) id += `${l.scope}\n`
      put(id, limits, toMicros(cost), 1)
    },
    size: () => entries.size,
    replay(charge) {
      running ??= run(charge).finally(() => { running = null })
      return running
    },
  }
}
