/**
 * The SQL schema, as numbered additive migrations, and the runner that applies them once per database.
 *
 * One table per entity kind: the id, the kind's FILTER_FIELDS as indexed columns, `spend` (changed only by
 * writeSpend, resetSpend and an admin update), `budget_duration` / `budget_reset_at` (the reset sweep reads them),
 * `created_at` (list order) and the rest of the record as JSON in `data`. Timestamps are ISO-8601 UTC text in one
 * fixed format (Date#toISOString), so text order is time order on both engines.
 *
 * Every step is idempotent (IF NOT EXISTS), so a runner that died half-way is simply re-run. Several processes
 * starting at once serialise on a cross-process lock (driver.exclusive) and the loser finds nothing left to do.
 * Later migrations stay additive: new tables, `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` with a default, indexes on
 * spend tables CONCURRENTLY. (SQLite has no ADD COLUMN IF NOT EXISTS, but there the whole run is one transaction with
 * its version row, so a step never runs twice; give it a dialect-specific step.)
 */
import { FILTER_FIELDS, ID_FIELD, type EntityKind } from '../store.js'
import type { SqlDriver, SqlExecutor } from './driver.js'

export type Dialect = SqlDriver['dialect']

export interface EntityTable {
  kind: EntityKind
  table: string
  id: string
  /** FILTER_FIELDS of the kind, each a real column. */
  columns: readonly string[]
  /** Has spend, budget_duration and budget_reset_at columns. */
  budgeted: boolean
}

const TABLE_NAMES: { readonly [K in EntityKind]: string } = {
  key: 'sy_keys', team: 'sy_teams', user: 'sy_users', end_user: 'sy_end_users', budget: 'sy_budgets', model: 'sy_models',
  mcp_server: 'sy_mcp_servers',
}

export const ENTITY_TABLES: { readonly [K in EntityKind]: EntityTable } = Object.fromEntries(
  (Object.keys(TABLE_NAMES) as EntityKind[]).map((kind) => [kind, {
    kind, table: TABLE_NAMES[kind], id: ID_FIELD[kind], columns: FILTER_FIELDS[kind], budgeted: kind !== 'model' && kind !== 'mcp_server',
  }]),
) as { [K in EntityKind]: EntityTable }

export const BUDGETED_KINDS = ['key', 'team', 'user', 'end_user', 'budget'] as const

interface Step {
  sql: string
  /** An index on a spend table: PostgreSQL builds it CONCURRENTLY (writers keep going); named to repair a failed build. */
  index?: string
}

interface Migration {
  version: number
  steps(d: Dialect): Step[]
}

function types(d: Dialect) {
  return d === 'postgres'
    ? { real: 'double precision', int: 'bigint', json: 'jsonb' }
    : { real: 'REAL', int: 'INTEGER', json: 'TEXT' }
}

