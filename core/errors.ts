/**
 * Errors are data: one table of stable codes, each with an HTTP status, an OpenAI error `type` and the class that
 * carries it. The same classes are thrown by the proxy and by the SDK, and are rendered as the OpenAI error body
 * `{"error":{"message","type","param","code"}}` in one place (`toErrorBody`).
 *
 * The class names follow the OpenAI SDKs (and LiteLLM's exception names) so `catch (e) { if (e instanceof
 * RateLimitError) ... }` reads the same in Switchyard code.
 */

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

export interface GatewayErrorOptions {
  param?: string | null
  /** The OpenAI-visible `code` field; defaults to the table's `openaiCode`, else null. */
  openaiCode?: string | null
  /** Seconds the client should wait, from an upstream `retry-after` or our own limiter. */
  retryAfter?: number
  /** Provider name and upstream status, when the error came from upstream. */
  provider?: string
  /** The upstream model the failed call was for (the deployment's `model`, provider prefix left out). */
  model?: string
  upstreamStatus?: number
  cause?: unknown
  /** Extra response headers (e.g. rate-limit headers). */
  headers?: Record<string, string>
}

export class GatewayError extends Error {
  /** Stable Switchyard code: GW_ERR_* */
  readonly code: string
  readonly status: number
  readonly type: string
  readonly param: string | null
  readonly openaiCode: string | null
  readonly retryAfter: number | undefined
  /** The provider and upstream model of the deployment whose call failed (set by the attempt chain when unset). */
  provider: string | undefined
  model: string | undefined
  readonly upstreamStatus: number | undefined
  readonly headers: Record<string, string> | undefined

  constructor(code: string, status: number, type: string, message: string, opts: GatewayErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.status = status
    this.type = type
    this.param = opts.param ?? null
    this.openaiCode = opts.openaiCode ?? null
    this.retryAfter = opts.retryAfter
    this.provider = opts.provider
    this.model = opts.model
    this.upstreamStatus = opts.upstreamStatus
    this.headers = opts.headers
  }

  override get name(): string {
    return this.constructor.name
  }

  /** Whether another attempt (same or other deployment) may succeed: 408, 429, 5xx, timeouts, connection errors. */
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500
  }

  toJSON(): ErrorBody {
    return toErrorBody(this)
  }
}

// The classes, named as in the OpenAI SDK / LiteLLM. Statuses follow LiteLLM's exception mapping.
export class BadRequestError extends GatewayError {}
export class AuthenticationError extends GatewayError {}
export class PermissionDeniedError extends GatewayError {}
export class NotFoundError extends GatewayError {}
export class UnprocessableEntityError extends GatewayError {}
export class RateLimitError extends GatewayError {}
export class ContextWindowExceededError extends BadRequestError {}
export class ContentPolicyViolationError extends BadRequestError {}
export class UnsupportedParamsError extends BadRequestError {}
export class Timeout extends GatewayError {}
export class APIConnectionError extends GatewayError {}
export class APIError extends GatewayError {}
export class ServiceUnavailableError extends GatewayError {}
export class InternalServerError extends GatewayError {}
/** Boot-time errors: bad config, unknown plugin, plugin order. Never sent to a client. */
export class ConfigError extends GatewayError {
  override get retryable(): boolean {
    return false
  }
}

type ErrorClass = new (code: string, status: number, type: string, message: string, opts?: GatewayErrorOptions) => GatewayError

interface ErrorDef {
  status: number
  type: string
  cls: ErrorClass
  openaiCode?: string
}

const INVALID = 'invalid_request_error'

