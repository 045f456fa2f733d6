/**
 * The logging plugin's boot rules: a LiteLLM callback whose credentials are not set leaves that sink out with a
 * warning (the gateway still serves, as LiteLLM's proxy does); an unknown sink named in Switchyard's own config is a
 * boot error; the callback lists land in the plugin's options.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { parseConfig } from '../../core/config/load.js'
import { createGateway } from '../../core/gateway.js'
import { createLogger } from '../../core/logger.js'

const MODEL = `model_list:\n  - model_name: m\n    litellm_params: { model: mock/m, mock_response: hi }\n`

t.test('a callback without credentials: the sink is left out, with a warning; calls are served', async (t) => {
  const gw = await startGateway(t, `${MODEL}litellm_settings:\n  callbacks: [langfuse, prometheus]\n`, { env: {} })
  const warned = gw.logs.filter((l) => String(l.msg).startsWith("logging: sink 'langfuse' not started"))
  t.equal(warned.length, 1, 'one warning names the sink')
  t.match(String(warned[0]?.msg), /LANGFUSE_PUBLIC_KEY/, 'and says which variables it needs')
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 })
  const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(r.choices[0]!.message.content, 'hi', 'the call is served')
  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  t.notMatch(metrics, /switchyard_logging_sent_total\{sink="langfuse"\}/, 'no langfuse queue exists')
})

t.test('callback lists become the plugin options', async (t) => {
  const c = parseConfig(`${MODEL}litellm_settings:\n  callbacks: [otel]\n  success_callback: [Helicone, mlflow]\n  failure_callback: [mlflow, langfuse]\n`, { env: {} })
  const entry = c.pipeline.find((e) => e.name === 'logging')
  t.ok(entry, 'logging joins the default chain')
  t.same(c.pipeline.slice(0, 2).map((e) => e.name), ['request-id', 'logging'], 'right after request-id')
  t.same(entry!.options, { sinks: ['otel', 'mlflow'], success_only: ['helicone'], failure_only: ['langfuse'] })
  t.notOk(c.pipeline.some((e) => e.name === 'prometheus'), 'no prometheus unless named')
})

t.test('an unknown sink in Switchyard config is a boot error', async (t) => {
  const cfg = parseConfig(`${MODEL}pipeline:\n  - logging: { sinks: [nosuch] }\n`, { env: {} })
  const logger = createLogger({ level: 'silent' })
  await t.rejects(createGateway({ config: cfg, logger, env: {} }), /unknown sink 'nosuch'/)
})
