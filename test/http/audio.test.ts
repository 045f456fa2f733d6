/**
 * /v1/audio/transcriptions and /v1/audio/speech through a running gateway, with the official `openai` client,
 * against a fake OpenAI upstream on 127.0.0.1.
 *
 * Transcription: a real WAV made here (RIFF header + a 440 Hz sine wave) sent with `toFile`; the upstream must
 * receive the same multipart fields and the exact file bytes (name and content type kept), and nothing of the
 * gateway's own. Its price is the audio's seconds (read from the WAV header) x whisper-1's per-second price.
 * Speech: the audio bytes reach the client as the upstream sends them (the first before the upstream has finished),
 * priced per character. Both: validation 400s, model access, upstream errors, Groq's Whisper.
 */
import t, { type Test } from 'tap'
import OpenAI, { toFile } from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { DEFAULT_TRANSCRIPT, defaultSpeech, errorReply, expectedSpeech, startUpstream, type ReceivedFile } from '../helpers/upstream.js'
import { assertSchema } from '../helpers/openapi.js'
import { jsonCall } from '../helpers/http.js'
import { admin, eventually, generateKey, MASTER } from '../e2e/helpers.js'
import { sineWav } from '../helpers/wav.js'

const WAV = sineWav(2.5)
/** whisper-1: $0.006 a minute. */
const WHISPER_PER_SECOND = 0.0001
/** tts-1: $15 per 1M characters. */
const TTS1_PER_CHAR = 15e-6

