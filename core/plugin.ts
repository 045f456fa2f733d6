/**
 * The plugin contract and the loader that turns config entries into ordered, validated plugin instances.
 *
 * A plugin is a plain object (`definePlugin({...})`); every hook is optional. The config's order is the order:
 * `pipeline:` entries build the request chain (outermost first), `upstream:` entries the attempt chain. A plugin
 * never imports another plugin; it reads what it needs from `ctx.state` or the container.
 */
import type { AwilixContainer } from 'awilix'
import type { Middleware } from 'koa'
import { Ajv, type ValidateFunction } from 'ajv'
import type { Cradle } from './container.js'
import type { GatewayState } from './state.js'
import type { AttemptInterceptor } from './pipeline.js'
import type { RouteRegistrar } from './http/routes.js'
import type { Config, PluginEntry } from './config/load.js'
import { formatAjvErrors } from './config/load.js'
import { gatewayError } from './errors.js'

/** Koa middleware over Switchyard's state. */
export type GatewayMiddleware = Middleware<GatewayState>

export interface GatewayPlugin<Options = Record<string, unknown>> {
  /** Equals the config key: 'rate-limit'. */
  name: string
  /** Plugins that must appear earlier in the chains (pipeline counts as earlier than upstream). */
  dependencies?: readonly string[]
  /** JSON Schema for the options, defaults inside (ajv useDefaults). Omit for a plugin without options. */
  options?: Record<string, unknown>
  /** Register singletons and scoped services in the root container. */
  register?(container: AwilixContainer<Cradle>, options: Options): void
  /** Request chain: one named function per plugin (its name shows in stack traces). */
  middleware?(cradle: Cradle, options: Options): GatewayMiddleware
  /** Attempt chain: wraps the upstream call (retry, fallback, cooldowns). */
  interceptor?(cradle: Cradle, options: Options): AttemptInterceptor
  /** Extra HTTP routes (management APIs, UIs). */
  routes?(routes: RouteRegistrar, cradle: Cradle, options: Options): void
  /** After every plugin registered, in chain order. */
  start?(cradle: Cradle, options: Options): Promise<void> | void
  /** Stop accepting work and let in-flight work end (Fastify preClose). */
  drain?(cradle: Cradle, options: Options): Promise<void> | void
  /** Release resources; called in reverse chain order (Fastify onClose). */
  stop?(cradle: Cradle, options: Options): Promise<void> | void
}

/** Identity, for type inference (Hono's createMiddleware). */
export function definePlugin<O = Record<string, unknown>>(plugin: GatewayPlugin<O>): GatewayPlugin<O> {
  return plugin
}

export interface LoadedPlugin {
  plugin: GatewayPlugin<any>
  options: Record<string, unknown>
  chain: 'pipeline' | 'upstream'
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false })
const validators = new WeakMap<object, ValidateFunction>()

function validatorFor(plugin: GatewayPlugin<any>): ValidateFunction | null {
  if (!plugin.options) return null
  let v = validators.get(plugin.options)
  if (!v) {
    v = ajv.compile(plugin.options)
    validators.set(plugin.options, v)
  }
  return v
}

/**
 * Resolve the config's plugin entries against the available plugins, validate each one's options, and check
 * dependencies against earlier entries. Plugins passed in code but not named in the config are appended to the
 * chain they fit (middleware -> pipeline, interceptor only -> upstream).
 */
export function loadPlugins(config: Config, available: ReadonlyMap<string, GatewayPlugin<any>>, extra: readonly string[] = []): LoadedPlugin[] {
  const entries: PluginEntry[] = [...config.pipeline, ...config.upstream]
  for (const name of extra) {
    if (entries.some((e) => e.name === name)) continue
    const p = available.get(name)!
    entries.push({ name, options: {}, chain: p.middleware || !p.interceptor ? 'pipeline' : 'upstream' })
  }
  const loaded: LoadedPlugin[] = []
  const seen = new Set<string>()
  entries.forEach((entry, i) => {
    const where = `${entry.chain}[${entry.chain === 'pipeline' ? i : i - config.pipeline.length}]`
    const plugin = available.get(entry.name)
    if (!plugin) {
      throw gatewayError('GW_ERR_PLUGIN_UNKNOWN',
        `${where}: unknown plugin '${entry.name}'. Available: ${[...available.keys()].sort().join(', ')}. ` +
        `An in-house plugin is declared under 'plugins:' (name: ./path/to/plugin.js) or passed to createGateway({ plugins })`)
    }
    if (seen.has(entry.name)) throw gatewayError('GW_ERR_PLUGIN_DUPLICATE', `${where}: plugin '${entry.name}' is listed twice`)
    for (const dep of plugin.dependencies ?? []) {
      if (!available.has(dep)) {
        throw gatewayError('GW_ERR_PLUGIN_DEPENDENCY_UNKNOWN', `${where}: plugin '${entry.name}' depends on '${dep}', which is not a known plugin`)
      }
      if (!seen.has(dep)) {
        throw gatewayError('GW_ERR_PLUGIN_DEPENDENCY_ORDER',
          `${where}: plugin '${entry.name}' depends on '${dep}', which must be listed before it (pipeline entries come before upstream entries)`)
      }
    }
    seen.add(entry.name)
    const options = structuredClone(entry.options) as Record<string, unknown>
    const validate = validatorFor(plugin)
    if (validate && !validate(options)) {
      throw gatewayError('GW_ERR_PLUGIN_OPTIONS', `Invalid options for plugin '${entry.name}':\n${formatAjvErrors(validate.errors ?? [], `${where}.${entry.name}`)}`)
    }
    loaded.push({ plugin, options: Object.freeze(options), chain: entry.chain })
  })
  return loaded
}
