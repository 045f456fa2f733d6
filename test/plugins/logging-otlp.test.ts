/**
 * OTLP encoding (plugins/logging/otlp.ts) and the `otel` sink (sinks/otel.ts), against a real HTTP receiver on
 * 127.0.0.1. Every payload is decoded by protobufjs from the OpenTelemetry protos in ../shared/data, so a wrong
 * field number, wire type or length prefix fails here the way it would fail in a collector.
 */
import t from 'tap'
import { encodeTraces, tracesJson, SpanKind, StatusCode, type Span } from '../../plugins/logging/otlp.js'
import { digest, recordSpans } from '../../plugins/logging/otlp-spans.js'
import { createOtelSink, parseKeyValues } from '../../plugins/logging/sinks/otel.js'
import { SinkError } from '../../plugins/logging/types.js'
import { GatewayError } from '../../core/errors.js'
import { freePort } from '../helpers/net.js'
import {
  BODY_KEY, GATEWAY_KEY, NO_ABORT, T0, decodeExport, exportRequestType, failedRecord, ns, plainRecord, redactedRecord,
  sinkContext, startReceiver, streamedRecord,
} from './logging-otlp-fixtures.js'

const sha = (s: string, n: number): string => Buffer.from(digest(s, n)).toString('hex')

t.test('encodeTraces: every value type and length class decodes with protobufjs', async (t) => {
  const long = 'x'.repeat(20_000) // a three-byte length prefix inside nested messages
  const mid = 'é'.repeat(100) // 200 UTF-8 bytes: a two-byte prefix, counted in bytes not characters
  const span: Span = {
    traceId: Buffer.from('0123456789abcdef0123456789abcdef', 'hex'),
    spanId: Buffer.from('0123456789abcdef', 'hex'),
    parentSpanId: Buffer.from('fedcba9876543210', 'hex'),
    name: 'chat gpt-4o',
    kind: SpanKind.CLIENT,
    startNs: 1_767_225_600_000_000_123n,
    endNs: 18_446_744_073_709_551_615n, // fixed64 max
    attributes: {
      s: 'plain', empty: '', long, mid, int: 42, big: 2 ** 52 + 1, neg: -7, dbl: 0.25, t: true, f: false,
      arr: ['a', '', 'c'], none: [],
    },
    status: { code: StatusCode.ERROR, message: 'boom' },
    events: [{ name: 'ev', timeNs: 5n, attributes: { k: 1 } }, { name: 'bare', timeNs: 6n }],
  }
  const root: Span = { ...span, spanId: Buffer.from('1111111111111111', 'hex'), parentSpanId: null, attributes: {}, status: { code: StatusCode.UNSET }, events: [] }
  const bytes = encodeTraces({ 'service.name': 'svc', n: 3 }, { name: 'switchyard', version: '1' }, [root, span])
  const d = decodeExport(bytes)
  t.same(d.resource, { 'service.name': 'svc', n: 3 })
  t.same(d.scope, { name: 'switchyard', version: '1' })
  t.equal(d.spans.length, 2)
  const s = d.spans[1]!
  t.equal(s.traceId, '0123456789abcdef0123456789abcdef')
  t.equal(s.spanId, '0123456789abcdef')
  t.equal(s.parentSpanId, 'fedcba9876543210')
  t.equal(d.spans[0]!.parentSpanId, '', 'a root span has no parent')
  t.equal(s.kind, SpanKind.CLIENT)
  t.equal(s.start, '1767225600000000123')
  t.equal(s.end, '18446744073709551615')
  t.same(s.attrs, {
    s: 'plain', empty: '', long, mid, int: 42, big: 2 ** 52 + 1, neg: -7, dbl: 0.25, t: true, f: false,
    arr: ['a', '', 'c'], none: [],
  })
  t.same(s.events, [{ name: 'ev', time: '5', attrs: { k: 1 } }, { name: 'bare', time: '6', attrs: {} }])
  t.same(s.status, { code: 2, message: 'boom' })
  t.equal(s.flags, 1, 'sampled')
  t.same(d.spans[0]!.status, { code: 0, message: '' })

  // A bigger batch (buffer growth past the initial 8 KiB) round-trips too.
  const many = Array.from({ length: 300 }, (_, i) => ({ ...span, name: `span-${i}`, attributes: { i, mid } }))
  const dm = decodeExport(encodeTraces({}, { name: 'x', version: '' }, many))
  t.equal(dm.spans.length, 300)
  t.equal(dm.spans[299]!.name, 'span-299')
  t.equal(dm.spans[299]!.attrs.i, 299)
})

