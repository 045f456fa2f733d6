/**
 * Loading a LiteLLM config as LiteLLM does (core/config/load.ts, core/compat/litellm.ts): YAML 1.1 as PyYAML reads
 * it, include:, LiteLLM's aliases, and the keys that refuse to boot instead of silently weakening the gateway.
 * Loader cases go through parseConfig / loadConfigFile; the merge-key case is also followed through a gateway booted
 * from a config file to a fake upstream. Every test passes its own env object.
 */
import t, { type Test } from 'tap'
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import OpenAI from 'openai'
import { parseConfig, buildConfig, loadConfigFile } from '../../core/config/load.js'
import { createGateway } from '../../core/gateway.js'
import { createLogger } from '../../core/logger.js'
import { editDistance } from '../../core/compat/litellm.js'
import { ConfigError, GatewayError } from '../../core/errors.js'
import { startUpstream } from '../helpers/upstream.js'

const env0: Record<string, string | undefined> = {}
const messages = [{ role: 'user' as const, content: 'Hi' }]

function bootError(t: Test, fn: () => unknown, code = 'GW_ERR_CONFIG_INVALID'): GatewayError {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof ConfigError, 'a ConfigError')
    t.equal((err as GatewayError).code, code)
    return err as GatewayError
  }
  t.fail('expected a boot error')
  throw new Error('unreachable')
}

async function tmpDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-litellm-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const ignoredWarning = (warnings: readonly string[]) => warnings.find((w) => w.startsWith('config keys not supported yet')) ?? ''

t.test('YAML merge keys: an entry takes api_base and api_key from an anchor, and the call reaches that host with that key', async (t) => {
  const up = await startUpstream(t)
  const dir = await tmpDir(t)
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, `
model_list:
  - model_name: base
    litellm_params: &common
      model: openai/base-model
      api_base: ${up.url}
      api_key: sk-from-anchor
  - model_name: merged
    litellm_params:
      <<: *common
      model: openai/gpt-4o-mini
`)
  const c = await loadConfigFile(file, { env: env0 })
  t.same(c.model_list[1]!.litellm_params, { api_base: up.url, api_key: 'sk-from-anchor', model: 'openai/gpt-4o-mini' }, 'merged, own key wins')

  const logs: string[] = []
  const gw = await createGateway({ config: file, env: env0, logger: createLogger({ level: 'debug', write: (l) => void logs.push(l) }) })
  t.teardown(() => gw.stop())
  const { url } = await gw.listen(0, '127.0.0.1')
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const r = await client.chat.completions.create({ model: 'merged', messages })
  t.equal(r.object, 'chat.completion')
  t.equal(up.requests.length, 1)
  t.equal(up.requests[0]!.body.model, 'gpt-4o-mini')
  t.equal(up.requests[0]!.headers.authorization, 'Bearer sk-from-anchor', 'the key from the anchor')
})

t.test('YAML 1.1 as PyYAML: 20_000 is an integer, yes is true, a repeated key keeps its last value', async (t) => {
  const c = parseConfig(`
litellm_settings:
  drop_params: yes
model_list:
  - model_name: m
    litellm_params:
      model: mock/x
      tpm: 20_000
      rpm: 10
      rpm: 30
`, { env: env0 })
  const p = c.model_list[0]!.litellm_params
  t.equal(p.tpm, 20000, 'tpm: 20_000 is the integer 20000')
  t.equal(c.settings.drop_params, true, 'drop_params: yes is true')
  t.equal(p.rpm, 30, 'duplicate key: the last one wins, as in PyYAML')
  t.same(c.warnings, [])
})

t.test('floats need a digit before the exponent: e400 stays a model name, 1e-6 is a cost', async (t) => {
  const c = parseConfig(`
model_list:
  - model_name: e400
    litellm_params: { model: openai/e400, temperature: 0.5, top_p: 1.0e+0, x: .5, y: 1_000.5, z: -.inf, w: 1:30.0, v: 6.0e-1 }
  - model_name: E5
    litellm_params: { model: mock/E5 }
    model_info: { input_cost_per_token: 1e-6, output_cost_per_token: 2E-6 }
`, { env: env0 })
  t.equal(c.model_list[0]!.model_name, 'e400', 'e400 is a string (the 1.1 schema of the yaml package read NaN)')
  t.equal(c.model_list[1]!.model_name, 'E5', 'E5 is a string')
  t.same(c.model_list[1]!.model_info, { input_cost_per_token: 1e-6, output_cost_per_token: 2e-6 }, '1e-6 and 2E-6 are numbers')
  const p = c.model_list[0]!.litellm_params as Record<string, unknown>
  t.same([p.temperature, p.top_p, p.x, p.y, p.z, p.w, p.v], [0.5, 1, 0.5, 1000.5, -Infinity, 90, 0.6], 'real floats are numbers (base 60 too)')
})

