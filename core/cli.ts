#!/usr/bin/env node
/**
 * switchyard --config FILE --port N --host H --num_workers N
 *
 * With no --config, runs the bundled default preset (examples/default-preset/config.yaml): a `mock` model, so the
 * gateway answers with no provider key. SIGTERM/SIGINT drain in-flight requests and streams, then stop plugins in
 * reverse order; a second signal exits at once.
 *
 * --port/--host/--num_workers fall back to $PORT/$HOST/$NUM_WORKERS, as LiteLLM's CLI does (click envvar options),
 * then to the config's server section. With --num_workers N > 1 this process becomes a node:cluster primary that
 * only supervises: N workers each run a whole gateway and share the listening socket.
 */
import { parseArgs } from 'node:util'
import cluster, { type Worker } from 'node:cluster'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import type { Gateway } from './gateway.js'
import { GatewayError } from './errors.js'
import { createLogger, type Logger } from './logger.js'
import { packageRoot, packageVersion } from './package.js'

const USAGE = `Usage: switchyard [--config FILE] [--port N] [--host H] [--num_workers N] [--strict] [--debug]

  -c, --config FILE      gateway config (Switchyard or LiteLLM config.yaml); default: the bundled preset
  -p, --port N           port to listen on; default: $PORT, else server.port from the config, else 4000
      --host H           address to bind; default: $HOST, else server.host from the config, else 0.0.0.0
      --num_workers N    worker processes sharing the port (node:cluster); default: $NUM_WORKERS, else 1.
                         Also --num-workers. A worker that dies is replaced; SIGTERM drains them all
      --strict           config keys Switchyard does not support are a boot error, not a warning
      --debug            debug logging
      --detailed_debug   the same as --debug (LiteLLM's flag)
  -h, --help             this text
  -v, --version          print the version`

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  num_workers: { type: 'string' },
  'num-workers': { type: 'string' },
  strict: { type: 'boolean', default: false },
  debug: { type: 'boolean', default: false },
  detailed_debug: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false },
} as const

type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values']

/** What to run, after flags, env vars and their validation. Port/host undefined: the config's server section. */
interface Settings {
  configFile: string
  port: number | undefined
  host: string | undefined
  workers: number
  strict: boolean
  debug: boolean
}

/** The primary asks a worker to drain over IPC (see shutdownWorkers for why not with a second OS signal). */
interface ShutdownMessage {
  switchyard: 'shutdown'
  signal: NodeJS.Signals
}

/** A usage error: the message, exit 2 (as for an unknown flag). */
function usageError(message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}