const up = await startUpstream(t, { speech: defaultSpeech({ chunks: 4, intervalMs: 150 }) })
const groq = await startUpstream(t)
const broken = await startUpstream(t, {
  transcriptions: errorReply(429, { message: 'Rate limit reached for whisper-1', type: 'rate_limit_error' }, { 'retry-after': '7' }),
  speech: errorReply(401, { message: 'Incorrect API key provided: sk-up***', type: 'invalid_request_error', code: 'invalid_api_key' }),
})
const gw = await startGateway(t, `
general_settings:
  master_key: ${MASTER}
model_list:
  - model_name: whisper-1
    litellm_params:
      model: openai/whisper-1
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: tts-1
    litellm_params:
      model: openai/tts-1
      api_base: ${up.url}
      api_key: sk-upstream
  - model_name: groq-whisper
    litellm_params:
      model: groq/whisper-large-v3
      api_base: ${groq.url}
      api_key: gsk-upstream
  - model_name: broken-whisper
    litellm_params:
      model: openai/whisper-1
      api_base: ${broken.url}
      api_key: sk-upstream
  - model_name: broken-tts
    litellm_params:
      model: openai/tts-1
      api_base: ${broken.url}
      api_key: sk-upstream
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER, maxRetries: 0, timeout: 10_000 })

function near(t: Test, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) <= Math.max(expected * 1e-9, 1e-12), `${what}: ${actual} ~ ${expected}`)
}

t.test('transcription (json): the upstream gets the same form and the exact file bytes', async (t) => {
  const { data, response } = await client.audio.transcriptions.create({
    model: 'whisper-1', file: await toFile(WAV, 'sine.wav', { type: 'audio/wav' }), language: 'en', temperature: 0.2,
    prompt: 'A tone.', ...({ metadata: '{"tags":["x"]}' } as object),
  }).withResponse()
  assertSchema(t, 'CreateTranscriptionResponseJson', data)
  t.equal(data.text, DEFAULT_TRANSCRIPT)
  const seen = up.requestsTo('transcriptions').at(-1)!
  t.match(seen.headers['content-type'], /^multipart\/form-data; boundary=/)
  t.equal(seen.headers.authorization, 'Bearer sk-upstream')
  const form = seen.form!
  t.ok(form, 'a multipart body')
  const file = form.file as ReceivedFile
  t.equal(file.filename, 'sine.wav', 'file name kept')
  t.equal(file.contentType, 'audio/wav', 'content type kept')
  t.ok(file.data.equals(WAV), `the exact ${WAV.length} bytes`)
  t.same({ ...form, file: undefined }, { model: 'whisper-1', language: 'en', temperature: '0.2', prompt: 'A tone.', file: undefined },
    'the OpenAI fields, the deployment model id, no gateway field (metadata)')
  // The reply's `usage: {type: 'duration', seconds}` is what the provider bills (the fake rounds 2.5 s up to 3).
  t.same(data.usage, { type: 'duration', seconds: 3 })
  near(t, Number(response.headers.get('x-litellm-response-cost')), 3 * WHISPER_PER_SECOND, 'the billed seconds at $0.006 a minute')
})

t.test('transcription (verbose_json with timestamp_granularities): arrays go up as name[] fields', async (t) => {
  const data = await client.audio.transcriptions.create({
    model: 'whisper-1', file: await toFile(WAV, 'sine.wav'), response_format: 'verbose_json', timestamp_granularities: ['segment', 'word'],
  })
  assertSchema(t, 'CreateTranscriptionResponseVerboseJson', data)
  t.equal(data.duration, 2.5)
  const form = up.requestsTo('transcriptions').at(-1)!.form!
  t.same(form.timestamp_granularities, ['segment', 'word'])
  t.equal(form.response_format, 'verbose_json')
})

t.test('transcription as text and srt: plain text back, unchanged', async (t) => {
  const text = await client.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(WAV, 'a.wav'), response_format: 'text' })
  t.equal(text, `${DEFAULT_TRANSCRIPT}\n`)
  const { data: srt, response } = await client.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(WAV, 'a.wav'), response_format: 'srt' }).withResponse()
  t.match(srt, /^1\n00:00:00,000 --> 00:00:03,000\n/)
  t.match(response.headers.get('content-type'), /^text\/plain/)
  near(t, Number(response.headers.get('x-litellm-response-cost')), 2.5 * WHISPER_PER_SECOND, 'priced from the WAV header')
})

t.test("Groq's Whisper: its own path and key", async (t) => {
  const { data, response } = await client.audio.transcriptions.create({ model: 'groq-whisper', file: await toFile(WAV, 'g.wav') }).withResponse()
  t.equal(data.text, DEFAULT_TRANSCRIPT)
  const seen = groq.requestsTo('transcriptions').at(-1)!
  t.equal(seen.headers.authorization, 'Bearer gsk-upstream')
  t.equal(seen.form!.model, 'whisper-large-v3')
  // groq/whisper-large-v3: $0.111 an hour (LiteLLM's 3.083e-05 a second), for the 3 s the reply reports.
  near(t, Number(response.headers.get('x-litellm-response-cost')), 3 * 3.083e-5, 'priced at Groq’s rate, not free')
})

t.test('transcription bad input: OpenAI-shaped 400s, nothing sent', async (t) => {
  const before = up.requestsTo('transcriptions').length
  const post = async (form: FormData) => {
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}` }, body: form })
    return { status: res.status, body: await res.json() as any }
  }
  const wav = () => new Blob([WAV], { type: 'audio/wav' })
  let f = new FormData()
  f.set('model', 'whisper-1')
  let r = await post(f)
  t.equal(r.status, 400, 'no file')
  t.equal(r.body.error.param, 'file')
  f = new FormData()
  f.set('file', wav(), 'a.wav')
  r = await post(f)
  t.equal(r.status, 400, 'no model')
  t.equal(r.body.error.param, 'model')
  f = new FormData()
  f.set('model', 'whisper-1')
  f.set('file', 'not a file')
  r = await post(f)
  t.equal(r.status, 400, 'file as a text field')
  t.equal(r.body.error.param, 'file')
  f = new FormData()
  f.set('model', 'whisper-1')
  f.set('file', wav(), 'a.wav')
  f.set('response_format', 'mp3')
  r = await post(f)
  t.equal(r.status, 400, 'a bad response_format')
  t.equal(r.body.error.param, 'response_format')
  f = new FormData()
  f.set('model', 'whisper-1')
  f.set('file', wav(), 'a.wav')
  f.set('temperature', 'warm')
  r = await post(f)
  t.equal(r.status, 400, 'a temperature that is no number')
  t.equal(r.body.error.param, 'temperature')
  const json = await jsonCall(gw.url, 'POST', '/v1/audio/transcriptions', { model: 'whisper-1', file: 'x' }, MASTER)
  t.equal(json.status, 415, 'a JSON body is refused: an upload is multipart')
  t.equal(json.body.error.type, 'invalid_request_error')
  t.equal(up.requestsTo('transcriptions').length, before, 'no upstream call')
})

t.test('speech: the audio streams through as the upstream sends it, priced per character', async (t) => {
  const input = 'Hello from the gateway. This sentence becomes audio.'
  const before = up.requestsTo('speech').length
  const response = await client.audio.speech.create({ model: 'tts-1', input, voice: 'alloy', response_format: 'mp3' })
  t.equal(response.headers.get('content-type'), 'audio/mpeg')
  near(t, Number(response.headers.get('x-litellm-response-cost')), input.length * TTS1_PER_CHAR, 'characters x $15 per 1M')
  const reader = response.body!.getReader()
  const first = await reader.read()
  const record = up.requestsTo('speech')[before]!
  t.ok(first.value && first.value.length > 0, 'the first bytes arrived')
  t.equal(record.closedAt, undefined, 'while the upstream was still sending (streamed, not buffered)')
  const parts: Buffer[] = [Buffer.from(first.value!)]
  for (;;) {
    const step = await reader.read()
    if (step.done) break
    parts.push(Buffer.from(step.value))
  }
  t.ok(Buffer.concat(parts).equals(expectedSpeech(input)), 'the exact audio bytes')
  t.same(record.body, { model: 'tts-1', input, voice: 'alloy', response_format: 'mp3' }, 'the upstream got the OpenAI fields only')
})

