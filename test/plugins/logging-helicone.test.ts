/**
 * The Helicone sink against a real receiver (node:http on 127.0.0.1): every body it gets is validated against
 * Helicone's async-log schema (../shared/data/helicone), and checked for the fields a plain call, a streamed call
 * with cached/reasoning tokens and a failed call carry. Also: credentials, HTTP status -> retry mapping, no duplicate
 * after a partial failure, the concurrency cap, redaction, and that no secret leaves the gateway.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { createHeliconeSink, heliconeBody } from '../../plugins/logging/sinks/helicone.js'
import { SinkError, type LogRecord, type SinkContext } from '../../plugins/logging/types.js'
import { createLogger } from '../../core/logger.js'
import { GatewayError } from '../../core/errors.js'
import { closedPort } from '../helpers/upstream.js'

const SCHEMA = JSON.parse(readFileSync(new URL('../../../shared/data/helicone/async-log-request.schema.json', import.meta.url), 'utf8'))
const ajv = new Ajv2020({ allErrors: true, strict: false })
const validate = ajv.compile(SCHEMA)

const T0 = 1_760_000_000_123

/** A LogRecord for the tests; `kind` picks a plain call, a streamed call with cache/reasoning usage, or a failure. */
function record(kind: 'plain' | 'stream' | 'failure', over: Partial<LogRecord> = {}): LogRecord {
  const base: LogRecord = {
    id: `req-${kind}`,
    call_type: 'chat',
    route: '/v1/chat/completions',
    status: 'success',
    http_status: 200,
    model_group: 'gpt-group',
    model: 'gpt-4o-mini',
    model_id: 'dep-1',
    provider: 'openai',
    api_base: 'http://127.0.0.1:9/v1',
    stream: false,
    start_time: T0,
    completion_start_time: T0 + 180,
    end_time: T0 + 1_456,
    latency_ms: 1_456,
    ttft_ms: 180,
    overhead_ms: 3.2,
    plugin_timings: { auth: 0.1 },
    queue_wait_ms: null,
    priority: null,
    attempts: [{ deployment: 'dep-1', provider: 'openai', model: 'gpt-4o-mini', start_time: T0 + 2, duration_ms: 1_400, status: 200, error_code: null }],
    retries: 0,
    fallbacks: 0,
    usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 },
    cost: 0.000123,
    cost_source: 'table',
    model_parameters: { temperature: 0.2, max_tokens: 50 },
    messages: [{ role: 'user', content: 'What is the capital of France?' }],
    response: { role: 'assistant', content: 'Paris.' },
    tool_calls: [],
    mcp_tool_calls: [],
    finish_reason: 'stop',
    error: null,
    key_hash: 'deadbeef'.repeat(8),
    key_alias: 'team-a-key',
    team_id: 'team-a',
    team_alias: 'Team A',
    user_id: 'user-1',
    end_user: 'customer-7',
    tags: ['prod', 'eu'],
    metadata: { session_id: 'sess-42', tags: ['prod', 'eu'], experiment: 'blue', 'Helicone-Property-Env': 'staging' },
    redacted: false,
  }
  if (kind === 'stream') {
    Object.assign(base, {
      stream: true,
      usage: { prompt_tokens: 2_000, completion_tokens: 300, total_tokens: 2_300, cached_tokens: 1_500, cache_creation_tokens: 0, reasoning_tokens: 120 },
      response: { role: 'assistant', content: null },
      tool_calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }],
      finish_reason: 'tool_calls',
      priority: 1,
      queue_wait_ms: 35,
    })
  }
  if (kind === 'failure') {
    Object.assign(base, {
      status: 'failure', http_status: 502, response: null, finish_reason: null, ttft_ms: null, completion_start_time: null,
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 },
      cost: 0, cost_source: '',
      error: { type: 'APIError', code: 'GW_ERR_UPSTREAM', message: 'upstream answered 500', status: 502 },
      attempts: [{ deployment: 'dep-1', provider: 'openai', model: 'gpt-4o-mini', start_time: T0, duration_ms: 50, status: 500, error_code: 'GW_ERR_UPSTREAM' }],
    })
  }
  return { ...base, ...over }
}

interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: any
}

