/**
 * The published types stand on their own: `npm pack` the package, install the tarball into a fresh consumer project
 * (strict, NodeNext, `skipLibCheck: false`, so every .d.ts the package ships or pulls in is checked) and type-check
 * the README's "Writing a plugin" example there, `declare module 'switchyard'` augmentation included. This fails
 * when a public .d.ts names a type from a package that is only a devDependency here (koa's types, node's).
 *
 * Packs the dist/ built by `npm test` (or `npx tsc -p tsconfig.build.json`); the install is offline-first from the
 * npm cache that `npm ci` filled (test/helpers/pack.ts).
 */
import t from 'tap'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { consumerProject } from './helpers/pack.js'

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

// pack + install + a skipLibCheck-false tsc can outlast the runner's default per-file timeout on a loaded box.
t.setTimeout(300_000)

t.test('a consumer with skipLibCheck: false type-checks the README plugin against the packed package', { timeout: 240_000 }, async (t) => {
  const app = await consumerProject(t, { 'tagger.ts': PLUGIN, 'undeclared.ts': UNDECLARED, 'sdk.ts': SDK })
  const pack = app.pack
  t.equal(pack.code, 0, 'npm pack', { output: pack.out.slice(-2000) })
  const files = pack.files
  t.same(files.filter((f) => /(^|\/)test\/|\.test\.|(^|\/)bench\//.test(f)), [], 'no tests or benchmarks in the package')
  t.ok(files.includes('dist/core/index.d.ts'), 'the type entry point is packed')

  const install = await app.install()
  t.equal(install.code, 0, 'npm install of the tarball', { output: install.out.slice(-2000) })
  t.ok((await readdir(path.join(app.dir, 'node_modules', '@types')).catch((): string[] => [])).includes('koa'), "koa's types came with the package")

  const check = await app.tsc()
  t.equal(check.code, 0, 'tsc -p <consumer> exits 0', { output: check.out.slice(0, 4000) })
})
