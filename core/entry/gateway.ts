/**
 * `switchyard/gateway`: what composing a gateway in code needs, and nothing of the SDK's call functions. A program
 * that embeds the proxy (its own server, its own plugins and providers) imports from here:
 *
 *   import { createGateway, bundledPlugins, defineProvider } from 'switchyard/gateway'
 *   const gw = await createGateway({ config: 'switchyard.yaml', providers: [myProvider] })
 *   const { url } = await gw.listen(4000)
 *
 * Re-exports only (plus the defineProvider identity); importing it starts nothing, like the package root.
 */
import type { ProviderAdapter } from '../../providers/types.js'

export { createGateway, type Gateway, type GatewayOptions, type ListenResult } from '../gateway.js'
export {
  loadConfigFile, parseConfig, buildConfig,
  type Config, type RawConfig, type ModelEntry, type PluginEntry, type LoadOptions,
} from '../config/load.js'
export { createLogger, type Logger, type LogLevel, type LoggerOptions } from '../logger.js'
export { definePlugin, type GatewayPlugin } from '../plugin.js'
export { bundledPlugins } from '../../plugins/index.js'
export { createOpenAIAdapter, createOpenAICompatible, applyParamMap, type OpenAIFamilyOptions } from '../../providers/index.js'
export type {
  ProviderAdapter, Target, ParamMap, ParamRule, StreamTranslator, SseEvent, ProviderResult, EventDecoder, ProviderRequest, OperationAdapter,
} from '../../providers/types.js'
export type { Cradle, Clock } from '../container.js'
export { GatewayError, ConfigError } from '../errors.js'

/** Identity helper for provider adapters, for type inference (the same helper the package root exports). */
export function defineProvider<P extends ProviderAdapter>(p: P): P {
  return p
}
