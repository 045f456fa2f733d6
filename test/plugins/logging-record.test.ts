/**
 * The log record (plugins/logging/record.ts), built from what a real gateway leaves in the request state: a real
 * gateway (SQLite store, auth with a virtual key in a team, keys, priority-queue, router, fallback, retry) in front
 * of a real node:http upstream, and a `probe` plugin that keeps each call's state and `done` outcome, as the logging
 * plugin will. Every field is checked for a plain call, a streamed call with cached and reasoning tokens, a failed
 * call, a call that fell back, a tool call and its redacted form, an embeddings call and a stream the client cut.
 * A last group builds states by hand for what a local upstream cannot show: credentials in an api_base, secrets in
 * metadata and parameters, Anthropic cache writes, a native Messages reply.
 */
import t, { type Test } from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { chatChunks, defaultChat, defaultEmbeddings, errorReply, slowStream, startUpstream, type Behaviour } from '../helpers/upstream.js'
import { tempDb } from './keys-harness.js'
import { definePlugin, type GatewayMiddleware } from '../../core/plugin.js'
import { createState, type GatewayState, type Outcome } from '../../core/state.js'
import { gatewayError } from '../../core/errors.js'
import priorityQueue from '../../plugins/priority-queue/index.js'
import fallback from '../../plugins/fallback/index.js'
import { buildRecord, isFailure } from '../../plugins/logging/record.js'
import type { LogRecord } from '../../plugins/logging/types.js'
import type { Target } from '../../providers/types.js'

const MASTER = 'sk-master-record-0001'

// ---- the upstream: one behaviour per upstream model id ---------------------------------------------------------

/** A stream whose usage chunk reports cache reads and reasoning, as OpenAI's o-series does. */
const STREAM_USAGE = {
  prompt_tokens: 40, completion_tokens: 25, total_tokens: 65,
  prompt_tokens_details: { cached_tokens: 16, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 9, audio_tokens: 0 },
}
const streamWithUsage: Behaviour = async (ctx) => {
  const chunks = chatChunks({ ...ctx.record.body, stream_options: { include_usage: true } }, 'Streamed answer.') as any[]
  chunks[chunks.length - 1].usage = STREAM_USAGE
  ctx.res.writeHead(200, { 'content-type': 'text/event-stream' })
  for (const c of chunks) ctx.res.write(`data: ${JSON.stringify(c)}\n\n`)
  ctx.res.end('data: [DONE]\n\n')
}

const TOOL_ARGS = '{"city":"Paris","unit":"c"}'
const toolReply: Behaviour = (ctx) => {
  const text = JSON.stringify({
    id: 'chatcmpl-tool1', object: 'chat.completion', created: 1_700_000_000, model: 'tool-real',
    choices: [{
      index: 0, logprobs: null, finish_reason: 'tool_calls',
      message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: TOOL_ARGS } }] },
    }],
    usage: { prompt_tokens: 30, completion_tokens: 10, total_tokens: 40 },
  })
  ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  ctx.res.end(text)
}

const byModel: Record<string, Behaviour> = {
  'gpt-4o-mini': defaultChat({ content: 'Plain answer.' }),
  'stream-real': streamWithUsage,
  'dead-real': errorReply(500, { message: 'upstream exploded' }),
  'tool-real': toolReply,
  'slow-real': slowStream({ intervalMs: 20, chunks: 200 }),
}
const up = await startUpstream(t, {
  chat: (ctx) => (byModel[ctx.record.body?.model] ?? errorReply(404, { message: 'no such model' }))(ctx),
  embeddings: defaultEmbeddings(),
})

// ---- the probe: keeps each call's state and outcome ------------------------------------------------------------

const calls = new Map<string, { state: GatewayState; outcome: Outcome }>()
const probe = definePlugin({
  name: 'probe',
  middleware: () => function probe(ctx, next) {
    const state = ctx.state
    // What the logging plugin does: ask the terminal to keep the reply.
    state.captureReply = true
    void state.done.then((outcome) => calls.set(state.requestId, { state, outcome }))
    return next()
  } as GatewayMiddleware,
})

