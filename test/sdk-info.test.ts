/**
 * The SDK's model-table helpers (core/sdk-info.ts): completionCost() against the proxy's own x-litellm-response-cost
 * for the same call (a real gateway on 127.0.0.1, the official openai client, fake OpenAI and Anthropic upstreams),
 * tokenCounter() against gpt-tokenizer's own counts, getModelInfo() and the supports* flags against the vendored
 * LiteLLM table (../shared/data/litellm, read here as the independent oracle) and prices against genai-prices'
 * calcPrice, and that importing the module does not load the tokenizer.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import OpenAI from 'openai'
import { calcPrice } from '@pydantic/genai-prices'
import * as o200k from 'gpt-tokenizer/encoding/o200k_base'
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base'
import * as gpt4o from 'gpt-tokenizer/model/gpt-4o'
import { completionCost, tokenCounter, getModelInfo, supportsFunctionCalling, supportsVision, type ModelInfo } from '../core/sdk-info.js'
import { completion, embedding } from '../core/sdk.js'
import { formatCost } from '../core/cost.js'
import { GatewayError } from '../core/errors.js'
import { startGateway } from './helpers/gateway.js'
import { defaultChat, jsonReply, startUpstream } from './helpers/upstream.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LITELLM = JSON.parse(readFileSync(fileURLToPath(new URL('../../shared/data/litellm/model_prices_and_context_window.json', import.meta.url)), 'utf8')) as
  Record<string, Record<string, unknown>>

const messages = [{ role: 'user' as const, content: 'What is the capital of France? Answer in one word.' }]
const CLAUDE = 'claude-sonnet-4-5-20250929'

/** A fake Anthropic Messages API: a text reply whose usage reports cache reads and writes beside input_tokens. */
async function startAnthropic(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (raw += c))
    req.on('end', () => {
      const body = JSON.parse(raw) as { model: string }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        id: 'msg_fake01', type: 'message', role: 'assistant', model: body.model,
        content: [{ type: 'text', text: 'Paris' }], stop_reason: 'end_turn', stop_sequence: null,
        usage: { input_tokens: 120, output_tokens: 30, cache_read_input_tokens: 2000, cache_creation_input_tokens: 500 },
      }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** The header as a number, and the cost printed the way the proxy prints it: both must agree. */
function sameAsHeader(t: Test, cost: number, header: string | null, what: string): void {
  t.ok(header !== null && Number(header) > 0, `${what}: the proxy priced the call (${header})`)
  t.equal(formatCost(cost), header, `${what}: completionCost = x-litellm-response-cost`)
}

t.test('completionCost equals the proxy\'s x-litellm-response-cost for the same call', async (t) => {
  const up = await startUpstream(t)
  const anthropic = await startAnthropic()
  t.teardown(() => anthropic.close())
  const gw = await startGateway(t, `
model_list:
  - model_name: mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-fake
  - model_name: embed
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: ${up.url}
      api_key: sk-fake
  - model_name: claude
    litellm_params:
      model: anthropic/${CLAUDE}
      api_base: ${anthropic.url}
      api_key: sk-ant-fake
`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 20_000 })

  t.test('an OpenAI model', async (t) => {
    const r = await client.chat.completions.create({ model: 'mini', messages }).withResponse()
    const header = r.response.headers.get('x-litellm-response-cost')
    t.equal(r.data.model, 'gpt-4o-mini', 'the body names the upstream model, not the alias')
    sameAsHeader(t, completionCost(r.data), header, 'the response body')
    sameAsHeader(t, completionCost({ model: 'gpt-4o-mini', usage: r.data.usage! }), header, '{ model, usage } with a bare name')
    sameAsHeader(t, completionCost({ model: 'openai/gpt-4o-mini', usage: r.data.usage! }), header, '{ model, usage } with provider/name')
    sameAsHeader(t, completionCost({ model: 'gpt-4o-mini', usage: r.data.usage!, customLlmProvider: 'openai' }), header, 'with customLlmProvider')
    // An independent check of the number itself: genai-prices' own calcPrice.
    const u = r.data.usage!
    const oracle = calcPrice({ input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens }, 'gpt-4o-mini', { providerId: 'openai' })!.total_price
    t.ok(Math.abs(completionCost(r.data) - oracle) < 1e-15, `genai-prices agrees (${oracle})`)
  })

  t.test('cached prompt tokens are priced at the cache rate, as the proxy prices them', async (t) => {
    const usage = {
      prompt_tokens: 2000, completion_tokens: 50, total_tokens: 2050,
      prompt_tokens_details: { cached_tokens: 1536, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
    }
    up.on('chat', jsonReply(200, {
      id: 'chatcmpl-cached', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Paris' }, finish_reason: 'stop', logprobs: null }], usage,
    }))
    t.teardown(() => up.on('chat', defaultChat()))
    const r = await client.chat.completions.create({ model: 'mini', messages }).withResponse()
    t.equal(r.data.usage?.prompt_tokens_details?.cached_tokens, 1536, 'the client sees the cached tokens')
    const header = r.response.headers.get('x-litellm-response-cost')
    sameAsHeader(t, completionCost(r.data), header, 'the response body')
    sameAsHeader(t, completionCost({ model: 'gpt-4o-mini', usage: r.data.usage! }), header, '{ model, usage }')
    const uncached = completionCost({ model: 'gpt-4o-mini', usage: { ...usage, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 } } })
    t.ok(completionCost(r.data) < uncached, 'cheaper than the same tokens uncached')
    const oracle = calcPrice({ input_tokens: 2000, cache_read_tokens: 1536, output_tokens: 50 }, 'gpt-4o-mini', { providerId: 'openai' })!.total_price
    t.ok(Math.abs(completionCost(r.data) - oracle) < 1e-15, `genai-prices agrees (${oracle})`)
  })

  t.test('an Anthropic model, with cache reads and writes', async (t) => {
    const r = await client.chat.completions.create({ model: 'claude', messages, max_tokens: 100 }).withResponse()
    const header = r.response.headers.get('x-litellm-response-cost')
    t.equal(r.data.model, CLAUDE)
    t.equal(r.data.usage?.prompt_tokens, 2620, 'prompt_tokens counts the cache reads and writes')
    sameAsHeader(t, completionCost(r.data), header, 'the response body (a bare claude name: the Anthropic price)')
    sameAsHeader(t, completionCost({ model: `anthropic/${CLAUDE}`, usage: r.data.usage! }), header, '{ model, usage }')
    const oracle = calcPrice({ input_tokens: 2620, cache_read_tokens: 2000, cache_write_tokens: 500, output_tokens: 30 }, CLAUDE, { providerId: 'anthropic' })!.total_price
    t.ok(Math.abs(completionCost(r.data) - oracle) < 1e-15, `genai-prices agrees (${oracle})`)
    // Anthropic's own usage shape (input_tokens excludes the caches), as /v1/messages replies carry it.
    const native = { model: CLAUDE, type: 'message', usage: { input_tokens: 120, output_tokens: 30, cache_read_input_tokens: 2000, cache_creation_input_tokens: 500 } }
    sameAsHeader(t, completionCost(native), header, 'the same usage in the Messages API shape')
  })

  t.test('an embedding', async (t) => {
    const r = await client.embeddings.create({ model: 'embed', input: 'The food was delicious and the waiter was kind.' }).withResponse()
    sameAsHeader(t, completionCost(r.data), r.response.headers.get('x-litellm-response-cost'), 'the embedding response')
  })
})

