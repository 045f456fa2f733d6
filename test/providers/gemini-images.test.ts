/**
 * Image generation on Google's image models (providers/gemini/images.ts), shared by the Gemini and Vertex AI
 * adapters, unit by unit and table-driven: which API a model name picks (Imagen `:predict`, Gemini image models
 * `:generateContent`) and the URL on each host; the request mapping (size -> aspect ratio, n, Google's own settings,
 * unsupported OpenAI params), every body validated against the Gemini spec; the replies mapped to OpenAI's
 * ImagesResponse (validated against OpenAI's spec); error mapping (safety refusals -> content policy, and each HTTP
 * class); and the price LiteLLM's table gives these models. The gateway end to end is gemini-images-gateway.test.ts.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gemini, googleImages } from '../../providers/gemini/index.js'
import { aspectRatio, GEMINI_RATIOS, IMAGEN_RATIOS } from '../../providers/gemini/images.js'
import { vertex_ai } from '../../providers/vertex/index.js'
import { applyParamMap } from '../../providers/param-map.js'
import type { OperationAdapter, ResponseMeta, Target } from '../../providers/types.js'
import type { ImageGenerationRequest, ImagesResponse } from '../../core/openai/types.js'
import { GatewayError } from '../../core/errors.js'
import { createMediaPricing } from '../../core/pricing/media.js'
import { usageOf } from '../../core/openai/shape.js'
import { assertSchema } from '../helpers/openapi.js'
import { assertGeminiSchema, geminiSchemaErrors, target } from './google-fixtures.js'
import { BLUE, geminiImageReply, IMAGE_USAGE, IMAGEN_BLOCKED_400, IMAGEN_FILTERED, imagenReply, RED } from './google-images-fixtures.js'

const op = gemini.images as OperationAdapter<ImageGenerationRequest, ImagesResponse>
const IMAGEN = target('gemini', { model: 'imagen-4.0-generate-001', apiKey: 'AIza-test-key' })
const FLASH_IMAGE = target('gemini', { model: 'gemini-2.5-flash-image', apiKey: 'AIza-test-key' })

/** The body as dispatch builds it: the op's own map (gateway fields stripped there), then finish(). */
function build(req: Record<string, unknown>, tg: Target = IMAGEN, o: OperationAdapter<ImageGenerationRequest, ImagesResponse> = op): Record<string, any> {
  const full = { model: 'img', prompt: 'A lighthouse at dusk', ...req } as ImageGenerationRequest
  const body = applyParamMap(full, o.params, tg, o.policy)
  return o.finish ? o.finish(body, full, tg, false) : body
}

