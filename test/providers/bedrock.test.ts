/**
 * The Bedrock adapter's translations, table-driven over the recorded examples and the Bedrock Runtime API model in
 * ../shared/data/bedrock: every request body the adapter builds is validated against the API model's
 * ConverseRequest (closed structures, unions, ranges), every response against OpenAI's spec; then error mapping and
 * embeddings. Stream framing and translation: bedrock-stream.test.ts; endpoint and SigV4: bedrock-sign.test.ts;
 * end to end: bedrock-gateway.test.ts.
 */
import t from 'tap'
import { bedrock } from '../../providers/bedrock/index.js'
import { applyParamMap } from '../../providers/param-map.js'
import type { ResponseMeta, Target } from '../../providers/types.js'
import type { ChatRequest, EmbeddingRequest } from '../../core/openai/types.js'
import { GatewayError } from '../../core/errors.js'
import { bedrockShape, openaiSchema, readExample } from './bedrock-fixtures.js'

const CLAUDE = 'anthropic.claude-3-5-sonnet-20240620-v1:0'

function target(over: Partial<Target> = {}, params: Record<string, unknown> = {}): Target {
  return {
    id: 't', modelName: 'claude', provider: 'bedrock', model: CLAUDE, timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {},
    params: { aws_access_key_id: 'AKIDEXAMPLE', aws_secret_access_key: 'secret', aws_region_name: 'us-east-1', ...params },
    ...over,
  }
}

/** What dispatch does: the param map, then finish(). */
function chatBody(req: Record<string, unknown>, tg = target()): Record<string, unknown> {
  const op = bedrock.chat!
  const r = req as unknown as ChatRequest
  const body = applyParamMap(r, op.params, tg, op.policy)
  return op.finish ? op.finish(body, r, tg, false) : body
}

function embedBody(req: Record<string, unknown>, tg: Target): Record<string, unknown> {
  const op = bedrock.embeddings!
  const r = req as unknown as EmbeddingRequest
  const body = applyParamMap(r, op.params, tg, op.policy)
  return op.finish ? op.finish(body, r, tg, false) : body
}

const converseRequest = bedrockShape('ConverseRequest')
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Get the current weather for a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
}
const weatherSpec = { toolSpec: { name: 'get_weather', description: 'Get the current weather for a city', inputSchema: { json: weatherTool.function.parameters } } }
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

t.test('the recorded Converse request is what the adapter builds from the matching OpenAI request', async (t) => {
  const fixture = readExample('converse.tools.request.json')
  t.ok(converseRequest(fixture), 'the fixture itself satisfies the API model')
  const body = chatBody({
    model: 'claude',
    messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'What is the weather in Paris?' }],
    max_tokens: 512, temperature: 0.5, top_p: 0.9, stop: [], tools: [weatherTool], tool_choice: 'auto',
  })
  t.same(body, fixture)
  t.ok(converseRequest(body), JSON.stringify(converseRequest.errors))
  t.notOk(converseRequest({ ...body, n: 1 }), 'a leaked OpenAI field fails the schema: the check can fail')
})

interface RequestCase {
  name: string
  req: Record<string, unknown>
  target?: Target
  /** Expected body members (t.match: these at least). */
  expect?: Record<string, unknown>
  /** Members that must be absent. */
  absent?: string[]
  error?: { code: string; param?: string; message?: RegExp }
}

