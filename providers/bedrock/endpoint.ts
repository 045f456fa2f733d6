/**
 * Where a Bedrock deployment is called: the model id (LiteLLM's route prefixes removed), the region and the runtime
 * endpoint, resolved once per Target (a Target is immutable) and cached, so a request does no string work here.
 *
 * LiteLLM's order (litellm/llms/bedrock/base_aws_llm.py):
 *  - region: litellm_params.aws_region_name, then the region inside a model ARN, then AWS_REGION_NAME, then
 *    AWS_REGION, then us-west-2;
 *  - endpoint: api_base, then aws_bedrock_runtime_endpoint (litellm_params, then AWS_BEDROCK_RUNTIME_ENDPOINT), then
 *    https://bedrock-runtime.{region}.amazonaws.com;
 *  - model: litellm_params.model_id (a provisioned-throughput or application-inference-profile ARN) wins over the
 *    model name, which may carry a `converse/` or `invoke/` route prefix.
 * API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
 */
import { gatewayError } from '../../core/errors.js'
import type { Target } from '../types.js'

/**
 * Target.params key the environment's region lands in (AWS_REGION_NAME, then AWS_REGION). Not `aws_region_name`
 * itself: a region written in the config beats the model ARN's, the environment's does not, so the two must stay
 * apart.
 */
export const ENV_REGION_PARAM = 'aws_region_from_env'

/** LiteLLM's region when nothing names one. */
const DEFAULT_REGION = 'us-west-2'

/** Cross-region inference-profile prefixes (`us.anthropic.claude-...`): not part of the model family. */
const GEO_PREFIXES: ReadonlySet<string> = new Set(['us', 'eu', 'apac', 'jp', 'au', 'ca', 'us-gov', 'global'])

/** arn:aws[-cn|-us-gov]:bedrock:REGION:ACCOUNT:... */
const ARN_REGION = /^arn:aws(?:-[a-z-]+)?:bedrock:([a-z0-9-]+):/

export interface BedrockEndpoint {
  /** Model id or ARN as sent in the path (unencoded). */
  readonly modelId: string
  /** The model family part, geo prefix and ARN removed: `anthropic.claude-3-5-sonnet-20241022-v2:0`. */
  readonly baseModel: string
  readonly region: string
  /** `https://host[:port]` (no trailing slash) the `/model/...` path goes under. */
  readonly base: string
  /** `/model/{modelId, URL-encoded}`: `:` and `/` in ids and ARNs are escaped, as the AWS SDKs send them. */
  readonly modelPath: string
  /** The parts of `base` the signer needs, parsed once. */
  readonly url: { readonly protocol: string; readonly host: string; readonly hostname: string; readonly port: number | undefined; readonly path: string }
}

const cache = new WeakMap<Target, BedrockEndpoint>()

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

export function endpointOf(target: Target): BedrockEndpoint {
  let e = cache.get(target)
  if (e === undefined) cache.set(target, (e = resolve(target)))
  return e
}

function resolve(target: Target): BedrockEndpoint {
  const p = target.params ?? {}
  let name = target.model
  if (name.startsWith('converse/')) name = name.slice('converse/'.length)
  else if (name.startsWith('invoke/')) name = name.slice('invoke/'.length)
  const modelId = str(p.model_id) ?? name
  const region = str(p.aws_region_name) ?? ARN_REGION.exec(modelId)?.[1] ?? ARN_REGION.exec(name)?.[1] ??
    str(p[ENV_REGION_PARAM]) ?? DEFAULT_REGION
  const custom = target.apiBase ?? str(p.aws_bedrock_runtime_endpoint)
  const base = custom ? custom.replace(/\/+$/, '') : `https://bedrock-runtime.${region}.${dnsSuffix(region)}`
  let u: URL
  try {
    u = new URL(base)
  } catch {
    throw gatewayError('GW_ERR_UPSTREAM_CONNECTION', `Invalid bedrock endpoint for model ${target.model}: api_base / aws_bedrock_runtime_endpoint must be a URL`)
  }
  const url = { protocol: u.protocol, host: u.host, hostname: u.hostname, port: u.port ? Number(u.port) : undefined, path: u.pathname.replace(/\/+$/, '') }
  return { modelId, baseModel: baseModel(name), region, base, modelPath: `/model/${encodeURIComponent(modelId)}`, url }
}

/** China regions live under amazonaws.com.cn. */
function dnsSuffix(region: string): string {
  return region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'
}

/** `us.anthropic.claude-x` -> `anthropic.claude-x`; an ARN -> its last path segment, same rule. */
export function baseModel(model: string): string {
  let m = model
  if (m.startsWith('arn:')) m = m.slice(m.lastIndexOf('/') + 1)
  const dot = m.indexOf('.')
  if (dot > 0 && GEO_PREFIXES.has(m.slice(0, dot))) m = m.slice(dot + 1)
  return m
}

/** Model families, from the base model id's vendor prefix. */
export const isAnthropic = (e: BedrockEndpoint): boolean => e.baseModel.startsWith('anthropic.')
export const isNova = (e: BedrockEndpoint): boolean => e.baseModel.startsWith('amazon.nova')
