/**
 * Per-request state: one interface, declared up front and initialised in full by `createState()` (Fastify's
 * decorateRequest rule applied to Koa). A plugin that needs a field of its own adds it by module augmentation:
 *
 *   declare module 'switchyard' { interface GatewayState { tags: string[] } }
 *
 * and sets its initial value in its own middleware, never as an ad-hoc key.
 *
 * Data goes in `ctx.state`; behaviour that needs request data goes in the per-request scope (`ctx.state.scope`).
 */
import type { AwilixContainer } from 'awilix'
import type { GatewayError } from './errors.js'
import type { Operation, Usage } from './openai/types.js'
import type { ProviderResult, Target } from '../providers/types.js'
import type { RequestTimeouts } from './models.js'
import type { Cradle } from './container.js'
import type { EndUserRecord, KeyRecord, TeamRecord, UserRecord, UserRole } from './store.js'

/** Who is calling, set by an auth plugin. */
export interface Principal {
  /** Stable id for limits and logs: a key's hash, 'master', 'anonymous'. */
  id: string
  kind: 'master' | 'key' | 'anonymous'
  keyAlias?: string | undefined
  teamId?: string | undefined
  userId?: string | undefined
  /** Model names this principal may call; empty = all. */
  models?: readonly string[] | undefined
  metadata?: Record<string, unknown> | undefined
  /** A virtual key's hash (the store's id for it); undefined for master, anonymous and static keys. */
  token?: string | undefined
  /** The key's user's role: 'proxy_admin' may use the management API as the master key does. */
  role?: UserRole | undefined
  /** The end user: the request body's `user` (LiteLLM's "customer"). Set by auth for model calls. */
  endUserId?: string | undefined
  /** Route patterns this key may call (LiteLLM allowed_routes); empty = every route its role allows. */
  allowedRoutes?: readonly string[] | undefined
  /** The records behind a virtual key, as cached at auth time (limits and budgets for later plugins). */
  key?: KeyRecord | undefined
  team?: TeamRecord | null | undefined
  user?: UserRecord | null | undefined
  /** The end user's record (null when the store has none yet: it is created by the first spend). */
  endUser?: EndUserRecord | null | undefined
}

/** One upstream attempt, as recorded for logging, retries and metrics. */
export interface AttemptRecord {
  targetId: string
  provider: string
  model: string
  startedAt: number
  durationMs: number
  status: number
  errorCode?: string | undefined
}

/**
 * Runs the tool calls a model asks for that the gateway executes itself, and calls the model again with their
 * results until it answers (core/http/handlers.ts modelCaller). `again` runs the attempt chain (fallbacks, retries)
 * with a new request body. For a stream, the result returned streams every turn to the client as it comes.
 */
export interface ToolLoop {
  run(first: ProviderResult, again: (body: Record<string, unknown>) => Promise<ProviderResult>): Promise<ProviderResult>
}

/** One tool call the gateway executed (an MCP tool), as logs and a Responses reply show it. */
export interface ToolCallRecord {
  /** The model's tool call id. */
  id: string
  /** The name the model saw (`<server>-<tool>`). */
  name: string
  /** The server's name (a Responses `server_label`) and id, and the tool's own name on it. */
  server: string
  serverId: string
  tool: string
  /** The arguments as the model sent them (JSON text). */
  arguments: string
  /** The result as text given to the model; null when the call failed. */
  output: string | null
  /** Why the call failed (the model is told the same); null on success. */
  error: string | null
  /** Unix ms when the call started, and how long it took. */
  startedAt: number
  durationMs: number
  /** The call's own price (a server's per-query cost), USD; included in state.costUsd. */
  costUsd: number
}

/** The tools of one server offered to the model. */
export interface ToolList {
  server: string
  tools: Array<{ name: string; description?: string | undefined; input_schema: unknown; annotations?: unknown }>
}

/** How the response ended; resolved once the last byte is written or the client went away. */
export interface Outcome {
  status: number
  error: GatewayError | null
  /** True when the client disconnected before the response completed. */
  aborted: boolean
  usage: Usage | null
}

/**
 * The wire format the client speaks on a model route: 'openai' (Chat Completions and the other OpenAI operations),
 * 'anthropic' (/v1/messages) or 'responses' (/v1/responses). The request chain always sees the OpenAI form in
 * `body`; the format decides how the reply and errors are written.
 */
export type ClientFormat = 'openai' | 'anthropic' | 'responses'

/**
 * The client's own request, for a deployment that serves its format natively (an Anthropic deployment answering
 * /v1/messages without a round trip through the chat form).
 */
export interface NativeRequest {
  format: 'anthropic'
  body: Record<string, unknown>
  /** Client headers the native call forwards (anthropic-beta), lower-case names. */
  headers: Record<string, string>
}

/** The kind of request: an upstream operation, or a gateway route ('models', 'management', ...). */
export type RequestKind = Operation | 'models' | 'management' | 'other'

