/**
 * The one way the app talks to the gateway: same-origin fetch with the session cookie, the CSRF token on every
 * write, and errors turned into ApiError carrying the gateway's OpenAI-shaped error.message. A 401 from any call
 * tells the app (it then checks /ui/session and shows the sign-in screen if the session is gone).
 */

let csrfToken = null
let unauthorized = () => {}

/** The token /ui/login or /ui/session returned; sent as x-csrf-token on writes. */
export function setCsrf(token) {
  csrfToken = token || null
}

/** Called with the failing path when a call answers 401. */
export function onUnauthorized(fn) {
  unauthorized = fn
}

export class ApiError extends Error {
  constructor(status, message, error) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = error?.code ?? null
    this.type = error?.type ?? null
    this.param = error?.param ?? null
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/** `path` plus the query's set values (undefined, null and '' are left out). */
export function withQuery(path, query) {
  if (!query) return path
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue
    q.set(k, String(v))
  }
  const s = q.toString()
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path
}

/** The message a failed response carries: OpenAI's error.message, LiteLLM's detail, or the status. */
function messageOf(status, data, text) {
  const e = data?.error
  if (e && typeof e === 'object' && typeof e.message === 'string') return e.message
  if (typeof e === 'string') return e
  if (typeof data?.detail === 'string') return data.detail
  if (typeof data?.detail?.error === 'string') return data.detail.error
  if (typeof data?.message === 'string') return data.message
  return text ? `HTTP ${status}: ${text.slice(0, 200)}` : `HTTP ${status}`
}

export async function request(method, path, { query, body, signal } = {}) {
  const headers = { accept: 'application/json' }
  const init = { method, headers, credentials: 'same-origin', signal }
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  if (!SAFE.has(method) && csrfToken) headers['x-csrf-token'] = csrfToken
  let res
  try {
    res = await fetch(withQuery(path, query), init)
  } catch (err) {
    if (err?.name === 'AbortError') throw err
    throw new ApiError(0, 'The gateway cannot be reached. Check that it is running and try again.', null)
  }
  const text = await res.text()
  let data = null
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = null
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, messageOf(res.status, data, data ? '' : text), data?.error)
    if (res.status === 401 && !path.startsWith('/ui/login') && !path.startsWith('/ui/session')) unauthorized(path)
    throw err
  }
  return data ?? {}
}

export const get = (path, query, opts) => request('GET', path, { ...opts, query })
export const post = (path, body) => request('POST', path, { body: body ?? {} })
export const put = (path, body) => request('PUT', path, { body: body ?? {} })
export const del = (path) => request('DELETE', path)

/** The current session ({role, csrf, expires_at}), or null when not signed in. */
export async function currentSession() {
  try {
    return await get('/ui/session')
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null
    throw err
  }
}

export const signIn = (key) => post('/ui/login', { key })
export const signOut = () => post('/ui/logout', {})
