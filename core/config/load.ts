/**
 * Read a YAML config, expand environment references, map LiteLLM sections, validate, and return a frozen Config.
 *
 * Environment references, as LiteLLM writes them and as shells do:
 *   api_key: os.environ/OPENAI_API_KEY        (the whole value)
 *   api_base: http://${VLLM_HOST:-127.0.0.1}:8000/v1   (inside a string, with an optional default)
 * A variable that is not set leaves the value unset (as LiteLLM does) and is named in one boot warning.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'
import { Ajv, type ErrorObject } from 'ajv'
import { configSchema } from './schema.js'
import { mapLiteLLM } from '../compat/litellm.js'
import { gatewayError } from '../errors.js'

export interface PluginEntry {
  name: string
  options: Record<string, unknown>
  /** 'pipeline' or 'upstream': the list it was named in. */
  chain: 'pipeline' | 'upstream'
}

export interface ModelEntry {
  model_name: string
  litellm_params: Record<string, unknown> & { model: string }
  model_info?: Record<string, unknown> | null
}

export interface Config {
  server: {
    host: string
    port: number
    body_limit: number
    shutdown_timeout: number
    log_level: 'debug' | 'info' | 'warn' | 'error' | 'silent'
    cors_origins: string[]
  }
  /** The request chain, outermost first. */
  pipeline: PluginEntry[]
  /** The attempt chain, outermost first. */
  upstream: PluginEntry[]
  /** In-house plugin modules, name -> absolute path. */
  plugins: Record<string, string>
  model_list: ModelEntry[]
  settings: { drop_params: boolean; request_timeout: number; stream_timeout: number }
  litellm_settings: Record<string, unknown>
  router_settings: Record<string, unknown>
  general_settings: Record<string, unknown>
  /** Directory of the config file (for relative paths); process.cwd() for configs given as objects. */
  baseDir: string
  /** Everything the loader wants the operator to know: unsupported keys, unset env vars. Logged once at boot. */
  warnings: string[]
}

type RawEntry = string | Record<string, Record<string, unknown> | null>

/** A raw config as written in YAML or passed to createGateway. */
export type RawConfig = Record<string, unknown>

export interface LoadOptions {
  env?: Record<string, string | undefined>
  baseDir?: string
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false })
const validateConfig = ajv.compile(configSchema)

const ENV_WHOLE = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/
const ENV_INLINE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

