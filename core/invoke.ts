/**
 * The in-process entry: a model call through the same request chain (the plugins' middleware, in config order) and
 * attempt chain as an HTTP request to the proxy, with no HTTP in between. The SDK's functions and `Router` call it;
 * one implementation, two entry points.
 *
 * The chain's middleware sees a small context (InProcessContext): `state`, `get()` / `set()` for headers, `path`,
 * `method` and `req.headers`. That is what request-chain plugins may use (DESIGN.md, the plugin contract); anything
 * HTTP-only (the socket, writing the body) belongs in a route handler. Response headers the plugins set (rate-limit
 * remaining, key spend, the call headers) are collected and returned with the result.
 *
 * Lifetimes end as the proxy's do: a JSON reply or an error ends the call at once; a stream ends when its consumer
 * has read it to the end, stopped early (`break`), or it failed. `state.done` resolves then, so budgets, spend rows,
 * rate-limit windows, the priority queue's slot and the logging sinks settle exactly as for a proxied call.
 */
import type { AwilixContainer } from 'awilix'
import type { Cradle } from './container.js'
import { asGatewayError, gatewayError, type GatewayError } from './errors.js'
import type { Logger } from './logger.js'
import type { GatewayMiddleware } from './plugin.js'
import { composeRequestChain, type AttemptHandler } from './pipeline.js'
import { beginRequest } from './request.js'
import type { GatewayState } from './state.js'
import type { Operation } from './openai/types.js'
import { generatesText } from './openai/operations.js'
import { validateRequest } from './http/validate.js'
import { modelCaller, OPERATION_PATHS, settleJsonReply, type TerminalDeps } from './http/handlers.js'
import { clientChunk, type GatewayContext } from './http/respond.js'
import type { ActiveRequest, InFlight } from './http/server.js'
import { StreamCapture } from './openai/capture.js'
import type { ProviderResult, Target } from '../providers/types.js'

export interface InvokeOptions {
  /** Cancels the call: the queue wait, the upstream request, a stream being read. */
  signal?: AbortSignal
  /** Request headers (lower-case names), as a client would send them: a virtual key, `x-litellm-*` options. */
  headers?: Readonly<Record<string, string>>
  /** Deployments to call instead of the model table's group for `model` (the SDK's own target for "provider/name"). */
  targets?: Target[]
  /** Keep the usage chunk of a stream (default: as the request's `stream_options.include_usage` says). */
  includeUsage?: boolean
}

interface Common {
  /** Response headers the chain set (LiteLLM's x-litellm-* call headers, rate-limit and spend headers). */
  headers: Record<string, string>
  /** The call's state: cost, usage, attempts, the deployment that served it. Final once `state.done` resolves. */
  state: GatewayState
}
export type Invoked =
  | (Common & { kind: 'json'; body: unknown })
  | (Common & { kind: 'stream'; chunks: AsyncIterable<object> })
  | (Common & { kind: 'binary'; contentType: string; chunks: AsyncIterable<Uint8Array> })

export type Invoke = (op: Operation, body: Record<string, unknown>, opts?: InvokeOptions) => Promise<Invoked>

/** The response side of an in-process call: headers only (no socket, no body written). */
class InProcessResponse {
  readonly headers: Record<string, string> = {}
  headersSent = false
  statusCode = 200
  writableEnded = false
  destroyed = false
  setHeader(name: string, value: unknown): this {
    this.headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    return this
  }
  getHeader(name: string): string | undefined {
    return this.headers[name.toLowerCase()]
  }
  removeHeader(name: string): void {
    delete this.headers[name.toLowerCase()]
  }
  hasHeader(name: string): boolean {
    return name.toLowerCase() in this.headers
  }
}

/** A stream (or audio) the terminal handed to invoke(), and how its reading ended. */
interface Handed {
  result: ProviderResult
  error: GatewayError | null
  /** Called once, when the caller is done with the items (at the end, early, or on a failure). */
  finish(error: GatewayError | null): void
}

