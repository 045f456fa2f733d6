/**
 * Streaming pass-through for OpenAI-format upstreams: each SSE event's JSON text goes to the client as received,
 * never parsed and re-serialised. What the gateway needs is read off the text with a few `indexOf` scans:
 *
 * - usage: an event whose `"usage"` member is an object is parsed (it is one event per stream, usually the last),
 *   so cost, budgets and spend logs see exact usage;
 * - errors: an event with an `"error"` member is parsed and fails the stream as the translated path does;
 * - shape: an event must be a JSON object with a `"choices"` list; one without (a usage-only chunk from some hosts)
 *   is parsed and normalised as the translated path does;
 * - output characters (content, reasoning, tool arguments, legacy text), to price a stream cut short.
 *
 * A member is found by its quoted key followed by `:`: inside a JSON string a quote is always escaped, so
 * `"usage"` followed by a colon can only be a key. The text of an ordinary event is not otherwise validated: a host
 * that sends broken JSON mid-stream has it forwarded, where the translated path would have sent an error event.
 */
import type { Readable } from 'node:stream'
import { gatewayError, GatewayError } from '../errors.js'
import type { EventDecoder, Operation, PassEvent, StreamTranslator, Target } from '../../providers/types.js'
import type { ChatChunk, TextCompletion, Usage } from '../openai/types.js'
import { RESPONSE_LIST } from '../openai/operations.js'
import { usageOf } from '../openai/shape.js'

type Chunk = (ChatChunk | TextCompletion) & { usage?: Usage | null }

class Event implements PassEvent {
  constructor(
    readonly data: string,
    readonly chunk: ChatChunk | TextCompletion | null,
    readonly nullUsageFrom: number,
    readonly nullUsageTo: number,
    readonly chars: number,
  ) {}
}

const QUOTE = 34
const COLON = 58
const BACKSLASH = 92
const OPEN_BRACE = 123
const CLOSE_BRACE = 125
const OPEN_BRACKET = 91
const COMMA = 44

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9
}

/** Index of the value of the first member named by `quotedKey` ('"usage"'), from `from`; -1 if none. */
export function valueAt(s: string, quotedKey: string, from = 0): number {
  for (;;) {
    const k = s.indexOf(quotedKey, from)
    if (k === -1) return -1
    let i = k + quotedKey.length
    while (isWs(s.charCodeAt(i))) i++
    if (s.charCodeAt(i) === COLON) {
      i++
      while (isWs(s.charCodeAt(i))) i++
      return i
    }
    from = k + 1
  }
}

/** Characters of the JSON string starting at `i` (its opening quote); an escape counts as one. */
function stringChars(s: string, i: number): number {
  let n = 0
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j)
    if (c === QUOTE) return n
    if (c === BACKSLASH) j += s.charCodeAt(j + 1) === 117 /* u */ ? 5 : 1
    n++
  }
  return n
}

/** Characters of every string member named `quotedKey`. */
function memberChars(s: string, quotedKey: string, from: number): number {
  let n = 0
  for (;;) {
    const v = valueAt(s, quotedKey, from)
    if (v === -1) return n
    if (s.charCodeAt(v) === QUOTE) n += stringChars(s, v)
    from = v
  }
}

const CHAT_FIELDS = ['"content"', '"reasoning_content"', '"arguments"'] as const
const TEXT_FIELDS = ['"text"'] as const

