/**
 * The media operations' pieces on their own: reading a WAV's length and an audio format, the multipart encoder
 * (read back by the platform's form parser), usage in the chat shape, the pass-through of image replies, and the
 * prices (per image / pixel, per second, per character, per token) against OpenAI's list prices as LiteLLM's table
 * holds them, with budgets' worst case never below the real cost.
 */
import t from 'tap'
import { audioSeconds, audioSecondsBound, silentWav, sniffAudio, wavSeconds } from '../../core/openai/audio.js'
import { UploadFile, toUpload } from '../../core/openai/upload.js'
import { encodeMultipart } from '../../core/upstream/form-data.js'
import { usageOf } from '../../core/openai/shape.js'
import { rawJson } from '../../core/upstream/passthrough.js'
import { createPricing } from '../../core/pricing/index.js'
import { validateRequest } from '../../core/http/validate.js'
import type { Target } from '../../providers/types.js'
import { sineWav } from '../helpers/wav.js'

function target(model: string, provider = 'openai', extra: Partial<Target> = {}): Target {
  return {
    id: `${provider}/${model}`, modelName: model, provider, model, timeoutMs: 1000, streamTimeoutMs: 1000, weight: 1,
    dropParams: false, additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {}, params: {}, ...extra,
  }
}

t.test('audio: WAV length from the header, formats by magic bytes, estimates and bounds', async (t) => {
  t.equal(wavSeconds(sineWav(2.5)), 2.5)
  t.equal(wavSeconds(sineWav(1, 44_100)), 1)
  t.equal(wavSeconds(silentWav(0.1)), 0.1)
  // A streamed WAV says 0xFFFFFFFF for its data size: what is there counts.
  const streamed = sineWav(1)
  streamed.writeUInt32LE(0xffffffff, 40)
  t.equal(wavSeconds(streamed), 1)
  t.equal(wavSeconds(Buffer.from('not a wav at all, just text')), null)
  t.same(sniffAudio(sineWav(0.1)), { ext: 'wav', contentType: 'audio/wav' })
  t.equal(sniffAudio(Buffer.from('ID3\x04\x00'))?.ext, 'mp3')
  t.equal(sniffAudio(Buffer.from([0xff, 0xfb, 0x90, 0x00]))?.ext, 'mp3')
  t.equal(sniffAudio(Buffer.from('OggS\x00\x02'))?.ext, 'ogg')
  t.equal(sniffAudio(Buffer.from('fLaC\x00'))?.ext, 'flac')
  t.equal(sniffAudio(Buffer.from('\x00\x00\x00\x20ftypM4A '))?.ext, 'm4a')
  t.equal(sniffAudio(Buffer.from([0x1a, 0x45, 0xdf, 0xa3]))?.ext, 'webm')
  t.equal(sniffAudio(Buffer.from('hello')), null)
  const mp3 = Buffer.concat([Buffer.from('ID3'), Buffer.alloc(160_000 - 3)])
  t.same(audioSeconds(mp3, 'a.mp3'), { seconds: 10, exact: false }, '160 kB of MP3 at 128 kbit/s: 10 s')
  t.equal(audioSecondsBound(mp3, 'a.mp3'), 160, 'at most 160 s (8 kbit/s)')
  t.same(audioSeconds(sineWav(3), 'x.bin'), { seconds: 3, exact: true }, 'a WAV is exact whatever its name')
})

t.test('toUpload names and types what it is given', async (t) => {
  const wav = sineWav(0.1)
  const a = await toUpload(wav)
  t.equal(a.filename, 'audio.wav')
  t.equal(a.contentType, 'audio/wav')
  const b = await toUpload(new Blob([wav], { type: 'audio/x-wav' }), 'named.wav')
  t.equal(b.filename, 'named.wav')
  t.equal(b.contentType, 'audio/x-wav')
  t.ok(Buffer.from(b.data).equals(wav))
  const c = await toUpload((async function* () { yield wav.subarray(0, 10); yield wav.subarray(10) })())
  t.ok(Buffer.from(c.data).equals(wav), 'an async iterable of chunks')
  t.same(JSON.parse(JSON.stringify({ file: a })), { file: { filename: 'audio.wav', content_type: 'audio/wav', bytes: wav.length } }, 'serialises as a summary')
  await t.rejects(toUpload(42 as never), TypeError)
})

