/**
 * The SDK as a user installs it: `npm pack`, `npm install --ignore-scripts <tarball>` into a fresh consumer project
 * (so better-sqlite3's native module is never built), compile a TypeScript program there with the consumer's
 * tsconfig (strict, NodeNext, `skipLibCheck: false`) and run it with node against fake OpenAI upstreams on 127.0.0.1
 * that live in this test process. The program imports `switchyard`, `switchyard/gateway` and `switchyard/plugin` by
 * name and prints one JSON line this test asserts on:
 *
 * - completion(): plain, streamed (the last chunk carries usage), aborted through an AbortController (rejects, and
 *   the upstream sees the hang-up); embedding();
 * - new Router({ model_list }) with two deployments of one model_name, the first (order 1) answering 500: the call
 *   succeeds through the second;
 * - createGateway() from `switchyard/gateway` with a plugin typed by `switchyard/plugin` (its GatewayState augmented
 *   there), listening on port 0, one call through it;
 * - better-sqlite3 is not loaded by any of that, and configuring the SQLite store is what needs it: a clear error.
 *
 * A second check imports each entry point in a fresh node process and compares process.getActiveResourcesInfo(),
 * the open file descriptors and the timers, sockets, servers, workers and files opened during the import: importing
 * the package has no side effects.
 *
 * Packs the dist/ built by `npm test` (or `npx tsc -p tsconfig.build.json`).
 */
import t from 'tap'
import { access, readdir } from 'node:fs/promises'
import path from 'node:path'
import { consumerProject, type ConsumerProject } from './helpers/pack.js'
import {
  startUpstream, closedPort, defaultChat, defaultEmbeddings, errorReply, delay, expectedEmbedding, DEFAULT_REPLY, type Behaviour,
} from './helpers/upstream.js'

/** The consumer's program. UPSTREAM is the fake's base URL (http://127.0.0.1:PORT/v1). */
const MAIN = `import { createRequire } from 'node:module'
import { completion, embedding, Router, GatewayError, type ChatChunk } from 'switchyard'
import type { GatewayState } from 'switchyard'
import { createGateway } from 'switchyard/gateway'
import { definePlugin, type GatewayMiddleware } from 'switchyard/plugin'

declare module 'switchyard/plugin' {
  interface GatewayState { consumerTag: { calls: number } }
}
/** The augmentation through switchyard/plugin is the root's GatewayState too: one interface, two names. */
export type TagCalls = GatewayState['consumerTag']['calls']

const base = process.env.UPSTREAM
if (!base) throw new Error('UPSTREAM is not set')
const key = 'sk-consumer'
const messages = [{ role: 'user' as const, content: 'hello from the consumer' }]
const out: Record<string, unknown> = {}
const loaded = (name: string) => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/' + name + '/'))

/** Runs one part; a throw is recorded as that part's result, so one failure does not hide the others. */
async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    out[name] = await fn()
  } catch (err) {
    out[name] = { error: (err as Error).name + ': ' + (err as Error).message }
  }
}

await step('plain', async () => {
  const r = await completion({ model: 'openai/gpt-4o-mini', messages, api_base: base, api_key: key })
  return { content: r.choices[0]?.message.content ?? null, totalTokens: r.usage?.total_tokens ?? null }
})

await step('stream', async () => {
  const chunks: ChatChunk[] = []
  for await (const c of await completion({ model: 'openai/gpt-4o-mini', messages, stream: true, apiBase: base, apiKey: key })) chunks.push(c)
  return {
    chunks: chunks.length,
    text: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''),
    lastUsage: chunks.at(-1)?.usage ?? null,
  }
})

await step('abort', async () => {
  const ac = new AbortController()
  const started = Date.now()
  const aborter = setTimeout(() => ac.abort(), 300)
  try {
    await completion({ model: 'openai/slow', messages, api_base: base, api_key: key, signal: ac.signal })
    return { rejected: false }
  } catch (err) {
    return { rejected: true, name: (err as Error).name, gatewayError: err instanceof GatewayError, ms: Date.now() - started }
  } finally {
    clearTimeout(aborter)
  }
})

await step('embedding', async () => {
  const e = await embedding({ model: 'openai/text-embedding-3-small', input: 'consumer text', api_base: base, api_key: key })
  const vector: number[] = e.data[0]!.embedding
  return { vector }
})

await step('router', async () => {
  const before = process.getActiveResourcesInfo()
  const router = new Router({
    model_list: [
      { model_name: 'chat', litellm_params: { model: 'openai/broken', api_base: base, api_key: key, order: 1 } },
      { model_name: 'chat', litellm_params: { model: 'openai/gpt-4o-mini', api_base: base, api_key: key, order: 2 } },
    ],
    numRetries: 1,
  })
  const constructed = process.getActiveResourcesInfo()
  try {
    const r = await router.completion({ model: 'chat', messages, priority: 0 })
    return { content: r.choices[0]?.message.content ?? null, resourcesBefore: before, resourcesConstructed: constructed }
  } finally {
    await router.close()
  }
})

const tag = definePlugin<{ header: string }>({
  name: 'consumer-tag',
  options: { type: 'object', additionalProperties: false, properties: { header: { type: 'string', default: 'x-consumer-tag' } } },
  middleware(_cradle, o): GatewayMiddleware {
    return async function consumerTag(ctx, next) {
      ctx.state.consumerTag = { calls: 1 }
      await next()
      ctx.set(o.header, String(ctx.state.consumerTag.calls))
    }
  },
})

await step('gateway', async () => {
  // No store in the chain: the default chain's embedded SQLite store would need better-sqlite3 built.
  const gw = await createGateway({
    config: {
      model_list: [{ model_name: 'gw-model', litellm_params: { model: 'openai/gpt-4o-mini', api_base: base, api_key: key } }],
      pipeline: ['request-id', 'consumer-tag', 'router'],
      upstream: ['retry'],
      server: { log_level: 'silent' },
    },
    plugins: [tag],
  })
  try {
    const { url, port } = await gw.listen(0, '127.0.0.1')
    const res = await fetch(url + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gw-model', messages }),
    })
    const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }> }
    return { port, status: res.status, tag: res.headers.get('x-consumer-tag'), content: body.choices?.[0]?.message?.content ?? null }
  } finally {
    await gw.stop()
  }
})

out.sqliteLoadedBeforeStore = loaded('better-sqlite3')
await step('sqlite', async () => {
  const gw = await createGateway({
    config: { pipeline: [{ 'store-sqlite': { path: process.env.SQLITE_PATH } }, 'router'], upstream: [], server: { log_level: 'silent' } },
  })
  try {
    await gw.start()
    return { started: true }
  } catch (err) {
    return { started: false, name: (err as Error).name, message: (err as Error).message }
  } finally {
    await gw.stop()
  }
})

console.log(JSON.stringify(out))
`

