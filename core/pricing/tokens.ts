/**
 * Token counts. Request-path estimates (budget holds, rpm/tpm, queue tokens, the router's context-window check,
 * a stream cut short) use the text's UTF-8 bytes / 4, the usual rule of thumb: it costs one pass over the strings
 * and no memory. An exact count would change little: it only ever applied to small prompts (past 1 KiB the
 * count was bytes / 4 already), where the difference is a few hundred tokens at most, and holding the tokenizer
 * cost ~45 MB of resident memory per process and 2-3 % of a budgeted call's CPU (issue 16, measured with the bench).
 *
 * countTextTokens() stays exact (gpt-tokenizer's o200k encoding, loaded on first use) for callers that want it.
 * Measured here (Node 20, shared 2-core machine): English and code cost ~0.1-0.3 µs per byte, but text the
 * tokenizer has not seen before (random letters or base64 without spaces, CJK, emoji) costs 5-15 µs per character,
 * and one long run without a break ('aaaa…', a CJK paragraph) is quadratic inside the BPE merge (32k CJK characters
 * in one piece: 6.5 s). So text is tokenized in slices, and exactly only up to TOKENIZE_MAX_BYTES with at most ~128
 * characters outside ASCII (a few ms at worst); past that the count is bytes / 4.
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
/** Rule of thumb: request-path estimates, and text too long to tokenize. */
const BYTES_PER_TOKEN = 4

// User text containing '<|endoftext|>' is plain text to the API, not a special token (the default here throws).
const AS_TEXT = { disallowedSpecial: new Set<string>() }

const require = createRequire(import.meta.url)
let encoding: Encoding | null = null

/**
 * Load the tokenizer now (~0.4 s on an idle machine and ~45 MB resident, once per process) instead of on the first
 * countTextTokens() call. Loaded synchronously (the CommonJS build) so counts stay synchronous.
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

/** Estimated tokens in one request's texts: UTF-8 bytes / 4 (see above). */
export function estimateTextsTokens(texts: readonly string[]): number {
  let bytes = 0
  for (let i = 0; i < texts.length; i++) bytes += Buffer.byteLength(texts[i]!, 'utf8')
  return tokensFromBytes(bytes)
}

function exact(bytes: number, length: number): boolean {
  return bytes <= TOKENIZE_MAX_BYTES && bytes - length <= TOKENIZE_MAX_EXTRA_BYTES
}

/** Exact count, no cap. */
function tokenize(text: string): number {
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
