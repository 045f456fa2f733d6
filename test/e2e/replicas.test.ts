/**
 * Two gateway processes (the CLI, as users run it, on an unchanged LiteLLM config with `router_settings.redis_url`)
 * sharing one real redis-server and one SQLite file: a 60 RPM key admits exactly 60 calls a minute over both; a
 * key's max_parallel_requests holds over both; a deployment cooled by one process is skipped by the other; priority
 * order holds over both; killing Redis under load loses no call to a 5xx. The fake LLM upstreams run in this test
 * process; everything else is the real thing.
 */
import t from 'tap'
import OpenAI from 'openai'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, freePort, spawnProc, waitListening, type Proc } from '../helpers/cli.js'
import { defaultChat, delay, errorReply, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { startRedis } from '../helpers/redis.js'
import { admin, deployment, eventually, generateKey, MASTER } from './helpers.js'

/** The capacity-2 group's upstream: counts what it holds at once and keeps each call `holdMs`. */
const seen = { arrivals: [] as string[], current: 0, max: 0 }
let holdMs = 250
const counted: Behaviour = async (ctx) => {
  seen.current++
  seen.max = Math.max(seen.max, seen.current)
  seen.arrivals.push(String(ctx.record.body?.messages?.[0]?.content ?? ''))
  void ctx.closed.then(() => { seen.current-- })
  await delay(holdMs, defaultChat())(ctx)
}

const fast = await startUpstream(t)
const slow = await startUpstream(t, { chat: delay(1_500, defaultChat()) })
const gated = await startUpstream(t, { chat: counted })
const broken = await startUpstream(t, { chat: errorReply(500, { message: 'deployment down', type: 'server_error' }) })
const redis = await startRedis(t)
const dir = mkdtempSync(join(tmpdir(), 'sy-replicas-'))
const configPath = join(dir, 'config.yaml')
writeFileSync(configPath, `
general_settings:
  master_key: ${MASTER}
router_settings:
  redis_url: ${redis.url}
  allowed_fails: 1
  cooldown_time: 60
  num_retries: 2
model_list:
${deployment('gpt-4o-mini', fast.url)}${deployment('slow-model', slow.url, 'gpt-4o-mini')}${deployment('flaky', fast.url, 'gpt-4o-mini')}${deployment('flaky', broken.url, 'gpt-4o-mini')}  - model_name: capped
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${gated.url}
      api_key: sk-upstream
      max_parallel_requests: 2
`)

async function gateway(): Promise<{ proc: Proc; url: string }> {
  const port = await freePort()
  const proc = spawnProc(t, process.execPath, [CLI, '--config', configPath, '--port', String(port), '--host', '127.0.0.1'], { SWITCHYARD_DATA_DIR: dir })
  return { proc, url: await waitListening(proc) }
}
const [a, b] = await Promise.all([gateway(), gateway()])

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
function chat(url: string, key: string, model = 'gpt-4o-mini', content = 'hi', extra: Record<string, unknown> = {}) {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 })
    .chat.completions.create({ model, messages: [{ role: 'user', content }], max_tokens: 8, ...extra } as any)
}
/** 'ok', or the failed call's status. */
const outcome = (p: Promise<unknown>) => p.then(() => 'ok' as const, (e: any) => (e?.status as number) ?? String(e))

t.test('a 60 RPM key admits exactly 60 calls a minute over both processes', async (t) => {
  // Windows are clock minutes: start with at least 20 s of this one left, so the burst cannot straddle two.
  const left = 60_000 - (Date.now() % 60_000)
  if (left < 20_000) await sleep(left + 50)
  const k = await generateKey(t, a.url, { rpm_limit: 60 })
  const results = await Promise.all(Array.from({ length: 90 }, (_, i) => outcome(chat(i % 2 ? a.url : b.url, k.key))))
  t.equal(results.filter((r) => r === 'ok').length, 60, 'exactly 60 served')
  t.equal(results.filter((r) => r === 429).length, 30, 'the other 30 refused with 429')
})

t.test('max_parallel_requests holds over both processes', async (t) => {
  const k = await generateKey(t, a.url, { max_parallel_requests: 2 })
  const first = [outcome(chat(a.url, k.key, 'slow-model')), outcome(chat(b.url, k.key, 'slow-model'))]
  await sleep(500)   // both in flight (the upstream holds them 1.5 s)
  t.equal(await outcome(chat(a.url, k.key)), 429, 'a third call through A is refused')
  t.equal(await outcome(chat(b.url, k.key)), 429, 'and through B')
  t.same(await Promise.all(first), ['ok', 'ok'])
})

