/**
 * The MLflow and Langfuse sinks (OTLP/HTTP with each backend's own attributes), against a real HTTP receiver on
 * 127.0.0.1. Payloads are decoded with protobufjs from the OpenTelemetry protos; Langfuse's pieces are validated
 * against its published OpenAPI spec (../shared/data/langfuse/openapi.yml, with the ajv tweaks its NOTES.md lists).
 */
import { digest } from '../../plugins/logging/otlp-spans.js'
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { createMlflowSink } from '../../plugins/logging/sinks/mlflow.js'
import { createLangfuseSink } from '../../plugins/logging/sinks/langfuse.js'
import { SinkError, type Sink } from '../../plugins/logging/types.js'
import { rewriteNullable } from '../helpers/openapi.js'
import {
  BODY_KEY, GATEWAY_KEY, NO_ABORT, T0, decodeExport, exportRequestType, failedRecord, plainRecord, redactedRecord,
  sinkContext, startReceiver, streamedRecord, type DecodedSpan, type Receiver,
} from './logging-otlp-fixtures.js'

const LANGFUSE_SPEC = fileURLToPath(new URL('../../../shared/data/langfuse/openapi.yml', import.meta.url))

/** Langfuse's components as an ajv schema store (nullable rewritten; MapValue's oneOf as anyOf, per NOTES.md). */
function langfuseValidators(): (ref: string) => ValidateFunction {
  const spec = parseYaml(readFileSync(LANGFUSE_SPEC, 'utf8'), { maxAliasCount: -1 }) as any
  const schemas = rewriteNullable(spec.components.schemas) as any
  schemas.MapValue.anyOf = schemas.MapValue.oneOf
  delete schemas.MapValue.oneOf
  const otelBody = rewriteNullable(spec.paths['/api/public/otel/v1/traces'].post.requestBody.content['application/json'].schema)
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
  ajv.addSchema({ $id: 'lf', components: { schemas }, otelBody }, 'lf')
  return (ref) => ajv.getSchema(`lf#${ref}`)!
}

function check(t: Test, v: ValidateFunction, data: unknown, what: string): void {
  const ok = v(data)
  t.ok(ok, `${what} validates against Langfuse's spec`, { errors: v.errors })
}

function roots(spans: DecodedSpan[]): DecodedSpan[] {
  return spans.filter((s) => s.parentSpanId === '')
}

async function failures(t: Test, rx: Receiver, sink: Sink): Promise<void> {
  for (const [status, retry] of [[500, true], [502, true], [429, true], [400, false], [401, false], [422, false]] as const) {
    rx.status = status
    const err = await sink.send([plainRecord()], NO_ABORT).then(() => null, (e: unknown) => e)
    t.ok(err instanceof SinkError && err.retry === retry && err.status === status, `${status} -> SinkError retry ${retry}`)
  }
  rx.status = 200
}

