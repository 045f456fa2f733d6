/**
 * An OpenAI-compatible provider in a few lines: an in-house inference service (vLLM, TGI, a company proxy) that
 * speaks OpenAI's wire format. The base adapter brings request building, streaming with usage, and error mapping;
 * a row adds the name, base URL, key variables and the params the host rejects.
 */
import { createGateway, createOpenAICompatible, type Gateway } from '../../core/index.js'

export const acme = createOpenAICompatible('acme', {
  baseUrl: 'https://llm.acme.internal/v1', // a deployment's api_base wins
  env: { apiKey: ['ACME_API_KEY'], apiBase: ['ACME_API_BASE'] }, // read at boot when litellm_params give none
  unsupported: ['logit_bias', 'logprobs'], // 400 unless drop_params, as LiteLLM does
  operations: ['chat', 'embeddings'],
})

/** Models address it as `acme/<model>`, exactly like a built-in provider. */
export function buildGateway(apiBase?: string, env: Record<string, string | undefined> = process.env): Promise<Gateway> {
  return createGateway({
    providers: [acme],
    env,
    config: {
      pipeline: ['request-id', 'router'],
      upstream: [{ retry: { num_retries: 0 } }],
      model_list: [{ model_name: 'acme-chat', litellm_params: { model: 'acme/acme-large-2', ...(apiBase ? { api_base: apiBase } : {}) } }],
    },
  })
}
