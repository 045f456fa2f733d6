/**
 * The routes a LiteLLM user and their load balancers call besides the model operations: health (readiness with
 * LiteLLM's fields, and `/health`, which calls every deployment once), `/routes`, `/model/info` and
 * `/model_group/info` (each also under `/v1`). Built from the model table, so deployments stored with /model/new
 * show at once (`model_info.db_model: true`); keys and secrets are never shown.
 */
import type { AwilixContainer } from 'awilix'
import type { Cradle } from '../container.js'
import type { Store } from '../store.js'
import { gatewayError } from '../errors.js'
import type { AttemptHandler } from '../pipeline.js'
import { beginRequest } from '../request.js'
import type { Operation } from '../openai/types.js'
import type { Target } from '../../providers/types.js'
import { withTimeouts } from '../models.js'
import type { GatewayContext } from './respond.js'
import type { RouteDef } from './routes.js'
import { UploadFile } from '../openai/upload.js'
import { silentWav } from '../openai/audio.js'

export interface InfoDeps {
  container: AwilixContainer<Cradle>
  /** The bare provider dispatch (no retries), for health checks. */
  dispatch: AttemptHandler
  isDraining: () => boolean
  version: string
  /** Every route the gateway serves, for `/routes` (read when asked, after all plugins added theirs). */
  routes: () => readonly RouteDef[]
}

/** Longest a health check waits for one deployment, whatever its own timeout: 30 s. */
const HEALTH_TIMEOUT_MS = 30_000

/** What a deployment shows of its litellm_params: where it goes and its limits, never a key. */
export function publicParams(t: Target): Record<string, unknown> {
  const out: Record<string, unknown> = { model: `${t.provider}/${t.model}` }
  if (t.apiBase) out.api_base = t.apiBase
  if (t.apiVersion) out.api_version = t.apiVersion
  if (t.rpm !== undefined) out.rpm = t.rpm
  if (t.tpm !== undefined) out.tpm = t.tpm
  if (t.order !== undefined) out.order = t.order
  if (t.weight !== 1) out.weight = t.weight
  if (t.maxRetries !== undefined) out.max_retries = t.maxRetries
  out.timeout = t.timeoutMs / 1000
  out.stream_timeout = t.streamTimeoutMs / 1000
  if (t.inputCostPerToken !== undefined) out.input_cost_per_token = t.inputCostPerToken
  if (t.outputCostPerToken !== undefined) out.output_cost_per_token = t.outputCostPerToken
  return out
}

function modeOf(t: Target, cradle: Cradle): string {
  const declared = t.modelInfo.mode
  if (typeof declared === 'string') return declared
  // An image, audio or moderation model LiteLLM's price table knows: its mode there.
  const media = cradle.pricing.mediaMode(t)
  if (media) return media
  const ops = cradle.providers.get(t.provider)?.operations
  return ops && !ops.has('chat') && ops.has('embeddings') ? 'embedding' : 'chat'
}

function modelInfoOf(t: Target, cradle: Cradle): Record<string, unknown> {
  return {
    ...t.modelInfo,
    id: t.id,
    // A deployment added with /model/new (stored), as LiteLLM flags it; config.yaml ones are false.
    db_model: cradle.models.isStored(t.id),
    litellm_provider: t.provider,
    mode: modeOf(t, cradle),
    input_cost_per_token: t.inputCostPerToken ?? t.modelInfo.input_cost_per_token ?? null,
    output_cost_per_token: t.outputCostPerToken ?? t.modelInfo.output_cost_per_token ?? null,
  }
}

/** The deployments a caller may see: all, or those of the models its key allows. */
function visible(ctx: GatewayContext, cradle: Cradle): readonly Target[] {
  const all = cradle.models.deployments()
  const allowed = ctx.state.principal?.models
  return allowed && allowed.length ? all.filter((t) => allowed.includes(t.modelName)) : all
}

function query(ctx: GatewayContext, name: string): string | undefined {
  const v = ctx.query[name]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** The call /health makes per mode: LiteLLM's modes, each a minimal real request (a real image for images, as LiteLLM's). */