const CASES: RequestCase[] = [
  {
    name: 'multi-part user content with a data-URL image, a tool call and its result; same-role turns merge',
    req: {
      model: 'claude', tools: [weatherTool],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'What is in this image?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'tooluse_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'tooluse_1', content: '{"temp": 21}' },
        { role: 'user', content: 'And tomorrow?' },
      ],
    },
    expect: {
      messages: [
        { role: 'user', content: [{ text: 'What is in this image?' }, { image: { format: 'png', source: { bytes: PNG } } }] },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_1', name: 'get_weather', input: { location: 'Paris' } } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_1', content: [{ text: '{"temp": 21}' }] } }, { text: 'And tomorrow?' }] },
      ],
      toolConfig: { tools: [weatherSpec] },
    },
    absent: ['system', 'inferenceConfig'],
  },
  {
    name: 'system and developer messages anywhere -> system blocks; cache_control -> cachePoint; empty text left out',
    req: {
      model: 'claude',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: 'a' },
        { role: 'user', content: [{ type: 'text', text: '' }, { type: 'text', text: 'b' }] },
        { role: 'developer', content: 'Answer in French.' },
      ],
    },
    expect: {
      system: [{ text: 'Be brief.' }, { cachePoint: { type: 'default' } }, { text: 'Answer in French.' }],
      messages: [{ role: 'user', content: [{ text: 'a' }, { text: 'b' }] }],
    },
  },
  {
    name: 'assistant thinking_blocks lead the turn as reasoningContent',
    req: {
      model: 'claude', tools: [weatherTool],
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant', content: 'Checking.', thinking_blocks: [{ type: 'thinking', thinking: 'need the tool', signature: 'sig1' }],
          tool_calls: [{ id: 't1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 't1', content: [{ type: 'text', text: 'sunny' }] },
      ],
    },
    expect: {
      messages: [
        { role: 'user', content: [{ text: 'weather?' }] },
        {
          role: 'assistant',
          content: [
            { reasoningContent: { reasoningText: { text: 'need the tool', signature: 'sig1' } } },
            { text: 'Checking.' },
            { toolUse: { toolUseId: 't1', name: 'get_weather', input: {} } },
          ],
        },
        { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'sunny' }] } }] },
      ],
    },
  },
  {
    name: 'a PDF file part -> a document block',
    req: { model: 'claude', messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise' }, { type: 'file', file: { filename: 'Q3 report.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } }] }] },
    expect: { messages: [{ role: 'user', content: [{ text: 'Summarise' }, { document: { format: 'pdf', name: 'Q3 report', source: { bytes: 'JVBERi0x' } } }] }] },
  },
  {
    name: 'stop as a string, max_completion_tokens',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], stop: 'END', max_completion_tokens: 64 },
    expect: { inferenceConfig: { stopSequences: ['END'], maxTokens: 64 } },
  },
  {
    name: "tool_choice 'required' -> any",
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice: 'required' },
    expect: { toolConfig: { tools: [weatherSpec], toolChoice: { any: {} } } },
  },
  {
    name: 'a named tool_choice -> tool',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } } },
    expect: { toolConfig: { tools: [weatherSpec], toolChoice: { tool: { name: 'get_weather' } } } },
  },
  {
    name: "tool_choice 'none' drops the tools",
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice: 'none' },
    absent: ['toolConfig'],
  },
  {
    name: "tool_choice 'none' with tool blocks in the history keeps the tools (Converse requires them), no choice",
    req: {
      model: 'claude', tools: [weatherTool], tool_choice: 'none',
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'a', content: 'ok' },
      ],
    },
    expect: { toolConfig: { tools: [weatherSpec] } },
  },
  {
    name: 'top_k on Claude -> additionalModelRequestFields.top_k',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], top_k: 5 },
    expect: { additionalModelRequestFields: { top_k: 5 } },
  },
  {
    name: 'top_k on Nova -> additionalModelRequestFields.inferenceConfig.topK',
    target: target({ model: 'us.amazon.nova-pro-v1:0' }),
    req: { model: 'nova', messages: [{ role: 'user', content: 'x' }], top_k: 5 },
    expect: { additionalModelRequestFields: { inferenceConfig: { topK: 5 } } },
  },
  {
    name: 'reasoning_effort on Claude -> a thinking budget, with room for the answer',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low' },
    expect: { additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 1024 } }, inferenceConfig: { maxTokens: 5120 } },
  },
  {
    name: 'reasoning_effort on a model without thinking: 400',
    target: target({ model: 'meta.llama3-1-70b-instruct-v1:0' }),
    req: { model: 'llama', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low' },
    error: { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'reasoning_effort', message: /drop_params/ },
  },
  {
    name: 'reasoning_effort on a model without thinking, drop_params: dropped',
    target: target({ model: 'meta.llama3-1-70b-instruct-v1:0', dropParams: true }),
    req: { model: 'llama', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low' },
    absent: ['additionalModelRequestFields'],
  },
  {
    name: 'response_format json_schema -> a forced json_tool_call tool',
    req: {
      model: 'claude', messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'number' } } } } },
    },
    expect: {
      toolConfig: {
        tools: [{ toolSpec: { name: 'json_tool_call', inputSchema: { json: { type: 'object', properties: { a: { type: 'number' } } } } } }],
        toolChoice: { tool: { name: 'json_tool_call' } },
      },
    },
  },
  {
    name: 'model-specific fields go to additionalModelRequestFields; gateway fields are never sent',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], anthropic_beta: ['context-1m-2025-08-07'], metadata: { a: 1 }, num_retries: 2 },
    expect: { additionalModelRequestFields: { anthropic_beta: ['context-1m-2025-08-07'] } },
    absent: ['metadata', 'num_retries', 'anthropic_beta'],
  },
  {
    name: 'a guardrail set on the deployment (litellm_params.guardrailConfig) goes with every call',
    target: target({}, { guardrailConfig: { guardrailIdentifier: 'gr-1', guardrailVersion: '1' } }),
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }] },
    expect: { guardrailConfig: { guardrailIdentifier: 'gr-1', guardrailVersion: '1' } },
  },
  {
    name: "the request's guardrailConfig wins over the deployment's",
    target: target({}, { guardrailConfig: { guardrailIdentifier: 'gr-1', guardrailVersion: '1' } }),
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], guardrailConfig: { guardrailIdentifier: 'gr-2', guardrailVersion: 'DRAFT', trace: 'enabled' } },
    expect: { guardrailConfig: { guardrailIdentifier: 'gr-2', guardrailVersion: 'DRAFT', trace: 'enabled' } },
  },
  {
    name: 'n: 1 is the only n Converse gives',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], n: 1, stream: true, stream_options: { include_usage: true } },
    absent: ['n', 'stream', 'stream_options', 'additionalModelRequestFields'],
  },
  { name: 'n: 2 -> 400', req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], n: 2 }, error: { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'n' } },
  ...['seed', 'user', 'frequency_penalty', 'presence_penalty', 'logprobs', 'parallel_tool_calls'].map((p): RequestCase => ({
    name: `${p} is unsupported: 400 naming it`,
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], [p]: p === 'user' ? 'u1' : p === 'logprobs' || p === 'parallel_tool_calls' ? true : 1 },
    error: { code: 'GW_ERR_UNSUPPORTED_PARAM', param: p, message: new RegExp(`${p}.*drop_params`, 's') },
  })),
  {
    name: 'unsupported params with drop_params: removed',
    target: target({ dropParams: true }),
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], seed: 1, user: 'u', n: 3 },
    absent: ['seed', 'user', 'n', 'additionalModelRequestFields'],
  },
  {
    name: 'temperature above Converse range (0..1): 400, not clamped',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }], temperature: 1.5 },
    error: { code: 'GW_ERR_PARAM_RANGE', param: 'temperature' },
  },
  {
    name: 'a remote image URL: 400 (Converse takes bytes)',
    req: { model: 'claude', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] },
    error: { code: 'GW_ERR_VALIDATION', message: /data URL/ },
  },
  {
    name: 'tool-call arguments that are not JSON: 400',
    req: { model: 'claude', messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{nope' } }] }] },
    error: { code: 'GW_ERR_VALIDATION', message: /arguments/ },
  },
]

t.test('request mapping, each body valid against the ConverseRequest shape', async (t) => {
  for (const c of CASES) {
    t.test(c.name, async (t) => {
      if (c.error) {
        t.throws(() => chatBody(c.req, c.target), c.error)
        return
      }
      const body = chatBody(c.req, c.target)
      if (c.expect) t.match(body, c.expect)
      for (const a of c.absent ?? []) t.notOk(a in body, `no ${a}`)
      t.ok(converseRequest(body), `valid ConverseRequest: ${JSON.stringify(converseRequest.errors)}`)
    })
  }
})

const meta = (tg = target()): ResponseMeta => ({ target: tg, requestId: 'req-1', created: 1_700_000_000 })
const chatResponseSchema = openaiSchema('CreateChatCompletionResponse')
const converseResponse = bedrockShape('ConverseResponse')

interface ResponseCase {
  name: string
  body: unknown
  expect?: Record<string, unknown>
  error?: string
}

const RESPONSES: ResponseCase[] = [
  {
    name: 'recorded text response',
    body: readExample('converse.text.response.json'),
    expect: {
      id: 'chatcmpl-req-1', object: 'chat.completion', created: 1_700_000_000, model: CLAUDE,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I assist you today?' }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22, prompt_tokens_details: { cached_tokens: 0 } },
    },
  },
  {
    name: 'recorded tool_use response: text and a tool call with JSON-string arguments',
    body: readExample('converse.tool_use.response.json'),
    expect: {
      choices: [{
        message: {
          role: 'assistant', content: "I'll check the current weather in Paris for you.",
          tool_calls: [{ id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }],
        },
        finish_reason: 'tool_calls',
      }],
      usage: { prompt_tokens: 377, completion_tokens: 65, total_tokens: 442 },
    },
  },
  {
    name: 'reasoning, max_tokens, prompt-cache usage',
    body: {
      output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: 'Think.', signature: 'sig' } } }, { text: '42' }] } },
      stopReason: 'max_tokens',
      usage: { inputTokens: 10, outputTokens: 5, totalTokens: 135, cacheReadInputTokens: 100, cacheWriteInputTokens: 20 },
      metrics: { latencyMs: 1 },
    },
    expect: {
      choices: [{ message: { content: '42', reasoning_content: 'Think.', thinking_blocks: [{ type: 'thinking', thinking: 'Think.', signature: 'sig' }] }, finish_reason: 'length' }],
      usage: { prompt_tokens: 130, completion_tokens: 5, total_tokens: 135, prompt_tokens_details: { cached_tokens: 100 }, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
    },
  },
  ...['guardrail_intervened', 'content_filtered'].map((stopReason): ResponseCase => ({
    name: `${stopReason} -> content_filter`,
    body: { output: { message: { role: 'assistant', content: [{ text: 'Sorry.' }] } }, stopReason, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 } },
    expect: { choices: [{ finish_reason: 'content_filter' }] },
  })),
  {
    name: 'stop_sequence -> stop',
    body: { output: { message: { role: 'assistant', content: [{ text: 'a' }] } }, stopReason: 'stop_sequence', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 } },
    expect: { choices: [{ finish_reason: 'stop' }] },
  },
  {
    name: 'the JSON-mode tool call is the content, finish stop',
    body: {
      output: { message: { role: 'assistant', content: [{ toolUse: { toolUseId: 'x', name: 'json_tool_call', input: { a: 1 } } }] } },
      stopReason: 'tool_use', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 },
    },
    expect: { choices: [{ message: { role: 'assistant', content: '{"a":1}' }, finish_reason: 'stop' }] },
  },
  { name: 'no output.message: 502', body: { output: {}, stopReason: 'end_turn' }, error: 'GW_ERR_UPSTREAM_BAD_RESPONSE' },
]

