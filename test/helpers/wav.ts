/**
 * A real, small WAV for audio tests: a RIFF/WAVE header and 16-bit mono PCM samples of a 440 Hz sine wave, so the
 * bytes are audio any decoder would play and the gateway's WAV-header reading meets a genuine file.
 */
/** `seconds` of a 440 Hz sine wave at `sampleRate` (16 kHz), 16-bit mono PCM. */
export function sineWav(seconds: number, sampleRate = 16_000): Buffer {
  const samples = Math.round(seconds * sampleRate)
  const b = Buffer.alloc(44 + samples * 2)
  b.write('RIFF', 0, 'ascii')
  b.writeUInt32LE(36 + samples * 2, 4)
  b.write('WAVE', 8, 'ascii')
  b.write('fmt ', 12, 'ascii')
  b.writeUInt32LE(16, 16)
  b.writeUInt16LE(1, 20) // PCM
  b.writeUInt16LE(1, 22) // mono
  b.writeUInt32LE(sampleRate, 24)
  b.writeUInt32LE(sampleRate * 2, 28)
  b.writeUInt16LE(2, 32)
  b.writeUInt16LE(16, 34)
  b.write('data', 36, 'ascii')
  b.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) b.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / sampleRate) * 12_000), 44 + i * 2)
  return b
}

