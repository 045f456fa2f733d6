/**
 * Shared by the Cohere tests: the recorded v2 chat examples in ../shared/data/cohere/ (request, response body or
 * stream event list, from Cohere's API reference), a v2 embed reply shaped like the reference's example, and a
 * Target builder.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ResponseMeta, Target } from '../../providers/types.js'

export interface ChatFixture {
  request: Record<string, unknown> & { messages: Array<Record<string, unknown>> }
  response: { body?: Record<string, any>; stream?: Array<{ event: string; data: Record<string, any> }> }
}

export function fixture(name: 'text' | 'tools' | 'text.stream' | 'tools.stream'): ChatFixture {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../../../shared/data/cohere/v2-chat.${name}.json`, import.meta.url)), 'utf8'))
}

/** The recorded stream as the SSE bytes Cohere sends: `event:` and `data:` lines, a blank line after each. */
export function sseText(events: NonNullable<ChatFixture['response']['stream']>): string {
  return events.map((e) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`).join('')
}

/**
 * A /v2/embed reply as the API reference's example gives it ("hello", "goodbye"; `meta.billed_units.input_tokens`
 * 2, api_version 2), with the 1024-float vectors cut to 4 so the test can state them.
 */
export const EMBED_REPLY = {
  id: 'da6e531f-54c6-4a73-bf92-f60566d8d753',
  texts: ['hello', 'goodbye'],
  embeddings: { float: [[0.016296387, -0.008354187, -0.04699707, -0.07104492], [0.0025405884, -0.013046265, 0.0016040802, -0.05545044]] },
  meta: { api_version: { version: '2', is_experimental: true }, billed_units: { input_tokens: 2 } },
  response_type: 'embeddings_by_type',
}

export function target(over: Partial<Target> = {}): Target {
  return {
    id: 'co', modelName: 'command', provider: 'cohere', model: 'command-a-03-2025', apiKey: 'co-test-key',
    timeoutMs: 10_000, streamTimeoutMs: 10_000, weight: 1, dropParams: false, additionalDropParams: [],
    extraHeaders: {}, defaults: {}, modelInfo: {}, ...over,
  }
}

export function meta(t: Target = target()): ResponseMeta {
  return { target: t, requestId: 'req-1', created: 1_700_000_000 }
}
