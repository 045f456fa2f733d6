/**
 * /v1/images/generations through a running gateway, with the official `openai` client, against a fake OpenAI
 * upstream on 127.0.0.1: what the upstream receives (the deployment's model id and key, no gateway fields), what the
 * client gets back (validated against OpenAI's ImagesResponse schema), the price (per image from LiteLLM's sized
 * rows; per token for GPT image models), spend rows and budgets with a store, model access by virtual key, bad
 * input and upstream errors.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { FAKE_PNG_B64, errorReply, startUpstream } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'
import { jsonCall } from '../helpers/http.js'
import { admin, eventually, generateKey, MASTER } from '../e2e/helpers.js'

const up = await startUpstream(t)
const failing = await startUpstream(t, {
  images: errorReply(400, { message: 'Your request was rejected as a result of our safety system.', code: 'content_policy_violation', type: 'invalid_request_error' }),
})
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
model_list:
  - model_name: dall-e-3
    litellm_params:
      model: openai/dall-e-3
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: dall-e-2
    litellm_params:
      model: openai/dall-e-2
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: gpt-image-1
    litellm_params:
      model: openai/gpt-image-1
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: unsafe-images
    litellm_params:
      model: openai/dall-e-3
      api_base: ${failing.url}
      api_key: sk-upstream
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${up.url}
      api_key: sk-upstream
`)
const master = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER, maxRetries: 0, timeout: 10_000 })

/** OpenAI's list prices, USD per image, as LiteLLM's table has them (per pixel x pixels for DALL-E). */
const DALLE3_STANDARD_1024 = 0.04
const DALLE3_HD_1792 = 0.12

/** LiteLLM's per-pixel prices are rounded (6.539e-08 x 1792 x 1024 = 0.11999...): equal to 0.1 %. */
function near(t: Test, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) <= expected * 1e-3, `${what}: ${actual} ~ ${expected}`)
}

t.test('dall-e-3: the client gets a valid ImagesResponse; the upstream gets the request without gateway fields', async (t) => {
  const before = up.requestsTo('images').length
  const { data, response } = await master.images.generate({
    model: 'dall-e-3', prompt: 'A lighthouse at dusk', n: 1, size: '1024x1024', quality: 'standard',
    // Gateway fields the client may send (LiteLLM's): never forwarded.
    ...({ metadata: { tags: ['t1'] }, num_retries: 0 } as object),
  }).withResponse()
  assertSchema(t, 'ImagesResponse', data)
  t.equal(data.data?.length, 1)
  t.match(data.data?.[0]?.url, /^https:\/\/images\.example\.invalid\//)
  t.equal(up.requestsTo('images').length, before + 1, 'one upstream call')
  const seen = up.requestsTo('images').at(-1)!
  t.equal(seen.path, '/v1/images/generations')
  t.equal(seen.headers.authorization, 'Bearer sk-upstream', 'the deployment key, not the client key')
  t.same(seen.body, { model: 'dall-e-3', prompt: 'A lighthouse at dusk', n: 1, size: '1024x1024', quality: 'standard' }, 'exactly the OpenAI fields')
  near(t, Number(response.headers.get('x-litellm-response-cost')), DALLE3_STANDARD_1024, 'priced per image')
  t.ok(response.headers.get('x-litellm-model-id'), 'LiteLLM call headers')
})

t.test('dall-e-3 HD at 1792x1024, two images: the sized row, times n', async (t) => {
  const { response } = await master.images.generate({ model: 'dall-e-3', prompt: 'x', n: 2, size: '1792x1024', quality: 'hd' }).withResponse()
  near(t, Number(response.headers.get('x-litellm-response-cost')), 2 * DALLE3_HD_1792, 'hd/1792-x-1024/dall-e-3 x 2')
})

t.test('dall-e-2 at 256x256 in b64_json', async (t) => {
  const { data, response } = await master.images.generate({ model: 'dall-e-2', prompt: 'x', size: '256x256', response_format: 'b64_json' }).withResponse()
  assertSchema(t, 'ImagesResponse', data)
  t.equal(data.data?.[0]?.b64_json, FAKE_PNG_B64)
  near(t, Number(response.headers.get('x-litellm-response-cost')), 0.016, 'OpenAI list price of a 256x256 dall-e-2 image')
})

t.test('gpt-image-1: billed on the token usage it reports; the b64 body passes through byte for byte', async (t) => {
  const { data, response } = await master.images.generate({ model: 'gpt-image-1', prompt: 'A red bicycle', quality: 'medium' }).withResponse()
  assertSchema(t, 'ImagesResponse', data)
  t.equal(data.data?.[0]?.b64_json, FAKE_PNG_B64)
  const u = data.usage!
  t.ok(u.output_tokens > 0 && u.input_tokens_details.text_tokens > 0, 'usage reported')
  // gpt-image-1: $5 / 1M text input tokens, $10 / 1M image input tokens, $40 / 1M image output tokens.
  const expected = u.input_tokens_details.text_tokens * 5e-6 + u.input_tokens_details.image_tokens * 10e-6 + u.output_tokens * 40e-6
  near(t, Number(response.headers.get('x-litellm-response-cost')), expected, 'tokens at their rates')
})

t.test('the Azure-style path names the model', async (t) => {
  const r = await jsonCall(gw.url, 'POST', '/openai/deployments/dall-e-3/images/generations', { prompt: 'y' }, MASTER)
  t.equal(r.status, 200)
  t.equal(up.requestsTo('images').at(-1)!.body.model, 'dall-e-3')
})

t.test('bad input is an OpenAI-shaped 400 and nothing is sent', async (t) => {
  const before = up.requestsTo('images').length
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['no prompt', { model: 'dall-e-3' }, 'prompt'],
    ['no model', { prompt: 'x' }, 'model'],
    ['n above 10', { model: 'dall-e-3', prompt: 'x', n: 11 }, 'n'],
    ['a size that is no size', { model: 'dall-e-3', prompt: 'x', size: 'huge' }, 'size'],
    ['a bad response_format', { model: 'dall-e-3', prompt: 'x', response_format: 'gif' }, 'response_format'],
    ['stream: true', { model: 'dall-e-3', prompt: 'x', stream: true }, 'stream'],
  ]
  for (const [what, body, param] of cases) {
    const r = await jsonCall(gw.url, 'POST', '/v1/images/generations', body, MASTER)
    t.equal(r.status, 400, `${what}: 400`)
    t.equal(r.body?.error?.param, param, `${what}: names '${param}' (${r.body?.error?.message})`)
    t.equal(r.body?.error?.type, 'invalid_request_error')
  }
  t.equal(up.requestsTo('images').length, before, 'no upstream call')
})

