/**
 * logging: one standard record per model call (record.ts), fanned out to the configured sinks (Langfuse, Helicone,
 * MLflow, OpenTelemetry), each behind its own queue (queue.ts) that batches, retries with backoff and keeps a
 * bounded buffer, so a slow or dead receiver never slows, fails or blocks a call. The record is built when the
 * response is over (`state.done`): a stream is logged once it ended, or was cut off, with what it used.
 *
 * LiteLLM's config names the sinks: `litellm_settings.callbacks` (success and failure),
 * `success_callback` (successes only), `failure_callback` (failures only); core/compat/litellm.ts maps them here.
 * Credentials come from the sink's options or the environment variables LiteLLM reads (each sink says which).
 *
 * Opting out, as LiteLLM lets callers:
 * - `turn_off_message_logging` (this plugin's option, or `metadata.turn_off_message_logging` on the key or team):
 *   records go out without messages or response;
 * - a request body with `"no-log": true`: no record for that call;
 * - the `x-litellm-disable-callbacks: langfuse,otel` header: those sinks skip that call;
 * - `metadata.logging_disabled: true` on a key or team: no records for its calls.
 *
 * A graceful stop flushes every queue (up to `stop_timeout_ms`); records still unsent then are counted as dropped.
 */
import { asValue } from 'awilix'
import { definePlugin } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import type { Cradle } from '../../core/container.js'
import type { GatewayState, Outcome } from '../../core/state.js'
import { buildRecord, isFailure } from './record.js'
import { SinkQueue } from './queue.js'
import type { LogRecord, Sink, SinkContext, SinkStats } from './types.js'
import { createLangfuseSink } from './sinks/langfuse.js'
import { createHeliconeSink } from './sinks/helicone.js'
import { createMlflowSink } from './sinks/mlflow.js'
import { createOtelSink } from './sinks/otel.js'

export type { LogRecord, Sink, SinkStats } from './types.js'

/** The sinks this plugin knows, by the callback names LiteLLM configs use. */
export const SINKS: Readonly<Record<string, (o: SinkContext) => Sink>> = {
  langfuse: createLangfuseSink,
  langfuse_otel: createLangfuseSink,
  helicone: createHeliconeSink,
  mlflow: createMlflowSink,
  otel: createOtelSink,
  opentelemetry: createOtelSink,
}

interface Options {
  /** Sinks that get every call. */
  sinks: string[]
  /** Sinks that get successful calls only (LiteLLM success_callback). */
  success_only: string[]
  /** Sinks that get failed calls only (LiteLLM failure_callback). */
  failure_only: string[]
  /** Per sink: its options (credentials, endpoint), overriding the environment. */
  settings: Record<string, Record<string, unknown>>
  /** Records go out without messages or response content. */
  turn_off_message_logging: boolean
  /** Records a sink's queue holds while its receiver is slow or down; past it the oldest are dropped (counted). */
  max_buffer: number
  /** Longest a record waits before its batch is sent, ms. */
  flush_interval_ms: number
  /** Longest a graceful stop waits for the queues to empty, ms. */
  stop_timeout_ms: number
  /** Variables the sinks read before the process environment (LiteLLM's `environment_variables:` section). */
  environment: Record<string, string>
}

