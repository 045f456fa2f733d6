/**
 * Read a YAML config, expand environment references, map LiteLLM sections, validate, and return a frozen Config.
 *
 * YAML is read as LiteLLM reads it (PyYAML, YAML 1.1): merge keys (`<<: *common`), `yes`/`no`/`on`/`off` booleans,
 * `20_000` integers, and a repeated key keeps its last value. `include:` (a file or a list, relative to the including
 * file) is applied by loadConfigFile: each file's top-level keys are merged in, lists (model_list) appended.
 *
 * Environment references, as LiteLLM writes them and as shells do:
 *   api_key: os.environ/OPENAI_API_KEY        (the whole value)
 *   api_base: http://${VLLM_HOST:-127.0.0.1}:8000/v1   (inside a string, with an optional default)
 * A variable that is not set (or is empty) leaves the value unset (as LiteLLM does) and is named in one boot warning.
 * Where an unset value would silently weaken the gateway it refuses instead: a master key that resolves to nothing
 * stops the boot, and a deployment whose api_base/api_key resolves to nothing is disabled rather than sent to the
 * provider's public endpoint with a global key (core/compat/litellm.ts, core/models.ts).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import YAML, { type ScalarTag, type Tags } from 'yaml'
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
  /**
   * Credentials the entry names that resolved to nothing (`api_base references X, which is not set`). The model
   * table disables such a deployment: its calls fail, nothing falls back to env vars or a public endpoint.
   */
  unresolved?: readonly string[]
}

export interface Config {
  server: {
    host: string
    port: number
    body_limit: number
    shutdown_timeout: number
    log_level: 'debug' | 'info' | 'warn' | 'error' | 'silent'
    cors_origins: string[]
    access_log: boolean
    litellm_headers: boolean
    /** Sockets per upstream origin; null = no cap. */
    upstream_max_connections: number | null
  }
  /** The request chain, outermost first. */
  pipeline: PluginEntry[]
  /** The attempt chain, outermost first. */
  upstream: PluginEntry[]
  /** In-house plugin modules, name -> absolute path. */
  plugins: Record<string, string>
  model_list: ModelEntry[]
  settings: {
    drop_params: boolean; request_timeout: number; stream_timeout: number
    unpriced_input_cost_per_token: number | null; unpriced_output_cost_per_token: number | null
    model_group_alias: Record<string, string | { model: string; hidden?: boolean }>
  }
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
  /** Keys this version ignores refuse to boot instead of being warned about (the CLI's --strict). */
  strict?: boolean
}

/**
 * PyYAML's booleans. YAML 1.1 (and the `yaml` package's 1.1 schema) also reads `y`/`n` as booleans; PyYAML does not,
 * and LiteLLM configs rely on that: `n: 2` in litellm_params is OpenAI's `n`, not `false: 2`.
 */
const PY_BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/
const pyBool: ScalarTag = {
  identify: (v) => typeof v === 'boolean',
  default: true,
  tag: 'tag:yaml.org,2002:bool',
  test: PY_BOOL,
  resolve: (s) => /^(?:yes|true|on)$/i.test(s),
}

/**
 * Floats as PyYAML reads them (its resolver for tag:yaml.org,2002:float: `1.5`, `1_000.0`, `6.0e+3`, `.5`, `.inf`,
 * base-60 `1:30.0`), plus an exponent without a dot or sign after a digit (`1e-6`, `2E8`), which PyYAML leaves a
 * string but LiteLLM's pydantic models turn into a number anyway (costs are written so). What is never a number:
 * an exponent with no digit before it. The `yaml` package's 1.1 schema read `e400` as NaN, so a model named e400
 * could not be called.
 */
const PY_FLOAT = /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/
const pyFloat: ScalarTag = {
  identify: (v) => typeof v === 'number' && !Number.isInteger(v),
  default: true,
  tag: 'tag:yaml.org,2002:float',
  test: PY_FLOAT,
  resolve: (text) => {
    const s = text.replaceAll('_', '')
    const lower = s.toLowerCase()
    if (lower.endsWith('.nan')) return NaN
    if (lower.endsWith('.inf')) return s.startsWith('-') ? -Infinity : Infinity
    if (!s.includes(':')) return Number(s)
    // Base 60: 1:30.5 = 90.5
    const sign = s.startsWith('-') ? -1 : 1
    let n = 0
    for (const part of s.replace(/^[-+]/, '').split(':')) n = n * 60 + Number(part)
    return sign * n
  },
}

/** PyYAML's reading (YAML 1.1: merge keys, yes/no/on/off booleans, 20_000; a repeated key keeps the last value). */
const YAML_OPTIONS = {
  version: '1.1',
  uniqueKeys: false,
  maxAliasCount: -1,
  customTags: (tags: Tags) => [pyBool, pyFloat,
    ...tags.filter((t) => typeof t === 'string' || (t.tag !== 'tag:yaml.org,2002:bool' && t.tag !== 'tag:yaml.org,2002:float'))],
} as const

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false })
const validateConfig = ajv.compile(configSchema)

const ENV_WHOLE = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/
const ENV_INLINE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

export async function loadConfigFile(file: string, opts: LoadOptions = {}): Promise<Config> {
  const abs = path.resolve(file)
  const raw = await withIncludes(await readYamlFile(abs, file), abs, [abs])
  return buildConfig(raw, { ...opts, baseDir: opts.baseDir ?? path.dirname(abs) })
}

