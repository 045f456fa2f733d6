/**
 * prometheus: a real gateway (SQLite store, auth, keys, priority-queue, rate-limit, router, cooldown) in front of a
 * fake upstream. Plain, streamed, failing, rate-limited and queued calls are made with the openai client; /metrics is
 * parsed with a strict Prometheus text-format parser written below (prom-client only writes the format), and its
 * counters, histogram counts, token and spend sums and budget gauges are checked against the calls made.
 * Time that matters (rate-limit windows, cooldowns) runs on a fake clock.
 */
import t from 'tap'
import OpenAI from 'openai'
import { asValue } from 'awilix'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, errorReply, startUpstream } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'
import { tempDb } from './keys-harness.js'
import { definePlugin } from '../../core/plugin.js'
import { Hist, DerivedHistogram } from '../../plugins/prometheus/histogram.js'

// ---- a strict Prometheus text exposition (0.0.4) parser ----

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}
interface Family {
  name: string
  type: string
  help: string
  samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Infinity
  if (s === '-Inf') return -Infinity
  if (s === 'NaN') return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value '${s}' in: ${line}`)
  return Number(s)
}

/** Parses a label set starting after '{'; returns the labels and the index after '}'. */
function parseLabels(line: string, i: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {}
  for (;;) {
    if (line[i] === '}') return [labels, i + 1]
    const eq = line.indexOf('=', i)
    if (eq < 0) throw new Error(`label without '=': ${line}`)
    const name = line.slice(i, eq)
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name '${name}': ${line}`)
    if (name in labels) throw new Error(`duplicate label '${name}': ${line}`)
    if (line[eq + 1] !== '"') throw new Error(`label value not quoted: ${line}`)
    let j = eq + 2
    let v = ''
    for (;;) {
      const c = line[j]
      if (c === undefined) throw new Error(`unterminated label value: ${line}`)
      if (c === '\\') {
        const n = line[j + 1]
        if (n === 'n') v += '\n'
        else if (n === '\\' || n === '"') v += n
        else throw new Error(`bad escape '\\${n}': ${line}`)
        j += 2
        continue
      }
      if (c === '"') break
      v += c
      j++
    }
    labels[name] = v
    i = j + 1
    if (line[i] === ',') i++
    else if (line[i] !== '}') throw new Error(`expected ',' or '}' at ${i}: ${line}`)
  }
}