/** The event as forwarded, or null when it must be parsed (usage object, error, no choices list, not an object). */
function scan(data: string, fields: readonly string[]): Event | null {
  let end = data.length - 1
  while (end > 0 && isWs(data.charCodeAt(end))) end--
  if (data.charCodeAt(0) !== OPEN_BRACE || data.charCodeAt(end) !== CLOSE_BRACE) return null
  const choices = valueAt(data, '"choices"')
  if (choices === -1 || data.charCodeAt(choices) !== OPEN_BRACKET) return null
  // An error event has no choices list (OpenAI's `{"error": {...}}`); one that has both is parsed all the same.
  if (valueAt(data, '"error"', choices) !== -1) return null
  let from = -1
  let to = -1
  const usage = valueAt(data, '"usage"')
  if (usage !== -1) {
    if (!data.startsWith('null', usage)) return null
    // The member to cut: from the comma before its key (or, first in the object, to the comma after its value).
    const key = data.lastIndexOf('"usage"', usage)
    to = usage + 4
    let i = key - 1
    while (i > 0 && isWs(data.charCodeAt(i))) i--
    if (data.charCodeAt(i) === COMMA) from = i
    else {
      from = key
      let j = to
      while (isWs(data.charCodeAt(j))) j++
      if (data.charCodeAt(j) === COMMA) to = j + 1
    }
  }
  // Output is inside the choices list: the envelope before it (id, model, fingerprint) is not searched.
  let chars = 0
  for (let f = 0; f < fields.length; f++) chars += memberChars(data, fields[f]!, choices)
  return new Event(data, null, from, to, chars)
}

/**
 * The pass-through iterator. `tr` is the operation's ordinary translator: it handles the events that must be
 * parsed (and throws on an error event), so both paths agree on what a chunk means. `check` is dispatch's check of
 * a parsed chunk (the `choices` list; returns whether it carries usage).
 */