declare module '../../core/container.js' {
  interface Cradle {
    /** The logging plugin's queues, for /metrics (registered only with the logging plugin). */
    loggingStats?: () => SinkStats[]
  }
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS
const queuesOf = new WeakMap<object, SinkQueue[]>()

interface Route {
  queue: SinkQueue
  /** The names this sink answers to in x-litellm-disable-callbacks (its aliases: otel and opentelemetry). */
  names: ReadonlySet<string>
  success: boolean
  failure: boolean
}

export default definePlugin<Options>({
  name: 'logging',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      sinks: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
      success_only: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
      failure_only: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
      settings: { type: 'object', additionalProperties: { type: 'object' }, default: {} },
      turn_off_message_logging: { type: 'boolean', default: false },
      max_buffer: { type: 'integer', minimum: 1, default: 10_000 },
      flush_interval_ms: { type: 'integer', minimum: 1, default: 1_000 },
      stop_timeout_ms: { type: 'integer', minimum: 0, default: 10_000 },
      environment: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
    },
  },
  register(container, options) {
    const cradle = container.cradle
    const env = { ...cradle.env, ...options.environment }
    const routes: Route[] = []
    const byName = new Map<string, Route>()
    const add = (raw: string, success: boolean, failure: boolean) => {
      const name = raw.toLowerCase()
      const factory = SINKS[name]
      if (!factory) {
        throw gatewayError('GW_ERR_CONFIG_INVALID', `logging: unknown sink '${raw}'; known: ${Object.keys(SINKS).join(', ')}`)
      }
      const existing = byName.get(factory.name)
      if (existing) {
        existing.success ||= success
        existing.failure ||= failure
        return
      }
      let sink: Sink
      try {
        sink = factory({ options: options.settings[name] ?? {}, env, dispatcher: cradle.dispatcher, logger: cradle.logger })
      } catch (err) {
        // A sink without credentials (a production config run where LANGFUSE_* is unset) does not stop the gateway,
        // as it does not stop LiteLLM's: it is left out, and the boot log says why.
        cradle.logger.warn(`logging: sink '${raw}' not started: ${(err as Error).message}`)
        return
      }
      const queue = new SinkQueue(sink, { maxBuffer: options.max_buffer, flushIntervalMs: options.flush_interval_ms, logger: cradle.logger })
      const names = new Set(Object.keys(SINKS).filter((k) => SINKS[k] === factory))
      const route = { queue, names, success, failure }
      byName.set(factory.name, route)
      routes.push(route)
    }
    for (const s of options.sinks) add(s, true, true)
    for (const s of options.success_only) add(s, true, false)
    for (const s of options.failure_only) add(s, false, true)
    queuesOf.set(cradle, routes.map((r) => r.queue))
    routesOf.set(cradle, routes)
    container.register({ loggingStats: asValue(() => routes.map((r) => r.queue.stats())) })
  },
  middleware(cradle, options) {
    const routes = routesOf.get(cradle) ?? []
    if (routes.length === 0) {
      return function logging(_ctx, next) {
        return next()
      }
    }
    const redactAll = options.turn_off_message_logging
    return function logging(ctx, next) {
      const state = ctx.state
      if (!MODEL_KINDS.has(state.kind)) return next()
      const body = state.body
      if (body !== null && body['no-log'] === true) return next()
      const disabled = ctx.get('x-litellm-disable-callbacks')
      // Kept also under redaction: the record keeps finish_reason and tool names, never the content.
      state.captureReply = true
      const route = ctx.path
      void state.done.then((outcome) => ship(state, outcome, routes, route, redactAll, disabled))
      return next()
    }
  },
  async stop(cradle: Cradle, options) {
    const queues = queuesOf.get(cradle) ?? []
    await Promise.all(queues.map((q) => q.stop(options.stop_timeout_ms)))
  },
})

const routesOf = new WeakMap<object, Route[]>()

/** Build the call's record once and hand it to every sink that wants it. Never throws: logging must not fail a call. */
function ship(state: GatewayState, outcome: Outcome, routes: readonly Route[], route: string, redactAll: boolean, disabled: string): void {
  try {
    const p = state.principal
    const keyMeta = p?.key?.metadata
    const teamMeta = p?.team?.metadata
    if (keyMeta?.logging_disabled === true || teamMeta?.logging_disabled === true) return
    const redact = redactAll || keyMeta?.turn_off_message_logging === true || teamMeta?.turn_off_message_logging === true
    let record: LogRecord | null = null
    const failed = isFailure(state, outcome)
    for (const r of routes) {
      if (failed ? !r.failure : !r.success) continue
      if (disabled && skipped(disabled, r.names)) continue
      record ??= buildRecord(state, outcome, { route, redact })
      r.queue.push(record)
    }
  } catch (err) {
    state.scope.cradle.logger.warn('logging: could not build the log record', { requestId: state.requestId, err: (err as Error).message })
  }
}

/** Whether the x-litellm-disable-callbacks list (comma-separated, any case) names this sink by any of its names. */
function skipped(list: string, names: ReadonlySet<string>): boolean {
  for (const part of list.split(',')) if (names.has(part.trim().toLowerCase())) return true
  return false
}
