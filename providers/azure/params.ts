/**
 * The two request rules Azure needs on top of the OpenAI param map (which passes every other param through, as
 * Azure takes OpenAI's body).
 *
 * azure: `tool_choice` depends on the dated api-version, as LiteLLM's AzureOpenAIConfig.map_openai_params checks
 * (https://learn.microsoft.com/azure/ai-foundry/openai/reference): none before 2023-12-01-preview, and not
 * `"required"` up to 2024-05. Such a call is a 400 naming the param (the upstream would refuse it less clearly), or
 * the param is dropped with drop_params.
 *
 * azure_ai: serverless models take `content` as a string only; LiteLLM's AzureAIStudioConfig._transform_messages
 * joins a list of text parts into one string and leaves a message with an image or audio part as it is.
 */
import { gatewayError } from '../../core/errors.js'
import type { ParamRule, Target } from '../types.js'
import { azureApiVersion, isV1ApiVersion } from './url.js'

/** 'YYYY-MM-DD' of a dated api-version ('2024-05-01-preview' -> '2024-05-01'), null for v1 or anything else. */
function versionDate(version: string): string | null {
  if (isV1ApiVersion(version) || version.length < 10 || version[4] !== '-' || version[7] !== '-') return null
  return version.slice(0, 10)
}

/** Why `tool_choice: value` cannot be sent with this api-version, or null when it can. */
export function toolChoiceProblem(value: unknown, version: string): string | null {
  const date = versionDate(version)
  if (date === null) return null
  if (date < '2023-12-01') {
    return `Azure does not support 'tool_choice' for api_version=${version}; it needs api_version 2023-12-01-preview or later.`
  }
  if (value === 'required' && date < '2024-06-01') {
    return `Azure does not support tool_choice='required' for api_version=${version}; it needs api_version 2024-06-01 or later.`
  }
  return null
}

export const toolChoiceRule: ParamRule<Record<string, unknown>> = {
  to: 'tool_choice',
  map(value: unknown, _req: unknown, target: Target) {
    const problem = toolChoiceProblem(value, azureApiVersion(target))
    if (problem === null) return value
    if (target.dropParams) return undefined
    throw gatewayError('GW_ERR_UNSUPPORTED_PARAM',
      `${problem} To drop it, set \`drop_params: true\` in litellm_settings (or on the deployment's litellm_params).`,
      { param: 'tool_choice' })
  },
}

interface Part {
  type?: unknown
  text?: unknown
}

/** A content list of text parts only, as one string; null when it holds anything else (image, audio, file). */
function textOnly(content: unknown): string | null {
  if (!Array.isArray(content) || content.length === 0) return null
  let out = ''
  for (const p of content as Part[]) {
    if (!p || typeof p !== 'object' || p.type !== 'text' || typeof p.text !== 'string') return null
    // Joined without a separator, as LiteLLM's convert_content_list_to_str does.
    out += p.text
  }
  return out
}

/** `messages` for an azure_ai body: text-part lists flattened; the client's array is copied only when one changes. */
export function flattenTextContent(messages: unknown): unknown {
  if (!Array.isArray(messages)) return messages
  let out: unknown[] | null = null
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as { content?: unknown } | null
    const text = m && typeof m === 'object' ? textOnly(m.content) : null
    if (text === null) continue
    out ??= messages.slice()
    out[i] = { ...m, content: text }
  }
  return out ?? messages
}

export const flattenMessagesRule: ParamRule<Record<string, unknown>> = {
  to: 'messages',
  map: (value) => flattenTextContent(value),
}
