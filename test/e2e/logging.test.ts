/**
 * Observability end to end (issue 19): a gateway booted from an unchanged LiteLLM config
 * (`litellm_settings.callbacks: [langfuse, otel, mlflow, helicone, prometheus]`, sink credentials in
 * `environment_variables:`) in front of a fake OpenAI upstream, with one real HTTP receiver per sink on 127.0.0.1.
 *
 * What each receiver gets is checked as the real backend would read it: OTLP bodies (otel, mlflow, langfuse) are
 * decoded with protobufjs from the OpenTelemetry protos in ../shared/data, Langfuse's pieces validated against its
 * OpenAPI spec, Helicone bodies against its async-log schema. Then the fields: model group, upstream model,
 * deployment, usage with cached and reasoning tokens, cost, time to first token, status and error, key alias, team,
 * tags and the LiteLLM metadata (trace_id, session_id, generation_name), prompt and reply text; and that no gateway
 * key and no upstream api_key appears in any byte or header a receiver got.
 *
 * Also: /v1/messages, /v1/responses and embeddings are logged with their call types; the opt-outs
 * (turn_off_message_logging, "no-log", x-litellm-disable-callbacks, a key's logging_disabled / redaction metadata);
 * success_callback / failure_callback routing; and /metrics, parsed by a strict text-format parser written here,
 * whose counters match the calls made.
 *
 * "Nothing arrived" is only asserted after a later call's record arrived at the same sink: each sink's queue sends
 * in order, so a record that was going to arrive would be there by then (no sleeping on a guess).
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { startGateway } from '../helpers/gateway.js'
import { chatChunks, errorReply, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { rewriteNullable } from '../helpers/openapi.js'
import {
  decodeExport, exportRequestType, startReceiver, type DecodedSpan, type Receiver,
} from '../plugins/logging-otlp-fixtures.js'
import { admin, MASTER } from './helpers.js'

// ---- fixtures ------------------------------------------------------------------------------------------------------

/** The deployments' provider key: must never reach a sink. */
const UPSTREAM_KEY = 'sk-upstream-secret-9f8e7d6c5b4a39281706'
const INPUT_PRICE = 0.001
const OUTPUT_PRICE = 0.002
const REPLY = 'The answer is forty-two.'
/** A caller's own W3C trace id (LiteLLM `metadata.trace_id`): the OTLP sinks use it as the trace id. */
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const SESSION = 'sess-e2e-logging'

/** Usage the fake upstream reports: plain replies without cache/reasoning, streams with both. */
const PLAIN_USAGE = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }
const STREAM_USAGE = { prompt_tokens: 40, completion_tokens: 20, total_tokens: 60, cached: 32, reasoning: 12 }

