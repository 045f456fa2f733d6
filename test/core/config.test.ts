/**
 * core/config/load.ts and core/compat/litellm.ts: YAML -> a frozen Config. Every test passes its own `env`
 * object, so nothing depends on (or leaks from) the real environment.
 */
import t, { type Test } from 'tap'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseConfig, buildConfig, loadConfigFile, parseSize, type Config } from '../../core/config/load.js'
import { defaultPipeline, DEFAULT_UPSTREAM } from '../../core/compat/litellm.js'
import { ConfigError, GatewayError } from '../../core/errors.js'
import { startGateway } from '../helpers/gateway.js'

const env0: Record<string, string | undefined> = {}

function configError(t: Test, fn: () => unknown): GatewayError {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof ConfigError, 'a ConfigError')
    t.equal((err as GatewayError).code, 'GW_ERR_CONFIG_INVALID', 'code GW_ERR_CONFIG_INVALID')
    return err as GatewayError
  }
  t.fail('expected a config error')
  throw new Error('unreachable')
}

const entry = (c: Config, name: string) => [...c.pipeline, ...c.upstream].find((e) => e.name === name)

t.test('parses YAML into a frozen Config with defaults filled in', async (t) => {
  const c = parseConfig(`
server:
  port: 8080
model_list:
  - model_name: m
    litellm_params:
      model: mock/one
      rpm: 10
`, { env: env0 })
  t.equal(c.server.port, 8080)
  t.equal(c.server.host, '0.0.0.0', 'default host')
  t.equal(c.server.shutdown_timeout, 30)
  t.equal(c.server.log_level, 'info')
  t.equal(c.model_list.length, 1)
  t.equal(c.model_list[0]!.litellm_params.model, 'mock/one')
  t.equal(c.model_list[0]!.litellm_params.rpm, 10)
  t.same(c.settings, { drop_params: false, request_timeout: 600, stream_timeout: 600, unpriced_input_cost_per_token: null, unpriced_output_cost_per_token: null, model_group_alias: {} })
  t.same(c.warnings, [], 'a clean config warns about nothing')
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.server) && Object.isFrozen(c.model_list[0]!.litellm_params), 'deeply frozen')
})

t.test('an empty file is a valid (all-defaults) config', async (t) => {
  const c = parseConfig('', { env: env0 })
  t.same(c.model_list, [])
  t.equal(c.server.port, 4000)
})

t.test('invalid YAML and a non-mapping top level are GW_ERR_CONFIG_INVALID', async (t) => {
  const e1 = configError(t, () => parseConfig('server: [unclosed', { env: env0 }, 'my.yaml'))
  t.match(e1.message, /my\.yaml is not valid YAML/)
  const e2 = configError(t, () => parseConfig('- a\n- b\n', { env: env0 }))
  t.match(e2.message, /mapping/)
})

t.test('os.environ/NAME replaces the whole value; the real process environment is not read', async (t) => {
  const c = parseConfig(`
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/MY_KEY
      api_base: os.environ/PATH
`, { env: { MY_KEY: 'sk-123' } })
  t.equal(c.model_list[0]!.litellm_params.api_key, 'sk-123')
  t.notOk('api_base' in c.model_list[0]!.litellm_params, 'PATH is set in process.env, but only opts.env counts')
  const envWarnings = c.warnings.filter((w) => /environment variables not set/.test(w))
  t.equal(envWarnings.length, 1)
  t.match(envWarnings[0]!, /\bPATH\b/, 'the unset variable is named')
  t.match(c.warnings.join('\n'), /model_list\[0\] \(m\): api_base references PATH, which is not set: deployment disabled/,
    'an api_base that resolves to nothing disables the deployment')
})

t.test('an unset os.environ/ value leaves the key unset and is named in one warning', async (t) => {
  const c = parseConfig(`
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/NOT_SET_A
      organization: os.environ/NOT_SET_B
`, { env: env0 })
  t.notOk('api_key' in c.model_list[0]!.litellm_params)
  t.notOk('organization' in c.model_list[0]!.litellm_params)
  const w = c.warnings.filter((x) => /environment variables/.test(x))
  t.equal(w.length, 1, 'one warning for all of them')
  t.match(w[0]!, /NOT_SET_A, NOT_SET_B/)
})