const HEALTH_BODIES: Record<string, { op: Operation; body: () => Record<string, unknown> }> = {
  chat: { op: 'chat', body: () => ({ messages: [{ role: 'user', content: 'ping' }], max_tokens: 1 }) },
  completion: { op: 'completions', body: () => ({ prompt: 'ping', max_tokens: 1 }) },
  embedding: { op: 'embeddings', body: () => ({ input: 'ping' }) },
  image_generation: { op: 'images', body: () => ({ prompt: 'test', n: 1 }) },
  audio_speech: { op: 'speech', body: () => ({ input: 'test', voice: 'alloy' }) },
  // A tenth of a second of silence.
  audio_transcription: { op: 'transcription', body: () => ({ file: new UploadFile(silentWav(0.1), 'health.wav', 'audio/wav') }) },
  moderation: { op: 'moderations', body: () => ({ input: 'ping' }) },
}

/** 'connected', or 'disconnected' when the store does not answer a trivial query within 1 s. */
async function pingStore(store: Store): Promise<'connected' | 'disconnected'> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([store.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 1000)))])
    return 'connected'
  } catch {
    return 'disconnected'
  } finally {
    clearTimeout(timer)
  }
}

export function infoRoutes(cradle: Cradle, deps: InfoDeps): RouteDef[] {
  const { models, logger } = cradle

  /** One real, minimal call to a deployment, as LiteLLM's /health makes: healthy or the error it gave. */
  async function check(t: Target): Promise<{ ok: boolean; error?: string }> {
    const how = HEALTH_BODIES[modeOf(t, cradle)]
    if (!how) return { ok: false, error: `mode '${String(t.modelInfo.mode)}' has no health check here` }
    const target = withTimeouts(t, Math.min(t.timeoutMs, HEALTH_TIMEOUT_MS), Math.min(t.streamTimeoutMs, HEALTH_TIMEOUT_MS))
    const ac = new AbortController()
    const life = beginRequest(deps.container, logger, ac.signal)
    const state = life.state
    state.kind = how.op
    state.model = t.modelName
    state.targets = [target]
    const request = { ...how.body(), model: t.modelName }
    state.body = request
    try {
      const result = await deps.dispatch({ op: how.op, target, request, stream: false, state, number: 0 })
      // Audio is not needed: the answer's start is enough, and the connection is let go.
      if (result.kind === 'binary') await result.chunks[Symbol.asyncIterator]().return?.(undefined)
      life.end({ status: 200, aborted: false })
      return { ok: true }
    } catch (err) {
      const e = err as { status?: number; message?: string }
      life.end({ status: e.status ?? 500, aborted: false })
      return { ok: false, error: e.message ?? String(err) }
    }
  }

  const routes: RouteDef[] = []
  routes.push({
    method: 'GET', path: '/health/readiness', kind: 'other', public: true,
    handler: async function readiness(ctx) {
      const draining = deps.isDraining()
      // As LiteLLM: with a database configured, readiness checks it and answers 503 while it cannot be reached.
      const db = cradle.store ? await pingStore(cradle.store) : 'Not connected'
      const unhealthy = db === 'disconnected'
      ctx.status = draining || unhealthy ? 503 : 200
      ctx.body = {
        status: draining ? 'draining' : unhealthy ? 'unhealthy' : 'healthy',
        db,
        cache: cradle.redis ? 'redis' : null,
        // Redis down does not make the gateway unready: every plugin falls back to in-process state meanwhile.
        ...(cradle.redis ? { cache_status: cradle.redis.status === 'ready' ? 'connected' : 'disconnected' } : {}),
        litellm_version: deps.version,
        success_callbacks: [],
        last_updated: new Date().toISOString(),
        models: models.list().length,
      }
    },
  })
  routes.push({
    method: 'GET', path: ['/health', '/v1/health'], kind: 'management',
    handler: async function health(ctx) {
      const kind = ctx.state.principal?.kind
      if (kind === 'key') {
        throw gatewayError('GW_ERR_FORBIDDEN', '/health calls every deployment and is for the admin (master key) only.', { openaiCode: 'admin_only' })
      }
      const only = query(ctx, 'model')
      const targets = models.deployments().filter((t) => !only || t.modelName === only || t.id === only)
      if (only && targets.length === 0) {
        throw gatewayError('GW_ERR_MODEL_NOT_FOUND', `No deployment named ${only} in the config.`, { param: 'model' })
      }
      const results = await Promise.all(targets.map(check))
      const healthy: unknown[] = []
      const unhealthy: unknown[] = []
      targets.forEach((t, i) => {
        const r = results[i]!
        const entry = { ...publicParams(t), model_name: t.modelName, model_id: t.id }
        if (r.ok) healthy.push(entry)
        else unhealthy.push({ ...entry, error: r.error })
      })
      ctx.body = { healthy_endpoints: healthy, unhealthy_endpoints: unhealthy, healthy_count: healthy.length, unhealthy_count: unhealthy.length }
    },
  })
  routes.push({
    method: 'GET', path: '/routes', kind: 'management',
    handler: async function listRoutes(ctx) {
      const out: Array<{ path: string; methods: string[]; name: string }> = []
      for (const r of deps.routes()) {
        for (const p of typeof r.path === 'string' ? [r.path] : r.path) out.push({ path: p, methods: [r.method], name: r.handler.name || 'anonymous' })
      }
      ctx.body = { routes: out }
    },
  })
  routes.push({
    method: 'GET', path: ['/model/info', '/v1/model/info'], kind: 'models',
    handler: async function modelInfo(ctx) {
      const id = query(ctx, 'litellm_model_id')
      const data = visible(ctx, cradle)
        .filter((t) => !id || t.id === id)
        .map((t) => ({ model_name: t.modelName, litellm_params: publicParams(t), model_info: modelInfoOf(t, cradle) }))
      ctx.body = { data }
    },
  })
  routes.push({
    method: 'GET', path: ['/model_group/info', '/v1/model_group/info'], kind: 'models',
    handler: async function modelGroupInfo(ctx) {
      const only = query(ctx, 'model_group')
      const groups = new Map<string, Target[]>()
      for (const t of visible(ctx, cradle)) {
        if (only && t.modelName !== only) continue
        let g = groups.get(t.modelName)
        if (!g) groups.set(t.modelName, (g = []))
        g.push(t)
      }
      const data = [...groups.entries()].map(([name, group]) => groupInfo(name, group, cradle))
      ctx.body = { data }
    },
  })
  return routes
}

