/** The bundled plugins, by config name. Explicit imports, no globbing. */
import type { GatewayPlugin } from '../core/plugin.js'
import requestId from './request-id/index.js'
import auth from './auth/index.js'
import router from './router/index.js'
import retry from './retry/index.js'
import storeSqlite from './store-sqlite/index.js'
import storePostgres from './store-postgres/index.js'
import stateRedis from './state-redis/index.js'
import keys from './keys/index.js'
import budget from './budget/index.js'
import spend from './spend/index.js'
import cooldown from './cooldown/index.js'
import fallback from './fallback/index.js'
import rateLimit from './rate-limit/index.js'
import priorityQueue from './priority-queue/index.js'
import prometheus from './prometheus/index.js'
import logging from './logging/index.js'
import mcp from './mcp/index.js'
import ui from './ui/index.js'

export { requestId, auth, router, retry, storeSqlite, storePostgres, stateRedis, keys, budget, spend, cooldown, fallback, rateLimit, priorityQueue, prometheus, logging, mcp, ui }

export const bundledPlugins: readonly GatewayPlugin<any>[] = [
  requestId, auth, router, retry, storeSqlite, storePostgres, stateRedis, keys, budget, spend, cooldown, fallback, rateLimit, priorityQueue, prometheus, logging, mcp, ui,
]