t.test('completionCost on the SDK\'s own results: the provider from _hidden_params', async (t) => {
  const up = await startUpstream(t)
  const anthropic = await startAnthropic()
  t.teardown(() => anthropic.close())
  const r = await completion({ model: 'openai/gpt-4o-mini', messages, api_base: up.url, api_key: 'sk-fake' })
  const hidden = (r as unknown as { _hidden_params: { response_cost: number; custom_llm_provider: string } })._hidden_params
  t.equal(hidden.custom_llm_provider, 'openai')
  t.ok(hidden.response_cost > 0)
  t.equal(completionCost(r), hidden.response_cost, 'the cost the SDK reported for the call')

  const c = await completion({ model: `anthropic/${CLAUDE}`, messages, api_base: anthropic.url, api_key: 'sk-ant-fake', max_tokens: 100 })
  const ch = (c as unknown as { _hidden_params: { response_cost: number; custom_llm_provider: string } })._hidden_params
  t.equal(ch.custom_llm_provider, 'anthropic')
  t.equal(completionCost(c), ch.response_cost)

  // The hidden provider decides: the same model and usage read as another provider's is priced as that provider's.
  const asMock = Object.defineProperty({ model: 'my-model', usage: r.usage }, '_hidden_params', { value: { custom_llm_provider: 'groq' }, enumerable: false })
  t.equal(completionCost(asMock), completionCost({ model: 'groq/my-model', usage: r.usage! }), '_hidden_params.custom_llm_provider is read')

  const e = await embedding({ model: 'openai/text-embedding-3-small', input: 'hello', api_base: up.url, api_key: 'sk-fake' })
  t.equal(completionCost(e), (e as unknown as { _hidden_params: { response_cost: number } })._hidden_params.response_cost, 'embeddings')
})

