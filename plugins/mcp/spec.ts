/**
 * MCP server specs: LiteLLM's `mcp_servers` entry (config.yaml) or a /v1/mcp/server body → a complete McpServerSpec,
 * its public view (no secrets) and its store record.
 *
 * LiteLLM's field names and variants are accepted: `transport` http | streamable_http | streamable-http | sse | stdio
 * (stdio implied by `command`, http by `url`), `headers` / `extra_headers` / `static_headers` (merged),
 * `mcp_info.description`, `access_groups`, `scopes` as a list or a space-separated string, `timeout` in seconds or
 * `timeout_ms`. Unknown fields are ignored. Bad values are 400s naming the field.
 */
import { randomUUID } from 'node:crypto'
import { gatewayError } from '../../core/errors.js'
import type { McpServerRecord } from '../../core/store.js'
import type { McpAuthType, McpServerSpec, McpTransport } from './types.js'

/** Per-server values an entry may leave out (the plugin's `call_timeout_ms` and `max_concurrency`). */
export interface SpecDefaults {
  timeoutMs: number
  maxConcurrency: number
}

/** Used for store records that predate a field. */
const RECORD_DEFAULTS: SpecDefaults = { timeoutMs: 60_000, maxConcurrency: 10 }

/** SEP-986 server (and tool) names. */
export const SERVER_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/

const TRANSPORTS: Readonly<Record<string, McpTransport>> = {
  http: 'http', streamable_http: 'http', 'streamable-http': 'http', streamablehttp: 'http', sse: 'sse', stdio: 'stdio',
}
const AUTH_TYPES: ReadonlySet<string> = new Set<McpAuthType>(['none', 'bearer_token', 'api_key', 'basic', 'authorization', 'oauth2'])
/** auth types that send `auth_value`. */
const NEEDS_VALUE: ReadonlySet<string> = new Set(['bearer_token', 'api_key', 'basic', 'authorization'])
/** What a masked secret reads as in the public view. */
const MASK = '****'

type Entry = Record<string, unknown>

function bad(server: string, param: string, message: string): never {
  throw gatewayError('GW_ERR_VALIDATION', `MCP server '${server}': ${message}`, { param })
}

function isObject(v: unknown): v is Entry {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A non-empty string, null when absent (undefined, null or ''). */
function str(server: string, e: Entry, field: string): string | null {
  const v = e[field]
  if (v === undefined || v === null || v === '') return null
  if (typeof v !== 'string') bad(server, field, `${field} must be a string`)
  return v
}

function strList(server: string, v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) bad(server, field, `${field} must be a list of strings`)
  return v as string[]
}

/** An object of string values (numbers and booleans, as YAML reads `PORT: 3000`, become strings). */
function strMap(server: string, v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {}
  if (!isObject(v)) bad(server, field, `${field} must be an object of string values`)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string') out[k] = x
    else if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x)
    else bad(server, `${field}.${k}`, `${field}.${k} must be a string`)
  }
  return out
}

function httpUrl(server: string, v: string | null, field: string): string {
  let u: URL | null = null
  try {
    u = v === null ? null : new URL(v)
  } catch {
    u = null
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) bad(server, field, `${field} must be an http(s) URL`)
  return v!
}

function positive(server: string, v: unknown, field: string, integer: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    bad(server, field, `${field} must be a positive ${integer ? 'integer' : 'number'}`)
  }
  return v
}

/**
 * Validate one server entry and fill every field. `name` is the config map key (used when the entry has no
 * `server_name`, and as the `server_id` of config servers without one); db servers without an id get a UUID.
 */
