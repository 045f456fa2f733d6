/**
 * mlflow: each call as an MLflow trace over OTLP/HTTP, the ingestion an MLflow >= 3.6 tracking server offers
 * (../../../../shared/data/mlflow/NOTES.md): `POST {tracking_uri}/v1/traces`, binary protobuf only, the experiment in
 * the `x-mlflow-experiment-id` header. LiteLLM callback name "mlflow".
 *
 *   tracking_uri   | MLFLOW_TRACKING_URI (required; http or https)
 *   experiment_id  | MLFLOW_EXPERIMENT_ID (default '0', MLflow's Default experiment)
 *   token          | MLFLOW_TRACKING_TOKEN -> Authorization: Bearer
 *   username/password | MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD -> Authorization: Basic
 *
 * The spans are the GenAI ones (MLflow maps those too) plus MLflow's own attributes on the root span. MLflow keeps
 * every span attribute JSON-encoded and json.loads it on read (falling back to the raw string), so its own keys
 * are sent JSON-encoded: `mlflow.spanType` is `"CHAT_MODEL"` with the quotes, as MLflow's SDK writes it.
 */
import { gatewayError } from '../../../core/errors.js'
import type { LogRecord, Sink, SinkContext } from '../types.js'
import { hex, type Span } from '../otlp.js'
import { hasContent, recordSpans, scrub } from '../otlp-spans.js'
import {
  DEFAULT_MAX_BATCH, DEFAULT_TIMEOUT_MS, checkUrl, headersOption, intOption, otlpSink, resourceOf, strOption,
} from './otel.js'

/** MLflow's span type per call type (mlflow.entities.SpanType). */
const SPAN_TYPE: Readonly<Record<string, string>> = {
  chat: 'CHAT_MODEL', anthropic_messages: 'CHAT_MODEL', responses: 'CHAT_MODEL', embeddings: 'EMBEDDING',
}
/** Where a call type's prompt sits in its request body. */
const PROMPT_FIELD: Readonly<Record<string, string>> = {
  chat: 'messages', anthropic_messages: 'messages', responses: 'input', completions: 'prompt', images: 'prompt',
  embeddings: 'input', moderations: 'input', speech: 'input',
}
const CHAT_REPLY: ReadonlySet<string> = new Set(['chat', 'completions'])

function j(v: unknown): string {
  return JSON.stringify(v) ?? 'null'
}

/** The request as the client sent it (parameters without credentials), MLflow's span inputs. */
function inputsOf(rec: LogRecord): Record<string, unknown> {
  const inputs: Record<string, unknown> = { model: rec.model_group, ...(scrub(rec.model_parameters) as object) }
  inputs[PROMPT_FIELD[rec.call_type] ?? 'input'] = rec.messages
  return inputs
}

/** The reply; chat completions in their OpenAI shape so MLflow's chat view renders them. */
function outputsOf(rec: LogRecord): unknown {
  if (!CHAT_REPLY.has(rec.call_type)) return rec.response
  return { choices: [{ index: 0, message: rec.response, finish_reason: rec.finish_reason }] }
}

/** MLflow's attributes on the root span (and the span type on each attempt). */
export function mlflowSpans(rec: LogRecord): Span[] {
  const spans = recordSpans(rec)
  const root = spans[0]!
  const a = root.attributes
  a['mlflow.traceRequestId'] = j(`tr-${hex(root.traceId)}`)
  a['mlflow.spanType'] = j(SPAN_TYPE[rec.call_type] ?? 'LLM')
  if (rec.model) a['mlflow.llm.model'] = j(rec.model)
  if (rec.provider) a['mlflow.llm.provider'] = j(rec.provider)
  const u = rec.usage
  const usage: Record<string, number> = {
    input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens, total_tokens: u.total_tokens,
  }
  if (u.cached_tokens) usage.cache_read_input_tokens = u.cached_tokens
  if (u.cache_creation_tokens) usage.cache_creation_input_tokens = u.cache_creation_tokens
  a['mlflow.chat.tokenUsage'] = j(usage)
  // The record has the call's total only; MLflow's split into input/output cost is left out rather than guessed.
  if (rec.cost_source !== '' && rec.cost_source !== 'unpriced') a['mlflow.llm.cost'] = j({ total_cost: rec.cost })
  if (typeof rec.metadata.session_id === 'string') a['session.id'] = rec.metadata.session_id
  // mlflow.spanInputs/Outputs are what MLflow shows; the GenAI content copies would double the payload.
  delete a['gen_ai.input.messages']
  delete a['gen_ai.output.messages']
  if (hasContent(rec)) {
    if (rec.messages !== null && rec.messages !== undefined) a['mlflow.spanInputs'] = j(inputsOf(rec))
    if (rec.response !== null && rec.response !== undefined) a['mlflow.spanOutputs'] = j(outputsOf(rec))
  }
  for (let i = 1; i < spans.length; i++) spans[i]!.attributes['mlflow.spanType'] = j('LLM')
  return spans
}

export function createMlflowSink(o: SinkContext): Sink {
  const { options, env } = o
  const uri = strOption('mlflow', options, 'tracking_uri') ?? env.MLFLOW_TRACKING_URI
  if (!uri) {
    throw gatewayError('GW_ERR_CONFIG_INVALID',
      'mlflow: no tracking server. Set MLFLOW_TRACKING_URI or `tracking_uri` in the mlflow sink options.')
  }
  checkUrl('mlflow', uri, 'tracking_uri')
  const experiment = strOption('mlflow', options, 'experiment_id') ?? (env.MLFLOW_EXPERIMENT_ID || '0')
  const headers: Record<string, string> = { ...headersOption('mlflow', options), 'x-mlflow-experiment-id': experiment }
  const token = strOption('mlflow', options, 'token') ?? env.MLFLOW_TRACKING_TOKEN
  const user = strOption('mlflow', options, 'username') ?? env.MLFLOW_TRACKING_USERNAME
  const password = strOption('mlflow', options, 'password') ?? env.MLFLOW_TRACKING_PASSWORD
  if (token) headers.authorization = `Bearer ${token}`
  else if (user) headers.authorization = `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`
  const serviceName = strOption('mlflow', options, 'service_name') ?? (env.OTEL_SERVICE_NAME || 'switchyard')
  return otlpSink(o, {
    name: 'mlflow',
    url: uri.replace(/\/+$/, '') + '/v1/traces',
    headers,
    resource: resourceOf(serviceName, env),
    // MLflow answers 400 to anything but application/x-protobuf.
    json: false,
    timeoutMs: intOption('mlflow', options, 'timeout_ms', DEFAULT_TIMEOUT_MS),
    maxBatch: intOption('mlflow', options, 'max_batch', DEFAULT_MAX_BATCH),
    spans: mlflowSpans,
  })
}