t.test('completionCost: edge cases', async (t) => {
  t.equal(completionCost({ model: 'gpt-4o-mini', usage: null }), 0, 'no usage: 0, as the proxy records it')
  t.throws(() => completionCost({ usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }), { code: 'GW_ERR_VALIDATION', status: 400 }, 'no model: 400')
  t.throws(() => completionCost(null as never), { code: 'GW_ERR_VALIDATION', status: 400 })
  t.throws(() => completionCost({ model: 'x', usage: { prompt_tokens: 1 }, customLlmProvider: 'no-such-provider' }), { code: 'GW_ERR_VALIDATION', status: 400 }, 'an unknown provider: 400')
  const u = { prompt_tokens: 1_000_000, completion_tokens: 0, total_tokens: 1_000_000 }
  t.equal(completionCost({ model: 'openai/some-unknown-model', usage: u }), 2.5, 'unpriced: the gateway\'s fallback price, as the proxy charges')
  t.ok(completionCost({ model: 'gemini/gemini-2.0-flash', usage: u }) > 0, 'gemini/ prefix')
  t.equal(completionCost({ model: 'vertex_ai/gemini-2.0-flash', usage: u }), completionCost({ model: 'gemini-2.0-flash', usage: u }), 'a bare gemini name is a Vertex AI model, as LiteLLM keys it')
  t.equal(completionCost({ model: 'bedrock/anthropic.claude-3-haiku-20240307-v1:0', usage: u }),
    completionCost({ model: 'anthropic.claude-3-haiku-20240307-v1:0', usage: u }), 'a bare Bedrock id is a Bedrock model')
  // Responses API usage: input_tokens includes cached, output_tokens reasoning.
  const responses = { object: 'response', model: 'gpt-4o-mini', usage: { input_tokens: 2000, output_tokens: 50, input_tokens_details: { cached_tokens: 1536 }, output_tokens_details: { reasoning_tokens: 0 } } }
  t.equal(completionCost(responses), completionCost({ model: 'gpt-4o-mini', usage: { prompt_tokens: 2000, completion_tokens: 50, total_tokens: 2050, prompt_tokens_details: { cached_tokens: 1536 } } }), 'Responses API usage')
})