const dep = (name: string, model: string, id: string) =>
  `  - model_name: ${name}\n    litellm_params: { model: openai/${model}, api_base: ${up.url}, api_key: sk-upstream-secret }\n    model_info: { id: ${id} }\n`
const gw = await startGateway(t, `
pipeline:
  - request-id
  - store-sqlite: { path: ${JSON.stringify(tempDb(t))} }
  - auth: { master_key: ${MASTER} }
  - keys
  - probe
  - priority-queue: { max_parallel_requests: 8 }
  - router
upstream:
  - fallback: { fallbacks: [{ flaky: [gpt] }] }
  - retry: { num_retries: 1, initial_backoff_ms: 0 }
model_list:
${dep('gpt', 'gpt-4o-mini', 'dep-gpt')}${dep('streamer', 'stream-real', 'dep-stream')}${dep('dead', 'dead-real', 'dep-dead')}${dep('flaky', 'dead-real', 'dep-flaky')}${dep('tools', 'tool-real', 'dep-tools')}${dep('slow', 'slow-real', 'dep-slow')}${dep('emb', 'text-embedding-3-small', 'dep-emb')}`,
{ plugins: [priorityQueue, fallback, probe] })

const team = await jsonCall(gw.url, 'POST', '/team/new', { team_id: 'team-rec', team_alias: 'Record Team', metadata: { tags: ['team-tag', 'shared'] } }, MASTER)
if (team.status !== 200) throw new Error(`team/new: ${JSON.stringify(team.body)}`)
const gen = await jsonCall(gw.url, 'POST', '/key/generate', { key_alias: 'rec-key', team_id: 'team-rec', metadata: { tags: ['key-tag', 'shared'] } }, MASTER)
if (gen.status !== 200) throw new Error(`key/generate: ${JSON.stringify(gen.body)}`)
const KEY: string = gen.body.key
const KEY_HASH: string = gen.body.token

const METADATA = {
  tags: ['req-tag', 'shared'], trace_id: 'trace-1', session_id: 'sess-1', generation_name: 'gen-name', trace_user_id: 'tu-1',
  api_key: 'sk-leak-me-not', nested: { authorization: 'Bearer leak', keep: 1, list: ['ok', 'sk-leak-2'] },
}

/** POST a model call with the virtual key; returns the reply and, once `done` resolved, the captured call. */
async function call(path: string, body: Record<string, unknown>) {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  })
  const text = await res.text()
  const id = res.headers.get('x-request-id')!
  return { status: res.status, text, id, captured: await captured(id) }
}

