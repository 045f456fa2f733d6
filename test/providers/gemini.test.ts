/**
 * The Gemini adapter, unit by unit, over Google's recorded traffic (../shared/data/gemini/recordings) and the Gemini
 * spec: every request body built here is validated against GenerateContentRequest / BatchEmbedContentsRequest, and
 * every answer against OpenAI's own schemas. Table-driven: request mapping, response mapping, stream translation
 * chunk by chunk, error mapping. The gateway end to end is gemini-gateway.test.ts.
 */
import t from 'tap'
import { gemini } from '../../providers/gemini/index.js'
import { applyParamMap } from '../../providers/param-map.js'
import type { OperationAdapter, ResponseMeta, Target } from '../../providers/types.js'
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/openai/types.js'
import { GatewayError } from '../../core/errors.js'
import { buildConfig } from '../../core/config/load.js'
import { createModelTable } from '../../core/models.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertGeminiSchema, geminiSchemaErrors, recording, REC, target } from './google-fixtures.js'

const chat = gemini.chat as OperationAdapter<ChatRequest, ChatCompletion, ChatChunk>
const T = target('gemini', { apiKey: 'AIza-test-key' })

function build(req: Partial<ChatRequest>, tg: Target = T): Record<string, any> {
  const full = { model: 'g', messages: [{ role: 'user', content: 'hi' }], ...req } as ChatRequest
  const body = applyParamMap(full, chat.params, tg, chat.policy)
  return chat.finish ? chat.finish(body, full, tg, false) : body
}

function meta(tg: Target = T): ResponseMeta {
  return { target: tg, requestId: 'req-1', created: 1_700_000_000 }
}

function thrown(fn: () => unknown): GatewayError {
  try {
    fn()
  } catch (e) {
    if (e instanceof GatewayError) return e
    throw e
  }
  throw new Error('expected a GatewayError, nothing was thrown')
}

t.test('the recorded requests validate against the spec (the validator itself accepts real traffic)', async (t) => {
  for (const name of [REC.generate, REC.functionDecl, REC.functionStream, REC.stream]) {
    for (const i of recording(name)) assertGeminiSchema(t, 'GenerateContentRequest', i.request.bodySegments[0], `${name} request`)
  }
  // ... and rejects a misspelt field, so a pass below means something.
  t.ok(geminiSchemaErrors('GenerateContentRequest', { contents: [{ role: 'user', parts: [{ inline_data: {} }] }] }).length, 'inline_data (snake case) is refused')
  t.ok(geminiSchemaErrors('GenerateContentRequest', { contents: [], generationConfig: { maxTokens: 5 } }).length, 'an unknown generationConfig field is refused')
})

t.test('request mapping reproduces the recorded Gemini requests', async (t) => {
  const gen = recording(REC.generate)[0]!.request.bodySegments[0]
  const body = build({ messages: [{ role: 'user', content: 'why is the sky blue?' }], n: 1, max_tokens: 200, thinking: { budget_tokens: 50 } })
  t.same(body, gen, 'n, max_tokens and a thinking budget -> the recorded generationConfig')

  const fc = recording(REC.functionStream)
  const tools = [{
    type: 'function' as const,
    function: {
      name: 'customDivide', description: 'Custom divide function',
      parameters: { type: 'object', properties: { numerator: { type: 'number' }, denominator: { type: 'number' } } },
    },
  }]
  const first = build({ messages: [{ role: 'user', content: 'what is the result of 100/2' }], tools })
  t.same(first.contents, fc[0]!.request.bodySegments[0].contents)
  t.same(first.tools, fc[0]!.request.bodySegments[0].tools, 'JSON schema types become Gemini types')
  const second = build({
    messages: [
      { role: 'user', content: 'what is the result of 100/2' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'customDivide', arguments: '{"numerator":100,"denominator":2}' } }] },
      { role: 'user', content: 'what is the result of 50/2?' },
    ],
    tools,
  })
  t.same(second.contents, fc[1]!.request.bodySegments[0].contents, 'an assistant tool call -> a model functionCall turn')

  const decl = recording(REC.functionDecl)[0]!.request.bodySegments[0]
  const forced = build({
    messages: [{ role: 'user', content: 'put word: hello and word: world into a string' }],
    tools: [{
      type: 'function',
      function: {
        name: 'concatStringFunction', description: 'this is a concat string function',
        parameters: { $schema: 'http://json-schema.org/draft-07/schema#', additionalProperties: false, type: 'object', required: ['firstString', 'secondString'], properties: { firstString: { type: 'string' }, secondString: { type: 'string' } } },
      },
    }],
    tool_choice: { type: 'function', function: { name: 'concatStringFunction' } },
  })
  t.same(forced.toolConfig, decl.toolConfig, 'a named tool_choice -> mode ANY with allowedFunctionNames')
  t.same(forced.tools[0].functionDeclarations[0].parameters,
    { type: 'OBJECT', required: ['firstString', 'secondString'], properties: { firstString: { type: 'STRING' }, secondString: { type: 'STRING' } } },
    '$schema and additionalProperties are removed')
  for (const b of [body, first, second, forced]) assertGeminiSchema(t, 'GenerateContentRequest', b)
})