/**
 * Imports one entry point in a fresh process and reports what the import left open. Timers, sockets, servers,
 * workers, child processes and file opens are counted by wrapping the public node APIs before the import (an unref'd
 * timer would not show in getActiveResourcesInfo()); the module loader's own file reads are not counted.
 */
const SIDE_EFFECTS = `import fs from 'node:fs'
import net from 'node:net'
import dgram from 'node:dgram'
import child from 'node:child_process'
import workers from 'node:worker_threads'
import { createRequire, syncBuiltinESMExports } from 'node:module'

const opened = []
const immediate = setImmediate
const tick = () => new Promise((resolve) => immediate(resolve)) // the unwrapped one: not counted
// Judged by the caller's frame: node's own reads (the module loader, the source-map cache) are not the package's.
const record = (what) => {
  const caller = (new Error().stack.split('\\n')[3] ?? '').trim()
  if (!/\\(?node:internal\\//.test(caller)) opened.push(what + ' ' + caller)
}
const wrap = (obj, name, what = name) => {
  const orig = obj[name]
  obj[name] = function (...args) { record(what); return orig.apply(this, args) }
}
for (const n of ['setTimeout', 'setInterval', 'setImmediate']) wrap(globalThis, n)
for (const n of ['open', 'openSync', 'readFile', 'readFileSync', 'writeFile', 'writeFileSync', 'mkdir', 'mkdirSync', 'watch', 'watchFile', 'createReadStream', 'createWriteStream']) wrap(fs, n, 'fs.' + n)
for (const n of ['open', 'readFile', 'writeFile', 'mkdir']) wrap(fs.promises, n, 'fs.promises.' + n)
wrap(net.Socket.prototype, 'connect', 'socket.connect')
wrap(net.Server.prototype, 'listen', 'server.listen')
wrap(dgram, 'createSocket', 'dgram.createSocket')
for (const n of ['spawn', 'fork', 'exec', 'execFile']) wrap(child, n, 'child_process.' + n)
wrap(process, 'dlopen', 'process.dlopen (a native addon)')
const OrigWorker = workers.Worker
workers.Worker = class extends OrigWorker { constructor(...a) { record('new Worker'); super(...a) } }
syncBuiltinESMExports()

const loadedPackages = () => [...new Set(Object.keys(createRequire(import.meta.url).cache)
  .map((k) => /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(k.slice(k.lastIndexOf('/node_modules/')))?.[1]).filter(Boolean))]
const fds = () => process.platform === 'linux' ? fs.readdirSync('/proc/self/fd').map((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f) } catch { return null } }).filter(Boolean).sort() : []
const spec = process.argv[2]
const resourcesBefore = process.getActiveResourcesInfo()
const fdsBefore = fds()
const mod = await import(spec)
await tick()
const resourcesAfter = process.getActiveResourcesInfo()
const fdsAfter = fds()
const minus = (a, b) => { const rest = [...b]; return a.filter((x) => { const i = rest.indexOf(x); if (i < 0) return true; rest.splice(i, 1); return false }) }
console.log(JSON.stringify({
  spec, exports: Object.keys(mod).length, opened, packages: loadedPackages(),
  newResources: minus(resourcesAfter, resourcesBefore), newFds: minus(fdsAfter, fdsBefore),
}))
`

