/**
 * Read a JSON request body, bounded. Any content type is accepted (curl -d sends form encoding; LiteLLM parses it
 * as JSON all the same). An oversized body is read to its end and discarded before the 413 is sent, so the client
 * sees the error instead of a reset connection; past a hard cap the connection is cut instead.
 */
import type { IncomingMessage } from 'node:http'
import { gatewayError } from '../errors.js'

/** Past this many bytes beyond the limit we stop reading and close the connection. */
const DISCARD_CAP = 64 * 1024 * 1024 // 64 MiB

export function readJsonBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
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
      reject(gatewayError('GW_ERR_CONTENT_TYPE', `Content-Encoding '${enc}' is not supported; send an uncompressed JSON body.`))
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
      const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8')
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        return reject(gatewayError('GW_ERR_BAD_JSON',
          'We could not parse the JSON body of your request. The body must be a valid JSON object (send Content-Type: application/json).'))
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return reject(gatewayError('GW_ERR_VALIDATION', 'The request body must be a JSON object.', { openaiCode: 'invalid_type' }))
      }
      resolve(parsed as Record<string, unknown>)
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
