/**
 * The core's own routes: the OpenAI operations, /v1/models and the health probes. Each model operation's handler
 * is the terminal of the request chain: it takes the targets a router chose (or all deployments of the model, with
 * no router), runs the attempt chain, and writes JSON, SSE, or bytes (speech audio, a transcription as text).
 */
import type { Cradle } from '../container.js'
import { gatewayError, GatewayError } from '../errors.js'
import type { EmbeddingResponse, Operation } from '../openai/types.js'
import type { AttemptHandler } from '../pipeline.js'
import type { GatewayMiddleware } from '../plugin.js'
import type { GatewayContext } from './respond.js'
import { outputChars, writeBinary, writeSse } from './respond.js'
import { embeddingsAsBase64 } from '../openai/shape.js'
import { generatesText } from '../openai/operations.js'
import { readJsonBody } from './body.js'
import { readFormBody } from './multipart.js'
import { RawJson } from '../upstream/passthrough.js'
import { validateRequest } from './validate.js'
import type { RouteDef, RouteFormat } from './routes.js'
import type { ProviderAdapter, ProviderResult, Target } from '../../providers/types.js'
import type { Logger } from '../logger.js'
import { formatCost } from '../cost.js'
import type { Pricing } from '../pricing/index.js'
import { promptTokensEstimate } from '../pricing/budget.js'
import { infoRoutes, type InfoDeps } from './info.js'
import { withRequestTimeouts, type RequestTimeouts } from '../models.js'
import { mayUseModel } from '../access.js'
import type { Principal } from '../state.js'
import type { ModelTable } from '../models.js'

/** Reads and validates the body of a model operation before the request chain runs. */
export function prepareModelRequest(op: Operation, bodyLimit: number, isDraining: () => boolean = () => false, format?: RouteFormat): GatewayMiddleware {
  return async function prepareRequest(ctx: GatewayContext, next) {
    // Set first: every error from here on is written in the client's format.
    if (format) ctx.state.format = format.name
    // Draining: the listener stays up for probes and in-flight work, but no new model call starts.
    if (isDraining()) {
      throw gatewayError('GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down; retry on another instance.', { headers: { connection: 'close' } })
    }
    // An audio upload is a form; every other operation takes JSON.
    let body = op === 'transcription' ? await readFormBody(ctx.req, bodyLimit) : await readJsonBody(ctx.req, bodyLimit, false)
    if (format) body = await format.toOpenAI(ctx, body)
    // In a form, LiteLLM's `metadata` (tags, trace ids for logs and spend rows) arrives as JSON text.
    if (typeof body.metadata === 'string') body.metadata = jsonObject(body.metadata) ?? body.metadata
    // Azure-style paths carry the deployment in the URL: /openai/deployments/{model}/chat/completions
    const fromPath = (ctx as unknown as { params?: Record<string, string> }).params?.model
    if (fromPath && typeof body.model !== 'string') body.model = fromPath
    // Moderations need no model (as with LiteLLM and OpenAI): one is picked from the model list.
    if (op === 'moderations' && (body.model === undefined || body.model === null || body.model === '')) {
      body.model = moderationModel(ctx.state.scope.cradle.models)
    }
    // LiteLLM's batch completions: `model` as a list of names, the same as a comma-separated one (core/http/multi.ts).
    if (op === 'chat' && Array.isArray(body.model) && body.model.length > 0 && body.model.every((m) => typeof m === 'string' && m !== '')) {
      body.model = body.model.join(',')
    }
    validateRequest(op, body)
    const state = ctx.state
    state.kind = op
    state.body = body
    state.model = body.model as string
    // Only chat and completions stream here; embeddings ignore a stray `stream: true` as OpenAI does, and the
    // media operations refuse it in validateRequest.
    state.stream = generatesText(op) && body.stream === true
    // Another format's handler reads the reply as objects, to translate it.
    state.passthrough = !format
    if (body.priority !== undefined) state.priority = body.priority as number
    const retries = body.num_retries ?? ctx.req.headers['x-litellm-num-retries']
    if (retries !== undefined) state.numRetries = nonNegativeInt(retries, 'num_retries')
    return next()
  }
}