async function captured(id: string) {
  const deadline = Date.now() + 5_000
  while (!calls.has(id)) {
    if (Date.now() > deadline) throw new Error(`no done outcome for ${id}`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return calls.get(id)!
}

function commonChecks(t: Test, r: LogRecord, startedBefore: number, endedAfter: number) {
  t.match(r.id, /^[0-9a-f-]{36}$/, 'id is the request id')
  t.ok(r.start_time >= startedBefore - 1 && r.start_time <= r.end_time, 'start_time is when the request came in')
  t.ok(r.end_time <= endedAfter + 1000, 'end_time is when done resolved (around now)')
  t.equal(r.latency_ms, r.end_time - r.start_time, 'latency is end - start')
  t.equal(r.key_hash, KEY_HASH, 'the key hash, never the key')
  t.equal(r.key_alias, 'rec-key')
  t.equal(r.team_id, 'team-rec')
  t.equal(r.team_alias, 'Record Team')
  t.equal(r.queue_wait_ms, 0, 'admitted at once by the priority queue')
  t.ok(typeof r.overhead_ms === 'number' && r.overhead_ms >= 0, 'overhead measured')
  t.same(Object.keys(r.plugin_timings), ['request-id', 'auth', 'probe', 'priority-queue', 'router', 'handler'],
    'one timing per request-chain step (plugins with middleware), in chain order')
  for (const v of Object.values(r.plugin_timings)) t.ok(v >= 0, 'timings are non-negative')
  const text = JSON.stringify(r)
  t.notOk(text.includes(KEY), 'the virtual key is nowhere in the record')
  t.notOk(text.includes('sk-upstream-secret'), 'the deployment key is nowhere in the record')
  t.notOk(text.includes('leak'), 'secret-looking metadata is gone')
}

t.test('a plain chat call', async (t) => {
  const before = Date.now()
  const { status, id, captured: { state, outcome } } = await call('/v1/chat/completions', {
    model: 'gpt', messages: [{ role: 'user', content: 'Hello there' }], temperature: 0.2, max_tokens: 50, user: 'end-user-1',
    metadata: METADATA, tags: ['body-tag', 'req-tag'], priority: 3, api_key: 'sk-body-secret', mock_testing_fallbacks: false,
  })
  t.equal(status, 200)
  const r = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  commonChecks(t, r, before, Date.now())
  t.equal(r.id, id)
  t.equal(r.call_type, 'chat')
  t.equal(r.route, '/v1/chat/completions')
  t.equal(r.status, 'success')
  t.equal(r.http_status, 200)
  t.equal(r.model_group, 'gpt')
  t.equal(r.model, 'gpt-4o-mini')
  t.equal(r.model_id, 'dep-gpt')
  t.equal(r.provider, 'openai')
  t.equal(r.api_base, up.url)
  t.equal(r.stream, false)
  t.ok(r.ttft_ms !== null && r.ttft_ms >= 0 && r.ttft_ms <= r.latency_ms + 1, 'ttft: time to the reply headers')
  t.equal(r.completion_start_time, r.start_time + Math.round(r.ttft_ms!))
  t.equal(r.priority, 3)
  t.equal(r.attempts.length, 1)
  t.match(r.attempts[0], { deployment: 'dep-gpt', provider: 'openai', model: 'gpt-4o-mini', status: 200, error_code: null })
  t.ok(r.attempts[0]!.start_time >= r.start_time && r.attempts[0]!.duration_ms >= 0)
  t.equal(r.retries, 0)
  t.equal(r.fallbacks, 0)
  const u = state.usage!
  t.same(r.usage, { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 })
  t.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0)
  t.ok(r.cost > 0, 'priced')
  t.equal(r.cost, state.costUsd)
  t.equal(r.cost_source, 'table')
  t.same(r.model_parameters, { temperature: 0.2, max_tokens: 50, user: 'end-user-1' }, 'params without prompt, gateway fields or secrets')
  t.same(r.messages, [{ role: 'user', content: 'Hello there' }])
  t.same(r.response, { role: 'assistant', content: 'Plain answer.', refusal: null, annotations: [] })
  t.same(r.tool_calls, [])
  t.equal(r.finish_reason, 'stop')
  t.equal(r.error, null)
  t.equal(r.user_id, null)
  t.equal(r.end_user, 'end-user-1')
  t.same(r.tags, ['req-tag', 'shared', 'body-tag', 'key-tag', 'team-tag'], 'tags merged, deduplicated, in order')
  t.same(r.metadata, {
    tags: ['req-tag', 'shared'], trace_id: 'trace-1', session_id: 'sess-1', generation_name: 'gen-name', trace_user_id: 'tu-1',
    nested: { keep: 1, list: ['ok'] },
  }, 'metadata kept, secrets removed at any depth')
  t.equal(r.redacted, false)
  t.equal(isFailure(state, outcome), false)
  t.same(JSON.parse(JSON.stringify(r)), r, 'the record survives JSON as is')
})

t.test('a streamed call with cached and reasoning tokens', async (t) => {
  const before = Date.now()
  const { status, text, captured: { state, outcome } } = await call('/v1/chat/completions', {
    model: 'streamer', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Stream please' }], metadata: METADATA,
  })
  t.equal(status, 200)
  t.match(text, /data: \[DONE\]/)
  const r = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  commonChecks(t, r, before, Date.now())
  t.equal(r.stream, true)
  t.equal(r.status, 'success')
  t.equal(r.model, 'stream-real')
  t.equal(r.model_id, 'dep-stream')
  t.same(r.usage, { prompt_tokens: 40, completion_tokens: 25, total_tokens: 65, cached_tokens: 16, cache_creation_tokens: 0, reasoning_tokens: 9 })
  t.ok(r.cost > 0)
  t.same(r.response, { role: 'assistant', content: 'Streamed answer.' }, 'the stream assembled')
  t.equal(r.finish_reason, 'stop')
  t.ok(r.ttft_ms !== null && r.ttft_ms <= r.latency_ms + 1, 'ttft: the first event')
  t.same(r.model_parameters, { stream_options: { include_usage: true } })
  t.same(r.messages, [{ role: 'user', content: 'Stream please' }])
  t.same(r.tags, ['req-tag', 'shared', 'key-tag', 'team-tag'])
})

t.test('a failed upstream call', async (t) => {
  const before = Date.now()
  const { status, captured: { state, outcome } } = await call('/v1/chat/completions', {
    model: 'dead', messages: [{ role: 'user', content: 'will fail' }], metadata: METADATA,
  })
  t.equal(status, 500)
  const r = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  commonChecks(t, r, before, Date.now())
  t.equal(r.status, 'failure')
  t.equal(r.http_status, 500)
  t.equal(r.model, 'dead-real', 'the deployment last tried')
  t.equal(r.model_id, 'dep-dead')
  t.equal(r.provider, 'openai')
  t.equal(r.api_base, up.url)
  t.equal(r.attempts.length, 2, 'first try and one retry')
  for (const a of r.attempts) t.match(a, { deployment: 'dep-dead', status: 500 })
  t.ok(r.attempts.every((a) => typeof a.error_code === 'string' && a.error_code.startsWith('GW_ERR_')), 'attempts carry their error code')
  t.equal(r.retries, 1)
  t.equal(r.fallbacks, 0)
  t.equal(r.response, null)
  t.equal(r.ttft_ms, null, 'no reply started')
  t.equal(r.completion_start_time, null)
  t.equal(r.finish_reason, null)
  t.same(r.usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 })
  t.equal(r.cost, 0)
  t.same(r.messages, [{ role: 'user', content: 'will fail' }], 'the prompt is logged for a failure too')
  t.ok(r.error, 'error set')
  t.equal(r.error!.status, 500)
  t.equal(r.error!.type, state.error!.name)
  t.equal(r.error!.code, state.error!.openaiCode ?? state.error!.code)
  t.match(r.error!.message, /upstream exploded/)
  t.equal(isFailure(state, outcome), true)
})

