/**
 * The package as a user gets it: `npm pack` the built dist/ once per test process, then install the tarball into a
 * fresh consumer project in a temp dir and run the consumer's tsc and node there. The tests that use this import
 * `switchyard` by its name, through the `exports` map, never by a path into the repo.
 *
 *   const pkg = await packPackage()                       // once per process; removed when the process's tests end
 *   const app = await consumerProject(t, { 'main.ts': SOURCE }, { emit: true })
 *   t.equal((await app.install()).code, 0)
 *   t.equal((await app.tsc()).code, 0)
 *   const out = await app.node('out/main.js', { UPSTREAM: up.url })
 *
 * The install is offline-first from the npm cache that `npm ci` filled (`--prefer-offline --no-audit --no-fund`) and
 * runs no install scripts (`--ignore-scripts`), so native modules (better-sqlite3) stay unbuilt, as in a user's
 * `npm install --ignore-scripts`. Packs the dist/ built by `npm test` (or `npx tsc -p tsconfig.build.json`).
 */
import tap, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The repo's TypeScript compiler; it compiles the consumer project with the consumer's own tsconfig. */
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

export interface RunResult {
  code: number | null
  /** stdout and stderr, interleaved. */
  out: string
  stdout: string
  /** True when the process outlived timeoutMs and was killed. */
  timedOut: boolean
}

/** Run a command to completion; SIGKILL after timeoutMs. Never rejects. */
export function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number, env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false', ...env } })
    let out = ''
    let stdout = ''
    let timedOut = false
    child.stdout.on('data', (d: Buffer) => {
      out += d
      stdout += d
    })
    child.stderr.on('data', (d: Buffer) => (out += d))
    const killer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (err) => {
      clearTimeout(killer)
      resolve({ code: -1, out: out + String(err), stdout, timedOut })
    })
    child.on('close', (code) => {
      clearTimeout(killer)
      resolve({ code, out, stdout, timedOut })
    })
  })
}

export interface PackedPackage {
  /** `npm pack`'s exit code and output, for the caller's assertion. */
  code: number | null
  out: string
  /** Absolute path of the .tgz (empty when the pack failed). */
  tarball: string
  /** The paths inside the package. */
  files: string[]
}

let packed: Promise<PackedPackage> | null = null

/** `npm pack` the repo once per process, into a temp dir removed when the process's tests end. */
export function packPackage(): Promise<PackedPackage> {
  packed ??= (async () => {
    await access(path.join(root, 'dist', 'core', 'index.d.ts')).catch(() => {
      throw new Error('dist/ is not built: run `npx tsc -p tsconfig.build.json` first (npm test does)')
    })
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-pack-'))
    tap.teardown(() => rm(dir, { recursive: true, force: true }))
    // --ignore-scripts: pack the dist/ already built instead of rebuilding it (prepare) inside the test.
    const r = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root, 60_000)
    if (r.code !== 0) return { code: r.code, out: r.out, tarball: '', files: [] }
    const list = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>
    return { code: r.code, out: r.out, tarball: path.join(dir, list[0]!.filename), files: list[0]!.files.map((f) => f.path) }
  })()
  return packed
}

export interface ConsumerOptions {
  /** Compile to `out/` (to run with node) instead of `noEmit`. */
  emit?: boolean
}

export interface ConsumerProject {
  /** The project's directory (package.json, tsconfig.json, the sources, node_modules after install()). */
  dir: string
  pack: PackedPackage
  /** `npm install <tarball>`, offline-first, without install scripts. */
  install(): Promise<RunResult>
  /** `tsc -p <dir>`: strict, NodeNext, skipLibCheck false. */
  tsc(): Promise<RunResult>
  /** `node <file> [args]` in the project, with extra env; killed after timeoutMs. */
  node(fileAndArgs: string | readonly string[], env?: Record<string, string>, timeoutMs?: number): Promise<RunResult>
}

/**
 * A fresh ESM consumer project in a temp dir (removed at the end of `t`) holding `sources` (name -> text), with a
 * strict NodeNext tsconfig that checks every .d.ts the package ships or pulls in (`skipLibCheck: false`).
 */
export async function consumerProject(t: Test, sources: Record<string, string>, opts: ConsumerOptions = {}): Promise<ConsumerProject> {
  const pack = await packPackage()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-consumer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }))
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023'],
      strict: true, skipLibCheck: false,
      ...(opts.emit ? { outDir: 'out', rootDir: '.' } : { noEmit: true }),
    },
    include: ['*.ts'],
  }))
  for (const [name, text] of Object.entries(sources)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true })
    await writeFile(path.join(dir, name), text)
  }
  return {
    dir,
    pack,
    install: () => run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', pack.tarball], dir, 180_000),
    tsc: () => run(process.execPath, [tsc, '-p', dir], dir, 120_000),
    // Without the test runner's NODE_OPTIONS (its loader hooks): the consumer runs under plain node.
    node: (fileAndArgs, env = {}, timeoutMs = 60_000) =>
      run(process.execPath, typeof fileAndArgs === 'string' ? [fileAndArgs] : fileAndArgs, dir, timeoutMs, { NODE_OPTIONS: '', ...env }),
  }
}
