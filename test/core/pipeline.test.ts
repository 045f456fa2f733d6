/**
 * The two chains, through the real HTTP entry point: a gateway on 127.0.0.1 and fetch. In-house plugins
 * (definePlugin) record what ran, in which order; the mock provider (`mock/...`) answers in process.
 */
import t, { type Test } from 'tap'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { asFunction } from 'awilix'
import type { ServerResponse } from 'node:http'
import { definePlugin, type GatewayPlugin } from '../../core/plugin.js'
import { createGateway } from '../../core/gateway.js'
import { parseConfig } from '../../core/config/load.js'
import { createLogger } from '../../core/logger.js'
import { ConfigError, type GatewayError } from '../../core/errors.js'
import type { ProviderResult } from '../../providers/types.js'
import { startGateway } from '../helpers/gateway.js'

const MODELS = `
model_list:
  - model_name: m
    litellm_params:
      model: mock/anything
`
const silent = createLogger({ level: 'silent' })

function chat(url: string, body: Record<string, unknown> = {}) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body }),
  })
}

/** Appends `name` to x-order before next() and to x-order-out after it: the onion, visible in the response. */
function orderPlugin(name: string): GatewayPlugin<Record<string, unknown>> {
  return definePlugin({
    name,
    middleware: () => async function order(ctx, next) {
      const before = ctx.response.get('x-order')
      ctx.set('x-order', before ? `${before},${name}` : name)
      await next()
      const after = ctx.response.get('x-order-out')
      ctx.set('x-order-out', after ? `${after},${name}` : name)
    },
  })
}

t.test('request chain: config order is the order, and reordering the config reorders the chain', async (t) => {
  const plugins = [orderPlugin('alpha'), orderPlugin('beta')]
  const ab = await startGateway(t, `pipeline: [alpha, beta]\nupstream: []\n${MODELS}`, { plugins, env: {} })
  const r1 = await chat(ab.url)
  t.equal(r1.status, 200)
  t.equal(r1.headers.get('x-order'), 'alpha,beta', 'A then B on the way in')
  t.equal(r1.headers.get('x-order-out'), 'beta,alpha', 'B then A on the way out')
  t.equal(((await r1.json()) as { object: string }).object, 'chat.completion')

  const ba = await startGateway(t, `pipeline: [beta, alpha]\nupstream: []\n${MODELS}`, { plugins, env: {} })
  const r2 = await chat(ba.url)
  t.equal(r2.status, 200)
  t.equal(r2.headers.get('x-order'), 'beta,alpha', 'reordered: B then A')
  t.equal(r2.headers.get('x-order-out'), 'alpha,beta')
  await r2.arrayBuffer()
})

t.test('the request chain also runs in front of errors, and bundled plugins take their place in it', async (t) => {
  const plugins = [orderPlugin('alpha'), orderPlugin('beta')]
  const gw = await startGateway(t, `
pipeline: [alpha, auth: { master_key: sk-1 }, beta]
upstream: []
${MODELS}`, { plugins, env: {} })
  const denied = await chat(gw.url)
  t.equal(denied.status, 401)
  t.equal(denied.headers.get('x-order'), 'alpha', 'auth stopped the chain before beta')
  await denied.arrayBuffer()
  const ok = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-1' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
  })
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('x-order'), 'alpha,beta')
  await ok.arrayBuffer()
})

