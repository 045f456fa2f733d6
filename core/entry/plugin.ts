/**
 * `switchyard/plugin`: what authoring a plugin needs — the plugin contract, the request state it reads and writes,
 * the container's services, the attempt chain, routes, the error classes and SSE helpers — without the SDK or the
 * gateway's composition root. A plugin package depends on this subpath only:
 *
 *   import { definePlugin, gatewayError, type GatewayMiddleware } from 'switchyard/plugin'
 *
 * `GatewayState` is the same interface as the package root's, so either module may be augmented
 * (`declare module 'switchyard/plugin' { interface GatewayState { ... } }` or `declare module 'switchyard'`);
 * the README recommends the root, which every consumer resolves. Not both in one program: TypeScript then applies
 * neither augmentation to the original interface (checked with 5.9 in a consumer project).
 */
export { definePlugin, type GatewayPlugin, type GatewayMiddleware, type LoadedPlugin } from '../plugin.js'
export type { GatewayState, CoreState, Principal, Outcome, AttemptRecord, RequestKind, ClientFormat } from '../state.js'
export type { Cradle, Clock } from '../container.js'
export { composeAttemptChain, type Attempt, type AttemptHandler, type AttemptInterceptor } from '../pipeline.js'
export type { RouteDef, RouteRegistrar, HttpMethod } from '../http/routes.js'
export * from '../errors.js'
export { SseParser, sseData, SSE_DONE } from '../sse.js'
export type { Logger, LogLevel } from '../logger.js'
export type { Config, ModelEntry, PluginEntry } from '../config/load.js'
export type { Target, ProviderResult, SseEvent } from '../../providers/types.js'
