/**
 * store-sqlite: the embedded default store. One SQLite file (WAL) that several gateway processes on one machine may
 * share; all SQLite work runs in a worker thread (store.ts, worker.ts) so the request path never blocks on disk.
 */
import { mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { asValue } from 'awilix'
import { definePlugin } from '../../core/plugin.js'
import { SqliteStore } from './store.js'

export { SqliteStore, type SqliteStoreOptions } from './store.js'

interface Options {
  /**
   * Database file, resolved against the working directory at boot; its directory is created. Default
   * $SWITCHYARD_DATA_DIR/switchyard.db, else ./data/switchyard.db.
   */
  path?: string
  /** Wait for another process's write lock up to this long, ms. */
  busy_timeout_ms: number
}

export default definePlugin<Options>({
  name: 'store-sqlite',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: { type: 'string', minLength: 1 },
      busy_timeout_ms: { type: 'integer', minimum: 0, default: 5000 },
    },
  },
  register(container, options) {
    const path = resolve(process.cwd(), options.path ?? join(container.cradle.env.SWITCHYARD_DATA_DIR || './data', 'switchyard.db'))
    mkdirSync(dirname(path), { recursive: true })
    container.register({ store: asValue(new SqliteStore({ path, busyTimeoutMs: options.busy_timeout_ms })) })
  },
  async start(cradle) {
    await cradle.store!.open()
  },
  async stop(cradle) {
    await cradle.store?.close()
  },
})
