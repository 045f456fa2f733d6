/**
 * Robustness, upstream side: the gateway (the built CLI, on an unchanged LiteLLM config) in front of fake LLM
 * upstreams that return 500s, reset connections, hang, stream slowly, stall or cut streams mid-way. Everything
 * else is real: the CLI process, its embedded store, virtual keys with a budget, the official client.
 *
 * - Groups with one broken and one healthy deployment, and a single broken deployment with a fallback group, under
 *   load: retries and fallbacks serve every call (no 5xx reaches the client that a retry or fallback could avoid).
 * - A group whose every deployment fails: a clean OpenAI error with the mapped status, never a hang.
 * - Slow, stalled and cut streams: the client's stream ends (an error event, or a close), never a hang.
 * After each: one spend row per call, the key's spend equals its rows, the process is alive with nothing but JSON
 * on stderr, and memory is back near its post-warm-up baseline.
 */
import t from 'tap'
import { errorReply, slowStream, startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { dropMidStream, firehose, hang, reset, stallMidStream } from './behaviours.js'
import {
  MASTER, assertAlive, assertMemorySettles, chat, clientFor, deployment, eventually, generateKey, pool, rowsAtLeast, rssKb,
  sampleRss, slowReader, sleep, spendRows, admin, startCliGateway, assertTally, tally, type CallResult,
} from './harness.js'

/** The upstream timeout (router_settings.timeout and stream_timeout), s: short, so a hang costs little, with room for a loaded machine. */
const TIMEOUT_S = 2
/** A call that has not ended after this long is a hang (ms): several timeouts plus retry backoff on a loaded box. */
const DEADLINE_MS = 15_000
/** Slow readers held open at once, and for how long (ms). */
const READERS = 4
const SLOW_READ_MS = 8_000
/**
 * How soon the upstream request must close after its client left, ms: at once on an idle machine (a few ms); the
 * margin is for a loaded CI box's event-loop lag, far below a leak (the upstream would stream on to its end).
 */
const CUT_MS = 3_000
/** Bytes one firehose stream may get written while its reader is slow: the loopback socket buffers, with room. */
const HOSE_BOUND_BYTES = 24 * 1024 * 1024
/** Gateway RSS growth allowed while the slow readers are open, MB. */
const SLOW_READ_RSS_MB = 30

const healthy = await startUpstream(t)
const broken500 = await startUpstream(t, { chat: errorReply(500, { message: 'upstream exploded', type: 'server_error' }) })
const broken503 = await startUpstream(t, { chat: errorReply(503, { message: 'overloaded', type: 'server_error' }) })
const resetting = await startUpstream(t, { chat: reset() })
const hanging = await startUpstream(t, { chat: hang() })
const slow = await startUpstream(t, { chat: slowStream({ intervalMs: 150, chunks: 12 }) })
const stalling = await startUpstream(t, { chat: stallMidStream(3) })
const cutReset = await startUpstream(t, { chat: dropMidStream('reset', 3) })
const cutEnd = await startUpstream(t, { chat: dropMidStream('end', 3) })
/** ~20 s of chunks (400, 50 ms apart): every client leaves it long before its end. */
const long = await startUpstream(t, { chat: slowStream({ intervalMs: 50, chunks: 400 }) })
/** 1 KiB content chunks as fast as the reader takes them, up to 128 MiB. */
const hose = firehose({ chunkChars: 1024, maxBytes: 128 * 1024 * 1024 })
const hoseUp = await startUpstream(t, { chat: hose.behaviour })

// As a LiteLLM user writes it: retries, a timeout, fallbacks. Cooldowns are off so the broken deployments keep
// being hit (with them on, a broken deployment is skipped after a few failures and the faults stop being exercised).
const gw = await startCliGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  num_retries: 2
  timeout: ${TIMEOUT_S}
  stream_timeout: ${TIMEOUT_S}
  disable_cooldowns: true
  fallbacks: [{"solo-down": ["backup"]}]
model_list:
${[
  ['flaky-500', broken500], ['flaky-500', healthy], ['flaky-reset', resetting], ['flaky-reset', healthy],
  ['flaky-hang', hanging], ['flaky-hang', healthy], ['solo-down', broken503], ['backup', healthy],
  ['all-down', broken500], ['all-down', resetting], ['slow-stream', slow], ['stall-stream', stalling],
  ['cut-reset', cutReset], ['cut-end', cutEnd], ['long-stream', long], ['firehose', hoseUp],
].map(([name, upstream]) => deployment(name as string, (upstream as FakeUpstream).url)).join('')}`)

const key = await generateKey(gw.url, { key_alias: 'robust-upstream', max_budget: 1000 })
// The slow readers' own key: a firehose stream is charged for the megabytes it delivered (no max_tokens), which
// would pass any budget the other calls are checked against.
const slowKey = await generateKey(gw.url, { key_alias: 'robust-slow-readers' })
const client = clientFor(gw.url, key.key)
/** Every call this file makes with the key (each must leave exactly one spend row). */
const made: CallResult[] = []
const call = async (model: string, i: number, stream: boolean) => {
  const r = await chat(client, model, `call ${model} ${i}`, { stream, deadlineMs: DEADLINE_MS })
  made.push(r)
  return r
}

// Warm-up: the same mix the scenarios run, before the memory baseline.
const FLAKY = ['flaky-500', 'flaky-reset', 'flaky-hang', 'solo-down'] as const
await pool(40, 10, (i) => call(FLAKY[i % FLAKY.length]!, i, i % 2 === 0))
await pool(12, 6, (i) => call(['slow-stream', 'stall-stream', 'cut-reset', 'cut-end'][i % 4]!, i, true))
await pool(10, 10, (i) => chat(client, 'long-stream', `warm ${i}`, { stream: true, deadlineMs: DEADLINE_MS, abortAfterChunks: 3 }).then((r) => made.push(r)))
const baselineKb = rssKb(gw.pid)

t.test('one broken deployment (500 / reset / hang) or a broken group with a fallback: retries and fallbacks serve every call', async (t) => {
  t.comment(`baseline VmRSS after warm-up: ${(baselineKb / 1024).toFixed(1)} MB`)
  const before = { r500: broken500.requests.length, reset: resetting.requests.length, hang: hanging.requests.length, r503: broken503.requests.length }
  const results = await pool(160, 16, (i) => call(FLAKY[i % FLAKY.length]!, 100 + i, i % 2 === 1))
  assertTally(t, results, { ok: 160 }, 'every call served: no 5xx, no broken connection, no hang')
  t.ok(broken500.requests.length - before.r500 > 5, `the 500 deployment was hit (${broken500.requests.length - before.r500} times)`)
  t.ok(resetting.requests.length - before.reset > 5, `the resetting deployment was hit (${resetting.requests.length - before.reset} times)`)
  t.ok(hanging.requests.length - before.hang > 5, `the hanging deployment was hit (${hanging.requests.length - before.hang} times)`)
  t.ok(broken503.requests.length - before.r503 >= 3 * 40, `solo-down was tried num_retries + 1 times per call before its fallback (${broken503.requests.length - before.r503})`)
  const slowest = Math.max(...results.map((r) => r.ms))
  t.ok(slowest < DEADLINE_MS, `slowest call ${slowest} ms`)
  // Every hung upstream request was given up at the timeout and its connection closed.
  await eventually(async () => hanging.requests.every((r) => r.closedAt !== undefined), 5_000, 'hung upstream requests closed')
  t.pass('every hung upstream request was closed by the gateway')
  assertAlive(t, gw, 'after the flaky load')
  await assertMemorySettles(t, gw, baselineKb, 'after the flaky load')
})

t.test('every deployment of a group fails: a clean OpenAI error with the mapped status, never a hang', async (t) => {
  const results = await pool(40, 10, (i) => call('all-down', i, i % 2 === 0))
  t.equal(results.filter((r) => r.kind === 'error').length, 40, `every call is an OpenAI error (${JSON.stringify(tally(results))})`)
  for (const r of results) {
    if (r.kind !== 'error') continue
    // The last attempt decides: the 500 deployment's error (500), or the reset one's connection error (502).
    if (![500, 502].includes(r.status ?? 0) || r.midStream || !r.type || !r.message) {
      t.fail(`unexpected error shape ${JSON.stringify(r)}`)
    }
  }
  t.same([...new Set(results.map((r) => (r.kind === 'error' ? r.status : r.kind)))].sort(), [500, 502], 'both mapped statuses seen (500 upstream error, 502 connection error)')
  const types = new Set(results.map((r) => (r.kind === 'error' ? `${r.status} ${r.type}` : '')))
  t.same([...types].sort(), ['500 api_error', '502 api_connection_error'], 'with the OpenAI error types')
  t.ok(Math.max(...results.map((r) => r.ms)) < DEADLINE_MS, 'no call hung')
  assertAlive(t, gw, 'after the all-down load')
})

t.test('slow, stalled and cut streams end (error event or close), never hang; the gateway keeps serving', async (t) => {
  const kinds = ['slow-stream', 'stall-stream', 'cut-reset', 'cut-end'] as const
  const results = await pool(80, 16, (i) => call(kinds[i % 4]!, 200 + i, true))
  const by = (model: string) => results.filter((_, i) => kinds[i % 4] === model)
  assertTally(t, by('slow-stream'), { ok: 20 }, `slow streams (a chunk every 150 ms, under the ${TIMEOUT_S} s stream timeout) complete`)
  // Stalled after 3 chunks: the stream timeout ends it with an error event; the client's iteration throws.
  assertTally(t, by('stall-stream'), { 'error event': 20 }, 'stalled streams end with an error event')
  for (const r of by('stall-stream')) {
    if (r.kind === 'error' && !/timed out/i.test(r.message)) t.fail(`stall ended with an error that is not the timeout: ${r.message}`)
    if (r.ms > TIMEOUT_S * 1000 + 5_000) t.fail(`a stalled stream took ${r.ms} ms to end (timeout ${TIMEOUT_S} s)`)
  }
  assertTally(t, by('cut-reset'), { 'error event': 20 }, 'streams whose upstream connection resets end with an error event')
  for (const r of by('cut-reset')) if (r.kind === 'error' && !/connection/i.test(r.message)) t.fail(`cut-reset error: ${r.message}`)
  // Ended cleanly upstream without [DONE] or a finish_reason: cut short, so an error event, never a complete-looking stream.
  assertTally(t, by('cut-end'), { 'error event': 20 }, 'streams that end without [DONE] or finish_reason end with an error event')
  for (const r of by('cut-end')) if (r.kind === 'error' && !/before it was complete/i.test(r.message)) t.fail(`cut-end error: ${r.message}`)
  // Upstream side: every stalled request was closed by the gateway.
  await eventually(async () => stalling.requests.every((r) => r.closedAt !== undefined), 5_000, 'stalled upstream requests closed')
  t.pass('every stalled upstream request was closed by the gateway')

  const after = await pool(20, 10, (i) => call('backup', 300 + i, i % 2 === 0))
  assertTally(t, after, { ok: 20 }, 'the gateway keeps serving')
  assertAlive(t, gw, 'after the stream faults')
  await assertMemorySettles(t, gw, baselineKb, 'after the stream faults')
})

t.test('clients that leave mid-stream: the upstream request is closed at once, and the call is logged as aborted', async (t) => {
  const first = long.requests.length
  const results = await pool(60, 15, async (i) => {
    const r = await chat(client, 'long-stream', `leave ${i}`, { stream: true, deadlineMs: DEADLINE_MS, abortAfterChunks: 2 + (i % 5) })
    made.push(r)
    return r
  })
  assertTally(t, results, { left: 60 }, 'every client left after its first chunks')
  // Each left call's upstream request, found by its prompt: cut (not finished) within a second of the client leaving.
  const records = long.requests.slice(first)
  await eventually(async () => records.length >= 60 && records.every((r) => r.closedAt !== undefined), 5_000, 'upstream requests closed')
    .catch((e: Error) => t.fail(e.message, { arrived: records.length, open: records.filter((r) => r.closedAt === undefined).length }))
  const slowClose: string[] = []
  results.forEach((r, i) => {
    const rec = records.find((x) => x.body?.messages?.[0]?.content === `leave ${i}`)
    if (!rec || r.kind !== 'left') return slowClose.push(`call ${i}: no upstream record`)
    if (!rec.aborted) slowClose.push(`call ${i}: upstream response finished instead of being cut`)
    else if (rec.closedAt! - r.leftAt > CUT_MS) slowClose.push(`call ${i}: upstream closed ${rec.closedAt! - r.leftAt} ms after the client left`)
  })
  t.same(slowClose, [], `every upstream request was cut within ${CUT_MS} ms of its client leaving`)
  const rows = await rowsAtLeast(gw.url, key.token, made.length)
  const ids = new Set(results.map((r) => r.requestId))
  const mine = rows.filter((r) => ids.has(r.request_id))
  t.equal(mine.length, 60, 'a spend row for each call the client left')
  t.equal(mine.filter((r) => r.metadata?.client_aborted === true).length, 60, 'each flagged client_aborted')
  t.ok(mine.every((r) => r.spend > 0 && r.cost_source === 'estimated'), 'and charged for what it delivered (cost_source estimated)')
  assertAlive(t, gw, 'after the clients left')
})

t.test('slow readers (1 KiB per 100 ms from a stream that produces as fast as it can): no unbounded buffering', async (t) => {
  const first = hoseUp.requests.length
  const before = rssKb(gw.pid)
  const rss = sampleRss(gw.pid)
  const readers = Array.from({ length: READERS }, (_, i) =>
    slowReader(gw.url, slowKey.key, { model: 'firehose', messages: [{ role: 'user', content: `slow ${i}` }], stream: true, stream_options: { include_usage: true } },
      { bytes: 1024, everyMs: 100 }))
  await eventually(async () => hoseUp.requests.length - first === READERS, 5_000, 'the slow streams reached the upstream')
  await sleep(SLOW_READ_MS)
  const peakKb = rss.stop()
  const records = hoseUp.requests.slice(first)
  const written = records.map((r) => hose.written.get(r) ?? 0)
  t.same(readers.map((r) => r.status()), Array(READERS).fill(200), 'every slow reader got its stream')
  t.ok(readers.every((r) => r.received() > 8 * 1024), `they read slowly (${readers.map((r) => r.received()).join(', ')} bytes)`)
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1)
  // With backpressure end to end the upstream can only fill the socket buffers between it and the reader (a few MB
  // on loopback); a gateway that buffered would have drained it at loopback speed (hundreds of MB a second).
  t.ok(written.every((w) => w < HOSE_BOUND_BYTES), `the upstream was held back: ${written.map(mb).join(', ')} MB written per stream in ${SLOW_READ_MS / 1000} s (bound ${mb(HOSE_BOUND_BYTES)} MB)`)
  t.ok(peakKb - before < SLOW_READ_RSS_MB * 1024, `gateway VmRSS peak +${mb((peakKb - before) * 1024)} MB while ${READERS} slow readers were open (bound +${SLOW_READ_RSS_MB} MB)`)

  const leftAt = Date.now()
  for (const r of readers) r.destroy()
  await eventually(async () => records.every((r) => r.closedAt !== undefined), 5_000, 'the firehose requests closed')
  // Open until the readers left (a stream held back by its reader is not a stalled upstream: no stream timeout cut
  // it), then cut at once.
  t.ok(records.every((r) => r.aborted && r.closedAt! >= leftAt && r.closedAt! - leftAt < CUT_MS),
    `the upstream requests stayed open while the readers read, and were cut when they left (${records.map((r) => r.closedAt! - leftAt).join(', ')} ms)`)
  const ids = new Set(readers.map((r) => r.requestId()))
  const rows = await eventually(async () => {
    const all = await spendRows(gw.url, slowKey.token)
    const mine = all.filter((r) => ids.has(r.request_id))
    return mine.length === READERS ? mine : undefined
  }, 10_000, 'the slow readers\' spend rows')
  t.equal(rows.filter((r) => r.metadata?.client_aborted === true).length, READERS, 'a spend row each, flagged client_aborted')
  assertAlive(t, gw, 'after the slow readers')
  await assertMemorySettles(t, gw, baselineKb, 'after the slow readers')
})

t.test('one spend row per call, and the key is charged what its rows say', async (t) => {
  await rowsAtLeast(gw.url, key.token, made.length)
  await sleep(500) // a row too many would be written within this (flush interval 200 ms)
  const all = await spendRows(gw.url, key.token)
  t.equal(all.length, made.length, `${made.length} calls, ${all.length} rows`)
  t.equal(new Set(all.map((r) => r.request_id)).size, all.length, 'no row twice')
  const ids = new Set(all.map((r) => r.request_id))
  const missing = made.filter((c) => c.requestId && !ids.has(c.requestId))
  t.same(missing, [], 'every call whose request id the client saw has its row')
  const okIds = new Set(made.filter((c) => c.kind === 'ok').map((c) => c.requestId))
  t.same(all.filter((r) => okIds.has(r.request_id) && r.status !== 'success').map((r) => r.request_id), [], 'served calls are success rows')
  const sum = all.reduce((a, r) => a + Number(r.spend), 0)
  const spend = await eventually(async () => {
    const info = await admin(gw.url, 'GET', `/key/info?key=${key.token}`)
    return Math.abs(info.body.info.spend - sum) < 1e-9 ? { v: info.body.info.spend as number } : undefined
  }, 10_000, 'key spend = rows')
  t.ok(spend.v > 0 && spend.v <= 1000, `key spend ${spend.v.toFixed(4)} = sum of its rows, within its budget`)
  assertAlive(t, gw, 'at the end')
})