t.test('${NAME} and ${NAME:-default} expand inside strings', async (t) => {
  const c = parseConfig(`
server:
  port: \${PORT}
  host: \${HOST:-127.0.0.1}
model_list:
  - model_name: m
    litellm_params:
      model: hosted_vllm/\${MODEL}
      api_base: http://\${VLLM_HOST:-localhost}:\${VLLM_PORT:-8000}/v1
      api_key: Bearer-\${EMPTY:-fallback}
`, { env: { PORT: '8081', MODEL: 'qwen', VLLM_PORT: '9000', EMPTY: '' } })
  t.equal(c.server.port, 8081, 'a string from the environment is coerced to the integer the schema wants')
  t.equal(c.server.host, '127.0.0.1', 'default used when unset')
  const p = c.model_list[0]!.litellm_params
  t.equal(p.model, 'hosted_vllm/qwen')
  t.equal(p.api_base, 'http://localhost:9000/v1', 'default for one, value for the other')
  t.equal(p.api_key, 'Bearer-fallback', 'an empty value takes the default, as ${X:-d} does in a shell')
  t.same(c.warnings, [], 'nothing unset without a default')
})

t.test('${NAME} unset with no default: named in the warning; a value that was only the reference is dropped', async (t) => {
  const c = parseConfig(`
model_list:
  - model_name: m
    litellm_params:
      model: openai/x
      api_key: \${GONE}
      api_base: http://\${GONE_HOST}/v1
`, { env: env0 })
  const p = c.model_list[0]!.litellm_params
  t.notOk('api_key' in p)
  t.equal(p.api_base, 'http:///v1')
  t.match(c.warnings.join('\n'), /GONE, GONE_HOST/)
})

t.test("LiteLLM's environment_variables: section feeds the references, without touching the env passed in", async (t) => {
  const env: Record<string, string | undefined> = { OTHER: 'o' }
  const c = parseConfig(`
environment_variables:
  SECTION_KEY: sk-from-section
  OTHER: overridden
model_list:
  - model_name: m
    litellm_params:
      model: openai/x
      api_key: os.environ/SECTION_KEY
      organization: \${OTHER}
`, { env })
  t.equal(c.model_list[0]!.litellm_params.api_key, 'sk-from-section')
  t.equal(c.model_list[0]!.litellm_params.organization, 'overridden', 'the section wins, like setting the variable')
  t.same(env, { OTHER: 'o' }, 'the caller env object is not mutated')
  t.same(c.warnings, [])
})

t.test('schema errors name the path and say what to do', async (t) => {
  const e1 = configError(t, () => parseConfig(`
model_list:
  - model_name: m
    litellm_params:
      api_key: x
`, { env: env0 }))
  t.match(e1.message, "config.model_list[0].litellm_params: missing required key 'model'; add it")

  const e2 = configError(t, () => parseConfig('server:\n  port: not-a-port\n', { env: env0 }))
  t.match(e2.message, 'config.server.port: must be integer')

  const e3 = configError(t, () => parseConfig('pipeline:\n  - router\n  - { a: {}, b: {} }\n', { env: env0 }))
  t.match(e3.message, 'config.pipeline[1]: must be a plugin name or a one-key map')
  t.notMatch(e3.message, /maxProperties|must be string/, 'the anyOf branches are summarised, not dumped')

  const e4 = configError(t, () => parseConfig('server:\n  prot: 1\n', { env: env0 }))
  t.match(e4.message, "config.server: unknown key 'prot'; remove it or check its spelling")

  const e5 = configError(t, () => parseConfig('server:\n  log_level: loud\n', { env: env0 }))
  t.match(e5.message, 'config.server.log_level: must be one of "debug", "info"')

  const e6 = configError(t, () => parseConfig('model_list:\n  - litellm_params: { model: x }\n  - model_name: y\n', { env: env0 }))
  t.match(e6.message, "config.model_list[0]: missing required key 'model_name'")
  t.match(e6.message, "config.model_list[1]: missing required key 'litellm_params'", 'every error is listed (allErrors)')

  const e7 = configError(t, () => parseConfig('upstream:\n  - [retry]\n', { env: env0 }))
  t.match(e7.message, 'config.upstream[0]')
})