/** The context the request chain runs on in process (see the file comment for what it offers). */
class InProcessContext {
  readonly req: { headers: Record<string, string>; method: string; url: string }
  readonly res = new InProcessResponse()
  readonly response = { get: (name: string): string => this.res.getHeader(name) ?? '' }
  readonly method = 'POST'
  readonly query: Record<string, string> = {}
  readonly path: string
  readonly url: string
  status = 200
  body: unknown = undefined
  type = ''
  respond = true
  writable = true
  /** The stream the terminal handed over, once it has; `finish` ends the terminal's wait (priced first). */
  handed: Handed | null = null
  #handedOver!: () => void
  readonly handedOver = new Promise<void>((r) => (this.#handedOver = r))
  constructor(public state: GatewayState, path: string, headers: Readonly<Record<string, string>> | undefined) {
    const h: Record<string, string> = {}
    if (headers) for (const k in headers) h[k.toLowerCase()] = headers[k]!
    this.path = this.url = path
    this.req = { headers: h, method: 'POST', url: path }
  }
  get headerSent(): boolean {
    return false
  }
  get(name: string): string {
    return this.req.headers[name.toLowerCase()] ?? ''
  }
  set(name: string | Record<string, string>, value?: string): void {
    if (typeof name === 'string') this.res.setHeader(name, value)
    else for (const k in name) this.res.setHeader(k, name[k])
  }
  vary(): void {}
  /** The terminal's side: give the caller the stream, and wait until it has been read (or let go of). */
  handOver(result: ProviderResult, price: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const handed: Handed = {
        result, error: null,
        finish: (error) => {
          handed.error = error
          price()
          resolve()
        },
      }
      this.handed = handed
      this.#handedOver()
    })
  }
  throw(status: number, message?: string): never {
    throw gatewayError(status >= 500 ? 'GW_ERR_INTERNAL' : 'GW_ERR_VALIDATION', message ?? `status ${status}`)
  }
}

export interface InvokerDeps {
  container: AwilixContainer<Cradle>
  logger: Logger
  middleware: readonly GatewayMiddleware[]
  middlewareNames: readonly string[]
  attempt: AttemptHandler
  terminal: TerminalDeps
  /** The gateway's in-flight set: stop() waits for in-process calls as for HTTP ones, and cuts them at its deadline. */
  inFlight: InFlight
}