export function parseConfig(text: string, opts: LoadOptions = {}, source = 'config'): Config {
  return buildConfig(parseYaml(text, source), opts)
}

function parseYaml(text: string, source: string): RawConfig {
  let raw: unknown
  try {
    raw = YAML.parse(text, YAML_OPTIONS) ?? {}
  } catch (err) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${source} is not valid YAML: ${(err as Error).message}`, { cause: err })
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${source} must be a YAML mapping at the top level`)
  }
  return raw as RawConfig
}

async function readYamlFile(file: string, shown: string, includedFrom?: string): Promise<RawConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const what = includedFrom ? `${includedFrom}: include '${shown}' (${file})` : `Cannot read config file ${shown}`
    throw gatewayError('GW_ERR_CONFIG_READ', `${what}: ${(err as Error).message}`, { cause: err })
  }
  return parseYaml(text, shown)
}

/**
 * LiteLLM's `include:`: each file (relative to the including one) is read, its own includes applied first, and its
 * top-level keys merged in: lists are appended (the includer's entries first), mappings merged key by key, and the
 * including file wins on any other conflict. A file that includes itself, directly or not, is an error.
 */
async function withIncludes(raw: RawConfig, file: string, chain: string[]): Promise<RawConfig> {
  if (raw.include === undefined || raw.include === null) return raw
  const list = typeof raw.include === 'string' ? [raw.include] : raw.include
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x)) {
    throw gatewayError('GW_ERR_CONFIG_INVALID', `${file}: include must be a file path or a list of file paths`)
  }
  const out: RawConfig = { ...raw }
  delete out.include
  for (const rel of list as string[]) {
    const abs = path.resolve(path.dirname(file), rel)
    if (chain.includes(abs)) {
      throw gatewayError('GW_ERR_CONFIG_INVALID', `include cycle: ${[...chain, abs].join(' -> ')}`)
    }
    const child = await withIncludes(await readYamlFile(abs, rel, file), abs, [...chain, abs])
    mergeIncluded(out, child)
  }
  return out
}

function isMap(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v)
}

function mergeIncluded(into: RawConfig, child: RawConfig): void {
  for (const [k, v] of Object.entries(child)) {
    const mine = into[k]
    if (mine === undefined || mine === null) into[k] = v
    else if (Array.isArray(mine) && Array.isArray(v)) into[k] = [...mine, ...v]
    else if (isMap(mine) && isMap(v)) into[k] = { ...v, ...mine }
  }
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
  if (input.include !== undefined) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      'include: is applied when the config is read from a file (loadConfigFile, --config); a config given as an object cannot include files')
  }
  const missing = new Set<string>()
  const unset = new Map<string, string[]>()
  const expanded = expandEnv(structuredClone(input), env, { missing, unset }, '') as RawConfig
  if (missing.size) warnings.push(`environment variables not set (values left empty): ${[...missing].join(', ')}`)
  refuseEmptyAuthOption(expanded, unset)

  const { config: mapped, pluginDefaults } = mapLiteLLM(expanded, warnings, { env, unset, strict: opts.strict })
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

interface Unresolved {
  /** Every variable named but not set, for the warning. */
  missing: Set<string>
  /** Dotted path of each value that resolved to nothing -> the variables it named. */
  unset: Map<string, string[]>
}

function expandEnv(value: unknown, env: Record<string, string | undefined>, u: Unresolved, at: string): unknown {
  if (typeof value === 'string') {
    const whole = ENV_WHOLE.exec(value)
    if (whole) {
      const v = env[whole[1]!]
      // Empty counts as unset, as `${X:-d}` treats it: an empty key or base is never what was meant.
      if (v !== undefined && v !== '') return v
      u.missing.add(whole[1]!)
      u.unset.set(at, [whole[1]!])
      return undefined
    }
    if (!value.includes('${')) return value
    const names: string[] = []
    const out = value.replace(ENV_INLINE, (_m, name: string, dflt: string | undefined) => {
      const v = env[name]
      if (v !== undefined && v !== '') return v
      if (dflt !== undefined) return dflt
      u.missing.add(name)
      names.push(name)
      return ''
    })
    if (names.length && out === '') {
      u.unset.set(at, names)
      return undefined
    }
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, u, `${at}.${i}`))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const e = expandEnv(v, env, u, at ? `${at}.${k}` : k)
      if (e !== undefined) out[k] = e
    }
    return out
  }
  return value
}

/**
 * `auth: { master_key: os.environ/X }` with X unset would load as `auth: {}`, an open gateway. Refuse, as for
 * general_settings.master_key (core/compat/litellm.ts).
 */
function refuseEmptyAuthOption(config: RawConfig, unset: ReadonlyMap<string, readonly string[]>): void {
  const pipeline = Array.isArray(config.pipeline) ? config.pipeline : []
  pipeline.forEach((e, i) => {
    if (!isMap(e) || !('auth' in e)) return
    const where = `pipeline[${i}].auth.master_key`
    const vars = unset.get(`pipeline.${i}.auth.master_key`)
    if (vars) {
      throw gatewayError('GW_ERR_CONFIG_INVALID', `${where} references ${vars.join(', ')}, which is not set: auth would be off. Set the variable, or remove master_key.`)
    }
    const options = e.auth
    if (isMap(options) && 'master_key' in options && (options.master_key === '' || options.master_key === null)) {
      throw gatewayError('GW_ERR_CONFIG_INVALID', `${where} is empty: auth would be off. Set a key, or remove master_key.`)
    }
  })
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