t.test('mlflow sink: OTLP protobuf with the experiment header and MLflow attributes', async (t) => {
  const rx = await startReceiver()
  t.teardown(() => rx.close())
  const ctx = sinkContext({ MLFLOW_TRACKING_URI: `${rx.base}/mlflow/`, MLFLOW_EXPERIMENT_ID: '42', MLFLOW_TRACKING_TOKEN: 'mlflow-tok' })
  t.teardown(() => ctx.agent.close())
  const sink = createMlflowSink(ctx)
  t.equal(sink.name, 'mlflow')
  const plain = plainRecord()
  await sink.send([plain, streamedRecord(), failedRecord(), redactedRecord()], NO_ABORT)
  t.equal(rx.requests.length, 1)
  const r = rx.requests[0]!
  t.equal(r.url, '/mlflow/v1/traces')
  t.equal(r.headers['content-type'], 'application/x-protobuf', 'MLflow takes protobuf only')
  t.equal(r.headers['x-mlflow-experiment-id'], '42')
  t.equal(r.headers.authorization, 'Bearer mlflow-tok')
  const d = decodeExport(r.body)
  const [p, s, f, red] = roots(d.spans) as [DecodedSpan, DecodedSpan, DecodedSpan, DecodedSpan]
  // MLflow json.loads every attribute; its own keys are JSON-encoded as its SDK writes them.
  const a = p.attrs as Record<string, string>
  t.equal(JSON.parse(a['mlflow.spanType']!), 'CHAT_MODEL')
  t.equal(JSON.parse(a['mlflow.traceRequestId']!), `tr-${p.traceId}`)
  t.equal(JSON.parse(a['mlflow.llm.model']!), 'gpt-4o-2024-08-06')
  t.equal(JSON.parse(a['mlflow.llm.provider']!), 'openai')
  t.same(JSON.parse(a['mlflow.chat.tokenUsage']!), { input_tokens: 12, output_tokens: 3, total_tokens: 15 })
  t.same(JSON.parse(a['mlflow.llm.cost']!), { total_cost: 0.00006 })
  const inputs = JSON.parse(a['mlflow.spanInputs']!)
  t.same(inputs.messages, plain.messages)
  t.equal(inputs.model, 'gpt-4o')
  t.equal(inputs.temperature, 0.2)
  t.notOk('api_key' in inputs, 'a body api_key is not an input')
  t.same(JSON.parse(a['mlflow.spanOutputs']!), { choices: [{ index: 0, message: plain.response, finish_reason: 'stop' }] })
  t.equal(a['session.id'], 'sess-1')
  t.equal(a['user.id'], 'user-42')
  t.equal(a['gen_ai.request.model'], 'gpt-4o', 'GenAI attributes too')
  t.notOk('gen_ai.input.messages' in a, 'content once, in MLflow keys')
  const attempt = d.spans.find((x) => x.parentSpanId === p.spanId)!
  t.equal(JSON.parse(attempt.attrs['mlflow.spanType'] as string), 'LLM')
  t.notOk('mlflow.chat.tokenUsage' in attempt.attrs, 'usage on the root only')

  t.equal(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
  t.same(JSON.parse(s.attrs['mlflow.chat.tokenUsage'] as string), {
    input_tokens: 2000, output_tokens: 300, total_tokens: 2300, cache_read_input_tokens: 1500, cache_creation_input_tokens: 100,
  })
  t.equal(s.attrs['switchyard.ttft_ms'], 420)
  t.equal(d.spans.filter((x) => x.parentSpanId === s.spanId).length, 2, 'both attempts of the streamed call')

  t.equal(f.status.code, 2)
  t.equal(f.attrs['error.type'], 'InternalServerError')
  t.notOk('mlflow.spanOutputs' in f.attrs)
  t.notOk('mlflow.llm.cost' in f.attrs, 'an unpriced call has no cost rather than a zero one')

  t.notOk('mlflow.spanInputs' in red.attrs)
  t.notOk('mlflow.spanOutputs' in red.attrs)
  const wire = Buffer.concat([r.body, Buffer.from(JSON.stringify(r.headers))])
  t.equal(red.attrs['switchyard.redacted'], true)
  t.notOk(wire.includes(GATEWAY_KEY), 'no gateway key in body or headers')
  t.notOk(wire.includes(BODY_KEY), 'no provider key from the body')

  // A redacted record alone: its content nowhere in the bytes.
  await sink.send([redactedRecord()], NO_ABORT)
  t.notOk(rx.requests[1]!.body.includes('Say hello'), 'redacted prompt absent')
  t.notOk(rx.requests[1]!.body.includes('Hello, Switchyard'), 'redacted reply absent')

  await failures(t, rx, sink)
})

t.test('mlflow sink: defaults, basic auth, missing tracking URI', async (t) => {
  const rx = await startReceiver()
  t.teardown(() => rx.close())
  const ctx = sinkContext({ MLFLOW_TRACKING_USERNAME: 'env-user' },
    { tracking_uri: rx.base, username: 'ml-user', password: 'ml-pass' })
  t.teardown(() => ctx.agent.close())
  await createMlflowSink(ctx).send([plainRecord()], NO_ABORT)
  const r = rx.requests[0]!
  t.equal(r.url, '/v1/traces')
  t.equal(r.headers['x-mlflow-experiment-id'], '0', "MLflow's Default experiment")
  t.equal(r.headers.authorization, `Basic ${Buffer.from('ml-user:ml-pass').toString('base64')}`, 'options over env')
  t.throws(() => createMlflowSink({ ...ctx, options: {}, env: {} }), { code: 'GW_ERR_CONFIG_INVALID' })
  t.throws(() => createMlflowSink({ ...ctx, options: {}, env: { MLFLOW_TRACKING_URI: 'databricks' } }), { code: 'GW_ERR_CONFIG_INVALID' })
})

t.test('langfuse sink: OTLP protobuf with Basic auth, generation and trace attributes', async (t) => {
  const v = langfuseValidators()
  const rx = await startReceiver()
  t.teardown(() => rx.close())
  const ctx = sinkContext({
    LANGFUSE_PUBLIC_KEY: 'pk-lf-test', LANGFUSE_SECRET_KEY: 'sk-lf-secret', LANGFUSE_HOST: `${rx.base}/`,
    LANGFUSE_TRACING_ENVIRONMENT: 'staging', LANGFUSE_RELEASE: 'v1.2.3',
  })
  t.teardown(() => ctx.agent.close())
  const sink = createLangfuseSink(ctx)
  t.equal(sink.name, 'langfuse')
  const plain = plainRecord()
  await sink.send([plain, streamedRecord(), failedRecord(), redactedRecord()], NO_ABORT)
  const r = rx.requests[0]!
  t.equal(r.url, '/api/public/otel/v1/traces')
  t.equal(r.headers['content-type'], 'application/x-protobuf')
  t.equal(r.headers.authorization, `Basic ${Buffer.from('pk-lf-test:sk-lf-secret').toString('base64')}`)

  // The whole request, decoded, against Langfuse's OTel ingestion body schema.
  const T = exportRequestType()
  t.notOk(v('/components/schemas/UsageDetails')({ input: 1.5 }), 'sanity: the usage schema rejects a fraction')
  t.notOk(v('/otelBody')({ resourceSpans: [{ scopeSpans: [{ spans: [{ kind: 'CLIENT' }] }] }] }), 'sanity: the OTLP schema rejects a string kind')
  check(t, v('/otelBody'), T.toObject(T.decode(r.body), { longs: Number, enums: Number, bytes: String }), 'the OTLP request')

  const d = decodeExport(r.body)
  const [p, s, f, red] = roots(d.spans) as [DecodedSpan, DecodedSpan, DecodedSpan, DecodedSpan]
  const a = p.attrs as Record<string, any>
  t.equal(p.name, 'greet-generation', 'generation_name names the generation')
  t.equal(a['langfuse.observation.type'], 'generation')
  t.equal(a['langfuse.observation.model.name'], 'gpt-4o-2024-08-06')
  const params = JSON.parse(a['langfuse.observation.model.parameters'])
  check(t, v('/components/schemas/CreateGenerationBody/properties/modelParameters'), params, 'model parameters')
  t.equal(params.temperature, 0.2)
  t.same(params.stop, ['\n\n'])
  t.notOk('api_key' in params)
  const usage = JSON.parse(a['langfuse.observation.usage_details'])
  check(t, v('/components/schemas/UsageDetails'), usage, 'usage details')
  t.same(usage, { input: 12, output: 3, total: 15 })
  const cost = JSON.parse(a['langfuse.observation.cost_details'])
  check(t, v('/components/schemas/CreateGenerationBody/properties/costDetails'), cost, 'cost details')
  t.same(cost, { total: 0.00006 })
  t.equal(a['langfuse.observation.completion_start_time'], new Date(T0 + 640).toISOString())
  t.same(JSON.parse(a['langfuse.observation.input']), plain.messages)
  t.same(JSON.parse(a['langfuse.observation.output']), plain.response)
  const meta = JSON.parse(a['langfuse.observation.metadata'])
  t.equal(meta.user_api_key_alias, 'ci-key')
  t.equal(meta.user_api_key_team_id, 'team-a')
  t.equal(meta.queue_wait_ms, 4)
  t.equal(meta.experiment, 'a/b', 'other request metadata kept')
  t.notOk('generation_name' in meta, 'LiteLLM keys mapped, not repeated')
  t.notOk('user_api_key' in meta)
  t.equal(a['langfuse.trace.name'], 'greeting-trace')
  t.equal(a['langfuse.user.id'], 'user-9', 'trace_user_id')
  t.equal(a['langfuse.session.id'], 'sess-1')
  t.same(a['langfuse.trace.tags'], ['prod', 'greeting'])
  t.same(JSON.parse(a['langfuse.trace.metadata']), { env: 'test' })
  t.same(JSON.parse(a['langfuse.trace.input']), plain.messages)
  t.equal(a['langfuse.environment'], 'staging')
  t.equal(a['langfuse.release'], 'v1.2.3')
  t.notOk('gen_ai.input.messages' in a, 'content once, in Langfuse keys')
  const child = d.spans.find((x) => x.parentSpanId === p.spanId)!
  t.equal(child.attrs['langfuse.observation.type'], 'span')

  // Streamed: cached and reasoning tokens split out so Langfuse's total is the sum of the parts.
  const su = JSON.parse(s.attrs['langfuse.observation.usage_details'] as string)
  check(t, v('/components/schemas/UsageDetails'), su, 'streamed usage details')
  t.same(su, { input: 400, output: 100, total: 2300, input_cached_tokens: 1500, input_cache_creation_tokens: 100, output_reasoning_tokens: 200 })
  t.equal(su.input + su.output + su.input_cached_tokens + su.input_cache_creation_tokens + su.output_reasoning_tokens, su.total)
  t.equal(s.attrs['langfuse.observation.completion_start_time'], new Date(T0 + 10_420).toISOString())
  t.equal(s.attrs['langfuse.trace.name'], 'chat smart', 'without trace_name or generation_name: the span name')
  const sAttempts = d.spans.filter((x) => x.parentSpanId === s.spanId)
  t.equal(sAttempts[0]!.attrs['langfuse.observation.level'], 'WARNING', 'a recovered attempt is a warning')

  // Failed, added to the caller's existing trace: the error level and message; the trace itself untouched.
  t.equal(f.attrs['langfuse.observation.level'], 'ERROR')
  t.equal(f.attrs['langfuse.observation.status_message'], 'Upstream openai returned 500: overloaded')
  t.equal(f.traceId, Buffer.from(digest('trace:my-app-trace-77', 16)).toString('hex'), 'the caller\'s trace id, hashed')
  t.notOk('langfuse.trace.name' in f.attrs, 'existing_trace_id: the trace is not renamed')
  t.notOk('langfuse.observation.output' in f.attrs)
  t.notOk('langfuse.observation.cost_details' in f.attrs, 'unpriced: Langfuse may price it itself')
  t.equal(d.spans.filter((x) => x.parentSpanId === f.spanId)[0]!.attrs['langfuse.observation.level'], 'ERROR')

  for (const k of ['langfuse.observation.input', 'langfuse.observation.output', 'langfuse.trace.input', 'langfuse.trace.output']) {
    t.notOk(k in red.attrs, `redacted: no ${k}`)
  }
  const wire = Buffer.concat([r.body, Buffer.from(JSON.stringify(r.headers))])
  t.notOk(wire.includes(GATEWAY_KEY), 'no gateway key in body or headers')
  t.notOk(wire.includes(BODY_KEY), 'no provider key from the body')

  await sink.send([redactedRecord()], NO_ABORT)
  t.notOk(rx.requests[1]!.body.includes('Say hello'), 'redacted prompt absent')
  t.notOk(rx.requests[1]!.body.includes('Hello, Switchyard'), 'redacted reply absent')

  await failures(t, rx, sink)
})

t.test('langfuse sink: credentials required, default host', async (t) => {
  const ctx = sinkContext({ LANGFUSE_PUBLIC_KEY: 'pk-lf-x' })
  t.teardown(() => ctx.agent.close())
  t.throws(() => createLangfuseSink(ctx), { code: 'GW_ERR_CONFIG_INVALID', message: /LANGFUSE_SECRET_KEY/ })
  t.throws(() => createLangfuseSink({ ...ctx, env: {} }), { code: 'GW_ERR_CONFIG_INVALID' })
  t.throws(() => createLangfuseSink({ ...ctx, options: { secret_key: 'sk', host: 'not a url' } }), { code: 'GW_ERR_CONFIG_INVALID' })
  // Options complete the environment; the default host is Langfuse Cloud (no request is made here).
  const sink = createLangfuseSink({ ...ctx, options: { secret_key: 'sk-lf-y' } })
  t.equal(sink.name, 'langfuse')
  t.equal(sink.maxBatch, 100)
})
