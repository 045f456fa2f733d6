/**
 * Boot a real gateway on 127.0.0.1, port 0, from a YAML string or a config object; returns its URL and a stop
 * function registered as a teardown. Logs go to an array so tests can assert on warnings.
 */
import type { Test } from 'tap'
import { createGateway, type Gateway, type GatewayOptions } from '../../core/gateway.js'
import { parseConfig, type RawConfig } from '../../core/config/load.js'
import { createLogger } from '../../core/logger.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestGateway {
  url: string
  gateway: Gateway
  /** Every log line the gateway wrote, parsed. */
  logs: Array<Record<string, unknown>>
  stop(): Promise<void>
}

export async function startGateway(
  t: Test,
  config: string | RawConfig,
  opts: Omit<GatewayOptions, 'config' | 'logger'> & { env?: Record<string, string | undefined> } = {},
): Promise<TestGateway> {
  const logs: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: 'debug', write: (line) => void logs.push(JSON.parse(line)) })
  // Each gateway keeps its embedded database and spend spool in its own temp dir (not the repo's ./data), unless
  // the test names one (two gateways sharing a database).
  const given = opts.env ?? process.env
  const dataDir = given.SWITCHYARD_DATA_DIR ? null : mkdtempSync(join(tmpdir(), 'sy-gw-'))
  const env = dataDir ? { ...given, SWITCHYARD_DATA_DIR: dataDir } : given
  const cfg = typeof config === 'string' ? parseConfig(config, { env }) : config
  const gateway = await createGateway({ ...opts, config: cfg, logger, env })
  const { url } = await gateway.listen(0, '127.0.0.1')
  const stop = () => gateway.stop()
  t.teardown(async () => {
    await stop()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })
  return { url, gateway, logs, stop }
}
