/** The bundled plugins, by config name. Explicit imports, no globbing. */
import type { GatewayPlugin } from '../core/plugin.js'
import requestId from './request-id/index.js'
import auth from './auth/index.js'
import router from './router/index.js'
import retry from './retry/index.js'

export { requestId, auth, router, retry }

export const bundledPlugins: readonly GatewayPlugin<any>[] = [requestId, auth, router, retry]