function meta(tg: Target = IMAGEN): ResponseMeta {
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

t.test('the validator accepts a documented Imagen request and refuses a misspelt one', async (t) => {
  assertGeminiSchema(t, 'PredictRequest', { instances: [{ prompt: 'Robot holding a red skateboard' }], parameters: { sampleCount: 4 } }, "the Gemini docs' Imagen example")
  t.ok(geminiSchemaErrors('PredictRequest', { instance: [{ prompt: 'x' }] }).length, '`instance` (singular) is refused')
  t.ok(geminiSchemaErrors('GenerateContentRequest', { contents: [], generationConfig: { imageConfig: { aspect_ratio: '1:1' } } }).length, 'imageConfig.aspect_ratio (snake case) is refused')
})

t.test('request mapping: Imagen (:predict)', async (t) => {
  const rows: Array<[string, Record<string, unknown>, Record<string, unknown>, Target?]> = [
    ['prompt only: one image, as OpenAI defaults (Imagen would make four)', {}, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1 } }],
    ['n -> sampleCount, size -> aspectRatio', { n: 2, size: '1792x1024' }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 2, aspectRatio: '16:9' } }],
    ['size auto: the model chooses', { size: 'auto' }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1 } }],
    ['nulls mean "not set" (OpenAI clients send them)', { n: null, size: null, quality: null, response_format: null, style: null }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1 } }],
    ['response_format b64_json: what comes back anyway; nothing sent', { response_format: 'b64_json' }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1 } }],
    ["Google's settings, snake case, aspect_ratio over size", { size: '1024x1024', aspect_ratio: '9:16', person_generation: 'allow_adult', negative_prompt: 'fog', image_size: '2K', seed: 7, add_watermark: false, enhance_prompt: true, include_rai_reason: true, safety_setting: 'block_only_high' },
      { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1, aspectRatio: '9:16', personGeneration: 'allow_adult', negativePrompt: 'fog', sampleImageSize: '2K', seed: 7, addWatermark: false, enhancePrompt: true, includeRaiReason: true, safetySetting: 'block_only_high' } }],
    ["Google's settings, as Google spells them", { aspectRatio: '3:4', personGeneration: 'dont_allow', sampleImageSize: '1K' }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1, aspectRatio: '3:4', personGeneration: 'dont_allow', sampleImageSize: '1K' } }],
    ['gateway fields are never sent', { metadata: { tags: ['a'] }, num_retries: 2, mock_testing_fallbacks: false, api_key: 'sk-x' }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1 } }],
    ['unsupported params dropped with drop_params', { quality: 'hd', style: 'vivid', user: 'u-1', response_format: 'url', background: 'transparent' }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 1 } }, { ...IMAGEN, dropParams: true }],
    ['imagegeneration@006 is Imagen too', { n: 3 }, { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 3 } }, { ...IMAGEN, model: 'imagegeneration@006' }],
  ]
  for (const [name, req, expected, tg] of rows) {
    const body = build(req, tg)
    t.same(body, expected, name)
    t.strictSame(Object.keys(body), Object.keys(expected), `${name}: no other field`)
    assertGeminiSchema(t, 'PredictRequest', body, `${name}: a valid PredictRequest`)
  }
})

t.test('request mapping: Gemini image models (:generateContent)', async (t) => {
  const contents = [{ role: 'user', parts: [{ text: 'A lighthouse at dusk' }] }]
  const rows: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['prompt only: one user turn, image output asked for', {}, { contents, generationConfig: { responseModalities: ['TEXT', 'IMAGE'] } }],
    ['n=1 is the default and not sent; size -> imageConfig.aspectRatio', { n: 1, size: '1024x1792' }, { contents, generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '9:16' } } }],
    ['n > 1 -> candidateCount; a 3:2 size keeps 3:2 (Gemini has it)', { n: 2, size: '1536x1024' }, { contents, generationConfig: { responseModalities: ['TEXT', 'IMAGE'], candidateCount: 2, imageConfig: { aspectRatio: '3:2' } } }],
    ["Google's settings", { aspect_ratio: '21:9', image_size: '2K', seed: 3, safety_settings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ONLY_HIGH' }] },
      { contents, generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '21:9', imageSize: '2K' }, seed: 3 }, safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ONLY_HIGH' }] }],
  ]
  for (const [name, req, expected] of rows) {
    const body = build(req, FLASH_IMAGE)
    t.same(body, expected, name)
    assertGeminiSchema(t, 'GenerateContentRequest', body, `${name}: a valid GenerateContentRequest`)
  }
})

t.test('size -> aspect ratio: the nearest the API takes; for Imagen the same as LiteLLM for the sizes in its table', async (t) => {
  // LiteLLM's _map_size_to_aspect_ratio (gemini and vertex_ai image configs): Imagen's own output sizes.
  const litellm: Record<string, string> = { '1024x1024': '1:1', '1792x1024': '16:9', '1024x1792': '9:16', '1280x896': '4:3', '896x1280': '3:4' }
  for (const [size, ratio] of Object.entries(litellm)) t.equal(aspectRatio(size, IMAGEN_RATIOS), ratio, `Imagen ${size}`)
  const rows: Array<[string, string, string]> = [
    ['1024x1024', '1:1', '1:1'], ['1792x1024', '16:9', '16:9'], ['1024x1792', '9:16', '9:16'],
    // 1280x896 (10:7) lies nearer 3:2 than 4:3; Gemini has 3:2, Imagen does not.
    ['1280x896', '4:3', '3:2'], ['896x1280', '3:4', '2:3'],
    ['1536x1024', '4:3', '3:2'], ['1024x1536', '3:4', '2:3'], ['256x256', '1:1', '1:1'], ['2560x1080', '16:9', '21:9'],
    ['1000x800', '4:3', '5:4'], ['800x1000', '3:4', '4:5'],
  ]
  for (const [size, imagen, gem] of rows) {
    t.equal(aspectRatio(size, IMAGEN_RATIOS), imagen, `Imagen ${size} -> ${imagen}`)
    t.equal(aspectRatio(size, GEMINI_RATIOS), gem, `Gemini ${size} -> ${gem}`)
  }
  t.equal(aspectRatio('auto', IMAGEN_RATIOS), undefined, "'auto': the model's default")
  for (const bad of ['big', '0x512', '1024*1024']) t.equal(thrown(() => aspectRatio(bad, IMAGEN_RATIOS)).code, 'GW_ERR_VALIDATION', `'${bad}' is a 400`)
})

