/**
 * The published types stand on their own: `npm pack` the package, install the tarball into a fresh consumer project
 * (strict, NodeNext, `skipLibCheck: false`, so every .d.ts the package ships or pulls in is checked) and type-check
 * the README's "Writing a plugin" example there, `declare module 'switchyard'` augmentation included. This fails
 * when a public .d.ts names a type from a package that is only a devDependency here (koa's types, node's).
 *
 * Packs the dist/ built by `npm test` (or `npx tsc -p tsconfig.build.json`); the install is offline-first from the
 * npm cache that `npm ci` filled.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** The README's plugin example, as a consumer writes it. */
const PLUGIN = `import { definePlugin } from 'switchyard'

declare module 'switchyard' {
  interface GatewayState { tagger: { team: string; tags: string[] } }
}

export default definePlugin<{ team_header: string; max_tags: number }>({
  name: 'tagger',
  options: {
    type: 'object', additionalProperties: false,
    properties: {
      team_header: { type: 'string', default: 'x-team' },
      max_tags: { type: 'integer', minimum: 0, default: 8 },
    },
  },
  middleware(cradle, o) {
    return async function tagger(ctx, next) {
      ctx.state.tagger = { team: ctx.get(o.team_header) || 'unassigned', tags: [] }
      ctx.set('x-switchyard-tags', \`team:\${ctx.state.tagger.team}\`)
      await next()
      ctx.state.scope.cradle.log.info('tagged', { usage: ctx.state.usage })
    }
  },
})
`

/** Proves the augmentation is what makes \`tagger\` known: an undeclared field is still an error. */
const UNDECLARED = `import { definePlugin } from 'switchyard'
export default definePlugin({
  name: 'x',
  middleware() {
    return async function x(ctx, next) {
      // @ts-expect-error not declared by any augmentation
      ctx.state.notDeclared = 1
      await next()
    }
  },
})
`

/** The SDK from the package root, typed with the official client's message type. */
const SDK = `import { completion, embedding, RateLimitError } from 'switchyard'
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions'
const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }]
export async function run(): Promise<number> {
  const r = await completion({ model: 'mock/x', messages })
  const e = await embedding({ model: 'mock/e', input: 'x' })
  const v: number[] = e.data[0]!.embedding
  try { await completion({ model: 'mock/x', messages, mock_response: 'litellm.RateLimitError' }) } catch (err) { if (err instanceof RateLimitError) return err.status }
  return (r.choices[0]!.message.content ?? '').length + v.length
}
`

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (out += d))
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(killer)
      resolve({ code, out })
    })
  })
}

t.test('a consumer with skipLibCheck: false type-checks the README plugin against the packed package', { timeout: 240_000 }, async (t) => {
  await access(path.join(root, 'dist', 'core', 'index.d.ts')).catch(() => {
    throw new Error('dist/ is not built: run `npx tsc -p tsconfig.build.json` first (npm test does)')
  })
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-pkg-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  // --ignore-scripts: pack the dist/ already built instead of rebuilding it (prepare) inside the test.
  const pack = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root, 60_000)
  t.equal(pack.code, 0, 'npm pack', { output: pack.out.slice(-2000) })
  const packed = JSON.parse(pack.out.slice(pack.out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>
  const files = packed[0]!.files.map((f) => f.path)
  t.same(files.filter((f) => /(^|\/)test\/|\.test\.|(^|\/)bench\//.test(f)), [], 'no tests or benchmarks in the package')
  t.ok(files.includes('dist/core/index.d.ts'), 'the type entry point is packed')

  const app = path.join(dir, 'app')
  await mkdir(app)
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }))
  await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023'],
      strict: true, skipLibCheck: false, noEmit: true,
    },
    include: ['*.ts'],
  }))
  await writeFile(path.join(app, 'tagger.ts'), PLUGIN)
  await writeFile(path.join(app, 'undeclared.ts'), UNDECLARED)
  await writeFile(path.join(app, 'sdk.ts'), SDK)

  const tarball = path.join(dir, packed[0]!.filename)
  const install = await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app, 180_000)
  t.equal(install.code, 0, 'npm install of the tarball', { output: install.out.slice(-2000) })
  t.ok((await readdir(path.join(app, 'node_modules', '@types')).catch((): string[] => [])).includes('koa'), "koa's types came with the package")

  const check = await run(process.execPath, [tsc, '-p', app], app, 60_000)
  t.equal(check.code, 0, 'tsc -p <consumer> exits 0', { output: check.out.slice(0, 4000) })
})