function parseCli(): Args {
  try {
    return parseArgs({ options: OPTIONS, strict: true }).values
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`)
    process.exit(2)
  }
}

/**
 * The flag, else the env var (named `$VAR` in messages so a bad value is traced to where it was set). An empty env
 * var counts as unset: `PORT=` in a compose file means "no value", not port 0.
 */
function flagOrEnv(flag: string | undefined, flagName: string, envName: string): { value: string; from: string } | undefined {
  if (flag !== undefined) return { value: flag, from: flagName }
  const env = process.env[envName]
  return env ? { value: env, from: `$${envName}` } : undefined
}

function parsePort(v: { value: string; from: string } | undefined): number | undefined {
  if (!v) return undefined
  const port = Number(v.value)
  // Digits only: Number('') is 0 and Number('0x10') is 16, neither is what the user meant.
  if (!/^\d+$/.test(v.value) || port > 65535) usageError(`${v.from} must be an integer from 0 to 65535, got "${v.value}"`)
  return port
}

function parseHost(v: { value: string; from: string } | undefined): string | undefined {
  if (!v) return undefined
  // Catches the usual mistakes (a URL, a stray space) here with a clear message, rather than as getaddrinfo ENOTFOUND.
  if (!/^[^\s/]+$/.test(v.value)) usageError(`${v.from} must be an address or host name to bind (e.g. 0.0.0.0 or 127.0.0.1), got "${v.value}"`)
  return v.value
}

function parseWorkers(v: { value: string; from: string } | undefined): number {
  if (!v) return 1
  const n = Number(v.value)
  if (!/^\d+$/.test(v.value) || n < 1) usageError(`${v.from} must be an integer of 1 or more, got "${v.value}"`)
  return n
}

function settingsFrom(args: Args, root: string): Settings {
  const workersFlag = args.num_workers ?? args['num-workers']
  return {
    configFile: args.config ? path.resolve(args.config) : path.join(root, 'examples', 'default-preset', 'config.yaml'),
    port: parsePort(flagOrEnv(args.port, '--port', 'PORT')),
    host: parseHost(flagOrEnv(args.host, '--host', 'HOST')),
    workers: parseWorkers(flagOrEnv(workersFlag, args.num_workers !== undefined ? '--num_workers' : '--num-workers', 'NUM_WORKERS')),
    strict: args.strict,
    debug: args.debug || args.detailed_debug,
  }
}

/** The boot log's `auth` field: whether a request without a key gets through, in words. */
function authState(gateway: Gateway): string {
  const auth = gateway.plugins.find((p) => p.plugin.name === 'auth')
  if (!auth) return 'OFF: no auth plugin in the pipeline, every request is accepted'
  const master = typeof auth.options.master_key === 'string' && auth.options.master_key !== ''
  const keys = Array.isArray(auth.options.keys) ? auth.options.keys.length : 0
  const statics = `${keys} static key${keys === 1 ? '' : 's'}`
  const store = gateway.container.cradle.store
  const virtual = store ? ` + virtual keys (${store.kind})` : ''
  if (master && keys > 0) return `on (master key + ${statics}${virtual})`
  if (master) return `on (master key${virtual})`
  if (keys > 0) return `on (${statics}${virtual})`
  return store
    ? 'OFF: no master_key, every request is accepted (a virtual key presented is still checked and its budgets apply)'
    : 'OFF: no master_key, every request is accepted'
}

function urlOf(address: string, port: number): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`
}

/**
 * The address the socket is really bound to (what `--host localhost` resolved to, or 0.0.0.0), plus, for a
 * wildcard bind, a loopback URL to connect to: 0.0.0.0 is where it listens, not an address to call.
 */
function boundAddress(addr: AddressInfo): { url: string; connect?: string } {
  const url = urlOf(addr.address, addr.port)
  const wildcard = addr.address === '0.0.0.0' || addr.address === '::'
  return wildcard ? { url, connect: urlOf('127.0.0.1', addr.port) } : { url }
}

function isShutdownMessage(m: unknown): m is ShutdownMessage {
  return !!m && typeof m === 'object' && (m as ShutdownMessage).switchyard === 'shutdown'
}

/**
 * Drain on SIGTERM/SIGINT (or, in a worker, the primary's shutdown message); a second OS signal exits at once.
 * The primary's message does not count as that second signal: Ctrl-C in a terminal reaches every process of the
 * group, so a worker typically gets both the SIGINT and the primary's message for one keypress.
 * Installed before the gateway boots, so a request to stop that arrives meanwhile is kept and acted on once it is
 * up (plugins stopped in order), not lost or cut short.
 */
function drainOnShutdown(log: () => Logger): (gateway: Gateway) => void {
  let gateway: Gateway | undefined
  let requested: string | undefined
  let stopping = false
  let signals = 0
  const drain = () => {
    if (stopping || !gateway || !requested) return
    stopping = true
    log().info(`${requested}: draining in-flight requests`)
    gateway.stop().then(
      () => {
        log().info('stopped')
        process.exit(0)
      },
      (err: unknown) => {
        log().error('shutdown failed', { err })
        process.exit(1)
      },
    )
  }
  const request = (reason: string) => {
    requested ??= reason
    if (!gateway) log().info(`${reason}: stopping once the gateway is up (again: exit now)`)
    drain()
  }
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      log().warn(`${sig} again: exiting now`)
      process.exit(1)
    }
    request(sig)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  if (cluster.isWorker) process.on('message', (m: unknown) => isShutdownMessage(m) && request(m.signal))
  return (g) => {
    gateway = g
    drain()
  }
}