t.test('attempt chain: interceptors in upstream: wrap the dispatch in config order', async (t) => {
  const trail: string[] = []
  const icpt = (name: string) => definePlugin({
    name,
    interceptor: () => (next) => async function wrap(attempt) {
      trail.push(`${name}>`)
      // The outer interceptor hands the inner one a changed request: proves each wraps the next.
      const out = await next(name === 'outer' ? { ...attempt, request: { ...attempt.request, mock_response: 'from outer' } } : attempt)
      trail.push(`<${name}`)
      return out
    },
  })
  const plugins = [icpt('outer'), icpt('inner')]
  const g1 = await startGateway(t, `pipeline: []\nupstream: [outer, inner]\n${MODELS}`, { plugins, env: {} })
  const r1 = await chat(g1.url)
  t.equal(((await r1.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, 'from outer')
  t.same(trail, ['outer>', 'inner>', '<inner', '<outer'])

  trail.length = 0
  const g2 = await startGateway(t, `pipeline: []\nupstream: [inner, outer]\n${MODELS}`, { plugins, env: {} })
  await (await chat(g2.url)).arrayBuffer()
  t.same(trail, ['inner>', 'outer>', '<outer', '<inner'], 'reordered')
})

async function bootError(t: Test, yaml: string, plugins: GatewayPlugin<any>[] = []): Promise<GatewayError> {
  try {
    const gw = await createGateway({ config: parseConfig(yaml, { env: {} }), plugins, logger: silent, env: {} })
    await gw.stop()
  } catch (err) {
    t.ok(err instanceof ConfigError, 'a ConfigError')
    return err as GatewayError
  }
  t.fail('expected the gateway to refuse to boot')
  throw new Error('unreachable')
}

t.test('boot errors carry stable codes and say what is wrong', async (t) => {
  const needsA = definePlugin({ name: 'needs-a', dependencies: ['a'], middleware: () => async function needsA(_c, next) { await next() } })
  const a = orderPlugin('a')
  const needsGhost = definePlugin({ name: 'needs-ghost', dependencies: ['ghost'] })
  const withOpts = definePlugin<{ count: number }>({
    name: 'with-opts',
    options: { type: 'object', additionalProperties: false, properties: { count: { type: 'integer', default: 1 } } },
  })

  const unknown = await bootError(t, 'pipeline: [request-id, nope]\nupstream: []\n')
  t.equal(unknown.code, 'GW_ERR_PLUGIN_UNKNOWN')
  t.match(unknown.message, "pipeline[1]: unknown plugin 'nope'")
  t.match(unknown.message, /Available: .*request-id/, 'lists what is available')

  const order = await bootError(t, 'pipeline: [needs-a, a]\nupstream: []\n', [needsA, a])
  t.equal(order.code, 'GW_ERR_PLUGIN_DEPENDENCY_ORDER')
  t.match(order.message, "'needs-a' depends on 'a', which must be listed before it")

  const notListed = await bootError(t, 'pipeline: [needs-a]\nupstream: []\n', [needsA, a])
  t.equal(notListed.code, 'GW_ERR_PLUGIN_DEPENDENCY_ORDER', 'a known dependency missing from the chains')

  const ghost = await bootError(t, 'pipeline: [needs-ghost]\nupstream: []\n', [needsGhost])
  t.equal(ghost.code, 'GW_ERR_PLUGIN_DEPENDENCY_UNKNOWN')
  t.match(ghost.message, "'ghost', which is not a known plugin")

  const opts = await bootError(t, 'pipeline:\n  - with-opts: { count: many }\nupstream: []\n', [withOpts])
  t.equal(opts.code, 'GW_ERR_PLUGIN_OPTIONS')
  t.match(opts.message, "Invalid options for plugin 'with-opts'")
  t.match(opts.message, 'pipeline[0].with-opts.count: must be integer', 'names the option')

  const extra = await bootError(t, 'pipeline:\n  - router: { strategy: weighted }\nupstream: []\n')
  t.equal(extra.code, 'GW_ERR_PLUGIN_OPTIONS')
  t.match(extra.message, "unknown key 'strategy'", 'a bundled plugin rejects an unknown option by name')

  const dup = await bootError(t, 'pipeline: [request-id, router, request-id]\nupstream: []\n')
  t.equal(dup.code, 'GW_ERR_PLUGIN_DUPLICATE')
  t.match(dup.message, "pipeline[2]: plugin 'request-id' is listed twice")

  const dupAcross = await bootError(t, 'pipeline: [retry]\nupstream: [retry]\n')
  t.equal(dupAcross.code, 'GW_ERR_PLUGIN_DUPLICATE', 'also across the two chains')
  t.match(dupAcross.message, 'upstream[0]')
})

t.test('pipeline entries count as earlier than upstream entries for dependencies', async (t) => {
  const trail: string[] = []
  const base = orderPlugin('base')
  const dependent = definePlugin({
    name: 'dependent',
    dependencies: ['base'],
    interceptor: () => (next) => async function dependent(a) {
      trail.push('dependent')
      return next(a)
    },
  })
  const gw = await startGateway(t, `pipeline: [base]\nupstream: [dependent]\n${MODELS}`, { plugins: [base, dependent], env: {} })
  const res = await chat(gw.url)
  t.equal(res.headers.get('x-order'), 'base')
  await res.arrayBuffer()
  t.same(trail, ['dependent'])
})

t.test('plugin options: schema defaults are applied before the plugin sees them', async (t) => {
  let seen: unknown
  const p = definePlugin<{ label: string; n: number }>({
    name: 'opts',
    options: { type: 'object', additionalProperties: false, properties: { label: { type: 'string', default: 'dflt' }, n: { type: 'integer', default: 3 } } },
    middleware: (_c, o) => {
      seen = o
      return async function opts(ctx, next) {
        ctx.set('x-label', o.label)
        await next()
      }
    },
  })
  const gw = await startGateway(t, `pipeline:\n  - opts: { n: 7 }\nupstream: []\n${MODELS}`, { plugins: [p], env: {} })
  t.same(seen, { label: 'dflt', n: 7 })
  t.ok(Object.isFrozen(seen), 'options are frozen')
  const res = await chat(gw.url)
  t.equal(res.headers.get('x-label'), 'dflt')
  await res.arrayBuffer()
})

/**
 * A plugin that registers a scoped service with a disposer; its middleware resolves it per request and hands it
 * the response, so the disposer can record whether the response had finished when the scope was disposed.
 */
function scopeProbe(events: string[]) {
  interface Probe { id: number; res: ServerResponse | null }
  let n = 0
  return definePlugin({
    name: 'scope-probe',
    register(container) {
      container.register('probe', asFunction((): Probe => ({ id: ++n, res: null })).scoped().disposer((p: Probe) => {
        events.push(`disposed:${p.id}:${p.res?.writableFinished ? 'finished' : 'NOT finished'}`)
      }))
    },
    middleware: () => async function probe(ctx, next) {
      const p = ctx.state.scope.resolve<Probe>('probe')
      p.res = ctx.res
      events.push(`resolved:${p.id}`)
      await next()
      events.push(`next-returned:${p.id}`)
    },
  })
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 5))
  }
  return true
}