t.test('unsupported OpenAI params: a 400 naming the param, nothing built', async (t) => {
  const rows: Array<[string, Record<string, unknown>, string]> = [
    ['quality', { quality: 'hd' }, 'quality'],
    ['style', { style: 'vivid' }, 'style'],
    ['user', { user: 'u-1' }, 'user'],
    ['a GPT-image field', { background: 'transparent' }, 'background'],
    ["response_format url: Google's APIs answer bytes only", { response_format: 'url' }, 'response_format'],
  ]
  for (const tg of [IMAGEN, FLASH_IMAGE]) {
    for (const [name, req, param] of rows) {
      const e = thrown(() => build(req, tg))
      t.equal(e.code, 'GW_ERR_UNSUPPORTED_PARAM', `${tg.model}: ${name}`)
      t.equal(e.status, 400)
      t.equal(e.param, param, `${tg.model}: names ${param}`)
      t.match(e.message, /drop_params/, 'says how to drop it')
    }
  }
  t.match(thrown(() => build({ response_format: 'url' })).message, /b64_json/, 'url: says images come back as b64_json')
  t.equal(thrown(() => build({ prompt: undefined })).code, 'GW_ERR_VALIDATION', 'no prompt: a 400')
})

t.test('where the call goes: the method by model name, on each host', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['Imagen on AI Studio', 'imagen-4.0-generate-001', 'https://generativelanguage.googleapis.com/v1beta/models/imagen-4.0-generate-001:predict'],
    ['Imagen 3 fast', 'imagen-3.0-fast-generate-001', 'https://generativelanguage.googleapis.com/v1beta/models/imagen-3.0-fast-generate-001:predict'],
    ['a Gemini image model', 'gemini-2.5-flash-image', 'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-image:generateContent'],
    ['Gemini 3 Pro image preview', 'gemini-3-pro-image-preview', 'https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image-preview:generateContent'],
  ]
  for (const [name, model, url] of rows) {
    const r = gemini.request('images', target('gemini', { model, apiKey: 'AIza-k' }), false)
    t.equal(r.url, url, name)
    t.equal(r.headers['x-goog-api-key'], 'AIza-k', `${name}: key in the header`)
    t.notMatch(r.url, /AIza/, `${name}: no key in the URL`)
  }
  t.equal(gemini.request('images', target('gemini', { model: 'imagen-4.0-generate-001', apiBase: 'http://127.0.0.1:9/v1beta' }), false).url,
    'http://127.0.0.1:9/v1beta/models/imagen-4.0-generate-001:predict', 'api_base')

  const vt = (model: string) => target('vertex_ai', { model, params: { vertex_project: 'p1', vertex_location: 'europe-west4' } })
  const vrows: Array<[string, string, string]> = [
    ['Imagen on Vertex', 'imagen-3.0-generate-002', 'https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/models/imagen-3.0-generate-002:predict'],
    ['imagegeneration@006', 'imagegeneration@006', 'https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/models/imagegeneration@006:predict'],
    ['a Gemini image model on Vertex', 'gemini-2.5-flash-image', 'https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/models/gemini-2.5-flash-image:generateContent'],
  ]
  for (const [name, model, url] of vrows) t.equal(vertex_ai.request('images', vt(model), false).url, url, name)
  t.ok(gemini.operations.has('images') && vertex_ai.operations.has('images'), 'both adapters list the operation')
  t.same(build({ n: 2 }, target('vertex_ai', { model: 'imagen-3.0-generate-002' }), vertex_ai.images as typeof op),
    { instances: [{ prompt: 'A lighthouse at dusk' }], parameters: { sampleCount: 2 } }, 'Vertex sends the same Imagen body')
})

