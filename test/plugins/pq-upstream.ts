/**
 * The fake upstream of the priority-queue per-minute tests: records arrivals by tag (the first word of the prompt)
 * with their real arrival time, holds a call until the test releases it (`hold(tag)`), else `holdMs`, and reports
 * a chosen total of tokens for a tag (`usageOf`) so the tests can see real usage correct an estimate.
 */
import { defaultChat, jsonReply, type Behaviour } from '../helpers/upstream.js'

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
