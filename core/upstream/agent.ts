/**
 * The upstream dispatcher: one undici Agent for the process, which keeps one keep-alive Pool per origin.
 * Timeouts per request come from the deployment (AbortSignal); these are the transport's own limits.
 *
 * The Pool's socket count per origin is unlimited by default (`connections: null`, as undici allows): a fixed cap
 * queues the call past it inside undici, unseen, so 1,000 concurrent slow streams to one provider would wait on
 * each other. A deployment that must cap it sets `server.upstream_max_connections`; dispatch then warns when the
 * cap is reached (core/upstream/dispatch.ts).
 */
import { Agent, type Dispatcher } from 'undici'

export interface AgentOptions {
  /** Max sockets per origin; null or unset = unlimited. */
  connections?: number | null
  /** Idle keep-alive sockets close after this many milliseconds. */
  keepAliveTimeoutMs?: number
  /** Milliseconds to establish a TCP/TLS connection. */
  connectTimeoutMs?: number
}

export function createAgent(o: AgentOptions = {}): Dispatcher {
  return new Agent({
    connections: o.connections ?? null,
    keepAliveTimeout: o.keepAliveTimeoutMs ?? 30_000, // 30 s
    keepAliveMaxTimeout: 600_000, // 10 min
    connect: { timeout: o.connectTimeoutMs ?? 10_000 }, // 10 s
    // Deployment timeouts are set per request by dispatch (headersTimeout / bodyTimeout), so the header wait is
    // unbounded here; a call that sets none and goes silent for 5 minutes between two chunks is cut.
    headersTimeout: 0,
    bodyTimeout: 300_000,
  })
}
