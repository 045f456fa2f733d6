/**
 * Pre-call checks (LiteLLM `enable_pre_call_checks`): before a call is routed, leave out the deployments that cannot
 * take it, and fail at once when none can.
 *
 * - Context window: the prompt's token estimate is larger than the deployment's `model_info.max_input_tokens`, else
 *   the context window of its model in LiteLLM's table (a deployment with neither is never left out for it).
 * - Usage: the deployment's `rpm` is used up in the current minute, or its `tpm` cannot take this prompt on top of
 *   the tokens it used this minute. As in the rate-limit plugin, a minute with no tokens yet admits one call however
 *   large, so a prompt bigger than a whole tpm does not get a retry-after that can never be honoured.
 *
 * None left: when any was left out for usage, 429 "No deployments available for selected model" with a retry-after
 * of the seconds left in the minute (LiteLLM's answer; the minute's counts reset then); when all were left out for
 * their context window, LiteLLM's ContextWindowExceededError (400 GW_ERR_CONTEXT_WINDOW).
 *
 * The prompt is counted at most once per call, and only when some deployment has a window or a tpm to compare it to.
 */
import { gatewayError, type GatewayError } from '../../core/errors.js'
import type { Operation } from '../../core/openai/types.js'
import { promptTokensEstimate } from '../../core/pricing/budget.js'
import { KEEP, SKIP_CONTEXT, SKIP_RATE, type GroupView } from './strategies.js'
import { MINUTE_MS } from './stats.js'

export interface CheckFlags {
  /** rpm/tpm headroom (pre-call checks, and always for usage-based routing as in LiteLLM's v2 strategy). */
  usage: boolean
  /** Context window (pre-call checks only). */
  contextWindow: boolean
}

/**
 * Set view.skip for each deployment; returns how many are left. `prompt` receives the token estimate when one was
 * made (-1 otherwise), for the error message.
 */
export function runChecks(view: GroupView, flags: CheckFlags, op: Operation, body: Record<string, unknown>, prompt: { tokens: number }): number {
  const { targets, stats, skip, window } = view
  prompt.tokens = -1
  const contextWindow = flags.contextWindow && view.anyWindow
  const usage = flags.usage && view.anyLimit
  let kept = 0
  for (let i = 0; i < targets.length; i++) {
    skip[i] = KEEP
    if (contextWindow && window[i]! < Number.POSITIVE_INFINITY) {
      if (prompt.tokens < 0) prompt.tokens = promptTokensEstimate(op, body)
      if (prompt.tokens > window[i]!) {
        skip[i] = SKIP_CONTEXT
        continue
      }
    }
    if (usage) {
      const t = targets[i]!
      const s = stats[i]!
      if (t.rpm !== undefined && s.requests + 1 > t.rpm) {
        skip[i] = SKIP_RATE
        continue
      }
      if (t.tpm !== undefined && s.tokens > 0) {
        if (prompt.tokens < 0) prompt.tokens = promptTokensEstimate(op, body)
        if (s.tokens + prompt.tokens > t.tpm) {
          skip[i] = SKIP_RATE
          continue
        }
      }
    }
    kept++
  }
  return kept
}

/** The error for a group the checks emptied. */
export function noDeploymentError(view: GroupView, model: string, promptTokens: number, now: number): GatewayError {
  let rate = false
  let largest = 0
  for (let i = 0; i < view.skip.length; i++) {
    if (view.skip[i] === SKIP_RATE) rate = true
    else if (view.window[i]! > largest) largest = view.window[i]!
  }
  if (!rate) {
    return gatewayError('GW_ERR_CONTEXT_WINDOW',
      `litellm.ContextWindowExceededError: Context Window exceeded for given call. No deployment of model=${model} ` +
      `has a context window large enough for this call: the prompt is about ${promptTokens} tokens, the largest ` +
      `window is ${largest} tokens (pre-call-checks=True).`, { param: 'messages' })
  }
  const retryAfter = Math.max(1, Math.ceil((MINUTE_MS - (now % MINUTE_MS)) / 1000))
  return gatewayError('GW_ERR_RATE_LIMIT',
    `No deployments available for selected model, Try again in ${retryAfter} seconds. Passed model=${model}. ` +
    'pre-call-checks=True: every deployment has used its rpm/tpm for this minute' +
    (view.skip.includes(SKIP_CONTEXT) ? ' or is too small for the prompt.' : '.'), { retryAfter })
}
