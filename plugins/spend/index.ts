/**
 * spend: one spend-log row per model call (success or failure, streamed or not), written to the store in batches
 * off the hot path. The row is built when the response is over (`state.done`), so a stream is logged with what it
 * used, also when the client cut it off. The store adds each batch's spend to the key, team, user, end user and
 * daily totals in the same transaction (one UPDATE per entity per batch, never per call).
 *
 * Through a database outage rows are buffered (bounded) and then spooled to a local file; they are written when the
 * database is back, and on the next start if the process stopped first. A graceful shutdown flushes everything; a
 * process killed outright loses the rows still in memory (writer.ts says which: with the database up, the calls that
 * ended within about `flush_interval_ms` of the kill).
 * Rows carry the key's hash, never the key.
 */
import { join } from 'node:path'
import { replyOf } from '../../core/openai/capture.js'
import { definePlugin } from '../../core/plugin.js'
import { MODEL_OPERATIONS } from '../../core/openai/operations.js'
import type { Cradle } from '../../core/container.js'
import type { GatewayState, Outcome, ToolCallRecord } from '../../core/state.js'
import type { SpendLogRow } from '../../core/store.js'
import { createSpendWriter, type SpendWriter } from './writer.js'
import { publicApiBase } from '../../core/models.js'

interface Options {
  /** Rows per store write. */
  batch_size: number
  /** Longest a row waits before its batch is written, ms. */
  flush_interval_ms: number
  /** Rows held in memory through an outage before they go to the spool file. */
  max_buffered: number
  /** Spool file for rows the database could not take; default $SWITCHYARD_DATA_DIR (else ./data)/spend-spool.<pid>.jsonl. */
  spool_path?: string
  /** Longest a graceful shutdown waits for the last rows to be written before spooling them, ms. */
  shutdown_flush_ms: number
  /** LiteLLM general_settings.store_prompts_in_spend_logs: keep each call's messages and reply in its row's metadata. */
  store_prompts: boolean
}

const MODEL_KINDS: ReadonlySet<string> = MODEL_OPERATIONS
const writers = new WeakMap<object, SpendWriter>()

export default definePlugin<Options>({
  name: 'spend',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      batch_size: { type: 'integer', minimum: 1, default: 500 },
      flush_interval_ms: { type: 'integer', minimum: 1, default: 200 },
      max_buffered: { type: 'integer', minimum: 1, default: 100_000 },
      spool_path: { type: 'string', minLength: 1 },
      shutdown_flush_ms: { type: 'integer', minimum: 0, default: 10_000 },
      store_prompts: { type: 'boolean', default: false },
    },
  },
  middleware(cradle, options) {
    const { store, logger } = cradle
    if (!store) {
      logger.warn("spend: no store plugin (store-sqlite / store-postgres) before it in the pipeline: spend is not logged")
      return function spend(_ctx, next) {
        return next()
      }
    }
    const writer = createSpendWriter({
      store, logger, batchSize: options.batch_size, flushIntervalMs: options.flush_interval_ms, maxBuffered: options.max_buffered,
      // The spool lives beside the embedded database: $SWITCHYARD_DATA_DIR, else ./data.
      spoolPath: options.spool_path ?? join(cradle.env.SWITCHYARD_DATA_DIR || './data', `spend-spool.${process.pid}.jsonl`),
    })
    writers.set(cradle, writer)
    const prompts = options.store_prompts
    return function spend(ctx, next) {
      const state = ctx.state
      if (MODEL_KINDS.has(state.kind)) {
        // LiteLLM's store_prompts_in_spend_logs: the request's messages and the reply go into the row.
        if (prompts) state.captureReply = true
        void state.done.then((outcome) => writer.push(spendRow(state, outcome, prompts)))
      }
      // A direct MCP tool call (/mcp, /mcp-rest/tools/call): one row per call, as LiteLLM logs `call_mcp_tool`.
      else if (state.kind === 'other') {
        void state.done.then((outcome) => {
          const calls = state.toolCalls
          for (let i = 0; i < calls.length; i++) writer.push(toolSpendRow(state, calls[i]!, i, outcome))
        })
      }
      return next()
    }
  },
  async stop(cradle: Cradle, options) {
    await writers.get(cradle)?.close(options.shutdown_flush_ms)
  },
})

