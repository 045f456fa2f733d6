/**
 * Boot a real gateway on 127.0.0.1, port 0, from a YAML string or a config object; returns its URL and a stop
 * function registered as a teardown. Logs go to an array so tests can assert on warnings.
 */
import type { Test } from 'tap'
import { createGateway, type Gateway, type GatewayOptions } from '../../core/gateway.js'
import { parseConfig, type RawConfig } from '../../core/config/load.js'
import { createLogger } from '../../core/logger.js'

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
  const env = opts.env ?? process.env
  const cfg = typeof config === 'string' ? parseConfig(config, { env }) : config
  const gateway = await createGateway({ ...opts, config: cfg, logger, env })
  const { url } = await gateway.listen(0, '127.0.0.1')
  const stop = () => gateway.stop()
  t.teardown(stop)
  return { url, gateway, logs, stop }
}