/** A receiver that records every request and answers with `reply(i)` (i = arrival index). */
async function receiver(t: Test, reply: (i: number, body: any) => number | Promise<number> = () => 200) {
  const got: Received[] = []
  let inFlight = 0
  let maxInFlight = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const i = got.length
      got.push({ path: req.url ?? '', headers: req.headers, body })
      const status = await reply(i, body)
      inFlight--
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(status < 300 ? '{"ok":true}' : '{"error":"nope"}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, maxInFlight: () => maxInFlight }
}

function context(t: Test, options: Record<string, unknown>, env: Record<string, string | undefined> = {}): SinkContext {
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  return { options, env, dispatcher, logger: createLogger({ level: 'silent' }) }
}

const signal = new AbortController().signal

function checkValid(t: Test, body: unknown): void {
  const ok = validate(body)
  t.ok(ok, `body matches Helicone's async-log schema${ok ? '' : `: ${ajv.errorsText(validate.errors)}`}`)
}

t.test('plain, streamed and failed calls arrive valid, with their fields', async (t) => {
  const rx = await receiver(t)
  const sink = createHeliconeSink(context(t, { api_base: rx.url }, { HELICONE_API_KEY: 'sk-helicone-env' }))
  t.equal(sink.name, 'helicone')
  await sink.send([record('plain'), record('stream'), record('failure')], signal)
  t.equal(rx.got.length, 3, 'one request per record')
  const byId = new Map(rx.got.map((g) => [g.body.providerRequest.meta['Helicone-Property-Request-Id'], g]))
  for (const g of rx.got) {
    t.equal(g.path, '/custom/v1/log')
    t.equal(g.headers.authorization, 'Bearer sk-helicone-env')
    t.match(g.headers['content-type'], /application\/json/)
    checkValid(t, g.body)
  }

  const plain = byId.get('req-plain')!.body
  t.equal(plain.providerRequest.url, 'http://127.0.0.1:9/v1/chat/completions', 'api_base + route, one /v1')
  t.same(plain.providerRequest.json, {
    model: 'gpt-4o-mini', temperature: 0.2, max_tokens: 50, messages: [{ role: 'user', content: 'What is the capital of France?' }],
  })
  t.match(plain.providerRequest.meta, {
    'Helicone-User-Id': 'customer-7',
    'Helicone-Session-Id': 'sess-42',
    'Helicone-Property-Key-Alias': 'team-a-key',
    'Helicone-Property-Team-Id': 'team-a',
    'Helicone-Property-Team-Alias': 'Team A',
    'Helicone-Property-Tags': 'prod,eu',
    'Helicone-Property-Model-Group': 'gpt-group',
    'Helicone-Property-Deployment': 'dep-1',
    'Helicone-Property-experiment': 'blue',
    'Helicone-Property-Env': 'staging',
  })
  t.equal(plain.providerResponse.status, 200)
  t.same(plain.providerResponse.headers, {})
  t.equal(plain.providerResponse.json.choices[0].message.content, 'Paris.')
  t.equal(plain.providerResponse.json.choices[0].finish_reason, 'stop')
  t.same(plain.providerResponse.json.usage, {
    prompt_tokens: 12, completion_tokens: 8, total_tokens: 20, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 },
  })
  t.same(plain.timing, {
    startTime: { seconds: Math.floor(T0 / 1000), milliseconds: 123 },
    endTime: { seconds: Math.floor((T0 + 1456) / 1000), milliseconds: 579 },
    timeToFirstToken: 180,
  })

  const stream = byId.get('req-stream')!.body
  t.equal(stream.providerRequest.json.stream, true)
  t.equal(stream.providerResponse.json.usage.prompt_tokens_details.cached_tokens, 1500)
  t.equal(stream.providerResponse.json.usage.completion_tokens_details.reasoning_tokens, 120)
  t.equal(stream.providerResponse.json.usage.total_tokens, 2300)
  t.same(stream.providerResponse.json.choices[0].message.tool_calls,
    [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }])
  t.equal(stream.providerResponse.json.choices[0].finish_reason, 'tool_calls')
  t.equal(stream.providerRequest.meta['Helicone-Property-Priority'], '1')
  t.equal(stream.providerRequest.meta['Helicone-Property-Queue-Wait-Ms'], '35')

  const failed = byId.get('req-failure')!.body
  t.equal(failed.providerResponse.status, 502)
  t.same(failed.providerResponse.json, { error: { message: 'upstream answered 500', type: 'APIError', code: 'GW_ERR_UPSTREAM' } })
  t.notOk('timeToFirstToken' in failed.timing, 'no first token for a failed call')
})

t.test('credentials: options override the environment; none is a boot error', async (t) => {
  const rx = await receiver(t)
  const sink = createHeliconeSink(context(t, { api_key: 'sk-from-options', api_base: rx.url }, { HELICONE_API_KEY: 'sk-env', HELICONE_API_BASE: 'http://127.0.0.1:1' }))
  await sink.send([record('plain')], signal)
  t.equal(rx.got[0]!.headers.authorization, 'Bearer sk-from-options')

  const viaEnv = createHeliconeSink(context(t, {}, { HELICONE_API_KEY: 'sk-env2', HELICONE_API_BASE: rx.url + '/' }))
  await viaEnv.send([record('plain')], signal)
  t.equal(rx.got[1]!.headers.authorization, 'Bearer sk-env2')
  t.equal(rx.got[1]!.path, '/custom/v1/log', 'HELICONE_API_BASE is used, trailing slash dropped')

  const codeOf = (fn: () => unknown): string => {
    try {
      fn()
    } catch (e) {
      return e instanceof GatewayError ? `${e.code}: ${e.message}` : String(e)
    }
    return 'no error'
  }
  t.match(codeOf(() => createHeliconeSink(context(t, {}, {}))), /^GW_ERR_CONFIG_INVALID: .*HELICONE_API_KEY/)
  t.match(codeOf(() => createHeliconeSink(context(t, { api_key: 'k', api_base: 'not a url' }))), /^GW_ERR_CONFIG_INVALID: .*api_base/)
  t.match(codeOf(() => createHeliconeSink(context(t, { api_key: 'k', concurrency: 0 }))), /^GW_ERR_CONFIG_INVALID: .*concurrency/)
})

