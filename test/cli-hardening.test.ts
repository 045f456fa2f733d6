/**
 * CLI hardening (issue 13): $PORT/$HOST/$NUM_WORKERS, --num_workers (node:cluster), --strict, the boot line's auth
 * state and real bind address, and `npm start` under a container's SIGTERM. Runs the built dist/core/cli.js (build
 * with `npx tsc -p tsconfig.build.json` first) in child processes; every child, and every worker or node process
 * they start, is killed by PID in teardown. All traffic is on 127.0.0.1.
 */
import t, { type Test } from 'tap'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import OpenAI from 'openai'
import { CLI, freePort, spawnProc, type Exit, type Proc } from './helpers/cli.js'
import { startUpstream } from './helpers/upstream.js'

type LogLine = Record<string, unknown> & { msg: string }

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Kills `pid` in teardown if it is still there (workers and npm's node child are not our direct children). */
function reap(t: Test, pid: number): void {
  t.teardown(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
}

/** The exit, or 'still running' after `ms`: a CLI that wrongly keeps serving fails the test instead of hanging it. */
function exitWithin(p: Proc, ms = 15_000): Promise<Exit | 'still running'> {
  return Promise.race([p.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms).unref())])
}

async function exitCode(p: Proc): Promise<number | null | 'still running'> {
  const e = await exitWithin(p)
  return e === 'still running' ? e : e.code
}

const cli = (t: Test, args: string[], env: NodeJS.ProcessEnv = {}) => spawnProc(t, process.execPath, [CLI, ...args], env)

/** The JSON log lines on stderr (npm's own banner lines are skipped). */
function logs(p: Proc): LogLine[] {
  return p.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)
}

/** Waits until `count` log lines match `pred`; returns them. Fails early if the process exits. */
async function waitLogs(p: Proc, pred: (l: LogLine) => boolean, count = 1, ms = 45_000): Promise<LogLine[]> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const found = logs(p).filter(pred)
    if (found.length >= count) return found
    if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode}: ${p.stderr()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`${count} matching log line(s) not seen after ${ms} ms: ${p.stderr()}`)
}

const isListening = (l: LogLine) => l.msg.startsWith('Switchyard listening on ')
const listeningUrl = (l: LogLine) => l.msg.slice('Switchyard listening on '.length)

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (!alive(pid)) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return false
}

async function tempConfig(t: Test, yaml: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-cli-h-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, yaml)
  return file
}

const MOCK_MODEL = `
model_list:
  - model_name: mock
    litellm_params:
      model: mock/mock-1
`

function client(url: string, apiKey = 'no-key'): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 })
}

t.test('--help names every flag and the env vars', async (t) => {
  const p = cli(t, ['--help'])
  t.equal(await exitCode(p), 0)
  const out = p.stdout()
  for (const flag of ['--config', '--port', '--host', '--num_workers', '--num-workers', '--strict', '--debug', '--detailed_debug', '$PORT', '$HOST', '$NUM_WORKERS']) {
    t.ok(out.includes(flag), `usage names ${flag}`)
  }
})

t.test('$PORT and $HOST are used over the config server section; --port/--host win over them', async (t) => {
  const [cfgPort, envPort, flagPort] = await Promise.all([freePort(), freePort(), freePort()])
  const file = await tempConfig(t, `server:\n  port: ${cfgPort}\n  host: 0.0.0.0\n${MOCK_MODEL}`)
  const fromEnv = cli(t, ['--config', file], { PORT: String(envPort), HOST: '127.0.0.1' })
  // Flags given: the env vars are not used, so not even validated (as with click's envvar options).
  const fromFlags = cli(t, ['--config', file, '--port', String(flagPort), '--host', '127.0.0.1'], { PORT: 'abc', HOST: 'http://bad' })

  const [envLine] = await waitLogs(fromEnv, isListening)
  t.equal(listeningUrl(envLine!), `http://127.0.0.1:${envPort}`, '$PORT over server.port, $HOST over server.host')
  t.notOk('connect' in envLine!, 'not a wildcard bind')
  const r = await client(`http://127.0.0.1:${envPort}`).chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(r.object, 'chat.completion')

  const [flagLine] = await waitLogs(fromFlags, isListening)
  t.equal(listeningUrl(flagLine!), `http://127.0.0.1:${flagPort}`, 'the flags win')

  process.kill(fromEnv.child.pid!, 'SIGTERM')
  process.kill(fromFlags.child.pid!, 'SIGTERM')
  t.equal(await exitCode(fromEnv), 0)
  t.equal(await exitCode(fromFlags), 0)
})

