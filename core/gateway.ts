/**
 * createGateway(): the composition root. Loads the config, builds the container, resolves and orders the plugins,
 * composes both chains, declares the routes, and owns the server's lifecycle (start, drain, stop).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import type { AwilixContainer } from 'awilix'
import type { Dispatcher } from 'undici'
import type Koa from 'koa'
import { buildConfig, loadConfigFile, type Config, type RawConfig } from './config/load.js'
import { createRootContainer, type Cradle } from './container.js'
import { gatewayError, GatewayError } from './errors.js'
import { createLogger, type Logger } from './logger.js'
import { createModelTable } from './models.js'
import { buildChains, composeAttemptChain, type AttemptHandler } from './pipeline.js'
import { loadPlugins, type GatewayPlugin, type LoadedPlugin } from './plugin.js'
import type { GatewayState } from './state.js'
import { createAgent } from './upstream/agent.js'
import { createDispatch } from './upstream/dispatch.js'
import { coreRoutes, recordAttempts } from './http/handlers.js'
import { createHttpApp, type InFlight } from './http/server.js'
import { createRouteList } from './http/routes.js'
import { builtinProviders, createProviderRegistry } from '../providers/registry.js'
import type { ProviderAdapter } from '../providers/types.js'
import { bundledPlugins } from '../plugins/index.js'

export interface GatewayOptions {
  /** A config file path, a parsed config object (YAML shape), or a Config from loadConfig. */
  config?: string | RawConfig | Config
  /** In-house plugins, beside the bundled ones. Named in the config's pipeline/upstream to place them. */
  plugins?: readonly GatewayPlugin<any>[]
  /** Extra provider adapters (a custom or in-house provider); same names replace the built-in ones. */
  providers?: readonly ProviderAdapter[]
  /** undici dispatcher for upstream calls (tests may pass a MockAgent). Default: a keep-alive Agent. */
  dispatcher?: Dispatcher
  logger?: Logger
  /** Environment for `os.environ/` and provider key lookups. Default: process.env. */
  env?: Record<string, string | undefined>
}

export interface ListenResult {
  url: string
  port: number
  host: string
  server: http.Server
}

export interface Gateway {
  readonly config: Config
  readonly container: AwilixContainer<Cradle>
  readonly app: Koa<GatewayState>
  /** The attempt chain, for in-process callers (the SDK). */
  readonly attempt: AttemptHandler
  readonly plugins: readonly LoadedPlugin[]
  /** A node:http request listener. */
  callback(): http.RequestListener
  /** Start plugins (once) and listen. Port 0 picks a free port. */
  listen(port?: number, host?: string): Promise<ListenResult>
  /** Run plugins' start hooks (listen calls it). */
  start(): Promise<void>
  /** Stop accepting, let in-flight requests and streams finish (up to server.shutdown_timeout), stop plugins in reverse. */
  stop(): Promise<void>
}

function isConfig(c: unknown): c is Config {
  return !!c && typeof c === 'object' && Array.isArray((c as Config).warnings) && typeof (c as Config).baseDir === 'string'
}

async function importPlugin(name: string, file: string): Promise<GatewayPlugin<any>> {
  let mod: { default?: unknown }
  try {
    mod = await import(pathToFileURL(file).href)
  } catch (err) {
    throw gatewayError('GW_ERR_PLUGIN_LOAD', `plugins.${name}: cannot load ${file}: ${(err as Error).message}`, { cause: err })
  }
  const p = mod.default as GatewayPlugin<any> | undefined
  if (!p || typeof p !== 'object' || typeof p.name !== 'string') {
    throw gatewayError('GW_ERR_PLUGIN_LOAD', `plugins.${name}: ${file} must default-export definePlugin({...})`)
  }
  if (p.name !== name) {
    throw gatewayError('GW_ERR_PLUGIN_LOAD', `plugins.${name}: ${file} exports the plugin '${p.name}'; use that name as the key`)
  }
  return p
}