/** The row for one call. Exported for the SDK and tests. */
export function spendRow(state: GatewayState, outcome: Outcome, prompts = false): SpendLogRow {
  const p = state.principal
  const t = state.target ?? state.targets[0] ?? null
  const u = state.usage
  const body = state.body ?? {}
  const metadata = body.metadata && typeof body.metadata === 'object' && !Array.isArray(body.metadata) ? (body.metadata as Record<string, unknown>) : {}
  const tags = Array.isArray(metadata.tags) ? metadata.tags.filter((x): x is string => typeof x === 'string')
    : Array.isArray(body.tags) ? (body.tags as unknown[]).filter((x): x is string => typeof x === 'string') : []
  const error = outcome.error ?? state.error
  const failed = error !== null || outcome.status >= 400
  const prompt = u?.prompt_tokens ?? 0
  const completion = u?.completion_tokens ?? 0
  return {
    request_id: state.requestId,
    call_type: CALL_TYPES[state.format] ?? state.kind,
    api_key: p?.token ?? '',
    key_alias: p?.keyAlias ?? null,
    team_id: p?.teamId ?? null,
    user: p?.userId ?? null,
    end_user: p?.endUserId ?? null,
    model: t?.model ?? '',
    model_group: state.model,
    model_id: t?.id ?? null,
    custom_llm_provider: t?.provider ?? null,
    api_base: t ? publicApiBase(t) : null,
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: u?.total_tokens ?? prompt + completion,
    cached_tokens: u?.prompt_tokens_details?.cached_tokens ?? 0,
    reasoning_tokens: u?.completion_tokens_details?.reasoning_tokens ?? 0,
    spend: state.costUsd,
    cost_source: state.costSource || (state.costUsd > 0 ? 'table' : 'none'),
    startTime: new Date(state.startedAt).toISOString(),
    endTime: new Date().toISOString(),
    status: failed ? 'failure' : 'success',
    request_tags: tags,
    metadata: rowMetadata(state, outcome, metadata, prompts),
    error: error ? `${error.openaiCode ?? error.code}: ${error.message}` : outcome.aborted ? 'client_closed_request' : null,
  }
}

/**
 * The row for a tool the gateway ran on a client's behalf (not inside a model call, whose row carries its tools'
 * cost): the tool as the model, its server as the group, the server's per-query price as the spend.
 */
export function toolSpendRow(state: GatewayState, call: ToolCallRecord, index: number, outcome: Outcome): SpendLogRow {
  const p = state.principal
  const failed = call.error !== null
  return {
    request_id: index === 0 ? state.requestId : `${state.requestId}-${index}`,
    call_type: 'call_mcp_tool',
    api_key: p?.token ?? '',
    key_alias: p?.keyAlias ?? null,
    team_id: p?.teamId ?? null,
    user: p?.userId ?? null,
    end_user: p?.endUserId ?? null,
    model: call.name,
    model_group: call.server,
    model_id: call.serverId,
    custom_llm_provider: 'mcp',
    api_base: null,
    prompt_tokens: 0,
    completion_tokens: 0,
    total_tokens: 0,
    cached_tokens: 0,
    reasoning_tokens: 0,
    spend: call.costUsd,
    cost_source: call.costUsd > 0 ? 'deployment' : 'none',
    startTime: new Date(call.startedAt).toISOString(),
    endTime: new Date(call.startedAt + call.durationMs).toISOString(),
    status: failed ? 'failure' : 'success',
    request_tags: [],
    metadata: {
      mcp_tool_call_metadata: { name: call.tool, mcp_server_name: call.server, namespaced_tool_name: call.name },
      ...(outcome.aborted ? { client_aborted: true } : {}),
    },
    error: call.error,
  }
}

/**
 * The request's metadata, plus what the gateway knows about the call: the client went away, and, for a call that
 * went through the priority queue, its priority and how long it waited (`queue_time_ms`, 0 when admitted at once).
 */
/** A chat call made in another client format is logged under its own call type (LiteLLM's names). */
const CALL_TYPES: Readonly<Record<string, string>> = { anthropic: 'anthropic_messages', responses: 'responses' }

function rowMetadata(state: GatewayState, outcome: Outcome, metadata: Record<string, unknown>, prompts: boolean): Record<string, unknown> {
  const queued = state.timings.queue_ms
  const tried = state.attempts.length > 1 || state.fallbacks > 0
  const tools = state.toolCalls
  if (!outcome.aborted && queued === undefined && !tried && tools.length === 0 && !prompts) return metadata
  const out: Record<string, unknown> = { ...metadata }
  if (outcome.aborted) out.client_aborted = true
  if (queued !== undefined) {
    out.queue_time_ms = queued
    if (typeof state.priority === 'number') out.priority = state.priority
  }
  // What the call went through, for the log's detail view: each attempt (retries, fallbacks) and each tool run.
  if (tried) {
    out.attempts = state.attempts.map((a) => ({ deployment: a.targetId, provider: a.provider, model: a.model, status: a.status, duration_ms: a.durationMs, error: a.errorCode ?? null }))
    out.retries = state.attempts.length - 1 - state.fallbacks
    out.fallbacks = state.fallbacks
  }
  if (tools.length) {
    out.mcp_tool_calls = tools.map((c) => ({ name: c.name, server: c.server, duration_ms: c.durationMs, error: c.error, cost: c.costUsd }))
  }
  if (prompts) {
    const body = state.body ?? {}
    out.messages = body.messages ?? body.input ?? body.prompt ?? null
    out.response = replyOf(state)
  }
  return out
}