t.test('LiteLLM mapping: master_key, drop_params, num_retries, routing_strategy, timeouts, set_verbose', async (t) => {
  const c = parseConfig(`
general_settings:
  master_key: os.environ/MASTER
litellm_settings:
  drop_params: true
  num_retries: 3
  request_timeout: 42
  set_verbose: true
router_settings:
  routing_strategy: simple-shuffle
  stream_timeout: 7
model_list: []
`, { env: { MASTER: 'sk-master' } })
  t.same(entry(c, 'auth')?.options, { master_key: 'sk-master' }, 'general_settings.master_key -> auth options')
  t.equal(c.settings.drop_params, true, 'litellm_settings.drop_params -> settings.drop_params')
  t.same(entry(c, 'retry')?.options, { num_retries: 3 }, 'num_retries -> retry')
  t.equal(entry(c, 'retry')?.chain, 'upstream')
  t.same(entry(c, 'router')?.options, { routing_strategy: 'simple-shuffle' })
  t.equal(c.settings.request_timeout, 42)
  t.equal(c.settings.stream_timeout, 7)
  t.equal(c.server.log_level, 'debug')
  t.same(c.warnings, [], 'every key used here is supported')
  t.equal(c.general_settings.master_key, 'sk-master', 'the LiteLLM sections stay readable by plugins')
})

t.test('router_settings.num_retries wins over litellm_settings; explicit plugin options win over both', async (t) => {
  const c = parseConfig('litellm_settings: { num_retries: 1 }\nrouter_settings: { num_retries: 2 }\n', { env: env0 })
  t.equal(entry(c, 'retry')?.options.num_retries, 2)
  const c2 = parseConfig(`
general_settings: { master_key: sk-a }
litellm_settings: { num_retries: 1, drop_params: true }
settings: { drop_params: false }
pipeline:
  - auth: { master_key: sk-explicit }
upstream:
  - retry: { num_retries: 5 }
`, { env: env0 })
  t.equal(entry(c2, 'auth')?.options.master_key, 'sk-explicit')
  t.equal(entry(c2, 'retry')?.options.num_retries, 5)
  t.equal(c2.settings.drop_params, false, 'Switchyard settings win over litellm_settings')
})

t.test('every unsupported key is listed in ONE warning', async (t) => {
  const c = parseConfig(`
guardrails: []
general_settings:
  master_key: sk-1
  alerting: ["slack"]
litellm_settings:
  success_callback: ["datadog"]
router_settings:
  routing_strategy: made-up-routing
model_list:
  - model_name: m
    litellm_params:
      model: mock/x
      temperature: 0.2
      made_up_param: 1
    tpm_limit: 5
`, { env: env0 })
  const w = c.warnings.filter((x) => /not supported/.test(x))
  t.equal(w.length, 1, 'one warning line')
  for (const key of ['guardrails', 'general_settings.alerting', 'litellm_settings.success_callback',
    'model_list[0].litellm_params.made_up_param', 'model_list[0].tpm_limit',
    'router_settings.routing_strategy=made-up-routing']) {
    t.match(w[0]!, key, `names ${key}`)
  }
  t.notMatch(w[0]!, /temperature/, 'request defaults on a deployment are supported')
  t.notMatch(w[0]!, /master_key/)
  t.notOk(entry(c, 'router')?.options.routing_strategy, 'an unsupported strategy is not passed to the router')
})

t.test('master_key with a pipeline that has no auth plugin warns that requests are open', async (t) => {
  const c = parseConfig('general_settings: { master_key: sk-1 }\npipeline: [router]\n', { env: env0 })
  t.match(c.warnings.join('\n'), /no auth plugin/)
  t.notOk(entry(c, 'auth'))
})