t.test('a call that fell back after its retries', async (t) => {
  const before = Date.now()
  const { status, captured: { state, outcome } } = await call('/v1/chat/completions', {
    model: 'flaky', messages: [{ role: 'user', content: 'fall back' }], metadata: METADATA,
  })
  t.equal(status, 200)
  const r = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  commonChecks(t, r, before, Date.now())
  t.equal(r.status, 'success')
  t.equal(r.model_group, 'flaky', 'the group asked for')
  t.equal(r.model_id, 'dep-gpt', 'the deployment that answered')
  t.equal(r.model, 'gpt-4o-mini')
  t.same(r.attempts.map((a) => [a.deployment, a.status]), [['dep-flaky', 500], ['dep-flaky', 500], ['dep-gpt', 200]])
  t.equal(r.fallbacks, 1)
  t.equal(r.retries, 1, 'one retry within the first group')
  t.equal(r.error, null)
})

t.test('a tool call, and the same call redacted', async (t) => {
  const before = Date.now()
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
  const { status, captured: { state, outcome } } = await call('/v1/chat/completions', {
    model: 'tools', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'auto', metadata: METADATA,
  })
  t.equal(status, 200)
  const r = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  commonChecks(t, r, before, Date.now())
  t.same(r.tool_calls, [{ id: 'call_1', name: 'get_weather', arguments: TOOL_ARGS }])
  t.equal(r.finish_reason, 'tool_calls')
  t.same(r.model_parameters, { tools, tool_choice: 'auto' })
  t.match(r.response, { role: 'assistant', content: null })

  const red = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: true })
  commonChecks(t, red, before, Date.now())
  t.equal(red.redacted, true)
  t.equal(red.messages, null, 'messages redacted')
  t.equal(red.response, null, 'response redacted')
  t.same(red.tool_calls, [{ id: 'call_1', name: 'get_weather', arguments: '' }], 'tool names kept, arguments emptied')
  t.notOk(JSON.stringify(red).includes('Paris'), 'no prompt or reply content anywhere')
  t.equal(red.finish_reason, 'tool_calls')
  t.same(red.usage, r.usage, 'usage and cost are kept')
  t.equal(red.cost, r.cost)
  t.same(red.metadata, r.metadata)
})