t.test('tokenCounter: gpt-tokenizer\'s counts for OpenAI models', async (t) => {
  const texts = ['Hello world', 'Привет, как дела? 日本語のテキストです。 नमस्ते दुनिया', 'The quick brown fox jumps over the lazy dog. Émile a mangé 3 crêpes 🥞.', 'def f(x):\n    return x ** 2\n', '']
  for (const text of texts) {
    for (const m of ['gpt-4o', 'openai/gpt-4o-mini', 'gpt-4.1-nano', 'gpt-5', 'o3-mini', 'azure/gpt-4o']) {
      t.equal(tokenCounter({ model: m, text }), o200k.countTokens(text), `${m}: o200k (${JSON.stringify(text.slice(0, 12))})`)
    }
    for (const m of ['gpt-4', 'gpt-3.5-turbo', 'openai/gpt-4-turbo', 'text-embedding-3-small']) {
      t.equal(tokenCounter({ model: m, text }), cl100k.countTokens(text), `${m}: cl100k`)
    }
  }
  t.not(o200k.countTokens(texts[1]!), cl100k.countTokens(texts[1]!), 'the two encodings differ on this text (the checks above can tell them apart)')
  t.equal(tokenCounter({ model: 'gpt-4o', text: ['Hello world', 'again'] }), o200k.countTokens('Hello world') + o200k.countTokens('again'), 'a list of texts')
  const special = 'stop at <|endoftext|> here'
  t.equal(tokenCounter({ model: 'gpt-4o', text: special }), o200k.countTokens(special, { disallowedSpecial: new Set() }), 'special-token text counted as text, not thrown on')

  const chat = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', name: 'alice', content: 'What is 2 + 2? Explain briefly.' },
    { role: 'assistant', content: '4: two and two make four.' },
    { role: 'user', content: 'Thanks! Now in French, please.' },
  ]
  t.equal(tokenCounter({ model: 'gpt-4o', messages: chat }), gpt4o.countChatCompletionTokens!({ messages: chat }), 'gpt-4o chat: gpt-tokenizer\'s countChatCompletionTokens')
  // OpenAI's cookbook num_tokens_from_messages, by hand: 3 per message + role + content (+ name + 1), + 3.
  const cookbook = (count: (s: string) => number) =>
    chat.reduce((n, m) => n + 3 + count(m.role) + count(m.content) + (m.name ? count(m.name) + 1 : 0), 0) + 3
  t.equal(tokenCounter({ model: 'gpt-4o', messages: chat }), cookbook(o200k.countTokens), 'gpt-4o chat: the cookbook formula')
  t.equal(tokenCounter({ model: 'gpt-4', messages: chat }), cookbook(cl100k.countTokens), 'gpt-4 chat: the cookbook formula on cl100k')
  const unnamed = chat.map(({ name: _, ...m }) => m)
  t.equal(tokenCounter({ model: 'gpt-4', messages: unnamed }), cl100k.encodeChat(unnamed as never, 'gpt-4').length, 'gpt-4: gpt-tokenizer\'s encodeChat')
  t.equal(tokenCounter({ model: 'gpt-4o', messages: unnamed }), o200k.encodeChat(unnamed as never, 'gpt-4o').length, 'gpt-4o: gpt-tokenizer\'s encodeChat')

  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', description: 'The city' } }, required: ['city'] } } }]
  t.equal(tokenCounter({ model: 'gpt-4o', messages: chat, tools }),
    gpt4o.countChatCompletionTokens!({ messages: chat, functions: [tools[0]!.function] as never }), 'tools counted as gpt-tokenizer counts function definitions')
  t.ok(tokenCounter({ model: 'gpt-4o', messages: chat, tools }) > tokenCounter({ model: 'gpt-4o', messages: chat }), 'tools add tokens')

  const parts = [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] }]
  t.equal(tokenCounter({ model: 'gpt-4o', messages: parts }),
    gpt4o.countChatCompletionTokens!({ messages: [{ role: 'user', content: 'What is in this picture?' }] }) + 85, 'content parts: the text, and 85 for a low-detail image')
})

t.test('tokenCounter: the gateway\'s estimate for other models', async (t) => {
  const text = 'The quick brown fox jumps over the lazy dog. Émile a mangé 3 crêpes 🥞.'
  const bytes = Buffer.byteLength(text, 'utf8')
  for (const m of ['anthropic/claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929', 'gemini/gemini-2.0-flash', 'groq/llama-3.3-70b-versatile']) {
    t.equal(tokenCounter({ model: m, text }), Math.ceil(bytes / 4), `${m}: UTF-8 bytes / 4`)
  }
  t.not(Math.ceil(bytes / 4), o200k.countTokens(text), 'distinct from the o200k count (the check can fail)')
  const chat = [{ role: 'user', content: 'Hello there' }, { role: 'assistant', content: 'Hi' }]
  t.equal(tokenCounter({ model: 'anthropic/claude-sonnet-4-5-20250929', messages: chat }),
    3 + 3 * 2 + Math.ceil(Buffer.byteLength('Hello thereHi') / 4), 'a chat: 3 per message + 3, and the text\'s bytes / 4')
  t.throws(() => tokenCounter({ model: 'gpt-4o' }), { code: 'GW_ERR_VALIDATION', status: 400 }, 'neither messages nor text: 400')
  t.throws(() => tokenCounter({ model: '', text: 'x' }), { code: 'GW_ERR_VALIDATION', status: 400 }, 'no model: 400')
})