t.test('default chains when none is given; an explicit empty list stays empty', async (t) => {
  const c = parseConfig('model_list: []\n', { env: env0 })
  t.same(c.pipeline.map((e) => e.name), defaultPipeline('store-sqlite', false))
  t.same(c.pipeline.map((e) => e.name), ['request-id', 'store-sqlite', 'auth', 'keys', 'ui', 'spend', 'rate-limit', 'priority-queue', 'budget', 'mcp', 'router'])
  const pg = parseConfig('general_settings: { database_url: "postgresql://u@127.0.0.1:1/db" }\nrouter_settings: { redis_host: 127.0.0.1 }\n', { env: env0 })
  t.same(pg.pipeline.map((e) => e.name), ['request-id', 'store-postgres', 'state-redis', 'auth', 'keys', 'ui', 'spend', 'rate-limit', 'priority-queue', 'budget', 'mcp', 'router'],
    'a database_url picks PostgreSQL; redis settings add the shared state')
  t.equal(entry(pg, 'store-postgres')?.options.database_url, 'postgresql://u@127.0.0.1:1/db')
  const envPg = parseConfig('model_list: []\n', { env: { ...env0, DATABASE_URL: 'postgresql://x@127.0.0.1:2/y' } })
  t.equal(entry(envPg, 'store-postgres')?.options.database_url, 'postgresql://x@127.0.0.1:2/y', '$DATABASE_URL as LiteLLM reads it')
  t.same(c.upstream.map((e) => e.name), [...DEFAULT_UPSTREAM])
  t.ok(c.pipeline.every((e) => e.chain === 'pipeline'))
  const empty = parseConfig('pipeline: []\nupstream: []\n', { env: env0 })
  t.same(empty.pipeline, [])
  t.same(empty.upstream, [])
})

t.test('pipeline entries: a name, a one-key map, and a key with no options', async (t) => {
  const c = parseConfig('pipeline:\n  - request-id\n  - auth: { keys: [a] }\n  - router:\n', { env: env0 })
  t.same(c.pipeline, [
    { name: 'request-id', chain: 'pipeline', options: {} },
    { name: 'auth', chain: 'pipeline', options: { keys: ['a'] } },
    { name: 'router', chain: 'pipeline', options: {} },
  ])
})

t.test('server.body_limit accepts bytes and size strings', async (t) => {
  t.equal(parseConfig('', { env: env0 }).server.body_limit, 100 * 1024 * 1024, 'default 100mb: images and long prompts fit')
  t.equal(parseConfig('server: { body_limit: "1mb" }', { env: env0 }).server.body_limit, 1048576)
  t.equal(parseConfig('server: { body_limit: 512kb }', { env: env0 }).server.body_limit, 524288)
  t.equal(parseConfig('server: { body_limit: "1.5MB" }', { env: env0 }).server.body_limit, 1572864)
  t.equal(parseConfig('server: { body_limit: 2048 }', { env: env0 }).server.body_limit, 2048)
  t.equal(parseSize('10 k', 'x'), 10240)
  t.equal(parseSize('1g', 'x'), 1024 ** 3)
  const e = configError(t, () => parseConfig('server: { body_limit: lots }', { env: env0 }))
  t.match(e.message, 'server.body_limit')
  t.match(e.message, '"1mb"', 'says what to write')
})

t.test('loadConfigFile: plugin paths resolve against the file; a missing file is GW_ERR_CONFIG_READ', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, 'plugins:\n  mine: ./plugins/mine.js\nmodel_list:\n  - model_name: m\n    litellm_params: { model: mock/x }\n')
  const c = await loadConfigFile(file, { env: env0 })
  t.equal(c.baseDir, dir)
  t.equal(c.plugins.mine, path.join(dir, 'plugins', 'mine.js'))
  await t.rejects(loadConfigFile(path.join(dir, 'nope.yaml'), { env: env0 }), { code: 'GW_ERR_CONFIG_READ', message: /nope\.yaml/ })
})

t.test('buildConfig takes an object written in code; the input is not mutated', async (t) => {
  const input = { model_list: [{ model_name: 'm', litellm_params: { model: 'mock/x', api_key: 'os.environ/K' } }] }
  const c = buildConfig(input, { env: { K: 'v' } })
  t.equal(c.model_list[0]!.litellm_params.api_key, 'v')
  t.equal(input.model_list[0]!.litellm_params.api_key, 'os.environ/K')
  t.notOk(Object.isFrozen(input))
})

t.test('the gateway logs the config warnings once at boot', async (t) => {
  const { logs } = await startGateway(t, 'pipeline: []\nupstream: []\ncallback_settings: {}\nmodel_list: []\n', { env: env0 })
  const warns = logs.filter((l) => l.level === 'warn' && String(l.msg).startsWith('config:'))
  t.equal(warns.length, 1)
  t.match(String(warns[0]!.msg), /callback_settings/)
})
