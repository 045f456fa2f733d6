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
import { createRootContainer, type Clock, type Cradle } from './container.js'
import { gatewayError, GatewayError, toErrorBody } from './errors.js'
import { sseData } from './sse.js'
import { createLogger, type Logger } from './logger.js'
import { createModelTable } from './models.js'
import { buildChains, composeAttemptChain, type AttemptHandler } from './pipeline.js'
import { loadPlugins, type GatewayPlugin, type LoadedPlugin } from './plugin.js'
import type { GatewayState } from './state.js'
import { createAgent } from './upstream/agent.js'
import { createDispatch } from './upstream/dispatch.js'
import { coreRoutes, recordAttempts } from './http/handlers.js'
import { messagesRoutes } from './http/messages.js'
import { responsesRoutes } from './http/responses.js'
import { createHttpApp, type InFlight } from './http/server.js'
import { installClientErrorHandler } from './http/client-error.js'
import { createInvoker, type Invoke } from './invoke.js'
import { packageVersion } from './package.js'
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
  /** Unknown LiteLLM config keys refuse the boot instead of a warning (the CLI's `--strict`). */
  strict?: boolean
  /** Wall clock for budgets, key expiry and budget resets; tests pass a fake one. Default: Date.now. */
  clock?: Clock
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
  /** The attempt chain alone (no request-chain plugins), for callers that pick their own deployment. */
  readonly attempt: AttemptHandler
  /**
   * A model call in process through both chains, as an HTTP request would run them (core/invoke.ts): the SDK's
   * functions and Router call this. Call start() first when plugins have start hooks (stores, Redis).
   */
  readonly invoke: Invoke
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
  const strict = opts.strict === true
  const config: Config = typeof opts.config === 'string'
    ? await loadConfigFile(opts.config, { env, strict })
    : isConfig(opts.config) ? opts.config : buildConfig(opts.config ?? {}, { env, strict })
  const logger = opts.logger ?? createLogger({ level: config.server.log_level })
  if (config.warnings.length) logger.warn(`config: ${config.warnings.join('; ')}`)

  const providers = createProviderRegistry([...builtinProviders(), ...(opts.providers ?? [])])
  const models = createModelTable(config, providers, env)
  if (models.warnings.length) logger.warn(`models: ${models.warnings.join('; ')}`)
  const ownsDispatcher = !opts.dispatcher
  const maxConnections = config.server.upstream_max_connections
  const dispatcher = opts.dispatcher ?? createAgent({ connections: maxConnections })
  const container = createRootContainer({ config, logger, dispatcher, providers, models, env, ...(opts.clock ? { clock: opts.clock } : {}) })

  const available = new Map<string, GatewayPlugin<any>>()
  for (const p of bundledPlugins) available.set(p.name, p)
  for (const [name, file] of Object.entries(config.plugins)) available.set(name, await importPlugin(name, file))
  for (const p of opts.plugins ?? []) available.set(p.name, p)
  const loaded = loadPlugins(config, available, (opts.plugins ?? []).map((p) => p.name))
  for (const { plugin, options } of loaded) plugin.register?.(container, options)

  const cradle = container.cradle
  const { middleware, names: middlewareNames, interceptors } = buildChains(loaded, cradle)
  const dispatch = recordAttempts(createDispatch({ dispatcher, providers, logger, maxConnections }), logger)
  // A group the router's pre-call checks emptied fails here, in the attempt chain, so fallback plugins still act on it.
  const attempt = composeAttemptChain(interceptors, (a) =>
    a.state.routeError !== null && a.state.fallbacks === 0 ? Promise.reject(a.state.routeError) : dispatch(a))

  const inFlight: InFlight = { draining: false, idle: [], active: new Set() }
  const { registrar, routes } = createRouteList()
  const version = await packageVersion()
  const coreDeps = {
    container, dispatch, version, isDraining: () => inFlight.draining, routes: () => routes, litellmHeaders: config.server.litellm_headers,
  }
  for (const r of coreRoutes(cradle, attempt, coreDeps)) registrar.add(r)
  for (const r of messagesRoutes(cradle, attempt, coreDeps)) registrar.add(r)
  for (const r of responsesRoutes(cradle, attempt, coreDeps)) registrar.add(r)
  for (const { plugin, options } of loaded) plugin.routes?.(registrar, cradle, options)
  const app = createHttpApp({
    container, logger, middleware, middlewareNames, routes, bodyLimit: config.server.body_limit, inFlight, corsOrigins: config.server.cors_origins,
    accessLog: config.server.access_log,
  })

  const invoke = createInvoker({
    container, logger, middleware, middlewareNames, attempt, inFlight,
    terminal: { version, litellmHeaders: config.server.litellm_headers },
  })

  let started: Promise<void> | null = null
  let stopping: Promise<void> | null = null
  const servers: http.Server[] = []

  const gateway: Gateway = {
    config,
    container,
    app,
    attempt,
    invoke,
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
      server.keepAliveTimeout = 65_000 // 65 s, above common load balancers' 60 s idle timeout
      // Malformed or oversized requests and clients that stall sending theirs get an OpenAI-shaped answer.
      installClientErrorHandler(server, { requestTimeoutMs: config.settings.request_timeout * 1000 })
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const addr = server.address() as AddressInfo
      // `url` is where a client on this machine connects; `host` is the address really bound.
      const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
      return { url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`, port: addr.port, host: addr.address, server }
    },
    stop() {
      stopping ??= (async () => {
        // Draining: readiness answers 503 and new model calls are refused (503 shutting_down), but the listener
        // stays open so load balancers' probes still get an answer while in-flight requests and streams finish.
        inFlight.draining = true
        for (const s of servers) s.closeIdleConnections()
        for (const { plugin, options } of loaded) await runHook(logger, plugin, 'drain', () => plugin.drain?.(cradle, options))
        if (inFlight.active.size > 0) {
          const deadline = config.server.shutdown_timeout * 1000
          let timer: NodeJS.Timeout | undefined
          const expired = await Promise.race([
            new Promise<boolean>((r) => inFlight.idle.push(() => r(false))),
            new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadline))),
          ])
          clearTimeout(timer)
          if (expired) cutActive(inFlight, logger)
        }
        const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())))
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

/**
 * The shutdown deadline passed with requests still open: a stream gets a last SSE error event (the official SDKs
 * raise it) instead of a bare socket close, then every request's upstream call is aborted.
 */
function cutActive(inFlight: InFlight, logger: Logger): void {
  const e = gatewayError('GW_ERR_SHUTTING_DOWN', 'The gateway shut down before this response finished (shutdown_timeout reached).')
  logger.warn(`shutdown deadline reached: ending ${inFlight.active.size} open request(s)`)
  for (const { ctx, abort } of inFlight.active) {
    const res = ctx.res
    const sse = String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')
    ctx.state.error ??= e
    if (sse && res.headersSent && !res.writableEnded && !res.destroyed) res.end(sseData(toErrorBody(e)))
    abort.abort()
  }
}

async function runHook(logger: Logger, plugin: GatewayPlugin<any>, hook: string, fn: () => unknown): Promise<void> {
  try {
    await fn()
  } catch (err) {
    logger.error(`plugin ${plugin.name} ${hook} failed`, { err: err instanceof GatewayError ? err.message : err })
  }
}
