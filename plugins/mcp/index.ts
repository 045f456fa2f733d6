/**
 * mcp: the MCP gateway. Connects to MCP servers (config `mcp_servers`, and those added through /v1/mcp/server,
 * stored with the keys; registry.ts) and offers their tools three ways: to any model (`type: "mcp"` tools,
 * inject.ts and loop.ts), to MCP clients at /mcp (serve.ts) and over LiteLLM's REST API (rest-api.ts); the servers
 * are managed through /v1/mcp/server (servers-api.ts). Who may use what: access.ts.
 *
 *   pipeline:
 *     - auth
 *     - mcp: { servers: { everything: { command: mcp-server-everything, args: [stdio] } } }
 */
import { asValue } from 'awilix'
import { definePlugin } from '../../core/plugin.js'
import { packageVersion } from '../../core/package.js'
import { gatewayError } from '../../core/errors.js'
import type { Cradle } from '../../core/container.js'
import { mcpMiddleware } from './inject.js'
import { createRegistry, type LocalMcpRegistry } from './registry.js'
import { parseServerSpec, serverNameWarning, specFromRecord, type SpecDefaults } from './spec.js'
import type { McpRegistry } from './types.js'
import { serveRoutes } from './serve.js'
import { restRoutes } from './rest-api.js'
import { serversApiRoutes } from './servers-api.js'

export interface McpOptions {
  servers: Record<string, unknown>
  aliases: Record<string, string>
  tool_prefix_separator?: string
  max_iterations: number
  call_timeout_ms: number
  max_concurrency: number
  connect_timeout_ms: number
}

declare module '../../core/container.js' {
  interface Cradle {
    /** The MCP servers and their connections (registered only with the mcp plugin). */
    mcpRegistry?: McpRegistry
  }
}

const registries = new WeakMap<object, LocalMcpRegistry>()
/** The package version per gateway, read at start (serverInfo of /mcp). */
const versions = new WeakMap<object, string>()

function registryOf(cradle: Cradle): LocalMcpRegistry {
  const r = registries.get(cradle)
  if (!r) throw gatewayError('GW_ERR_INTERNAL', 'the mcp plugin was not registered')
  return r
}

function defaultsOf(o: McpOptions): SpecDefaults {
  return { timeoutMs: o.call_timeout_ms, maxConcurrency: o.max_concurrency }
}

export default definePlugin<McpOptions>({
  name: 'mcp',
  dependencies: ['auth'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      servers: { type: 'object', default: {} },
      aliases: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
      tool_prefix_separator: { type: 'string', minLength: 1, maxLength: 4 },
      max_iterations: { type: 'integer', minimum: 1, maximum: 50, default: 10 },
      call_timeout_ms: { type: 'integer', minimum: 1, default: 60_000 },
      max_concurrency: { type: 'integer', minimum: 1, default: 10 },
      connect_timeout_ms: { type: 'integer', minimum: 1, default: 10_000 },
    },
  },
  register(container, options) {
    const cradle = container.cradle
    const registry = createRegistry({
      separator: options.tool_prefix_separator ?? (cradle.env.MCP_TOOL_PREFIX_SEPARATOR || '-'),
      connectTimeoutMs: options.connect_timeout_ms,
      logger: cradle.logger,
      version: () => versions.get(cradle) ?? '0.0.0',
    })
    registries.set(cradle, registry)
    container.register({ mcpRegistry: asValue(registry) })
  },
  middleware(cradle, options) {
    return mcpMiddleware({ registry: registryOf(cradle), maxIterations: options.max_iterations, logger: cradle.logger })
  },
  routes(registrar, cradle, options) {
    const registry = registryOf(cradle)
    const bodyLimit = cradle.config.server.body_limit
    const common = { registry, logger: cradle.logger, bodyLimit }
    for (const r of serveRoutes({ ...common, version: () => versions.get(cradle) ?? '0.0.0' })) registrar.add(r)
    for (const r of restRoutes(common)) registrar.add(r)
    for (const r of serversApiRoutes({ cradle, registry, defaults: defaultsOf(options), bodyLimit })) registrar.add(r)
  },
  async start(cradle, options) {
    versions.set(cradle, await packageVersion())
    const registry = registryOf(cradle)
    const now = new Date(cradle.clock.now()).toISOString()
    for (const [name, entry] of Object.entries(options.servers)) {
      let spec
      try {
        spec = parseServerSpec(name, entry, defaultsOf(options), 'config', now)
      } catch (err) {
        const e = err as { message: string; param?: string }
        throw gatewayError('GW_ERR_PLUGIN_OPTIONS', `Invalid options for plugin 'mcp': servers.${name}${e.param ? `.${e.param}` : ''}: ${e.message}`)
      }
      const warning = serverNameWarning(spec.server_name, registry.separator)
      if (warning) cradle.logger.warn(warning)
      if (options.aliases) {
        const alias = Object.entries(options.aliases).find(([, target]) => target === name)?.[0]
        if (alias && !spec.alias) spec.alias = alias
      }
      await registry.put(spec)
    }
    const store = cradle.store
    if (store) {
      try {
        for (let offset = 0; ; offset += 100) {
          const { rows, total } = await store.list('mcp_server', { offset, limit: 100 })
          for (const r of rows) await registry.put(specFromRecord(r, defaultsOf(options)))
          if (offset + rows.length >= total || rows.length === 0) break
        }
      } catch (err) {
        cradle.logger.error('stored MCP servers could not be loaded', { err })
      }
      cradle.events.on('invalidate', ({ kind, id, remote }) => {
        if (kind !== 'mcp_server' || !remote) return
        store.get('mcp_server', id).then(async (r) => {
          if (r) await registry.put(specFromRecord(r, defaultsOf(options)))
          else await registry.remove(id)
        }).catch((err: unknown) => cradle.logger.error('MCP server reload failed', { serverId: id, err }))
      })
    }
  },
  async stop(cradle) {
    await registries.get(cradle)?.close()
  },
})