t.test('bad $PORT, $HOST, $NUM_WORKERS and --num-workers values exit 2 naming where they came from', async (t) => {
  const runs = [
    // The other settings are given as flags so that a CLI ignoring the bad value binds only 127.0.0.1:<free>.
    { p: cli(t, ['--host', '127.0.0.1'], { PORT: 'abc' }), msg: '$PORT must be an integer from 0 to 65535, got "abc"' },
    { p: cli(t, ['--host', '127.0.0.1', '--config', 'x.yaml'], { PORT: '70000' }), msg: '$PORT must be an integer from 0 to 65535, got "70000"' },
    { p: cli(t, ['--port', '0'], { HOST: 'http://0.0.0.0' }), msg: '$HOST must be an address or host name' },
    { p: cli(t, ['--port', '0', '--host', '127.0.0.1'], { NUM_WORKERS: 'two' }), msg: '$NUM_WORKERS must be an integer of 1 or more, got "two"' },
    { p: cli(t, ['--port', '0', '--host', '127.0.0.1', '--num-workers', '0']), msg: '--num-workers must be an integer of 1 or more, got "0"' },
  ]
  for (const { p, msg } of runs) {
    t.equal(await exitCode(p), 2, msg)
    t.match(p.stderr(), msg)
  }
})

t.test('--num_workers 2: both workers serve on one port; SIGTERM to the primary drains them and leaves none', async (t) => {
  const port = await freePort()
  const primary = cli(t, ['--num_workers', '2', '--port', String(port), '--host', '127.0.0.1'])
  const started = await waitLogs(primary, (l) => l.msg === 'worker started', 2)
  const pids = started.map((l) => l.pid as number)
  for (const pid of pids) reap(t, pid)
  t.equal(new Set(pids).size, 2, 'two worker processes')
  t.notOk(pids.includes(primary.child.pid!), 'the workers are not the primary')
  const lines = await waitLogs(primary, isListening, 2)
  t.same(lines.map(listeningUrl), [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port}`], 'each worker on the shared port')

  const url = `http://127.0.0.1:${port}`
  // Separate clients (connections) so the primary's round-robin spreads them.
  const replies = await Promise.all(Array.from({ length: 6 }, () =>
    client(url).chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] })))
  t.equal(replies.filter((r) => r.object === 'chat.completion').length, 6, 'every call succeeded')

  process.kill(primary.child.pid!, 'SIGTERM')
  t.same(await exitWithin(primary), { code: 0, signal: null }, 'the primary exits 0 once the workers drained')
  for (const pid of pids) t.ok(await waitGone(pid), `worker ${pid} is gone`)
  t.equal(logs(primary).filter((l) => l.msg === 'SIGTERM: draining in-flight requests').length, 2, 'each worker drained')
})

t.test('--num-workers: a worker that dies is logged and replaced, and the replacement serves', async (t) => {
  const port = await freePort()
  const primary = cli(t, ['--num-workers', '2', '--port', String(port), '--host', '127.0.0.1'])
  const started = await waitLogs(primary, (l) => l.msg === 'worker started', 2)
  for (const l of started) reap(t, l.pid as number)
  const victim = started[0]!.pid as number
  process.kill(victim, 'SIGKILL')

  const [died] = await waitLogs(primary, (l) => l.msg === 'worker died: starting a replacement')
  t.equal(died!.pid, victim)
  t.equal(died!.signal, 'SIGKILL')
  const all = await waitLogs(primary, (l) => l.msg === 'worker started', 3)
  const replacement = all[2]!.pid as number
  reap(t, replacement)
  t.not(replacement, victim)
  t.ok(alive(replacement), 'the replacement runs')
  const r = await client(`http://127.0.0.1:${port}`).chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(r.object, 'chat.completion')

  process.kill(primary.child.pid!, 'SIGTERM')
  t.equal(await exitCode(primary), 0)
  for (const pid of [started[1]!.pid as number, replacement]) t.ok(await waitGone(pid), `worker ${pid} is gone`)
})

t.test('--num_workers: a config error is reported once and stops the start (exit 1, no crash loop)', async (t) => {
  const file = await tempConfig(t, 'server:\n  port: nope\n')
  const primary = cli(t, ['--num_workers', '3', '--config', file, '--host', '127.0.0.1'])
  const code = await exitCode(primary)
  t.equal(code, 1)
  t.equal(primary.stderr().split('config.server.port: must be integer').length - 1, 1, 'the error once, from the one worker booted')
  t.match(primary.stderr(), /a worker failed to start: stopping/)
})

t.test('--strict: a config key Switchyard does not act on stops the boot', async (t) => {
  const file = await tempConfig(t, `${MOCK_MODEL}litellm_settings:\n  success_callback: ["datadog"]\n`)
  const p = cli(t, ['--strict', '--config', file, '--port', '0', '--host', '127.0.0.1'])
  t.equal(await exitCode(p), 1)
  t.match(p.stderr(), /litellm_settings\.success_callback/)
  t.notMatch(p.stderr(), /Switchyard listening/)
})

