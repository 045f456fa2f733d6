/**
 * An uploaded file (a transcription's audio) as the gateway holds it between the client and the provider: the
 * bytes, the file name and the content type, all three of which go upstream unchanged (providers detect the audio
 * format from the name's extension). It serialises as a summary, never as its bytes: request bodies are logged and
 * stored as JSON in places (logging sinks, spend metadata), and megabytes of audio must not end up there.
 */
import { basename } from 'node:path'
import { sniffAudio } from './audio.js'

export class UploadFile {
  constructor(
    readonly data: Uint8Array,
    readonly filename: string,
    readonly contentType: string,
  ) {}

  get size(): number {
    return this.data.byteLength
  }

  toJSON(): { filename: string; content_type: string; bytes: number } {
    return { filename: this.filename, content_type: this.contentType, bytes: this.data.byteLength }
  }
}

/**
 * What the SDK's `transcription({ file })` takes: bytes (Buffer, Uint8Array, ArrayBuffer), a Blob or File (the
 * `openai` package's `toFile()` result included), a readable stream (fs.createReadStream), any async iterable of
 * byte chunks, or an UploadFile.
 */
export type Uploadable = UploadFile | Uint8Array | ArrayBuffer | Blob | AsyncIterable<Uint8Array | string>

/** Read an Uploadable into an UploadFile. The name: `filename`, else the File's or stream's own, else one from the bytes' format. */
export async function toUpload(file: Uploadable, filename?: string): Promise<UploadFile> {
  if (file instanceof UploadFile) return filename ? new UploadFile(file.data, filename, file.contentType) : file
  let data: Uint8Array
  let ownName: string | undefined
  let ownType = ''
  if (file instanceof Uint8Array) data = file
  else if (file instanceof ArrayBuffer) data = new Uint8Array(file)
  else if (typeof Blob !== 'undefined' && file instanceof Blob) {
    data = new Uint8Array(await file.arrayBuffer())
    ownType = file.type
    const name = (file as { name?: unknown }).name
    if (typeof name === 'string' && name !== '') ownName = name
  } else if (file && typeof (file as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const chunks: Buffer[] = []
    for await (const c of file as AsyncIterable<Uint8Array | string>) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength))
    data = Buffer.concat(chunks)
    // fs.ReadStream carries the path it reads.
    const path = (file as { path?: unknown }).path
    if (typeof path === 'string' && path !== '') ownName = basename(path)
    else if (Buffer.isBuffer(path)) ownName = basename(path.toString('utf8'))
  } else {
    throw new TypeError('file must be a Buffer, Uint8Array, ArrayBuffer, Blob, File or a readable stream')
  }
  const sniffed = sniffAudio(data)
  const name = filename ?? ownName ?? `audio.${sniffed?.ext ?? 'bin'}`
  const type = ownType || sniffed?.contentType || 'application/octet-stream'
  return new UploadFile(data, name, type)
}
