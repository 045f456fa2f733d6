/**
 * The core's own routes: the OpenAI operations, /v1/models and the health probes. Each model operation's handler
 * is the terminal of the request chain: it takes the targets a router chose (or all deployments of the model, with
 * no router), runs the attempt chain, and writes JSON or SSE.
 */
import type { Cradle } from '../container.js'
import { gatewayError } from '../errors.js'
import type { EmbeddingResponse, Operation } from '../openai/types.js'
import type { AttemptHandler } from '../pipeline.js'
import type { GatewayMiddleware } from '../plugin.js'
import type { GatewayContext } from './respond.js'
import { writeSse } from './respond.js'
import { embeddingsAsBase64 } from '../openai/shape.js'
import { readJsonBody } from './body.js'
import { validateRequest } from './validate.js'
import type { RouteDef } from './routes.js'

/** Reads and validates the body of a model operation before the request chain runs. */
export function prepareModelRequest(op: Operation, bodyLimit: number): GatewayMiddleware {
  return async function prepareRequest(ctx: GatewayContext, next) {
    const body = await readJsonBody(ctx.req, bodyLimit)
    // Azure-style paths carry the deployment in the URL: /openai/deployments/{model}/chat/completions
    const fromPath = (ctx as unknown as { params?: Record<string, string> }).params?.model
    if (fromPath && typeof body.model !== 'string') body.model = fromPath
    validateRequest(op, body)
    const state = ctx.state
    state.kind = op
    state.body = body
    state.model = body.model as string
    // Embeddings have no streaming form; a stray `stream: true` is ignored as OpenAI ignores it.
    state.stream = op !== 'embeddings' && body.stream === true
    if (body.priority !== undefined) state.priority = body.priority as number
    return next()
  }
}

export function modelTerminal(op: Operation, cradle: Cradle, attempt: AttemptHandler): GatewayMiddleware {
  const { models } = cradle
  return async function callModel(ctx: GatewayContext) {
    const state = ctx.state
    if (state.targets.length === 0) state.targets = models.resolve(state.model)
    const target = state.targets[0]
    if (!target) throw gatewayError('GW_ERR_NO_DEPLOYMENT', `No deployment available for model ${state.model}`)
    const result = await attempt({ op, target, request: state.body!, stream: state.stream, state, number: 0 })
    if (state.target) {
      ctx.set('x-litellm-model-id', state.target.id)
    }
    if (result.kind === 'stream') {
      const opts = state.body!.stream_options as { include_usage?: boolean } | null | undefined
      await writeSse(ctx, result.chunks, opts?.include_usage === true)
      return
    }
    state.usage = result.usage
    let body = result.body
    if (op === 'embeddings' && state.body!.encoding_format === 'base64') body = embeddingsAsBase64(body as EmbeddingResponse)
    ctx.body = body
  }
}

/**
 * The innermost attempt step: records each attempt (for logs, metrics and retries) around the provider dispatch.
 */
export function recordAttempts(dispatch: AttemptHandler): AttemptHandler {
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
      const e = err as { status?: number; code?: string }
      rec.status = e.status ?? 500
      rec.errorCode = e.code
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
}

export function coreRoutes(cradle: Cradle, attempt: AttemptHandler, isDraining: () => boolean): RouteDef[] {
  const routes: RouteDef[] = []
  for (const op of Object.keys(OPERATION_PATHS) as Operation[]) {
    routes.push({ method: 'POST', path: OPERATION_PATHS[op], kind: op, body: true, handler: modelTerminal(op, cradle, attempt) })
  }
  const { models } = cradle
  routes.push({
    method: 'GET', path: ['/v1/models', '/models'], kind: 'models',
    handler: async function listModels(ctx) {
      const allowed = ctx.state.principal?.models
      const data = allowed && allowed.length ? models.list().filter((m) => allowed.includes(m.id)) : models.list()
      ctx.body = { object: 'list', data }
    },
  })
  routes.push({
    method: 'GET', path: ['/v1/models/*model', '/models/*model'], kind: 'models',
    handler: async function getModel(ctx) {
      const id = (ctx as unknown as { params: { model: string } }).params.model
      const found = models.list().find((m) => m.id === id)
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
  routes.push({
    method: 'GET', path: '/health/readiness', kind: 'other', public: true,
    handler: async function readiness(ctx) {
      const draining = isDraining()
      ctx.status = draining ? 503 : 200
      ctx.body = { status: draining ? 'draining' : 'healthy', db: 'Not connected', cache: null, models: models.list().length }
    },
  })
  return routes
}