t.test('speech bad input: 400 before any call', async (t) => {
  const before = up.requestsTo('speech').length
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['input over 4096 characters', { model: 'tts-1', voice: 'alloy', input: 'a'.repeat(4097) }, 'input'],
    ['no voice', { model: 'tts-1', input: 'hi' }, 'voice'],
    ['a bad response_format', { model: 'tts-1', voice: 'alloy', input: 'hi', response_format: 'ogg' }, 'response_format'],
    ['speed out of range', { model: 'tts-1', voice: 'alloy', input: 'hi', speed: 5 }, 'speed'],
  ]
  for (const [what, body, param] of cases) {
    const r = await jsonCall(gw.url, 'POST', '/v1/audio/speech', body, MASTER)
    t.equal(r.status, 400, `${what}: 400`)
    t.equal(r.body?.error?.param, param, `${what}: names '${param}' (${r.body?.error?.message})`)
  }
  const long = await jsonCall(gw.url, 'POST', '/v1/audio/speech', cases[0]![1], MASTER)
  t.match(long.body.error.message, /maximum length 4096, but got a string with length 4097/)
  t.equal(up.requestsTo('speech').length, before, 'no upstream call')
})

t.test('upstream errors keep their status and retry-after; the key never shows', async (t) => {
  const e = await client.audio.transcriptions.create({ model: 'broken-whisper', file: await toFile(WAV, 'a.wav') }).catch((x: unknown) => x)
  t.ok(e instanceof OpenAI.RateLimitError, '429 -> RateLimitError')
  t.equal((e as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'), '7')
  const s = await client.audio.speech.create({ model: 'broken-tts', input: 'hi', voice: 'alloy' }).catch((x: unknown) => x)
  t.ok(s instanceof OpenAI.AuthenticationError, '401 -> AuthenticationError')
  t.notMatch((s as Error).message, /sk-upstream/)
})

t.test('a virtual key without access to the audio models is refused', async (t) => {
  const k = await generateKey(t, gw.url, { models: ['tts-1'] })
  const c = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  const e = await c.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(WAV, 'a.wav') }).catch((x: unknown) => x)
  t.ok(e instanceof OpenAI.PermissionDeniedError, `403 (${(e as Error).message})`)
  const ok = await c.audio.speech.create({ model: 'tts-1', input: 'fine', voice: 'alloy' })
  t.equal(Buffer.from(await ok.arrayBuffer()).length, expectedSpeech('fine').length, 'the allowed model works')
  const rows = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${k.token}`)
    return Array.isArray(r.body) && r.body.some((x: { status: string }) => x.status === 'success') ? r.body : undefined
  }, 10_000, 'the spend row')
  const row = rows.find((x: { status: string }) => x.status === 'success')
  t.equal(row.call_type, 'speech')
  t.equal(row.model, 'tts-1')
  near(t, row.spend, 4 * TTS1_PER_CHAR, 'logged at its price')
})

t.test('a transcription with LiteLLM metadata in the form: tags on its spend row, not sent upstream', async (t) => {
  const k = await generateKey(t, gw.url, {})
  const c = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.key, maxRetries: 0 })
  await c.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(WAV, 'a.wav'), response_format: 'text', ...({ metadata: JSON.stringify({ tags: ['meeting-42'] }) } as object) })
  t.notOk('metadata' in up.requestsTo('transcriptions').at(-1)!.form!, 'metadata stays in the gateway')
  const [row] = await eventually(async () => {
    const r = await admin(gw.url, 'GET', `/spend/logs?api_key=${k.token}`)
    return Array.isArray(r.body) && r.body.length > 0 ? r.body : undefined
  }, 10_000, 'the spend row')
  t.equal(row.call_type, 'transcription')
  t.same(row.request_tags, ['meeting-42'])
  near(t, row.spend, 2.5 * WHISPER_PER_SECOND, 'priced from the WAV header (text reply)')
})

t.test('/health calls audio deployments with minimal real requests; /model/info names their modes', async (t) => {
  const h = await jsonCall(gw.url, 'GET', '/health?model=whisper-1', undefined, MASTER)
  t.equal(h.body.healthy_count, 1, `whisper-1 healthy (${JSON.stringify(h.body.unhealthy_endpoints)})`)
  const file = up.requestsTo('transcriptions').at(-1)!.form!.file as ReceivedFile
  t.equal(file.filename, 'health.wav', 'a tenth of a second of silence, as a WAV')
  const s = await jsonCall(gw.url, 'GET', '/health?model=tts-1', undefined, MASTER)
  t.equal(s.body.healthy_count, 1, 'tts-1 healthy: the first audio bytes are enough')
  const info = await jsonCall(gw.url, 'GET', '/model/info', undefined, MASTER)
  const mode = (name: string) => info.body.data.find((d: { model_name: string }) => d.model_name === name)?.model_info.mode
  t.equal(mode('whisper-1'), 'audio_transcription')
  t.equal(mode('tts-1'), 'audio_speech')
  t.equal(mode('groq-whisper'), 'audio_transcription')
})
