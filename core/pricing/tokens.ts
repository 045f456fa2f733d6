/**
 * Token counting for estimates: gpt-tokenizer's o200k encoding (GPT-4o's; close enough for other vendors' BPEs
 * when the answer is an estimate), with the work capped because it runs on the request path.
 *
 * Measured here (Node 20, one core): English costs ~0.05 µs per byte, but base64, emoji and CJK text cost 1-2 µs
 * per byte, and one long run without a break ('aaaa…', a CJK paragraph) is quadratic inside the BPE merge (32k
 * chars of CJK: 6.5 s). So text is tokenized in slices, and only up to TOKENIZE_MAX_BYTES per call; beyond that
 * the estimate is bytes / 4, the usual rule of thumb for English.
 */
import { createRequire } from 'node:module'

type Encoding = typeof import('gpt-tokenizer/encoding/o200k_base')

/** Per call, UTF-8 bytes tokenized exactly: ~0.2 ms of English, ~6 ms at worst (adversarial base64/CJK). */
export const TOKENIZE_MAX_BYTES = 4096
/** Slice length in UTF-16 units: bounds the quadratic merge; costs ~1 extra token per slice boundary. */
const SLICE_CHARS = 512
/** Rule of thumb for text too long to tokenize on the request path. */
const BYTES_PER_TOKEN = 4

// User text containing '<|endoftext|>' is plain text to the API, not a special token (the default here throws).
const AS_TEXT = { disallowedSpecial: new Set<string>() }

const require = createRequire(import.meta.url)
let encoding: Encoding | null = null

/**
 * Load the tokenizer now (~0.4 s and ~25 MB, once per process) instead of on the first request that needs it.
 * Loaded synchronously (the CommonJS build) so estimates stay synchronous.
 */
export function warmTokenizer(): void {
  encoding ??= require('gpt-tokenizer/cjs/encoding/o200k_base') as Encoding
}

/** Tokens in `text` (o200k), or bytes / 4 when it is longer than TOKENIZE_MAX_BYTES. */
export function countTextTokens(text: string): number {
  if (text.length === 0) return 0
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > TOKENIZE_MAX_BYTES) return Math.ceil(bytes / BYTES_PER_TOKEN)
  return tokenize(text)
}

/** Exact count, no cap: callers keep the total under TOKENIZE_MAX_BYTES. */
export function tokenize(text: string): number {
  warmTokenizer()
  const enc = encoding!
  if (text.length <= SLICE_CHARS) return enc.countTokens(text, AS_TEXT)
  let n = 0
  let i = 0
  while (i < text.length) {
    let end = Math.min(i + SLICE_CHARS, text.length)
    // Never split a surrogate pair: half an emoji would count as a replacement character.
    const c = text.charCodeAt(end - 1)
    if (c >= 0xd800 && c <= 0xdbff && end < text.length) end++
    n += enc.countTokens(text.slice(i, end), AS_TEXT)
    i = end
  }
  return n
}

/** Bytes to tokens for text past the cap. */
export function tokensFromBytes(bytes: number): number {
  return Math.ceil(bytes / BYTES_PER_TOKEN)
}
