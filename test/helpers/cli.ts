/**
 * Child processes for the CLI tests: the built dist/core/cli.js (or npm) in a child with a clean environment, its
 * output collected, and the child killed by PID in teardown if it is still running. Loopback only.
 */
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path, { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = path.join(ROOT, 'dist', 'core', 'cli.js')
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it with \`npx tsc -p tsconfig.build.json\``)

/** No provider keys and no PORT/HOST from the developer's shell: the CLI must work with none. */
/**
 * Gateways spawned by tests keep their embedded database and spend spool in a temp dir of this test process, not in
 * the repo's ./data (SWITCHYARD_DATA_DIR is read by the store-sqlite and spend plugins).
 */
export const TEST_DATA_DIR = mkdtempSync(join(tmpdir(), 'sy-data-'))
process.once('exit', () => rmSync(TEST_DATA_DIR, { recursive: true, force: true }))
export const BASE_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', SWITCHYARD_DATA_DIR: TEST_DATA_DIR }

export type Exit = { code: number | null; signal: NodeJS.Signals | null }

export interface Proc {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<Exit>
}

export { freePort } from './net.js'

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

/** Resolves with the URL from the gateway's "listening" log line (JSON lines on stderr). A boot takes 1-2 s idle; the margin is for a loaded CI box running three test files at once. */
export async function waitListening(proc: Proc, ms = 45_000): Promise<string> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const m = /Switchyard listening on (http:\/\/[^"\s]+)/.exec(proc.stderr())
    if (m) return m[1]!
    if (proc.child.exitCode !== null) throw new Error(`gateway exited ${proc.child.exitCode}: ${proc.stderr()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`no "listening" line after ${ms} ms: ${proc.stderr()}`)
}