t.test("PyYAML's booleans only: y/n stay strings (n: 2 is OpenAI's n), on/off are booleans", async (t) => {
  const c = parseConfig(`
litellm_settings:
  drop_params: on
model_list:
  - model_name: m
    litellm_params:
      model: mock/x
      n: 2
      user: y
`, { env: env0 })
  const p = c.model_list[0]!.litellm_params
  t.equal(p.n, 2, 'the key n is the string "n", not false')
  t.equal(p.user, 'y', 'the value y is a string, not true')
  t.equal(c.settings.drop_params, true, 'on is true')
  t.same(c.warnings, [])
})

t.test("LiteLLM's aliases: base_url, num_retries, tpm/rpm beside litellm_params", async (t) => {
  const c = parseConfig(`
model_list:
  - model_name: a
    tpm: 1000
    rpm: 5
    litellm_params:
      model: openai/x
      base_url: http://127.0.0.1:9/v1
      num_retries: 3
  - model_name: b
    tpm: 1000
    litellm_params: { model: openai/y, tpm: 7, api_base: http://127.0.0.1:8/v1, base_url: http://127.0.0.1:9/v1, max_retries: 1, num_retries: 4 }
`, { env: env0 })
  const [a, b] = c.model_list.map((e) => e.litellm_params)
  t.equal(a!.api_base, 'http://127.0.0.1:9/v1', 'base_url is api_base')
  t.notOk('base_url' in a!)
  t.equal(a!.max_retries, 3, 'num_retries is max_retries')
  t.equal(a!.tpm, 1000, 'entry-level tpm copied')
  t.equal(a!.rpm, 5, 'entry-level rpm copied')
  t.equal(b!.tpm, 7, 'litellm_params.tpm wins over the entry level')
  t.equal(b!.api_base, 'http://127.0.0.1:8/v1', 'api_base wins over base_url')
  t.equal(b!.max_retries, 1, 'max_retries wins over num_retries')
  t.same(c.warnings, [], 'none of these is an ignored key')
})

t.test('model_info keys not acted on are named in the boot warning; costs and id are used', async (t) => {
  const c = parseConfig(`
model_list:
  - model_name: m
    litellm_params: { model: mock/x }
    model_info: { id: dep-1, mode: chat, base_model: gpt-4o, access_groups: [a], input_cost_per_token: 0.001, output_cost_per_token: 0.002 }
`, { env: env0 })
  const w = ignoredWarning(c.warnings)
  for (const k of ['base_model', 'access_groups']) t.match(w, `model_list[0].model_info.${k}`)
  t.notMatch(w, 'model_info.mode', 'mode is acted on (/health, /model_group/info)')
  t.notMatch(w, /model_info\.(id|input_cost_per_token|output_cost_per_token)/)
})

t.test('general_settings.master_key that resolves to nothing refuses to boot', async (t) => {
  for (const value of ['os.environ/UNSET_MASTER', '${UNSET_MASTER}']) {
    const e = bootError(t, () => parseConfig(`general_settings:\n  master_key: ${value}\n`, { env: { LITELLM_MASTER_KEY: 'sk-env' } }))
    t.match(e.message, 'general_settings.master_key')
    t.match(e.message, 'UNSET_MASTER', `${value}: names the variable`)
  }
  const empty = bootError(t, () => parseConfig('general_settings:\n  master_key: ""\n', { env: env0 }))
  t.match(empty.message, /general_settings\.master_key is empty/)
  // A set variable works as before.
  const ok = parseConfig('general_settings:\n  master_key: os.environ/MK\n', { env: { MK: 'sk-1' } })
  t.equal(ok.pipeline.find((p) => p.name === 'auth')!.options.master_key, 'sk-1')
})

