/**
 * The `switchyard` CLI as users run it: the built dist/core/cli.js in a child process (`npm test` builds dist/
 * before tap; run `npx tsc -p tsconfig.build.json` first when running this file alone). Every child is killed by
 * PID in teardown; all traffic is on 127.0.0.1.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import OpenAI from 'openai'
import { assertSchema } from './helpers/openapi.js'
import { CLI, ROOT, freePort, spawnProc, type Proc } from './helpers/cli.js'

const root = ROOT
type Cli = Proc

function run(t: Test, args: string[]): Cli {
  return spawnProc(t, process.execPath, [CLI, ...args])
}

/** Resolves with the URL from the "listening" log line (JSON lines on stderr). */
async function listening(cli: Cli, ms = 45_000): Promise<string> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const m = /Switchyard listening on (http:\/\/[^"\s]+)/.exec(cli.stderr())
    if (m) return m[1]!
    if (cli.child.exitCode !== null) throw new Error(`CLI exited ${cli.child.exitCode}: ${cli.stderr()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`no "listening" line after ${ms} ms: ${cli.stderr()}`)
}

function chat(url: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }], ...body }),
  })
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('--help prints the usage and exits 0', async (t) => {
  const cli = run(t, ['--help'])
  const { code } = await cli.exited
  t.equal(code, 0)
  t.match(cli.stdout(), /^Usage: switchyard/)
  t.match(cli.stdout(), /--config FILE/)
  t.match(cli.stdout(), /--port N/)
})

t.test('--version prints the package version', async (t) => {
  const cli = run(t, ['--version'])
  t.equal((await cli.exited).code, 0)
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }
  t.equal(cli.stdout().trim(), pkg.version)
})

t.test('an unknown flag exits 2 with the usage', async (t) => {
  const cli = run(t, ['--no-such-flag'])
  t.equal((await cli.exited).code, 2)
  t.match(cli.stderr(), /no-such-flag/)
  t.match(cli.stderr(), /Usage: switchyard/)
})

t.test('no --config: the bundled preset answers a chat completion with no provider key', async (t) => {
  const port = await freePort()
  const cli = run(t, ['--port', String(port), '--host', '127.0.0.1'])
  const url = await listening(cli)
  t.equal(url, `http://127.0.0.1:${port}`)
  const res = await chat(url, { model: 'gpt-4o-mini' })
  t.equal(res.status, 200)
  const body = (await res.json()) as { object: string; choices: Array<{ message: { content: string } }> }
  t.equal(body.object, 'chat.completion')
  t.ok(body.choices[0]!.message.content.length > 0)
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> }
  t.ok(models.data.some((m) => m.id === 'mock'), '/v1/models lists the preset models')

  // The official client against the process `npm start` runs: chat, a stream with usage, an embedding.
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'no-key-needed', maxRetries: 0, timeout: 10_000 })
  const completion = await client.chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] })
  assertSchema(t, 'CreateChatCompletionResponse', completion)
  const stream = await client.chat.completions.create({
    model: 'mock', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true },
  })
  let text = ''
  let usageChunks = 0
  for await (const chunk of stream) {
    assertSchema(t, 'CreateChatCompletionStreamResponse', chunk)
    text += chunk.choices[0]?.delta?.content ?? ''
    if (chunk.usage) usageChunks++
  }
  t.equal(text, completion.choices[0]!.message.content, 'the stream carries the same reply')
  t.equal(usageChunks, 1, 'one usage chunk when asked')
  const raw = await (await chat(url, { model: 'mock', stream: true })).text()
  t.ok(raw.endsWith('data: [DONE]\n\n'), 'the raw stream ends with data: [DONE]')
  const emb = await client.embeddings.create({ model: 'mock', input: ['a', 'b'] })
  assertSchema(t, 'CreateEmbeddingResponse', emb)
  t.equal(emb.data.length, 2)

  process.kill(cli.child.pid!, 'SIGTERM')
  t.same(await cli.exited, { code: 0, signal: null }, 'SIGTERM when idle exits 0')
})