const PNG = 'iVBORw0KGgo='
const cases: Array<{ name: string; req: Partial<ChatRequest>; target?: Target; expect: Record<string, unknown> }> = [
  {
    name: 'system and developer messages -> systemInstruction; multi-part user content -> parts',
    req: {
      messages: [
        { role: 'system', content: 'Be terse.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
        { role: 'user', content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpeg?size=large' } },
          { type: 'image_url', image_url: { url: 'gs://bucket/doc.pdf' } },
          { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
        ] },
      ],
    },
    expect: {
      systemInstruction: { parts: [{ text: 'Be terse.' }, { text: 'Answer in French.' }] },
      contents: [{ role: 'user', parts: [
        { text: 'What is in these?' },
        { inlineData: { mimeType: 'image/png', data: PNG } },
        { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/cat.jpeg?size=large' } },
        { fileData: { mimeType: 'application/pdf', fileUri: 'gs://bucket/doc.pdf' } },
        { inlineData: { mimeType: 'audio/wav', data: 'UklGRg==' } },
      ] }],
    },
  },
  {
    name: 'tool calls and their results, thought signature restored from the tool-call id',
    req: {
      messages: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        { role: 'assistant', content: 'Checking.', tool_calls: [
          { id: 'call_a__thought__c2lnbmF0dXJl', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
        ] },
        { role: 'tool', tool_call_id: 'call_a__thought__c2lnbmF0dXJl', content: '{"temp":21}' },
        { role: 'tool', tool_call_id: 'call_b', content: 'sunny, 25C' },
        { role: 'user', content: 'Thanks' },
      ],
    },
    expect: {
      contents: [
        { role: 'user', parts: [{ text: 'Weather in Paris and Rome?' }] },
        { role: 'model', parts: [
          { text: 'Checking.' },
          { functionCall: { name: 'weather', args: { city: 'Paris' } }, thoughtSignature: 'c2lnbmF0dXJl' },
          { functionCall: { name: 'weather', args: { city: 'Rome' } } },
        ] },
        { role: 'user', parts: [
          { functionResponse: { name: 'weather', response: { temp: 21 } } },
          { functionResponse: { name: 'weather', response: { content: 'sunny, 25C' } } },
        ] },
        { role: 'user', parts: [{ text: 'Thanks' }] },
      ],
    },
  },
  {
    name: 'sampling params -> generationConfig; a stop string becomes a list',
    req: { temperature: 0.2, top_p: 0.9, top_k: 40, stop: 'END', seed: 7, presence_penalty: 0.5, frequency_penalty: -0.5, max_completion_tokens: 64, logprobs: true, top_logprobs: 2 },
    expect: { generationConfig: { temperature: 0.2, topP: 0.9, topK: 40, stopSequences: ['END'], seed: 7, presencePenalty: 0.5, frequencyPenalty: -0.5, maxOutputTokens: 64, responseLogprobs: true, logprobs: 2 } },
  },
  {
    name: 'response_format json_object -> responseMimeType',
    req: { response_format: { type: 'json_object' } },
    expect: { generationConfig: { responseMimeType: 'application/json' } },
  },
  {
    name: 'response_format json_schema -> responseSchema ($ref inlined, null folded into nullable, key order kept)',
    req: { response_format: { type: 'json_schema', json_schema: { name: 'p', strict: true, schema: {
      type: 'object', additionalProperties: false, required: ['name', 'pet'],
      properties: { name: { type: 'string', format: 'email' }, age: { type: ['integer', 'null'] }, pet: { $ref: '#/$defs/Pet' }, tag: { const: 'x' } },
      $defs: { Pet: { type: 'object', properties: { kind: { enum: ['cat', 'dog'] }, owner: { anyOf: [{ type: 'string' }, { type: 'null' }] } } } },
    } } } },
    expect: { generationConfig: { responseMimeType: 'application/json', responseSchema: {
      type: 'OBJECT', required: ['name', 'pet'], propertyOrdering: ['name', 'age', 'pet', 'tag'],
      properties: {
        name: { type: 'STRING' },
        age: { type: 'INTEGER', nullable: true },
        pet: { type: 'OBJECT', propertyOrdering: ['kind', 'owner'], properties: { kind: { type: 'STRING', enum: ['cat', 'dog'] }, owner: { type: 'STRING', nullable: true } } },
        tag: { type: 'STRING', enum: ['x'] },
      },
    } } },
  },
  {
    name: 'reasoning_effort -> a thinking budget (Gemini 2.5)',
    req: { reasoning_effort: 'low' },
    expect: { generationConfig: { thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } } },
  },
  {
    name: 'reasoning_effort -> a thinking level (Gemini 3)',
    req: { reasoning_effort: 'high' },
    target: target('gemini', { model: 'gemini-3-pro-preview' }),
    expect: { generationConfig: { thinkingConfig: { thinkingLevel: 'HIGH', includeThoughts: true } } },
  },
  {
    name: 'tool_choice required -> ANY; a tool with no parameters has none',
    req: { tools: [{ type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } }], tool_choice: 'required' },
    expect: { tools: [{ functionDeclarations: [{ name: 'now', description: '' }] }], toolConfig: { functionCallingConfig: { mode: 'ANY' } } },
  },
  {
    name: 'null means not set: nothing is sent for it',
    req: { temperature: null, max_tokens: null, stop: null, tools: null, tool_choice: null, response_format: null, seed: null } as unknown as Partial<ChatRequest>,
    expect: {},
  },
  {
    name: 'gateway fields and stream settings are never sent',
    req: { metadata: { tag: 'x' }, mock_testing_fallbacks: false, api_key: 'sk-client', stream: true, stream_options: { include_usage: true }, num_retries: 2 } as Partial<ChatRequest>,
    expect: {},
  },
]