t.test("an upstream refusal keeps OpenAI's status, type, code and message", async (t) => {
  const e = await master.images.generate({ model: 'unsafe-images', prompt: 'x' }).catch((x: unknown) => x)
  t.ok(e instanceof OpenAI.BadRequestError, 'a 400 for the client')
  const err = e as InstanceType<typeof OpenAI.BadRequestError>
  t.equal(err.code, 'content_policy_violation')
  t.match(err.message, /safety system/)
})

t.test('virtual keys: model access is enforced; the call is logged with its cost and charged to the key', async (t) => {
  const chatOnly = await generateKey(t, gw.url, { models: ['gpt-4o-mini'] })
  const refused = await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: chatOnly.key, maxRetries: 0 })
    .images.generate({ model: 'dall-e-3', prompt: 'x' }).catch((x: unknown) => x)
  t.ok(refused instanceof OpenAI.PermissionDeniedError, `a key without dall-e-3 is refused (${(refused as Error).message})`)

  const k = await generateKey(t, gw.url, { models: ['dall-e-3'], max_budget: 0.1 })
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  await client.images.generate({ model: 'dall-e-3', prompt: 'first', size: '1024x1024' })
  const rows = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${k.token}`)
    return Array.isArray(r.body) && r.body.length >= 1 ? r.body : undefined
  }, 10_000, 'the spend row')
  const row = rows[0]
  t.equal(row.call_type, 'images')
  t.equal(row.status, 'success')
  t.equal(row.model, 'dall-e-3')
  t.equal(row.cost_source, 'table')
  near(t, row.spend, DALLE3_STANDARD_1024, 'the row carries the price')
  // 0.04 spent of 0.10: the next two fit (0.08, then 0.12 passes the budget while admitted), the one after is refused.
  await client.images.generate({ model: 'dall-e-3', prompt: 'second' })
  await eventually(async () => (await admin(gw.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend > 0.07, 10_000, 'key spend')
  await client.images.generate({ model: 'dall-e-3', prompt: 'third' })
  await eventually(async () => (await admin(gw.url, 'GET', `/key/info?key=${k.token}`)).body.info.spend > 0.11, 10_000, 'key spend')
  const over = await client.images.generate({ model: 'dall-e-3', prompt: 'fourth' }).catch((x: unknown) => x)
  t.ok(over instanceof OpenAI.BadRequestError && /Budget has been exceeded/.test((over as Error).message), 'over budget: refused')
})