t.test('an embeddings call', async (t) => {
  const { status, captured: { state, outcome } } = await call('/v1/embeddings', { model: 'emb', input: ['a', 'b'], dimensions: 8 })
  t.equal(status, 200)
  const r = buildRecord(state, outcome, { route: '/v1/embeddings', redact: false })
  t.equal(r.call_type, 'embeddings')
  t.equal(r.route, '/v1/embeddings')
  t.same(r.messages, ['a', 'b'])
  t.same(r.response, { embeddings: 2, dimensions: 8 }, 'a summary, not the vectors')
  t.same(r.model_parameters, { dimensions: 8 })
  t.equal(r.finish_reason, null)
  t.ok(r.usage.prompt_tokens > 0)
})

t.test('a stream the client cut off', async (t) => {
  const ac = new AbortController()
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', signal: ac.signal, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'long one' }] }),
  })
  const id = res.headers.get('x-request-id')!
  const reader = res.body!.getReader()
  let got = ''
  while (!got.includes('w3 ')) got += new TextDecoder().decode((await reader.read()).value)
  ac.abort()
  const { state, outcome } = await captured(id)
  const r = buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  t.equal(r.status, 'failure')
  t.equal(r.http_status, 499)
  t.equal(r.error!.status, 499)
  t.ok(r.ttft_ms !== null, 'the reply had started')
  t.match(r.response, { role: 'assistant', content: /^w0 w1 w2 w3 / }, 'what was streamed before the cut')
  t.ok(r.usage.completion_tokens > 0, 'usage estimated from what was delivered')
  t.equal(r.cost_source, 'estimated')
})

// ---- states built by hand ------------------------------------------------------------------------------------

function target(over: Partial<Target> = {}): Target {
  return {
    id: 'dep-x', modelName: 'claude', provider: 'anthropic', model: 'claude-sonnet-4', timeoutMs: 600_000, streamTimeoutMs: 600_000,
    weight: 1, dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, ...over,
  } as Target
}

function handState(): GatewayState {
  const state = createState(null as never, new AbortController().signal, new Promise(() => {}))
  state.requestId = 'req-hand-1'
  state.kind = 'chat'
  state.model = 'claude'
  return state
}

const OK: Outcome = { status: 200, error: null, aborted: false, usage: null }

t.test('api_base loses credentials; parameters and metadata lose secrets', async (t) => {
  const state = handState()
  const tgt = target({ apiBase: 'https://user:pa55@api.example.com/v1/?key=abc#frag', apiKey: 'sk-ant-secret' })
  state.target = tgt
  state.targets = [tgt]
  state.body = {
    model: 'claude', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, max_completion_tokens: 12, top_p: 0.9,
    api_key: 'sk-x', api_base: 'http://evil', client_secret: 'zz', 'x-api-key': 'k', auth_token: 't', password: 'p',
    custom_header: 'Bearer abc', seed: 7, 'no-log': false, user_api_key_alias: 'a', langfuse_secret_key: 's',
    metadata: { trace_id: 't', headers: { Authorization: 'Bearer h', 'x-ok': 'v' }, secret_sauce: 1, idempotency_key: 'i', prompt_tokens_budget: 3 },
  }
  const r = buildRecord(state, OK, { route: '/v1/chat/completions', redact: false })
  t.equal(r.api_base, 'https://api.example.com/v1')
  t.same(r.model_parameters, { max_tokens: 10, max_completion_tokens: 12, top_p: 0.9, seed: 7 })
  t.same(r.metadata, { trace_id: 't', headers: { 'x-ok': 'v' }, prompt_tokens_budget: 3 })
  t.notOk(JSON.stringify(r).match(/sk-|pa55|evil|Bearer/), 'nothing secret in the JSON')
  const custom = buildRecord(state, OK, { route: '/v1/chat/completions', redact: false, apiBase: () => 'https://custom' })
  t.equal(custom.api_base, 'https://custom', 'the caller may supply the API base')
  t.equal(r.key_hash, null, 'no principal: no key fields')
  t.equal(r.queue_wait_ms, null, 'no priority queue')
  t.equal(r.priority, null)
  t.same(r.plugin_timings, {}, 'no chain ran')
})