/** One gateway in this process: the whole server without --num_workers, one worker with it. */
async function serve(s: Settings): Promise<void> {
  const logger = createLogger({ level: s.debug ? 'debug' : 'info' })
  let log = logger
  const ready = drainOnShutdown(() => log)
  // Imported here, not at the top: --help, --version, a bad flag and the --num_workers primary never load the
  // gateway (about 0.5 s of module loading and schema compiling).
  const { createGateway } = await import('./gateway.js')
  const gateway = await createGateway({ config: s.configFile, strict: s.strict, ...(s.debug ? { logger } : {}) })
  if (!s.debug) log = createLogger({ level: gateway.config.server.log_level === 'silent' ? 'silent' : 'info' })
  const { server } = await gateway.listen(s.port ?? gateway.config.server.port, s.host ?? gateway.config.server.host)
  const { url, connect } = boundAddress(server.address() as AddressInfo)
  log.info(`Switchyard listening on ${url}`, {
    auth: authState(gateway),
    ...(connect ? { connect } : {}),
    pid: process.pid,
    ...(cluster.isWorker ? { worker: cluster.worker!.id } : {}),
    config: s.configFile,
    models: gateway.container.cradle.models.list().map((m) => m.id),
  })
  ready(gateway)
}

/**
 * The cluster primary: forks the workers, replaces one that dies, and on SIGTERM/SIGINT has them drain, then exits
 * (0 when every worker stopped cleanly). The first worker boots alone: a config error is then reported once and
 * stops the start (exit 1), instead of N copies and a crash loop.
 */
function supervise(workers: number, log: Logger): void {
  const live = new Set<Worker>()
  const listened = new WeakSet<Worker>()
  let booting = true
  let shuttingDown = false
  let exitCode = 0
  let stopSignal: NodeJS.Signals | undefined

  const fork = () => live.add(cluster.fork())
  const finishIfIdle = () => {
    if (live.size > 0) return
    log.info('stopped', { exitCode })
    process.exit(exitCode)
  }
  const shutdownWorkers = (signal: NodeJS.Signals) => {
    shuttingDown = true
    stopSignal = signal
    for (const w of live) {
      // A worker still booting may not listen for messages yet: it gets the signal (nothing is in flight there).
      if (!listened.has(w)) {
        w.process.kill(signal)
        continue
      }
      // IPC, not a second OS signal (see drainOnShutdown); a worker whose channel is gone gets the signal itself.
      w.send({ switchyard: 'shutdown', signal } satisfies ShutdownMessage, undefined, (err: Error | null) => {
        if (err) w.process.kill(signal)
      })
    }
    finishIfIdle()
  }
  const onSignal = (sig: NodeJS.Signals) => {
    if (shuttingDown) {
      log.warn(`${sig} again: killing the workers now`)
      for (const w of live) w.process.kill('SIGKILL')
      process.exit(1)
    }
    log.info(`${sig}: stopping ${live.size} worker${live.size === 1 ? '' : 's'}`)
    shutdownWorkers(sig)
  }

  cluster.on('listening', (w) => {
    listened.add(w)
    log.info('worker started', { worker: w.id, pid: w.process.pid })
    if (!booting || shuttingDown) return
    if (live.size === 1) for (let i = 1; i < workers; i++) fork()
    if ([...live].every((x) => listened.has(x)) && live.size === workers) booting = false
  })
  cluster.on('exit', (w, code, signal) => {
    live.delete(w)
    if (shuttingDown) {
      // Clean: drained (0), or still booting and ended by the signal it was sent.
      if (code !== 0 && signal !== stopSignal) exitCode = 1
      return finishIfIdle()
    }
    if (booting) {
      log.error('a worker failed to start: stopping', { worker: w.id, pid: w.process.pid, code, signal })
      exitCode = 1
      return shutdownWorkers('SIGTERM')
    }
    log.error('worker died: starting a replacement', { worker: w.id, pid: w.process.pid, code, signal })
    // One that never got to listen fails at boot (a dependency down?): back off rather than spin.
    setTimeout(() => !shuttingDown && fork(), listened.has(w) ? 0 : 1000)
  })
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  log.info(`starting ${workers} workers`, { pid: process.pid })
  fork()
}

async function main(): Promise<void> {
  const args = parseCli()
  const root = packageRoot()
  if (args.help) return void process.stdout.write(USAGE + '\n')
  if (args.version) return void process.stdout.write((await packageVersion()) + '\n')
  // Workers re-run this file with the same argv and env: they validate the same way and go straight to serve().
  const settings = settingsFrom(args, root)
  if (settings.workers > 1 && cluster.isPrimary) return supervise(settings.workers, createLogger({ level: settings.debug ? 'debug' : 'info' }))
  await serve(settings)
}

main().catch((err: unknown) => {
  if (err instanceof GatewayError) process.stderr.write(`switchyard: ${err.message}\n`)
  else process.stderr.write(`switchyard: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
