/**
 * The model table: `model_list` entries resolved once at boot into immutable Targets, grouped by public name.
 * Wildcard names (`openai/*`, `*`) route any matching model to a provider, as in LiteLLM; targets built for them
 * are cached (bounded).
 *
 * No silent fallbacks: a deployment whose api_base/api_key was written but resolved to nothing (`unresolved`, set
 * by the loader) is disabled, and its name answers 503 instead of reaching the provider's public endpoint with a
 * global key; a provider prefix nobody knows is a 400 per call instead of an OpenAI model id.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Config, ModelEntry } from './config/load.js'
import { gatewayError } from './errors.js'
import type { ModelObject } from './openai/types.js'
import type { ProviderRegistry } from '../providers/registry.js'
import type { Target } from '../providers/types.js'
import { REQUEST_DEFAULT_KEYS } from './compat/litellm.js'

export interface ModelTable {
  /** Every deployment of a public model name, in config order. Throws 400 GW_ERR_INVALID_MODEL, as LiteLLM does. */
  resolve(name: string): Target[]
  has(name: string): boolean
  /** The group a model_group_alias name stands for; undefined for any other name. */
  aliasOf(name: string): string | undefined
  /** Public model names for /v1/models (wildcards are not listed). */
  list(): ModelObject[]
  /** All concrete deployments. */
  deployments(): readonly Target[]
  /** Boot-time notes: deployments whose provider has no adapter (yet, or at all). */
  warnings: readonly string[]
  /**
   * Add a deployment at runtime (a model stored with /model/new); it serves at once. Its id is `model_info.id`
   * (required). `os.environ/NAME` values in litellm_params are resolved here, as the config loader does.
   * Throws 400 GW_ERR_CONFLICT when the id is taken, GW_ERR_VALIDATION when a referenced variable is not set.
   */
  add(entry: ModelEntry): Target | null
  /** Replace a runtime-added deployment (same id). Throws 404 for an unknown id, 400 for a config.yaml one. */
  update(id: string, entry: ModelEntry): Target | null
  /** Remove a runtime-added deployment; false when unknown. Throws 400 for a config.yaml deployment. */
  remove(id: string): boolean
  /** Whether `id` is a runtime-added (stored) deployment rather than one from config.yaml. */
  isStored(id: string): boolean
  /** Ids of the runtime-added deployments. */
  storedIds(): string[]
}

interface Wildcard {
  prefix: string
  entry: ModelEntry
}

export interface TargetDefaults {
  dropParams: boolean
  /** Seconds. */
  requestTimeout: number
  /** Seconds. */
  streamTimeout: number
  env: Record<string, string | undefined>
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * Build one Target from a model_list entry (or from SDK call params).
 *
 * Key and base come from the entry, else from the provider's environment variables (LiteLLM's behaviour), with two
 * exceptions that keep a credential from going where it was not meant to: an `api_key` written as '' means "no key"
 * (a local server), and a model whose provider was only inferred from its api_base (`meta-llama/Llama-3-8b` on a
 * self-hosted server) never gets OPENAI_API_KEY.
 */
