/**
 * Token counts of a request before it is sent: an upper bound the real count can never exceed (for budget
 * reservations) and a realistic estimate. Both run on every request: one JSON.stringify for the bound, a byte count
 * of the text for the estimate (estimateTextsTokens in tokens.ts; no tokenizer on the request path).
 *
 * The bound rests on one fact: every token of a byte-level BPE (OpenAI, Anthropic, Llama) or a SentencePiece model
 * with byte fallback (Gemini) covers at least one byte of text, so the UTF-8 length of what is sent bounds the
 * prompt. The JSON of the messages only adds bytes (quotes, keys, escapes). What the bytes cannot bound is added on
 * top: the markers a provider wraps around each message, the tool-use preamble, and media referenced by URL or id.
 */
import type { Operation } from '../openai/types.js'
import { estimateTextsTokens } from './tokens.js'

/** Completion tokens when neither the request, the deployment nor the model table gives a limit. */
export const DEFAULT_MAX_TOKENS = 4096

/** Upper bound: role markers and separators per message (OpenAI adds 3-4). */
const BOUND_TOKENS_PER_MESSAGE = 8
/** Upper bound: reply primer and fixed preamble, per request. */
const BOUND_TOKENS_BASE = 16
/** Upper bound: the text a provider adds around tool definitions (Anthropic's tool-use system prompt: a few hundred). */
const BOUND_TOKENS_TOOLS = 1024
/**
 * Upper bound per image or file sent by URL or id (no bytes in the request to bound it). The largest per-image
 * charge among current models is gpt-4o-mini's high-detail image: 2,833 + 8 tiles × 5,667 = 48,169 tokens.
 * Long PDFs or videos by reference can exceed it; nothing in the request says how long they are.
 */
const BOUND_TOKENS_MEDIA = 50_000

/** Estimate: OpenAI's chat format costs 3 tokens per message plus 3 for the reply primer (OpenAI cookbook). */
const EST_TOKENS_PER_MESSAGE = 3
const EST_TOKENS_BASE = 3
/** Estimate: a 1024x1024 high-detail image on gpt-4o (85 + 4 tiles × 170). */
const EST_TOKENS_IMAGE = 765
/** Estimate: most replies are short; a realistic expectation, not a limit. */
const EST_MAX_COMPLETION = 256

type Body = Record<string, unknown>

function positive(v: unknown): number | undefined {
  return typeof v === 'number' && v > 0 && Number.isFinite(v) ? Math.ceil(v) : undefined
}

function jsonBytes(v: unknown): number {
  return v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8')
}

function messagesOf(body: Body): readonly unknown[] {
  return Array.isArray(body.messages) ? body.messages : []
}

/**
 * The text a media operation sends: an image's prompt, the text to speak (and its voice instructions), the input to
 * moderate, a transcription's prompt (its audio is priced by the second, core/pricing/media.ts).
 */
function mediaText(op: Operation, body: Body): unknown[] {
  if (op === 'speech') return [body.input, body.instructions]
  if (op === 'moderations') return [body.input]
  return [body.prompt]
}

/** Prompt tokens the call cannot exceed. */
export function promptTokensBound(op: Operation, body: Body): number {
  if (op === 'embeddings') return BOUND_TOKENS_BASE + jsonBytes(body.input)
  if (op === 'completions') return BOUND_TOKENS_BASE + jsonBytes(body.prompt) + jsonBytes(body.suffix)
  if (op !== 'chat') return BOUND_TOKENS_BASE + jsonBytes(mediaText(op, body))
  const messages = messagesOf(body)
  const tools = Array.isArray(body.tools) && body.tools.length > 0
  const functions = Array.isArray(body.functions) && body.functions.length > 0
  return BOUND_TOKENS_BASE + BOUND_TOKENS_PER_MESSAGE * messages.length + BOUND_TOKENS_MEDIA * mediaByReference(messages) +
    (tools || functions ? BOUND_TOKENS_TOOLS : 0) +
    jsonBytes([messages, body.tools, body.functions, body.response_format, body.tool_choice])
}

/** Content parts (and assistant audio) whose tokens are not in the request's bytes: images by URL, files by id. */
function mediaByReference(messages: readonly unknown[]): number {
  let n = 0
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue
    const msg = m as Body
    // A previous audio reply referenced by id is billed again as input audio.
    if (msg.audio && typeof msg.audio === 'object') n++
    if (!Array.isArray(msg.content)) continue
    for (const p of msg.content as unknown[]) {
      if (!p || typeof p !== 'object') continue
      const part = p as Body
      if (part.type === 'text' || part.type === 'input_audio') continue
      if (!inline(part)) n++
    }
  }
  return n
}

