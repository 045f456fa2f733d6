/**
 * The bare pass-through proxy, run as its own process (PORT, UPSTREAM in the environment): node:http in, an undici
 * Pool out, the request body piped and the response bytes copied, nothing parsed. It is the floor the gateway's
 * ratio is measured against: the least any Node proxy does per call.
 */
import http from 'node:http'
import { Pool } from 'undici'

/** Sockets to the upstream: more than the load's connections, so the pool never queues. */
const UPSTREAM_CONNECTIONS = 2048
const upstream = new Pool(process.env.UPSTREAM!, { connections: UPSTREAM_CONNECTIONS })
const HEADERS = { 'content-type': 'application/json' }

const server = http.createServer(async (req, res) => {
  try {
    const r = await upstream.request({ method: 'POST', path: '/v1/chat/completions', headers: HEADERS, body: req })
    res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type']) })
    for await (const c of r.body) res.write(c)
    res.end()
  } catch {
    if (!res.headersSent) res.writeHead(502)
    res.end()
  }
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT), '127.0.0.1', 2048, () => process.send?.('ready'))
process.on('disconnect', () => process.exit(0))
