#!/usr/bin/env node
/**
 * switchyard --config FILE --port N --host H
 *
 * With no --config, runs the bundled default preset (examples/default-preset/config.yaml): a `mock` model, so the
 * gateway answers with no provider key. SIGTERM/SIGINT drain in-flight requests and streams, then stop plugins in
 * reverse order; a second signal exits at once.
 */
import { parseArgs } from 'node:util'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGateway } from './gateway.js'
import { GatewayError } from './errors.js'
import { createLogger } from './logger.js'

const USAGE = `Usage: switchyard [--config FILE] [--port N] [--host H] [--debug]

  -c, --config FILE   gateway config (Switchyard or LiteLLM config.yaml); default: the bundled preset
  -p, --port N        port to listen on (default: server.port from --config, 4000 if unset;
                      with no --config: $PORT, else 4000)
      --host H        address to bind (default: server.host from the config, else 0.0.0.0)
      --debug         debug logging
  -h, --help          this text
  -v, --version       print the version`

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'examples', 'default-preset'))) return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error('cannot find the switchyard package root')
    dir = up
  }
}

async function main(): Promise<void> {
  let args
  try {
    args = parseArgs({
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        debug: { type: 'boolean', default: false },
        'detailed_debug': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
      strict: true,
    }).values
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`)
    process.exit(2)
  }
  const root = packageRoot()
  if (args.help) return void process.stdout.write(USAGE + '\n')
  if (args.version) {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }
    return void process.stdout.write(pkg.version + '\n')
  }
  let port: number | undefined
  if (args.port !== undefined) {
    port = Number(args.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`--port must be an integer from 0 to 65535, got "${args.port}"\n`)
      process.exit(2)
    }
  }
  const configFile = args.config ? path.resolve(args.config) : path.join(root, 'examples', 'default-preset', 'config.yaml')
  const debug = args.debug || args.detailed_debug
  const logger = createLogger({ level: debug ? 'debug' : 'info' })
  const gateway = await createGateway({ config: configFile, ...(debug ? { logger } : {}) })
  const log = debug ? logger : createLogger({ level: gateway.config.server.log_level === 'silent' ? 'silent' : 'info' })
  if (port === undefined && !args.config && process.env.PORT) port = Number(process.env.PORT)
  const { url } = await gateway.listen(port ?? gateway.config.server.port, args.host ?? gateway.config.server.host)
  log.info(`Switchyard listening on ${url}`, { config: configFile, models: gateway.container.cradle.models.list().map((m) => m.id) })

  let stopping = false
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${sig} again: exiting now`)
      process.exit(1)
    }
    stopping = true
    log.info(`${sig}: draining in-flight requests`)
    gateway.stop().then(
      () => {
        log.info('stopped')
        process.exit(0)
      },
      (err: unknown) => {
        log.error('shutdown failed', { err })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

main().catch((err: unknown) => {
  if (err instanceof GatewayError) process.stderr.write(`switchyard: ${err.message}\n`)
  else process.stderr.write(`switchyard: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
