/**
 * /v1/moderations through a running gateway with the official `openai` client against a fake OpenAI upstream:
 * with a model, and without one (the request then goes to the moderation model of the model list, as LiteLLM's
 * proxy allows); replies validated against CreateModerationResponse; free for OpenAI's models; errors mapped.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { errorReply, startUpstream } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'
import { jsonCall } from '../helpers/http.js'

const up = await startUpstream(t)
const down = await startUpstream(t, { moderations: errorReply(503, { message: 'The server is overloaded', type: 'server_error' }) })

t.test('named and default models; LiteLLM-documented config', async (t) => {
  // LiteLLM's documented example: a public name over openai/omni-moderation-latest, called with or without `model`.
  const gw = await startGateway(t, `
model_list:
  - model_name: text-moderation-stable
    litellm_params:
      model: openai/omni-moderation-latest
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: down-moderation
    litellm_params:
      model: openai/omni-moderation-latest
      api_base: ${down.url}
      api_key: sk-upstream
`)
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-any', maxRetries: 0 })

  const { data, response } = await client.moderations.create({ model: 'text-moderation-stable', input: ['I will kill the process', 'hello'] }).withResponse()
  assertSchema(t, 'CreateModerationResponse', data)
  t.equal(data.results.length, 2)
  t.equal(data.results[0]!.flagged, true)
  t.equal(data.results[1]!.flagged, false)
  const seen = up.requestsTo('moderations').at(-1)!
  t.same(seen.body, { model: 'omni-moderation-latest', input: ['I will kill the process', 'hello'] }, 'the deployment model id')
  t.equal(response.headers.get('x-litellm-response-cost'), '0', 'free, as OpenAI prices it')

  const r = await jsonCall(gw.url, 'POST', '/moderations', { input: 'no model named' }, 'sk-any')
  t.equal(r.status, 200, 'no model: served')
  assertSchema(t, 'CreateModerationResponse', r.body)
  t.equal(up.requestsTo('moderations').at(-1)!.body.model, 'omni-moderation-latest', 'by the list’s moderation model')

  const bad = await jsonCall(gw.url, 'POST', '/v1/moderations', { model: 'text-moderation-stable' }, 'sk-any')
  t.equal(bad.status, 400)
  t.equal(bad.body.error.param, 'input')
  const empty = await jsonCall(gw.url, 'POST', '/v1/moderations', { model: 'text-moderation-stable', input: [] }, 'sk-any')
  t.equal(empty.status, 400)
  t.equal(empty.body.error.code, 'empty_array')

  const e = await client.moderations.create({ model: 'down-moderation', input: 'x' }).catch((x: unknown) => x)
  t.ok(e instanceof OpenAI.InternalServerError, `503 -> ${(e as Error).constructor.name}`)
  t.equal((e as InstanceType<typeof OpenAI.APIError>).status, 503)
})

t.test('a wildcard model list serves omni-moderation-latest when no model is named', async (t) => {
  const gw = await startGateway(t, `
model_list:
  - model_name: "*"
    litellm_params:
      model: openai/*
      api_base: ${up.url}
      api_key: sk-upstream
`)
  const r = await jsonCall(gw.url, 'POST', '/v1/moderations', { input: 'hello' }, null)
  t.equal(r.status, 200)
  t.equal(r.body.model, 'omni-moderation-latest')
  t.equal(up.requestsTo('moderations').at(-1)!.body.model, 'omni-moderation-latest')
})