t.test('HTTP results map to retryable or final SinkErrors', async (t) => {
  for (const [status, retry] of [[500, true], [503, true], [429, true], [408, true], [400, false], [401, false], [413, false]] as const) {
    const rx = await receiver(t, () => status)
    const sink = createHeliconeSink(context(t, { api_key: 'k', api_base: rx.url }))
    const err = await sink.send([record('plain')], signal).then(() => null, (e: unknown) => e)
    t.ok(err instanceof SinkError, `${status} -> SinkError`)
    t.equal((err as SinkError).retry, retry, `${status} retry=${retry}`)
    t.equal((err as SinkError).status, status)
  }
  const port = await closedPort()
  const dead = createHeliconeSink(context(t, { api_key: 'k', api_base: `http://127.0.0.1:${port}` }))
  const err = await dead.send([record('plain')], signal).then(() => null, (e: unknown) => e)
  t.ok(err instanceof SinkError && err.retry, 'connection refused is retryable')
})

t.test('a retried batch sends only what did not get through (no duplicates)', async (t) => {
  // The second record's first delivery fails; everything else is accepted.
  let failedOnce = false
  const rx = await receiver(t, (_i, body) => {
    if (!failedOnce && body.providerRequest.meta['Helicone-Property-Request-Id'] === 'req-stream') {
      failedOnce = true
      return 503
    }
    return 200
  })
  const sink = createHeliconeSink(context(t, { api_key: 'k', api_base: rx.url }))
  const batch = [record('plain'), record('stream'), record('failure')]
  await t.rejects(sink.send(batch, signal), SinkError)
  t.equal(rx.got.length, 3)
  await sink.send(batch, signal)
  t.equal(rx.got.length, 4, 'only the failed record is sent again')
  const ids = rx.got.map((g) => g.body.providerRequest.meta['Helicone-Property-Request-Id'])
  t.same(ids.filter((id: string) => id === 'req-plain').length, 1)
  t.same(ids.filter((id: string) => id === 'req-stream').length, 2)
})

t.test('a batch is sent concurrently, at most `concurrency` at once', async (t) => {
  const rx = await receiver(t, () => new Promise((r) => setTimeout(() => r(200), 30)))
  const sink = createHeliconeSink(context(t, { api_key: 'k', api_base: rx.url, concurrency: 3, max_batch: 10 }))
  t.equal(sink.maxBatch, 10)
  const batch = Array.from({ length: 10 }, (_, i) => record('plain', { id: `r${i}` }))
  await sink.send(batch, signal)
  t.equal(rx.got.length, 10)
  t.equal(rx.maxInFlight(), 3, 'three in flight at the peak, never more')
})

t.test('redacted records carry no prompt or reply; no secret is sent', async (t) => {
  const rx = await receiver(t)
  const sink = createHeliconeSink(context(t, { api_key: 'sk-helicone-secret', api_base: rx.url }))
  const r = record('plain', {
    messages: null, response: null, redacted: true,
    metadata: { 'Helicone-Auth': 'Bearer sk-should-not-leak', session_id: 's' },
  })
  await sink.send([r], signal)
  const body = rx.got[0]!.body
  checkValid(t, body)
  t.notOk('messages' in body.providerRequest.json, 'no messages')
  t.equal(body.providerResponse.json.choices[0].message.content, null, 'no reply text')
  const text = JSON.stringify(body)
  t.notMatch(text, 'sk-should-not-leak', 'Helicone-Auth from metadata is dropped')
  t.notMatch(text, 'sk-helicone-secret', 'the sink key is only in the header')
  t.notMatch(text, 'deadbeef', 'the key hash is not sent')
})

t.test('other call types: the prompt field and reply follow the operation', async (t) => {
  const emb = heliconeBody(record('plain', {
    call_type: 'embeddings', route: '/v1/embeddings', messages: ['hello'], response: { data: 1, dimensions: 8 }, model_parameters: {},
    api_base: null,
  }))
  checkValid(t, emb)
  t.equal((emb as any).providerRequest.url, 'custom-model-nopath', 'no api base: Helicone custom-model URL')
  t.same((emb as any).providerRequest.json.input, ['hello'])
  t.same((emb as any).providerResponse.json.output, { data: 1, dimensions: 8 })
  t.equal((emb as any).providerResponse.json.usage.prompt_tokens, 12)
})