t.test('encodeMultipart: read back by the platform parser, exactly', async (t) => {
  const data = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255])
  const { payload, contentType } = encodeMultipart({
    model: 'whisper-1', file: new UploadFile(data, 'we"ird\r\nname.wav', 'audio/wav'), temperature: 0.5,
    timestamp_granularities: ['word', 'segment'], chunking_strategy: { type: 'server_vad' }, language: undefined, prompt: null,
  })
  t.match(contentType, /^multipart\/form-data; boundary=----switchyard[0-9a-f]{24}$/)
  const form = await new Request('http://x.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body: payload }).formData()
  t.equal(form.get('model'), 'whisper-1')
  t.equal(form.get('temperature'), '0.5')
  t.same(form.getAll('timestamp_granularities[]'), ['word', 'segment'])
  t.equal(form.get('chunking_strategy'), '{"type":"server_vad"}')
  t.notOk(form.has('language'), 'undefined left out')
  t.notOk(form.has('prompt'), 'null left out')
  const file = form.get('file') as File
  // Sent percent-encoded (a quote or line break would end the header), decoded back by the parser (WHATWG).
  t.ok(payload.includes('filename="we%22ird%0D%0Aname.wav"'), 'quote and line break percent-encoded on the wire')
  t.equal(file.name, 'we"ird\r\nname.wav', 'and the name reads back as given')
  t.equal(file.type, 'audio/wav')
  t.ok(Buffer.from(await file.arrayBuffer()).equals(data), 'binary bytes intact')
})

t.test('usage in the chat shape; image replies pass through unparsed', async (t) => {
  t.same(usageOf('images', { usage: { input_tokens: 10, output_tokens: 4160, total_tokens: 4170, input_tokens_details: { text_tokens: 8, image_tokens: 2 } } }),
    { prompt_tokens: 10, completion_tokens: 4160, total_tokens: 4170, prompt_tokens_details: { text_tokens: 8, image_tokens: 2, audio_tokens: 0 } })
  t.same(usageOf('transcription', { usage: { type: 'tokens', input_tokens: 50, input_token_details: { audio_tokens: 45, text_tokens: 5 }, output_tokens: 12, total_tokens: 62 } }),
    { prompt_tokens: 50, completion_tokens: 12, total_tokens: 62, prompt_tokens_details: { text_tokens: 5, image_tokens: 0, audio_tokens: 45 } })
  t.equal(usageOf('transcription', { usage: { type: 'duration', seconds: 3 } }), null, 'seconds are no tokens')
  t.equal(usageOf('images', { data: [] }), null)
  const text = '{"created":1,"data":[{"b64_json":"AAAA"}],"usage":{"input_tokens":3,"output_tokens":5,"total_tokens":8,"input_tokens_details":{"text_tokens":3,"image_tokens":0}}}'
  const raw = rawJson(text, 'images', false)!
  t.ok(raw, 'an image reply is kept as text')
  t.equal(raw.raw, text)
  t.equal(raw.usage?.completion_tokens, 5, 'its usage read in the chat shape')
  t.equal(raw.read, false)
  t.ok(rawJson('{"id":"m","model":"x","results":[]}', 'moderations', false), 'moderations by their results list')
  t.equal(rawJson('{"created":1}', 'images', false), null, 'no data list: parsed (and refused) instead')
  t.equal(rawJson('{"text":"hi"}', 'transcription', false), null, 'transcriptions are parsed')
})

