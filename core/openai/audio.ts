/**
 * What the gateway can tell about an audio file without decoding it: its format from the first bytes, and its
 * length, which transcription is billed by (USD per second of audio).
 *
 * - WAV (RIFF/WAVE, what a microphone capture or `toFile(wav)` sends): exact, from the header (data bytes / byte rate).
 * - Compressed formats: the length is in frame headers spread through the file; parsing them is a demuxer's job.
 *   Estimated instead from the size at a typical bitrate for the format (`typical`), and bounded at the lowest
 *   bitrate an encoder offers for it (`min`), which no real file goes below, for worst-case budget holds.
 * A verbose_json reply's `duration` (or a `usage.seconds`) replaces both once the provider has answered.
 */

export interface AudioFormat {
  ext: string
  contentType: string
}

/** Bytes per second of audio per format: a typical encoding (estimates) and the lowest plausible one (bounds). */
const RATES: Record<string, { typical: number; min: number }> = {
  // 128 kbit/s typical; MPEG-2.5 Layer III goes down to 8 kbit/s.
  mp3: { typical: 16_000, min: 1_000 },
  // Opus/Vorbis speech: 32 kbit/s typical; Opus goes down to 6 kbit/s.
  ogg: { typical: 4_000, min: 750 },
  webm: { typical: 4_000, min: 750 },
  // AAC 128 kbit/s typical; HE-AAC v2 goes down to about 8 kbit/s.
  m4a: { typical: 16_000, min: 1_000 },
  // FLAC: CD audio compresses to about 700 kbit/s; 8 kHz mono speech at 4:1 is about 32 kbit/s.
  flac: { typical: 88_000, min: 4_000 },
  // A WAV whose header cannot be read: 16 kHz mono 16-bit PCM typical, 8 kHz 8-bit (mu-law telephony) at least.
  wav: { typical: 32_000, min: 8_000 },
}
const UNKNOWN = { typical: 16_000, min: 750 }

function ascii(b: Uint8Array, at: number, s: string): boolean {
  if (b.length < at + s.length) return false
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false
  return true
}

/** The audio format by magic bytes, or null when unknown. */
export function sniffAudio(b: Uint8Array): AudioFormat | null {
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE')) return { ext: 'wav', contentType: 'audio/wav' }
  if (ascii(b, 0, 'ID3') || (b.length > 1 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x06) !== 0)) {
    return { ext: 'mp3', contentType: 'audio/mpeg' }
  }
  if (ascii(b, 0, 'OggS')) return { ext: 'ogg', contentType: 'audio/ogg' }
  if (ascii(b, 0, 'fLaC')) return { ext: 'flac', contentType: 'audio/flac' }
  if (ascii(b, 4, 'ftyp')) return { ext: 'm4a', contentType: 'audio/mp4' }
  if (b.length > 3 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return { ext: 'webm', contentType: 'audio/webm' }
  return null
}

/**
 * Seconds of audio in a WAV file, from its `fmt ` byte rate and its `data` chunk size; null when the bytes are no
 * readable WAV. A data size past the end of the file (a streamed WAV writes 0xFFFFFFFF) counts what is there.
 */
export function wavSeconds(b: Uint8Array): number | null {
  if (!ascii(b, 0, 'RIFF') || !ascii(b, 8, 'WAVE')) return null
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  let byteRate = 0
  let at = 12
  while (at + 8 <= b.length) {
    const size = view.getUint32(at + 4, true)
    if (ascii(b, at, 'fmt ') && at + 16 <= b.length) byteRate = view.getUint32(at + 16, true)
    else if (ascii(b, at, 'data')) {
      if (byteRate === 0) return null
      const available = b.length - (at + 8)
      return Math.min(size, available) / byteRate
    }
    // Chunks are padded to an even size.
    at += 8 + size + (size & 1)
  }
  return null
}

function extOf(filename: string): string {
  const dot = filename.lastIndexOf('.')
  const ext = dot >= 0 ? filename.slice(dot + 1).toLowerCase() : ''
  if (ext === 'mpeg' || ext === 'mpga') return 'mp3'
  if (ext === 'opus' || ext === 'oga') return 'ogg'
  if (ext === 'mp4' || ext === 'aac') return 'm4a'
  return ext
}

function ratesOf(data: Uint8Array, filename: string): { typical: number; min: number } {
  return RATES[sniffAudio(data)?.ext ?? extOf(filename)] ?? UNKNOWN
}

/** The audio's length in seconds: exact for a WAV, else estimated from its size (see the header comment). */
export function audioSeconds(data: Uint8Array, filename: string): { seconds: number; exact: boolean } {
  const wav = wavSeconds(data)
  if (wav !== null) return { seconds: wav, exact: true }
  return { seconds: data.byteLength / ratesOf(data, filename).typical, exact: false }
}

/** Seconds the audio cannot exceed: exact for a WAV, else its size at the format's lowest bitrate. */
export function audioSecondsBound(data: Uint8Array, filename: string): number {
  return wavSeconds(data) ?? data.byteLength / ratesOf(data, filename).min
}

/** A WAV of `seconds` of silence, 16 kHz mono 16-bit PCM: the smallest real audio a health check can send. */
export function silentWav(seconds: number): Uint8Array {
  const rate = 16_000
  const data = Math.round(seconds * rate) * 2
  const b = Buffer.alloc(44 + data)
  b.write('RIFF', 0, 'ascii')
  b.writeUInt32LE(36 + data, 4)
  b.write('WAVEfmt ', 8, 'ascii')
  b.writeUInt32LE(16, 16) // fmt chunk size
  b.writeUInt16LE(1, 20) // PCM
  b.writeUInt16LE(1, 22) // mono
  b.writeUInt32LE(rate, 24)
  b.writeUInt32LE(rate * 2, 28) // byte rate
  b.writeUInt16LE(2, 32) // block align
  b.writeUInt16LE(16, 34) // bits per sample
  b.write('data', 36, 'ascii')
  b.writeUInt32LE(data, 40)
  return b
}
