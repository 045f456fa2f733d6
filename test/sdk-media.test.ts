/**
 * The SDK's media functions from the package entry (`imageGeneration`, `transcription`, `speech`, `moderation`),
 * no server, against the fake OpenAI upstream on 127.0.0.1 (api_base + api_key per call): what goes up, what comes
 * back (OpenAI's schemas), the price in `_hidden_params`, each accepted file form for transcription, speech as a
 * streamed fetch Response, errors as the exported classes.
 */
import t from 'tap'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { toFile } from 'openai'
import {
  imageGeneration, transcription, speech, moderation, BadRequestError, AuthenticationError, UploadFile, type HiddenParams,
} from '../core/index.js'
import { DEFAULT_TRANSCRIPT, errorReply, expectedSpeech, startUpstream, type ReceivedFile } from './helpers/upstream.js'
import { assertSchema } from './helpers/openapi.js'
import { sineWav } from './helpers/wav.js'

const up = await startUpstream(t)
const broken = await startUpstream(t, { speech: errorReply(401, { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' }) })
const conn = { api_base: up.url, api_key: 'sk-upstream' }
const WAV = sineWav(1.5)
const hidden = (o: object) => (o as { _hidden_params?: HiddenParams })._hidden_params

t.test('imageGeneration', async (t) => {
  const r = await imageGeneration({ model: 'openai/dall-e-3', prompt: 'a kite', size: '1024x1024', quality: 'standard', ...conn })
  assertSchema(t, 'ImagesResponse', r)
  t.equal(up.requestsTo('images').at(-1)!.body.model, 'dall-e-3')
  t.notOk(up.requestsTo('images').at(-1)!.body.api_key, 'call options are not sent')
  t.ok(Math.abs(hidden(r)!.response_cost - 0.04) < 1e-4, `priced: ${hidden(r)!.response_cost}`)
  t.notOk(Object.keys(r).includes('_hidden_params'), 'hidden params stay out of JSON')
})

t.test('transcription: Buffer + filename, File (toFile), ReadStream; text formats give a string', async (t) => {
  const a = await transcription({ model: 'openai/whisper-1', file: WAV, filename: 'buf.wav', ...conn })
  assertSchema(t, 'CreateTranscriptionResponseJson', a)
  t.equal(a.text, DEFAULT_TRANSCRIPT)
  let f = up.requestsTo('transcriptions').at(-1)!.form!
  t.equal((f.file as ReceivedFile).filename, 'buf.wav')
  t.ok((f.file as ReceivedFile).data.equals(WAV), 'Buffer: exact bytes')
  t.equal(f.model, 'whisper-1')
  t.ok(hidden(a)!.response_cost > 0, 'priced')

  const b = await transcription({ model: 'openai/whisper-1', file: await toFile(WAV, 'file.wav', { type: 'audio/wav' }), response_format: 'verbose_json', ...conn })
  t.equal(b.duration, 1.5)
  f = up.requestsTo('transcriptions').at(-1)!.form!
  t.equal((f.file as ReceivedFile).filename, 'file.wav', 'File: its own name')
  t.equal((f.file as ReceivedFile).contentType, 'audio/wav')

  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-sdk-audio-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'from-disk.wav')
  await writeFile(file, WAV)
  const text: string = await transcription({ model: 'openai/whisper-1', file: createReadStream(file), response_format: 'text', ...conn })
  t.equal(text, `${DEFAULT_TRANSCRIPT}\n`, 'a string for text')
  f = up.requestsTo('transcriptions').at(-1)!.form!
  t.equal((f.file as ReceivedFile).filename, 'from-disk.wav', 'ReadStream: the path’s name')
  t.ok((f.file as ReceivedFile).data.equals(WAV), 'ReadStream: exact bytes')

  const sniffed = await transcription({ model: 'openai/whisper-1', file: new Uint8Array(WAV), ...conn })
  t.equal(sniffed.text, DEFAULT_TRANSCRIPT)
  t.equal((up.requestsTo('transcriptions').at(-1)!.form!.file as ReceivedFile).filename, 'audio.wav', 'no name: one from the bytes’ format')

  const up2 = new UploadFile(WAV, 'held.wav', 'audio/wav')
  t.equal((await transcription({ model: 'openai/whisper-1', file: up2, ...conn })).text, DEFAULT_TRANSCRIPT, 'an UploadFile')
})

t.test('transcription bad input is a BadRequestError before any call', async (t) => {
  const before = up.requestsTo('transcriptions').length
  await t.rejects(transcription({ model: 'openai/whisper-1', ...conn } as never), BadRequestError, 'no file')
  await t.rejects(transcription({ model: 'openai/whisper-1', file: 42 as never, ...conn }), BadRequestError, 'a number is no file')
  await t.rejects(transcription({ model: 'openai/whisper-1', file: new Uint8Array(0), ...conn }), BadRequestError, 'an empty file')
  await t.rejects(transcription({ model: 'openai/whisper-1', file: WAV, response_format: 'mp3' as never, ...conn }), BadRequestError, 'a bad format')
  t.equal(up.requestsTo('transcriptions').length, before)
})

t.test('speech: a fetch Response streaming the audio, like openai.audio.speech.create', async (t) => {
  const input = 'Speak this, please.'
  const r = await speech({ model: 'openai/tts-1', input, voice: 'alloy', ...conn })
  t.ok(r instanceof Response)
  t.equal(r.headers.get('content-type'), 'audio/mpeg')
  t.ok(Math.abs(hidden(r)!.response_cost - input.length * 15e-6) < 1e-12, 'priced per character')
  t.ok(Buffer.from(await r.arrayBuffer()).equals(expectedSpeech(input)), 'the exact bytes')
  await t.rejects(speech({ model: 'openai/tts-1', input: 'x'.repeat(4097), voice: 'alloy', ...conn }), BadRequestError, 'input too long')
  await t.rejects(speech({ model: 'openai/tts-1', input: 'hi', voice: 'alloy', api_base: broken.url, api_key: 'sk-upstream' }), AuthenticationError)
})

t.test('moderation: model defaults to omni-moderation-latest', async (t) => {
  const r = await moderation({ input: 'how to kill a process', ...conn })
  assertSchema(t, 'CreateModerationResponse', r)
  t.equal(r.results[0]!.flagged, true)
  t.equal(up.requestsTo('moderations').at(-1)!.body.model, 'omni-moderation-latest')
  t.equal(hidden(r)!.response_cost, 0, 'free')
  await t.rejects(moderation({ model: 'openai/omni-moderation-latest', ...conn } as never), BadRequestError, 'no input')
})