/** OpenAI's default moderation model, as LiteLLM and the OpenAI API use when a request names none. */
export const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest'

/**
 * The model of a moderation request that names none: `omni-moderation-latest` when the model list serves that
 * name (a wildcard included), else the first deployment that is a moderation model (`model_info.mode:
 * moderation`, or an upstream id with "moderation" in it, as in LiteLLM's documented `text-moderation-stable ->
 * openai/omni-moderation-latest`), else the default name, which then fails as any unknown model does.
 */
function moderationModel(models: ModelTable): string {
  if (models.has(DEFAULT_MODERATION_MODEL)) return DEFAULT_MODERATION_MODEL
  for (const t of models.deployments()) {
    if (t.modelInfo.mode === 'moderation' || t.model.includes('moderation')) return t.modelName
  }
  return DEFAULT_MODERATION_MODEL
}

function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text)
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

function nonNegativeInt(v: unknown, param: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': expected a non-negative integer, got ${JSON.stringify(v)}.`, { param })
  }
  return n
}

/** Seconds from a body field or header, as LiteLLM takes them (`timeout: 30`, `x-litellm-timeout: 2.5`). */
function seconds(v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw gatewayError('GW_ERR_VALIDATION', `Invalid '${param}': expected a number of seconds above 0, got ${JSON.stringify(v)}.`, { param })
  }
  return n
}

/**
 * Per-request timeouts (body `timeout` / `stream_timeout`, headers `x-litellm-timeout` / `x-litellm-stream-timeout`)
 * replace the deployments' own for this request, fallback groups included (state.requestTimeouts).
 */
function requestTimeouts(ctx: GatewayContext): RequestTimeouts | null {
  const body = ctx.state.body!
  const headers = ctx.req.headers
  const timeout = seconds(body.timeout ?? headers['x-litellm-timeout'], 'timeout')
  const streamTimeout = seconds(body.stream_timeout ?? headers['x-litellm-stream-timeout'], 'stream_timeout')
  return timeout === undefined && streamTimeout === undefined ? null : { timeout, streamTimeout }
}

export interface TerminalDeps {
  /** The package version, for `x-litellm-version`. */
  version: string
  /** Send LiteLLM's per-call response headers (server.litellm_headers). */
  litellmHeaders: boolean
}

const OP_SUFFIX = /\/(?:chat\/completions|completions|embeddings|images\/generations|audio\/transcriptions|audio\/speech|moderations)$/

/** The model call a route's terminal makes, whatever the wire format it writes (handlers here, formats.ts). */
export interface ModelCaller {
  /**
   * Resolve the deployments (a router's choice, else all of the model's), apply the request's own timeouts and run
   * the attempt chain; LiteLLM's call headers are set either way. Returns the result and the deployment that served it.
   */
  call(ctx: GatewayContext): Promise<{ result: ProviderResult; served: Target }>
  /** Price the call into state.costUsd (`reply`: the parsed OpenAI-form reply, null when none was read) and set the cost header. */
  price(ctx: GatewayContext, served: Target, reply: unknown): void
}