export function parseServerSpec(name: string | null, entry: unknown, defaults: SpecDefaults, source: 'config' | 'db', now: string): McpServerSpec {
  const label = name ?? 'new'
  if (!isObject(entry)) bad(label, name ?? 'body', 'the entry must be an object')
  // The management API sends secrets under `credentials` (auth_value, client_id, client_secret, scopes).
  const e = isObject(entry.credentials) ? { ...entry.credentials, ...withoutKey(entry, 'credentials') } : entry
  const serverName = str(label, e, 'server_name') ?? name
  if (serverName === null) bad(label, 'server_name', 'server_name is required')
  if (!SERVER_NAME_RE.test(serverName)) {
    bad(serverName, 'server_name', 'server_name must be 1 to 64 letters, digits, "_", "-" or "."')
  }

  const url = str(serverName, e, 'url')
  const command = str(serverName, e, 'command')
  const rawTransport = str(serverName, e, 'transport')
  let transport: McpTransport
  if (rawTransport !== null) {
    const t = TRANSPORTS[rawTransport.toLowerCase()]
    if (!t) bad(serverName, 'transport', `unknown transport '${rawTransport}' (http, sse or stdio)`)
    transport = t
  } else if (command !== null) transport = 'stdio'
  else if (url !== null) transport = 'http'
  else bad(serverName, 'url', 'a url (http, sse) or a command (stdio) is required')

  if (transport === 'stdio' && command === null) bad(serverName, 'command', 'a stdio server needs a command')
  if (transport !== 'stdio') httpUrl(serverName, url, 'url')
  const args = e.args === undefined || e.args === null ? [] : strList(serverName, e.args, 'args')

  const authRaw = str(serverName, e, 'auth_type')
  if (authRaw !== null && !AUTH_TYPES.has(authRaw)) {
    bad(serverName, 'auth_type', `unknown auth_type '${authRaw}' (none, bearer_token, api_key, basic, authorization, oauth2)`)
  }
  const authType = authRaw as McpAuthType | null
  const authValue = str(serverName, e, 'auth_value')
  if (authType !== null && NEEDS_VALUE.has(authType) && authValue === null) {
    bad(serverName, 'auth_value', `auth_type ${authType} needs an auth_value`)
  }
  const clientId = str(serverName, e, 'client_id')
  const clientSecret = str(serverName, e, 'client_secret')
  const tokenUrl = str(serverName, e, 'token_url')
  if (authType === 'oauth2') {
    httpUrl(serverName, tokenUrl, 'token_url')
    if (clientId === null) bad(serverName, 'client_id', 'auth_type oauth2 needs a client_id')
    if (clientSecret === null) bad(serverName, 'client_secret', 'auth_type oauth2 needs a client_secret')
  }
  let scopes: string[] = []
  if (typeof e.scopes === 'string') scopes = e.scopes.split(/\s+/).filter(Boolean)
  else if (e.scopes !== undefined && e.scopes !== null) scopes = strList(serverName, e.scopes, 'scopes')

  const headers: Record<string, string> = {}
  for (const field of ['static_headers', 'extra_headers', 'headers']) {
    // LiteLLM's `extra_headers` may also be a list of client header names to forward: not supported, ignored.
    if (field === 'extra_headers' && Array.isArray(e[field])) continue
    Object.assign(headers, strMap(serverName, e[field], field))
  }

  const info = isObject(e.mcp_info) ? e.mcp_info : {}
  const costInfo = info.mcp_server_cost_info
  if (costInfo !== undefined && costInfo !== null) checkCostInfo(serverName, costInfo)
  const description = str(serverName, e, 'description') ?? str(serverName, info, 'description')
  const groupsRaw = e.mcp_access_groups ?? e.access_groups
  const groupsField = e.mcp_access_groups !== undefined ? 'mcp_access_groups' : 'access_groups'
  if (e.allow_all_keys !== undefined && e.allow_all_keys !== null && typeof e.allow_all_keys !== 'boolean') {
    bad(serverName, 'allow_all_keys', 'allow_all_keys must be a boolean')
  }

  let timeoutMs = defaults.timeoutMs
  if (e.timeout_ms !== undefined && e.timeout_ms !== null) timeoutMs = positive(serverName, e.timeout_ms, 'timeout_ms', true)
  else if (e.timeout !== undefined && e.timeout !== null) timeoutMs = Math.round(positive(serverName, e.timeout, 'timeout', false) * 1000)

  const serverId = str(serverName, e, 'server_id') ?? (source === 'config' ? serverName : randomUUID())
  return {
    server_id: serverId,
    server_name: serverName,
    alias: str(serverName, e, 'alias'),
    description,
    transport,
    url: transport === 'stdio' ? null : url,
    command: transport === 'stdio' ? command : null,
    args,
    env: strMap(serverName, e.env, 'env'),
    auth_type: authType,
    auth_value: authValue,
    headers,
    client_id: clientId,
    client_secret: clientSecret,
    token_url: tokenUrl,
    scopes,
    allowed_tools: e.allowed_tools === undefined || e.allowed_tools === null ? null : strList(serverName, e.allowed_tools, 'allowed_tools'),
    disallowed_tools: e.disallowed_tools === undefined || e.disallowed_tools === null ? [] : strList(serverName, e.disallowed_tools, 'disallowed_tools'),
    mcp_access_groups: groupsRaw === undefined || groupsRaw === null ? [] : strList(serverName, groupsRaw, groupsField),
    allow_all_keys: e.allow_all_keys === true,
    max_concurrency: e.max_concurrency === undefined || e.max_concurrency === null
      ? defaults.maxConcurrency
      : positive(serverName, e.max_concurrency, 'max_concurrency', true),
    timeout_ms: timeoutMs,
    mcp_info: isObject(e.mcp_info) ? e.mcp_info : null,
    source,
    created_at: str(serverName, e, 'created_at') ?? now,
    updated_at: str(serverName, e, 'updated_at') ?? now,
    created_by: str(serverName, e, 'created_by'),
    updated_by: str(serverName, e, 'updated_by'),
  }
}