t.test('response mapping, each result valid against OpenAI CreateChatCompletionResponse', async (t) => {
  for (const c of RESPONSES) {
    t.test(c.name, async (t) => {
      if (c.error) {
        t.throws(() => bedrock.chat!.response(c.body, meta()), { code: c.error })
        return
      }
      t.ok(converseResponse(c.body), `the input is a valid ConverseResponse: ${JSON.stringify(converseResponse.errors)}`)
      const out = bedrock.chat!.response(c.body, meta())
      t.match(out, c.expect!)
      t.ok(chatResponseSchema(out), JSON.stringify(chatResponseSchema.errors))
      if (c.name.startsWith('the JSON-mode')) t.notOk(out.choices[0]!.message.tool_calls, 'no tool call')
    })
  }
})

interface ErrorCase {
  name: string
  status: number
  headers?: Record<string, string>
  body: unknown
  code: string
  httpStatus: number
  message?: RegExp
  retryAfter?: number
}

const validation = readExample('error.validation.json')
const errType = (name: string) => ({ 'x-amzn-errortype': `${name}:http://internal.amazon.com/coral/com.amazon.bedrock/` })
const ERRORS: ErrorCase[] = [
  { name: 'recorded ValidationException', status: validation._http.status, headers: validation._http.headers, body: validation.body, code: 'GW_ERR_UPSTREAM_BAD_REQUEST', httpStatus: 400, message: /^The model returned the following errors: max_tokens: 0 must be greater than or equal to 1$/ },
  { name: 'input too long -> context window', status: 400, headers: errType('ValidationException'), body: { message: 'Input is too long for requested model.' }, code: 'GW_ERR_CONTEXT_WINDOW', httpStatus: 400, message: /too long/ },
  { name: '__type in the body, too many tokens -> context window', status: 400, body: { __type: 'com.amazon.coral.validate#ValidationException', message: 'prompt is too long: 210000 tokens > 200000 maximum' }, code: 'GW_ERR_CONTEXT_WINDOW', httpStatus: 400 },
  { name: 'content filtering -> content policy', status: 400, headers: errType('ValidationException'), body: { message: 'Output blocked by content filtering policy' }, code: 'GW_ERR_CONTENT_POLICY', httpStatus: 400 },
  { name: 'AccessDeniedException -> 403', status: 403, headers: errType('AccessDeniedException'), body: { message: "You don't have access to the model with the specified model ID." }, code: 'GW_ERR_UPSTREAM_FORBIDDEN', httpStatus: 403 },
  { name: 'UnrecognizedClientException -> 401', status: 403, headers: errType('UnrecognizedClientException'), body: { message: 'The security token included in the request is invalid.' }, code: 'GW_ERR_UPSTREAM_AUTH', httpStatus: 401 },
  {
    name: 'InvalidSignatureException -> 401, the canonical request (with the session token) cut off',
    status: 403, headers: errType('InvalidSignatureException'),
    body: { message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.\n\nThe Canonical String for this request should have been\n'POST\n/model/x/converse\n\nx-amz-security-token:SECRET-SESSION-TOKEN\n'" },
    code: 'GW_ERR_UPSTREAM_AUTH', httpStatus: 401, message: /^The request signature we calculated does not match the signature you provided\. Check your AWS Secret Access Key and signing method\.$/,
  },
  { name: 'ResourceNotFoundException -> 404', status: 404, headers: errType('ResourceNotFoundException'), body: { message: 'Model not found' }, code: 'GW_ERR_UPSTREAM_NOT_FOUND', httpStatus: 404 },
  { name: 'ThrottlingException -> 429 with retry-after', status: 429, headers: { ...errType('ThrottlingException'), 'retry-after': '7' }, body: { message: 'Too many requests, please wait before trying again.' }, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', httpStatus: 429, retryAfter: 7 },
  { name: 'ServiceQuotaExceededException -> 429', status: 400, headers: errType('ServiceQuotaExceededException'), body: { message: 'quota' }, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', httpStatus: 429 },
  { name: 'ModelNotReadyException -> 429', status: 429, headers: errType('ModelNotReadyException'), body: { message: 'not ready' }, code: 'GW_ERR_UPSTREAM_RATE_LIMIT', httpStatus: 429 },
  { name: 'ModelTimeoutException -> 408', status: 408, headers: errType('ModelTimeoutException'), body: { message: 'timed out' }, code: 'GW_ERR_UPSTREAM_TIMEOUT', httpStatus: 408 },
  { name: 'ServiceUnavailableException -> 503', status: 503, headers: errType('ServiceUnavailableException'), body: { message: 'unavailable' }, code: 'GW_ERR_UPSTREAM_UNAVAILABLE', httpStatus: 503 },
  { name: 'InternalServerException -> 500', status: 500, headers: errType('InternalServerException'), body: { message: 'oops' }, code: 'GW_ERR_UPSTREAM_SERVER', httpStatus: 500 },
  { name: 'ModelErrorException (424) -> 500', status: 424, headers: errType('ModelErrorException'), body: { message: 'model failed' }, code: 'GW_ERR_UPSTREAM_SERVER', httpStatus: 500 },
  { name: 'a non-JSON 502 page is never shown', status: 502, body: '<html><body>Bad Gateway</body></html>', code: 'GW_ERR_UPSTREAM_BAD_RESPONSE', httpStatus: 502, message: /^bedrock returned HTTP 502 Bad Gateway$/ },
]

t.test('error mapping', async (t) => {
  for (const c of ERRORS) {
    const e = bedrock.error(c.status, c.body, c.headers ?? {})
    t.ok(e instanceof GatewayError, c.name)
    t.equal(e.code, c.code, `${c.name}: code`)
    t.equal(e.status, c.httpStatus, `${c.name}: status`)
    t.equal(e.provider, 'bedrock', `${c.name}: provider`)
    t.equal(e.upstreamStatus, c.status, `${c.name}: upstream status kept`)
    if (c.message) t.match(e.message, c.message, `${c.name}: message`)
    else t.equal(e.message, (c.body as { message: string }).message, `${c.name}: Bedrock's message kept`)
    t.notMatch(e.message, /SECRET-SESSION-TOKEN/, `${c.name}: no secret`)
    t.equal(e.retryAfter, c.retryAfter, `${c.name}: retry-after`)
  }
})

const titanV2 = target({ model: 'amazon.titan-embed-text-v2:0' })
const cohereEn = target({ model: 'cohere.embed-english-v3' })

t.test('embeddings: request bodies per model family', async (t) => {
  t.same(embedBody({ model: 'e', input: 'hello', dimensions: 256, encoding_format: 'base64' }, titanV2), { inputText: 'hello', dimensions: 256 })
  t.same(embedBody({ model: 'e', input: ['hello'] }, titanV2), { inputText: 'hello' }, 'a one-element list')
  t.throws(() => embedBody({ model: 'e', input: ['a', 'b'] }, titanV2), { code: 'GW_ERR_VALIDATION', param: 'input', message: /one input/ })
  t.throws(() => embedBody({ model: 'e', input: [1, 2, 3] }, titanV2), { code: 'GW_ERR_VALIDATION', param: 'input' })
  const titanV1 = target({ model: 'amazon.titan-embed-text-v1' })
  t.throws(() => embedBody({ model: 'e', input: 'x', dimensions: 256 }, titanV1), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'dimensions' })
  t.same(embedBody({ model: 'e', input: 'x', dimensions: 256 }, target({ model: 'amazon.titan-embed-text-v1', dropParams: true })), { inputText: 'x' })
  t.same(embedBody({ model: 'e', input: 'x', dimensions: 384 }, target({ model: 'amazon.titan-embed-image-v1' })), { inputText: 'x', embeddingConfig: { outputEmbeddingLength: 384 } })
  t.same(embedBody({ model: 'e', input: ['a', 'b'] }, cohereEn), { texts: ['a', 'b'], input_type: 'search_document' })
  t.same(embedBody({ model: 'e', input: 'q', input_type: 'search_query' }, target({ model: 'us.cohere.embed-v4:0' })), { texts: ['q'], input_type: 'search_query' })
  t.same(embedBody({ model: 'e', input: 'q', dimensions: 512 }, target({ model: 'cohere.embed-v4:0' })), { texts: ['q'], output_dimension: 512, input_type: 'search_document' })
  t.throws(() => embedBody({ model: 'e', input: 'x', user: 'u' }, titanV2), { code: 'GW_ERR_UNSUPPORTED_PARAM', param: 'user' })
  t.throws(() => embedBody({ model: 'e', input: 'x' }, target({ model: 'meta.llama3-8b-instruct-v1:0' })), { code: 'GW_ERR_UNSUPPORTED_OPERATION' })
  t.equal(bedrock.request('embeddings', titanV2, false).url, 'https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke')
})

t.test('embeddings: responses, valid against OpenAI CreateEmbeddingResponse', async (t) => {
  const schema = openaiSchema('CreateEmbeddingResponse')
  const titan = bedrock.embeddings!.response({ embedding: [0.1, -0.2, 0.3], inputTextTokenCount: 3 }, meta(titanV2))
  t.same(titan, { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, -0.2, 0.3] }], model: 'amazon.titan-embed-text-v2:0', usage: { prompt_tokens: 3, total_tokens: 3 } })
  t.ok(schema(titan), JSON.stringify(schema.errors))
  const co = bedrock.embeddings!.response({ id: 'x', embeddings: [[0.1], [0.2]], texts: ['hello', 'world'], response_type: 'embeddings_floats' }, meta(cohereEn))
  t.same(co.data.map((d) => [d.index, d.embedding]), [[0, [0.1]], [1, [0.2]]])
  t.same(co.usage, { prompt_tokens: 3, total_tokens: 3 }, 'estimated: 10 characters at 4 a token')
  t.ok(schema(co), JSON.stringify(schema.errors))
  const typed = bedrock.embeddings!.response({ id: 'x', embeddings: { float: [[0.5]] }, texts: ['a'], response_type: 'embeddings_by_type' }, meta(cohereEn))
  t.same(typed.data[0]!.embedding, [0.5], 'embeddings by type: the float list')
  t.throws(() => bedrock.embeddings!.response({}, meta(titanV2)), { code: 'GW_ERR_UPSTREAM_BAD_RESPONSE' })
})
