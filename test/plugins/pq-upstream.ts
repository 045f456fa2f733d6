/**
 * Shared by the priority-queue suites: the per-minute tests' fake upstream (records arrivals by tag, the first word of
 * the prompt, with their real arrival time; holds a call until the test releases it (`hold(tag)`), else `holdMs`;
 * reports a chosen total of tokens for a tag (`usageOf`) so real usage can correct an estimate), the counter the
 * other suites' upstreams fill, and polling of /queue/status.
 */
import { defaultChat, jsonReply, type Behaviour } from '../helpers/upstream.js'
import { jsonCall } from '../helpers/http.js'

export interface TaggedUpstream {
  behaviour: Behaviour
  arrivals: string[]
  arrivedAt: Map<string, number>
  /** Tags whose reply reports this many total tokens (else the fake upstream's own count). */
  usageOf: Map<string, number>
  /** Hold the call tagged `tag` until the returned function is called. */
  hold(tag: string): () => void
}

export const tagOf = (body: any) => String(body?.messages?.[0]?.content ?? '').split(' ')[0]!

export function taggedUpstream(holdMs: number): TaggedUpstream {
  const arrivals: string[] = []
  const arrivedAt = new Map<string, number>()
  const holds = new Map<string, Promise<void>>()
  const usageOf = new Map<string, number>()
  const behaviour: Behaviour = async (ctx) => {
    const tag = tagOf(ctx.record.body)
    arrivals.push(tag)
    arrivedAt.set(tag, Date.now())
    await Promise.race([holds.get(tag) ?? new Promise((r) => setTimeout(r, holdMs)), ctx.closed])
    if (ctx.res.destroyed) return
    const total = usageOf.get(tag)
    if (total === undefined) return defaultChat()(ctx)
    return jsonReply(200, {
      id: `chatcmpl-${tag}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: ctx.record.body?.model ?? 'gpt-4o',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: total - 1, completion_tokens: 1, total_tokens: total },
    })(ctx)
  }
  function hold(tag: string): () => void {
    let release!: () => void
    holds.set(tag, new Promise<void>((r) => (release = r)))
    return release
  }
  return { behaviour, arrivals, arrivedAt, usageOf, hold }
}

/** What a counting fake upstream saw: tags in arrival order, how many it held at once, and when. */
export interface Counter {
  arrivals: string[]
  current: number
  max: number
  /** Per arrival: the tags in flight at the upstream just after it arrived. */
  inFlightAt: string[][]
  /** Per arrival: Date.now() when it arrived. */
  times: number[]
}

/** GET /queue/status on a gateway, for one model group (undefined when the group is not gated). */
export async function queueStatus(url: string, model: string, key: string): Promise<any> {
  const r = await jsonCall(url, 'GET', '/queue/status', undefined, key)
  if (r.status !== 200) throw new Error(`queue/status: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.models[model]
}

/** Poll `read` (test side) until `ok` holds; fails naming `what` and the last value after `timeoutMs`. */
export async function until<T>(read: () => Promise<T> | T, ok: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await read()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}; last ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