t.test('prices: OpenAI list prices from LiteLLM\'s table', async (t) => {
  const p = createPricing()
  const near = (a: number, b: number, what: string) => t.ok(Math.abs(a - b) <= b * 1e-3 + 1e-12, `${what}: ${a} ~ ${b}`)
  const img = (model: string, body: Record<string, unknown>, reply: unknown = null, usage = null as never) =>
    p.callCost(target(model), 'images', { model, prompt: 'p', ...body }, reply, usage)
  near(img('dall-e-3', {}).usd, 0.04, 'dall-e-3 by default: standard 1024x1024')
  near(img('dall-e-3', { quality: 'hd', size: '1024x1792', n: 2 }).usd, 0.24, 'two HD 1024x1792')
  near(img('dall-e-2', { size: '512x512' }).usd, 0.018, 'dall-e-2 512x512')
  t.equal(img('dall-e-3', {}).source, 'table')
  near(img('dall-e-3', { n: 3 }, { data: [{}, {}] }).usd, 0.08, 'images returned, not asked for, are billed')
  near(img('gpt-image-1', { quality: 'high', size: '1536x1024' }).usd, 0.25, 'gpt-image-1 without usage: the sized row')
  near(img('gpt-image-1', {}, { data: [{}], size: '1024x1024', quality: 'low' }).usd, 0.011, 'auto resolved by the reply')
  const usage = { prompt_tokens: 20, completion_tokens: 4160, total_tokens: 4180, prompt_tokens_details: { text_tokens: 20, image_tokens: 0 } }
  near(p.callCost(target('gpt-image-1'), 'images', { prompt: 'p' }, { data: [{}] }, usage).usd, 20 * 5e-6 + 4160 * 40e-6, 'gpt-image-1 on its tokens')
  const unknown = img('my-diffusion', {})
  t.same(unknown, { usd: 0.08, source: 'unpriced' }, 'an unknown image model is never free')
  const own = p.callCost(target('my-diffusion', 'openai', { params: { input_cost_per_image: 0.005 } }), 'images', { prompt: 'p', n: 2 }, null, null)
  t.same(own, { usd: 0.01, source: 'deployment' }, "the deployment's own price (litellm_params.input_cost_per_image)")
  const free = p.callCost(target('local-sd', 'openai', { modelInfo: { output_cost_per_image: 0 } }), 'images', { prompt: 'p' }, null, null)
  t.same(free, { usd: 0, source: 'deployment' }, 'a deployment priced at 0 is free')

  const file = new UploadFile(sineWav(2.5), 'a.wav', 'audio/wav')
  const tr = (model: string, provider: string, reply: unknown = null, usage: never = null as never, extra: Partial<Target> = {}) =>
    p.callCost(target(model, provider, extra), 'transcription', { model, file }, reply, usage)
  t.same(tr('whisper-1', 'openai'), { usd: 2.5 * 0.0001, source: 'table' }, 'whisper-1: WAV seconds x $0.006/min')
  t.same(tr('whisper-1', 'openai', { text: 'x', duration: 4 }), { usd: 4 * 0.0001, source: 'table' }, 'the reply duration wins')
  near(tr('whisper-large-v3', 'groq').usd, 2.5 * 3.083e-5, 'groq: its input price, though its output price is 0')
  const tok = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, prompt_tokens_details: { audio_tokens: 90, text_tokens: 10 } }
  near(tr('gpt-4o-transcribe', 'openai', { text: 'x' }, tok as never).usd, 90 * 2.5e-6 + 10 * 2.5e-6 + 20 * 10e-6, 'gpt-4o-transcribe on tokens')
  t.equal(tr('gpt-4o-transcribe', 'openai').source, 'estimated', 'tokens estimated from seconds without usage')
  const mp3 = new UploadFile(Buffer.concat([Buffer.from('ID3'), Buffer.alloc(16_000 * 60 - 3)]), 'a.mp3', 'audio/mpeg')
  const est = p.callCost(target('whisper-1'), 'transcription', { file: mp3 }, null, null)
  t.same(est, { usd: 60 * 0.0001, source: 'estimated' }, 'an MP3 minute estimated from its size')
  t.same(tr('some-asr', 'openai'), { usd: 2.5 * 0.0001, source: 'unpriced' }, 'unknown: whisper-1 price, unpriced')
  t.same(tr('some-asr', 'openai', null, null as never, { params: { input_cost_per_second: 0.001 } }), { usd: 0.0025, source: 'deployment' })

  const input = 'Hello there, general Kenobi.'
  t.same(p.callCost(target('tts-1'), 'speech', { input, voice: 'alloy' }, null, null), { usd: input.length * 15e-6, source: 'table' }, 'tts-1 per character')
  t.same(p.callCost(target('tts-1-hd'), 'speech', { input: '日本語', voice: 'alloy' }, null, null), { usd: 3 * 30e-6, source: 'table' }, 'characters, not bytes')
  const mini = p.callCost(target('gpt-4o-mini-tts'), 'speech', { input, voice: 'alloy' }, null, null)
  t.equal(mini.source, 'estimated')
  near(mini.usd, Math.ceil(Buffer.byteLength(input) / 4) * 2.5e-6 + (input.length / 15) * 0.00025, 'gpt-4o-mini-tts: tokens in, estimated seconds out')

  t.same(p.callCost(target('omni-moderation-latest'), 'moderations', { input: 'x' }, { results: [] }, null), { usd: 0, source: 'table' }, 'moderation is free')
  t.equal(p.callCost(target('mod-x', 'mistral'), 'moderations', { input: 'abcd'.repeat(100) }, null, null).source, 'unpriced')
  t.equal(p.mediaMode(target('whisper-1')), 'audio_transcription')
  t.equal(p.mediaMode(target('dall-e-3')), 'image_generation')
  t.equal(p.mediaMode(target('gpt-4o-mini')), null)
})

