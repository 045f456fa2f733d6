/**
 * Tool-call ids. Gemini gives its function calls no id, so the gateway makes one. Gemini 2.5+ may attach a
 * `thoughtSignature` to a call, which must come back with that call in the next turn (Gemini 3 answers 400
 * without it); an OpenAI client keeps nothing but the id, so the signature rides inside it, after the separator
 * LiteLLM uses (`call_<random>__thought__<signature>`, BerriAI/litellm#18374), and messages.ts splits it off again.
 */
import { randomBytes } from 'node:crypto'

const SEPARATOR = '__thought__'

export function newToolCallId(signature?: unknown): string {
  const id = `call_${randomBytes(12).toString('hex')}`
  return typeof signature === 'string' && signature ? `${id}${SEPARATOR}${signature}` : id
}

export function splitToolCallId(id: string): { id: string; signature: string | undefined } {
  const at = id.indexOf(SEPARATOR)
  return at === -1 ? { id, signature: undefined } : { id: id.slice(0, at), signature: id.slice(at + SEPARATOR.length) || undefined }
}
