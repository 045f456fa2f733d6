/**
 * Token counting for estimates: gpt-tokenizer's o200k encoding (GPT-4o's; close enough for other vendors' BPEs
 * when the answer is an estimate), with the work capped because it runs on the request path.
 *
 * Measured here (Node 20, shared 2-core machine): English and code cost ~0.1-0.3 µs per byte, but text the
 * tokenizer has not seen before (random letters or base64 without spaces, CJK, emoji) costs 5-15 µs per character,
 * and one long run without a break ('aaaa…', a CJK paragraph) is quadratic inside the BPE merge (32k CJK characters
 * in one piece: 6.5 s). So text is tokenized in slices, and exactly only up to TOKENIZE_MAX_BYTES with at most ~128
 * characters outside ASCII (a few ms at worst); past that the count is bytes / 4, the usual rule of thumb.
 */
import { createRequire } from 'node:module'

type Encoding = typeof import('gpt-tokenizer/encoding/o200k_base')

/** Per call, UTF-8 bytes tokenized exactly: ~0.2 ms of English, 5-15 ms of never-seen random text. */
export const TOKENIZE_MAX_BYTES = 1024
/**
 * Per call, UTF-8 bytes beyond one per UTF-16 unit (2 per CJK character or emoji, 1 per accented Latin letter):
 * ~128 CJK characters. Free to compute: byte length minus string length.
 */
export const TOKENIZE_MAX_EXTRA_BYTES = 256
/** Slice length in UTF-16 units: bounds the quadratic merge; costs ~1 extra token per slice boundary. */
const SLICE_CHARS = 256
/** Rule of thumb for text too long to tokenize on the request path. */
const BYTES_PER_TOKEN = 4

// User text containing '<|endoftext|>' is plain text to the API, not a special token (the default here throws).
const AS_TEXT = { disallowedSpecial: new Set<string>() }

const require = createRequire(import.meta.url)
let encoding: Encoding | null = null

/**
 * Load the tokenizer now (~0.4 s on an idle machine and ~25 MB, once per process) instead of on the first request
 * that needs it.
 * Loaded synchronously (the CommonJS build) so estimates stay synchronous.
 */
export function warmTokenizer(): void {
  if (encoding) return
  encoding = require('gpt-tokenizer/cjs/encoding/o200k_base') as Encoding
  // The first encode runs cold code paths: run them here too, with text outside ASCII.
  encoding.countTokens('warm up: é 中文 🦜', AS_TEXT)
}

/** Tokens in `text` (o200k), or bytes / 4 past the cap (see above). */
export function countTextTokens(text: string): number {
  if (text.length === 0) return 0
  const bytes = Buffer.byteLength(text, 'utf8')
  return exact(bytes, text.length) ? tokenize(text) : tokensFromBytes(bytes)
}

/** Tokens in several texts (one request's), capped as one: exactly, or bytes / 4 for all of them. */
export function countTextsTokens(texts: readonly string[]): number {
  let bytes = 0
  let length = 0
  for (const t of texts) {
    bytes += Buffer.byteLength(t, 'utf8')
    length += t.length
  }
  if (!exact(bytes, length)) return tokensFromBytes(bytes)
  let n = 0
  for (const t of texts) n += tokenize(t)
  return n
}

function exact(bytes: number, length: number): boolean {
  return bytes <= TOKENIZE_MAX_BYTES && bytes - length <= TOKENIZE_MAX_EXTRA_BYTES
}

/**
 * Counts of recent texts. The same texts come back call after call (a system prompt, a tool list, a template), and
 * a Map lookup hashes the string once, far cheaper than the BPE. Only texts tokenized exactly are kept (at most
 * TOKENIZE_MAX_BYTES each), so the memo holds at most MEMO_ENTRIES KiB; it is cleared when full rather than kept in
 * LRU order, which would cost a re-insert per hit.
 */
const MEMO_ENTRIES = 2_000
const memo = new Map<string, number>()

/** Exact count, no cap. */
function tokenize(text: string): number {
  const known = memo.get(text)
  if (known !== undefined) return known
  const n = tokenizeNow(text)
  if (memo.size >= MEMO_ENTRIES) memo.clear()
  memo.set(text, n)
  return n
}

function tokenizeNow(text: string): number {
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

function tokensFromBytes(bytes: number): number {
  return Math.ceil(bytes / BYTES_PER_TOKEN)
}