t.test('an explicit auth master_key option that resolves to nothing refuses to boot', async (t) => {
  const e = bootError(t, () => parseConfig('pipeline:\n  - request-id\n  - auth: { master_key: os.environ/NOPE }\n', { env: env0 }))
  t.match(e.message, 'pipeline[1].auth.master_key')
  t.match(e.message, 'NOPE')
  const e2 = bootError(t, () => buildConfig({ pipeline: [{ auth: { master_key: '' } }] }, { env: env0 }))
  t.match(e2.message, /pipeline\[0\]\.auth\.master_key is empty/)
  const e3 = bootError(t, () => parseConfig('pipeline:\n  - auth: { master_key: "${NOPE}" }\n', { env: env0 }))
  t.match(e3.message, 'NOPE')
})

t.test('a misspelt top-level key is a boot error with a suggestion; other unknown keys and LiteLLM sections warn', async (t) => {
  const e = bootError(t, () => parseConfig('pipline:\n  - router\n', { env: env0 }))
  t.match(e.message, "unknown top-level key 'pipline'; did you mean 'pipeline'?")
  const e2 = bootError(t, () => parseConfig('model_lsit: []\nrouter_setting: {}\n', { env: env0 }))
  t.match(e2.message, "did you mean 'model_list'?")
  t.match(e2.message, "did you mean 'router_settings'?", 'every unknown key is reported')
  const far = parseConfig('common_defaults: &d { temperature: 0.2 }\nmodel_list: [{ model_name: m, litellm_params: { <<: *d, model: mock/m } }]\n', { env: env0 })
  t.match(ignoredWarning(far.warnings), 'common_defaults', 'a key far from any known one (an anchor holder) is warned about, as LiteLLM ignores it')
  t.equal(far.model_list[0]!.litellm_params.temperature, 0.2, 'and its anchor still works')
  const e3 = bootError(t, () => parseConfig('common_defaults: 1\n', { env: env0, strict: true }))
  t.match(e3.message, /strict config: .*common_defaults/, 'strict mode refuses it')
  const c = parseConfig('guardrails: []\ncredential_list: []\nvector_store_registry: []\n', { env: env0 })
  t.match(ignoredWarning(c.warnings), 'guardrails, credential_list, vector_store_registry', 'known LiteLLM sections: one warning')
  t.equal(editDistance('pipline', 'pipeline'), 1)
  t.equal(editDistance('', 'abc'), 3)
})

t.test('strict mode (LoadOptions.strict or general_settings.strict_config) turns the ignored-keys warning into a boot error', async (t) => {
  // A callback this version does not ship to is an ignored key (langfuse is acted on: the logging plugin).
  const yaml = 'litellm_settings:\n  success_callback: [datadog]\n'
  t.match(ignoredWarning(parseConfig(yaml, { env: env0 }).warnings), 'litellm_settings.success_callback', 'a warning by default')
  const e = bootError(t, () => parseConfig(yaml, { env: env0, strict: true }))
  t.match(e.message, /strict config: .*litellm_settings\.success_callback/)
  const e2 = bootError(t, () => parseConfig(`${yaml}general_settings:\n  strict_config: true\n`, { env: env0 }))
  t.match(e2.message, 'litellm_settings.success_callback')
  t.same(parseConfig('general_settings:\n  strict_config: true\n', { env: env0 }).warnings, [], 'a clean config boots in strict mode')
})