function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline')
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  let current: Family | null = null
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7)
      const sp = rest.indexOf(' ')
      const name = sp < 0 ? rest : rest.slice(0, sp)
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name: ${line}`)
      let f = families.get(name)
      if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }))
      if (line.startsWith('# TYPE ')) {
        const type = rest.slice(sp + 1)
        if (!TYPES.has(type)) throw new Error(`bad type: ${line}`)
        if (f.samples.length) throw new Error(`TYPE after samples: ${line}`)
        f.type = type
      } else f.help = rest.slice(sp + 1)
      current = f
      continue
    }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)
    if (!m) throw new Error(`bad sample line: ${line}`)
    const name = m[1]!
    let i = name.length
    let labels: Record<string, string> = {}
    if (line[i] === '{') [labels, i] = parseLabels(line, i + 1)
    if (line[i] !== ' ') throw new Error(`expected a space before the value: ${line}`)
    const parts = line.slice(i + 1).split(' ')
    if (parts.length > 2) throw new Error(`trailing fields: ${line}`)
    const value = parseValue(parts[0]!, line)
    if (!current) throw new Error(`sample before any TYPE: ${line}`)
    const base = current.name
    const ok = name === base || (current.type === 'histogram' && [`${base}_bucket`, `${base}_sum`, `${base}_count`].includes(name)) ||
      (current.type === 'summary' && [`${base}_sum`, `${base}_count`].includes(name))
    if (!ok) throw new Error(`sample ${name} outside its family ${base}`)
    if (current.type === 'counter' && !(value >= 0)) throw new Error(`negative counter: ${line}`)
    const key = name + JSON.stringify(Object.entries(labels).sort())
    if (seen.has(key)) throw new Error(`duplicate series: ${line}`)
    seen.add(key)
    current.samples.push({ name, labels, value })
  }
  // Histograms: buckets cumulative, +Inf equals _count, per label set.
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const groups = new Map<string, Sample[]>()
    for (const s of f.samples) {
      if (s.name !== `${f.name}_bucket`) continue
      const { le, ...rest } = s.labels
      if (le === undefined) throw new Error(`bucket without le in ${f.name}`)
      const k = JSON.stringify(Object.entries(rest).sort())
      groups.set(k, [...(groups.get(k) ?? []), s])
    }
    for (const [k, buckets] of groups) {
      let prev = -1
      let prevLe = -Infinity
      for (const b of buckets) {
        const le = parseValue(b.labels.le!, 'le')
        if (le <= prevLe || b.value < prev) throw new Error(`${f.name}: buckets not cumulative for ${k}`)
        prev = b.value
        prevLe = le
      }
      if (prevLe !== Infinity) throw new Error(`${f.name}: no +Inf bucket for ${k}`)
      const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k)
      if (!count || count.value !== prev) throw new Error(`${f.name}: +Inf bucket != _count for ${k}`)
    }
  }
  return families
}

function samples(fams: Map<string, Family>, family: string, name = family, where: Record<string, string> = {}): Sample[] {
  const f = fams.get(family)
  if (!f) return []
  return f.samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
}
const sum = (ss: Sample[]) => ss.reduce((a, s) => a + s.value, 0)

// ---- the parser itself refuses malformed input (so "it parses" means something) ----

t.test('the parser rejects malformed expositions', async (t) => {
  const good = '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"} 1\n'
  t.ok(parseExposition(good).get('a_total'))
  for (const bad of [
    '# TYPE a counter\na{k="v} 1\n',
    '# TYPE a counter\na{k="v"} one\n',
    '# TYPE a counter\na{k="v"} 1\na{k="v"} 2\n',
    '# TYPE a counter\nb 1\n',
    '# TYPE a counter\na -1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
    '# TYPE a counter\na{1k="v"} 1\n',
    '# TYPE a counter\na 1',
  ]) t.throws(() => parseExposition(bad), JSON.stringify(bad))
})

t.test('Hist buckets: upper-inclusive, +Inf past the last bound', async (t) => {
  const h = new Hist([0.1, 1, 10])
  for (const v of [0.05, 0.1, 0.5, 1, 10, 11]) h.observe(v)
  t.same([...h.counts], [2, 2, 1, 1])
  t.equal(h.count, 6)
  t.equal(h.sum, 22.65)
  const d = new DerivedHistogram('x_seconds', 'x', ['a'], [0.1, 1, 10], (add) => {
    add({ a: 'one', b: 'ignored' }, h)
    add({ a: 'one', b: 'other' }, h)
  })
  const got = await d.get()
  const buckets = got.values.filter((v) => v.metricName === 'x_seconds_bucket').map((v) => v.value)
  t.same(buckets, [4, 8, 10, 12], 'two series with the same label set merge into one, cumulative')
})

// ---- the gateway ----

const MASTER = 'sk-master-prom-1234'
let now = Date.UTC(2030, 0, 1, 0, 0, 5)
const clock = { now: () => now }
const IN_PRICE = 0.000001
const OUT_PRICE = 0.000004

const up = await startUpstream(t)
// One upstream, answering by model: 'slow' once the test releases it (it holds the queue still while /metrics is
// read; released, it answers after 20 ms), 'broken-*' with 500, anything else at once.
const chatNow = defaultChat()
let releaseSlow: () => void = () => {}
let slowGate: Promise<void> = Promise.resolve()
const chatSlow = async (ctx: Parameters<typeof chatNow>[0]) => {
  await slowGate
  return delay(20, defaultChat())(ctx)
}
const chatBroken = errorReply(500, { message: 'upstream exploded' })
up.on('chat', (ctx) => {
  const m = String(ctx.record.body?.model ?? '')
  return m === 'slow' ? chatSlow(ctx) : m.startsWith('broken') ? chatBroken(ctx) : chatNow(ctx)
})

/** Registers `loggingStats` as the logging plugin does, with fixed numbers (it is the read path under test). */
const sinkStats = definePlugin({
  name: 'sink-stats-probe',
  register(container) {
    container.register({
      loggingStats: asValue(() => [{ sink: 'helicone', buffered: 3, sent: 10, dropped: 1, failures: 2 }]),
    } as never)
  },
})

const price = `input_cost_per_token: ${IN_PRICE}, output_cost_per_token: ${OUT_PRICE}`
const gw = await startGateway(t, `
pipeline:
  - request-id
  - prometheus
  - store-sqlite: { path: ${JSON.stringify(tempDb(t))} }
  - auth: { master_key: ${MASTER} }
  - keys
  - priority-queue
  - rate-limit
  - router
