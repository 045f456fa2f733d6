/**
 * store-postgres: the store on PostgreSQL, for several gateway replicas sharing one database. The SQL is the same
 * as the embedded store's (core/store/sql.ts); this plugin brings the pool (driver.ts).
 */
import { asValue } from 'awilix'
import { definePlugin } from '../../core/plugin.js'
import { gatewayError } from '../../core/errors.js'
import { createPostgresStore } from './driver.js'

export { createPgDriver, createPostgresStore, type PostgresStoreOptions } from './driver.js'

interface Options {
  /** postgresql://user:pass@host:port/db; absent = $DATABASE_URL, read at boot. */
  database_url?: string
  /** Pool size (LiteLLM: database_connection_pool_limit). */
  connection_limit: number
  /** Give up connecting after this long, ms. */
  connection_timeout_ms: number
  /** Server-side limit per statement, ms (0 = none). */
  statement_timeout_ms: number
}

export default definePlugin<Options>({
  name: 'store-postgres',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      database_url: { type: 'string', minLength: 1 },
      connection_limit: { type: 'integer', minimum: 1, default: 10 },
      connection_timeout_ms: { type: 'integer', minimum: 0, default: 5000 },
      statement_timeout_ms: { type: 'integer', minimum: 0, default: 30_000 },
    },
  },
  register(container, options) {
    const url = options.database_url ?? process.env.DATABASE_URL
    if (!url) {
      throw gatewayError('GW_ERR_PLUGIN_OPTIONS',
        "Invalid options for plugin 'store-postgres': set 'database_url' or the DATABASE_URL environment variable")
    }
    const logger = container.resolve('logger')
    container.register({
      store: asValue(createPostgresStore({
        url,
        max: options.connection_limit,
        connectionTimeoutMs: options.connection_timeout_ms,
        statementTimeoutMs: options.statement_timeout_ms,
        // The message only: the error may carry connection parameters, and the URL its password.
        onIdleError: (err) => logger.warn('store-postgres: a pooled connection failed; a new one is opened on next use', { error: err.message }),
      })),
    })
  },
  async start(cradle) {
    await cradle.store!.open()
  },
  async stop(cradle) {
    await cradle.store?.close()
  },
})