t.test('response mapping: Imagen predictions -> ImagesResponse', async (t) => {
  const res = op.response(imagenReply([RED, BLUE], 'A tall lighthouse at dusk, warm light'), meta())
  assertSchema(t, 'ImagesResponse', res)
  t.equal(res.created, 1_700_000_000)
  t.same(res.data.map((d) => Buffer.from(d.b64_json!, 'base64')), [RED, BLUE], 'the image bytes, in order')
  t.same(res.data.map((d) => d.revised_prompt), ['A tall lighthouse at dusk, warm light', 'A tall lighthouse at dusk, warm light'], "Imagen's rewritten prompt -> revised_prompt")
  t.equal(res.output_format, 'png')
  t.equal(res.usage, undefined, 'Imagen reports no tokens: priced per image')
  t.notOk('url' in res.data[0]!, 'no url')

  const partial = op.response({ predictions: [...(imagenReply([RED]).predictions as object[]), IMAGEN_FILTERED.predictions[0]] }, meta())
  t.equal(partial.data.length, 1, 'a filtered image among good ones is left out')
  t.notOk('revised_prompt' in partial.data[0]!, 'no revised_prompt when Imagen gave none')
})

t.test('response mapping: a Gemini image model -> ImagesResponse with usage', async (t) => {
  const res = op.response(geminiImageReply(RED), meta(FLASH_IMAGE))
  assertSchema(t, 'ImagesResponse', res)
  t.equal(res.data.length, 1, 'the text part is not an image')
  t.ok(Buffer.from(res.data[0]!.b64_json!, 'base64').equals(RED), 'the inlineData bytes')
  t.equal(res.output_format, 'png')
  t.same(res.usage, {
    input_tokens: 7, output_tokens: 1290, total_tokens: 1297,
    input_tokens_details: { text_tokens: 7, image_tokens: 0 }, output_tokens_details: { text_tokens: 0, image_tokens: 1290 },
  })
  t.same(usageOf('images', res), { prompt_tokens: 7, completion_tokens: 1290, total_tokens: 1297, prompt_tokens_details: { text_tokens: 7, image_tokens: 0, audio_tokens: 0 } }, 'what the core prices')

  const two = geminiImageReply(RED)
  two.candidates.push({ ...structuredClone(two.candidates[0]), index: 1 })
  two.candidates[1].content.parts[1].inlineData.data = BLUE.toString('base64')
  t.same(op.response(two, meta(FLASH_IMAGE)).data.map((d) => Buffer.from(d.b64_json!, 'base64')), [RED, BLUE], 'n=2: one image per candidate')

  const thinking = geminiImageReply(RED, { usageMetadata: { ...IMAGE_USAGE, thoughtsTokenCount: 100, totalTokenCount: 1397, candidatesTokensDetails: undefined } })
  t.same(op.response(thinking, meta(FLASH_IMAGE)).usage, {
    input_tokens: 7, output_tokens: 1390, total_tokens: 1397,
    input_tokens_details: { text_tokens: 7, image_tokens: 0 }, output_tokens_details: { text_tokens: 100, image_tokens: 1290 },
  }, 'thoughts counted as output text; candidates without a breakdown taken as image tokens')
})