const ENTRY_POINTS = ['switchyard', 'switchyard/gateway', 'switchyard/plugin', 'switchyard/plugins', 'switchyard/providers']

/** The fake upstream's chat route, by the model asked for: `broken` fails, `slow` hangs until the caller hangs up. */
function chatByModel(): Behaviour {
  const ok = defaultChat()
  const broken = errorReply(500, { message: 'the broken deployment is down' })
  const slow = delay(60_000, ok)
  return (ctx) => (ctx.record.body?.model === 'broken' ? broken : ctx.record.body?.model === 'slow' ? slow : ok)(ctx)
}

let app: ConsumerProject
// pack + install + a skipLibCheck-false tsc + five fresh imports outlast the runner's default per-file timeout.
t.setTimeout(420_000)

t.before(async () => {
  app = await consumerProject(t, { 'main.ts': MAIN, 'side-effects.mjs': SIDE_EFFECTS }, { emit: true })
})

t.test('the tarball installs with --ignore-scripts: better-sqlite3 is there, unbuilt', { timeout: 240_000 }, async (t) => {
  t.equal(app.pack.code, 0, 'npm pack', { output: app.pack.out.slice(-2000) })
  for (const f of ['dist/core/entry/gateway.js', 'dist/core/entry/gateway.d.ts', 'dist/core/entry/plugin.js', 'dist/core/entry/plugin.d.ts']) {
    t.ok(app.pack.files.includes(f), `${f} is packed`)
  }
  const install = await app.install()
  t.equal(install.code, 0, 'npm install --ignore-scripts <tarball>', { output: install.out.slice(-2000) })
  const bs3 = path.join(app.dir, 'node_modules', 'better-sqlite3')
  t.ok((await readdir(bs3)).includes('package.json'), 'better-sqlite3 is installed (a dependency)')
  await t.rejects(access(path.join(bs3, 'build')), 'its native build directory does not exist: --ignore-scripts held')
})

