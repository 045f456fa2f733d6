/**
 * A real gateway with the SQLite store (a file in a temp dir), auth (master key) and the keys plugin, plus a small
 * client for its management API. Shared by the test/plugins/keys-*.test.ts files.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { Store } from '../../core/store.js'
import { jsonCall } from '../helpers/http.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'

export const MASTER = 'sk-master-test-key'

export interface KeysGateway extends TestGateway {
  /** The gateway's store (to seed spend rows, or look at what was written). */
  store: Store
  /** The SQLite file (start another gateway on it to "restart", or as a second replica). */
  dbPath: string
  /** One HTTP call; `key` defaults to the master key (null sends none). */
  call(method: 'GET' | 'POST', path: string, body?: unknown, key?: string | null): Promise<{ status: number; body: any }>
  get(path: string, key?: string | null): Promise<{ status: number; body: any }>
  post(path: string, body?: unknown, key?: string | null): Promise<{ status: number; body: any }>
  /** Every log line the gateway wrote, as one string (to search for secrets). */
  logText(): string
}

export interface KeysGatewayOptions {
  /** An existing database file (a restarted gateway, a second replica); default: a new one in a temp dir. */
  dbPath?: string
  /** Leave the store plugin out (every management route then answers 400). */
  noStore?: boolean
  storeModelInDb?: boolean
  /** server.body_limit ('1mb'). */
  bodyLimit?: string
}

const MODELS = `model_list:
  - model_name: m
    litellm_params: { model: mock/m }
    model_info: { id: config-m }
  - model_name: other
    litellm_params: { model: mock/other }
    model_info: { id: config-other }
`

/** A database file in a fresh temp dir, removed when the test ends. */
export function tempDb(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'switchyard.db')
}

export async function startKeysGateway(t: Test, o: KeysGatewayOptions = {}): Promise<KeysGateway> {
  const dbPath = o.dbPath ?? tempDb(t)
  const pipeline = [
    ...(o.noStore ? [] : [`  - store-sqlite: { path: ${JSON.stringify(dbPath)} }`]),
    `  - auth: { master_key: ${MASTER} }`,
    `  - keys: { store_model_in_db: ${o.storeModelInDb === true} }`,
    '  - router',
  ].join('\n')
  const server = o.bodyLimit ? `server: { body_limit: ${o.bodyLimit} }\n` : ''
  const gw = await startGateway(t, `${server}pipeline:\n${pipeline}\n${MODELS}`)
  const call: KeysGateway['call'] = async (method, path, body, key = MASTER) => {
    return jsonCall(gw.url, method, path, body, key)
  }
  return {
    ...gw,
    store: gw.gateway.container.cradle.store!,
    dbPath,
    call,
    get: (path, key) => call('GET', path, undefined, key),
    post: (path, body, key) => call('POST', path, body ?? {}, key),
    logText: () => JSON.stringify(gw.logs),
  }
}
