/**
 * Request authorization for Bedrock, in LiteLLM's order (base_aws_llm.py):
 *  1. a Bedrock API key (litellm_params.api_key, else AWS_BEARER_TOKEN_BEDROCK): `Authorization: Bearer`;
 *  2. otherwise AWS SigV4 (service `bedrock`, the deployment's region) over the exact body bytes, with
 *     aws_access_key_id / aws_secret_access_key / aws_session_token (litellm_params, else AWS_ACCESS_KEY_ID /
 *     AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), signed by the maintained @smithy/signature-v4.
 *
 * The canonical URI is the path as sent, escaped once more (the signer's `uriEscapePath`, which every AWS service
 * but S3 wants): a model id `...-v2:0` travels as `...-v2%3A0` and is signed as `...-v2%253A0`, an ARN's `/` as
 * `%2F` / `%252F`. Only host, content-type and x-amz-* headers are signed (LiteLLM's filter): headers a proxy may
 * add or rewrite must not break the signature.
 * Role assumption, profiles and web identity (aws_role_name, aws_profile_name, ...) need STS or files and are not
 * done here; the STS credentials can be given as the three values above.
 * Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 */
import { createRequire } from 'node:module'
import type { SignatureV4 } from '@smithy/signature-v4'
import { gatewayError } from '../../core/errors.js'
import type { ProviderRequest, Target } from '../types.js'
import { endpointOf } from './endpoint.js'

const SIGNED = new Set(['host', 'content-type'])
/**
 * LiteLLM settings that pick another identity (STS role assumption, a profile file, web identity). LiteLLM prefers
 * them over the plain keys, so signing with the keys instead would act as someone else: refused, by name.
 */
const STS_PARAMS = ['aws_role_name', 'aws_profile_name', 'aws_web_identity_token'] as const
/**
 * The signer package is loaded with the first signed call, not at import: every gateway imports every adapter, and
 * @smithy/signature-v4 costs a few hundred ms of start-up a gateway without Bedrock should not pay.
 */
let smithy: { SignatureV4: typeof SignatureV4; sha256: unknown } | null = null
function loadSigner(): NonNullable<typeof smithy> {
  if (smithy) return smithy
  const require = createRequire(import.meta.url)
  const { Hash } = require('@smithy/hash-node') as typeof import('@smithy/hash-node')
  smithy = { SignatureV4: (require('@smithy/signature-v4') as typeof import('@smithy/signature-v4')).SignatureV4, sha256: Hash.bind(null, 'sha256') }
  return smithy
}

/** One signer per deployment: it caches the derived signing key per day. */
const signers = new WeakMap<Target, SignatureV4>()

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function signerFor(target: Target): SignatureV4 {
  let s = signers.get(target)
  if (s) return s
  const p = target.params ?? {}
  for (const k of STS_PARAMS) {
    if (str(p[k])) {
      throw gatewayError('GW_ERR_UPSTREAM_AUTH',
        `bedrock model ${target.model} sets ${k}, which this version does not support (no STS or profile lookup); ` +
        'give the credentials as aws_access_key_id / aws_secret_access_key / aws_session_token', { provider: 'bedrock' })
    }
  }
  const accessKeyId = str(p.aws_access_key_id)
  const secretAccessKey = str(p.aws_secret_access_key)
  if (!accessKeyId || !secretAccessKey) {
    throw gatewayError('GW_ERR_UPSTREAM_AUTH',
      `No AWS credentials for bedrock model ${target.model}: set aws_access_key_id and aws_secret_access_key in ` +
      'litellm_params (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK)',
      { provider: 'bedrock' })
  }
  const sessionToken = str(p.aws_session_token)
  const { SignatureV4, sha256 } = loadSigner()
  s = new SignatureV4({
    service: 'bedrock',
    region: endpointOf(target).region,
    credentials: sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey },
    sha256: sha256 as never,
  })
  signers.set(target, s)
  return s
}

/** `now` is for tests (a fixed signing date); production signs with the current time. */
export async function authorize(req: ProviderRequest, body: string | Uint8Array, target: Target, now?: Date): Promise<ProviderRequest> {
  if (target.apiKey) return { url: req.url, headers: { ...req.headers, authorization: `Bearer ${target.apiKey}` } }
  const signer = signerFor(target)
  const e = endpointOf(target)
  if (!req.url.startsWith(e.base)) throw gatewayError('GW_ERR_INTERNAL', 'bedrock: the request URL is not under the deployment endpoint')
  const toSign: Record<string, string> = { host: e.url.host }
  for (const k in req.headers) {
    const name = k.toLowerCase()
    if (SIGNED.has(name) || name.startsWith('x-amz-')) toSign[name] = req.headers[k]!
  }
  const signed = await signer.sign({
    method: 'POST',
    protocol: e.url.protocol,
    hostname: e.url.hostname,
    port: e.url.port,
    path: e.url.path + req.url.slice(e.base.length),
    query: {},
    headers: toSign,
    body,
  }, now ? { signingDate: now } : undefined)
  return { url: req.url, headers: { ...req.headers, ...signed.headers } }
}
