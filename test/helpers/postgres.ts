/**
 * A real PostgreSQL server for a test: initdb in a temp dir, pg_ctl start on 127.0.0.1 and a free port, trust auth,
 * run as the `postgres` user (runuser) when the test runs as root, since the server refuses to run as root.
 * Tuned for speed, not durability (fsync off, small shared_buffers); each test file may start its own, in parallel.
 * Stopped (pg_ctl stop -m fast, then by PID if need be) and removed in teardown. Fails, never skips, when the
 * binaries are missing.
 *
 *   const pg = await startPostgres(t)
 *   const db = await pg.createDatabase()      // a fresh, empty database per store under test
 *   new Pool({ connectionString: pg.urlFor(db) })
 */
import { execFile, execFileSync } from 'node:child_process'
import { appendFileSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import type { Test } from 'tap'
import { freePort } from './net.js'

const run = promisify(execFile)
const AS_ROOT = process.getuid?.() === 0
/** How long pg_ctl may wait for a start or stop: 30 s. */
const PG_CTL_WAIT_S = '30'
const SUPERUSER = 'postgres'

export interface TestPostgres {
  /** URL of the default database (`switchyard`). */
  url: string
  port: number
  dataDir: string
  /** Create a new, empty database; returns its name. */
  createDatabase(): Promise<string>
  urlFor(database: string): string
  stop(): Promise<void>
  /** Stop (fast) and start again on the same port and data: an outage. `whileDown` runs while the server is down. */
  restart(opts?: { whileDown?: () => Promise<void> }): Promise<void>
  /** pg_dump of a database (default: the default one) as SQL text. */
  dump(database?: string): Promise<string>
  /** The postmaster's PID. */
  pid(): number
}


/** Run a PostgreSQL binary as the postgres user (runuser when root, as is). */
function asPostgres(cmd: string, args: string[]) {
  return AS_ROOT ? run('runuser', ['-u', SUPERUSER, '--', cmd, ...args]) : run(cmd, args)
}

function postgresIds(): { uid: number; gid: number } {
  const [uid, gid] = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, SUPERUSER], { encoding: 'utf8' }).trim()))
  return { uid: uid!, gid: gid! }
}

export async function startPostgres(t: Test): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-pg-'))
  const dataDir = join(dir, 'data')
  const sockDir = join(dir, 'sock')
  const logFile = join(dir, 'server.log')
  mkdirSync(sockDir)
  if (AS_ROOT) {
    const { uid, gid } = postgresIds()
    for (const p of [dir, sockDir]) chownSync(p, uid, gid)
  }
  let stopped = false
  let port = 0

  const cleanupOnExit = () => {
    // The test process died without its teardown: stop the server at once rather than leave it running.
    try { process.kill(readPid(), 'SIGQUIT') } catch { /* not running */ }
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', cleanupOnExit)

  function readPid(): number {
    return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  }

  await asPostgres('initdb', ['-D', dataDir, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'])
  appendFileSync(join(dataDir, 'postgresql.conf'), [
    '', '# test server: speed over durability',
    'fsync = off', 'synchronous_commit = off', 'full_page_writes = off', 'shared_buffers = 16MB',
    'max_connections = 200', 'log_min_messages = warning', 'log_min_error_statement = panic', '',
  ].join('\n'))

  async function start(): Promise<void> {
    await asPostgres('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', PG_CTL_WAIT_S,
      '-o', `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1`, 'start'])
  }

  async function stopServer(): Promise<void> {
    try {
      await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', PG_CTL_WAIT_S, 'stop'])
    } catch (err) {
      let pid = 0
      try { pid = readPid() } catch { return } // no postmaster.pid: not running
      process.kill(pid, 'SIGQUIT')
      throw err
    }
  }

  // Another test file may take the port between freePort() and the server's bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try {
      await start()
      break
    } catch (err) {
      if (attempt >= 3) {
        let log = ''
        try { log = readFileSync(logFile, 'utf8') } catch { /* none */ }
        throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`)
      }
    }
  }

  const urlFor = (database: string) => `postgresql://${SUPERUSER}@127.0.0.1:${port}/${database}`

  async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: urlFor('postgres') })
    await c.connect()
    try {
      return await fn(c)
    } finally {
      await c.end()
    }
  }

  let databases = 0
  async function createDatabase(): Promise<string> {
    const name = `sy_test_${++databases}`
    await admin((c) => c.query(`CREATE DATABASE ${name}`))
    return name
  }
  await admin((c) => c.query('CREATE DATABASE switchyard'))

  const stop = async () => {
    if (stopped) return
    stopped = true
    process.removeListener('exit', cleanupOnExit)
    try {
      await stopServer()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  t.teardown(stop)

  return {
    url: urlFor('switchyard'),
    port,
    dataDir,
    createDatabase,
    urlFor,
    stop,
    async restart(opts = {}) {
      await stopServer()
      try {
        await opts.whileDown?.()
      } finally {
        await start()
      }
    },
    async dump(database = 'switchyard') {
      const args = ['-h', '127.0.0.1', '-p', String(port), '-U', SUPERUSER, '--no-owner', database]
      const opts = { maxBuffer: 256 * 1024 * 1024 }
      // pg_dump 15.14+ wraps its output in \restrict <random key>: a fixed key keeps two dumps comparable.
      // Older pg_dump has no such option (and no random key).
      try {
        return (await run('pg_dump', ['--restrict-key=switchyardtest', ...args], opts)).stdout
      } catch (err) {
        if (!/restrict-key/.test(String((err as { stderr?: unknown }).stderr))) throw err
        return (await run('pg_dump', args, opts)).stdout
      }
    },
    pid: readPid,
  }
}