t.test('refusals and empty answers in a 200', async (t) => {
  const rows: Array<[string, Target, unknown, string, RegExp]> = [
    ['Imagen filtered every image (include_rai_reason)', IMAGEN, IMAGEN_FILTERED, 'GW_ERR_CONTENT_POLICY', /filtered every image: Your request resulted in one or more images that contained people/],
    ['Imagen answered no image at all', IMAGEN, {}, 'GW_ERR_CONTENT_POLICY', /no image: Imagen leaves out images its safety filters removed/],
    ['Imagen: an error object inside a 200', IMAGEN, { error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } }, 'GW_ERR_UPSTREAM_UNAVAILABLE', /currently unavailable/],
    ['Imagen: predictions that are no list', IMAGEN, { predictions: 'x' }, 'GW_ERR_UPSTREAM_BAD_RESPONSE', /not a list/],
    ['Gemini blocked the prompt', FLASH_IMAGE, { promptFeedback: { blockReason: 'PROHIBITED_CONTENT' }, usageMetadata: { promptTokenCount: 7, totalTokenCount: 7 } }, 'GW_ERR_CONTENT_POLICY', /blocked the prompt \(blockReason PROHIBITED_CONTENT\)/],
    ['Gemini stopped for image safety', FLASH_IMAGE, geminiImageReply(RED, { candidates: [{ content: { role: 'model', parts: [] }, finishReason: 'IMAGE_SAFETY', index: 0 }] }), 'GW_ERR_CONTENT_POLICY', /made no image \(finishReason IMAGE_SAFETY\)/],
    ['Gemini answered in text only', FLASH_IMAGE, geminiImageReply(RED, { candidates: [{ content: { role: 'model', parts: [{ text: 'Which lighthouse do you mean?' }] }, finishReason: 'STOP', index: 0 }] }), 'GW_ERR_UPSTREAM_BAD_RESPONSE', /no image; the model answered: Which lighthouse do you mean\?/],
  ]
  for (const [name, tg, body, code, message] of rows) {
    const e = thrown(() => op.response(body, meta(tg)))
    t.equal(e.code, code, name)
    t.match(e.message, message, `${name}: the message`)
  }
  t.equal(thrown(() => op.response(IMAGEN_FILTERED, meta())).status, 400, 'content policy is a 400, as OpenAI answers a refused image prompt')
})

t.test('error mapping: HTTP errors of the image APIs', async (t) => {
  const g = (code: number, message: string, status: string, details?: unknown[]) => ({ error: { code, message, status, ...(details ? { details } : {}) } })
  const rows: Array<[string, number, unknown, Record<string, string>, string, number, RegExp]> = [
    ['Imagen safety 400 -> content policy', 400, IMAGEN_BLOCKED_400, {}, 'GW_ERR_CONTENT_POLICY', 400, /may violate our policies/],
    ["Vertex's usage-guidelines 400 -> content policy", 400, g(400, "The prompt could not be submitted. This prompt contains words that violate Vertex AI's usage guidelines. Try rephrasing the prompt. Support codes: 29310472", 'INVALID_ARGUMENT'), {}, 'GW_ERR_CONTENT_POLICY', 400, /usage guidelines/],
    ['a plain bad request stays one', 400, g(400, "Invalid value at 'parameters.sampleCount'", 'INVALID_ARGUMENT'), {}, 'GW_ERR_UPSTREAM_BAD_REQUEST', 400, /sampleCount/],
    ['an invalid API key (a 400 from Gemini) -> auth', 400, g(400, 'API key not valid. Please pass a valid API key.', 'INVALID_ARGUMENT', [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }]), {}, 'GW_ERR_UPSTREAM_AUTH', 401, /API key not valid/],
    ['billing required -> 400', 400, g(400, 'Imagen API is only accessible to billed users at this time.', 'FAILED_PRECONDITION'), {}, 'GW_ERR_UPSTREAM_BAD_REQUEST', 400, /billed users/],
    ['403 permission', 403, g(403, 'Permission denied on resource project p1.', 'PERMISSION_DENIED'), {}, 'GW_ERR_UPSTREAM_FORBIDDEN', 403, /Permission denied/],
    ['404 unknown model', 404, g(404, 'models/imagen-9 is not found for API version v1beta, or is not supported for predict.', 'NOT_FOUND'), {}, 'GW_ERR_UPSTREAM_NOT_FOUND', 404, /imagen-9 is not found/],
    ['429 keeps retry-after', 429, g(429, 'Resource has been exhausted (e.g. check quota).', 'RESOURCE_EXHAUSTED'), { 'retry-after': '12' }, 'GW_ERR_UPSTREAM_RATE_LIMIT', 429, /exhausted/],
    ['500', 500, g(500, 'Internal error encountered.', 'INTERNAL'), {}, 'GW_ERR_UPSTREAM_SERVER', 500, /Internal error/],
    ['503 overloaded', 503, g(503, 'The model is overloaded. Please try again later.', 'UNAVAILABLE'), {}, 'GW_ERR_UPSTREAM_UNAVAILABLE', 503, /overloaded/],
    ['a proxy page is never shown', 502, '<html>bad gateway</html>', {}, 'GW_ERR_UPSTREAM_BAD_RESPONSE', 502, /^gemini returned HTTP 502 Bad Gateway \(non-JSON body\)$/],
  ]
  for (const [name, status, body, headers, code, httpStatus, message] of rows) {
    for (const adapter of [gemini, vertex_ai]) {
      const e = adapter.error(status, body, headers)
      t.equal(e.code, code, `${adapter.name}: ${name}`)
      t.equal(e.status, httpStatus, `${adapter.name}: ${name}: status`)
      t.match(e.message, adapter === gemini ? message : new RegExp(message.source.replace('gemini', 'vertex_ai')), `${adapter.name}: ${name}: message`)
      t.notMatch(e.message, /AIza/, 'no key in a message')
    }
  }
  t.equal(gemini.error(429, g(429, 'quota', 'RESOURCE_EXHAUSTED'), { 'retry-after': '12' }).retryAfter, 12, 'retry-after kept')
})