/** The one table. Add a row here rather than building an ad-hoc error anywhere else. */
export const ERRORS = {
  // client input
  GW_ERR_BAD_JSON: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'invalid_json' },
  GW_ERR_VALIDATION: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'invalid_value' },
  GW_ERR_CONTENT_TYPE: { status: 415, type: INVALID, cls: BadRequestError, openaiCode: 'unsupported_media_type' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, type: INVALID, cls: BadRequestError, openaiCode: 'request_too_large' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, type: INVALID, cls: BadRequestError, openaiCode: 'request_header_fields_too_large' },
  // Arrays and objects nested past the gateway's limit (deep enough to overflow recursive code further on).
  GW_ERR_BODY_TOO_DEEP: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'nesting_too_deep' },
  // The client took longer than the request timeout to send its request (headers and body).
  GW_ERR_REQUEST_TIMEOUT: { status: 408, type: INVALID, cls: BadRequestError, openaiCode: 'request_timeout' },
  GW_ERR_BAD_HTTP: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'bad_request' },
  GW_ERR_PARAM_RANGE: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'invalid_value' },
  GW_ERR_UNSUPPORTED_PARAM: { status: 400, type: INVALID, cls: UnsupportedParamsError, openaiCode: 'unsupported_parameter' },
  GW_ERR_UNSUPPORTED_OPERATION: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'unsupported_operation' },
  GW_ERR_PROVIDER_UNSUPPORTED: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'provider_not_supported' },
  GW_ERR_MODEL_NOT_FOUND: { status: 404, type: INVALID, cls: NotFoundError, openaiCode: 'model_not_found' },
  // A model call naming a model the gateway does not serve: 400, as the LiteLLM proxy answers it.
  GW_ERR_INVALID_MODEL: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'model_not_found' },
  GW_ERR_ROUTE_NOT_FOUND: { status: 404, type: INVALID, cls: NotFoundError, openaiCode: 'unknown_url' },
  GW_ERR_METHOD_NOT_ALLOWED: { status: 405, type: INVALID, cls: BadRequestError, openaiCode: 'method_not_allowed' },
  GW_ERR_CONTEXT_WINDOW: { status: 400, type: INVALID, cls: ContextWindowExceededError, openaiCode: 'context_length_exceeded' },
  GW_ERR_CONTENT_POLICY: { status: 400, type: INVALID, cls: ContentPolicyViolationError, openaiCode: 'content_policy_violation' },
  // auth
  GW_ERR_AUTH: { status: 401, type: 'authentication_error', cls: AuthenticationError, openaiCode: 'invalid_api_key' },
  GW_ERR_FORBIDDEN: { status: 403, type: 'permission_error', cls: PermissionDeniedError, openaiCode: 'forbidden' },
  GW_ERR_KEY_EXPIRED: { status: 401, type: 'authentication_error', cls: AuthenticationError, openaiCode: 'expired_key' },
  GW_ERR_KEY_BLOCKED: { status: 401, type: 'authentication_error', cls: AuthenticationError, openaiCode: 'blocked_key' },
  // management API
  GW_ERR_NOT_FOUND: { status: 404, type: INVALID, cls: NotFoundError, openaiCode: 'not_found' },
  // A duplicate id or alias: 400, as LiteLLM answers it.
  GW_ERR_CONFLICT: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'already_exists' },
  GW_ERR_NO_STORE: { status: 400, type: INVALID, cls: BadRequestError, openaiCode: 'no_database' },
  GW_ERR_STORE_UNAVAILABLE: { status: 503, type: 'service_unavailable_error', cls: ServiceUnavailableError, openaiCode: 'database_unavailable' },
  // limits
  GW_ERR_RATE_LIMIT: { status: 429, type: 'rate_limit_error', cls: RateLimitError, openaiCode: 'rate_limit_exceeded' },
  // Spend reached a budget: 400 with type budget_exceeded, as the LiteLLM proxy answers it.
  GW_ERR_BUDGET_EXCEEDED: { status: 400, type: 'budget_exceeded', cls: BadRequestError, openaiCode: 'budget_exceeded' },
  // upstream
  GW_ERR_UPSTREAM_BAD_REQUEST: { status: 400, type: INVALID, cls: BadRequestError },
  GW_ERR_UPSTREAM_AUTH: { status: 401, type: 'authentication_error', cls: AuthenticationError },
  GW_ERR_UPSTREAM_FORBIDDEN: { status: 403, type: 'permission_error', cls: PermissionDeniedError },
  GW_ERR_UPSTREAM_NOT_FOUND: { status: 404, type: INVALID, cls: NotFoundError },
  GW_ERR_UPSTREAM_UNPROCESSABLE: { status: 422, type: INVALID, cls: UnprocessableEntityError },
  GW_ERR_UPSTREAM_RATE_LIMIT: { status: 429, type: 'rate_limit_error', cls: RateLimitError, openaiCode: 'rate_limit_exceeded' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 408, type: 'timeout_error', cls: Timeout, openaiCode: 'timeout' },
  GW_ERR_UPSTREAM_CONNECTION: { status: 502, type: 'api_connection_error', cls: APIConnectionError, openaiCode: 'connection_error' },
  GW_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, type: 'api_error', cls: APIError, openaiCode: 'bad_upstream_response' },
  GW_ERR_UPSTREAM_UNAVAILABLE: { status: 503, type: 'service_unavailable_error', cls: ServiceUnavailableError },
  GW_ERR_UPSTREAM_SERVER: { status: 500, type: 'api_error', cls: InternalServerError },
  GW_ERR_NO_DEPLOYMENT: { status: 503, type: 'service_unavailable_error', cls: ServiceUnavailableError, openaiCode: 'no_healthy_deployment' },
  GW_ERR_SHUTTING_DOWN: { status: 503, type: 'service_unavailable_error', cls: ServiceUnavailableError, openaiCode: 'shutting_down' },
  GW_ERR_CLIENT_CLOSED: { status: 499, type: INVALID, cls: APIConnectionError, openaiCode: 'client_closed_request' },
  GW_ERR_INTERNAL: { status: 500, type: 'api_error', cls: InternalServerError, openaiCode: 'internal_error' },
  // boot
  GW_ERR_CONFIG_INVALID: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_CONFIG_READ: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PLUGIN_UNKNOWN: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PLUGIN_DUPLICATE: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PLUGIN_DEPENDENCY_UNKNOWN: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PLUGIN_DEPENDENCY_ORDER: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PLUGIN_OPTIONS: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PLUGIN_LOAD: { status: 500, type: 'config_error', cls: ConfigError },
  GW_ERR_PROVIDER_UNKNOWN: { status: 500, type: 'config_error', cls: ConfigError },
} satisfies Record<string, ErrorDef>