export function modelCaller(op: Operation, cradle: Cradle, attempt: AttemptHandler, deps: TerminalDeps): ModelCaller {
  const { models, providers, pricing } = cradle
  // Per deployment, the header values that do not change between calls: computed once, kept with the Target.
  const cached = new WeakMap<Target, DeploymentHeaders>()
  function headersOf(target: Target): DeploymentHeaders {
    let h = cached.get(target)
    if (!h) cached.set(target, (h = deploymentHeaders(op, target, providers.get(target.provider))))
    return h
  }
  /** LiteLLM's response headers about the call: which deployment, how many retries, the timeout in force. */
  function callHeaders(ctx: GatewayContext, target: Target): void {
    const state = ctx.state
    const res = ctx.res
    if (res.headersSent) return
    // LiteLLM's latency headers, always sent: the time to this response's headers (a stream's first event), and
    // the part of it spent in the gateway rather than in provider calls.
    const total = performance.now() - state.startedHr
    const overhead = Math.max(0, total - state.upstreamMs)
    state.timings.response_ms = Math.round(total * 1000) / 1000
    state.timings.overhead_ms = Math.round(overhead * 1000) / 1000
    res.setHeader('x-litellm-response-duration-ms', String(state.timings.response_ms))
    res.setHeader('x-litellm-overhead-duration-ms', String(state.timings.overhead_ms))
    if (!deps.litellmHeaders) return
    const h = headersOf(target)
    const retries = state.attempts.length > 0 ? state.attempts.length - 1 : 0
    res.setHeader('x-litellm-model-id', h.id)
    res.setHeader('x-litellm-version', deps.version)
    res.setHeader('x-litellm-attempted-retries', String(retries))
    res.setHeader('x-litellm-max-retries', String(state.maxRetries))
    res.setHeader('x-litellm-attempted-fallbacks', String(state.fallbacks))
    res.setHeader('x-litellm-timeout', state.stream ? h.streamTimeout : h.timeout)
    if (h.base) res.setHeader('x-litellm-model-api-base', h.base)
  }
  return {
    async call(ctx) {
      const state = ctx.state
      if (state.targets.length === 0) state.targets = models.resolve(state.model)
      state.requestTimeouts = requestTimeouts(ctx)
      state.targets = withRequestTimeouts(state.targets, state.requestTimeouts)
      const target = state.targets[0]
      if (!target) throw gatewayError('GW_ERR_NO_DEPLOYMENT', `No deployment available for model ${state.model}`)
      let result
      try {
        result = await attempt({ op, target, request: state.body!, stream: state.stream, state, number: 0 })
        // Tools the gateway runs itself (MCP): the loop calls the model again with their results, on the same
        // deployments (fallbacks and retries apply to each turn).
        const loop = state.toolLoop
        if (loop !== null) {
          result = await loop.run(result, (request) => attempt({ op, target: state.targets[0] ?? target, request, stream: state.stream, state, number: 0 }))
        }
      } catch (err) {
        callHeaders(ctx, lastTried(state) ?? target)
        throw err
      }
      const served = state.target ?? target
      callHeaders(ctx, served)
      return { result, served }
    },
    price(ctx, served, reply) {
      priceCall(ctx.state, served, op, pricing, reply)
      // Tools the gateway ran for the call (an MCP server's per-query price) are part of its cost.
      const tools = ctx.state.toolCalls
      for (let i = 0; i < tools.length; i++) ctx.state.costUsd += tools[i]!.costUsd
      if (deps.litellmHeaders && !ctx.res.headersSent) ctx.res.setHeader('x-litellm-response-cost', formatCost(ctx.state.costUsd))
    },
  }
}

export function modelTerminal(op: Operation, cradle: Cradle, attempt: AttemptHandler, deps: TerminalDeps): GatewayMiddleware {
  const caller = modelCaller(op, cradle, attempt, deps)
  return async function callModel(ctx: GatewayContext) {
    const state = ctx.state
    const { result, served } = await caller.call(ctx)
    if (result.kind === 'binary') {
      // Audio (or a transcript as text): its price is known before the bytes (characters, the upload's seconds).
      caller.price(ctx, served, null)
      await writeBinary(ctx, result)
      return
    }
    if (result.kind === 'native' || result.kind === 'native-stream') {
      throw gatewayError('GW_ERR_INTERNAL', 'a native reply reached an OpenAI-format route')
    }
    if (result.kind !== 'json') {
      const opts = state.body!.stream_options as { include_usage?: boolean } | null | undefined
      await writeSse(ctx, result, opts?.include_usage === true)
      caller.price(ctx, served, null)
      return
    }
    settleJsonReply(op, ctx, caller, served, result)
  }
}

/**
 * A JSON reply's bookkeeping and body: usage, the capture for logs, the price (and its header), then `ctx.body`. The
 * proxy's terminal above and the in-process one (core/invoke.ts) share it.
 */