t.test('request mapping, table', async (t) => {
  for (const c of cases) {
    const body = build(c.req, c.target)
    const { contents, ...rest } = body
    if (c.expect.contents) t.same(contents, c.expect.contents, `${c.name}: contents`)
    else t.same(contents, [{ role: 'user', parts: [{ text: 'hi' }] }], `${c.name}: contents`)
    const { contents: _c, ...expectRest } = c.expect
    t.same(rest, expectRest, c.name)
    assertGeminiSchema(t, 'GenerateContentRequest', body, `${c.name}: valid GenerateContentRequest`)
  }
})

t.test('params Gemini lacks are refused by name, or dropped with drop_params; ranges are checked', async (t) => {
  for (const p of ['logit_bias', 'user', 'parallel_tool_calls', 'functions', 'audio'] as const) {
    const e = thrown(() => build({ [p]: p === 'user' ? 'u-1' : p === 'parallel_tool_calls' ? false : { x: 1 } }))
    t.equal(e.code, 'GW_ERR_UNSUPPORTED_PARAM', `${p}: unsupported`)
    t.equal(e.status, 400)
    t.equal(e.param, p)
    t.match(e.message, /drop_params/)
  }
  const dropped = build({ logit_bias: { 1: 2 }, user: 'u' }, target('gemini', { dropParams: true }))
  t.notOk('logit_bias' in dropped || 'user' in dropped, 'drop_params drops them')
  const range = thrown(() => build({ temperature: 2.5 }))
  t.equal(range.code, 'GW_ERR_PARAM_RANGE')
  t.equal(thrown(() => build({ tool_choice: 'sometimes' })).param, 'tool_choice')
  t.equal(thrown(() => build({ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{oops' } }] }] })).code, 'GW_ERR_VALIDATION', 'bad tool arguments: 400')
  t.match(thrown(() => build({ messages: [{ role: 'tool', tool_call_id: 'nope', content: 'x' }] })).message, /tool_call_id 'nope' is unknown/)
  t.match(thrown(() => build({ response_format: { type: 'json_schema', json_schema: { name: 'r', schema: { $ref: '#/$defs/Node', $defs: { Node: { type: 'object', properties: { next: { $ref: '#/$defs/Node' } } } } } } } })).message, /nests deeper/, 'a recursive schema is refused, not looped')
})

t.test('URLs, the key header and LiteLLM environment variables', async (t) => {
  const chatReq = gemini.request('chat', T, false)
  t.equal(chatReq.url, 'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent')
  t.equal(chatReq.headers['x-goog-api-key'], 'AIza-test-key', 'the key travels in x-goog-api-key')
  t.notMatch(chatReq.url, /key=|AIza/, 'never in the URL')
  t.equal(gemini.request('chat', T, true).url, 'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse')
  t.equal(gemini.request('embeddings', target('gemini', { model: 'text-embedding-004' }), false).url,
    'https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents')
  const bases: Array<[string, string]> = [
    ['http://127.0.0.1:9/v1beta/', 'http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent'],
    ['http://127.0.0.1:9', 'http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent'],
    ['https://gw.example/google/v1beta/models/gemini-2.5-flash', 'https://gw.example/google/v1beta/models/gemini-2.5-flash:generateContent'],
    ['https://gw.example/v1beta/models/gemini-2.5-flash:generateContent', 'https://gw.example/v1beta/models/gemini-2.5-flash:generateContent'],
  ]
  for (const [base, url] of bases) t.equal(gemini.request('chat', target('gemini', { apiBase: base }), false).url, url, `api_base ${base}`)
  t.equal(gemini.request('chat', target('gemini', { extraHeaders: { 'X-Trace': 'a' } }), false).headers['x-trace'], 'a')

  const registry = createProviderRegistry([...builtinProviders(), gemini])
  const config = buildConfig({ model_list: [{ model_name: 'g', litellm_params: { model: 'gemini/gemini-2.5-flash' } }] }, { env: {} })
  const fromGemini = createModelTable(config, registry, { GEMINI_API_KEY: 'k-gemini', GOOGLE_API_KEY: 'k-google', GEMINI_API_BASE: 'http://127.0.0.1:7/v1beta' }).resolve('g')[0]!
  t.equal(fromGemini.apiKey, 'k-gemini', 'GEMINI_API_KEY first')
  t.equal(fromGemini.apiBase, 'http://127.0.0.1:7/v1beta', 'GEMINI_API_BASE')
  t.equal(createModelTable(config, registry, { GOOGLE_API_KEY: 'k-google' }).resolve('g')[0]!.apiKey, 'k-google', 'GOOGLE_API_KEY second')
})

t.test('embeddings: one batchEmbedContents call for a list, dimensions -> outputDimensionality', async (t) => {
  const emb = gemini.embeddings!
  const tg = target('gemini', { model: 'text-embedding-004' })
  const req = { model: 'e', input: ['alpha', 'beta'], dimensions: 8, task_type: 'RETRIEVAL_QUERY', encoding_format: 'base64' as const }
  const body = emb.finish!(applyParamMap(req, emb.params, tg, emb.policy), req, tg, false)
  t.same(body, { requests: [
    { content: { parts: [{ text: 'alpha' }] }, model: 'models/text-embedding-004', outputDimensionality: 8, taskType: 'RETRIEVAL_QUERY' },
    { content: { parts: [{ text: 'beta' }] }, model: 'models/text-embedding-004', outputDimensionality: 8, taskType: 'RETRIEVAL_QUERY' },
  ] })
  assertGeminiSchema(t, 'BatchEmbedContentsRequest', body)
  const single = emb.finish!(applyParamMap({ model: 'e', input: 'one' }, emb.params, tg, emb.policy), { model: 'e', input: 'one' }, tg, false)
  t.equal((single.requests as unknown[]).length, 1, 'a string input is a batch of one')
  t.equal(thrown(() => applyParamMap({ model: 'e', input: [[1, 2]] }, emb.params, tg, emb.policy)).param, 'input', 'token ids: 400')
  t.equal(thrown(() => applyParamMap({ model: 'e', input: 'x', user: 'u' }, emb.params, tg, emb.policy)).code, 'GW_ERR_UNSUPPORTED_PARAM')
  const res = emb.response({ embeddings: [{ values: [0.1, 0.2] }, { values: [0.3, 0.4] }] }, meta(tg))
  t.same(res.data, [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }, { object: 'embedding', index: 1, embedding: [0.3, 0.4] }])
  t.equal(res.model, 'text-embedding-004')
  assertSchema(t, 'CreateEmbeddingResponse', res)
})

t.test('response mapping over the recorded answers', async (t) => {
  const rows: Array<{ rec: string; content?: RegExp; finish: string; usage: Record<string, unknown>; tools?: boolean }> = [
    { rec: REC.generate, content: /^The sky is blue because of something called \*\*Rayleigh Scattering\*\*/, finish: 'length',
      usage: { prompt_tokens: 7, completion_tokens: 197, total_tokens: 204, completion_tokens_details: { reasoning_tokens: 48 } } },
    { rec: REC.generateVertex, content: /^The sky is blue primarily due to/, finish: 'length',
      usage: { prompt_tokens: 6, completion_tokens: 197, total_tokens: 203, completion_tokens_details: { reasoning_tokens: 42 } } },
    { rec: REC.functionDecl, finish: 'tool_calls', tools: true,
      usage: { prompt_tokens: 65, completion_tokens: 91, total_tokens: 156, completion_tokens_details: { reasoning_tokens: 69 } } },
  ]
  for (const r of rows) {
    const upstream = recording(r.rec)[0]!.response.bodySegments[0]
    const out = chat.response(upstream, meta())
    t.equal(out.object, 'chat.completion')
    t.equal(out.model, 'gemini-2.5-flash', 'model is the target model')
    t.equal(out.id, `chatcmpl-${upstream.responseId}`)
    t.equal(out.created, 1_700_000_000)
    const choice = out.choices[0]!
    t.equal(choice.finish_reason, r.finish, `${r.rec}: finish_reason`)
    if (r.content) t.match(choice.message.content, r.content)
    t.same(out.usage, r.usage, `${r.rec}: usage, thoughts counted in the completion`)
    if (r.tools) {
      const call = choice.message.tool_calls![0]!
      t.equal(call.type, 'function')
      t.equal(call.function.name, 'concatStringFunction')
      t.same(JSON.parse(call.function.arguments), { firstString: 'hello', secondString: 'world' }, 'arguments are a JSON string')
      t.match(call.id, /^call_[0-9a-f]{24}__thought__CrcCAdHtim9L/, 'the thought signature rides in the id')
      t.equal(choice.message.content, null)
    }
    assertSchema(t, 'CreateChatCompletionResponse', out)
  }
})

t.test('response mapping, synthetic cases from the spec', async (t) => {
  const out = chat.response({
    responseId: 'r1',
    candidates: [
      { index: 0, finishReason: 'STOP', content: { role: 'model', parts: [{ text: 'Let me think.', thought: true }, { text: 'Four' }, { text: '.' }] },
        logprobsResult: { chosenCandidates: [{ token: 'Four', logProbability: -0.1 }], topCandidates: [{ candidates: [{ token: 'Four', logProbability: -0.1 }, { token: '4', logProbability: -2 }] }] } },
      { index: 1, finishReason: 'SAFETY', content: { role: 'model', parts: [] } },
    ],
    usageMetadata: { promptTokenCount: 100, cachedContentTokenCount: 80, candidatesTokenCount: 5, thoughtsTokenCount: 10, totalTokenCount: 115 },
  }, meta())
  t.equal(out.choices[0]!.message.content, 'Four.', 'text parts joined')
  t.equal(out.choices[0]!.message.reasoning_content, 'Let me think.', 'thought parts -> reasoning_content')
  t.equal(out.choices[0]!.finish_reason, 'stop')
  t.same(out.choices[0]!.logprobs, { content: [{ token: 'Four', logprob: -0.1, bytes: null, top_logprobs: [{ token: 'Four', logprob: -0.1, bytes: null }, { token: '4', logprob: -2, bytes: null }] }], refusal: null })
  t.equal(out.choices[1]!.finish_reason, 'content_filter', 'SAFETY -> content_filter')
  t.same(out.usage, { prompt_tokens: 100, completion_tokens: 15, total_tokens: 115, prompt_tokens_details: { cached_tokens: 80 }, completion_tokens_details: { reasoning_tokens: 10 } })
  assertSchema(t, 'CreateChatCompletionResponse', out)
  for (const [reason, want] of [['RECITATION', 'content_filter'], ['BLOCKLIST', 'content_filter'], ['PROHIBITED_CONTENT', 'content_filter'], ['SPII', 'content_filter'], ['MAX_TOKENS', 'length'], ['OTHER', 'stop']]) {
    t.equal(chat.response({ candidates: [{ finishReason: reason, content: { parts: [{ text: 'x' }] } }] }, meta()).choices[0]!.finish_reason, want, `${reason} -> ${want}`)
  }
  const blocked = thrown(() => chat.response({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 4, totalTokenCount: 4 } }, meta()))
  t.equal(blocked.code, 'GW_ERR_CONTENT_POLICY', 'a blocked prompt is a content-policy error')
  t.equal(blocked.status, 400)
  t.match(blocked.message, /blockReason SAFETY/)
})

/** Feed recorded segments through a fresh translator, as SSE events. */
function translate(segments: readonly unknown[], tg: Target = T) {
  const tr = chat.stream!({ model: 'g', messages: [] } as ChatRequest, meta(tg))
  const chunks: ChatChunk[] = []
  for (const s of segments) chunks.push(...tr.event({ event: undefined, data: JSON.stringify(s) }))
  const end = tr.end()
  return { chunks: [...chunks, ...end.chunks], usage: end.usage }
}

t.test('stream translation, chunk by chunk', async (t) => {
  const segs = recording(REC.stream)[0]!.response.bodySegments
  const { chunks, usage } = translate(segs)
  t.same(chunks.map((c) => [c.choices[0]!.delta, c.choices[0]!.finish_reason]), [
    [{ role: 'assistant', content: '' }, null],
    [{ content: segs[0].candidates[0].content.parts[0].text }, null],
    [{ content: segs[1].candidates[0].content.parts[0].text }, null],
    [{ content: segs[2].candidates[0].content.parts[0].text }, null],
    [{}, 'length'],
  ], 'role, three content deltas, the finish chunk')
  t.ok(chunks.every((c) => c.id === `chatcmpl-${segs[0].responseId}` && c.model === 'gemini-2.5-flash' && c.object === 'chat.completion.chunk'))
  t.same(usage, { prompt_tokens: 7, completion_tokens: 198, total_tokens: 205, completion_tokens_details: { reasoning_tokens: 45 } }, 'usage from the last (cumulative) event')
  for (const c of chunks) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  const vertex = translate(recording(REC.streamVertex)[0]!.response.bodySegments)
  t.equal(vertex.chunks.length, 6, 'Vertex: role, four deltas, finish')
  t.equal(vertex.chunks.at(-1)!.choices[0]!.finish_reason, 'length')
  t.same(vertex.usage, { prompt_tokens: 6, completion_tokens: 197, total_tokens: 203, completion_tokens_details: { reasoning_tokens: 41 } }, 'Vertex: count-less early usage is ignored')

  const fc = translate(recording(REC.functionStream)[0]!.response.bodySegments)
  t.equal(fc.chunks.length, 3)
  const call = fc.chunks[1]!.choices[0]!.delta.tool_calls![0]!
  t.equal(call.index, 0)
  t.match(call.id, /^call_[0-9a-f]{24}$/)
  t.equal(call.type, 'function')
  t.same(call.function, { name: 'customDivide', arguments: '{"denominator":2,"numerator":100}' }, 'a whole call in one delta')
  t.equal(fc.chunks[2]!.choices[0]!.finish_reason, 'tool_calls')
  t.same(fc.usage, { prompt_tokens: 21, completion_tokens: 6, total_tokens: 27 })
  for (const c of fc.chunks) assertSchema(t, 'CreateChatCompletionStreamResponse', c)

  const two = translate([
    { candidates: [{ content: { parts: [{ text: 'hmm', thought: true }] } }] },
    { candidates: [{ content: { parts: [{ functionCall: { name: 'a', args: {} } }, { functionCall: { name: 'b', args: { x: 1 } }, thoughtSignature: 'U0lH' }] }, finishReason: 'STOP' }] },
  ])
  t.same(two.chunks[1]!.choices[0]!.delta, { reasoning_content: 'hmm' }, 'thoughts stream as reasoning_content')
  t.same(two.chunks.slice(2, 4).map((c) => c.choices[0]!.delta.tool_calls![0]!.index), [0, 1], 'tool-call indexes count up')
  t.match(two.chunks[3]!.choices[0]!.delta.tool_calls![0]!.id, /__thought__U0lH$/)
})

t.test('stream errors: an error event, a blocked prompt, a broken event', async (t) => {
  const tr = () => chat.stream!({ model: 'g', messages: [] } as ChatRequest, meta())
  const limited = thrown(() => tr().event({ event: undefined, data: JSON.stringify({ error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } }) }))
  t.equal(limited.code, 'GW_ERR_UPSTREAM_RATE_LIMIT', 'mapped like the HTTP error')
  t.equal(limited.status, 429)
  const s = tr()
  t.equal(s.event({ event: undefined, data: JSON.stringify({ candidates: [{ content: { parts: [{ text: 'a' }] } }] }) }).length, 2)
  t.equal(thrown(() => s.event({ event: undefined, data: JSON.stringify({ error: { message: 'Internal error', status: 'INTERNAL' } }) })).code, 'GW_ERR_UPSTREAM_SERVER', 'a status name alone still maps')
  t.equal(thrown(() => tr().event({ event: undefined, data: JSON.stringify({ promptFeedback: { blockReason: 'PROHIBITED_CONTENT' } }) })).code, 'GW_ERR_CONTENT_POLICY')
  t.equal(thrown(() => tr().event({ event: undefined, data: '{"candidates": [' })).code, 'GW_ERR_UPSTREAM_BAD_RESPONSE')
})

t.test('error mapping, table', async (t) => {
  const notFound = recording(REC.notFound)[0]!.response
  const rows: Array<{ name: string; status: number; body: unknown; headers?: Record<string, string>; code: string; httpStatus: number; retryAfter?: number; message?: RegExp }> = [
    { name: 'recorded 404 NOT_FOUND', status: 404, body: notFound.bodySegments[0], code: 'GW_ERR_UPSTREAM_NOT_FOUND', httpStatus: 404, message: /^models\/custom-gemini-2.0-flash is not found/ },
    { name: 'token limit', status: 400, body: { error: { code: 400, message: 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).', status: 'INVALID_ARGUMENT' } }, code: 'GW_ERR_CONTEXT_WINDOW', httpStatus: 400 },
    { name: 'invalid key (a 400 at Gemini)', status: 400, body: { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }] } }, code: 'GW_ERR_UPSTREAM_AUTH', httpStatus: 401 },
    { name: 'other INVALID_ARGUMENT', status: 400, body: { error: { code: 400, message: 'Invalid value at contents[0]', status: 'INVALID_ARGUMENT' } }, code: 'GW_ERR_UPSTREAM_BAD_REQUEST', httpStatus: 400 },
    { name: 'UNAUTHENTICATED', status: 401, body: { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }, code: 'GW_ERR_UPSTREAM_AUTH', httpStatus: 401 },
    { name: 'PERMISSION_DENIED', status: 403, body: { error: { code: 403, message: 'Permission denied on resource project x.', status: 'PERMISSION_DENIED' } }, code: 'GW_ERR_UPSTREAM_FORBIDDEN', httpStatus: 403 },
    { name: '429 with retry-after', status: 429, body: { error: { code: 429, message: 'Resource exhausted', status: 'RESOURCE_EXHAUSTED' } }, headers: { 'retry-after': '7' }, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', httpStatus: 429, retryAfter: 7 },
    { name: '429 with RetryInfo', status: 429, body: { error: { code: 429, message: 'Quota exceeded', status: 'RESOURCE_EXHAUSTED', details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '16.2s' }] } }, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', httpStatus: 429, retryAfter: 17 },
    { name: 'INTERNAL', status: 500, body: { error: { code: 500, message: 'An internal error has occurred.', status: 'INTERNAL' } }, code: 'GW_ERR_UPSTREAM_SERVER', httpStatus: 500 },
    { name: 'UNAVAILABLE (overloaded)', status: 503, body: { error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } }, code: 'GW_ERR_UPSTREAM_UNAVAILABLE', httpStatus: 503 },
    { name: 'DEADLINE_EXCEEDED', status: 504, body: { error: { code: 504, message: 'Deadline expired before operation could complete.', status: 'DEADLINE_EXCEEDED' } }, code: 'GW_ERR_UPSTREAM_TIMEOUT', httpStatus: 408 },
    { name: 'Vertex array-wrapped error', status: 404, body: [{ error: { code: 404, message: 'Publisher Model was not found', status: 'NOT_FOUND' } }], code: 'GW_ERR_UPSTREAM_NOT_FOUND', httpStatus: 404, message: /^Publisher Model/ },
    { name: 'an HTML page is not shown', status: 502, body: '<html><body>Bad Gateway</body></html>', code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', httpStatus: 502, message: /^gemini returned HTTP 502 Bad Gateway \(non-JSON body\)$/ },
  ]
  for (const r of rows) {
    const e = gemini.error(r.status, r.body, r.headers ?? {})
    t.ok(e instanceof GatewayError, r.name)
    t.equal(e.code, r.code, `${r.name}: code`)
    t.equal(e.status, r.httpStatus, `${r.name}: status`)
    t.equal(e.provider, 'gemini')
    if (r.retryAfter !== undefined) t.equal(e.retryAfter, r.retryAfter, `${r.name}: retry-after kept`)
    if (r.message) t.match(e.message, r.message, `${r.name}: message`)
    t.notMatch(e.message, /AIza/, `${r.name}: no key in the message`)
  }
})