t.test('the consumer program type-checks and runs: completion, stream, abort, embedding, Router, gateway, plugin', { timeout: 240_000 }, async (t) => {
  const check = await app.tsc()
  t.equal(check.code, 0, 'tsc -p <consumer> (strict, NodeNext, skipLibCheck false) exits 0', { output: check.out.slice(0, 4000) })
  if (check.code !== 0) return

  const up = await startUpstream(t, { chat: chatByModel(), embeddings: defaultEmbeddings() })
  // A call that loses its api_base would go to OpenAI's default URL: point that at a refusing port on 127.0.0.1.
  const nowhere = `http://127.0.0.1:${await closedPort()}/v1`
  const env = { UPSTREAM: up.url, SQLITE_PATH: path.join(app.dir, 'data', 'consumer.db'), OPENAI_BASE_URL: nowhere, OPENAI_API_BASE: nowhere, OPENAI_API_KEY: 'sk-unused' }
  const run = await app.node('out/main.js', env, 90_000)
  t.equal(run.timedOut, false, 'the program ends by itself: nothing it used keeps the event loop alive')
  t.equal(run.code, 0, 'node out/main.js exits 0', { output: run.out.slice(-4000) })
  const line = run.stdout.trim().split('\n').at(-1) ?? ''
  const out = JSON.parse(line.startsWith('{') ? line : '{}') as Record<string, any>

  t.equal(out.plain?.content, DEFAULT_REPLY, 'completion() answers from the upstream', { plain: out.plain })
  t.ok(out.plain?.totalTokens > 0, 'with usage')

  t.equal(out.stream?.text, DEFAULT_REPLY, 'the streamed chunks join to the reply', { stream: out.stream })
  t.ok(out.stream?.chunks > 2, 'in several chunks')
  t.ok(out.stream?.lastUsage?.total_tokens > 0, 'the last chunk carries usage', { lastUsage: out.stream?.lastUsage })

  t.equal(out.abort?.rejected, true, 'an aborted completion() rejects', { abort: out.abort })
  t.ok(out.abort?.ms < 10_000, 'soon after the abort, not when the upstream would have answered')
  const slowCall = up.requestsTo('chat').findIndex((r) => r.body?.model === 'slow')
  t.ok(slowCall >= 0, 'the slow call reached the upstream')
  if (slowCall >= 0) t.equal((await up.waitClosed(slowCall, 5000, 'chat')).aborted, true, 'and the upstream saw the caller hang up')

  t.same(out.embedding?.vector, expectedEmbedding('consumer text'), 'embedding() returns the upstream vector', { embedding: out.embedding })

  t.same(out.router?.resourcesConstructed, out.router?.resourcesBefore, 'constructing the Router opened nothing', { router: out.router })
  t.equal(out.router?.content, DEFAULT_REPLY, 'Router.completion() succeeds although the first deployment fails', { router: out.router })
  const routed = up.requestsTo('chat').map((r) => r.body?.model)
  const firstBroken = routed.indexOf('broken')
  t.ok(firstBroken >= 0, 'the failing deployment (order 1) was tried', { routed })
  t.ok(firstBroken >= 0 && routed.slice(firstBroken + 1).includes('gpt-4o-mini'), 'then the other deployment answered', { routed })

  t.same(out.gateway && { status: out.gateway.status, tag: out.gateway.tag, content: out.gateway.content },
    { status: 200, tag: '1', content: DEFAULT_REPLY }, 'createGateway() from switchyard/gateway serves a call through the typed plugin', { gateway: out.gateway })
  t.ok(out.gateway?.port > 0, 'listening on the port 0 picked')

  t.equal(out.sqliteLoadedBeforeStore, false, 'nothing above loaded better-sqlite3')
  t.equal(out.sqlite?.started, false, 'a gateway with store-sqlite does not start without the native module', { sqlite: out.sqlite })
  t.match(out.sqlite?.message, /better-sqlite3/, 'and says that better-sqlite3 is what is missing')
  t.match(out.sqlite?.message, /npm rebuild better-sqlite3/, 'and how to fix it')
})

t.test('importing any entry point opens no socket, file, timer, worker or server', { timeout: 120_000 }, async (t) => {
  // One fresh process per entry point: a module imported once is cached, its side effects already done.
  const runs = await Promise.all(ENTRY_POINTS.map(async (spec) => ({ spec, r: await app.node(['side-effects.mjs', spec], {}, 60_000) })))
  for (const { spec, r } of runs) {
    t.equal(r.code, 0, `${spec}: imports`, { output: r.out.slice(-2000) })
    const line = r.stdout.trim().split('\n').at(-1) ?? '{}'
    const res = JSON.parse(line.startsWith('{') ? line : '{}') as { exports?: number; opened?: string[]; packages?: string[]; newResources?: string[]; newFds?: string[] }
    t.ok((res.exports ?? 0) > 0, `${spec}: has exports`)
    t.same(res.opened, [], `${spec}: no timer, socket, server, worker, child process or file opened while importing`)
    t.same(res.newResources, [], `${spec}: getActiveResourcesInfo() is unchanged`)
    t.same(res.newFds, [], `${spec}: no new file descriptor`)
    t.notOk(res.packages?.includes('better-sqlite3'), `${spec}: better-sqlite3 is not loaded`, { packages: res.packages })
  }
})