export function settleJsonReply(op: Operation, ctx: GatewayContext, caller: ModelCaller, served: Target, result: Extract<ProviderResult, { kind: 'json' }>): void {
  const state = ctx.state
  state.usage = result.usage
  if (state.captureReply) state.reply = result instanceof RawJson ? result : result.body
  // A provider that counts no tokens (an Ollama without eval counts, a host that leaves usage out): the reply's
  // output is counted as a stream's would be, and priceCall estimates the usage from it and the prompt.
  if (result.usage === null && (op === 'chat' || op === 'completions') && !(result instanceof RawJson && !result.read)) {
    state.outputChars += outputChars(result.body as { choices?: unknown })
  }
  // An unread pass-through reply is not parsed for its price (b64 images are megabytes): the request says enough.
  caller.price(ctx, served, result instanceof RawJson && !result.read ? null : result.body)
  // A pass-through reply nobody read goes out as the upstream's own text (checked in core/upstream/passthrough.ts).
  if (result instanceof RawJson && !result.read) {
    ctx.type = 'application/json'
    ctx.body = result.raw
    return
  }
  let body = result.body
  if (op === 'embeddings' && state.body!.encoding_format === 'base64') body = embeddingsAsBase64(body as EmbeddingResponse)
  ctx.body = body
}

/**
 * The call's cost and where it came from. A stream that ended without usage (the client went away, or the provider
 * sends none) is priced on what it delivered: the prompt as estimated for budgets, the output as counted characters
 * (4 to a token), marked 'estimated' so logs say so. Media operations are priced by their own units
 * (core/pricing/media.ts) from the request and `reply`, the parsed JSON reply (null when there is none to read).
 */
function priceCall(state: GatewayContext['state'], target: Target, op: Operation, pricing: Pricing, reply: unknown): void {
  let usage = state.usage
  let estimated = false
  if (!usage && (state.outputChars > 0 || (op === 'embeddings' && reply !== null))) {
    const prompt = promptTokensEstimate(op, state.body ?? {})
    const completion = Math.ceil(state.outputChars / 4)
    usage = state.usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
    estimated = true
  }
  const c = pricing.callCost(target, op, state.body ?? {}, reply, usage)
  if (c.source === '') return
  state.costUsd = c.usd
  state.costSource = estimated ? 'estimated' : c.source
}

interface DeploymentHeaders {
  id: string
  /** The API base without credentials or query (a key in a URL must not leave in a header); '' for in-process. */
  base: string
  timeout: string
  streamTimeout: string
}

/** Characters a header value may not carry (Node throws on them): such a value is sent percent-encoded. */
const UNSAFE_HEADER = /[^\t\x20-\x7e]/

function headerSafe(v: string): string {
  return UNSAFE_HEADER.test(v) ? encodeURIComponent(v) : v
}

function deploymentHeaders(op: Operation, target: Target, adapter: ProviderAdapter | undefined): DeploymentHeaders {
  let base = target.apiBase ?? ''
  if (!base && adapter && !adapter.invoke) {
    try {
      base = adapter.request(op, target, false).url.replace(OP_SUFFIX, '')
    } catch {
      base = ''
    }
  }
  if (base) {
    try {
      const u = new URL(base)
      u.username = ''
      u.password = ''
      u.search = ''
      base = u.toString().replace(/\/$/, '')
    } catch {
      base = ''
    }
  }
  return {
    id: headerSafe(target.id),
    base: headerSafe(base),
    timeout: String(target.timeoutMs / 1000),
    streamTimeout: String(target.streamTimeoutMs / 1000),
  }
}

function lastTried(state: GatewayContext['state']): Target | undefined {
  const last = state.attempts[state.attempts.length - 1]
  return last ? state.targets.find((t) => t.id === last.targetId) : undefined
}

/**
 * The innermost attempt step: records each attempt (for logs, metrics and retries) around the provider dispatch,
 * and logs every upstream failure with its cause (never the key: only the deployment id, provider and model).
 */
