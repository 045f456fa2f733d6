/**
 * The logging plugin's contracts: one standard record per call (built from the request's `done` outcome, so a stream
 * is logged once it ended, or was cut off, with what it used), and the sinks that ship records somewhere.
 *
 * Field names follow LiteLLM's StandardLoggingPayload where it has one, so a reader who knows LiteLLM's callbacks
 * knows these. Times are Unix milliseconds; money is USD.
 */

export interface LogUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  /** Prompt tokens read from a provider's cache (part of prompt_tokens). */
  cached_tokens: number
  /** Prompt tokens written to a provider's cache (Anthropic's cache_creation_input_tokens). */
  cache_creation_tokens: number
  /** Output tokens spent on reasoning (part of completion_tokens). */
  reasoning_tokens: number
}

export interface LogAttempt {
  deployment: string
  provider: string
  model: string
  /** Unix ms. */
  start_time: number
  duration_ms: number
  /** HTTP status of the attempt (200 on success). */
  status: number
  error_code: string | null
}

/** One tool call the gateway executed (an MCP tool) between model turns. */
export interface LogToolCall {
  id: string
  /** The tool's own name on its server, the server's name, and the name the model saw (`<server>-<tool>`). */
  name: string
  mcp_server_name: string
  namespaced_tool_name: string
  arguments: string | null
  result: string | null
  /** Why the call failed; null on success. */
  error: string | null
  start_time: number
  duration_ms: number
  cost: number
}

export interface LogRecord {
  /** The gateway's request id (x-request-id, LiteLLM's litellm_call_id); for a batch item `<id>-<index>`. */
  id: string
  /** 'chat' | 'completions' | 'embeddings' | 'images' | 'transcription' | 'speech' | 'moderations' |
   *  'anthropic_messages' | 'responses'. */
  call_type: string
  /** The route the client called, e.g. /v1/chat/completions. */
  route: string
  /** 'success' | 'failure'. */
  status: 'success' | 'failure'
  /** HTTP status the client got (499: it went away). */
  http_status: number
  /** The model group the client asked for. */
  model_group: string
  /** The upstream model id of the deployment that answered (or was last tried). */
  model: string
  /** Deployment id (model_info.id). */
  model_id: string | null
  /** Provider adapter name ('openai', 'anthropic', ...). */
  provider: string | null
  /** API base without credentials or query. */
  api_base: string | null
  stream: boolean
  /** Unix ms: request start, first byte / first stream event, end. */
  start_time: number
  completion_start_time: number | null
  end_time: number
  /** end_time - start_time. */
  latency_ms: number
  /** Time to the first byte of the reply (a stream's first event); null when no reply started. */
  ttft_ms: number | null
  /** Time spent in the gateway rather than in provider calls, ms. */
  overhead_ms: number | null
  /** Per request-chain step, ms (core/pipeline.ts chainTimings). */
  plugin_timings: Record<string, number>
  /** Waited in the priority queue, ms (0 when admitted at once; null without the queue). */
  queue_wait_ms: number | null
  priority: number | null
  /** Upstream attempts made (1 = first try worked), retries = attempts - 1 within a group. */
  attempts: LogAttempt[]
  retries: number
  /** Fallback groups tried after the requested one. */
  fallbacks: number
  usage: LogUsage
  /** USD; 0 when unpriced. */
  cost: number
  /** 'deployment' | 'table' | 'unpriced' | 'estimated' | ''. */
  cost_source: string
  /** The request's parameters other than its messages / input (temperature, max_tokens, tools, ...). */
  model_parameters: Record<string, unknown>
  /** The prompt: chat messages, a completion prompt, embedding input...; null when redacted. */
  messages: unknown
  /** The reply: the assistant message (or text, embeddings summary), null when redacted or none. */
  response: unknown
  /** Tool calls the reply made: [{id, name, arguments}]. */
  tool_calls: Array<{ id: string; name: string; arguments: string }>
  finish_reason: string | null
  /**
   * Tools the gateway ran for the call (MCP), in order: LiteLLM's mcp_tool_call_metadata fields plus the outcome.
   * Arguments and result are null when redacted.
   */
  mcp_tool_calls: LogToolCall[]
  /** Error class name / code / message when status is 'failure'. */
  error: { type: string; code: string; message: string; status: number } | null
  /** Who called: never a key, only its hash and alias. */
  key_hash: string | null
  key_alias: string | null
  team_id: string | null
  team_alias: string | null
  user_id: string | null
  end_user: string | null
  /** Request tags (metadata.tags, body tags, key/team tags). */
  tags: string[]
  /** The request's `metadata` (LiteLLM's: trace_id, session_id, generation_name, trace_user_id, ...), secrets removed. */
  metadata: Record<string, unknown>
  /** Messages and response were redacted (turn_off_message_logging, no-log, a key/team opt-out). */
  redacted: boolean
}

/**
 * A destination. `send` ships one batch and resolves when the receiver accepted it; it throws a SinkError to say
 * whether trying again may help. A sink keeps no buffer of its own: the queue in front of it (queue.ts) batches,
 * retries with backoff, bounds memory and counts drops.
 */
export interface Sink {
  /** 'langfuse' | 'helicone' | 'mlflow' | 'otel' | ... : names the sink in logs and metrics. */
  readonly name: string
  /** Most records per send (the queue never hands over more). */
  readonly maxBatch: number
  send(batch: readonly LogRecord[], signal: AbortSignal): Promise<void>
  /** Release connections (after the last flush). */
  close?(): Promise<void>
}

/** A failed send: `retry` false for a receiver that will never take this batch (400, 401, 413...). */
export class SinkError extends Error {
  constructor(message: string, readonly retry: boolean, readonly status?: number) {
    super(message)
    this.name = 'SinkError'
  }
}

/** What a sink's queue reports (for /metrics and the logs). */
export interface SinkStats {
  sink: string
  /** Records waiting to be sent. */
  buffered: number
  /** Records delivered. */
  sent: number
  /** Records given up on: the buffer was full, or the receiver refused them for good. */
  dropped: number
  /** Failed send attempts (each retried batch counts once per attempt). */
  failures: number
}

/** What a sink factory gets: its own options (snake_case, overriding the environment LiteLLM reads), and I/O. */
export interface SinkContext {
  options: Record<string, unknown>
  env: Record<string, string | undefined>
  dispatcher: import('undici').Dispatcher
  logger: import('../../core/logger.js').Logger
}