/** The fields the core declares and initialises in createState(). */
export interface CoreState {
  requestId: string
  /** Unix milliseconds when the request entered the gateway. */
  startedAt: number
  kind: RequestKind
  principal: Principal | null
  /** Lower = more important; plugins map it to classes. Defaults to 'normal' until a plugin reads the body. */
  priority: number | 'normal'
  /** The parsed JSON body (after validation for model operations). */
  body: Record<string, unknown> | null
  /** The public model name asked for. */
  model: string
  stream: boolean
  /** Candidate deployments in the order to try them; set by a router plugin (or, with none, by the core). */
  targets: Target[]
  attempts: AttemptRecord[]
  /** The deployment that produced the response. */
  target: Target | null
  usage: Usage | null
  /** The error the response ended with (also for a failure after an SSE stream started). */
  error: GatewayError | null
  /** Cost of the call in USD, from the deployment's prices and the usage; set once usage is known (streams too). */
  costUsd: number
  /**
   * Where costUsd came from: 'deployment' (its own prices), 'table' (the price table), 'unpriced' (a fallback price:
   * the model is in no table), 'estimated' (a stream cut off before its usage arrived: tokens counted here); '' = none.
   */
  costSource: string
  /** Characters of output a stream delivered (content, tool arguments), to price it if it ends without usage. */
  outputChars: number
  /** Retries the client asked for (body `num_retries`, header `x-litellm-num-retries`); null = not asked. */
  numRetries: number | null
  /** Retries the attempt chain allowed for this request (set by a retry plugin; 0 without one). */
  maxRetries: number
  /** Fallback model groups tried after the requested one failed (set by a fallback plugin; 0 without one). */
  fallbacks: number
  /** Timeouts the request itself asked for (seconds); applied to every group it is sent to, fallbacks too. */
  requestTimeouts: RequestTimeouts | null
  /**
   * For one model's call of a request naming several (core/http/multi.ts): its place in the list. Each call has
   * its own id (`<request id>-<index>`), so logs and spend rows keep one row per call. null = an ordinary request.
   */
  batchIndex: number | null
  /**
   * Set by a router whose pre-call checks left no deployment of the requested group (context window too small,
   * rpm/tpm used up): the attempt chain's first group then fails with it without a network call, inside the attempt
   * chain, so fallbacks (context_window_fallbacks, fallbacks) still apply as LiteLLM's do. Fallback groups run.
   */
  routeError: GatewayError | null
  timings: Record<string, number>
  /** performance.now() at the start, for sub-millisecond durations (overhead, per-plugin timings). */
  startedHr: number
  /** performance.now() as each step of the request chain was entered (core/pipeline.ts), and the steps' names. */
  chainMarks: number[]
  chainNames: readonly string[] | null
  /** Time spent in provider calls (request, network, upstream, response headers or body; streams to their first event), ms. */
  upstreamMs: number
  /**
   * Replies of OpenAI-format upstreams (JSON bodies and stream events) may be forwarded as received, unparsed
   * (core/upstream/passthrough.ts). Set for HTTP model calls before the request chain; a plugin that must see or
   * change stream content (a guardrail, MCP) sets it false in its middleware (a JSON reply is parsed for whoever
   * reads `result.body`). The SDK never sets it: its callers get objects.
   */
  passthrough: boolean
  /**
   * Keep the reply for a plugin that logs it (set by such a plugin before `await next()`): the terminal then stores
   * it in `reply` (core/openai/capture.ts replyOf reads it). Off by default: nothing is kept or parsed.
   */
  captureReply: boolean
  /** The reply kept when captureReply is on: a JSON body (or a pass-through RawJson), or a StreamCapture. */
  reply: unknown
  /** The client's wire format (errors on the route are written in it). */
  format: ClientFormat
  /** The client's body in its own format, when a deployment may serve it natively; null otherwise. */
  native: NativeRequest | null
  /**
   * Tools the gateway runs itself between model turns (the MCP plugin sets it for `type: "mcp"` tools with
   * `require_approval: "never"`): the terminal hands it the first turn's result and a way to call the model again.
   */
  toolLoop: ToolLoop | null
  /** Tool calls the gateway ran for this request, in order (for logs, spend, a Responses reply's `mcp_call` items). */
  toolCalls: ToolCallRecord[]
  /** The server tools offered to the model, per server (a Responses reply's `mcp_list_tools` items). */
  toolLists: ToolList[]
  /** Aborted when the client disconnects (or the gateway drains past its deadline). */
  signal: AbortSignal
  /** Resolves with the outcome once the response is fully written (also for streams). Never rejects. */
  done: Promise<Outcome>
  /**
   * Per-request awilix scope, created on first use (most requests never resolve a scoped service, and a scope costs
   * a container allocation) and disposed when the response finishes.
   */
  readonly scope: AwilixContainer<Cradle>
}

/**
 * The core's fields plus every field plugins add by augmentation. Kept apart from CoreState so a plugin's required
 * field (initialised by its own middleware) does not make createState() below fail to type-check.
 */
export interface GatewayState extends CoreState {}

/** `scope` is a container, or a factory called on first access of `state.scope`. */
export function createState(
  scope: AwilixContainer<Cradle> | ((state: GatewayState) => AwilixContainer<Cradle>), signal: AbortSignal, done: Promise<Outcome>,
): GatewayState {
  let made = typeof scope === 'function' ? null : scope
  const make = typeof scope === 'function' ? scope : null
  const state: CoreState = {
    requestId: '',
    startedAt: Date.now(),
    kind: 'other',
    principal: null,
    priority: 'normal',
    body: null,
    model: '',
    stream: false,
    targets: [],
    attempts: [],
    target: null,
    usage: null,
    error: null,
    costUsd: 0,
    costSource: '',
    outputChars: 0,
    numRetries: null,
    maxRetries: 0,
    fallbacks: 0,
    requestTimeouts: null,
    batchIndex: null,
    routeError: null,
    timings: {},
    startedHr: performance.now(),
    chainMarks: [],
    chainNames: null,
    upstreamMs: 0,
    passthrough: false,
    captureReply: false,
    reply: null,
    format: 'openai',
    native: null,
    toolLoop: null,
    toolCalls: [],
    toolLists: [],
    signal,
    done,
    get scope() {
      return (made ??= make!(state as GatewayState))
    },
  }
  return state as GatewayState
}