t.test('getModelInfo: LiteLLM\'s table for limits and flags, genai-prices for prices', async (t) => {
  const cases: Array<[string, string]> = [
    ['gpt-4o-mini', 'gpt-4o-mini'],
    ['openai/gpt-4o-mini', 'gpt-4o-mini'],
    [`anthropic/${CLAUDE}`, CLAUDE],
    [CLAUDE, CLAUDE],
    ['bedrock/anthropic.claude-3-haiku-20240307-v1:0', 'anthropic.claude-3-haiku-20240307-v1:0'],
    ['vertex_ai/gemini-2.0-flash', 'gemini-2.0-flash'],
    ['gemini/gemini-2.0-flash', 'gemini/gemini-2.0-flash'],
    ['groq/llama-3.3-70b-versatile', 'groq/llama-3.3-70b-versatile'],
    ['text-embedding-3-small', 'text-embedding-3-small'],
  ]
  for (const [model, key] of cases) {
    const info: ModelInfo = getModelInfo(model)
    const want = LITELLM[key]!
    t.equal(info.key, key, `${model}: found under LiteLLM's key ${key}`)
    t.equal(info.litellm_provider, want.litellm_provider, `${model}: litellm_provider`)
    t.equal(info.mode, want.mode, `${model}: mode`)
    t.equal(info.max_input_tokens, want.max_input_tokens ?? null, `${model}: max_input_tokens`)
    t.equal(info.max_output_tokens, want.max_output_tokens ?? null, `${model}: max_output_tokens`)
    t.equal(info.max_tokens, want.max_tokens ?? null, `${model}: max_tokens`)
    for (const flag of ['supports_function_calling', 'supports_vision', 'supports_response_schema', 'supports_parallel_function_calling',
      'supports_tool_choice', 'supports_prompt_caching', 'supports_reasoning', 'supports_audio_input', 'supports_audio_output', 'supports_pdf_input'] as const) {
      if (info[flag] !== (want[flag] === true)) t.fail(`${model}: ${flag} is ${info[flag]}, LiteLLM says ${String(want[flag])}`)
    }
    t.pass(`${model}: the ten supports_* flags match`)
  }

  // Prices are the proxy's: genai-prices, checked by its own calcPrice (per 1M tokens).
  const mini = getModelInfo('gpt-4o-mini')
  // 100k tokens: below every tier threshold (Anthropic's long-context price starts past 200k input tokens).
  const N = 100_000
  const perToken = (usage: Record<string, number>, model: string, providerId: string) => calcPrice(usage, model, { providerId })!.total_price / N
  const close = (a: number | null | undefined, b: number, what: string) => t.ok(typeof a === 'number' && Math.abs(a - b) <= b * 1e-9, `${what}: ${a} ~ ${b}`)
  close(mini.input_cost_per_token, perToken({ input_tokens: N }, 'gpt-4o-mini', 'openai'), 'input')
  close(mini.output_cost_per_token, perToken({ output_tokens: N }, 'gpt-4o-mini', 'openai'), 'output')
  close(mini.cache_read_input_token_cost, perToken({ input_tokens: N, cache_read_tokens: N }, 'gpt-4o-mini', 'openai'), 'cache read')
  t.equal(mini.input_cost_per_token, LITELLM['gpt-4o-mini']!.input_cost_per_token, 'and here LiteLLM\'s table agrees')
  t.notOk('cache_creation_input_token_cost' in mini, 'no cache-write price for an OpenAI model')
  const claude = getModelInfo(`anthropic/${CLAUDE}`)
  close(claude.input_cost_per_token, perToken({ input_tokens: N }, CLAUDE, 'anthropic'), 'Anthropic input')
  close(claude.cache_creation_input_token_cost, perToken({ input_tokens: N, cache_write_tokens: N }, CLAUDE, 'anthropic'), 'Anthropic cache writes')
  close(claude.cache_read_input_token_cost, perToken({ input_tokens: N, cache_read_tokens: N }, CLAUDE, 'anthropic'), 'Anthropic cache reads')
  t.equal(getModelInfo('text-embedding-3-small').output_cost_per_token, 0)

  for (const bad of ['openai/no-such-model-9000', 'totally-unknown-model', 'groq/no-such-model']) {
    const err = (() => { try { getModelInfo(bad); return null } catch (e) { return e } })()
    t.ok(err instanceof GatewayError, `${bad}: a GatewayError`)
    t.equal((err as GatewayError).status, 404, `${bad}: 404`)
    t.equal((err as GatewayError).name, 'NotFoundError')
  }
  t.throws(() => getModelInfo(''), { code: 'GW_ERR_VALIDATION', status: 400 })
})