function firstNumber(group: readonly Target[], pick: (t: Target) => unknown): number | null {
  for (const t of group) {
    const v = pick(t)
    if (typeof v === 'number') return v
  }
  return null
}

function sumOf(group: readonly Target[], pick: (t: Target) => number | undefined): number | null {
  let total: number | null = null
  for (const t of group) {
    const v = pick(t)
    if (v !== undefined) total = (total ?? 0) + v
  }
  return total
}

function flag(group: readonly Target[], key: string): boolean {
  return group.some((t) => t.modelInfo[key] === true)
}

function groupInfo(name: string, group: readonly Target[], cradle: Cradle): Record<string, unknown> {
  return {
    model_group: name,
    providers: [...new Set(group.map((t) => t.provider))],
    max_input_tokens: firstNumber(group, (t) => t.modelInfo.max_input_tokens ?? t.modelInfo.max_tokens),
    max_output_tokens: firstNumber(group, (t) => t.modelInfo.max_output_tokens ?? t.modelInfo.max_tokens),
    input_cost_per_token: firstNumber(group, (t) => t.inputCostPerToken),
    output_cost_per_token: firstNumber(group, (t) => t.outputCostPerToken),
    mode: modeOf(group[0]!, cradle),
    tpm: sumOf(group, (t) => t.tpm),
    rpm: sumOf(group, (t) => t.rpm),
    supports_parallel_function_calling: flag(group, 'supports_parallel_function_calling'),
    supports_vision: flag(group, 'supports_vision'),
    supports_function_calling: flag(group, 'supports_function_calling'),
    supported_openai_params: null,
    configurable_clientside_auth_params: null,
  }
}
