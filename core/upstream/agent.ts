/**
 * The upstream dispatcher: one undici Agent for the process, which keeps one keep-alive Pool per origin.
 * Timeouts per request come from the deployment (AbortSignal); these are the transport's own limits.
 */
import { Agent, type Dispatcher } from 'undici'

export interface AgentOptions {
  /** Max sockets per origin. */
  connections?: number
  /** Idle keep-alive sockets close after this many milliseconds. */
  keepAliveTimeoutMs?: number
  /** Milliseconds to establish a TCP/TLS connection. */
  connectTimeoutMs?: number
}

export function createAgent(o: AgentOptions = {}): Dispatcher {
  return new Agent({
    connections: o.connections ?? 256,
    keepAliveTimeout: o.keepAliveTimeoutMs ?? 30_000, // 30 s
    keepAliveMaxTimeout: 600_000, // 10 min
    connect: { timeout: o.connectTimeoutMs ?? 10_000 }, // 10 s
    // Deployment timeouts are enforced with AbortSignals, so the header wait is unbounded here; a stream that
    // goes silent for 5 minutes between two chunks is cut.
    headersTimeout: 0,
    bodyTimeout: 300_000,
  })
}
