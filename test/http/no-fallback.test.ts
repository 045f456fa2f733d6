/**
 * No silent fallbacks. A gateway booted from a config FILE, with the environment a real deployment has: a global
 * OPENAI_API_KEY and OPENAI_BASE_URL / OPENAI_API_BASE pointing (here) at a second fake that stands in for
 * api.openai.com. A deployment whose api_base/api_key did not resolve, or whose provider prefix is unknown, must
 * fail its calls with a clear error and never reach that endpoint or carry that key. A positive control at the end
 * proves the stand-in is wired: a plain OpenAI deployment does reach it with the global key.
 */
import t, { type Test } from 'tap'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import OpenAI from 'openai'
import { createGateway } from '../../core/gateway.js'
import { createLogger } from '../../core/logger.js'
import { startUpstream } from '../helpers/upstream.js'

const GLOBAL_KEY = 'sk-global-must-not-leak'
const up = await startUpstream(t)
const publicApi = await startUpstream(t)
const env: Record<string, string | undefined> = { OPENAI_API_KEY: GLOBAL_KEY, OPENAI_BASE_URL: publicApi.url, OPENAI_API_BASE: publicApi.url }
const messages = [{ role: 'user' as const, content: 'Hi' }]

async function boot(t: Test, yaml: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-nofallback-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, yaml)
  const logs: Array<{ level: string; msg: string }> = []
  const gateway = await createGateway({ config: file, env, logger: createLogger({ level: 'debug', write: (l) => void logs.push(JSON.parse(l)) }) })
  t.teardown(() => gateway.stop())
  const { url } = await gateway.listen(0, '127.0.0.1')
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10_000 })
  const warnings = logs.filter((l) => l.level === 'warn').map((l) => l.msg).join('\n')
  return { client, warnings }
}

async function failure(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const e = await p.then(() => null, (err: unknown) => err)
  if (!(e instanceof OpenAI.APIError)) throw new Error(`expected an API error, got ${String(e)}`)
  return e
}

function nothingLeaked(t: Test, label: string) {
  t.equal(publicApi.requests.length, 0, `${label}: the public endpoint got no request`)
  t.notOk(up.requests.some((r) => r.headers.authorization?.includes(GLOBAL_KEY)), `${label}: the global key went nowhere`)
}

t.test('api_base / api_key naming an unset variable: boot warning names both, calls fail 503, nothing is contacted', async (t) => {
  const before = up.requests.length
  const { client, warnings } = await boot(t, `
model_list:
  - model_name: via-environ
    litellm_params:
      model: openai/gpt-4o
      api_base: os.environ/UNSET_PROXY_BASE
      api_key: sk-explicit
  - model_name: via-shell
    litellm_params:
      model: openai/gpt-4o
      api_base: \${UNSET_SHELL_BASE}
  - model_name: key-unset
    litellm_params:
      model: openai/gpt-4o
      api_base: ${up.url}
      api_key: os.environ/UNSET_TEAM_KEY
  - model_name: alias-unset
    litellm_params:
      model: openai/gpt-4o
      base_url: os.environ/UNSET_BASE_URL
`)
  t.match(warnings, /via-environ\): api_base references UNSET_PROXY_BASE, which is not set: deployment disabled/)
  t.match(warnings, /via-shell\): api_base references UNSET_SHELL_BASE/)
  t.match(warnings, /key-unset\): api_key references UNSET_TEAM_KEY/)
  t.match(warnings, /alias-unset\): base_url references UNSET_BASE_URL/, "LiteLLM's base_url alias is checked too")
  for (const model of ['via-environ', 'via-shell', 'key-unset', 'alias-unset']) {
    const e = await failure(client.chat.completions.create({ model, messages }))
    t.equal(e.status, 503, `${model}: 503`)
    t.equal(e.code, 'no_healthy_deployment')
    t.match(e.message, new RegExp(`\`${model}\` has no usable deployment \\(.*UNSET_`), `${model}: the message names the variable`)
  }
  const stream = await failure(client.chat.completions.create({ model: 'via-environ', messages, stream: true }))
  t.equal(stream.status, 503, 'streams too')
  t.equal(up.requests.length, before, 'the named api_base was not called without its key')
  nothingLeaked(t, 'unset credentials')
})

t.test('a disabled deployment is not replaced by a catch-all wildcard; a healthy sibling still serves', async (t) => {
  const before = up.requests.length
  const { client } = await boot(t, `
model_list:
  - model_name: gpt-4o
    litellm_params: { model: openai/gpt-4o, api_base: os.environ/UNSET_PROXY_BASE }
  - model_name: pair
    litellm_params: { model: openai/gpt-4o, api_base: os.environ/UNSET_PROXY_BASE }
  - model_name: pair
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-pair }
  - model_name: "*"
    litellm_params: { model: openai/* }
`)
  const e = await failure(client.chat.completions.create({ model: 'gpt-4o', messages }))
  t.equal(e.status, 503)
  const ok = await client.chat.completions.create({ model: 'pair', messages })
  t.equal(ok.object, 'chat.completion')
  t.equal(up.requests.length, before + 1)
  t.equal(up.requests.at(-1)!.headers.authorization, 'Bearer sk-pair', 'the healthy deployment, with its own key')
  nothingLeaked(t, 'wildcard')
})