t.test("budgets' worst case covers the real cost; estimates stay realistic", async (t) => {
  const p = createPricing()
  const cases: Array<[Target, 'images' | 'transcription' | 'speech' | 'moderations', Record<string, unknown>]> = [
    [target('dall-e-3'), 'images', { prompt: 'p', n: 3, size: '1792x1024', quality: 'hd' }],
    [target('dall-e-3'), 'images', { prompt: 'p' }],
    [target('gpt-image-1'), 'images', { prompt: 'p'.repeat(100) }],
    [target('whisper-1'), 'transcription', { file: new UploadFile(sineWav(2), 'a.wav', 'audio/wav') }],
    [target('whisper-1'), 'transcription', { file: new UploadFile(Buffer.concat([Buffer.from('OggS'), Buffer.alloc(40_000)]), 'a.ogg', 'audio/ogg') }],
    [target('gpt-4o-transcribe'), 'transcription', { file: new UploadFile(sineWav(2), 'a.wav', 'audio/wav'), prompt: 'names' }],
    [target('tts-1'), 'speech', { input: 'x'.repeat(4096), voice: 'alloy' }],
    [target('gpt-4o-mini-tts'), 'speech', { input: 'x'.repeat(1000), voice: 'alloy', speed: 0.25 }],
    [target('omni-moderation-latest'), 'moderations', { input: ['a', 'b'] }],
  ]
  for (const [tg, op, body] of cases) {
    const worst = p.worstCase(tg, op, body)
    const cost = p.callCost(tg, op, body, null, null).usd
    const estimate = p.estimate(tg, op, body)
    t.ok(worst.usd >= cost && worst.usd >= estimate, `${tg.model} ${op}: worst ${worst.usd} >= cost ${cost}, estimate ${estimate}`)
    t.equal(worst.maxTokens, 0, 'no max_tokens to set')
  }
  // gpt-image-1 with every quality and size open: the dearest (high 1536x1024, $0.25) per image.
  t.ok(p.worstCase(target('gpt-image-1'), 'images', { prompt: 'p', n: 2 }).usd >= 0.5, 'gpt-image-1: the dearest image x n')
})

t.test('validation of the media bodies', async (t) => {
  const code = (op: Parameters<typeof validateRequest>[0], body: Record<string, unknown>) => {
    try {
      validateRequest(op, body)
      return 'ok'
    } catch (e) {
      return `${(e as { param: string }).param}:${(e as { openaiCode: string }).openaiCode}`
    }
  }
  t.equal(code('images', { model: 'm', prompt: 'p', size: '1024x1024', n: 1 }), 'ok')
  t.equal(code('images', { model: 'm', prompt: '' }), 'prompt:empty_string')
  t.equal(code('speech', { model: 'm', input: 'x'.repeat(4097), voice: 'a' }), 'input:string_above_max_length')
  t.equal(code('speech', { model: 'm', input: 'hi', voice: 'a', stream_format: 'sse' }), 'stream_format:invalid_value')
  t.equal(code('moderations', { input: 'x' }), 'ok', 'model optional')
  const form: Record<string, unknown> = { model: 'whisper-1', file: new UploadFile(sineWav(0.1), 'a.wav', 'audio/wav'), temperature: '0.3', timestamp_granularities: 'word' }
  t.equal(code('transcription', form), 'ok')
  t.equal(form.temperature, 0.3, 'form text coerced to a number')
  t.same(form.timestamp_granularities, ['word'], 'and a single value to a list')
  t.equal(code('transcription', { model: 'w', file: 'x' }), 'file:invalid_type')
  t.equal(code('transcription', { model: 'w', file: new UploadFile(new Uint8Array(0), 'a.wav', 'audio/wav') }), 'file:invalid_value')
  t.equal(code('transcription', { model: 'w', file: new UploadFile(sineWav(0.1), 'a.wav', ''), stream: 'true' }), 'stream:unsupported_value')
})
