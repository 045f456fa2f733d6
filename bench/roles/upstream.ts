/**
 * The fake OpenAI upstream, run as its own process (spawned with `node --import tsx`, PORT in the environment).
 * Fast by construction: cached response buffers, and the only look at the request is whether its body says
 * `"stream":true` (a byte search, no JSON parse).
 *
 * Paths under /slow/ answer with a slow stream instead (the 1,000-streams section): the role chunk at once, then
 * the 20 token chunks each 100-250 ms after the previous one, then finish, usage and [DONE].
 */
import http from 'node:http'
import { COMPLETION, STREAM, STREAM_HEAD, STREAM_TAIL, STREAM_TOKEN_CHUNKS } from '../lib/fixtures.js'

const STREAM_MARK = Buffer.from('"stream":true')
const JSON_HEADERS = { 'content-type': 'application/json', 'content-length': String(COMPLETION.length) }
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'content-length': String(STREAM.length) }
const SLOW_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }
/** Gap between two slow-stream chunks: 100 ms + up to 150 ms, drawn per chunk. */
const SLOW_MIN_MS = 100
const SLOW_SPREAD_MS = 150

/** Per-request read state kept on one object (no closure per request). */
interface Pending { res: http.ServerResponse; first: Buffer | null; rest: Buffer[] | null }

function onData(this: http.IncomingMessage & { pending: Pending }, c: Buffer): void {
  const p = this.pending
  if (p.first === null) p.first = c
  else (p.rest ??= [p.first]).push(c)
}

function onEnd(this: http.IncomingMessage & { pending: Pending }): void {
  const p = this.pending
  const body = p.rest ? Buffer.concat(p.rest) : p.first
  if (body !== null && body.indexOf(STREAM_MARK) !== -1) {
    p.res.writeHead(200, SSE_HEADERS)
    p.res.end(STREAM)
  } else {
    p.res.writeHead(200, JSON_HEADERS)
    p.res.end(COMPLETION)
  }
}

/** Slow stream: one timer at a time per response; stops if the client (the gateway) goes away. */
class SlowStream {
  private i = 0
  private timer: NodeJS.Timeout | null = null
  constructor(private readonly res: http.ServerResponse) {
    res.writeHead(200, SLOW_HEADERS)
    res.write(STREAM_HEAD)
    res.on('close', () => { if (this.timer) clearTimeout(this.timer) })
    this.schedule()
  }
  private schedule(): void {
    this.timer = setTimeout(() => this.tick(), SLOW_MIN_MS + Math.random() * SLOW_SPREAD_MS)
  }
  private tick(): void {
    this.timer = null
    if (this.res.destroyed) return
    if (this.i < STREAM_TOKEN_CHUNKS.length) {
      this.res.write(STREAM_TOKEN_CHUNKS[this.i++])
      this.schedule()
    } else {
      this.res.end(STREAM_TAIL)
    }
  }
}

const server = http.createServer((req, res) => {
  if (req.url!.startsWith('/slow/')) {
    req.resume()
    new SlowStream(res)
    return
  }
  ;(req as typeof req & { pending: Pending }).pending = { res, first: null, rest: null }
  req.on('data', onData)
  req.on('end', onEnd)
})
// Default keep-alive (5 s) would close idle pooled sockets between sections; the load is loopback only.
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT), '127.0.0.1', 2048, () => process.send?.('ready'))
// Spawned with an IPC channel: when the bench goes away (even killed), so does this process.
process.on('disconnect', () => process.exit(0))
