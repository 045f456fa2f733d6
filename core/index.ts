/** Switchyard's public API. */
export { createGateway, type Gateway, type GatewayOptions, type ListenResult } from './gateway.js'
export { definePlugin, loadPlugins, type GatewayPlugin, type GatewayMiddleware, type LoadedPlugin } from './plugin.js'
export { composeAttemptChain, type Attempt, type AttemptHandler, type AttemptInterceptor } from './pipeline.js'
export { loadConfigFile, parseConfig, buildConfig, type Config, type RawConfig, type ModelEntry, type PluginEntry } from './config/load.js'
export { createLogger, type Logger, type LogLevel } from './logger.js'
export type { Cradle } from './container.js'
export type { GatewayState, Principal, Outcome, AttemptRecord, RequestKind } from './state.js'
export type { RouteDef, RouteRegistrar } from './http/routes.js'
export * from './errors.js'
export type * from './openai/types.js'
export { completion, embedding, textCompletion, configureSdk, type SdkSettings, type CompletionParams, type EmbeddingParams, type CallOptions, type HiddenParams } from './sdk.js'
export {
  imageGeneration, transcription, speech, moderation,
  type ImageGenerationParams, type TranscriptionParams, type SpeechParams, type ModerationParams,
} from './sdk-media.js'
export {
  responses, anthropicMessages,
  type ResponsesParams, type AnthropicMessagesParams, type ResponseObject, type ResponseStreamEvent, type ResponseOutputItem,
  type AnthropicMessage, type AnthropicStreamEvent, type AnthropicContentBlock,
} from './sdk-formats.js'
export { Router, type RouterOptions, type RouterCallOptions, type RouterDeployment } from './router.js'
export type { CallEvent, Callbacks } from './sdk-callbacks.js'
export {
  completionCost, tokenCounter, getModelInfo, supportsFunctionCalling, supportsVision,
  type ModelInfo, type CompletionCostInput, type UsageLike, type TokenCounterParams, type TokenCounterMessage,
} from './sdk-info.js'
export type { Invoke, Invoked, InvokeOptions } from './invoke.js'
export { UploadFile, toUpload, type Uploadable } from './openai/upload.js'
export { MODEL_OPERATIONS, isModelOperation } from './openai/operations.js'
export type { ProviderAdapter, Target, ParamMap, ParamRule, StreamTranslator, SseEvent, ProviderResult, EventDecoder, ProviderRequest, OperationAdapter } from '../providers/types.js'
export { SseParser, sseData } from './sse.js'
export { createOpenAIAdapter, createOpenAICompatible, applyParamMap } from '../providers/index.js'
export { bundledPlugins } from '../plugins/index.js'
export { defineProvider } from './entry/gateway.js'