/** Build the in-process entry for a gateway: one request chain per operation, composed once. */
export function createInvoker(d: InvokerDeps): Invoke {
  const cradle = d.container.cradle
  const chains = new Map<Operation, GatewayMiddleware>()
  for (const op of Object.keys(OPERATION_PATHS) as Operation[]) {
    const caller = modelCaller(op, cradle, d.attempt, d.terminal)
    const terminal: GatewayMiddleware = async function callModel(ctx) {
      const { result, served } = await caller.call(ctx)
      if (result.kind === 'json') {
        settleJsonReply(op, ctx, caller, served, result)
        return
      }
      if (result.kind === 'binary') caller.price(ctx, served, null)
      // A stream (or audio) goes to the caller now; this step returns once the caller has read it, as the proxy's
      // terminal returns once it has written it: code after a plugin's `await next()` sees the stream's outcome.
      await (ctx as unknown as InProcessContext).handOver(result, () => caller.price(ctx, served, null))
    }
    chains.set(op, composeRequestChain(d.middleware, terminal, d.middlewareNames))
  }

  return async function invoke(op, body, opts = {}) {
    const chain = chains.get(op)
    if (!chain) throw gatewayError('GW_ERR_VALIDATION', `Unknown operation: ${String(op)}`)
    const ac = new AbortController()
    const outer = opts.signal
    const onAbort = () => ac.abort(outer!.reason)
    if (outer) {
      if (outer.aborted) ac.abort(outer.reason)
      else outer.addEventListener('abort', onAbort, { once: true })
    }
    const life = beginRequest(d.container, d.logger, ac.signal)
    const state = life.state
    const ctx = new InProcessContext(state, OPERATION_PATHS[op][0]!, opts.headers)
    const gctx = ctx as unknown as GatewayContext
    const inFlight = d.inFlight
    const active: ActiveRequest = { ctx: gctx, abort: ac }
    inFlight.active.add(active)
    let ended = false
    const end = (error: GatewayError | null) => {
      if (ended) return
      ended = true
      outer?.removeEventListener('abort', onAbort)
      if (error) state.error ??= error
      life.end({ status: error ? error.status : 200, aborted: ac.signal.aborted })
      inFlight.active.delete(active)
      if (inFlight.active.size === 0) for (const r of inFlight.idle.splice(0)) r()
    }
    let run: Promise<void>
    try {
      if (inFlight.draining) throw gatewayError('GW_ERR_SHUTTING_DOWN', 'This router is closing; no new calls are taken.')
      if (ac.signal.aborted) throw gatewayError('GW_ERR_CLIENT_CLOSED', 'The call was aborted before it started.')
      prepareState(state, op, body)
      if (opts.targets) state.targets = opts.targets
      run = chain(gctx, async () => {})
      // Over (a JSON reply, an error), or a stream handed over while the chain waits for it to be read.
      await Promise.race([run, ctx.handedOver])
    } catch (err) {
      const e = abortedAs(asGatewayError(err), ac.signal)
      end(e)
      throw e
    }
    const headers = ctx.res.headers
    const handed = ctx.handed
    if (!handed) {
      // A JSON reply (in ctx.body), or a plugin that answered without calling the model.
      end(null)
      return { kind: 'json', body: ctx.body ?? null, headers, state }
    }
    // The lifetime ends when the chain has unwound after the stream was read (or the caller let go of it).
    run.then(() => end(handed.error), (err: unknown) => {
      d.logger.error('a plugin failed after an in-process stream ended', { requestId: state.requestId, err })
      end(handed.error ?? asGatewayError(err))
    })
    const { result } = handed
    if (result.kind === 'binary') {
      return { kind: 'binary', contentType: result.contentType, chunks: settleAtEnd(result.chunks, asIs, ac, handed.finish), headers, state }
    }
    if (result.kind !== 'stream') {
      const e = gatewayError('GW_ERR_INTERNAL', `an in-process call got a ${result.kind} reply`)
      handed.finish(e)
      throw e
    }
    if (state.captureReply) state.reply = new StreamCapture()
    const includeUsage = opts.includeUsage ?? (body.stream_options as { include_usage?: unknown } | null | undefined)?.include_usage === true
    // Chunks as the client gets them (core/http/respond.ts clientChunk: usage recorded, the gateway's tool events withheld).
    const toClient = (c: object) => clientChunk(state, c, includeUsage)
    return { kind: 'stream', chunks: settleAtEnd(result.chunks as AsyncIterable<object>, toClient, ac, handed.finish), headers, state }
  }
}

/** What prepareModelRequest does for an HTTP request, from the call's own body. */
function prepareState(state: GatewayState, op: Operation, body: Record<string, unknown>): void {
  validateRequest(op, body)
  state.kind = op
  state.body = body
  state.model = body.model as string
  state.stream = generatesText(op) && body.stream === true
  // The caller gets objects: never a pass-through of the upstream's bytes.
  state.passthrough = false
  if (body.priority !== undefined) state.priority = body.priority as number
  const retries = body.num_retries
  if (retries !== undefined) {
    if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0) {
      throw gatewayError('GW_ERR_VALIDATION', `Invalid 'num_retries': expected a non-negative integer, got ${JSON.stringify(retries)}.`, { param: 'num_retries' })
    }
    state.numRetries = retries
  }
}

/** An error caused by the caller's own abort is reported as that (499), whatever the layer that noticed it. */
function abortedAs(e: GatewayError, signal: AbortSignal): GatewayError {
  if (!signal.aborted || e.status === 499) return e
  return gatewayError('GW_ERR_CLIENT_CLOSED', 'The call was aborted.', { cause: e })
}

/**
 * A reply's items as the caller gets them (`map`: null drops one), ending the call when the consumer is done with
 * them, however that happens: read to the end, stopped early (`break`: the upstream read stops too, and the call is
 * logged as cut off), or failed.
 */
async function* settleAtEnd<T, U>(
  items: AsyncIterable<T>, map: (item: T) => U | null, ac: AbortController, finish: (error: GatewayError | null) => void,
): AsyncGenerator<U> {
  let error: GatewayError | null = null
  let complete = false
  try {
    for await (const item of items) {
      const out = map(item)
      if (out !== null) yield out
    }
    complete = true
  } catch (err) {
    error = abortedAs(asGatewayError(err), ac.signal)
    throw error
  } finally {
    if (!complete && !error) ac.abort()
    finish(error)
  }
}

const asIs = <T>(item: T): T => item
