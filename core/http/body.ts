/**
 * Read a request body, bounded: as JSON (readJsonBody), or as bytes (readBody: a multipart upload, parsed in
 * multipart.ts). Any content type is accepted for JSON (curl -d sends form encoding; LiteLLM parses it
 * as JSON all the same). An oversized body is read to its end and discarded before the 413 is sent, so the client
 * sees the error instead of a reset connection; past a hard cap the connection is cut instead.
 *
 * The parsed body is walked once (sanitizeBody): nesting past MAX_DEPTH is a 400, and, for the management API
 * (`dropProto`), `__proto__` keys are dropped. Model calls keep them: their bodies are only ever copied by spread
 * and own-property writes (which keep `__proto__` an ordinary field) and go upstream as sent.
 */
import type { IncomingMessage } from 'node:http'
import { gatewayError } from '../errors.js'

/** Past this many bytes beyond the limit we stop reading and close the connection. */
const DISCARD_CAP = 64 * 1024 * 1024 // 64 MiB

export async function readJsonBody(req: IncomingMessage, limit: number, dropProto = true): Promise<Record<string, unknown>> {
  const bytes = await readBody(req, limit, 'JSON')
  const text = bytes.toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw gatewayError('GW_ERR_BAD_JSON',
      'We could not parse the JSON body of your request. The body must be a valid JSON object (send Content-Type: application/json).')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw gatewayError('GW_ERR_VALIDATION', 'The request body must be a JSON object.', { openaiCode: 'invalid_type' })
  }
  if (!sanitizeBody(parsed, 1, dropProto)) {
    throw gatewayError('GW_ERR_BODY_TOO_DEEP', `The request body nests arrays and objects more than ${MAX_DEPTH} levels deep.`)
  }
  return parsed as Record<string, unknown>
}

/**
 * The request body's bytes, at most `limit` (see the header comment for what happens past it). `kind` names the
 * expected body in the error for a compressed one ('JSON', 'multipart/form-data').
 */
export function readBody(req: IncomingMessage, limit: number, kind: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    const tooLarge = () =>
      gatewayError('GW_ERR_BODY_TOO_LARGE', `Request body too large: the limit is ${limit} bytes.`, { headers: { connection: 'close' } })
    if (declared > limit + DISCARD_CAP) {
      req.resume()
      reject(tooLarge())
      return
    }
    const enc = req.headers['content-encoding']
    if (enc && enc !== 'identity') {
      req.resume()
      reject(gatewayError('GW_ERR_CONTENT_TYPE', `Content-Encoding '${enc}' is not supported; send an uncompressed ${kind} body.`))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    let over = false
    const onData = (c: Buffer) => {
      size += c.length
      if (over) {
        if (size > limit + DISCARD_CAP) {
          cleanup()
          req.destroy()
          reject(tooLarge())
        }
        return
      }
      if (size > limit) {
        over = true
        chunks.length = 0
        return
      }
      chunks.push(c)
    }
    const onEnd = () => {
      cleanup()
      if (over) return reject(tooLarge())
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(gatewayError('GW_ERR_CLIENT_CLOSED', 'The client closed the request while sending it', { cause: err }))
    }
    const onClose = () => {
      if (!req.complete) onError(new Error('aborted'))
    }
    function cleanup() {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

/**
 * Deepest nesting of arrays and objects accepted, levels (the body itself is level 1). JSON.parse reads any depth,
 * but recursive code after it does not: JSON.stringify of the upstream body or a stored record overflows the stack
 * at a few thousand levels, structuredClone at about a thousand, and each is then a 500. Real bodies stay far below
 * this (a chat message with an image part is 6 levels; a tool schema adds 2 per nested property); serde_json's
 * default limit is 128.
 */
export const MAX_DEPTH = 256

/**
 * One walk over the parsed body, in place: false when it nests deeper than MAX_DEPTH; every own `__proto__` key is
 * deleted on the way. JSON.parse keeps `"__proto__"` as an ordinary own key, but the first `copy[k] = v` downstream
 * (a merge, an extras copy) would make its value the copy's prototype, and for..in loops (stores merging a patch,
 * the logger) would then read the attacker's fields as the record's. No OpenAI or LiteLLM field has that name.
 * Costs one pass over the entries of each array and object (strings are not scanned): microseconds for a chat body.
 */
export function sanitizeBody(value: object, depth: number, dropProto = true): boolean {
  if (depth > MAX_DEPTH) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      if (typeof v === 'object' && v !== null && !sanitizeBody(v, depth + 1, dropProto)) return false
    }
    return true
  }
  const o = value as Record<string, unknown>
  if (dropProto && Object.hasOwn(o, '__proto__')) delete o.__proto__
  for (const k in o) {
    const v = o[k]
    if (typeof v === 'object' && v !== null && !sanitizeBody(v, depth + 1, dropProto)) return false
  }
  return true
}