export async function* passStream(
  body: Readable, parser: EventDecoder, tr: StreamTranslator<Chunk>, op: Operation, provider: string,
  check: (c: Chunk) => boolean, fail: (err: unknown) => GatewayError,
): AsyncGenerator<PassEvent> {
  const fields = op === 'completions' ? TEXT_FIELDS : CHAT_FIELDS
  let usageSeen = false
  let last: Chunk | null = null
  const end = new StreamEnd()
  function* parsed(c: Chunk): Generator<PassEvent> {
    if (check(c)) usageSeen = true
    end.chunk(c)
    last = c
    yield new Event('', c, -1, -1, 0)
  }
  try {
    for await (const bytes of body) {
      const events = parser.push(bytes as Buffer)
      for (let i = 0; i < events.length; i++) {
        const data = events[i]!.data
        if (data === '[DONE]' || data === '') {
          if (data === '[DONE]') end.done = true
          continue
        }
        const ev = scan(data, fields)
        if (ev) {
          if (!end.finished) end.text(data)
          yield ev
        } else for (const c of tr.event(events[i]!)) yield* parsed(c)
      }
    }
    for (const e of parser.end()) {
      if (e.data === '[DONE]' || e.data === '') {
        if (e.data === '[DONE]') end.done = true
        continue
      }
      const ev = scan(e.data, fields)
      if (ev) {
        if (!end.finished) end.text(e.data)
        yield ev
      } else for (const c of tr.event(e)) yield* parsed(c)
    }
    end.check(provider)
    const tail = tr.end()
    for (const c of tail.chunks) yield* parsed(c)
    const lastChunk = last as Chunk | null
    if (tail.usage && !usageSeen && lastChunk) {
      const u = { id: lastChunk.id, object: lastChunk.object, created: lastChunk.created, model: lastChunk.model, choices: [], usage: tail.usage }
      yield new Event('', u as unknown as Chunk, -1, -1, 0)
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err
    throw fail(err)
  } finally {
    if (!body.destroyed) body.destroy()
  }
}

/**
 * How an OpenAI-format stream ended. A complete one sends `data: [DONE]`, or at least a `finish_reason` on its last
 * choice chunk; one that stops without either was cut upstream (a proxy timeout, a crashed worker closing the
 * connection cleanly) and must not pass as a complete answer: it fails with a 502 error event, and the call is
 * logged as failed.
 */
export class StreamEnd {
  done = false
  finished = false
  /** A parsed chunk: finished when a choice carries a finish reason. */
  chunk(c: { choices?: unknown }): void {
    if (this.finished || !Array.isArray(c.choices)) return
    for (const ch of c.choices as Array<{ finish_reason?: unknown }>) {
      if (ch && typeof ch.finish_reason === 'string') this.finished = true
    }
  }
  /**
   * An event forwarded unparsed: a `"finish_reason"` member that is a string. Every event is looked at until one
   * has it (one scan each), not only the last: a host may send more after the finish (usage, content filter results).
   */
  text(data: string): void {
    const v = valueAt(data, '"finish_reason"')
    if (v !== -1 && data.charCodeAt(v) === QUOTE) this.finished = true
  }
  check(provider: string): void {
    if (this.done || this.finished) return
    throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${provider} ended the stream before it was complete (no finish_reason, no [DONE])`, { provider })
  }
}

/** Test seam: how one event's text is read. */
export const scanEvent = (data: string, op: Operation = 'chat'): PassEvent | null => scan(data, op === 'completions' ? TEXT_FIELDS : CHAT_FIELDS)

/**
 * A non-streaming OpenAI-format reply kept as the upstream's text: the HTTP proxy sends it on as is, and `body`
 * parses it only for a caller that reads it (a plugin, the several-models answer). Usage is parsed on its own
 * (the `"usage"` object's text), so cost and budgets never need the whole body parsed.
 */
export class RawJson {
  readonly kind = 'json' as const
  private parsed: unknown = undefined
  constructor(readonly raw: string, readonly usage: Usage | null) {}
  get body(): never {
    if (this.parsed === undefined) this.parsed = JSON.parse(this.raw)
    return this.parsed as never
  }
  /** Whether `body` was read (then it may have been changed, and is what must be sent). */
  get read(): boolean {
    return this.parsed !== undefined
  }
}

/** End (exclusive) of the JSON object starting at `i`, strings skipped; -1 if it does not close. */
function objectEnd(s: string, i: number): number {
  let depth = 0
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j)
    if (c === QUOTE) {
      for (j++; j < s.length; j++) {
        const d = s.charCodeAt(j)
        if (d === BACKSLASH) j++
        else if (d === QUOTE) break
      }
    } else if (c === OPEN_BRACE) depth++
    else if (c === CLOSE_BRACE && --depth === 0) return j + 1
  }
  return -1
}

/** `"choices"`, `"data"`, `"results"`: the quoted key of each operation's list (RESPONSE_LIST), built once. */
const QUOTED_LIST = Object.fromEntries(Object.entries(RESPONSE_LIST).map(([op, f]) => [op, f ? `"${f}"` : ''])) as Record<Operation, string>

/**
 * The reply as a RawJson, or null when it must be parsed: not an object, no `choices` (`data` for embeddings and
 * images, `results` for moderations) list, an `error` member, float embeddings a base64 client must get converted,
 * or a usage that is not an object. The usage is converted to the chat shape (usageOf: images report
 * input/output tokens).
 */
export function rawJson(text: string, op: Operation, wantsBase64: boolean): RawJson | null {
  const listKey = QUOTED_LIST[op]
  if (!listKey) return null
  let start = 0
  while (isWs(text.charCodeAt(start))) start++
  let end = text.length - 1
  while (end > 0 && isWs(text.charCodeAt(end))) end--
  if (text.charCodeAt(start) !== OPEN_BRACE || text.charCodeAt(end) !== CLOSE_BRACE) return null
  const list = valueAt(text, listKey)
  if (list === -1 || text.charCodeAt(list) !== OPEN_BRACKET) return null
  if (valueAt(text, '"error"') !== -1) return null
  if (wantsBase64) {
    const e = valueAt(text, '"embedding"', list)
    if (e !== -1 && text.charCodeAt(e) !== QUOTE) return null
  }
  const u = valueAt(text, '"usage"')
  if (u === -1 || text.startsWith('null', u)) return new RawJson(text, null)
  if (text.charCodeAt(u) !== OPEN_BRACE) return null
  const uEnd = objectEnd(text, u)
  if (uEnd === -1) return null
  try {
    return new RawJson(text, usageOf(op, { usage: JSON.parse(text.slice(u, uEnd)) }))
  } catch {
    return null
  }
}
