/**
 * One request's lifetime, the same for an HTTP request and an SDK call: its state, a per-request scope created on
 * first use (holding `state` and a `log` bound to the request id), and `end()`, which resolves `state.done` and
 * disposes the scope if one was made.
 */
import { randomUUID } from 'node:crypto'
import { asValue, type AwilixContainer } from 'awilix'
import type { Cradle } from './container.js'
import type { Logger } from './logger.js'
import { createState, type GatewayState, type Outcome } from './state.js'

export interface RequestLifetime {
  state: GatewayState
  end(outcome: Omit<Outcome, 'error' | 'usage'>): void
}

export function beginRequest(container: AwilixContainer<Cradle>, logger: Logger, signal: AbortSignal): RequestLifetime {
  let resolveDone!: (o: Outcome) => void
  const done = new Promise<Outcome>((r) => (resolveDone = r))
  let scope: AwilixContainer<Cradle> | null = null
  const state = createState((st) => {
    const s = container.createScope()
    // The child logger is built on first use, after a request-id plugin may have replaced the id.
    let log: Logger | undefined
    s.register({ state: asValue(st), log: { resolve: () => (log ??= logger.child({ requestId: st.requestId })) } })
    return (scope = s)
  }, signal, done)
  state.requestId = randomUUID()
  return {
    state,
    end(outcome) {
      resolveDone({ ...outcome, error: state.error, usage: state.usage })
      if (scope) scope.dispose().catch((err: unknown) => logger.error('scope dispose failed', { err }))
    },
  }
}