t.test('the per-request scope is disposed after a JSON response finished', async (t) => {
  const events: string[] = []
  const gw = await startGateway(t, `pipeline: [scope-probe]\nupstream: []\n${MODELS}`, { plugins: [scopeProbe(events)], env: {} })
  const res = await chat(gw.url)
  t.equal(res.status, 200)
  await res.json()
  t.ok(await waitFor(() => events.some((e) => e.startsWith('disposed:1'))), 'disposed')
  t.same(events, ['resolved:1', 'next-returned:1', 'disposed:1:finished'])
  const res2 = await chat(gw.url)
  await res2.json()
  t.ok(await waitFor(() => events.some((e) => e.startsWith('disposed:2'))), 'a new scope (and service) per request')
})

t.test('the per-request scope outlives next() for an SSE stream and is disposed after the stream ended', async (t) => {
  const events: string[] = []
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  // Holds the stream open after its first chunk until the test releases it.
  const hold = definePlugin({
    name: 'hold',
    interceptor: () => (next) => async function hold(a): Promise<ProviderResult> {
      const r = await next(a)
      if (r.kind !== 'stream') return r
      const src = r.chunks
      return {
        kind: 'stream',
        chunks: (async function* () {
          let i = 0
          for await (const c of src) {
            if (i++ === 1) await gate
            yield c
          }
          events.push('stream-source-ended')
        })(),
      }
    },
  })
  const gw = await startGateway(t, `pipeline: [scope-probe]\nupstream: [hold]\n${MODELS}`, { plugins: [scopeProbe(events), hold], env: {} })
  const res = await chat(gw.url, { stream: true, mock_response: 'one two three' })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /text\/event-stream/)
  const reader = res.body!.getReader()
  const first = await reader.read()
  t.match(new TextDecoder().decode(first.value), /^data: /, 'first chunk arrived')
  await new Promise((r) => setTimeout(r, 50))
  t.notOk(events.some((e) => e.startsWith('disposed')), 'not disposed while the stream is open')
  release()
  let text = new TextDecoder().decode(first.value)
  for (;;) {
    const step = await reader.read()
    if (step.done) break
    text += new TextDecoder().decode(step.value)
  }
  t.ok(text.endsWith('data: [DONE]\n\n'), 'the stream completed')
  const content = text.split('\n\n').filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)) as { choices: Array<{ delta: { content?: string } }> })
    .map((c) => c.choices[0]?.delta.content ?? '').join('')
  t.equal(content, 'one two three')
  t.ok(await waitFor(() => events.some((e) => e.startsWith('disposed'))), 'disposed after the end')
  // (Here the terminal handler awaits the whole stream, so next() returns late; the scope must not depend on it.)
  const at = (prefix: string) => events.findIndex((e) => e.startsWith(prefix))
  t.ok(at('stream-source-ended') !== -1 && at('stream-source-ended') < at('disposed'), 'the stream ended before the scope was disposed')
  t.equal(events.filter((e) => e.startsWith('disposed')).length, 1, 'disposed once')
  t.ok(events.includes('disposed:1:finished'), 'the response had finished when the scope was disposed')
})