export function recordAttempts(dispatch: AttemptHandler, logger?: Logger): AttemptHandler {
  return async function recordAttempt(a) {
    const startedAt = Date.now()
    const rec = { targetId: a.target.id, provider: a.target.provider, model: a.target.model, startedAt, durationMs: 0, status: 0, errorCode: undefined as string | undefined }
    a.state.attempts.push(rec)
    try {
      const out = await dispatch(a)
      rec.status = 200
      a.state.target = a.target
      return out
    } catch (err) {
      const e = err as { status?: number; code?: string; message?: string; upstreamStatus?: number }
      // Which deployment failed, for the SDK's callers and the logs: the same error object either way.
      if (err instanceof GatewayError && err.model === undefined) {
        err.model = a.target.model
        err.provider ??= a.target.provider
      }
      rec.status = e.status ?? 500
      rec.errorCode = e.code
      rec.durationMs = Date.now() - startedAt
      if (logger && rec.status !== 499) {
        logger.warn('upstream attempt failed', {
          requestId: a.state.requestId, attempt: a.state.attempts.length, deployment: a.target.id, modelGroup: a.target.modelName,
          provider: a.target.provider, model: a.target.model, status: rec.status, upstreamStatus: e.upstreamStatus,
          code: e.code, cause: e.message, durationMs: rec.durationMs,
        })
      }
      throw err
    } finally {
      rec.durationMs = Date.now() - startedAt
    }
  }
}

export const OPERATION_PATHS: Record<Operation, string[]> = {
  chat: ['/v1/chat/completions', '/chat/completions', '/openai/deployments/:model/chat/completions', '/engines/:model/chat/completions'],
  completions: ['/v1/completions', '/completions', '/openai/deployments/:model/completions', '/engines/:model/completions'],
  embeddings: ['/v1/embeddings', '/embeddings', '/openai/deployments/:model/embeddings', '/engines/:model/embeddings'],
  images: ['/v1/images/generations', '/images/generations', '/openai/deployments/:model/images/generations'],
  transcription: ['/v1/audio/transcriptions', '/audio/transcriptions', '/openai/deployments/:model/audio/transcriptions'],
  speech: ['/v1/audio/speech', '/audio/speech', '/openai/deployments/:model/audio/speech'],
  moderations: ['/v1/moderations', '/moderations'],
}

/** The models a caller may use: its key's allow-list and its team's (core/access.ts). */
function visibleModels<M extends { id: string }>(p: Principal | null, all: M[], aliasOf: (name: string) => string | undefined): M[] {
  return all.filter((m) => mayUseModel(p, m.id, aliasOf))
}

export interface CoreRouteDeps extends InfoDeps, TerminalDeps {}

export function coreRoutes(cradle: Cradle, attempt: AttemptHandler, deps: CoreRouteDeps): RouteDef[] {
  const routes: RouteDef[] = []
  for (const op of Object.keys(OPERATION_PATHS) as Operation[]) {
    routes.push({ method: 'POST', path: OPERATION_PATHS[op], kind: op, body: true, handler: modelTerminal(op, cradle, attempt, deps) })
  }
  const { models } = cradle
  routes.push({
    method: 'GET', path: ['/v1/models', '/models'], kind: 'models',
    handler: async function listModels(ctx) {
      ctx.body = { object: 'list', data: visibleModels(ctx.state.principal, models.list(), models.aliasOf) }
    },
  })
  routes.push({
    method: 'GET', path: ['/v1/models/*model', '/models/*model'], kind: 'models',
    handler: async function getModel(ctx) {
      const id = (ctx as unknown as { params: { model: string } }).params.model
      const found = visibleModels(ctx.state.principal, models.list(), models.aliasOf).find((m) => m.id === id)
      if (!found) throw gatewayError('GW_ERR_MODEL_NOT_FOUND', `The model \`${id}\` does not exist or you do not have access to it.`, { param: 'model' })
      ctx.body = found
    },
  })
  routes.push({
    method: 'GET', path: ['/health/liveliness', '/health/liveness'], kind: 'other', public: true,
    handler: async function liveness(ctx) {
      ctx.type = 'application/json'
      ctx.body = '"I\'m alive!"'
    },
  })
  routes.push(...infoRoutes(cradle, deps))
  return routes
}
