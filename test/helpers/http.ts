/** One JSON call to a running gateway, the way management scripts make them; the reply parsed when it is JSON. */
export interface JsonReply {
  status: number
  /** The parsed JSON, or the raw text when the body is not JSON (kept for assertion messages). */
  body: any
}

/**
 * `body` as an object is sent as JSON; as a string, sent as is (malformed-JSON tests). `key` null sends no
 * Authorization header.
 */
export async function jsonCall(base: string, method: string, path: string, body?: unknown, key?: string | null): Promise<JsonReply> {
  const headers: Record<string, string> = {}
  if (key) headers.authorization = `Bearer ${key}`
  let payload: string | undefined
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = typeof body === 'string' ? body : JSON.stringify(body)
  }
  const res = await fetch(`${base}${path}`, { method, headers, body: payload })
  const text = await res.text()
  try {
    return { status: res.status, body: JSON.parse(text) }
  } catch {
    return { status: res.status, body: text }
  }
}
