/**
 * multipart/form-data for an upstream call (RFC 7578), built as one byte buffer: providers that sign the body
 * (authorize() gets the exact bytes) and undici both want it whole, and an audio upload is already in memory.
 *
 * Field rules, as the official OpenAI clients encode a request: an UploadFile is a file part (its name and content
 * type kept); an array is one `name[]` field per element (`timestamp_granularities[]`, `include[]`); an object is
 * its JSON text (`chunking_strategy`); anything else its string form; null and undefined are left out.
 */
import { randomBytes } from 'node:crypto'
import { UploadFile } from '../openai/upload.js'

const CRLF = '\r\n'
const ESCAPED = /[\r\n"]/g

/** Names and file names are quoted; a quote or line break in them is percent-encoded, as browsers do (WHATWG). */
function quoted(s: string): string {
  return s.replace(ESCAPED, (c) => (c === '"' ? '%22' : c === '\r' ? '%0D' : '%0A'))
}

function text(v: unknown): string {
  return typeof v === 'object' ? JSON.stringify(v) : String(v)
}

export function encodeMultipart(body: Record<string, unknown>): { payload: Buffer; contentType: string } {
  const boundary = `----switchyard${randomBytes(12).toString('hex')}`
  const parts: Buffer[] = []
  const field = (name: string, value: string) => {
    parts.push(Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="${quoted(name)}"${CRLF}${CRLF}${value}${CRLF}`, 'utf8'))
  }
  for (const key of Object.keys(body)) {
    const v = body[key]
    if (v === undefined || v === null) continue
    if (v instanceof UploadFile) {
      parts.push(Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="${quoted(key)}"; filename="${quoted(v.filename)}"${CRLF}` +
        `Content-Type: ${v.contentType || 'application/octet-stream'}${CRLF}${CRLF}`, 'utf8'))
      parts.push(Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength))
      parts.push(Buffer.from(CRLF))
    } else if (Array.isArray(v)) {
      for (const item of v) if (item !== undefined && item !== null) field(`${key}[]`, text(item))
    } else {
      field(key, text(v))
    }
  }
  parts.push(Buffer.from(`--${boundary}--${CRLF}`))
  return { payload: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` }
}