t.test('the boot line names the real bind address and says whether auth is on', async (t) => {
  const [p1, p2, p3, p4] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  const local = ['--host', '127.0.0.1']
  const preset = cli(t, ['--port', String(p1), '--host', '0.0.0.0'])
  const master = cli(t, ['--port', String(p2), ...local, '--config',
    await tempConfig(t, `${MOCK_MODEL}general_settings:\n  master_key: sk-boot-master\n`)])
  const statics = cli(t, ['--port', String(p3), ...local, '--config',
    await tempConfig(t, `pipeline:\n  - auth: { keys: [sk-a, sk-b] }\n  - router\n${MOCK_MODEL}`)])
  const noAuth = cli(t, ['--port', String(p4), ...local, '--config', await tempConfig(t, `pipeline:\n  - router\n${MOCK_MODEL}`)])

  const [open] = await waitLogs(preset, isListening)
  t.equal(listeningUrl(open!), `http://0.0.0.0:${p1}`, 'the wildcard it binds, not a loopback URL')
  t.equal(open!.connect, `http://127.0.0.1:${p1}`, 'and where to connect')
  t.equal(open!.auth, 'OFF: no master_key, every request is accepted (a virtual key presented is still checked and its budgets apply)',
    'the preset has a store: open, but virtual keys still count')
  t.equal(open!.pid, preset.child.pid)
  const models = await client(open!.connect as string).models.list()
  t.ok(models.data.some((m) => m.id === 'mock'), 'the connect URL serves')

  const [m] = await waitLogs(master, isListening)
  t.equal(listeningUrl(m!), `http://127.0.0.1:${p2}`)
  t.equal(m!.auth, 'on (master key + virtual keys (sqlite))', 'a LiteLLM config gets the default chain with the embedded store')
  const [s] = await waitLogs(statics, isListening)
  t.equal(s!.auth, 'on (2 static keys)')
  const [n] = await waitLogs(noAuth, isListening)
  t.equal(n!.auth, 'OFF: no auth plugin in the pipeline, every request is accepted')

  for (const p of [preset, master, statics, noAuth]) process.kill(p.child.pid!, 'SIGTERM')
  for (const p of [preset, master, statics, noAuth]) t.equal(await exitCode(p), 0)
})

t.test('`npm start` and a SIGTERM to npm only: the server stops, no node process is left behind', async (t) => {
  const port = await freePort()
  const npm = spawnProc(t, 'npm', ['start', '--', '--port', String(port), '--host', '127.0.0.1'])
  const [line] = await waitLogs(npm, isListening)
  const serverPid = line!.pid as number
  reap(t, serverPid)
  t.equal(listeningUrl(line!), `http://127.0.0.1:${port}`)

  process.kill(npm.child.pid!, 'SIGTERM')
  t.not(await exitWithin(npm, 5000), 'still running', 'npm exits')
  t.ok(await waitGone(serverPid), `the node server (pid ${serverPid}) exits too`)
  t.match(npm.stderr(), /SIGTERM: draining in-flight requests/, 'the server got the signal and drained')
})

t.test('through the CLI, a LiteLLM config that could leak does not: merge keys apply, unknown prefixes and unset master keys refuse', async (t) => {
  // A second fake stands in for api.openai.com: the global key and base point at it, and it must get nothing.
  const privateUp = await startUpstream(t)
  const publicApi = await startUpstream(t)
  const env = { OPENAI_API_KEY: 'sk-global-must-not-leak', OPENAI_BASE_URL: publicApi.url, OPENAI_API_BASE: publicApi.url }
  const file = await tempConfig(t, `
model_list:
  - model_name: private-a
    litellm_params: &private
      model: openai/llama-a
      api_base: ${privateUp.url}
      api_key: sk-private
  - model_name: private-b
    litellm_params:
      <<: *private
      model: openai/llama-b
  - model_name: copilot
    litellm_params:
      model: github_copilot/gpt-4
general_settings:
  master_key: sk-admin
`)
  const p = cli(t, ['--config', file, '--port', String(await freePort()), '--host', '127.0.0.1'], env)
  const [line] = await waitLogs(p, isListening)
  t.match(line, { auth: 'on (master key + virtual keys (sqlite))' })
  const c = client(listeningUrl(line!), 'sk-admin')
  const r = await c.chat.completions.create({ model: 'private-b', messages: [{ role: 'user', content: 'hi' }] })
  t.ok(r.choices[0]!.message.content)
  const sent = privateUp.requests[0]!
  t.equal(sent.body.model, 'llama-b', 'the merged entry keeps its own model')
  t.equal(sent.headers.authorization, 'Bearer sk-private', 'and takes the key from the anchor')
  const refused = await c.chat.completions.create({ model: 'copilot', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
  t.equal((refused as InstanceType<typeof OpenAI.APIError>).status, 400)
  t.equal((refused as InstanceType<typeof OpenAI.APIError>).code, 'provider_not_supported')
  t.equal(publicApi.requests.length, 0, 'the public endpoint got nothing')
  t.match(p.stderr(), /github_copilot/, 'the boot warning names the unbuilt provider')

  const unset = await tempConfig(t, `${MOCK_MODEL}general_settings:\n  master_key: os.environ/SWITCHYARD_UNSET_MASTER\n`)
  const q = cli(t, ['--config', unset, '--port', String(await freePort()), '--host', '127.0.0.1'])
  t.equal(await exitCode(q), 1, 'a master key that resolves to nothing refuses to boot')
  t.match(q.stderr(), /SWITCHYARD_UNSET_MASTER/)
})