t.test('provider prefixes the gateway does not know: boot warning, 400 provider_not_supported per call', async (t) => {
  const { client, warnings } = await boot(t, `
model_list:
  - model_name: copilot
    litellm_params: { model: github_copilot/gpt-4 }
  - model_name: vllm-lib
    litellm_params: { model: vllm/facebook/opt-125m }
  - model_name: acme
    litellm_params: { model: acme-ai/big-model }
  - model_name: "*"
    litellm_params: { model: openai/* }
  - model_name: "passthrough/*"
    litellm_params: { model: "*" }
`)
  t.match(warnings, /copilot uses provider 'github_copilot', not supported yet/)
  t.match(warnings, /acme uses unknown provider 'acme-ai'/)
  const pending = await failure(client.chat.completions.create({ model: 'copilot', messages }))
  t.equal(pending.status, 400)
  t.equal(pending.code, 'provider_not_supported')
  t.match(pending.message, /'github_copilot' .* not supported by this Switchyard version yet/)
  const vllm = await failure(client.chat.completions.create({ model: 'vllm-lib', messages }))
  t.equal(vllm.code, 'provider_not_supported', "LiteLLM's in-process vllm provider is known but not built")
  const unknown = await failure(client.chat.completions.create({ model: 'acme', messages }))
  t.equal(unknown.status, 400)
  t.equal(unknown.code, 'provider_not_supported')
  t.match(unknown.message, /Unknown provider 'acme-ai'/)
  // Request-time names through wildcards.
  const viaOpenAIWildcard = await failure(client.chat.completions.create({ model: 'github_copilot/gpt-4', messages }))
  t.equal(viaOpenAIWildcard.code, 'provider_not_supported', '* -> openai/*: a prefixed name is not an OpenAI model id')
  const unknownViaWildcard = await failure(client.chat.completions.create({ model: 'acme-ai/x', messages }))
  t.match(unknownViaWildcard.message, /unknown provider 'acme-ai'/)
  const passthrough = await failure(client.chat.completions.create({ model: 'passthrough/sagemaker_chat/llama', messages }))
  t.equal(passthrough.code, 'provider_not_supported', '* -> *: the name is parsed as a model string')
  const embed = await failure(client.embeddings.create({ model: 'watsonx_text/x', input: 'a' }))
  t.equal(embed.code, 'provider_not_supported', 'embeddings too')
  nothingLeaked(t, 'unknown prefixes')
})

t.test('an explicit api_base: an unknown-looking model name is the full model id on an OpenAI-compatible host; no global key', async (t) => {
  const before = up.requests.length
  const { client, warnings } = await boot(t, `
model_list:
  - model_name: llama
    litellm_params: { model: meta-llama/Llama-3-8b, api_base: ${up.url} }
  - model_name: llama-openai
    litellm_params: { model: openai/meta-llama/Llama-3-8b, api_base: ${up.url}, api_key: sk-vllm }
  - model_name: keyless
    litellm_params: { model: openai/local, api_base: ${up.url}, api_key: "" }
`)
  t.notMatch(warnings, /unknown provider/, 'an entry with api_base is not an unknown provider')
  await client.chat.completions.create({ model: 'llama', messages })
  const a = up.requests[before]!
  t.equal(a.body.model, 'meta-llama/Llama-3-8b', 'the full name is the model id')
  t.equal(a.headers.authorization, undefined, 'the provider was only inferred: OPENAI_API_KEY is not sent')
  await client.chat.completions.create({ model: 'llama-openai', messages })
  const b = up.requests[before + 1]!
  t.equal(b.body.model, 'meta-llama/Llama-3-8b', 'openai/ + a model id with a slash')
  t.equal(b.headers.authorization, 'Bearer sk-vllm')
  await client.chat.completions.create({ model: 'keyless', messages })
  t.equal(up.requests[before + 2]!.headers.authorization, undefined, 'api_key: "" means no key, not the global one')
  nothingLeaked(t, 'explicit api_base')
})

t.test("LiteLLM's mock testing flags in the body go to the mock provider, never upstream", async (t) => {
  const before = up.requests.length
  const { client } = await boot(t, `
model_list:
  - model_name: real
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-real }
`)
  for (const flag of ['mock_testing_rate_limit_error', 'mock_testing_fallbacks']) {
    const e = await failure(client.chat.completions.create({ model: 'real', messages, [flag]: true } as never))
    t.ok(e.status === 429 || e.status === 500, `${flag}: the simulated failure (${e.status})`)
  }
  t.equal(up.requests.length, before, 'the upstream was not called')
  // A flag that is not `true` is not a mock request: the real upstream answers, and the flag is not sent to it.
  const real = await client.chat.completions.create({ model: 'real', messages, mock_timeout: 1 } as never)
  t.ok(real.choices[0]!.message.content)
  t.equal(up.requests.length, before + 1, 'mock_timeout: 1 reaches the real upstream, not a canned reply')
  t.notOk('mock_timeout' in (up.requests[before]!.body as object), 'and the flag is stripped')
  nothingLeaked(t, 'mock flags')
})

t.test('positive control: a plain OpenAI deployment does reach the stand-in public endpoint with the global key', async (t) => {
  const { client } = await boot(t, 'model_list:\n  - model_name: gpt-4o\n    litellm_params: { model: openai/gpt-4o }\n')
  await client.chat.completions.create({ model: 'gpt-4o', messages })
  t.equal(publicApi.requests.length, 1, 'OPENAI_BASE_URL is honoured, so the zero counts above mean something')
  t.equal(publicApi.requests[0]!.headers.authorization, `Bearer ${GLOBAL_KEY}`)
})