t.test('start hooks run in chain order, stop hooks in reverse on gateway.stop()', async (t) => {
  const log: string[] = []
  const hooks = (name: string, kind: 'middleware' | 'interceptor') => definePlugin({
    name,
    ...(kind === 'middleware'
      ? { middleware: () => async function mw(_c: unknown, next: () => Promise<unknown>) { await next() } }
      : { interceptor: () => (next) => next }),
    start: async () => {
      await new Promise((r) => setTimeout(r, 5))
      log.push(`start:${name}`)
    },
    stop: async () => {
      await new Promise((r) => setTimeout(r, 5))
      log.push(`stop:${name}`)
    },
  })
  const plugins = [hooks('one', 'middleware'), hooks('two', 'middleware'), hooks('three', 'interceptor')]
  const gw = await startGateway(t, `pipeline: [two, one]\nupstream: [three]\n${MODELS}`, { plugins, env: {} })
  t.same(log, ['start:two', 'start:one', 'start:three'], 'started before listening, awaited one by one')
  await gw.gateway.start()
  t.equal(log.length, 3, 'start() again does not re-run the hooks')
  await gw.stop()
  t.same(log, ['start:two', 'start:one', 'start:three', 'stop:three', 'stop:one', 'stop:two'])
  await gw.stop()
  t.equal(log.length, 6, 'stop() is idempotent')
})

t.test('a failing stop hook does not keep the others from running', async (t) => {
  const log: string[] = []
  const ok = definePlugin({ name: 'ok', stop: () => void log.push('ok') })
  const bad = definePlugin({ name: 'bad', stop: () => { throw new Error('boom') } })
  const gw = await startGateway(t, `pipeline: [ok, bad]\nupstream: []\n${MODELS}`, { plugins: [ok, bad], env: {} })
  await gw.stop()
  t.same(log, ['ok'])
  t.ok(gw.logs.some((l) => l.level === 'error' && /plugin bad stop failed/.test(String(l.msg))), 'logged')
})

t.test('a plugin loaded from a file path in the config `plugins:` map', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-plugin-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'stamp.mjs'), `
// A plugin written as plain JS, the way a user would ship one beside config.yaml.
export default {
  name: 'stamp',
  options: { type: 'object', additionalProperties: false, properties: { value: { type: 'string', default: 'stamped' } } },
  middleware(_cradle, options) {
    return async function stamp(ctx, next) {
      ctx.set('x-stamp', options.value + ':' + ctx.state.model)
      await next()
    }
  },
}
`)
  await writeFile(path.join(dir, 'notaplugin.mjs'), 'export default 42\n')
  await writeFile(path.join(dir, 'config.yaml'), `
plugins:
  stamp: ./stamp.mjs
pipeline:
  - stamp: { value: from-file }
  - router
upstream: []
${MODELS}`)
  const gateway = await createGateway({ config: path.join(dir, 'config.yaml'), logger: silent, env: {} })
  const { url } = await gateway.listen(0, '127.0.0.1')
  t.teardown(() => gateway.stop())
  const res = await chat(url)
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-stamp'), 'from-file:m')
  await res.arrayBuffer()

  await writeFile(path.join(dir, 'bad.yaml'), 'plugins:\n  x: ./notaplugin.mjs\npipeline: [x]\nupstream: []\n')
  await t.rejects(createGateway({ config: path.join(dir, 'bad.yaml'), logger: silent, env: {} }),
    { code: 'GW_ERR_PLUGIN_LOAD', message: /must default-export/ })
  await writeFile(path.join(dir, 'missing.yaml'), 'plugins:\n  x: ./missing.mjs\npipeline: [x]\nupstream: []\n')
  await t.rejects(createGateway({ config: path.join(dir, 'missing.yaml'), logger: silent, env: {} }),
    { code: 'GW_ERR_PLUGIN_LOAD', message: /missing\.mjs/ })
  await writeFile(path.join(dir, 'renamed.yaml'), 'plugins:\n  other: ./stamp.mjs\npipeline: [other]\nupstream: []\n')
  await t.rejects(createGateway({ config: path.join(dir, 'renamed.yaml'), logger: silent, env: {} }),
    { code: 'GW_ERR_PLUGIN_LOAD', message: /exports the plugin 'stamp'/ }, 'the key must be the plugin\'s name')
})

t.test('a plugin passed in code but not named in the config is appended to its chain', async (t) => {
  const gw = await startGateway(t, `pipeline: [router]\nupstream: []\n${MODELS}`, { plugins: [orderPlugin('appended')], env: {} })
  t.same(gw.gateway.plugins.map((p) => `${p.chain}:${p.plugin.name}`), ['pipeline:router', 'pipeline:appended'])
  const res = await chat(gw.url)
  t.equal(res.headers.get('x-order'), 'appended')
  await res.arrayBuffer()
})
