/**
 * The gateway's in-process event bus: plugins tell each other what changed without importing each other.
 *
 *   'invalidate'   { kind: EntityKind, id }   a key, team, user, end user, budget or model changed (auth drops its
 *                                             cached copy); a Redis plugin relays these between replicas
 *   'budget.soft'  { scope, spend, soft_budget }   a soft budget was crossed (an alert, never a block)
 *   'budget.reset' { kind, id }               a budget period rolled over
 *   'models.changed' {}                       a stored model was added, updated or removed
 *   'spend.set'    { kind, id, spend, resetAt }   an admin set spend / reset a budget period
 *   'session.revoked' { id, exp }             an admin UI session was signed out (relayed: every replica refuses it)
 *
 * Listeners run synchronously in emit order; a throwing listener is logged by the emitter's owner, not propagated.
 * `remote: true` marks an event that arrived from another replica (relays must not send it back out).
 */
import type { EntityKind } from './store.js'

export interface GatewayEvents {
  invalidate: { kind: EntityKind; id: string; remote?: boolean }
  'budget.soft': { scope: string; spend: number; soft_budget: number; remote?: boolean }
  'budget.reset': { kind: EntityKind; id: string; remote?: boolean }
  'models.changed': { remote?: boolean }
  /** An admin set an entity's spend or budget period (key/update spend, a reset): budget counters follow. */
  'spend.set': { kind: EntityKind; id: string; spend: number; resetAt: string | null; remote?: boolean }
  /** An admin UI session signed out: `id` is the session's own random token, `exp` its expiry (unix seconds). */
  'session.revoked': { id: string; exp: number; remote?: boolean }
}

export type EventName = keyof GatewayEvents

export interface EventBus {
  on<E extends EventName>(event: E, listener: (payload: GatewayEvents[E]) => void): () => void
  emit<E extends EventName>(event: E, payload: GatewayEvents[E]): void
}

export function createEventBus(onError: (event: string, err: unknown) => void = () => {}): EventBus {
  const listeners = new Map<string, Array<(p: unknown) => void>>()
  return {
    on(event, listener) {
      const list = listeners.get(event) ?? []
      list.push(listener as (p: unknown) => void)
      listeners.set(event, list)
      return () => {
        const l = listeners.get(event)
        if (l) l.splice(l.indexOf(listener as (p: unknown) => void) >>> 0, 1)
      }
    },
    emit(event, payload) {
      const list = listeners.get(event)
      if (!list) return
      for (const fn of [...list]) {
        try {
          fn(payload)
        } catch (err) {
          onError(event, err)
        }
      }
    },
  }
}