/** Chat replies with fixed usage; a streamed reply sends its chunks 15 ms apart and a usage chunk with cache and reasoning. */
function chatWithUsage(): Behaviour {
  return async (ctx) => {
    const body = ctx.record.body
    const res = ctx.res
    if (body?.stream === true) {
      const chunks = chatChunks(body, REPLY) as Array<Record<string, any>>
      const last = chunks.at(-1)!
      if (last.usage) {
        last.usage = {
          prompt_tokens: STREAM_USAGE.prompt_tokens, completion_tokens: STREAM_USAGE.completion_tokens, total_tokens: STREAM_USAGE.total_tokens,
          prompt_tokens_details: { cached_tokens: STREAM_USAGE.cached, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: STREAM_USAGE.reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        }
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      for (const c of chunks) {
        if (res.destroyed) return
        res.write(`data: ${JSON.stringify(c)}\n\n`)
        await new Promise((r) => setTimeout(r, 15))
      }
      res.end('data: [DONE]\n\n')
      return
    }
    const text = JSON.stringify({
      id: `chatcmpl-e2e${Date.now()}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: body?.model ?? 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: REPLY, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { ...PLAIN_USAGE, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

const up = await startUpstream(t, { chat: chatWithUsage() })
const broken = await startUpstream(t, { chat: errorReply(500, { message: 'upstream is on fire' }) })
const refusing = await startUpstream(t, { chat: errorReply(400, { message: 'bad parameter: temperature', param: 'temperature' }) })

function modelList(): string {
  const dep = (name: string, id: string, url: string, model: string) => `  - model_name: ${name}
    litellm_params:
      model: openai/${model}
      api_base: ${url}
      api_key: ${UPSTREAM_KEY}
      input_cost_per_token: ${INPUT_PRICE}
      output_cost_per_token: ${OUTPUT_PRICE}
    model_info:
      id: ${id}
`
  return `model_list:
${dep('gpt', 'dep-gpt', up.url, 'gpt-4o-mini')}${dep('embed', 'dep-embed', up.url, 'text-embedding-3-small')}${dep('broken', 'dep-broken', broken.url, 'gpt-4o-mini')}${dep('refusing', 'dep-refusing', refusing.url, 'gpt-4o-mini')}`
}

interface Sinks {
  langfuse: Receiver
  otel: Receiver
  mlflow: Receiver
  helicone: Receiver
}

async function receivers(t: Test): Promise<Sinks> {
  const s = { langfuse: await startReceiver(), otel: await startReceiver(), mlflow: await startReceiver(), helicone: await startReceiver() }
  for (const r of Object.values(s)) t.teardown(() => r.close())
  return s
}

/** LiteLLM's `environment_variables:` section pointing every sink at its receiver. */
function environment(s: Sinks): string {
  return `environment_variables:
  LANGFUSE_PUBLIC_KEY: pk-lf-e2e
  LANGFUSE_SECRET_KEY: sk-lf-e2e-secret
  LANGFUSE_HOST: ${s.langfuse.base}
  OTEL_EXPORTER_OTLP_ENDPOINT: ${s.otel.base}
  OTEL_EXPORTER_OTLP_HEADERS: x-collector-tenant=e2e
  MLFLOW_TRACKING_URI: ${s.mlflow.base}
  MLFLOW_EXPERIMENT_ID: "7"
  HELICONE_API_KEY: sk-helicone-e2e
  HELICONE_API_BASE: ${s.helicone.base}
`
}

/** No sink credentials from the developer's shell: only the config's environment_variables may configure them. */
const CLEAN_ENV: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test' }

// ---- calls ---------------------------------------------------------------------------------------------------------

interface CallResult {
  status: number
  id: string
  cost: number | null
  body: any
  text: string
}

async function call(url: string, path: string, body: Record<string, unknown>, key: string, headers: Record<string, string> = {}): Promise<CallResult> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  let parsed: any = null
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = null
  }
  const cost = res.headers.get('x-litellm-response-cost')
  return { status: res.status, id: res.headers.get('x-request-id') ?? '', cost: cost === null ? null : Number(cost), body: parsed, text }
}

const chat = (prompt: string, extra: Record<string, unknown> = {}) => ({ model: 'gpt', messages: [{ role: 'user', content: prompt }], ...extra })

// ---- what the receivers got ----------------------------------------------------------------------------------------

interface SpanTree {
  root: DecodedSpan
  children: DecodedSpan[]
}

/** Every OTLP request decoded (protobufjs throws on malformed bytes), grouped by request id (the root span's). */
function otlpRecords(r: Receiver): Map<string, SpanTree> {
  const out = new Map<string, SpanTree>()
  for (const req of r.requests) {
    const d = decodeExport(req.body)
    for (const s of d.spans) {
      if (s.parentSpanId !== '') continue
      const id = String(s.attrs['switchyard.request_id'])
      if (out.has(id)) throw new Error(`request ${id} logged twice`)
      out.set(id, { root: s, children: d.spans.filter((c) => c.parentSpanId === s.spanId) })
    }
  }
  return out
}

function heliconeRecords(r: Receiver): Map<string, any> {
  const out = new Map<string, any>()
  for (const req of r.requests) {
    const body = JSON.parse(req.body.toString('utf8'))
    const id = body?.providerRequest?.meta?.['Helicone-Property-Request-Id']
    if (out.has(id)) throw new Error(`request ${id} logged twice to helicone`)
    out.set(id, body)
  }
  return out
}

function idsOf(name: keyof Sinks, r: Receiver): Set<string> {
  return new Set((name === 'helicone' ? heliconeRecords(r) : otlpRecords(r)).keys())
}

/** Poll until every id has arrived at the receiver (the queues flush every second by default). */
async function arrived(name: keyof Sinks, r: Receiver, ids: readonly string[], timeoutMs = 8_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const got = idsOf(name, r)
    const missing = ids.filter((id) => !got.has(id))
    if (missing.length === 0) return
    if (Date.now() > until) throw new Error(`${name}: records ${missing.join(', ')} did not arrive within ${timeoutMs} ms`)
    await new Promise((res) => setTimeout(res, 50))
  }
}

/** All bytes and header values a receiver got, as one string, for "never sent" checks. */
function everything(r: Receiver): string {
  return r.requests.map((q) => `${JSON.stringify(q.headers)}\n${q.url}\n${q.body.toString('latin1')}`).join('\n')
}

/** The JSON inside an MLflow attribute (MLflow JSON-encodes every value). */
const mj = (v: unknown) => JSON.parse(String(v))

// ---- Langfuse's and Helicone's schemas ------------------------------------------------------------------------------

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url))

/** Langfuse's OpenAPI components as an ajv store, with the three tweaks its NOTES.md lists. */
function langfuseValidators(): (ref: string) => ValidateFunction {
  const spec = parseYaml(readFileSync(`${DATA}langfuse/openapi.yml`, 'utf8'), { maxAliasCount: -1 }) as any
  const schemas = rewriteNullable(spec.components.schemas) as any
  schemas.MapValue.anyOf = schemas.MapValue.oneOf
  delete schemas.MapValue.oneOf
  const otelBody = rewriteNullable(spec.paths['/api/public/otel/v1/traces'].post.requestBody.content['application/json'].schema)
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
  ajv.addSchema({ $id: 'lf', components: { schemas }, otelBody }, 'lf')
  return (ref) => ajv.getSchema(`lf#${ref}`)!
}
const lf = langfuseValidators()
const heliconeAjv = new Ajv2020({ allErrors: true, strict: false })
const heliconeSchema = heliconeAjv.compile(JSON.parse(readFileSync(`${DATA}helicone/async-log-request.schema.json`, 'utf8')))

function valid(t: Test, v: ValidateFunction, data: unknown, what: string): void {
  const ok = v(data)
  t.ok(ok, `${what} validates`, ok ? {} : { errors: v.errors })
}

/** Every OTLP request to Langfuse, decoded to plain JSON, against Langfuse's OTel ingestion body schema. */
function validateLangfuseRequests(t: Test, r: Receiver): void {
  const T = exportRequestType()
  let bad = 0
  for (const req of r.requests) if (!lf('/otelBody')(T.toObject(T.decode(req.body), { longs: Number, enums: Number, bytes: String }))) bad++
  t.equal(bad, 0, `all ${r.requests.length} Langfuse OTLP requests match its OTel ingestion schema`)
}

function validateHeliconeRequests(t: Test, r: Receiver): void {
  let bad = 0
  for (const req of r.requests) if (!heliconeSchema(JSON.parse(req.body.toString('utf8')))) bad++
  t.equal(bad, 0, `all ${r.requests.length} Helicone bodies match its async-log schema`, bad ? { errors: heliconeSchema.errors } : {})
}

// ---- a strict Prometheus text-format parser -------------------------------------------------------------------------

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}
interface Family {
  name: string
  type: string
  help: string | null
  samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(s: string, line: number): number {
  if (s === 'NaN') return NaN
  if (s === '+Inf' || s === 'Inf') return Infinity
  if (s === '-Inf') return -Infinity
  if (!/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: bad value '${s}'`)
  return Number(s)
}

/** The family a sample name belongs to, given the declared types (histogram/summary suffixes). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const f = families.get(name)
  if (f) return f
  for (const suffix of ['_bucket', '_sum', '_count', '_created']) {
    if (!name.endsWith(suffix)) continue
    const base = families.get(name.slice(0, -suffix.length))
    if (base && (base.type === 'histogram' || (base.type === 'summary' && suffix !== '_bucket'))) return base
  }
  return undefined
}

/**
 * Prometheus text exposition format 0.0.4, strictly: HELP/TYPE at most once per family and before its samples, a
 * family's samples contiguous, every sample of a declared family, label syntax with its three escapes, no duplicate
 * series, the body ending in a newline; histograms cumulative with +Inf equal to _count; counters never negative.
 */
function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline')
  const families = new Map<string, Family>()
  const finished = new Set<string>()
  const seen = new Set<string>()
  let current: Family | null = null
  const lines = text.slice(0, -1).split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const n = i + 1
    if (line === '') continue
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) continue // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!METRIC_NAME.test(name)) throw new Error(`line ${n}: bad metric name '${name}'`)
      if (finished.has(name)) throw new Error(`line ${n}: ${kind} for ${name} after its samples ended`)
      let f = families.get(name)
      if (!f) {
        f = { name, type: 'untyped', help: null, samples: [] }
        families.set(name, f)
      }
      if (f.samples.length) throw new Error(`line ${n}: ${kind} for ${name} after its samples`)
      if (kind === 'HELP') {
        if (f.help !== null) throw new Error(`line ${n}: second HELP for ${name}`)
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`line ${n}: bad escape in HELP`)
        f.help = rest
      } else {
        if (!TYPES.has(rest)) throw new Error(`line ${n}: bad type '${rest}'`)
        if ((f as Family & { typed?: boolean }).typed) throw new Error(`line ${n}: second TYPE for ${name}`)
        ;(f as Family & { typed?: boolean }).typed = true
        f.type = rest
      }
      if (current && current !== f) finished.add(current.name)
      current = f
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line)
    if (!m) throw new Error(`line ${n}: not a sample: ${line}`)
    const name = m[1]!
    const labels: Record<string, string> = {}
    let rest = m[3] ?? ''
    while (rest !== '') {
      const lm = /^([^=,"\s]+)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest)
      if (!lm) throw new Error(`line ${n}: bad labels: ${m[3]}`)
      if (!LABEL_NAME.test(lm[1]!)) throw new Error(`line ${n}: bad label name '${lm[1]}'`)
      if (lm[1]! in labels) throw new Error(`line ${n}: label ${lm[1]} twice`)
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
      rest = rest.slice(lm[0].length)
      if (lm[3] === '' && rest !== '') throw new Error(`line ${n}: labels not comma-separated`)
    }
    const value = parseValue(m[4]!, n)
    const f = familyOf(name, families)
    if (!f) throw new Error(`line ${n}: sample ${name} of no declared family`)
    if (finished.has(f.name)) throw new Error(`line ${n}: samples of ${f.name} are not contiguous`)
    if (current && current !== f) finished.add(current.name)
    current = f
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`line ${n}: counter ${name} is ${value}`)
    if (name.endsWith('_bucket') && f.type === 'histogram' && labels.le === undefined) throw new Error(`line ${n}: bucket without le`)
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(series)) throw new Error(`line ${n}: duplicate series ${series}`)
    seen.add(series)
    f.samples.push({ name, labels, value })
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number }>()
  const keyOf = (l: Record<string, string>) => JSON.stringify(Object.entries(l).filter(([k]) => k !== 'le').sort())
  for (const s of f.samples) {
    const g = groups.get(keyOf(s.labels)) ?? { buckets: [] }
    groups.set(keyOf(s.labels), g)
    if (s.name === `${f.name}_bucket`) g.buckets.push([parseValue(s.labels.le!, 0), s.value])
    else if (s.name === `${f.name}_count`) g.count = s.value
  }
  for (const [k, g] of groups) {
    const sorted = [...g.buckets].sort((a, b) => a[0] - b[0])
    for (let i = 1; i < sorted.length; i++) if (sorted[i]![1] < sorted[i - 1]![1]) throw new Error(`${f.name}${k}: buckets not cumulative`)
    const inf = sorted.at(-1)
    if (!inf || inf[0] !== Infinity) throw new Error(`${f.name}${k}: no +Inf bucket`)
    if (g.count !== inf[1]) throw new Error(`${f.name}${k}: +Inf bucket ${inf[1]} != _count ${g.count}`)
  }
}

function sum(families: Map<string, Family>, name: string, where: (l: Record<string, string>) => boolean = () => true): number {
  const f = families.get(name)
  if (!f) throw new Error(`no metric ${name}`)
  return f.samples.filter((s) => s.name === name && where(s.labels)).reduce((a, s) => a + s.value, 0)
}

t.test('the strict Prometheus parser rejects what a scraper would', async (t) => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1",y="q\\"\\n"} 3\n'
  t.equal(parsePrometheus(ok).get('a_total')!.samples[0]!.labels.y, 'q"\n')
  for (const [bad, why] of [
    ['# TYPE a counter\na 1', 'no final newline'],
    ['a 1\n', 'no TYPE'],
    ['# TYPE a counter\na{x="1} 1\n', 'unterminated label'],
    ['# TYPE a counter\na -1\n', 'negative counter'],
    ['# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n', 'duplicate series'],
    ['# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na 2\n', 'non-contiguous family'],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 0\n', 'non-cumulative histogram'],
    ['# TYPE a gauge\na one\n', 'bad value'],
  ] as const) t.throws(() => parsePrometheus(bad), `rejects: ${why}`)
})

// ---- scenario 1: every sink, every call kind ----------------------------------------------------------------------

t.test('callbacks [langfuse, otel, mlflow, helicone, prometheus] from a LiteLLM config', async (t) => {
  const s = await receivers(t)
  const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  num_retries: 1
  retry_after: 0
  disable_cooldowns: true
litellm_settings:
  callbacks: ["langfuse", "otel", "mlflow", "helicone", "prometheus"]
${environment(s)}${modelList()}`, { env: CLEAN_ENV })

  // A team and keys, as LiteLLM admins make them: one normal, one opted out of logging, one with redaction.
  t.equal((await admin(gw.url, 'POST', '/team/new', { team_id: 'team-obs', team_alias: 'Observability' })).status, 200, 'team created')
  const mk = async (body: Record<string, unknown>) => {
    const r = await admin(gw.url, 'POST', '/key/generate', body)
    t.equal(r.status, 200, `key/generate ${JSON.stringify(body)}`)
    return r.body.key as string
  }
  const key = await mk({ key_alias: 'obs-key', team_id: 'team-obs', metadata: { tags: ['key-tag'] } })
  const silentKey = await mk({ key_alias: 'silent-key', metadata: { logging_disabled: true } })
  const redactedKey = await mk({ key_alias: 'redacted-key', metadata: { turn_off_message_logging: true } })
  const secrets = [MASTER, key, silentKey, redactedKey, UPSTREAM_KEY]

  const metadata = { trace_id: TRACE_ID, session_id: SESSION, generation_name: 'gen-plain', tags: ['e2e', 'plain'], user_api_key: key }
  const plain = await call(gw.url, '/v1/chat/completions', chat('PLAIN-PROMPT-a1', { temperature: 0.3, user: 'end-user-7', metadata }), key)
  t.equal(plain.status, 200, 'plain call')
  const stream = await call(gw.url, '/v1/chat/completions', chat('STREAM-PROMPT-b2', {
    stream: true, stream_options: { include_usage: true }, metadata: { session_id: SESSION, generation_name: 'gen-stream', tags: ['e2e', 'stream'] },
  }), key)
  t.equal(stream.status, 200, 'streamed call')
  t.match(stream.text, /data: \[DONE\]/)
  const failed = await call(gw.url, '/v1/chat/completions', { model: 'broken', messages: [{ role: 'user', content: 'FAIL-PROMPT-c3' }], metadata: { trace_id: 'my-app-trace-77' } }, key)
  t.ok(failed.status >= 500, `upstream 500 -> ${failed.status}`)
  const refused = await call(gw.url, '/v1/chat/completions', { model: 'refusing', messages: [{ role: 'user', content: 'BAD-PROMPT-d4' }] }, key)
  t.equal(refused.status, 400, 'upstream 400 -> 400')
  const messages = await call(gw.url, '/v1/messages', { model: 'gpt', max_tokens: 50, messages: [{ role: 'user', content: 'MESSAGES-PROMPT-e5' }] }, key)
  t.equal(messages.status, 200, '/v1/messages')
  const responses = await call(gw.url, '/v1/responses', { model: 'gpt', input: 'RESPONSES-PROMPT-f6' }, key)
  t.equal(responses.status, 200, '/v1/responses')
  const embeddings = await call(gw.url, '/v1/embeddings', { model: 'embed', input: 'EMBED-INPUT-g7' }, key)
  t.equal(embeddings.status, 200, '/v1/embeddings')

  // Opt-outs.
  const noLog = await call(gw.url, '/v1/chat/completions', chat('NOLOG-PROMPT-h8', { 'no-log': true }), key)
  t.equal(noLog.status, 200, 'no-log call answered')
  t.equal(up.requestsTo('chat').at(-1)!.body['no-log'], undefined, '"no-log" is not forwarded upstream')
  const noOtel = await call(gw.url, '/v1/chat/completions', chat('NOOTEL-PROMPT-i9'), key, { 'x-litellm-disable-callbacks': 'OTEL' })
  t.equal(noOtel.status, 200)
  const silent = await call(gw.url, '/v1/chat/completions', chat('SILENT-PROMPT-j0'), silentKey)
  t.equal(silent.status, 200)
  const redacted = await call(gw.url, '/v1/chat/completions', chat('REDACTED-PROMPT-k1'), redactedKey)
  t.equal(redacted.status, 200)
  // The last call: once it arrived at a sink, every earlier record that was going to arrive has (FIFO per sink).
  const sentinel = await call(gw.url, '/v1/chat/completions', chat('SENTINEL-PROMPT-l2'), key)
  t.equal(sentinel.status, 200)

  const all = [plain, stream, failed, refused, messages, responses, embeddings, noLog, noOtel, silent, redacted, sentinel]
  t.equal(new Set(all.map((c) => c.id)).size, all.length, 'every call has its own x-request-id')
  const logged = [plain, stream, failed, refused, messages, responses, embeddings, redacted, sentinel].map((c) => c.id)
  await arrived('otel', s.otel, logged)
  await arrived('mlflow', s.mlflow, [...logged, noOtel.id])
  await arrived('langfuse', s.langfuse, [...logged, noOtel.id])
  await arrived('helicone', s.helicone, [...logged, noOtel.id])

  const otel = otlpRecords(s.otel)
  const mlflow = otlpRecords(s.mlflow)
  const langfuse = otlpRecords(s.langfuse)
  const helicone = heliconeRecords(s.helicone)

  t.test('opt-outs: no-log, disabled callbacks header, logging_disabled key', async (t) => {
    for (const [name, got] of [['otel', otel], ['mlflow', mlflow], ['langfuse', langfuse], ['helicone', helicone]] as const) {
      t.notOk(got.has(noLog.id), `${name}: nothing for the "no-log" call`)
      t.notOk(got.has(silent.id), `${name}: nothing for the logging_disabled key`)
      t.equal(got.size, name === 'otel' ? logged.length : logged.length + 1, `${name}: exactly the logged calls`)
    }
    t.notOk(otel.has(noOtel.id), 'x-litellm-disable-callbacks: OTEL -> otel got nothing for it')
    for (const r of Object.values(s)) {
      const bytes = everything(r)
      t.notOk(bytes.includes('NOLOG-PROMPT-h8') || bytes.includes('SILENT-PROMPT-j0'), 'opted-out prompts are nowhere')
    }
  })

  t.test('no key and no upstream api_key in any byte or header a receiver got', async (t) => {
    for (const [name, r] of Object.entries(s)) {
      const bytes = everything(r)
      t.ok(r.requests.length > 0, `${name} got requests`)
      // Positive controls: the haystack is the real payload (the alias and the prompt are in it, in clear).
      t.ok(bytes.includes('obs-key') && bytes.includes('PLAIN-PROMPT-a1'), `${name}: alias and prompt are readable in the bytes`)
      for (const secret of secrets) t.notOk(bytes.includes(secret), `${name}: no ${secret.slice(0, 12)}...`)
    }
  })

  t.test('payloads validate against the backends\' schemas', async (t) => {
    validateLangfuseRequests(t, s.langfuse)
    validateHeliconeRequests(t, s.helicone)
    for (const [id, { root }] of langfuse) {
      valid(t, lf('/components/schemas/UsageDetails'), mj(root.attrs['langfuse.observation.usage_details']), `langfuse usage_details of ${id}`)
      valid(t, lf('/components/schemas/CreateGenerationBody/properties/modelParameters'), mj(root.attrs['langfuse.observation.model.parameters']), `langfuse model parameters of ${id}`)
    }
    const lfAuth = `Basic ${Buffer.from('pk-lf-e2e:sk-lf-e2e-secret').toString('base64')}`
    t.ok(s.langfuse.requests.every((q) => q.url === '/api/public/otel/v1/traces' && q.headers.authorization === lfAuth && q.headers['content-type'] === 'application/x-protobuf'), 'langfuse: OTLP protobuf, Basic auth')
    t.ok(s.mlflow.requests.every((q) => q.url === '/v1/traces' && q.headers['x-mlflow-experiment-id'] === '7'), 'mlflow: /v1/traces with x-mlflow-experiment-id from MLFLOW_EXPERIMENT_ID')
    t.ok(s.otel.requests.every((q) => q.url === '/v1/traces' && q.headers['x-collector-tenant'] === 'e2e'), 'otel: /v1/traces with OTEL_EXPORTER_OTLP_HEADERS')
    t.ok(s.helicone.requests.every((q) => q.url === '/custom/v1/log' && q.headers.authorization === 'Bearer sk-helicone-e2e'), 'helicone: async log API with its key')
  })

  t.test('plain call: every field, in every sink', async (t) => {
    const o = otel.get(plain.id)!
    const a = o.root.attrs as Record<string, any>
    t.equal(o.root.traceId, TRACE_ID, 'metadata.trace_id is the OTel trace id')
    t.equal(o.root.name, 'chat gpt')
    t.equal(o.root.status.code, 1, 'status OK')
    t.equal(a['gen_ai.operation.name'], 'chat')
    t.equal(a['gen_ai.request.model'], 'gpt', 'model group')
    t.equal(a['gen_ai.response.model'], 'gpt-4o-mini', 'upstream model')
    t.equal(a['switchyard.deployment'], 'dep-gpt', 'deployment id')
    t.equal(a['gen_ai.provider.name'], 'openai')
    t.equal(a['switchyard.api_base'], up.url)
    t.equal(a['gen_ai.usage.input_tokens'], 12)
    t.equal(a['gen_ai.usage.output_tokens'], 5)
    t.equal(a['gen_ai.request.temperature'], 0.3)
    const cost = 12 * INPUT_PRICE + 5 * OUTPUT_PRICE
    t.ok(Math.abs(a['switchyard.cost_usd'] - cost) < 1e-12, `cost ${a['switchyard.cost_usd']} = ${cost}`)
    t.ok(plain.cost !== null && Math.abs(plain.cost - a['switchyard.cost_usd']) < 1e-12, 'the logged cost is the x-litellm-response-cost the client got')
    t.equal(a['switchyard.key_alias'], 'obs-key')
    t.equal(a['switchyard.team_id'], 'team-obs')
    t.equal(a['switchyard.team_alias'], 'Observability')
    t.same([...a['switchyard.tags']].sort(), ['e2e', 'key-tag', 'plain'], 'request and key tags')
    t.equal(a['gen_ai.conversation.id'], SESSION)
    t.equal(a['switchyard.end_user'], 'end-user-7')
    const md = mj(a['switchyard.metadata'])
    t.equal(md.trace_id, TRACE_ID)
    t.equal(md.generation_name, 'gen-plain')
    t.notOk('user_api_key' in md, 'a key in request metadata is removed')
    t.match(a['gen_ai.input.messages'], /PLAIN-PROMPT-a1/)
    t.match(a['gen_ai.output.messages'], /forty-two/)
    t.equal(o.children.length, 1, 'one attempt span')
    t.equal(o.children[0]!.attrs['switchyard.deployment'], 'dep-gpt')
    t.equal(o.children[0]!.kind, 3, 'attempt is a CLIENT span')
    t.ok(typeof a['switchyard.ttft_ms'] === 'number' && a['switchyard.ttft_ms'] >= 0 && a['switchyard.ttft_ms'] <= a['switchyard.latency_ms'], 'ttft within latency')

    const m = mlflow.get(plain.id)!.root.attrs as Record<string, any>
    t.equal(mlflow.get(plain.id)!.root.traceId, TRACE_ID)
    t.equal(mj(m['mlflow.spanType']), 'CHAT_MODEL')
    t.equal(mj(m['mlflow.llm.model']), 'gpt-4o-mini')
    t.same(mj(m['mlflow.chat.tokenUsage']), { input_tokens: 12, output_tokens: 5, total_tokens: 17 })
    t.ok(Math.abs(mj(m['mlflow.llm.cost']).total_cost - cost) < 1e-12, 'mlflow cost')
    t.equal(mj(m['mlflow.spanInputs']).messages[0].content, 'PLAIN-PROMPT-a1')
    t.equal(mj(m['mlflow.spanOutputs']).choices[0].message.content, REPLY)
    t.equal(m['session.id'], SESSION)

    const l = langfuse.get(plain.id)!.root
    const la = l.attrs as Record<string, any>
    t.equal(l.name, 'gen-plain', 'generation_name names the Langfuse generation')
    t.equal(la['langfuse.observation.type'], 'generation')
    t.equal(la['langfuse.observation.model.name'], 'gpt-4o-mini')
    t.same(mj(la['langfuse.observation.usage_details']), { input: 12, output: 5, total: 17 })
    t.ok(Math.abs(mj(la['langfuse.observation.cost_details']).total - cost) < 1e-12)
    t.equal(la['langfuse.session.id'], SESSION)
    t.equal(la['langfuse.user.id'], 'end-user-7')
    t.same([...la['langfuse.trace.tags']].sort(), ['e2e', 'key-tag', 'plain'])
    t.equal(mj(la['langfuse.observation.input'])[0].content, 'PLAIN-PROMPT-a1')
    t.equal(mj(la['langfuse.observation.output']).content, REPLY)
    const lmeta = mj(la['langfuse.observation.metadata'])
    t.equal(lmeta.user_api_key_alias, 'obs-key')
    t.equal(lmeta.user_api_key_team_id, 'team-obs')
    t.equal(lmeta.user_api_key_team_alias, 'Observability')
    t.ok(typeof la['langfuse.observation.completion_start_time'] === 'string', 'completion start time')

    const h = helicone.get(plain.id)
    t.equal(h.providerRequest.json.model, 'gpt-4o-mini')
    t.equal(h.providerRequest.json.messages[0].content, 'PLAIN-PROMPT-a1')
    t.equal(h.providerRequest.json.temperature, 0.3)
    t.equal(h.providerResponse.status, 200)
    t.equal(h.providerResponse.json.choices[0].message.content, REPLY)
    t.same(h.providerResponse.json.usage, { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } })
    t.equal(h.providerRequest.meta['Helicone-Property-Key-Alias'], 'obs-key')
    t.equal(h.providerRequest.meta['Helicone-Property-Team-Id'], 'team-obs')
    t.equal(h.providerRequest.meta['Helicone-Property-Deployment'], 'dep-gpt')
    t.equal(h.providerRequest.meta['Helicone-Session-Id'], SESSION)
    t.equal(h.providerRequest.meta['Helicone-User-Id'], 'end-user-7')
    t.same(h.providerRequest.meta['Helicone-Property-Tags'].split(',').sort(), ['e2e', 'key-tag', 'plain'])
    t.ok(Math.abs(Number(h.providerRequest.meta['Helicone-Property-Cost-Usd']) - cost) < 1e-12)
  })

  t.test('streamed call: usage with cached and reasoning tokens, time to first token', async (t) => {
    const o = otel.get(stream.id)!
    const a = o.root.attrs as Record<string, any>
    t.equal(a['switchyard.stream'], true)
    t.equal(a['gen_ai.usage.input_tokens'], STREAM_USAGE.prompt_tokens)
    t.equal(a['gen_ai.usage.output_tokens'], STREAM_USAGE.completion_tokens)
    t.equal(a['gen_ai.usage.cache_read.input_tokens'], STREAM_USAGE.cached)
    t.equal(a['switchyard.usage.reasoning_tokens'], STREAM_USAGE.reasoning)
    t.equal(a['switchyard.usage.total_tokens'], STREAM_USAGE.total_tokens)
    t.ok(a['switchyard.cost_usd'] > 0, `streamed cost ${a['switchyard.cost_usd']}`)
    t.match(a['gen_ai.output.messages'], /forty-two/, 'the streamed reply text, joined')
    // The fake sends ~8 chunks 15 ms apart: the first byte comes well before the end.
    t.ok(a['switchyard.ttft_ms'] >= 0 && a['switchyard.ttft_ms'] + 50 < a['switchyard.latency_ms'], `ttft ${a['switchyard.ttft_ms']} < latency ${a['switchyard.latency_ms']}`)
    t.ok(o.root.events.some((e) => e.name === 'gen_ai.first_token'), 'first-token event')

    const m = mlflow.get(stream.id)!.root.attrs as Record<string, any>
    t.same(mj(m['mlflow.chat.tokenUsage']), { input_tokens: 40, output_tokens: 20, total_tokens: 60, cache_read_input_tokens: 32 })

    const la = langfuse.get(stream.id)!.root.attrs as Record<string, any>
    t.equal(langfuse.get(stream.id)!.root.name, 'gen-stream')
    t.same(mj(la['langfuse.observation.usage_details']), { input: 8, output: 8, total: 60, input_cached_tokens: 32, output_reasoning_tokens: 12 }, 'Langfuse usage parts are disjoint')
    t.equal(mj(la['langfuse.observation.output']).content, REPLY)

    const h = helicone.get(stream.id)
    t.equal(h.providerRequest.json.stream, true)
    t.equal(h.providerResponse.json.usage.prompt_tokens_details.cached_tokens, 32)
    t.equal(h.providerResponse.json.usage.completion_tokens_details.reasoning_tokens, 12)
    t.equal(h.providerResponse.json.choices[0].message.content, REPLY)
    t.ok(typeof h.timing.timeToFirstToken === 'number' && h.timing.timeToFirstToken >= 0, 'helicone timeToFirstToken')
  })

  t.test('failed calls: status, error, attempts', async (t) => {
    const o = otel.get(failed.id)!
    const a = o.root.attrs as Record<string, any>
    t.equal(o.root.status.code, 2, 'status ERROR')
    t.equal(a['http.response.status_code'], failed.status)
    t.ok(a['error.type'], `error.type ${a['error.type']}`)
    t.ok(o.root.events.some((e) => e.name === 'exception'), 'exception event')
    t.equal(a['switchyard.deployment'], 'dep-broken')
    const tries = broken.requestsTo('chat').length
    t.equal(tries, 2, 'num_retries: 1 -> two upstream tries')
    t.equal(o.children.length, tries, `one attempt span per upstream try (${tries})`)
    t.ok(o.children.every((c) => c.status.code === 2 && c.attrs['http.response.status_code'] === 500), 'each attempt failed with 500')
    t.equal(a['switchyard.retries'], tries - 1)
    t.equal(a['gen_ai.usage.input_tokens'], 0)
    t.notOk('gen_ai.output.messages' in a, 'no reply')
    t.match(a['gen_ai.input.messages'], /FAIL-PROMPT-c3/, 'the prompt of a failed call is logged')

    const la = langfuse.get(failed.id)!.root.attrs as Record<string, any>
    t.equal(la['langfuse.observation.level'], 'ERROR')
    t.ok(String(la['langfuse.observation.status_message']).length > 0)

    const h = helicone.get(failed.id)
    t.equal(h.providerResponse.status, failed.status)
    t.ok(h.providerResponse.json.error?.message, 'helicone gets the error')

    const r = otel.get(refused.id)!
    t.equal(r.root.status.code, 2)
    t.equal(r.root.attrs['http.response.status_code'], 400)
    t.equal(r.children.length, 1, 'a 400 is not retried')
    t.equal(helicone.get(refused.id).providerResponse.status, 400)
  })

  t.test('/v1/messages, /v1/responses and embeddings are logged with their call types', async (t) => {
    for (const [c, type, prompt] of [[messages, 'anthropic_messages', 'MESSAGES-PROMPT-e5'], [responses, 'responses', 'RESPONSES-PROMPT-f6'], [embeddings, 'embeddings', 'EMBED-INPUT-g7']] as const) {
      const a = otel.get(c.id)!.root.attrs as Record<string, any>
      t.equal(a['switchyard.call_type'], type, `${type}: call type`)
      t.equal(a['http.route'], type === 'anthropic_messages' ? '/v1/messages' : type === 'responses' ? '/v1/responses' : '/v1/embeddings')
      t.match(a['gen_ai.input.messages'], prompt, `${type}: prompt`)
      t.equal(a['switchyard.key_alias'], 'obs-key')
      t.ok(a['gen_ai.usage.input_tokens'] > 0, `${type}: usage`)
      t.ok(a['switchyard.cost_usd'] > 0, `${type}: cost`)
      t.equal(helicone.get(c.id).providerRequest.meta['Helicone-Property-Call-Type'], type)
    }
    t.equal(otel.get(embeddings.id)!.root.attrs['gen_ai.operation.name'], 'embeddings')
    t.equal(mj(mlflow.get(embeddings.id)!.root.attrs['mlflow.spanType']), 'EMBEDDING')
    t.match(otel.get(messages.id)!.root.attrs['gen_ai.output.messages'], /forty-two/)
    t.match(otel.get(responses.id)!.root.attrs['gen_ai.output.messages'], /forty-two/)
  })

  t.test('a key with turn_off_message_logging: records arrive without prompt or reply', async (t) => {
    t.equal(otel.get(redacted.id)!.root.attrs['switchyard.redacted'], true)
    t.equal(otel.get(redacted.id)!.root.attrs['gen_ai.usage.input_tokens'], 12, 'usage still logged')
    for (const [name, r] of Object.entries(s)) {
      const bytes = everything(r)
      t.ok(bytes.includes('SENTINEL-PROMPT-l2'), `${name}: other calls' prompts are there (control)`)
      t.notOk(bytes.includes('REDACTED-PROMPT-k1'), `${name}: no prompt of the redacted key`)
    }
  })

  t.test('/metrics parses and its counters match the calls made', async (t) => {
    const res = await fetch(`${gw.url}/metrics`)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type') ?? '', /^text\/plain/)
    const m = parsePrometheus(await res.text())

    // Requests by status: every model call, the opted-out ones too (metrics are not logging).
    const byStatus = new Map<string, number>()
    for (const c of all) byStatus.set(String(c.status), (byStatus.get(String(c.status)) ?? 0) + 1)
    for (const [status, n] of byStatus) {
      t.equal(sum(m, 'litellm_proxy_total_requests_metric_total', (l) => l.status_code === status), n, `requests with status ${status}: ${n}`)
    }
    t.equal(sum(m, 'litellm_proxy_total_requests_metric_total'), all.length, 'requests in all')
    t.equal(sum(m, 'litellm_proxy_failed_requests_metric_total'), 2, 'two failed requests')
    t.equal(sum(m, 'litellm_proxy_total_requests_metric_total', (l) => l.api_key_alias === 'obs-key'), all.length - 2, 'per key alias')
    t.equal(sum(m, 'litellm_proxy_total_requests_metric_total', (l) => l.team === 'team-obs' && l.team_alias === 'Observability'), all.length - 2, 'per team')
    t.equal(sum(m, 'litellm_proxy_total_requests_metric_total', (l) => l.route === '/v1/messages'), 1, 'per route')

    // Tokens: chat calls report PLAIN_USAGE (the translated /v1/messages and /v1/responses too), the stream its own.
    const chatCalls = [plain, messages, responses, noLog, noOtel, silent, redacted, sentinel].length
    const embedTokens = embeddings.body.usage.total_tokens as number
    t.equal(sum(m, 'litellm_input_tokens_metric_total'), chatCalls * 12 + 40 + embedTokens, 'input tokens')
    t.equal(sum(m, 'litellm_output_tokens_metric_total'), chatCalls * 5 + 20, 'output tokens')
    t.equal(sum(m, 'litellm_total_tokens_metric_total'), chatCalls * 17 + 60 + embedTokens, 'total tokens')
    t.equal(sum(m, 'litellm_cached_tokens_metric_total'), 32, 'cached tokens')

    // Spend: the costs the clients were told, plus the stream's (logged: its header went out before its usage).
    const known = all.filter((c) => c !== stream && c.status === 200)
    t.ok(known.every((c) => c.cost !== null), 'every non-streamed success has x-litellm-response-cost')
    const streamCost = otel.get(stream.id)!.root.attrs['switchyard.cost_usd'] as number
    const spend = known.reduce((a, c) => a + c.cost!, 0) + streamCost
    t.ok(Math.abs(sum(m, 'litellm_spend_metric_total') - spend) < 1e-9, `spend ${sum(m, 'litellm_spend_metric_total')} = ${spend}`)

    // Sinks: sent counts are what the receivers got; nothing dropped.
    for (const [name, got] of [['otel', otel], ['mlflow', mlflow], ['langfuse', langfuse], ['helicone', helicone]] as const) {
      t.equal(sum(m, 'switchyard_logging_sent_total', (l) => l.sink === name), got.size, `${name}: sent ${got.size}`)
      t.equal(sum(m, 'switchyard_logging_buffered', (l) => l.sink === name), 0, `${name}: nothing buffered`)
    }
    t.equal(m.get('switchyard_logging_dropped_total')?.samples.length ?? 0, 0, 'no drops')
    t.equal(sum(m, 'litellm_deployment_total_requests_total', (l) => l.model_id === 'dep-broken'), broken.requestsTo('chat').length, 'deployment attempts')
    t.ok(m.get('litellm_request_total_latency_metric')?.type === 'histogram', 'latency histogram')
  })
})

// ---- scenario 2: turn_off_message_logging for the whole gateway ---------------------------------------------------

t.test('litellm_settings.turn_off_message_logging: no prompt or reply text in any payload', async (t) => {
  const s = await receivers(t)
  const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
litellm_settings:
  turn_off_message_logging: true
  callbacks: ["langfuse", "otel", "mlflow", "helicone"]
${environment(s)}${modelList()}`, { env: CLEAN_ENV })
  const a = await call(gw.url, '/v1/chat/completions', chat('HIDDEN-PROMPT-m3', { metadata: { session_id: SESSION } }), MASTER)
  const b = await call(gw.url, '/v1/chat/completions', chat('HIDDEN-PROMPT-n4', { stream: true, stream_options: { include_usage: true } }), MASTER)
  const c = await call(gw.url, '/v1/responses', { model: 'gpt', input: 'HIDDEN-PROMPT-o5' }, MASTER)
  t.same([a.status, b.status, c.status], [200, 200, 200])
  t.match(b.text, /forty-two|forty|two/, 'the client still gets its reply')
  for (const [name, r] of Object.entries(s) as Array<[keyof Sinks, Receiver]>) {
    await arrived(name, r, [a.id, b.id, c.id])
    const bytes = everything(r)
    t.notOk(/HIDDEN-PROMPT/.test(bytes), `${name}: no prompt`)
    t.notOk(bytes.includes('forty-two'), `${name}: no reply`)
    t.notOk(bytes.includes(MASTER) || bytes.includes(UPSTREAM_KEY), `${name}: no key`)
  }
  const o = otlpRecords(s.otel).get(b.id)!.root.attrs
  t.equal(o['switchyard.redacted'], true)
  t.equal(o['gen_ai.usage.cache_read.input_tokens'], 32, 'usage is still logged')
  t.equal(o['gen_ai.conversation.id'], undefined)
  t.equal(otlpRecords(s.otel).get(a.id)!.root.attrs['gen_ai.conversation.id'], SESSION, 'metadata is still logged')
  validateHeliconeRequests(t, s.helicone)
  validateLangfuseRequests(t, s.langfuse)
})

// ---- scenario 3: success_callback / failure_callback ----------------------------------------------------------------

t.test('success_callback gets successes only, failure_callback failures only', async (t) => {
  const s = await receivers(t)
  const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
router_settings:
  num_retries: 0
  disable_cooldowns: true
litellm_settings:
  success_callback: ["otel", "langfuse"]
  failure_callback: ["helicone", "langfuse"]
${environment(s)}${modelList()}`, { env: CLEAN_ENV })
  const f1 = await call(gw.url, '/v1/chat/completions', { model: 'broken', messages: [{ role: 'user', content: 'x' }] }, MASTER)
  const s1 = await call(gw.url, '/v1/chat/completions', chat('ok'), MASTER)
  const f2 = await call(gw.url, '/v1/chat/completions', { model: 'refusing', messages: [{ role: 'user', content: 'y' }] }, MASTER)
  const s2 = await call(gw.url, '/v1/chat/completions', chat('ok again', { stream: true }), MASTER)
  t.ok(f1.status >= 500 && s1.status === 200 && f2.status === 400 && s2.status === 200, 'statuses')
  await arrived('otel', s.otel, [s1.id, s2.id])
  await arrived('helicone', s.helicone, [f1.id, f2.id])
  await arrived('langfuse', s.langfuse, [f1.id, s1.id, f2.id, s2.id])
  t.same([...idsOf('otel', s.otel)].sort(), [s1.id, s2.id].sort(), 'otel (success_callback): the successes only')
  t.same([...idsOf('helicone', s.helicone)].sort(), [f1.id, f2.id].sort(), 'helicone (failure_callback): the failures only')
  t.equal(s.mlflow.requests.length, 0, 'mlflow is not configured: nothing')
  const lf = otlpRecords(s.langfuse)
  t.equal(lf.get(f1.id)!.root.attrs['langfuse.observation.level'], 'ERROR', 'langfuse (in both lists) gets the failure')
  t.equal(lf.get(s1.id)!.root.attrs['langfuse.observation.level'], undefined, '... and the success')
  const res = await fetch(`${gw.url}/metrics`)
  t.equal(res.status, 404, 'no prometheus callback: no /metrics route')
})