export async function createGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const env = opts.env ?? process.env
  const config: Config = typeof opts.config === 'string'
    ? await loadConfigFile(opts.config, { env })
    : isConfig(opts.config) ? opts.config : buildConfig(opts.config ?? {}, { env })
  const logger = opts.logger ?? createLogger({ level: config.server.log_level })
  if (config.warnings.length) logger.warn(`config: ${config.warnings.join('; ')}`)

  const providers = createProviderRegistry([...builtinProviders(), ...(opts.providers ?? [])])
  const models = createModelTable(config, providers, env)
  if (models.warnings.length) logger.warn(`models: ${models.warnings.join('; ')}`)
  const ownsDispatcher = !opts.dispatcher
  const dispatcher = opts.dispatcher ?? createAgent()
  const container = createRootContainer({ config, logger, dispatcher, providers, models })

  const available = new Map<string, GatewayPlugin<any>>()
  for (const p of bundledPlugins) available.set(p.name, p)
  for (const [name, file] of Object.entries(config.plugins)) available.set(name, await importPlugin(name, file))
  for (const p of opts.plugins ?? []) available.set(p.name, p)
  const loaded = loadPlugins(config, available, (opts.plugins ?? []).map((p) => p.name))
  for (const { plugin, options } of loaded) plugin.register?.(container, options)

  const cradle = container.cradle
  const { middleware, interceptors } = buildChains(loaded, cradle)
  const attempt = composeAttemptChain(interceptors, recordAttempts(createDispatch({ dispatcher, providers })))

  const inFlight: InFlight = { count: 0, draining: false, idle: [] }
  const { registrar, routes } = createRouteList()
  for (const r of coreRoutes(cradle, attempt, () => inFlight.draining)) registrar.add(r)
  for (const { plugin, options } of loaded) plugin.routes?.(registrar, cradle, options)
  const app = createHttpApp({ container, logger, middleware, routes, bodyLimit: config.server.body_limit, inFlight, corsOrigins: config.server.cors_origins })

  let started: Promise<void> | null = null
  let stopping: Promise<void> | null = null
  const servers: http.Server[] = []

  const gateway: Gateway = {
    config,
    container,
    app,
    attempt,
    plugins: loaded,
    callback: () => app.callback(),
    start() {
      started ??= (async () => {
        for (const { plugin, options } of loaded) await plugin.start?.(cradle, options)
      })()
      return started
    },
    async listen(port = config.server.port, host = config.server.host) {
      await gateway.start()
      const server = http.createServer(app.callback())
      // Streams can be long; Node's 5 min request timeout would cut them.
      server.requestTimeout = 0
      server.keepAliveTimeout = 65_000 // 65 s, above common load balancers' 60 s idle timeout
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const addr = server.address() as AddressInfo
      const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
      return { url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`, port: addr.port, host, server }
    },
    stop() {
      stopping ??= (async () => {
        inFlight.draining = true
        const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())))
        for (const s of servers) s.closeIdleConnections()
        for (const { plugin, options } of loaded) await runHook(logger, plugin, 'drain', () => plugin.drain?.(cradle, options))
        if (inFlight.count > 0) {
          const deadline = config.server.shutdown_timeout * 1000
          await Promise.race([
            new Promise<void>((r) => inFlight.idle.push(r)),
            new Promise<void>((r) => setTimeout(r, deadline).unref()),
          ])
        }
        for (const s of servers) s.closeAllConnections()
        await Promise.all(closed)
        for (const { plugin, options } of [...loaded].reverse()) await runHook(logger, plugin, 'stop', () => plugin.stop?.(cradle, options))
        await container.dispose()
        if (ownsDispatcher) await dispatcher.close()
      })()
      return stopping
    },
  }
  return gateway
}

async function runHook(logger: Logger, plugin: GatewayPlugin<any>, hook: string, fn: () => unknown): Promise<void> {
  try {
    await fn()
  } catch (err) {
    logger.error(`plugin ${plugin.name} ${hook} failed`, { err: err instanceof GatewayError ? err.message : err })
  }
}
