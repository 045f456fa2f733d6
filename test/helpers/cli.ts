/**
 * Child processes for the CLI tests: the built dist/core/cli.js (or npm) in a child with a clean environment, its
 * output collected, and the child killed by PID in teardown if it is still running. Loopback only.
 */
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = path.join(ROOT, 'dist', 'core', 'cli.js')
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it with \`npx tsc -p tsconfig.build.json\``)

/** No provider keys and no PORT/HOST from the developer's shell: the CLI must work with none. */
export const BASE_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test' }

export type Exit = { code: number | null; signal: NodeJS.Signals | null }

export interface Proc {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<Exit>
}

export async function freePort(): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as net.AddressInfo).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

export function spawnProc(t: Test, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...BASE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<Exit>((r) => child.on('exit', (code, signal) => r({ code, signal })))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL')
  })
  return { child, stdout: () => out, stderr: () => err, exited }
}