t.test('include: files are merged relative to the including file; model_list appended; nested; cycles and missing files refuse', async (t) => {
  const dir = await tmpDir(t)
  await mkdir(path.join(dir, 'sub'))
  await writeFile(path.join(dir, 'main.yaml'), `
include:
  - sub/models.yaml
model_list:
  - model_name: own
    litellm_params: { model: mock/own }
litellm_settings:
  drop_params: true
`)
  await writeFile(path.join(dir, 'sub', 'models.yaml'), `
include: more.yaml
model_list:
  - model_name: included
    litellm_params: { model: mock/inc }
litellm_settings:
  drop_params: false
  num_retries: 2
`)
  await writeFile(path.join(dir, 'sub', 'more.yaml'), `
model_list:
  - model_name: nested
    litellm_params: { model: mock/nested }
`)
  const c = await loadConfigFile(path.join(dir, 'main.yaml'), { env: env0 })
  t.same(c.model_list.map((m) => m.model_name), ['own', 'included', 'nested'], 'appended in include order, nested include relative to its own file')
  t.equal(c.settings.drop_params, true, 'the including file wins on a conflict')
  t.equal(c.pipeline.length && c.upstream.find((p) => p.name === 'retry')!.options.num_retries, 2, 'other keys of a section merged in')
  t.same(c.warnings, [])

  await writeFile(path.join(dir, 'single.yaml'), 'include: sub/more.yaml\n')
  t.same((await loadConfigFile(path.join(dir, 'single.yaml'), { env: env0 })).model_list.map((m) => m.model_name), ['nested'], 'a single file as a string')

  await writeFile(path.join(dir, 'a.yaml'), 'include: [b.yaml]\n')
  await writeFile(path.join(dir, 'b.yaml'), 'include: [a.yaml]\n')
  await t.rejects(loadConfigFile(path.join(dir, 'a.yaml'), { env: env0 }), { code: 'GW_ERR_CONFIG_INVALID', message: /include cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml/ })

  await writeFile(path.join(dir, 'missing.yaml'), 'include: [nope.yaml]\n')
  await t.rejects(loadConfigFile(path.join(dir, 'missing.yaml'), { env: env0 }), { code: 'GW_ERR_CONFIG_READ', message: /missing\.yaml: include 'nope\.yaml'/ })

  bootError(t, () => buildConfig({ include: ['x.yaml'] }, { env: env0 }))
})

t.test('general_settings.max_request_size_mb maps onto server.body_limit; server.body_limit wins', async (t) => {
  t.equal(parseConfig('general_settings:\n  max_request_size_mb: 2.5\n', { env: env0 }).server.body_limit, 2.5 * 1024 * 1024)
  t.equal(parseConfig('general_settings: { max_request_size_mb: 2 }\nserver: { body_limit: 10kb }\n', { env: env0 }).server.body_limit, 10240)
  const e = bootError(t, () => parseConfig('general_settings:\n  max_request_size_mb: lots\n', { env: env0 }))
  t.match(e.message, 'general_settings.max_request_size_mb')
})

t.test('the default body limit takes a request with a large inline image', async (t) => {
  const dir = await tmpDir(t)
  const file = path.join(dir, 'c.yaml')
  await writeFile(file, 'model_list:\n  - model_name: m\n    litellm_params: { model: mock/m }\n')
  const gw = await createGateway({ config: file, env: env0, logger: createLogger({ level: 'silent' }) })
  t.teardown(() => gw.stop())
  const { url } = await gw.listen(0, '127.0.0.1')
  const image = `data:image/png;base64,${Buffer.alloc(3 * 1024 * 1024, 7).toString('base64')}` // ~4 MB
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const r = await client.chat.completions.create({
    model: 'm',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: image } }] }],
  })
  t.equal(r.object, 'chat.completion', 'a 4 MB body is accepted (the old 1mb default answered 413)')
})

t.test('router_settings: strategies, their args, pre-call checks and model_group_alias are mapped; the rest named', async (t) => {
  const c = parseConfig(`
router_settings:
  routing_strategy: usage-based-routing
  routing_strategy_args: { lowest_latency_buffer: 0.5, ttl: 30, made_up_arg: 1 }
  enable_pre_call_checks: true
  model_group_alias: { gpt-4: m, old: { model: m, hidden: true } }
  default_priority: 50
  polling_interval: 0.03
model_list:
  - model_name: m
    litellm_params: { model: mock/x }
`, { env: env0 })
  const router = c.pipeline.find((p) => p.name === 'router')
  t.same(router?.options, {
    routing_strategy: 'usage-based-routing-v2',
    routing_strategy_args: { lowest_latency_buffer: 0.5, ttl: 30 },
    enable_pre_call_checks: true,
  }, 'the router gets the strategy (v1 name served as v2), its known args and the checks flag')
  t.ok(c.warnings.some((w) => /usage-based-routing is served as usage-based-routing-v2/.test(w)), 'the renamed strategy is said')
  t.match(ignoredWarning(c.warnings), 'router_settings.routing_strategy_args.made_up_arg', 'an arg the router does not act on is named')
  t.same(c.settings.model_group_alias, { 'gpt-4': 'm', old: { model: 'm', hidden: true } })
  t.equal(c.pipeline.find((p) => p.name === 'priority-queue')?.options.default_priority, 50, 'default_priority -> priority-queue')
  t.notMatch(ignoredWarning(c.warnings), 'polling_interval', 'polling_interval is accepted (nothing polls)')
})
