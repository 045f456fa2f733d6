/**
 * The top-level config schema. Plugin options are validated by each plugin's own schema; this one checks the shape
 * around them. Keys are snake_case, as in LiteLLM's config.yaml, so one file can carry both.
 */

const pluginEntry = {
  description: 'A plugin name, or a one-key map { name: options }',
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: { type: ['object', 'null'] } },
  ],
}

export const modelEntrySchema = {
  type: 'object',
  required: ['model_name', 'litellm_params'],
  properties: {
    model_name: { type: 'string', minLength: 1 },
    litellm_params: {
      type: 'object',
      required: ['model'],
      properties: {
        model: { type: 'string', minLength: 1 },
        api_base: { type: ['string', 'null'] },
        api_key: { type: ['string', 'null'] },
        api_version: { type: ['string', 'null'] },
        organization: { type: ['string', 'null'] },
        custom_llm_provider: { type: ['string', 'null'] },
        rpm: { type: ['integer', 'null'], minimum: 0 },
        tpm: { type: ['integer', 'null'], minimum: 0 },
        max_parallel_requests: { type: ['integer', 'null'], minimum: 1 },
        weight: { type: ['number', 'null'], minimum: 0 },
        order: { type: ['integer', 'null'] },
        timeout: { type: ['number', 'null'], exclusiveMinimum: 0 },
        stream_timeout: { type: ['number', 'null'], exclusiveMinimum: 0 },
        max_retries: { type: ['integer', 'null'], minimum: 0 },
        input_cost_per_token: { type: ['number', 'null'], minimum: 0 },
        output_cost_per_token: { type: ['number', 'null'], minimum: 0 },
        mock_response: { type: ['string', 'null'] },
        drop_params: { type: ['boolean', 'null'] },
        additional_drop_params: { type: ['array', 'null'], items: { type: 'string' } },
        extra_headers: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
      },
    },
    model_info: { type: ['object', 'null'] },
    /** Set by the loader (core/compat/litellm.ts), not written in a config. */
    unresolved: { type: 'array', items: { type: 'string' } },
  },
} as const

export const configSchema = {
  type: 'object',
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 4000 },
        /**
         * Largest accepted request body: bytes, or a size such as "1mb". Generous by default: base64 images and
         * long-context prompts are large, and LiteLLM sets no limit (general_settings.max_request_size_mb maps here).
         */
        body_limit: { type: ['integer', 'string'], default: '100mb' },
        /** Seconds to let in-flight requests and streams finish on shutdown. */
        shutdown_timeout: { type: 'number', minimum: 0, default: 30 },
        log_level: { enum: ['debug', 'info', 'warn', 'error', 'silent'], default: 'info' },
        /** Origins allowed by CORS; ['*'] (LiteLLM's default) allows any, [] turns CORS off. */
        cors_origins: { type: 'array', items: { type: 'string' }, default: ['*'] },
        /** One info line per request (id, route, model, deployment, status, attempts, latency, usage, cost). */
        access_log: { type: 'boolean', default: true },
        /** LiteLLM's per-call response headers (x-litellm-model-id, -attempted-retries, -timeout, -response-cost, ...). */
        litellm_headers: { type: 'boolean', default: true },
        /**
         * Most sockets open at once to one upstream origin; null (the default) = no cap, so thousands of long
         * streams to one provider run side by side. When a cap is set and reached, further calls queue and a warning
         * says so.
         */
        upstream_max_connections: { type: ['integer', 'null'], minimum: 1, default: null },
      },
      default: {},
    },
    pipeline: { type: 'array', items: pluginEntry },
    upstream: { type: 'array', items: pluginEntry },
    plugins: {
      description: 'In-house plugins: name -> module path (relative to the config file)',
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
    },
    model_list: { type: 'array', items: modelEntrySchema, default: [] },
    settings: {
      type: 'object',
      additionalProperties: false,
      properties: {
        drop_params: { type: 'boolean', default: false },
        /** Default upstream timeout, seconds (LiteLLM's request_timeout; 600 s there too). */
        request_timeout: { type: 'number', exclusiveMinimum: 0, default: 600 },
        /** Default time to the first byte of a stream, seconds. */
        stream_timeout: { type: 'number', exclusiveMinimum: 0, default: 600 },
        /**
         * Price of a call to a model no price table knows, USD per token (input, output): it is logged as unpriced
         * and still counted against budgets. null = the built-in fallback ($2.50 / $10 per 1M tokens).
         */
        unpriced_input_cost_per_token: { type: ['number', 'null'], minimum: 0, default: null },
        unpriced_output_cost_per_token: { type: ['number', 'null'], minimum: 0, default: null },
        /**
         * Other public names for a model group (LiteLLM's router_settings.model_group_alias): alias -> group, or
         * alias -> { model: group, hidden: true } to serve it without listing it in /v1/models.
         */
        model_group_alias: {
          type: 'object',
          additionalProperties: {
            anyOf: [
              { type: 'string', minLength: 1 },
              {
                type: 'object',
                required: ['model'],
                additionalProperties: false,
                properties: { model: { type: 'string', minLength: 1 }, hidden: { type: 'boolean' } },
              },
            ],
          },
          default: {},
        },
      },
      default: {},
    },
    // LiteLLM sections: mapped by core/compat/litellm.ts; kept as given so plugins can read them.
    litellm_settings: { type: ['object', 'null'] },
    router_settings: { type: ['object', 'null'] },
    general_settings: { type: ['object', 'null'] },
    environment_variables: { type: ['object', 'null'] },
  },
} as const
