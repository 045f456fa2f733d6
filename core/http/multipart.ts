/**
 * A multipart/form-data request body (an audio upload) read into the fields of a request record, bounded by the
 * body limit like a JSON body. Parsed by the platform's own form-data parser (undici's, behind `Request#formData`),
 * so no parser of our own and no dependency. A file part becomes an UploadFile with its name and content type;
 * a `name[]` field (and a name given more than once) becomes an array, as the official clients send arrays.
 */
import type { IncomingMessage } from 'node:http'
import { gatewayError } from '../errors.js'
import { UploadFile } from '../openai/upload.js'
import { readBody } from './body.js'

const MULTIPART = 'multipart/form-data'
/** The URL a Request needs; never fetched. */
const PARSE_URL = 'http://switchyard.invalid/'

export async function readFormBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? ''
  if (!type.toLowerCase().startsWith(MULTIPART)) {
    req.resume()
    throw gatewayError('GW_ERR_CONTENT_TYPE',
      `This endpoint takes a file upload: send the request as ${MULTIPART} (got ${type ? `'${type}'` : 'no Content-Type'}).`)
  }
  const bytes = await readBody(req, limit, MULTIPART)
  let form: FormData
  try {
    form = await new Request(PARSE_URL, { method: 'POST', headers: { 'content-type': type }, body: bytes }).formData()
  } catch {
    throw gatewayError('GW_ERR_VALIDATION', `The ${MULTIPART} body could not be parsed: check its boundary and parts.`, { openaiCode: 'invalid_multipart' })
  }
  const out: Record<string, unknown> = {}
  for (const [name, value] of form) {
    const list = name.endsWith('[]')
    const key = list ? name.slice(0, -2) : name
    // No OpenAI field has this name; as an own key it would only confuse code that copies the record.
    if (key === '__proto__' || key === '') continue
    const v = typeof value === 'string' ? value : new UploadFile(new Uint8Array(await value.arrayBuffer()), value.name, value.type)
    const had = Object.hasOwn(out, key) ? out[key] : undefined
    if (had === undefined) out[key] = list ? [v] : v
    else if (Array.isArray(had)) had.push(v)
    else out[key] = [had, v]
  }
  return out
}
