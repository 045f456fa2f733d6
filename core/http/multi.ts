/**
 * One chat request to several model groups, as LiteLLM's proxy takes it: `model: "gpt-4o,claude"` (comma-separated)
 * or `model: ["gpt-4o", "claude"]`. Each model gets its own call through the whole request chain (auth, limits,
 * budgets, routing, fallbacks, spend logging: one call, one spend row), run in parallel, and the answer is the list
 * of their responses in the order asked. With `fastest_response: true` the first success is the answer and the
 * other calls are cancelled.
 *
 * A call that fails holds its OpenAI error body in its place in the list; when every call fails, the request fails
 * with the first one's error. A name that is itself a configured model (commas and all) is never split. Streaming
 * several models at once has no OpenAI wire shape, so `stream: true` with several models is a 400.
 */
import type { AwilixContainer } from 'awilix'
import type { Cradle } from '../container.js'
import { asGatewayError, gatewayError, toErrorBody, type GatewayError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { GatewayMiddleware } from '../plugin.js'
import { beginRequest } from '../request.js'
import type { GatewayContext } from './respond.js'

export function multiModel(chain: GatewayMiddleware, container: AwilixContainer<Cradle>, logger: Logger): GatewayMiddleware {
  const { models } = container.cradle

  /** One model's call: a state of its own, the request chain run on a context that writes only to that state. */
  async function callOne(ctx: GatewayContext, name: string, index: number, signal: AbortSignal): Promise<unknown> {
    const parent = ctx.state
    const life = beginRequest(container, logger, signal)
    const st = life.state
    st.requestId = `${parent.requestId}-${index}`
    st.batchIndex = index
    st.kind = parent.kind
    st.body = { ...parent.body, model: name }
    st.model = name
    st.stream = false
    st.priority = parent.priority
    st.numRetries = parent.numRetries
    // The chain sets ctx.body on success; an own property keeps it off the real response (headers still go there).
    const sub = Object.create(ctx) as GatewayContext
    Object.defineProperty(sub, 'state', { value: st, writable: true })
    Object.defineProperty(sub, 'body', { value: undefined, writable: true })
    Object.defineProperty(sub, 'status', { value: 200, writable: true })
    try {
      await chain(sub, async () => {})
      life.end({ status: 200, aborted: false })
      return sub.body
    } catch (err) {
      const e = asGatewayError(err)
      st.error = e
      life.end({ status: e.status, aborted: signal.aborted })
      throw e
    }
  }

  return async function multiModelRequest(ctx: GatewayContext, next) {
    const state = ctx.state
    const body = state.body!
    const fastest = body.fastest_response === true
    // LiteLLM's flag is the gateway's, never the provider's.
    if ('fastest_response' in body) delete body.fastest_response
    const asked = state.model
    if (asked.indexOf(',') < 0 || models.has(asked)) return next()
    const names = asked.split(',').map((s) => s.trim()).filter((s) => s !== '')
    if (names.length < 2) {
      state.model = body.model = names[0] ?? asked
      return next()
    }
    if (state.stream) {
      throw gatewayError('GW_ERR_VALIDATION',
        `Streaming is not supported when \`model\` names several models (${names.join(', ')}); send one model per streamed request.`,
        { param: 'stream' })
    }
    const controllers = names.map(() => new AbortController())
    const onAbort = () => { for (const c of controllers) c.abort() }
    state.signal.addEventListener('abort', onAbort, { once: true })
    try {
      const calls = names.map((n, i) => callOne(ctx, n, i, controllers[i]!.signal))
      if (fastest) {
        const winner = await Promise.any(calls.map((p, i) => p.then((r) => ({ r, i })))).catch((err: AggregateError) => {
          throw err.errors[0] as GatewayError
        })
        controllers.forEach((c, i) => { if (i !== winner.i) c.abort() })
        // The losers end as cancelled calls (their own spend rows say so); nothing waits for them.
        for (const p of calls) p.catch(() => {})
        ctx.body = winner.r
        return
      }
      const settled = await Promise.allSettled(calls)
      if (settled.every((s) => s.status === 'rejected')) throw (settled[0] as PromiseRejectedResult).reason
      ctx.body = settled.map((s) => (s.status === 'fulfilled' ? s.value : toErrorBody(asGatewayError(s.reason))))
    } finally {
      state.signal.removeEventListener('abort', onAbort)
    }
  }
}
