/**
 * The store contract: keys, teams, users, end users, budgets, stored models and spend, behind one interface.
 *
 * A store is a plugin (`store-sqlite`, the embedded default; `store-postgres`) that registers a `Store` as the
 * `store` service in the container; everything else (auth, the management API, budgets, spend logs) reads and
 * writes through this interface only, so the same test suite runs against every backend.
 *
 * Records use LiteLLM's field names (snake_case, as its management API returns them), so routes can hand them out
 * as they are. Timestamps are ISO-8601 strings; money is USD as a float.
 *
 * Rules every implementation keeps:
 * - Nothing blocks the event loop: calls are async, and an embedded engine runs its I/O off the main thread.
 * - `spend` on an entity is only ever changed by `writeSpend` (increments, in one transaction with the rows) and by
 *   `resetSpend` / an explicit `update({ spend })` from an admin. No per-call UPDATE of a hot row: a batch adds
 *   each entity's total once.
 * - `writeSpend` is idempotent by `request_id`: a batch retried after a lost commit acknowledgement adds nothing twice.
 * - A virtual key is stored only as its hash (`token`); the clear key never reaches a store.
 */

export type EntityKind = 'key' | 'team' | 'user' | 'end_user' | 'budget' | 'model' | 'mcp_server'

/** Per-model budget on a key, as LiteLLM's `model_max_budget` takes it. */
export interface ModelBudget {
  budget_limit: number
  /** A budget_duration string ('1d', '30d', ...); omitted = never resets. */
  time_period?: string | null
}

/** Fields LiteLLM stores for every budgeted entity. */
export interface BudgetFields {
  max_budget: number | null
  soft_budget: number | null
  /** Current period's spend, USD. */
  spend: number
  /** '30s', '1h', '1d', '7d', '30d', '1mo'; null = never resets. */
  budget_duration: string | null
  /** When `spend` next goes back to 0 (ISO); null when no duration. */
  budget_reset_at: string | null
  tpm_limit: number | null
  rpm_limit: number | null
  max_parallel_requests: number | null
  /** A row of the budget table whose limits apply (LiteLLM's budget_id). */
  budget_id: string | null
  metadata: Record<string, unknown>
  created_at: string
  updated_at: string
  /** Further LiteLLM fields are kept as given (round-tripped by /x/info). */
  [field: string]: unknown
}

/** LiteLLM_VerificationToken. */
export interface KeyRecord extends BudgetFields {
  /** SHA-256 hex of the key: the id. */
  token: string
  /** Display form of the key: 'sk-...' + its last 4 characters. */
  key_name: string
  key_alias: string | null
  user_id: string | null
  team_id: string | null
  /** Allowed model names; empty = every model the team (or, with none, the gateway) allows. */
  models: string[]
  /** true = refused with 401 until unblocked. */
  blocked: boolean | null
  /** Expiry (ISO); null = never. */
  expires: string | null
  allowed_routes: string[]
  /** Model name -> budget, each with its own duration. */
  model_max_budget: Record<string, ModelBudget>
  /** Model name -> spend in the current period of that model's budget. */
  model_spend: Record<string, number>
  created_by: string | null
}

export interface TeamMember {
  user_id: string | null
  user_email: string | null
  role: 'admin' | 'user'
}

/** LiteLLM_TeamTable. */
export interface TeamRecord extends BudgetFields {
  team_id: string
  team_alias: string | null
  models: string[]
  blocked: boolean
  members_with_roles: TeamMember[]
  admins: string[]
  members: string[]
  organization_id: string | null
}

export type UserRole = 'proxy_admin' | 'proxy_admin_viewer' | 'internal_user' | 'internal_user_viewer'

/** LiteLLM_UserTable. */
export interface UserRecord extends BudgetFields {
  user_id: string
  user_alias: string | null
  user_email: string | null
  user_role: UserRole
  teams: string[]
  models: string[]
}

/** LiteLLM_EndUserTable (a "customer": the `user` field of a request body). */
export interface EndUserRecord extends BudgetFields {
  user_id: string
  alias: string | null
  blocked: boolean
  allowed_model_region: string | null
  default_model: string | null
}