t.test('a deployment cooled down by one process is skipped by the other', async (t) => {
  // Through A until the broken deployment has failed past allowed_fails (retries land on the healthy one).
  for (let i = 0; i < 10; i++) t.equal(await outcome(chat(a.url, MASTER, 'flaky')), 'ok', `call ${i} through A served`)
  t.ok(broken.requests.length >= 2, `the broken deployment failed ${broken.requests.length} times`)
  const before = broken.requests.length
  for (let i = 0; i < 12; i++) t.equal(await outcome(chat(b.url, MASTER, 'flaky')), 'ok')
  t.equal(broken.requests.length, before, 'B never sent a call to the deployment A cooled down')
})

t.test('priority order holds over both processes (capacity 2 in all)', async (t) => {
  seen.arrivals.length = 0
  seen.max = 0
  const low = Array.from({ length: 12 }, (_, i) => outcome(chat(i % 2 ? a.url : b.url, MASTER, 'capped', `low-${i}`, { priority: 100 })))
  await sleep(400)   // the low backlog is queued in Redis behind the two admitted calls
  const high = Array.from({ length: 4 }, (_, i) => outcome(chat(i % 2 ? a.url : b.url, MASTER, 'capped', `high-${i}`, { priority: 0 })))
  const results = await Promise.all([...low, ...high])
  t.same(results.filter((r) => r !== 'ok'), [], 'every call served')
  const highAt = seen.arrivals.map((x, i) => (x.startsWith('high-') ? i : -1)).filter((i) => i >= 0)
  // The two calls in flight when the high ones came, and at most two more admitted while they were being sent.
  t.ok(highAt.every((i) => i < 8), `the priority-0 calls reached the upstream ahead of the backlog (at ${highAt})`, { arrivals: seen.arrivals })
  t.equal(seen.max, 2, 'the upstream never held more than 2 at once')

  // The log record says how long each call waited and at which priority.
  const rows = await eventually(async () => {
    const r = await admin(a.url, 'GET', '/spend/logs')
    const capped = Array.isArray(r.body) ? r.body.filter((x: any) => x.model_group === 'capped') : []
    return capped.length >= 16 ? capped : undefined
  }, 10_000, 'spend rows of the 16 capped calls')
  t.ok(rows.every((r: any) => typeof r.metadata?.queue_time_ms === 'number'), 'every row has queue_time_ms')
  t.same([...new Set(rows.map((r: any) => r.metadata.priority))].sort(), [0, 100], 'and the priority it queued at')
  t.ok(rows.some((r: any) => r.metadata.priority === 100 && r.metadata.queue_time_ms > 500), 'the low backlog waited')
})

t.test('killing Redis under load loses no call to a 5xx', async (t) => {
  holdMs = 150
  const k = await generateKey(t, b.url, { rpm_limit: 10_000, max_parallel_requests: 100 })
  const calls: Array<Promise<unknown>> = []
  for (let i = 0; i < 40; i++) {
    const url = i % 2 ? a.url : b.url
    calls.push(outcome(chat(url, k.key, i % 4 === 0 ? 'capped' : 'gpt-4o-mini', `load-${i}`, { priority: i % 3 })))
    if (i === 15) await redis.stop()   // SIGKILL, mid-load: some calls queued in Redis, some in flight
    await sleep(10)
  }
  const results = await Promise.all(calls)
  const failed = results.filter((r) => r !== 'ok')
  t.same(failed.filter((r) => typeof r !== 'number' || r >= 500), [], 'no 5xx and no broken connection')
  t.same(failed, [], 'in fact every call was served')
  for (let i = 0; i < 4; i++) t.equal(await outcome(chat(i % 2 ? a.url : b.url, k.key)), 'ok', 'and calls keep being served without Redis')
  t.match(a.proc.stderr() + b.proc.stderr(), /Redis unreachable/, 'the outage was logged')
  const ready = await fetch(`${a.url}/health/readiness`)
  t.equal(ready.status, 200, 'still ready: nothing needs Redis to serve')
  t.match(await ready.json(), { cache: 'redis', cache_status: 'disconnected' }, 'readiness says Redis is down')
})
