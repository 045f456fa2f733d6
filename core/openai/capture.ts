/**
 * The reply kept for plugins that log it (the logging plugin sets `state.captureReply`): a JSON reply as the client
 * got it, or a stream's chunks, assembled into one completion only when a plugin asks (replyOf), after the response
 * went out. Nothing is kept, parsed or copied when no plugin asks.
 *
 * A pass-through stream keeps the events' JSON text unparsed (the hot path stays parse-free); assembly parses it.
 */
import { RawJson } from '../upstream/passthrough.js'
import type { GatewayState } from '../state.js'
import type { Usage } from './types.js'

type Obj = Record<string, any>

/** A stream's chunks (objects, or a pass-through event's JSON text) as they went to the client. */
export class StreamCapture {
  readonly parts: Array<Obj | string> = []
  add(part: Obj | string): void {
    this.parts.push(part)
  }
}

/**
 * The call's reply in the OpenAI form the client got (a ChatCompletion, TextCompletion, EmbeddingResponse, ...; a
 * stream assembled into its completion; a native Messages reply as Anthropic sent it), or null when none was kept.
 */
export function replyOf(state: GatewayState): unknown {
  const r = state.reply
  if (r === null || r === undefined) return null
  if (r instanceof RawJson) {
    try {
      return r.body
    } catch {
      return null
    }
  }
  if (r instanceof StreamCapture) return assembleStream(r.parts)
  return r
}

interface ChoiceAcc {
  index: number
  content: string
  reasoning: string
  text: string
  finish: string | null
  tools: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>
  chat: boolean
}

/** Chunks -> one completion: content, reasoning and tool-call arguments joined per choice, the last usage. */
export function assembleStream(parts: ReadonlyArray<Obj | string>): Obj {
  // A pass-through stream's events are JSON text: parsed in one JSON.parse of the joined list, which costs about
  // half of one parse per event. A part that does not parse (never expected) falls back to one at a time.
  let texts = 0
  for (const p of parts) if (typeof p === 'string') texts++
  if (texts > 1 && texts === parts.length) {
    try {
      parts = JSON.parse('[' + (parts as string[]).join(',') + ']') as Obj[]
    } catch {
      // one at a time below
    }
  }
  const choices = new Map<number, ChoiceAcc>()
  let id = ''
  let model = ''
  let created = 0
  let usage: Usage | null = null
  let chat = true
  for (const p of parts) {
    let c: Obj
    if (typeof p === 'string') {
      try {
        c = JSON.parse(p) as Obj
      } catch {
        continue
      }
    } else c = p
    if (!c || typeof c !== 'object') continue
    if (typeof c.id === 'string' && !id) id = c.id
    if (typeof c.model === 'string' && !model) model = c.model
    if (typeof c.created === 'number' && !created) created = c.created
    if (c.object === 'text_completion') chat = false
    if (c.usage) usage = c.usage as Usage
    if (!Array.isArray(c.choices)) continue
    for (const ch of c.choices as Obj[]) {
      if (!ch) continue
      const index = typeof ch.index === 'number' ? ch.index : 0
      let acc = choices.get(index)
      if (!acc) choices.set(index, (acc = { index, content: '', reasoning: '', text: '', finish: null, tools: [], chat: !!ch.delta }))
      if (ch.finish_reason) acc.finish = ch.finish_reason
      if (typeof ch.text === 'string') acc.text += ch.text
      const d = ch.delta as Obj | undefined
      if (!d) continue
      if (typeof d.content === 'string') acc.content += d.content
      if (typeof d.reasoning_content === 'string') acc.reasoning += d.reasoning_content
      if (Array.isArray(d.tool_calls)) {
        for (const tc of d.tool_calls as Obj[]) {
          if (!tc) continue
          const at = typeof tc.index === 'number' ? tc.index : acc.tools.length
          const slot = (acc.tools[at] ??= { id: '', type: 'function', function: { name: '', arguments: '' } })
          if (typeof tc.id === 'string') slot.id = tc.id
          if (typeof tc.function?.name === 'string') slot.function.name += tc.function.name
          if (typeof tc.function?.arguments === 'string') slot.function.arguments += tc.function.arguments
        }
      }
    }
  }
  const out = [...choices.values()].sort((a, b) => a.index - b.index).map((a) => {
    if (!chat || !a.chat) return { index: a.index, text: a.text, finish_reason: a.finish }
    const message: Obj = { role: 'assistant', content: a.content || (a.tools.length ? null : '') }
    if (a.reasoning) message.reasoning_content = a.reasoning
    const tools = a.tools.filter(Boolean)
    if (tools.length) message.tool_calls = tools
    return { index: a.index, message, finish_reason: a.finish }
  })
  return { id, object: chat ? 'chat.completion' : 'text_completion', created, model, choices: out, ...(usage ? { usage } : {}) }
}