/** LiteLLM_BudgetTable. */
export interface BudgetRecord extends BudgetFields {
  budget_id: string
  model_max_budget: Record<string, ModelBudget>
}

/** LiteLLM_ProxyModelTable: a deployment added with /model/new (store_model_in_db). */
export interface ModelRecord {
  model_id: string
  model_name: string
  litellm_params: Record<string, unknown>
  model_info: Record<string, unknown>
  created_at: string
  updated_at: string
  created_by: string | null
  [field: string]: unknown
}

/** An MCP server added through the management API (/v1/mcp/server), in LiteLLM's shape (plugins/mcp). */
export interface McpServerRecord {
  server_id: string
  server_name: string
  created_at: string
  updated_at: string
  [field: string]: unknown
}

export interface RecordOf {
  key: KeyRecord
  team: TeamRecord
  user: UserRecord
  end_user: EndUserRecord
  budget: BudgetRecord
  model: ModelRecord
  mcp_server: McpServerRecord
}

/** The id field of each kind. */
export const ID_FIELD: { readonly [K in EntityKind]: keyof RecordOf[K] & string } = {
  key: 'token', team: 'team_id', user: 'user_id', end_user: 'user_id', budget: 'budget_id', model: 'model_id', mcp_server: 'server_id',
}

/** The fields `list` may filter on, per kind (equality; indexed by every store). */
export const FILTER_FIELDS: { readonly [K in EntityKind]: ReadonlyArray<keyof RecordOf[K] & string> } = {
  key: ['team_id', 'user_id', 'key_alias', 'budget_id'],
  team: ['team_alias', 'organization_id'],
  user: ['user_email', 'user_role'],
  end_user: ['alias', 'budget_id'],
  budget: [],
  model: ['model_name'],
  mcp_server: ['server_name'],
}

export interface ListQuery {
  /** Equality filters on FILTER_FIELDS of the kind. */
  where?: Record<string, string | null>
  /** 0-based. */
  offset?: number
  /** Default 100, at most 1000. */
  limit?: number
}

export interface ListResult<T> {
  rows: T[]
  /** Rows matching `where`, ignoring offset/limit. */
  total: number
}

/** One call, as LiteLLM_SpendLogs holds it. */
export interface SpendLogRow {
  request_id: string
  /** 'completion' | 'acompletion' | 'aembedding' ... as LiteLLM names them: here 'chat', 'completions', 'embeddings'. */
  call_type: string
  /** The key's hash (never the key), '' for master/anonymous calls. */
  api_key: string
  key_alias: string | null
  team_id: string | null
  /** Internal user (the key's user_id). */
  user: string | null
  /** End user: the request body's `user`. */
  end_user: string | null
  /** The deployment's upstream model ('gpt-4o-mini'). */
  model: string
  /** The public model name asked for. */
  model_group: string
  /** Deployment id. */
  model_id: string | null
  custom_llm_provider: string | null
  api_base: string | null
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  cached_tokens: number
  reasoning_tokens: number
  /** USD. */
  spend: number
  /** 'priced' | 'deployment' (deployment's own prices) | 'unpriced' (fallback price applied) | 'estimated' (usage counted by the gateway) */
  cost_source: string
  /** ISO. */
  startTime: string
  endTime: string
  /** 'success' | 'failure' */
  status: string
  /** ms; 0 for non-streams. */
  ttft_ms?: number
  request_tags: string[]
  metadata: Record<string, unknown>
  /** Error code and message for failures; null on success. */
  error: string | null
  /** Set for model_max_budget accounting: the model name the key's per-model budget is keyed on (= model_group). */
}

export interface SpendLogQuery {
  /** Key hash. */
  api_key?: string
  team_id?: string
  user?: string
  end_user?: string
  request_id?: string
  model_group?: string
  status?: string
  /** Inclusive, ISO date or date-time. */
  start_date?: string
  /** Inclusive, ISO date or date-time (a date alone covers that whole day). */
  end_date?: string
  offset?: number
  /** Default 100, at most 10,000. */
  limit?: number
}