t.test("prices: LiteLLM's per-image rows for gemini/ and vertex_ai/ Imagen names; tokens for Gemini image models", async (t) => {
  const table = JSON.parse(readFileSync(fileURLToPath(new URL('../../../shared/data/litellm/model_prices_and_context_window.json', import.meta.url)), 'utf8')) as Record<string, { output_cost_per_image?: number; mode?: string }>
  const pricing = createMediaPricing(0)
  let checked = 0
  for (const [key, row] of Object.entries(table)) {
    const m = /^(gemini|vertex_ai)\/((?:imagen|imagegeneration)[^/]*)$/.exec(key)
    if (!m || row.mode !== 'image_generation' || typeof row.output_cost_per_image !== 'number') continue
    const tg = target(m[1]!, { model: m[2]! })
    const reply = op.response(imagenReply([RED, BLUE]), meta(tg))
    const c = pricing.cost(tg, 'images', { model: 'x', prompt: 'p', n: 2 }, reply, usageOf('images', reply))
    t.equal(c.source, 'table', `${key}: priced from the table`)
    t.ok(Math.abs(c.usd - 2 * row.output_cost_per_image) < 1e-12, `${key}: 2 images x ${row.output_cost_per_image} = ${c.usd}`)
    checked++
  }
  t.ok(checked >= 12, `every Imagen row of LiteLLM's table for gemini/ and vertex_ai/ (${checked})`)

  for (const provider of ['gemini', 'vertex_ai']) {
    const tg = target(provider, { model: 'gemini-2.5-flash-image' })
    const reply = op.response(geminiImageReply(RED), meta(tg))
    const row = table[`${provider}/gemini-2.5-flash-image`] as unknown as { input_cost_per_token: number; output_cost_per_image_token: number }
    const c = pricing.cost(tg, 'images', { model: 'x', prompt: 'p' }, reply, usageOf('images', reply))
    const expected = 7 * row.input_cost_per_token + 1290 * row.output_cost_per_image_token
    t.ok(Math.abs(c.usd - expected) < 1e-12, `${provider}/gemini-2.5-flash-image: prompt and image tokens at their rates (${c.usd} = ${expected})`)
  }
})

t.test('googleImages is the same translation for any Google host', async (t) => {
  const vertexOp = googleImages('vertex_ai')
  const e = thrown(() => vertexOp.response(IMAGEN_FILTERED, meta(target('vertex_ai', { model: 'imagen-3.0-generate-002' }))))
  t.equal(e.provider, 'vertex_ai', 'errors name the provider that answered')
})