export type ErrorCode = keyof typeof ERRORS

/** Build the error for a table code. The only way errors are created in Switchyard. */
export function gatewayError(code: ErrorCode, message: string, opts: GatewayErrorOptions = {}): GatewayError {
  const def: ErrorDef = ERRORS[code]
  const o = def.openaiCode !== undefined && opts.openaiCode === undefined ? { ...opts, openaiCode: def.openaiCode } : opts
  return new def.cls(code, def.status, def.type, message, o)
}

/** Anything thrown -> a GatewayError (unknown errors become GW_ERR_INTERNAL, with the cause kept for logs). */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err
  return gatewayError('GW_ERR_INTERNAL', 'Internal server error', { cause: err })
}

export function toErrorBody(err: GatewayError): ErrorBody {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.openaiCode } }
}

/**
 * Map an upstream HTTP status to a table code. Providers use this after reading their own error body, then refine
 * (context window, content policy) from the provider's own error codes.
 */
export function codeForUpstreamStatus(status: number): ErrorCode {
  if (status === 400) return 'GW_ERR_UPSTREAM_BAD_REQUEST'
  if (status === 401) return 'GW_ERR_UPSTREAM_AUTH'
  if (status === 403) return 'GW_ERR_UPSTREAM_FORBIDDEN'
  if (status === 404) return 'GW_ERR_UPSTREAM_NOT_FOUND'
  if (status === 408) return 'GW_ERR_UPSTREAM_TIMEOUT'
  if (status === 413) return 'GW_ERR_UPSTREAM_BAD_REQUEST'
  if (status === 422) return 'GW_ERR_UPSTREAM_UNPROCESSABLE'
  if (status === 429) return 'GW_ERR_UPSTREAM_RATE_LIMIT'
  if (status === 502) return 'GW_ERR_UPSTREAM_BAD_RESPONSE'
  // LiteLLM maps a gateway timeout from upstream to its Timeout exception.
  if (status === 504) return 'GW_ERR_UPSTREAM_TIMEOUT'
  if (status === 503 || status === 529) return 'GW_ERR_UPSTREAM_UNAVAILABLE'
  if (status >= 500) return 'GW_ERR_UPSTREAM_SERVER'
  return 'GW_ERR_UPSTREAM_BAD_REQUEST'
}

/** Seconds from an upstream's `retry-after` header (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h
  if (!v) return undefined
  const s = Number(v)
  if (Number.isFinite(s)) return Math.max(0, s)
  const d = Date.parse(v)
  return Number.isNaN(d) ? undefined : Math.max(0, Math.ceil((d - Date.now()) / 1000))
}