/** Daily totals (UTC days) per entity and model, kept by writeSpend in the same transaction as the rows. */
export interface DailySpendRow {
  /** 'YYYY-MM-DD' (UTC). */
  date: string
  /** 'key' | 'team' | 'user' | 'end_user' */
  entity: 'key' | 'team' | 'user' | 'end_user'
  entity_id: string
  model_group: string
  spend: number
  prompt_tokens: number
  completion_tokens: number
  requests: number
  failed_requests: number
}

export interface DailySpendQuery {
  entity?: DailySpendRow['entity']
  entity_id?: string
  model_group?: string
  start_date?: string
  end_date?: string
}

/** One stored Responses API response and the conversation it answered. */
export interface StoredResponse {
  /** 'resp_...' */
  id: string
  /** Who created it: a virtual key's hash, else the caller's principal id ('master'); null without auth. */
  owner: string | null
  created_at: string
  /** The Response object as the client got it. */
  response: Record<string, unknown>
  /** The conversation's input items up to this turn (earlier turns' input and output, then this turn's input). */
  input: Array<Record<string, unknown>>
}

export interface Store {
  /** 'sqlite' | 'postgres' | ... */
  readonly kind: string
  /** Create or migrate the schema, open pools. Called once at plugin start. */
  open(): Promise<void>
  get<K extends EntityKind>(kind: K, id: string): Promise<RecordOf[K] | null>
  list<K extends EntityKind>(kind: K, query?: ListQuery): Promise<ListResult<RecordOf[K]>>
  /** Insert a new record; throws StoreConflictError when the id (or a key's key_alias) exists. Team aliases may repeat. */
  insert<K extends EntityKind>(kind: K, record: RecordOf[K]): Promise<void>
  /** Shallow-merge `patch` into the record (in one transaction); returns the new record, null when absent. */
  update<K extends EntityKind>(kind: K, id: string, patch: Partial<RecordOf[K]>): Promise<RecordOf[K] | null>
  /** Insert or update by id (end users created on first use). */
  upsert<K extends EntityKind>(kind: K, record: RecordOf[K]): Promise<void>
  delete(kind: EntityKind, id: string): Promise<boolean>
  /**
   * Append spend rows and, in the same transaction, add each newly inserted row's spend to its key (and the key's
   * model_spend[model_group]), team, user and end user (the end user row is created when missing), and to the
   * daily totals. Rows whose request_id already exists are skipped with their increments.
   */
  writeSpend(rows: readonly SpendLogRow[]): Promise<void>
  /** Newest first. */
  spendLogs(query: SpendLogQuery): Promise<SpendLogRow[]>
  dailySpend(query: DailySpendQuery): Promise<DailySpendRow[]>
  /**
   * Budget period rollover: set spend to 0 (and every model_spend entry whose budget shares the period, for keys: the
   * caller passes which) and budget_reset_at to `nextResetAt`, only when budget_reset_at still equals `expected`
   * (so two replicas roll over once). Returns whether this call did it.
   */
  resetSpend(
    kind: 'key' | 'team' | 'user' | 'end_user' | 'budget', id: string, expected: string | null, nextResetAt: string | null,
    /** Keys: the model_spend entries to zero with it (default: those whose time_period equals budget_duration). */
    models?: readonly string[],
  ): Promise<boolean>
  /** Records whose budget_reset_at is at or before `now` (ISO), for the reset sweep. */
  dueForReset(now: string): Promise<Array<{ kind: 'key' | 'team' | 'user' | 'end_user' | 'budget'; id: string; budget_reset_at: string; budget_duration: string }>>
  /**
   * Responses API responses kept for `previous_response_id` and GET /v1/responses/{id} (core/http/responses.ts).
   * Optional: without them the gateway keeps responses in memory only.
   */
  putResponse?(record: StoredResponse): Promise<void>
  getResponse?(id: string): Promise<StoredResponse | null>
  deleteResponse?(id: string): Promise<boolean>
  /** Cheap liveness check (SELECT 1). */
  ping(): Promise<void>
  close(): Promise<void>
}

/** A unique id or alias is taken. Management routes answer it with 400 (LiteLLM's status for a duplicate). */
export class StoreConflictError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.name = 'StoreConflictError'
    this.field = field
  }
}

/** The database cannot be reached; callers buffer (spend) or answer 503 (management). */
export class StoreUnavailableError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts)
    this.name = 'StoreUnavailableError'
  }
}