export function buildTarget(entry: ModelEntry, providers: ProviderRegistry, d: TargetDefaults, modelOverride?: string): Target {
  const p = entry.litellm_params
  const raw = modelOverride ?? p.model
  const custom = str(p.custom_llm_provider)
  const apiBase = str(p.api_base)
  const { provider, model } = providers.parseModel(raw, custom, apiBase !== undefined)
  const inferred = !custom && provider === 'openai' && model === raw && raw.includes('/')
  const adapter = providers.get(provider)
  const info = (entry.model_info ?? {}) as Record<string, unknown>
  const fromEnv = (names: readonly string[] | undefined) => {
    for (const n of names ?? []) if (d.env[n]) return d.env[n]
    return undefined
  }
  const defaults: Record<string, unknown> = {}
  const params: Record<string, unknown> = {}
  for (const k of Object.keys(p)) {
    if (p[k] == null) continue
    if (REQUEST_DEFAULT_KEYS.has(k)) defaults[k] = p[k]
    else if (!TARGET_FIELDS.has(k)) params[k] = p[k]
  }
  const envParams = adapter?.env?.params
  if (envParams) for (const k in envParams) if (params[k] === undefined) { const v = fromEnv(envParams[k]); if (v !== undefined) params[k] = v }
  const id = str(info.id) ?? createHash('sha256').update(JSON.stringify([entry.model_name, p])).digest('hex').slice(0, 16)
  return Object.freeze({
    id,
    modelName: entry.model_name,
    provider,
    model,
    apiBase: apiBase ?? fromEnv(adapter?.env?.apiBase),
    apiKey: typeof p.api_key === 'string' ? str(p.api_key) : inferred ? undefined : fromEnv(adapter?.env?.apiKey),
    apiVersion: str(p.api_version),
    organization: str(p.organization),
    timeoutMs: (num(p.timeout) ?? d.requestTimeout) * 1000,
    streamTimeoutMs: (num(p.stream_timeout) ?? num(p.timeout) ?? d.streamTimeout) * 1000,
    maxRetries: num(p.max_retries),
    rpm: num(p.rpm),
    tpm: num(p.tpm),
    maxParallelRequests: num(p.max_parallel_requests) ?? num(info.max_parallel_requests),
    weight: num(p.weight) ?? 1,
    order: num(p.order),
    inputCostPerToken: num(p.input_cost_per_token) ?? num(info.input_cost_per_token),
    outputCostPerToken: num(p.output_cost_per_token) ?? num(info.output_cost_per_token),
    mockResponse: typeof p.mock_response === 'string' ? p.mock_response : undefined,
    dropParams: typeof p.drop_params === 'boolean' ? p.drop_params : d.dropParams,
    additionalDropParams: Array.isArray(p.additional_drop_params) ? (p.additional_drop_params as string[]) : [],
    extraHeaders: (p.extra_headers as Record<string, string> | undefined) ?? {},
    defaults,
    modelInfo: info,
    params: Object.freeze(params),
  })
}

/** litellm_params keys that Target has a field for; the rest go to Target.params for the adapter. */
const TARGET_FIELDS: ReadonlySet<string> = new Set([
  'model', 'api_base', 'api_key', 'api_version', 'organization', 'custom_llm_provider', 'timeout', 'stream_timeout',
  'max_retries', 'rpm', 'tpm', 'max_parallel_requests', 'weight', 'order', 'input_cost_per_token',
  'output_cost_per_token', 'mock_response', 'drop_params', 'additional_drop_params', 'extra_headers',
])

/** The same deployment with other timeouts (milliseconds), for one request: a per-request timeout, a health check. */
export function withTimeouts(target: Target, timeoutMs: number, streamTimeoutMs: number): Target {
  return Object.freeze({ ...target, timeoutMs, streamTimeoutMs })
}

/** Timeouts a request asked for (body `timeout` / `stream_timeout` or LiteLLM's headers), seconds. */
export interface RequestTimeouts {
  timeout?: number | undefined
  streamTimeout?: number | undefined
}

/**
 * A request's own timeouts over its deployments' (per phase, as deployment timeouts are): the requested group's
 * targets, and any fallback group's, get the same. A stream without its own stream timeout takes the request's
 * timeout.
 */
export function withRequestTimeouts(targets: Target[], rt: RequestTimeouts | null): Target[] {
  if (!rt || (rt.timeout === undefined && rt.streamTimeout === undefined)) return targets
  const { timeout, streamTimeout } = rt
  return targets.map((t) => withTimeouts(t,
    timeout !== undefined ? timeout * 1000 : t.timeoutMs,
    streamTimeout !== undefined ? streamTimeout * 1000 : timeout !== undefined ? timeout * 1000 : t.streamTimeoutMs))
}

