/**
 * Shared pieces of the keys-and-budgets scenarios: management calls with the master key, a priced fake upstream,
 * and a poll for the spend writer (rows are written in batches off the hot path, so a test waits for them).
 */
import type { Test } from 'tap'
import { jsonCall, type JsonReply } from '../helpers/http.js'

export const MASTER = 'sk-master-e2e-1234'

/** Per token, USD: chosen so costs are exact in binary floating point sums to the cent. */
export const INPUT_PRICE = 0.001
export const OUTPUT_PRICE = 0.002

export function admin(url: string, method: 'GET' | 'POST', path: string, body?: unknown, key = MASTER): Promise<JsonReply> {
  return jsonCall(url, method, path, body, key)
}

export async function generateKey(t: Test, url: string, body: Record<string, unknown>): Promise<{ key: string; token: string; body: any }> {
  const r = await admin(url, 'POST', '/key/generate', body)
  t.equal(r.status, 200, `key/generate ${JSON.stringify(body)}${r.status === 200 ? '' : `: ${JSON.stringify(r.body)}`}`)
  return { key: r.body.key, token: r.body.token ?? r.body.token_id, body: r.body }
}

/** Poll until `check` returns a truthy value (spend rows are flushed every flush interval). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A deployment block for the fake upstream, priced per token. */
export function deployment(name: string, upstreamUrl: string, model = name): string {
  return `  - model_name: ${name}
    litellm_params:
      model: openai/${model}
      api_base: ${upstreamUrl}
      api_key: sk-upstream
      input_cost_per_token: ${INPUT_PRICE}
      output_cost_per_token: ${OUTPUT_PRICE}
`
}