t.test('tracesJson: OTLP/JSON with hex ids and string nanos, same content as the protobuf', async (t) => {
  const spans = recordSpans(streamedRecord())
  const j = tracesJson({ 'service.name': 'svc' }, { name: 'switchyard', version: '1' }, spans) as any
  const s0 = j.resourceSpans[0].scopeSpans[0].spans[0]
  t.match(s0.traceId, /^[0-9a-f]{32}$/)
  t.match(s0.spanId, /^[0-9a-f]{16}$/)
  t.notOk('parentSpanId' in s0, 'root has no parentSpanId')
  t.equal(s0.kind, SpanKind.SERVER)
  t.equal(typeof s0.startTimeUnixNano, 'string')
  const child = j.resourceSpans[0].scopeSpans[0].spans[1]
  t.equal(child.parentSpanId, s0.spanId)
  // protobufjs parses the JSON form into the same message the binary form decodes to.
  const T = exportRequestType()
  const viaJson = T.toObject(T.fromObject(JSON.parse(JSON.stringify(j).replace(/"(trace|span|parentSpan)Id":"([0-9a-f]+)"/g,
    (_m, k: string, h: string) => `"${k}Id":"${Buffer.from(h, 'hex').toString('base64')}"`))), { longs: String })
  const viaBin = T.toObject(T.decode(encodeTraces({ 'service.name': 'svc' }, { name: 'switchyard', version: '1' }, spans)), { longs: String })
  t.same(viaJson, viaBin)
})

t.test('recordSpans: a plain call', async (t) => {
  const rec = plainRecord()
  const d = decodeExport(encodeTraces({}, { name: 's', version: '1' }, recordSpans(rec)))
  t.equal(d.spans.length, 2, 'root + one attempt')
  const [root, at] = d.spans as [any, any]
  t.equal(root.traceId, sha(`trace:${rec.id}`, 16), 'trace id derived from the record id')
  const uuid = { ...rec, id: '3f2b8c1e-9a4d-4e7f-b2c1-0d9e8f7a6b5c' }
  t.equal(Buffer.from(recordSpans(uuid)[0]!.traceId).toString('hex'), '3f2b8c1e9a4d4e7fb2c10d9e8f7a6b5c', 'a UUID request id is the trace id')
  t.same(recordSpans(rec).map((s) => Buffer.from(s.spanId).toString('hex')), recordSpans(rec).map((s) => Buffer.from(s.spanId).toString('hex')), 'span ids are the same on every build (retries agree)')
  t.equal(root.name, 'chat gpt-4o')
  t.equal(root.kind, SpanKind.SERVER)
  t.equal(root.start, ns(T0))
  t.equal(root.end, ns(T0 + 650.5), 'sub-millisecond end kept')
  t.same(root.status, { code: StatusCode.OK, message: '' })
  const a = root.attrs
  t.equal(a['gen_ai.operation.name'], 'chat')
  t.equal(a['gen_ai.provider.name'], 'openai')
  t.equal(a['gen_ai.system'], 'openai')
  t.equal(a['gen_ai.request.model'], 'gpt-4o')
  t.equal(a['gen_ai.response.model'], 'gpt-4o-2024-08-06')
  t.equal(a['gen_ai.request.temperature'], 0.2)
  t.equal(a['gen_ai.request.max_tokens'], 50)
  t.equal(a['gen_ai.request.top_p'], 1)
  t.same(a['gen_ai.request.stop_sequences'], ['\n\n'])
  t.same(a['gen_ai.response.finish_reasons'], ['stop'])
  t.equal(a['gen_ai.usage.input_tokens'], 12)
  t.equal(a['gen_ai.usage.output_tokens'], 3)
  t.same(JSON.parse(a['gen_ai.input.messages']), rec.messages)
  t.same(JSON.parse(a['gen_ai.output.messages']), [rec.response])
  t.equal(a['gen_ai.conversation.id'], 'sess-1')
  t.equal(a['server.address'], 'api.openai.com')
  t.equal(a['switchyard.cost_usd'], 0.00006)
  t.equal(a['switchyard.key_alias'], 'ci-key')
  t.equal(a['switchyard.team_id'], 'team-a')
  t.same(a['switchyard.tags'], ['prod', 'greeting'])
  t.equal(a['switchyard.priority'], 1)
  t.equal(a['switchyard.queue_wait_ms'], 4)
  t.equal(a['switchyard.retries'], 0)
  t.equal(a['switchyard.fallbacks'], 0)
  t.equal(a['switchyard.ttft_ms'], 640)
  t.equal(a['switchyard.overhead_ms'], 3.25)
  t.equal(a['http.response.status_code'], 200)
  t.notOk('error.type' in a)
  const md = JSON.parse(a['switchyard.metadata'])
  t.equal(md.experiment, 'a/b')
  t.notOk('user_api_key' in md, 'credential-named metadata dropped')
  t.notOk('headers' in md)
  t.equal(at.parentSpanId, root.spanId)
  t.equal(at.traceId, root.traceId)
  t.equal(at.kind, SpanKind.CLIENT)
  t.equal(at.name, 'chat gpt-4o-2024-08-06')
  t.equal(at.start, ns(T0 + 5))
  t.equal(at.end, ns(T0 + 645))
  t.equal(at.attrs['switchyard.deployment'], 'dep-openai-1')
  t.notOk('gen_ai.usage.input_tokens' in at.attrs, 'usage on the root only: counted once')
  t.same(recordSpans(rec).map((s) => s.spanId), recordSpans(rec).map((s) => s.spanId), 'ids are deterministic (retries agree)')
})