function providerWarning(entry: ModelEntry, target: Target, providers: ProviderRegistry): string | undefined {
  if (providers.get(target.provider)) return undefined
  if (providers.isPending(target.provider)) {
    return `model_list: ${entry.model_name} uses provider '${target.provider}', not supported yet; its requests get a 400`
  }
  return `model_list: ${entry.model_name} uses unknown provider '${target.provider}' (model ${entry.litellm_params.model}); ` +
    'its requests get a 400 and nothing is sent. Write a known provider prefix, or set api_base for an OpenAI-compatible host'
}

function disabledError(name: string, reasons: string) {
  return gatewayError('GW_ERR_NO_DEPLOYMENT',
    `Model \`${name}\` has no usable deployment (${reasons}); nothing was sent. Fix the entry and restart.`, { param: 'model' })
}

/**
 * A wildcard that sends to OpenAI's own endpoint (`*` -> `openai/*`, no api_base) must not turn a name such as
 * `github_copilot/gpt-4` into an OpenAI model id: OpenAI ids have no slash, so such a name is a provider prefix the
 * gateway cannot serve, and the prompt and OPENAI_API_KEY would go to the wrong place.
 */
function checkWildcardName(name: string, rest: string, target: Target, entry: ModelEntry, providers: ProviderRegistry): void {
  if (target.provider !== 'openai' || str(entry.litellm_params.api_base) || !rest.includes('/')) return
  const prefix = rest.slice(0, rest.indexOf('/'))
  const why = providers.isPending(prefix) ? `provider '${prefix}' is not supported by this Switchyard version yet` : `unknown provider '${prefix}'`
  throw gatewayError('GW_ERR_PROVIDER_UNSUPPORTED', `Model \`${name}\`: ${why}; nothing was sent.`, { param: 'model' })
}

/** A whole-value environment reference, as config.yaml writes it: `os.environ/NAME`. */
const ENV_REF = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/

/**
 * litellm_params with `os.environ/NAME` values resolved, for deployments added at runtime (config.yaml entries are
 * resolved by the loader). An unset variable refuses the entry rather than sending the literal string as a key.
 */
function resolveEnvRefs(params: ModelEntry['litellm_params'], env: Record<string, string | undefined>): ModelEntry['litellm_params'] {
  let out: ModelEntry['litellm_params'] | null = null
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== 'string') continue
    const m = ENV_REF.exec(v)
    if (!m) continue
    const value = env[m[1]!]
    if (!value) {
      throw gatewayError('GW_ERR_VALIDATION', `litellm_params.${k} references ${m[1]}, which is not set on the gateway.`, { param: `litellm_params.${k}` })
    }
    out ??= { ...params }
    out[k] = value
  }
  return out ?? params
}