function entitySteps(d: Dialect, t: EntityTable): Step[] {
  const ty = types(d)
  const cols = [`${t.id} TEXT PRIMARY KEY`, ...t.columns.map((c) => `${c} TEXT`)]
  if (t.budgeted) cols.push(`spend ${ty.real} NOT NULL DEFAULT 0`, 'budget_duration TEXT', 'budget_reset_at TEXT')
  cols.push('created_at TEXT NOT NULL', `data ${ty.json} NOT NULL`)
  const steps: Step[] = [{ sql: `CREATE TABLE IF NOT EXISTS ${t.table} (${cols.join(', ')})` }]
  for (const c of t.columns) {
    // key_alias is unique among keys (NULLs never collide); team_alias is not, as in LiteLLM.
    const unique = t.kind === 'key' && c === 'key_alias'
    steps.push({ sql: `CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${t.table}_${c}_${unique ? 'key' : 'idx'} ON ${t.table} (${c})` })
  }
  steps.push({ sql: `CREATE INDEX IF NOT EXISTS ${t.table}_created_idx ON ${t.table} (created_at, ${t.id})` })
  if (t.budgeted) {
    steps.push({ sql: `CREATE INDEX IF NOT EXISTS ${t.table}_reset_idx ON ${t.table} (budget_reset_at) WHERE budget_reset_at IS NOT NULL` })
  }
  return steps
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    steps: (d) => [
      ...Object.values(ENTITY_TABLES).filter((t) => t.kind !== 'mcp_server').flatMap((t) => entitySteps(d, t)),
      // A key's per-model spend lives in its own rows so concurrent writeSpend increments never rewrite the key's JSON.
      { sql: `CREATE TABLE IF NOT EXISTS sy_key_model_spend (token TEXT NOT NULL, model TEXT NOT NULL, spend ${types(d).real} NOT NULL DEFAULT 0, PRIMARY KEY (token, model))` },
    ],
  },
  {
    version: 2,
    steps: (d) => {
      const ty = types(d)
      const index = (name: string, on: string): Step => ({
        sql: `CREATE INDEX ${d === 'postgres' ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${name} ON ${on}`, index: name,
      })
      return [
        {
          sql: 'CREATE TABLE IF NOT EXISTS sy_spend_logs (request_id TEXT PRIMARY KEY, call_type TEXT NOT NULL, ' +
            'api_key TEXT NOT NULL, key_alias TEXT, team_id TEXT, user_id TEXT, end_user TEXT, model TEXT NOT NULL, ' +
            'model_group TEXT NOT NULL, model_id TEXT, custom_llm_provider TEXT, api_base TEXT, ' +
            `prompt_tokens ${ty.int} NOT NULL, completion_tokens ${ty.int} NOT NULL, total_tokens ${ty.int} NOT NULL, ` +
            `cached_tokens ${ty.int} NOT NULL, reasoning_tokens ${ty.int} NOT NULL, spend ${ty.real} NOT NULL, ` +
            'cost_source TEXT NOT NULL, start_time TEXT NOT NULL, end_time TEXT NOT NULL, status TEXT NOT NULL, ' +
            `ttft_ms ${ty.real}, request_tags ${ty.json} NOT NULL, metadata ${ty.json} NOT NULL, error TEXT)`,
        },
        // Each lookup is "this entity's calls, newest first": the time column second serves the ORDER BY too.
        // The team, user and end-user indexes are partial: most calls have none of them, and every index a row
        // skips is a B-tree insert the spend writer does not pay (`col = ?` implies `col IS NOT NULL` for both
        // planners, so lookups still use them).
        index('sy_spend_logs_api_key_idx', 'sy_spend_logs (api_key, start_time)'),
        index('sy_spend_logs_team_id_idx', 'sy_spend_logs (team_id, start_time) WHERE team_id IS NOT NULL'),
        index('sy_spend_logs_user_idx', 'sy_spend_logs (user_id, start_time) WHERE user_id IS NOT NULL'),
        index('sy_spend_logs_end_user_idx', 'sy_spend_logs (end_user, start_time) WHERE end_user IS NOT NULL'),
        index('sy_spend_logs_start_time_idx', 'sy_spend_logs (start_time)'),
        {
          sql: `CREATE TABLE IF NOT EXISTS sy_daily_spend (date TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, ` +
            `model_group TEXT NOT NULL, spend ${ty.real} NOT NULL, prompt_tokens ${ty.int} NOT NULL, ` +
            `completion_tokens ${ty.int} NOT NULL, requests ${ty.int} NOT NULL, failed_requests ${ty.int} NOT NULL, ` +
            'PRIMARY KEY (date, entity, entity_id, model_group))',
        },
        index('sy_daily_spend_entity_idx', 'sy_daily_spend (entity, entity_id, date)'),
      ]
    },
  },
  {
    version: 3,
    // Responses API responses (previous_response_id): the id, its owner key, and the response with its
    // conversation as JSON. created_at for a future expiry sweep.
    steps: (d) => [
      { sql: `CREATE TABLE IF NOT EXISTS sy_responses (id TEXT PRIMARY KEY, owner TEXT, created_at TEXT NOT NULL, data ${types(d).json} NOT NULL)` },
      { sql: 'CREATE INDEX IF NOT EXISTS sy_responses_created_idx ON sy_responses (created_at)' },
    ],
  },
  {
    version: 4,
    // MCP servers added through /v1/mcp/server, stored with the keys (plugins/mcp).
    steps: (d) => entitySteps(d, ENTITY_TABLES.mcp_server),
  },
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version

/** A CREATE INDEX CONCURRENTLY that failed leaves an INVALID index that IF NOT EXISTS would then skip: drop it first. */
async function dropInvalidIndex(conn: SqlExecutor, name: string): Promise<void> {
  const bad = await conn.query(
    'SELECT 1 FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = ? AND NOT i.indisvalid', [name])
  if (bad.length) await conn.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`)
}

/** Bring the schema up to SCHEMA_VERSION. A database already there is left untouched. */
export async function migrate(driver: SqlDriver, now: () => number): Promise<void> {
  const pg = driver.dialect === 'postgres'
  await driver.exclusive(async (conn) => {
    await conn.query('CREATE TABLE IF NOT EXISTS sy_schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)')
    const [row] = await conn.query('SELECT max(version) AS v FROM sy_schema_version')
    const current = Number(row?.v ?? 0)
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue
      for (const step of m.steps(driver.dialect)) {
        if (pg) {
          // Short-locking: a DDL step that waits more than 5 s for its lock gives up (and boot fails, to be
          // retried) rather than queueing every query on the table behind it. An index build CONCURRENTLY takes
          // no such lock but waits for older transactions to end, which is harmless, so it may wait.
          await conn.query(step.index ? 'SET lock_timeout = 0' : "SET lock_timeout = '5s'")
          if (step.index) await dropInvalidIndex(conn, step.index)
        }
        await conn.query(step.sql)
      }
      await conn.query('INSERT INTO sy_schema_version (version, applied_at) VALUES (?, ?)', [m.version, new Date(now()).toISOString()])
    }
  })
}
