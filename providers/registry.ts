/**
 * Provider registry: adapter name -> adapter, from explicit imports (no globbing). Parses LiteLLM model strings
 * (`groq/llama-3.1-8b-instant`, `openrouter/anthropic/claude-3.5-sonnet`) into provider + upstream model.
 */
import { gatewayError } from '../core/errors.js'
import type { ProviderAdapter, Target } from './types.js'
import { openai } from './openai/index.js'
import { openAICompatibleAdapters } from './openai-compatible.js'
import { mock } from './mock/index.js'

export interface ProviderRegistry {
  get(name: string): ProviderAdapter | undefined
  names(): string[]
  /** 'groq/llama3' -> { provider: 'groq', model: 'llama3' }; no known prefix -> openai. */
  parseModel(model: string, customProvider?: string | null): { provider: string; model: string }
  /** The adapter that serves a deployment: the mock adapter when it has a mock_response. */
  forTarget(target: Target): ProviderAdapter
}

export function builtinProviders(): ProviderAdapter[] {
  return [openai, ...openAICompatibleAdapters, mock]
}

export function createProviderRegistry(adapters: readonly ProviderAdapter[] = builtinProviders()): ProviderRegistry {
  const byName = new Map<string, ProviderAdapter>()
  for (const a of adapters) byName.set(a.name, a)
  const mockAdapter = byName.get('mock')
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
    parseModel(model, customProvider) {
      if (customProvider) {
        if (!byName.has(customProvider)) throw unknownProvider(customProvider, model, [...byName.keys()])
        const prefix = `${customProvider}/`
        return { provider: customProvider, model: model.startsWith(prefix) ? model.slice(prefix.length) : model }
      }
      const slash = model.indexOf('/')
      if (slash > 0) {
        const prefix = model.slice(0, slash)
        if (byName.has(prefix)) return { provider: prefix, model: model.slice(slash + 1) }
      }
      return { provider: 'openai', model }
    },
    forTarget(target) {
      if (target.mockResponse !== undefined && mockAdapter) return mockAdapter
      const a = byName.get(target.provider)
      if (!a) throw unknownProvider(target.provider, target.model, [...byName.keys()])
      return a
    },
  }
}

function unknownProvider(name: string, model: string, known: string[]) {
  return gatewayError('GW_ERR_PROVIDER_UNKNOWN', `Unknown provider '${name}' for model '${model}'. Known providers: ${known.sort().join(', ')}`)
}