export function createModelTable(config: Config, providers: ProviderRegistry, env: Record<string, string | undefined> = process.env): ModelTable {
  const d: TargetDefaults = {
    dropParams: config.settings.drop_params,
    requestTimeout: config.settings.request_timeout,
    streamTimeout: config.settings.stream_timeout,
    env,
  }
  // Groups and the deployment list are replaced, never mutated, when stored models change: a request that already
  // resolved a group keeps a consistent array.
  const byName = new Map<string, Target[]>()
  let wildcards: Wildcard[] = []
  let all: Target[] = []
  const warnings: string[] = []
  /** Public names whose every deployment is disabled -> why (the loader warned at boot). */
  const disabled = new Map<string, string>()
  for (const entry of config.model_list) {
    if (entry.model_name.endsWith('*')) {
      wildcards.push({ prefix: entry.model_name.slice(0, -1), entry })
      continue
    }
    if (entry.unresolved?.length) {
      disabled.set(entry.model_name, entry.unresolved.join('; '))
      continue
    }
    const target = buildTarget(entry, providers, d)
    const note = providerWarning(entry, target, providers)
    if (note) warnings.push(note)
    let group = byName.get(entry.model_name)
    if (!group) byName.set(entry.model_name, (group = []))
    group.push(target)
    all.push(target)
  }
  /** Deployment ids from config.yaml: the API may not change or delete these. */
  const configIds = new Set(all.map((t) => t.id))
  for (const w of wildcards) {
    const id = str((w.entry.model_info as Record<string, unknown> | null | undefined)?.id)
    if (id) configIds.add(id)
  }
  /** Runtime-added deployments by id: the concrete target, or the wildcard route for a `prefix/*` name. */
  const stored = new Map<string, { target: Target | null; wildcard: Wildcard | null }>()
  // Longest prefix first, so `openai/*` wins over `*`.
  const byPrefixLength = (a: Wildcard, b: Wildcard) => b.prefix.length - a.prefix.length
  wildcards.sort(byPrefixLength)
  const wildcardTargets = new LRUCache<string, Target[]>({ max: 1000 })
  const created = Math.floor(Date.now() / 1000)
  /**
   * model_group_alias: alias -> the group it serves, and whether /v1/models lists it. A name that is itself a model
   * group stays that group (LiteLLM's order too). The upstream model id is always the deployment's own.
   */
  const aliases = new Map<string, { group: string; hidden: boolean }>()
  for (const [alias, v] of Object.entries(config.settings.model_group_alias ?? {})) {
    aliases.set(alias, typeof v === 'string' ? { group: v, hidden: false } : { group: v.model, hidden: v.hidden === true })
  }
  let listed: ModelObject[] = []
  function relist(): void {
    listed = [...byName.entries()].map(([id, group]) => ({
      id, object: 'model', created, owned_by: String(group[0]!.modelInfo.owned_by ?? group[0]!.provider),
    }))
    for (const [alias, a] of aliases) {
      const group = byName.get(a.group)
      if (a.hidden || !group || byName.has(alias)) continue
      listed.push({ id: alias, object: 'model', created, owned_by: String(group[0]!.modelInfo.owned_by ?? group[0]!.provider) })
    }
  }
  relist()

  function fromWildcard(name: string): Target[] | undefined {
    const hit = wildcardTargets.get(name)
    if (hit) return hit
    const w = wildcards.find((x) => name.startsWith(x.prefix))
    if (!w) return undefined
    if (w.entry.unresolved?.length) throw disabledError(name, w.entry.unresolved.join('; '))
    const rest = name.slice(w.prefix.length)
    const m = w.entry.litellm_params.model
    const upstream = m.endsWith('*') ? m.slice(0, -1) + rest : m
    const target = buildTarget({ ...w.entry, model_name: name }, providers, d, upstream)
    checkWildcardName(name, rest, target, w.entry, providers)
    const group = [target]
    wildcardTargets.set(name, group)
    return group
  }

  function insert(id: string, entry: ModelEntry): Target | null {
    const resolved: ModelEntry = {
      model_name: entry.model_name,
      litellm_params: resolveEnvRefs(entry.litellm_params, env),
      model_info: { ...(entry.model_info ?? {}), id },
    }
    if (resolved.model_name.endsWith('*')) {
      const wildcard: Wildcard = { prefix: resolved.model_name.slice(0, -1), entry: resolved }
      wildcards = [...wildcards, wildcard].sort(byPrefixLength)
      wildcardTargets.clear()
      stored.set(id, { target: null, wildcard })
      return null
    }
    const target = buildTarget(resolved, providers, d)
    byName.set(resolved.model_name, [...(byName.get(resolved.model_name) ?? []), target])
    all = [...all, target]
    stored.set(id, { target, wildcard: null })
    relist()
    return target
  }

  function drop(id: string): void {
    const s = stored.get(id)!
    stored.delete(id)
    if (s.wildcard) {
      wildcards = wildcards.filter((w) => w !== s.wildcard)
      wildcardTargets.clear()
      return
    }
    const t = s.target!
    const group = (byName.get(t.modelName) ?? []).filter((x) => x !== t)
    if (group.length) byName.set(t.modelName, group)
    else byName.delete(t.modelName)
    all = all.filter((x) => x !== t)
    relist()
  }

  /** A group by its own name (no alias), or a wildcard's; `asked` is the name the caller used, for the error. */
  function resolveGroup(name: string, asked: string): Target[] {
    const named = byName.get(name)
    if (named) return named
    const off = disabled.get(name)
    // Checked before the wildcards: a disabled deployment must not be replaced by a catch-all's provider.
    if (off !== undefined) throw disabledError(asked, off)
    const group = fromWildcard(name)
    if (!group) {
      throw gatewayError('GW_ERR_INVALID_MODEL',
        `Invalid model name passed in model=${asked}. Call \`/v1/models\` to view available models for your key.`, { param: 'model' })
    }
    return group
  }

  function refuseConfig(id: string): void {
    if (configIds.has(id)) {
      throw gatewayError('GW_ERR_VALIDATION',
        `Deployment ${id} comes from config.yaml; it cannot be changed or deleted via the API. Edit the config (or store the model via /model/new).`,
        { param: 'id' })
    }
  }

  return {
    resolve(name) {
      const named = byName.get(name)
      if (named) return named
      const alias = aliases.get(name)
      // One hop only (an alias of an alias is not followed: no loops), as LiteLLM resolves one level.
      return resolveGroup(alias === undefined ? name : alias.group, name)
    },
    has: (name) => byName.has(name) || disabled.has(name) || aliases.has(name) || wildcards.some((w) => name.startsWith(w.prefix)),
    // A config group of the same name wins over an alias (resolve() checks groups first too).
    aliasOf: (name) => (byName.has(name) ? undefined : aliases.get(name)?.group),
    list: () => listed,
    deployments: () => all,
    warnings,
    add(entry) {
      const id = str((entry.model_info as Record<string, unknown> | null | undefined)?.id)
      if (!id) throw gatewayError('GW_ERR_VALIDATION', 'A stored deployment needs model_info.id.', { param: 'model_info.id' })
      if (configIds.has(id) || stored.has(id)) {
        throw gatewayError('GW_ERR_CONFLICT', `A deployment with id ${id} already exists.`, { param: 'model_info.id' })
      }
      return insert(id, entry)
    },
    update(id, entry) {
      refuseConfig(id)
      const before = stored.get(id)
      if (!before) throw gatewayError('GW_ERR_NOT_FOUND', `No stored deployment with id ${id}.`, { param: 'id' })
      // Build the new entry first: a bad one (an unset variable) leaves the old deployment serving.
      resolveEnvRefs(entry.litellm_params, env)
      drop(id)
      return insert(id, entry)
    },
    remove(id) {
      refuseConfig(id)
      if (!stored.has(id)) return false
      drop(id)
      return true
    },
    isStored: (id) => stored.has(id),
    storedIds: () => [...stored.keys()],
  }
}

const publicBases = new WeakMap<Target, string | null>()

/**
 * A deployment's API base as it may be shown (logs, spend rows, metrics labels, sinks): without credentials, query or
 * fragment (a key in a URL must never leave), no trailing slash; null when it has none or it does not parse. Cached
 * per deployment (Targets are immutable).
 */
export function publicApiBase(t: Target): string | null {
  let v = publicBases.get(t)
  if (v !== undefined) return v
  v = null
  if (t.apiBase) {
    try {
      const u = new URL(t.apiBase)
      u.username = ''
      u.password = ''
      u.search = ''
      u.hash = ''
      const s = u.toString()
      v = s.endsWith('/') ? s.slice(0, -1) : s
    } catch {
      v = null
    }
  }
  publicBases.set(t, v)
  return v
}
