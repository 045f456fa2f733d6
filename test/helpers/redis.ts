/**
 * A real redis-server for a test: /usr/bin/redis-server on 127.0.0.1, a free port, a temp dir, no persistence (so a
 * restart loses every key, as a crashed cache node does). Stopped by PID in teardown, and by a watchdog if the test
 * process dies without its teardown (killed on a timeout), so no server outlives its test. Fails, never skips, when
 * the binary is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './net.js'

export { freePort }

const REDIS_SERVER = '/usr/bin/redis-server'
/** How long a start may take before the test fails: 10 s. */
const START_TIMEOUT_MS = 10_000

export interface TestRedis {
  url: string
  port: number
  stop(): Promise<void>
  /** Stop and start again on the same port, after `downForMs` (default 0); every key is gone afterwards. */
  restart(downForMs?: number): Promise<void>
  pid(): number | undefined
}


/** True once the server answers PING with PONG. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    let buf = ''
    const done = (ok: boolean) => { sock.destroy(); resolve(ok) }
    sock.setTimeout(500, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => {
      buf += d.toString()
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
  })
}

/** Kills the server (SIGKILL) within a second of this test process's death; stopped with the server. */
function watchdog(serverPid: number, dir: string): ChildProcess {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${serverPid} 2>/dev/null; rm -rf '${dir}'`
  const w = spawn('/bin/sh', ['-c', script], {
    stdio: 'ignore',
    detached: true,   // its own process group: whatever kills the test's group must not take the watchdog with it
  })
  w.unref()
  return w
}

export async function startRedis(t: Test): Promise<TestRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'sy-redis-'))
  let child: ChildProcess | null = null
  let guard: ChildProcess | null = null
  let output = ''
  let stopped = false
  let restarting: Promise<void> = Promise.resolve()

  async function start(): Promise<void> {
    if (stopped) return   // a teardown ran during a restart: do not start a server nobody will stop
    output = ''
    const c = spawn(REDIS_SERVER, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--protected-mode', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    c.stdout!.on('data', (d) => { output += d })
    c.stderr!.on('data', (d) => { output += d })
    const spawned = new Promise<void>((resolve, reject) => {
      c.once('spawn', resolve)
      c.once('error', (err) => reject(new Error(`cannot start ${REDIS_SERVER}: ${err.message}`)))
    })
    await spawned
    guard = watchdog(c.pid!, dir)
    const deadline = Date.now() + START_TIMEOUT_MS
    while (!(await pong(port))) {
      if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}):\n${output}`)
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}:\n${output}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  async function stopServer(): Promise<void> {
    const c = child
    child = null
    if (guard?.pid !== undefined && guard.exitCode === null) process.kill(guard.pid, 'SIGKILL')
    guard = null
    if (!c || c.exitCode !== null || c.pid === undefined) return
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
    process.kill(c.pid, 'SIGKILL')   // no persistence to flush; a kill is also what an outage looks like
    await exited
  }

  await start()
  const stop = async () => {
    if (stopped) return
    stopped = true
    await restarting.catch(() => {})
    await stopServer()
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(stop)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart(downForMs = 0) {
      restarting = (async () => {
        await stopServer()
        if (downForMs > 0) await new Promise((r) => setTimeout(r, downForMs))
        await start()
      })()
      return restarting
    },
    pid: () => child?.pid,
  }
}