export async function loadConfigFile(file: string, opts: LoadOptions = {}): Promise<Config> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw gatewayError('GW_ERR_CONFIG_READ', `Cannot read config file ${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseConfig(text, { ...opts, baseDir: opts.baseDir ?? path.dirname(path.resolve(file)) }, file)
}

export function parseConfig(text: string, opts: LoadOptions = {}, source = 'config'): Config {
  let raw: unknown
  try {
    raw = YAML.parse(text, { maxAliasCount: -1 }) ?? {}
  } catch (err) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${source} is not valid YAML: ${(err as Error).message}`, { cause: err })
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${source} must be a YAML mapping at the top level`)
  }
  return buildConfig(raw as RawConfig, opts)
}

/** Build a Config from an object (already parsed YAML, or a config written in code). */
export function buildConfig(input: RawConfig, opts: LoadOptions = {}): Config {
  const warnings: string[] = []
  const env = { ...(opts.env ?? process.env) }
  // LiteLLM's `environment_variables:` sets variables for the rest of the file.
  const envSection = input.environment_variables
  if (envSection && typeof envSection === 'object') {
    for (const [k, v] of Object.entries(envSection)) if (v != null) env[k] = String(v)
  }
  const missing = new Set<string>()
  const expanded = expandEnv(structuredClone(input), env, missing) as RawConfig
  if (missing.size) warnings.push(`environment variables not set (values left empty): ${[...missing].join(', ')}`)

  const { config: mapped, pluginDefaults } = mapLiteLLM(expanded, warnings, env)
  if (!validateConfig(mapped)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `Invalid config:\n${formatAjvErrors(validateConfig.errors ?? [], 'config')}`)
  }
  const cfg = mapped as unknown as Omit<Config, 'pipeline' | 'upstream' | 'server'> & {
    pipeline: RawEntry[]
    upstream: RawEntry[]
    server: Config['server'] & { body_limit: number | string }
  }
  const entry = (chain: PluginEntry['chain']) => (e: RawEntry): PluginEntry => {
    const [name, options] = typeof e === 'string' ? [e, {}] : Object.entries(e)[0]!
    return { name, chain, options: { ...pluginDefaults[name], ...(options ?? {}) } }
  }
  const baseDir = opts.baseDir ?? process.cwd()
  const plugins: Record<string, string> = {}
  for (const [name, p] of Object.entries(cfg.plugins ?? {})) plugins[name] = path.resolve(baseDir, p)
  const server = { ...cfg.server, body_limit: parseSize(cfg.server.body_limit, 'server.body_limit') }
  return deepFreeze({
    server,
    pipeline: cfg.pipeline.map(entry('pipeline')),
    upstream: cfg.upstream.map(entry('upstream')),
    plugins,
    model_list: cfg.model_list,
    settings: cfg.settings,
    litellm_settings: (cfg.litellm_settings as Record<string, unknown>) ?? {},
    router_settings: (cfg.router_settings as Record<string, unknown>) ?? {},
    general_settings: (cfg.general_settings as Record<string, unknown>) ?? {},
    baseDir,
    warnings,
  })
}

function expandEnv(value: unknown, env: Record<string, string | undefined>, missing: Set<string>): unknown {
  if (typeof value === 'string') {
    const whole = ENV_WHOLE.exec(value)
    if (whole) {
      const v = env[whole[1]!]
      if (v === undefined) missing.add(whole[1]!)
      return v
    }
    if (!value.includes('${')) return value
    let unset = false
    const out = value.replace(ENV_INLINE, (_m, name: string, dflt: string | undefined) => {
      const v = env[name]
      if (v !== undefined && v !== '') return v
      if (dflt !== undefined) return dflt
      missing.add(name)
      unset = true
      return ''
    })
    return unset && out === '' ? undefined : out
  }
  if (Array.isArray(value)) return value.map((v) => expandEnv(v, env, missing))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const e = expandEnv(v, env, missing)
      if (e !== undefined) out[k] = e
    }
    return out
  }
  return value
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?$/i
const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 }

export function parseSize(v: number | string, where: string): number {
  if (typeof v === 'number') return v
  const m = SIZE.exec(v.trim())
  if (!m) throw gatewayError('GW_ERR_CONFIG_INVALID', `${where}: "${v}" is not a size; write bytes (1048576) or a size such as "1mb"`)
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!)
}

/** ajv errors -> lines that name the path and say what to write instead. */
export function formatAjvErrors(errors: ErrorObject[], root: string): string {
  const lines = new Set<string>()
  for (const e of errors) {
    // anyOf reports each branch plus a summary; the summary alone says it best.
    if (e.keyword !== 'anyOf' && errors.some((o) => o.keyword === 'anyOf' && e.instancePath === o.instancePath)) continue
    const where = root + e.instancePath.replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.')
    const p = e.params as Record<string, unknown>
    switch (e.keyword) {
      case 'required':
        lines.add(`${where}: missing required key '${String(p.missingProperty)}'; add it`)
        break
      case 'additionalProperties':
        lines.add(`${where}: unknown key '${String(p.additionalProperty)}'; remove it or check its spelling`)
        break
      case 'type':
        lines.add(`${where}: must be ${String(p.type).replace(/,/g, ' or ')}`)
        break
      case 'enum':
        lines.add(`${where}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`)
        break
      case 'anyOf':
        lines.add(`${where}: must be a plugin name or a one-key map such as { name: { option: value } }`)
        break
      default:
        lines.add(`${where}: ${e.message ?? 'is invalid'}`)
    }
  }
  return [...lines].map((l) => `  - ${l}`).join('\n')
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}