upstream:
  - cooldown: { allowed_fails: 0, cooldown_time: 60 }
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up, ${price} }
    model_info: { id: dep-mini }
  - model_name: queued
    litellm_params: { model: openai/slow, api_base: ${up.url}, api_key: sk-up, max_parallel_requests: 1, ${price} }
    model_info: { id: dep-queued }
  - model_name: broken
    litellm_params: { model: openai/broken-a, api_base: ${up.url}, api_key: sk-up, rpm: 100, ${price} }
    model_info: { id: dep-broken-a }
  - model_name: broken
    litellm_params: { model: openai/broken-b, api_base: ${up.url}, api_key: sk-up, ${price} }
    model_info: { id: dep-broken-b }
`, { plugins: [sinkStats], clock })

const admin = (path: string, body: unknown) => jsonCall(gw.url, 'POST', path, body, MASTER)
async function newKey(body: Record<string, unknown>): Promise<{ key: string; token: string }> {
  const r = await admin('/key/generate', body)
  if (r.status !== 200) throw new Error(`key/generate: ${JSON.stringify(r.body)}`)
  return { key: r.body.key, token: r.body.token_id ?? r.body.token }
}
const client = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 })
const HI = [{ role: 'user' as const, content: 'hello there, how are you today?' }]

async function scrape(): Promise<{ text: string; fams: Map<string, Family>; contentType: string | null }> {
  const res = await fetch(`${gw.url}/metrics`)
  const text = await res.text()
  if (res.status !== 200) throw new Error(`/metrics ${res.status}: ${text}`)
  return { text, fams: parseExposition(text), contentType: res.headers.get('content-type') }
}

/** Scrape until the client-request counter reaches `n` (a call is recorded once its response has been written). */
async function scrapeAfter(n: number): Promise<Map<string, Family>> {
  const until = Date.now() + 5_000
  for (;;) {
    const { fams } = await scrape()
    const got = sum(samples(fams, 'litellm_proxy_total_requests_metric_total'))
    if (got >= n || Date.now() > until) return fams
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('/metrics counts the calls made: requests, failures, tokens, spend, latency, budgets, limits, queue, sinks', async (t) => {
  const budgetKey = await newKey({ max_budget: 10, key_alias: 'budget-key' })
  const limited = await newKey({ rpm_limit: 1, key_alias: 'limited' })
  const c = client(budgetKey.key)
  let prompt = 0
  let completion = 0
  let calls = 0

  // 3 plain calls.
  for (let i = 0; i < 3; i++) {
    const r = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI })
    prompt += r.usage!.prompt_tokens
    completion += r.usage!.completion_tokens
    calls++
  }
  // 2 streamed calls with usage.
  for (let i = 0; i < 2; i++) {
    const s = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true, stream_options: { include_usage: true } })
    let usage: OpenAI.CompletionUsage | undefined
    for await (const chunk of s) if (chunk.usage) usage = chunk.usage
    t.ok(usage, 'the stream reported usage')
    prompt += usage!.prompt_tokens
    completion += usage!.completion_tokens
    calls++
  }
  // 2 failing calls: the upstream answers 500.
  const failStatuses: number[] = []
  for (let i = 0; i < 2; i++) {
    const e = await c.chat.completions.create({ model: 'broken', messages: HI }).then(() => null, (err: unknown) => err)
    t.ok(e instanceof OpenAI.APIError, 'the failing call raised')
    failStatuses.push((e as InstanceType<typeof OpenAI.APIError>).status!)
    calls++
  }
  // rpm_limit 1: one call, then one refused by the gateway.
  await client(limited.key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI }).then((r) => {
    prompt += r.usage!.prompt_tokens
    completion += r.usage!.completion_tokens
  })
  calls++
  const refused = await client(limited.key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI }).then(() => null, (e: unknown) => e)
  t.ok(refused instanceof OpenAI.RateLimitError, 'the second call of the minute is refused')
  calls++

  // 3 priority-queued calls on a group with room for one at a time; look at the queue while two wait. The upstream
  // holds the first until the test has seen the others queued, so a slow machine cannot miss the moment.
  slowGate = new Promise<void>((resolve) => { releaseSlow = resolve })
  const queued = [0, 1, 2].map(() => c.chat.completions.create({ model: 'queued', messages: HI, priority: 1 } as never) as Promise<OpenAI.ChatCompletion>)
  // The three requests reach the gateway in some order: scrape until both waiters are queued (bounded: 10 s).
  let during = (await scrape()).fams
  const depth = (f: Map<string, Family>) => sum(samples(f, 'switchyard_queue_depth', 'switchyard_queue_depth', { model_group: 'queued', priority: '1' }))
  for (const until = Date.now() + 10_000; depth(during) < 2 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 5))
    during = (await scrape()).fams
  }
  releaseSlow()
  t.equal(depth(during), 2, 'two calls wait')
  t.equal(sum(samples(during, 'switchyard_queue_in_flight', 'switchyard_queue_in_flight', { model_group: 'queued', priority: '1' })), 1, 'one in flight')
  t.equal(sum(samples(during, 'switchyard_queue_capacity', 'switchyard_queue_capacity', { model_group: 'queued' })), 1)
  for (const r of await Promise.all(queued)) {
    prompt += r.usage!.prompt_tokens
    completion += r.usage!.completion_tokens
    calls++
  }

  const fams = await scrapeAfter(calls)
  const { contentType, text } = await scrape()
  t.match(contentType, /^text\/plain; version=0\.0\.4/)
  t.notMatch(text, budgetKey.key, 'no key in the exposition')

  // Client requests: one per call, by status.
  t.equal(sum(samples(fams, 'litellm_proxy_total_requests_metric_total')), calls, 'every call counted once')
  t.equal(sum(samples(fams, 'litellm_requests_metric_total')), calls)
  t.equal(sum(samples(fams, 'litellm_proxy_total_requests_metric_total', undefined, { status_code: '200' })), calls - 3)
  const failed = samples(fams, 'litellm_proxy_failed_requests_metric_total')
  t.equal(sum(failed), 3, 'two upstream failures and one refusal')
  t.equal(sum(failed.filter((s) => s.labels.exception_status === String(failStatuses[0]))), 2, 'failures by the status the client got')
  t.equal(sum(failed.filter((s) => s.labels.exception_status === '429')), 1)
  t.equal(sum(samples(fams, 'litellm_llm_api_failed_requests_metric_total')), 2, 'failed upstream calls')
  t.equal(sum(samples(fams, 'switchyard_rate_limit_rejections_total', undefined, { limit: 'rpm', api_key_alias: 'limited' })), 1)

  // Labels: the key hash and alias, never the key; the requested model and the deployment.
  const mine = samples(fams, 'litellm_proxy_total_requests_metric_total', undefined, { api_key_alias: 'budget-key', requested_model: 'gpt-4o-mini' })
  t.equal(sum(mine), 5)
  t.equal(mine[0]!.labels.hashed_api_key, budgetKey.token, 'hashed_api_key is the key\'s hash')
  t.equal(mine[0]!.labels.model_id, 'dep-mini')
  t.equal(mine[0]!.labels.route, '/v1/chat/completions')

  // Tokens and spend.
  t.equal(sum(samples(fams, 'litellm_input_tokens_metric_total')), prompt, 'input tokens')
  t.equal(sum(samples(fams, 'litellm_output_tokens_metric_total')), completion, 'output tokens')
  t.equal(sum(samples(fams, 'litellm_total_tokens_metric_total')), prompt + completion, 'total tokens')
  const spend = sum(samples(fams, 'litellm_spend_metric_total'))
  t.ok(Math.abs(spend - (prompt * IN_PRICE + completion * OUT_PRICE)) < 1e-12, `spend ${spend} = tokens x deployment prices`)

  // Histograms: one observation per call; time to first token for the streams only.
  t.equal(sum(samples(fams, 'litellm_request_total_latency_metric', 'litellm_request_total_latency_metric_count')), calls)
  t.equal(sum(samples(fams, 'litellm_overhead_latency_metric', 'litellm_overhead_latency_metric_count')), calls - 1,
    'overhead of every call that reached a handler (the refused one did not)')
  t.equal(sum(samples(fams, 'litellm_llm_api_time_to_first_token_metric', 'litellm_llm_api_time_to_first_token_metric_count')), 2)
  t.equal(sum(samples(fams, 'litellm_llm_api_latency_metric', 'litellm_llm_api_latency_metric_count')), calls - 1, 'every call that reached an upstream')
  const wait = samples(fams, 'switchyard_queue_wait_seconds', 'switchyard_queue_wait_seconds_count', { model_group: 'queued', priority: '1' })
  t.equal(sum(wait), 3, 'three queue waits')
  t.ok(sum(samples(fams, 'switchyard_queue_wait_seconds', 'switchyard_queue_wait_seconds_sum')) === 0,
    'queue wait is measured on the gateway clock (fake here: it did not move)')
  t.equal(sum(samples(fams, 'switchyard_queue_depth', 'switchyard_queue_depth', { model_group: 'queued' })), 0, 'the queue drained')

  // Budgets: the key with max_budget 10.
  const keySpend = sum(samples(fams, 'litellm_spend_metric_total', undefined, { api_key_alias: 'budget-key' }))
  const remaining = samples(fams, 'litellm_remaining_api_key_budget_metric', undefined, { hashed_api_key: budgetKey.token })
  t.equal(remaining.length, 1)
  t.ok(Math.abs(remaining[0]!.value - (10 - keySpend)) < 1e-12, `remaining budget ${remaining[0]!.value} = 10 - ${keySpend}`)
  t.equal(remaining[0]!.labels.api_key_alias, 'budget-key')
  t.equal(sum(samples(fams, 'litellm_api_key_max_budget_metric', undefined, { hashed_api_key: budgetKey.token })), 10)
  t.equal(samples(fams, 'litellm_remaining_api_key_budget_metric', undefined, { api_key_alias: 'limited' }).length, 0, 'no budget, no gauge')

  // Limits: the limited key's remaining requests after its one call.
  t.equal(sum(samples(fams, 'litellm_remaining_requests_metric', undefined, { api_key_alias: 'limited' })), 0)

  // Deployments: attempts, failures, cooldowns.
  t.equal(sum(samples(fams, 'litellm_deployment_total_requests_total')), calls - 1)
  t.equal(sum(samples(fams, 'litellm_deployment_failure_responses_total')), 2)
  t.equal(sum(samples(fams, 'litellm_deployment_success_responses_total', undefined, { model_id: 'dep-mini' })), 6)
  t.equal(sum(samples(fams, 'litellm_deployment_failure_responses_total', undefined, { exception_status: '500' })), 2, 'the upstream status')
  const cooled = samples(fams, 'litellm_deployment_cooled_down_total')
  t.equal(sum(cooled), 2, 'each broken deployment cooled once')
  t.same(cooled.map((s) => s.labels.exception_status), ['500', '500'])
  const state = (id: string) => samples(fams, 'litellm_deployment_state', undefined, { model_id: id })[0]?.value
  t.equal(state('dep-broken-a'), 2, 'cooling: complete outage')
  t.equal(state('dep-mini'), 0, 'healthy')
  t.equal(sum(samples(fams, 'litellm_deployment_rpm_limit', undefined, { model_id: 'dep-broken-a' })), 100)

  // Logging sinks, from the loggingStats registration.
  t.equal(sum(samples(fams, 'switchyard_logging_buffered', undefined, { sink: 'helicone' })), 3)
  t.equal(sum(samples(fams, 'switchyard_logging_sent_total', undefined, { sink: 'helicone' })), 10)
  t.equal(sum(samples(fams, 'switchyard_logging_dropped_total', undefined, { sink: 'helicone' })), 1)
  t.equal(sum(samples(fams, 'litellm_callback_logging_failures_metric_total', undefined, { callback_name: 'helicone' })), 2)

  // Process metrics are on by default.
  t.ok(fams.has('process_cpu_user_seconds_total'), 'process metrics')

  // Counters keep counting across scrapes (they are totals, not deltas).
  const again = await scrape()
  t.equal(sum(samples(again.fams, 'litellm_proxy_total_requests_metric_total')), calls)
  now += 60_000
})

t.test('require_auth: /metrics asks for a key', async (t) => {
  const g = await startGateway(t, `
pipeline:
  - auth: { master_key: ${MASTER} }
  - prometheus: { require_auth: true, process_metrics: false }
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: ${up.url}, api_key: sk-up }
`)
  const anon = await fetch(`${g.url}/metrics`)
  t.equal(anon.status, 401)
  await anon.text()
  const ok = await fetch(`${g.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })
  t.equal(ok.status, 200)
  const fams = parseExposition(await ok.text())
  t.notOk(fams.has('process_cpu_user_seconds_total'), 'process metrics off')
  t.ok(fams.has('litellm_proxy_total_requests_metric_total'))
})
