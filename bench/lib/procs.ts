/**
 * Every process the bench starts goes through here, so every one is stopped by its PID: at the end of its section,
 * at the end of the run, on an error, on SIGINT/SIGTERM, and, if this process is killed outright, by a watchdog
 * shell that outlives it by at most a second (the pattern of test/helpers/redis.ts).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { onCpus } from './cpus.js'

/** How long a stopped process may take to exit after SIGTERM before it gets SIGKILL: 10 s (a gateway drains). */
const STOP_GRACE_MS = 10_000

export interface Started {
  child: ChildProcess
  pid: number
  label: string
  /** File holding the process's stdout and stderr ('' when they are piped to the caller). */
  log: string
}

export interface SpawnOptions {
  env?: Record<string, string>
  /** taskset -c list; '' or absent = not pinned. */
  cpus?: string
  /** Send stdout + stderr to this file (kept for diagnosis) instead of a pipe. */
  log?: string
  /** An IPC channel (Node roles report readiness and results over it). */
  ipc?: boolean
}

const live = new Map<number, { started: Started; watchdog: ChildProcess }>()

/** Kills `pid` (SIGKILL) within a second after this process dies; itself stopped when the child exits. */
function watchdog(pid: number): ChildProcess {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${pid} 2>/dev/null`
  const w = spawn('/bin/sh', ['-c', script], { stdio: 'ignore', detached: true })
  w.unref()
  return w
}

export function start(label: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Started {
  const [file, argv] = onCpus(opts.cpus ?? '', cmd, args)
  const fd = opts.log ? openSync(opts.log, 'a') : null
  const out = fd ?? 'pipe'
  const stdio: StdioOptions = ['ignore', out, out, ...(opts.ipc ? ['ipc' as const] : [])]
  const child = spawn(file, argv, { env: { ...process.env, ...opts.env }, stdio })
  if (fd !== null) closeSync(fd)
  if (child.pid === undefined) throw new Error(`${label}: could not start ${file}`)
  const started: Started = { child, pid: child.pid, label, log: opts.log ?? '' }
  const dog = watchdog(child.pid)
  live.set(child.pid, { started, watchdog: dog })
  child.once('exit', () => {
    live.delete(child.pid!)
    if (dog.pid !== undefined && dog.exitCode === null) dog.kill('SIGKILL')
  })
  return started
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. */
export async function stop(p: Started, graceMs = STOP_GRACE_MS): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  const exited = once(p.child, 'exit')
  process.kill(p.pid, 'SIGTERM')
  const timer = setTimeout(() => { if (p.child.exitCode === null) process.kill(p.pid, 'SIGKILL') }, graceMs)
  await exited
  clearTimeout(timer)
}

/** Stop every process still running, all at once (each by its own PID). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map(({ started }) => stop(started).catch(() => {})))
}

/** Synchronous last resort for process.on('exit'): SIGKILL whatever is left. */
export function killAllNow(): void {
  for (const pid of live.keys()) {
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
  }
}

/** Last lines of a process's log file, for error messages. */
export function logTail(p: Started, lines = 20): string {
  if (!p.log) return ''
  try {
    return readFileSync(p.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

/** Waits for the role's 'ready' IPC message; fails if it exits first or takes over `timeoutMs`. */
export function readyMessage(p: Started, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${p.label} did not start in ${timeoutMs} ms\n${logTail(p)}`)), timeoutMs)
    p.child.once('message', () => { clearTimeout(timer); resolve() })
    p.child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${p.label} exited (${code}) while starting\n${logTail(p)}`)) })
  })
}

/** Polls until `probe()` is true; fails if the process exits first or after `timeoutMs`. */
export async function readyWhen(p: Started, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.label} exited (${p.child.exitCode ?? p.child.signalCode}) while starting\n${logTail(p)}`)
    if (await probe()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${p.label} did not start in ${timeoutMs} ms\n${logTail(p)}`)
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/** True once something accepts a TCP connection on 127.0.0.1:port and answers `probe` with a reply starting `expect`. */
export function tcpAnswers(port: number, probe: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    let buf = ''
    const done = (ok: boolean) => { sock.destroy(); resolve(ok) }
    sock.setTimeout(500, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write(probe))
    sock.on('data', (d) => {
      buf += d.toString()
      if (buf.length >= expect.length) done(buf.startsWith(expect))
    })
  })
}