t.test('Anthropic usage, a native Messages reply, the client format', async (t) => {
  const state = handState()
  state.format = 'anthropic'
  state.target = target()
  state.body = { model: 'claude', messages: [{ role: 'user', content: 'hi' }] }
  state.usage = {
    prompt_tokens: 110, completion_tokens: 20, total_tokens: 130, prompt_tokens_details: { cached_tokens: 50 },
    cache_creation_input_tokens: 40, cache_read_input_tokens: 50,
  }
  state.reply = {
    id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4', stop_reason: 'tool_use',
    content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'x' } }],
  }
  state.captureReply = true
  const r = buildRecord(state, OK, { route: '/v1/messages', redact: false })
  t.equal(r.call_type, 'anthropic_messages')
  t.same(r.usage, { prompt_tokens: 110, completion_tokens: 20, total_tokens: 130, cached_tokens: 50, cache_creation_tokens: 40, reasoning_tokens: 0 })
  t.equal(r.finish_reason, 'tool_use')
  t.same(r.tool_calls, [{ id: 'toolu_1', name: 'lookup', arguments: '{"q":"x"}' }])
  t.same(r.response, { role: 'assistant', content: (state.reply as any).content })
  const red = buildRecord(state, OK, { route: '/v1/messages', redact: true })
  t.same(red.tool_calls, [{ id: 'toolu_1', name: 'lookup', arguments: '' }])
  t.equal(red.response, null)
})

t.test('a failure the core recorded without an attempt, and a status-only failure', async (t) => {
  const state = handState()
  state.targets = [target()]
  state.error = gatewayError('GW_ERR_NO_DEPLOYMENT', 'No deployment available for model claude')
  const r = buildRecord(state, { status: state.error.status, error: state.error, aborted: false, usage: null }, { route: '/v1/chat/completions', redact: false })
  t.equal(r.status, 'failure')
  t.equal(r.model_id, 'dep-x', 'the first candidate when none was tried')
  t.match(r.error, { type: state.error.name, status: state.error.status, message: 'No deployment available for model claude' })
  const plain = handState()
  const r2 = buildRecord(plain, { status: 503, error: null, aborted: false, usage: null }, { route: '/v1/chat/completions', redact: false })
  t.same(r2.error, { type: 'APIError', code: 'http_503', message: 'The call ended with HTTP 503.', status: 503 })
  t.equal(r2.model_id, null)
  t.equal(r2.api_base, null)
})

t.test('building a record is cheap', async (t) => {
  const { state, outcome } = [...calls.values()].find((c) => c.state.model === 'gpt')!
  const n = 20_000
  const start = performance.now()
  for (let i = 0; i < n; i++) buildRecord(state, outcome, { route: '/v1/chat/completions', redact: false })
  const perCallUs = ((performance.now() - start) / n) * 1000
  t.comment(`buildRecord: ${perCallUs.toFixed(2)} µs per call`)
  // Generous for a loaded CI machine; a JSON round trip of the body or a regex per character would blow it.
  t.ok(perCallUs < 100, `under 100 µs per record (${perCallUs.toFixed(2)})`)
})