t.test('--config with a LiteLLM config.yaml in a temp dir', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, `
model_list:
  - model_name: my-gpt
    litellm_params:
      model: mock/gpt-4o
      mock_response: hello from the litellm config
general_settings:
  master_key: os.environ/CLI_TEST_MASTER
environment_variables:
  CLI_TEST_MASTER: sk-cli-master
litellm_settings:
  drop_params: true
  success_callback: ["datadog"]
`)
  const port = await freePort()
  const cli = run(t, ['--config', file, '--port', String(port), '--host', '127.0.0.1'])
  const url = await listening(cli)
  t.match(cli.stderr(), /litellm_settings\.success_callback/, 'the unsupported key is named in the boot warning')
  const denied = await chat(url, { model: 'my-gpt' })
  t.equal(denied.status, 401, 'general_settings.master_key turned auth on')
  await denied.arrayBuffer()
  const res = await chat(url, { model: 'my-gpt' }, { authorization: 'Bearer sk-cli-master' })
  t.equal(res.status, 200)
  const body = (await res.json()) as { choices: Array<{ message: { content: string } }> }
  t.equal(body.choices[0]!.message.content, 'hello from the litellm config')
  process.kill(cli.child.pid!, 'SIGTERM')
  t.equal((await cli.exited).code, 0)
})

t.test('a bad config exits non-zero with a readable message naming the path', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'bad.yaml')
  await writeFile(file, 'model_list:\n  - model_name: broken\n    litellm_params:\n      api_key: x\nserver:\n  port: nope\n')
  // Three independent runs, started together to keep the file fast.
  const cli = run(t, ['--config', file, '--port', '0', '--host', '127.0.0.1'])
  const missing = run(t, ['--config', path.join(dir, 'nope.yaml')])
  const port = run(t, ['--port', 'abc'])
  const { code } = await cli.exited
  t.not(code, 0)
  const err = cli.stderr()
  t.match(err, /^switchyard: Invalid config/m)
  t.match(err, "config.model_list[0].litellm_params: missing required key 'model'")
  t.match(err, 'config.server.port: must be integer')
  t.notMatch(err, /    at .*\.js:\d+/, 'no stack trace for a config error')

  t.not((await missing.exited).code, 0)
  t.match(missing.stderr(), /nope\.yaml/, 'a missing file is named')

  t.equal((await port.exited).code, 2)
  t.match(port.stderr(), /--port must be an integer/)
})

t.test('SIGTERM while a stream is in flight: the stream completes, then the process exits 0', async (t) => {
  // A slow OpenAI-compatible upstream: sends the first chunk, then holds the rest until the test releases it.
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  let upstreamHit!: () => void
  const hit = new Promise<void>((r) => (upstreamHit = r))
  const upstream = http.createServer((req, res) => {
    req.resume()
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'slow' }
      const send = (content: string) => res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`)
      send('first ')
      upstreamHit()
      await held
      send('second ')
      send('third')
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`)
      res.end('data: [DONE]\n\n')
    })
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    release()
    upstream.closeAllConnections()
    upstream.close(() => r())
  }))
  const upPort = (upstream.address() as AddressInfo).port

  const dir = await tempDir(t)
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, `
server:
  shutdown_timeout: 20
model_list:
  - model_name: slow
    litellm_params:
      model: openai/slow
      api_base: http://127.0.0.1:${upPort}/v1
      api_key: sk-fake
`)
  const port = await freePort()
  const cli = run(t, ['--config', file, '--port', String(port), '--host', '127.0.0.1'])
  const url = await listening(cli)

  const res = await chat(url, { model: 'slow', stream: true })
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  const dec = new TextDecoder()
  let text = dec.decode((await reader.read()).value, { stream: true })
  await hit
  t.match(text, /first/, 'the stream started')

  process.kill(cli.child.pid!, 'SIGTERM')
  // Give the signal time to land: the process must still be up, draining.
  await new Promise((r) => setTimeout(r, 300))
  t.equal(cli.child.exitCode, null, 'still running while the stream is open')
  t.match(cli.stderr(), /SIGTERM: draining/)
  const ready = await fetch(`${url}/health/readiness`)
  t.equal(ready.status, 503, 'readiness reports draining; the listener stays open for probes')
  const refused = await chat(url, { model: 'slow' })
  t.equal(refused.status, 503, 'new model calls are refused while draining')
  t.equal(((await refused.json()) as { error: { code: string } }).error.code, 'shutting_down')

  release()
  for (;;) {
    const step = await reader.read()
    if (step.done) break
    text += dec.decode(step.value, { stream: true })
  }
  t.ok(text.endsWith('data: [DONE]\n\n'), 'the stream ended with data: [DONE]')
  const content = text.split('\n\n').filter((l) => l.startsWith('data: {'))
    .map((l) => (JSON.parse(l.slice(6)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '').join('')
  t.equal(content, 'first second third')
  t.same(await cli.exited, { code: 0, signal: null }, 'exited 0 after the stream')
  t.match(cli.stderr(), /"msg":"stopped"/)
})