/** Whether a media part carries its data (base64 is far more bytes than the tokens it costs). */
function inline(part: Body): boolean {
  const image = part.image_url
  const url = typeof image === 'string' ? image : image && typeof image === 'object' ? (image as Body).url : undefined
  if (typeof url === 'string' && url.startsWith('data:')) return true
  const file = part.file
  return !!file && typeof file === 'object' && typeof (file as Body).file_data === 'string'
}

/** Completion tokens allowed per choice: the request's, the deployment's default, the model's max, or 4096. */
export function completionLimit(body: Body, defaults: Readonly<Record<string, unknown>>, modelMax: number | null): number {
  return positive(body.max_completion_tokens) ?? positive(body.max_tokens) ??
    positive(defaults.max_completion_tokens) ?? positive(defaults.max_tokens) ?? modelMax ?? DEFAULT_MAX_TOKENS
}

/** Choices generated and billed: `n` (chat); for completions `best_of` (all are billed) per prompt of a batch. */
export function choicesOf(op: Operation, body: Body): number {
  if (op !== 'chat' && op !== 'completions') return 0
  const n = positive(body.n) ?? 1
  if (op === 'chat') return n
  const prompt = body.prompt
  const batch = Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] !== 'number' ? prompt.length : 1
  return Math.max(n, positive(body.best_of) ?? 1) * batch
}

/**
 * Output tokens billed beyond the choices: rejected predicted-output tokens are billed as completion tokens
 * (OpenAI's `prediction`), bounded by the prediction's bytes.
 */
export function extraOutputBound(body: Body): number {
  return body.prediction === undefined || body.prediction === null ? 0 : jsonBytes(body.prediction)
}

/** Realistic completion tokens: the request's limit capped at 256, times the choices. */
export function completionEstimate(op: Operation, body: Body): number {
  if (op !== 'chat' && op !== 'completions') return 0
  const limit = positive(body.max_completion_tokens) ?? positive(body.max_tokens) ?? EST_MAX_COMPLETION
  return Math.min(limit, EST_MAX_COMPLETION) * choicesOf(op, body)
}

/** Realistic prompt tokens: the text's UTF-8 bytes / 4, plus the chat format's per-message tokens (tokens.ts). */
export function promptTokensEstimate(op: Operation, body: Body): number {
  const texts: string[] = []
  let extra = 0
  if (op === 'chat') {
    const messages = messagesOf(body)
    extra = EST_TOKENS_BASE + EST_TOKENS_PER_MESSAGE * messages.length
    for (const m of messages) if (m && typeof m === 'object') extra += messageTexts(m as Body, texts)
    if (Array.isArray(body.tools) && body.tools.length > 0) texts.push(JSON.stringify(body.tools))
  } else if (op === 'embeddings' || op === 'completions') {
    extra = inputTexts(op === 'embeddings' ? body.input : body.prompt, texts)
  } else {
    for (const v of mediaText(op, body)) extra += inputTexts(v, texts)
  }
  return extra + estimateTextsTokens(texts)
}

/** Pushes a message's text; returns the tokens counted without text (images). */
function messageTexts(msg: Body, texts: string[]): number {
  let extra = 0
  const content = msg.content
  if (typeof content === 'string') texts.push(content)
  else if (Array.isArray(content)) {
    for (const p of content as unknown[]) {
      if (!p || typeof p !== 'object') continue
      const part = p as Body
      if (typeof part.text === 'string') texts.push(part.text)
      else if (part.type === 'image_url') extra += EST_TOKENS_IMAGE
    }
  }
  if (typeof msg.name === 'string') texts.push(msg.name)
  if (Array.isArray(msg.tool_calls)) {
    for (const c of msg.tool_calls as unknown[]) {
      const fn = c && typeof c === 'object' ? (c as Body).function : undefined
      if (!fn || typeof fn !== 'object') continue
      const { name, arguments: args } = fn as Body
      if (typeof name === 'string') texts.push(name)
      if (typeof args === 'string') texts.push(args)
    }
  }
  return extra
}

/**
 * Completions prompt / embeddings input: text, a batch of texts, token ids or a batch of them; a moderation's
 * multimodal parts (`{type: 'text', text}`, images counted as one estimated image each).
 */
function inputTexts(input: unknown, texts: string[]): number {
  if (typeof input === 'string') { texts.push(input); return 0 }
  if (!Array.isArray(input)) return 0
  let ids = 0
  for (const item of input as unknown[]) {
    if (typeof item === 'string') texts.push(item)
    else if (typeof item === 'number') ids++
    else if (Array.isArray(item)) ids += item.length
    else if (item && typeof item === 'object') {
      const part = item as Body
      if (typeof part.text === 'string') texts.push(part.text)
      else if (part.type === 'image_url') ids += EST_TOKENS_IMAGE
    }
  }
  return ids
}