t.test('recordSpans: a streamed call with retries, cached and reasoning tokens', async (t) => {
  const rec = streamedRecord()
  const d = decodeExport(encodeTraces({}, { name: 's', version: '1' }, recordSpans(rec)))
  t.equal(d.spans.length, 3)
  const [root, first, second] = d.spans as [any, any, any]
  t.equal(root.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', "the caller's hex trace id is kept")
  t.equal(root.name, 'chat smart')
  t.equal(root.attrs['gen_ai.provider.name'], 'anthropic')
  t.equal(root.attrs['switchyard.stream'], true)
  t.equal(root.attrs['gen_ai.usage.input_tokens'], 2000)
  t.equal(root.attrs['gen_ai.usage.cache_read.input_tokens'], 1500)
  t.equal(root.attrs['gen_ai.usage.cache_creation.input_tokens'], 100)
  t.equal(root.attrs['switchyard.usage.reasoning_tokens'], 200)
  t.equal(root.attrs['switchyard.ttft_ms'], 420)
  t.equal(root.attrs['switchyard.retries'], 1)
  t.equal(root.attrs['server.port'], 8443)
  t.same(JSON.parse(root.attrs['switchyard.tool_calls']), rec.tool_calls)
  t.same(root.events.map((e: any) => [e.name, e.time]), [['gen_ai.first_token', ns(T0 + 10_420)]])
  t.equal(first.status.code, StatusCode.ERROR)
  t.equal(first.attrs['error.type'], 'GW_ERR_UPSTREAM_RATE_LIMIT')
  t.equal(first.attrs['http.response.status_code'], 429)
  t.equal(first.attrs['switchyard.attempt'], 1)
  t.equal(second.status.code, StatusCode.OK)
  t.equal(second.attrs['gen_ai.provider.name'], 'anthropic')
  t.equal(second.attrs['switchyard.attempt'], 2)
  t.not(first.spanId, second.spanId)
})

t.test('recordSpans: a failed call', async (t) => {
  const rec = failedRecord()
  const d = decodeExport(encodeTraces({}, { name: 's', version: '1' }, recordSpans(rec)))
  const root = d.spans[0]!
  t.equal(root.traceId, sha('trace:my-app-trace-77', 16), 'a non-hex trace id is hashed, so calls sharing it share a trace')
  t.same(root.status, { code: StatusCode.ERROR, message: 'Upstream openai returned 500: overloaded' })
  t.equal(root.attrs['error.type'], 'InternalServerError')
  t.equal(root.attrs['http.response.status_code'], 502)
  t.equal(root.attrs['switchyard.fallbacks'], 1)
  t.notOk('gen_ai.output.messages' in root.attrs, 'no reply, no output')
  t.notOk('switchyard.ttft_ms' in root.attrs)
  t.same(root.events, [{
    name: 'exception', time: ns(T0 + 900),
    attrs: { 'exception.type': 'InternalServerError', 'exception.message': 'Upstream openai returned 500: overloaded' },
  }])
  t.equal(d.spans[2]!.attrs['gen_ai.provider.name'], 'azure.ai.openai')
  t.equal(d.spans[2]!.status.code, StatusCode.ERROR)
})

t.test('recordSpans: a redacted record carries no content', async (t) => {
  const rec = redactedRecord()
  const bytes = Buffer.from(encodeTraces({}, { name: 's', version: '1' }, recordSpans(rec)))
  const root = decodeExport(bytes).spans[0]!
  t.notOk('gen_ai.input.messages' in root.attrs)
  t.notOk('gen_ai.output.messages' in root.attrs)
  t.equal(root.attrs['switchyard.redacted'], true)
  t.notOk(bytes.includes('Say hello'), 'prompt text nowhere in the payload')
  t.notOk(bytes.includes('Hello, Switchyard'), 'reply text nowhere in the payload')
  t.equal(root.attrs['gen_ai.usage.input_tokens'], 12, 'usage still logged')
})

t.test('otel sink: OTLP/HTTP protobuf to a live receiver', async (t) => {
  const rx = await startReceiver()
  t.teardown(() => rx.close())
  const ctx = sinkContext({
    OTEL_EXPORTER_OTLP_ENDPOINT: `${rx.base}/otlp/`,
    OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme%20corp, authorization=Bearer%20otel-token',
    OTEL_SERVICE_NAME: 'gw-test',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=ci',
  })
  t.teardown(() => ctx.agent.close())
  const sink = createOtelSink(ctx)
  t.equal(sink.name, 'otel')
  t.equal(sink.maxBatch, 100)
  const batch = [plainRecord(), streamedRecord(), failedRecord(), redactedRecord()]
  await sink.send(batch, NO_ABORT)
  t.equal(rx.requests.length, 1, 'one request per batch')
  const r = rx.requests[0]!
  t.equal(r.method, 'POST')
  t.equal(r.url, '/otlp/v1/traces')
  t.equal(r.headers['content-type'], 'application/x-protobuf')
  t.equal(r.headers['x-tenant'], 'acme corp', 'OTEL_EXPORTER_OTLP_HEADERS URL-decoded')
  t.equal(r.headers.authorization, 'Bearer otel-token')
  const d = decodeExport(r.body)
  t.equal(d.resource['service.name'], 'gw-test')
  t.equal(d.resource['deployment.environment'], 'ci')
  t.same(d.scope, { name: 'switchyard', version: '1' })
  t.equal(d.spans.length, 2 + 3 + 3 + 2, 'a root and its attempts per record')
  t.same(d.spans.filter((s) => s.parentSpanId === '').map((s) => s.name), ['chat gpt-4o', 'chat smart', 'chat gpt-4o', 'chat gpt-4o'])
  // Credentials: the gateway key (metadata) and a provider key (body api_key) are nowhere in what was sent.
  const wire = Buffer.concat([r.body, Buffer.from(JSON.stringify(r.headers))])
  t.notOk(wire.includes(GATEWAY_KEY), 'no gateway key in body or headers')
  t.notOk(wire.includes(BODY_KEY), 'no provider key from the body')
  t.ok(wire.includes('hash-5e884898'), 'the key hash is what identifies the caller')
})

t.test('otel sink: endpoint and protocol variants', async (t) => {
  const rx = await startReceiver()
  t.teardown(() => rx.close())
  const traces = sinkContext({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${rx.base}/custom/traces`, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' })
  t.teardown(() => traces.agent.close())
  await createOtelSink(traces).send([plainRecord()], NO_ABORT)
  t.equal(rx.requests[0]!.url, '/custom/traces', 'the signal-specific endpoint is used as is')

  const json = sinkContext({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, { endpoint: `${rx.base}/v1/traces`, headers: { 'X-Api': 'k1' } })
  t.teardown(() => json.agent.close())
  await createOtelSink(json).send([plainRecord()], NO_ABORT)
  const r = rx.requests[1]!
  t.equal(r.headers['content-type'], 'application/json')
  t.equal(r.headers['x-api'], 'k1', 'headers option')
  const body = JSON.parse(r.body.toString())
  t.equal(body.resourceSpans[0].scopeSpans[0].spans[0].name, 'chat gpt-4o')
  t.equal(body.resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano, ns(T0))

  const litellm = sinkContext({ OTEL_ENDPOINT: `${rx.base}/litellm/v1/traces`, OTEL_HEADERS: 'api-key=abc' })
  t.teardown(() => litellm.agent.close())
  await createOtelSink(litellm).send([plainRecord()], NO_ABORT)
  t.equal(rx.requests[2]!.url, '/litellm/v1/traces', "LiteLLM's OTEL_ENDPOINT")
  t.equal(rx.requests[2]!.headers['api-key'], 'abc', "LiteLLM's OTEL_HEADERS")
  t.same(parseKeyValues('a=1,,b = x%3Dy ,=z,c'), { a: '1', b: 'x=y' })
})

t.test('otel sink: receiver failures map to SinkError retry flags', async (t) => {
  const rx = await startReceiver()
  t.teardown(() => rx.close())
  const ctx = sinkContext({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.base })
  t.teardown(() => ctx.agent.close())
  const sink = createOtelSink(ctx)
  for (const [status, retry] of [[500, true], [503, true], [429, true], [408, true], [400, false], [401, false], [413, false]] as const) {
    rx.status = status
    const err = await sink.send([plainRecord()], NO_ABORT).then(() => null, (e: unknown) => e)
    t.ok(err instanceof SinkError, `${status}: a SinkError`)
    t.equal((err as SinkError).retry, retry, `${status}: retry ${retry}`)
    t.equal((err as SinkError).status, status)
  }
  rx.status = 200
  await sink.send([plainRecord()], NO_ABORT)
  t.equal(rx.requests.length, 8, 'the receiver saw every attempt')

  // Nothing listening: a network error, worth retrying.
  const port = await freePort()
  const dead = sinkContext({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` })
  t.teardown(() => dead.agent.close())
  const err = await createOtelSink(dead).send([plainRecord()], NO_ABORT).then(() => null, (e: unknown) => e)
  t.ok(err instanceof SinkError)
  t.equal((err as SinkError).retry, true)
  t.equal((err as SinkError).status, undefined)
})

t.test('otel sink: configuration errors at boot', async (t) => {
  const ctx = sinkContext({})
  t.teardown(() => ctx.agent.close())
  const noEndpoint = t.throws(() => createOtelSink(ctx)) as unknown
  t.ok(noEndpoint instanceof GatewayError)
  t.equal((noEndpoint as GatewayError).code, 'GW_ERR_CONFIG_INVALID')
  t.match((noEndpoint as Error).message, /OTEL_EXPORTER_OTLP_ENDPOINT/)
  t.throws(() => createOtelSink({ ...ctx, env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }),
    { code: 'GW_ERR_CONFIG_INVALID' })
  t.throws(() => createOtelSink({ ...ctx, options: { endpoint: 'ftp://127.0.0.1/x' } }), { code: 'GW_ERR_CONFIG_INVALID' })
  t.throws(() => createOtelSink({ ...ctx, options: { endpoint: 'http://127.0.0.1:4318/v1/traces', timeout_ms: -1 } }),
    { code: 'GW_ERR_CONFIG_INVALID' })
})