function withoutKey(e: Entry, key: string): Entry {
  const { [key]: _drop, ...rest } = e
  return rest
}

/** `mcp_info.mcp_server_cost_info`: non-negative USD amounts per call. */
function checkCostInfo(server: string, v: unknown): void {
  const at = 'mcp_info.mcp_server_cost_info'
  if (!isObject(v)) bad(server, at, `${at} must be an object`)
  const price = (x: unknown, field: string) => {
    if (x !== undefined && x !== null && (typeof x !== 'number' || !Number.isFinite(x) || x < 0)) bad(server, field, `${field} must be a non-negative number`)
  }
  price(v.default_cost_per_query, `${at}.default_cost_per_query`)
  const per = v.tool_name_to_cost_per_query
  if (per === undefined || per === null) return
  if (!isObject(per)) bad(server, `${at}.tool_name_to_cost_per_query`, `${at}.tool_name_to_cost_per_query must be an object`)
  for (const [k, x] of Object.entries(per)) price(x, `${at}.tool_name_to_cost_per_query.${k}`)
}

/**
 * What one call of `tool` (its own name, or its prefixed name) costs on this server, USD: its entry in
 * tool_name_to_cost_per_query, else default_cost_per_query, else 0 (LiteLLM's MCP cost tracking).
 */
export function toolCost(spec: McpServerSpec, tool: string, prefixed?: string): number {
  const info = spec.mcp_info?.mcp_server_cost_info
  if (!isObject(info)) return 0
  const per = isObject(info.tool_name_to_cost_per_query) ? info.tool_name_to_cost_per_query : {}
  const v = per[tool] ?? (prefixed !== undefined ? per[prefixed] : undefined) ?? info.default_cost_per_query
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}

/**
 * A warning for a server name that makes prefixed tool names ambiguous (it contains the separator, so
 * `a-b-tool` could be server `a` or `a-b`); null when the name is fine. Allowed, as LiteLLM allows it.
 */
export function serverNameWarning(name: string, separator: string): string | null {
  return separator && name.includes(separator)
    ? `MCP server name '${name}' contains the tool prefix separator '${separator}': its prefixed tool names are ambiguous`
    : null
}

/** The spec as the API shows it: `auth_value` and `client_secret` left out, env and header values masked. */
export function publicView(spec: McpServerSpec): Record<string, unknown> {
  const { auth_value: _v, client_secret: _s, ...rest } = spec
  const mask = (m: Record<string, string>) => Object.fromEntries(Object.keys(m).map((k) => [k, MASK]))
  return { ...rest, env: mask(spec.env), headers: mask(spec.headers) }
}

/** The store record of a db server: the whole spec, secrets included (as LiteLLM stores them). */
export function recordFromSpec(spec: McpServerSpec): McpServerRecord {
  const { source: _source, ...record } = spec
  return record
}

/** A stored record back to a spec (validated again; a record missing newer fields gets their defaults). */
export function specFromRecord(record: McpServerRecord, defaults: SpecDefaults = RECORD_DEFAULTS): McpServerSpec {
  return parseServerSpec(record.server_name, record, defaults, 'db', record.updated_at)
}