t.test('supportsFunctionCalling / supportsVision follow LiteLLM\'s table', async (t) => {
  const truthy = (key: string, flag: string) => LITELLM[key]?.[flag] === true
  const checks: Array<[string, string]> = [
    ['gpt-4o-mini', 'gpt-4o-mini'], ['openai/gpt-4o', 'gpt-4o'], ['gpt-4', 'gpt-4'], ['gpt-3.5-turbo', 'gpt-3.5-turbo'],
    [`anthropic/${CLAUDE}`, CLAUDE], ['bedrock/amazon.titan-text-express-v1', 'amazon.titan-text-express-v1'],
    ['gemini/gemini-2.0-flash', 'gemini/gemini-2.0-flash'], ['groq/llama-3.3-70b-versatile', 'groq/llama-3.3-70b-versatile'],
    ['text-embedding-3-small', 'text-embedding-3-small'],
  ]
  let fcTrue = 0, fcFalse = 0, visTrue = 0, visFalse = 0
  for (const [model, key] of checks) {
    t.ok(LITELLM[key], `${key} is in LiteLLM's table`)
    const fc = truthy(key, 'supports_function_calling')
    const vis = truthy(key, 'supports_vision')
    t.equal(supportsFunctionCalling(model), fc, `${model}: function calling ${fc}`)
    t.equal(supportsVision(model), vis, `${model}: vision ${vis}`)
    fc ? fcTrue++ : fcFalse++
    vis ? visTrue++ : visFalse++
  }
  t.ok(fcTrue > 0 && fcFalse > 0 && visTrue > 0 && visFalse > 0, 'both answers are exercised for both flags')
  t.equal(supportsFunctionCalling('no-such-model'), false, 'unknown: false')
  t.equal(supportsVision('openai/no-such-model'), false, 'unknown: false')
  t.equal(supportsVision(''), false)
  t.equal(supportsVision('x', 'no-such-provider'), false, 'a bad provider: false, not a throw')

  // A model kept only for its flags (no limits in LiteLLM's table) still answers.
  const flagsOnly = Object.entries(LITELLM).find(([k, v]) => ['chat', 'completion', 'responses', 'embedding'].includes(v.mode as string) &&
    v.max_input_tokens == null && v.max_output_tokens == null && v.max_tokens == null && v.supports_function_calling === true && !LITELLM[k.slice(k.lastIndexOf('/') + 1)])
  t.ok(flagsOnly, 'LiteLLM\'s table has such a model')
  t.equal(supportsFunctionCalling(flagsOnly![0]), true, `${flagsOnly![0]} (no limits, flags only)`)
})

t.test('importing core/sdk-info.ts does not load gpt-tokenizer; the first tokenCounter() call does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-sdk-info-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = join(dir, 'esm-loads.txt')
  writeFileSync(log, '')
  // ESM loads go through resolve hooks (off-thread: they append to a file); CJS ones land in require.cache.
  writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs'
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  if (r.url.includes('gpt-tokenizer')) appendFileSync(${JSON.stringify(log)}, r.url + '\\n')
  return r
}
`)
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)})\n`)
  writeFileSync(join(dir, 'probe.mjs'), `import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
const require = createRequire(${JSON.stringify(pathToFileURL(join(ROOT, 'package.json')).href)})
const loaded = () => [...Object.keys(require.cache), ...readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n')].filter((p) => p.includes('gpt-tokenizer'))
const m = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'core/sdk-info.ts')).href)})
m.getModelInfo('gpt-4o'); m.completionCost({ model: 'gpt-4o', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })
m.tokenCounter({ model: 'claude-sonnet-4-5', text: 'estimate only' })
const before = loaded()
const n = m.tokenCounter({ model: 'gpt-4o', text: 'Hello world' })
process.stdout.write(JSON.stringify({ before, after: loaded(), n }))
`)
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', pathToFileURL(join(dir, 'register.mjs')).href, join(dir, 'probe.mjs')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    child.stderr.on('data', (c: Buffer) => (stderr += c))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`probe exited ${code}: ${stderr}`))))
  })
  const { before, after, n } = JSON.parse(out) as { before: string[]; after: string[]; n: number }
  t.same(before, [], 'nothing of gpt-tokenizer loaded by the import, getModelInfo, completionCost or an estimate')
  t.ok(after.some((p) => p.includes('o200k_base')), `the first exact count loads the o200k encoding (${after.length} modules)`)
  t.equal(n, o200k.countTokens('Hello world'))
})
