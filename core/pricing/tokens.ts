/**
 * Token estimates on the request path (budget holds, rpm/tpm, queue tokens, the router's context-window check, a
 * stream cut short): the text's UTF-8 bytes / 4, the usual rule of thumb. It costs one pass over the strings and no
 * memory. An exact tokenizer (o200k) changed little: it only ever applied to small prompts (past 1 KiB the count was
 * bytes / 4 already), where the difference is a few tokens, and holding it cost ~45 MB of resident memory per
 * process and 1.5-5 % of a budgeted call's CPU (issue 16, by profile). test/core/pricing.test.ts checks the estimate
 * against o200k counts.
 */

/** UTF-8 bytes per token, the rule of thumb. */
const BYTES_PER_TOKEN = 4

/** Estimated tokens in one request's texts: UTF-8 bytes / 4. */
export function estimateTextsTokens(texts: readonly string[]): number {
  let bytes = 0
  for (let i = 0; i < texts.length; i++) bytes += Buffer.byteLength(texts[i]!, 'utf8')
  return Math.ceil(bytes / BYTES_PER_TOKEN)
}
