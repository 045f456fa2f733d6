/**
 * Where a Bedrock call goes and how it is signed: the URL for every model form LiteLLM accepts (plain ids, the
 * `converse/` and `invoke/` routes, cross-region profiles, ARNs, `model_id`, api_base and
 * aws_bedrock_runtime_endpoint), the region order, and the SigV4 signature checked against an independent
 * implementation of AWS's documented algorithm (node:crypto only), with the double-encoded canonical URI that
 * `:` in model ids and `/` in ARNs need. Credentials and region from LiteLLM's environment variables through the
 * model table.
 */
import t from 'tap'
import { bedrock } from '../../providers/bedrock/index.js'
import { authorize } from '../../providers/bedrock/sign.js'
import type { Target } from '../../providers/types.js'
import { builtinProviders, createProviderRegistry } from '../../providers/registry.js'
import { createModelTable } from '../../core/models.js'
import { buildConfig } from '../../core/config/load.js'
import { parseAuthorization, sigV4Reference } from './bedrock-fixtures.js'

const KEY_ID = 'AKIDEXAMPLE'
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'

function target(model: string, params: Record<string, unknown> = {}, over: Partial<Target> = {}): Target {
  return {
    id: 't', modelName: 'm', provider: 'bedrock', model, timeoutMs: 1, streamTimeoutMs: 1, weight: 1, dropParams: false,
    additionalDropParams: [], extraHeaders: {}, defaults: {}, modelInfo: {},
    params: { aws_access_key_id: KEY_ID, aws_secret_access_key: SECRET, ...params }, ...over,
  }
}

const ARN = 'arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0'
const ARN_PATH = '/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-haiku-20240307-v1%3A0'

const URLS: Array<{ name: string; t: Target; stream?: boolean; url: string }> = [
  {
    name: 'a plain model id: the region from aws_region_name, `:` escaped',
    t: target('anthropic.claude-3-5-sonnet-20240620-v1:0', { aws_region_name: 'us-east-1' }),
    url: 'https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse',
  },
  {
    name: 'the converse/ route, a cross-region profile, streaming',
    t: target('converse/us.anthropic.claude-3-5-sonnet-20241022-v2:0', { aws_region_name: 'us-west-2' }), stream: true,
    url: 'https://bedrock-runtime.us-west-2.amazonaws.com/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream',
  },
  {
    name: 'the invoke/ route is served by Converse',
    t: target('invoke/anthropic.claude-3-haiku-20240307-v1:0', { aws_region_name: 'us-east-1' }),
    url: 'https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse',
  },
  {
    name: 'an ARN: its region beats the environment\'s; `/` escaped',
    t: target(ARN, { aws_region_from_env: 'us-east-1' }),
    url: `https://bedrock-runtime.eu-west-1.amazonaws.com${ARN_PATH}/converse`,
  },
  {
    name: 'aws_region_name beats the ARN\'s region',
    t: target(ARN, { aws_region_name: 'eu-central-1' }),
    url: `https://bedrock-runtime.eu-central-1.amazonaws.com${ARN_PATH}/converse`,
  },
  {
    name: 'model_id (a provisioned-throughput ARN) is what the path names',
    t: target('anthropic.claude-3-haiku-20240307-v1:0', { model_id: 'arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123def456' }),
    url: 'https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aprovisioned-model%2Fabc123def456/converse',
  },
  {
    name: 'the environment\'s region, then us-west-2',
    t: target('amazon.nova-lite-v1:0', { aws_region_from_env: 'ap-south-1' }),
    url: 'https://bedrock-runtime.ap-south-1.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse',
  },
  { name: 'no region anywhere: us-west-2', t: target('amazon.nova-lite-v1:0'), url: 'https://bedrock-runtime.us-west-2.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse' },
  { name: 'a China region', t: target('amazon.nova-lite-v1:0', { aws_region_name: 'cn-north-1' }), url: 'https://bedrock-runtime.cn-north-1.amazonaws.com.cn/model/amazon.nova-lite-v1%3A0/converse' },
  {
    name: 'aws_bedrock_runtime_endpoint replaces the host',
    t: target('amazon.nova-lite-v1:0', { aws_region_name: 'us-east-1', aws_bedrock_runtime_endpoint: 'https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com/' }),
    url: 'https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse',
  },
  {
    name: 'api_base wins over aws_bedrock_runtime_endpoint, its path kept',
    t: target('amazon.nova-lite-v1:0', { aws_bedrock_runtime_endpoint: 'https://other' }, { apiBase: 'http://127.0.0.1:9/proxy/' }),
    url: 'http://127.0.0.1:9/proxy/model/amazon.nova-lite-v1%3A0/converse',
  },
]

t.test('request URLs and headers', async (t) => {
  for (const c of URLS) {
    const { url, headers } = bedrock.request('chat', c.t, c.stream ?? false)
    t.equal(url, c.url, c.name)
    t.equal(headers['content-type'], 'application/json')
    t.equal(headers.accept, c.stream ? 'application/vnd.amazon.eventstream' : 'application/json')
  }
  const withExtra = bedrock.request('chat', target('amazon.nova-lite-v1:0', {}, { extraHeaders: { 'X-Trace': 'abc' } }), false)
  t.equal(withExtra.headers['x-trace'], 'abc', 'extra_headers are sent')
})

const DATE = new Date('2024-05-01T12:34:56Z')
const AMZ_DATE = '20240501T123456Z'
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'héllo' }] }] })

async function signed(tg: Target, stream = false) {
  const req = bedrock.request('chat', tg, stream)
  return { req, out: await authorize(req, BODY, tg, DATE) }
}

t.test('SigV4 matches AWS\'s documented algorithm, computed independently', async (t) => {
  const cases: Array<[string, Target]> = [
    ['a model id with `:`', target('us.anthropic.claude-3-5-sonnet-20241022-v2:0', { aws_region_name: 'us-east-1' })],
    ['an ARN with `/` and `:`', target(ARN)],
    ['a session token', target('anthropic.claude-3-haiku-20240307-v1:0', { aws_region_name: 'us-east-1', aws_session_token: 'FwoGZXIvYXdzEXAMPLETOKEN' })],
    ['a custom endpoint with a port and a path', target('amazon.nova-lite-v1:0', { aws_region_name: 'us-east-1' }, { apiBase: 'http://127.0.0.1:8443/proxy' })],
  ]
  for (const [name, tg] of cases) {
    const { req, out } = await signed(tg, name === 'an ARN with `/` and `:`')
    const auth = parseAuthorization(out.headers.authorization!)
    t.ok(auth, `${name}: an AWS4-HMAC-SHA256 Authorization header`)
    if (!auth) continue
    const u = new URL(req.url)
    t.equal(auth.accessKeyId, KEY_ID)
    t.equal(auth.service, 'bedrock', `${name}: service bedrock`)
    t.equal(auth.region, bedrock.request('chat', tg, false).url.includes('eu-west-1') ? 'eu-west-1' : 'us-east-1', `${name}: region`)
    t.equal(out.headers['x-amz-date'], AMZ_DATE)
    t.equal(out.headers.host, u.host, `${name}: host sent as signed`)
    for (const h of ['content-type', 'host', 'x-amz-content-sha256', 'x-amz-date']) t.ok(auth.signedHeaders.includes(h), `${name}: ${h} signed`)
    t.notOk(auth.signedHeaders.includes('accept'), `${name}: accept left unsigned`)
    const session = tg.params!.aws_session_token
    t.equal(out.headers['x-amz-security-token'], session, `${name}: session token header`)
    if (session) t.ok(auth.signedHeaders.includes('x-amz-security-token'), 'the session token is signed')
    const headers: Record<string, string> = {}
    for (const h of auth.signedHeaders) headers[h] = out.headers[h]!
    const ref = sigV4Reference({
      method: 'POST', path: u.pathname, headers, body: BODY, amzDate: AMZ_DATE, accessKeyId: KEY_ID, secretAccessKey: SECRET, region: auth.region, service: 'bedrock',
    })
    t.equal(out.headers.authorization, ref.authorization, `${name}: the signature AWS computes`)
    if (name.startsWith('a model id')) t.match(ref.canonicalRequest.split('\n')[1], /v2%253A0\/converse$/, 'canonical URI: `%3A` encoded again')
    if (name.startsWith('an ARN')) t.match(ref.canonicalRequest.split('\n')[1], /inference-profile%252Feu\./, 'canonical URI: `%2F` encoded again')
    const wrong = sigV4Reference({ method: 'POST', path: u.pathname, headers, body: BODY, amzDate: AMZ_DATE, accessKeyId: KEY_ID, secretAccessKey: 'not-the-secret', region: auth.region, service: 'bedrock' })
    t.not(out.headers.authorization, wrong.authorization, `${name}: another secret gives another signature (the check can fail)`)
    const tampered = sigV4Reference({ method: 'POST', path: u.pathname, headers, body: `${BODY} `, amzDate: AMZ_DATE, accessKeyId: KEY_ID, secretAccessKey: SECRET, region: auth.region, service: 'bedrock' })
    t.not(out.headers.authorization, tampered.authorization, `${name}: the body is covered`)
  }
})

t.test('a Bedrock API key is a bearer token; no credentials at all is a 401 before any call', async (t) => {
  const tg = target('amazon.nova-lite-v1:0', {}, { apiKey: 'bedrock-api-key-123' })
  const { out } = await signed(tg)
  t.equal(out.headers.authorization, 'Bearer bedrock-api-key-123')
  t.notOk('x-amz-date' in out.headers, 'not SigV4')
  const none = { ...target('amazon.nova-lite-v1:0'), params: {} }
  await t.rejects(authorize(bedrock.request('chat', none, false), BODY, none), { code: 'GW_ERR_UPSTREAM_AUTH', status: 401, message: /AWS_ACCESS_KEY_ID/ })
  // LiteLLM would assume the role first; signing with the plain keys would act as another identity.
  const role = target('amazon.nova-lite-v1:0', { aws_role_name: 'arn:aws:iam::123456789012:role/bedrock' })
  await t.rejects(authorize(bedrock.request('chat', role, false), BODY, role), { code: 'GW_ERR_UPSTREAM_AUTH', message: /aws_role_name/ })
})

t.test('credentials and region from LiteLLM\'s variables and litellm_params, through the model table', async (t) => {
  const registry = createProviderRegistry([...builtinProviders().filter((p) => p.name !== 'bedrock'), bedrock])
  const config = buildConfig({
    model_list: [
      { model_name: 'env', litellm_params: { model: 'bedrock/anthropic.claude-3-haiku-20240307-v1:0' } },
      { model_name: 'explicit', litellm_params: { model: 'bedrock/anthropic.claude-3-haiku-20240307-v1:0', aws_region_name: 'eu-central-1', aws_access_key_id: 'AKIDCONFIG', aws_secret_access_key: 'cfg' } },
      { model_name: 'arn', litellm_params: { model: `bedrock/${ARN}` } },
    ],
  }, { env: {} })
  const env = { AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'envsecret', AWS_SESSION_TOKEN: 'tok', AWS_REGION_NAME: 'us-east-2', AWS_REGION: 'us-west-1' }
  const models = createModelTable(config, registry, env)
  const e = models.resolve('env')[0]!
  t.equal(e.provider, 'bedrock')
  t.equal(e.model, 'anthropic.claude-3-haiku-20240307-v1:0')
  t.match(e.params, { aws_access_key_id: 'AKIDENV', aws_secret_access_key: 'envsecret', aws_session_token: 'tok' })
  t.match(bedrock.request('chat', e, false).url, /bedrock-runtime\.us-east-2\./, 'AWS_REGION_NAME before AWS_REGION')
  const x = models.resolve('explicit')[0]!
  t.equal(x.params!.aws_access_key_id, 'AKIDCONFIG', 'litellm_params beat the environment')
  t.match(bedrock.request('chat', x, false).url, /bedrock-runtime\.eu-central-1\./)
  t.match(bedrock.request('chat', models.resolve('arn')[0]!, false).url, /bedrock-runtime\.eu-west-1\./, 'the ARN region before the environment\'s')
  const only = createModelTable(config, registry, { AWS_REGION: 'us-west-1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' })
  t.match(bedrock.request('chat', only.resolve('env')[0]!, false).url, /bedrock-runtime\.us-west-1\./, 'AWS_REGION when AWS_REGION_NAME is unset')
  const bearer = createModelTable(config, registry, { AWS_BEARER_TOKEN_BEDROCK: 'bk' })
  t.equal(bearer.resolve('env')[0]!.apiKey, 'bk', 'AWS_BEARER_TOKEN_BEDROCK is the API key')
  const endpoint = createModelTable(config, registry, { AWS_BEDROCK_RUNTIME_ENDPOINT: 'http://127.0.0.1:7' })
  t.equal(bedrock.request('chat', endpoint.resolve('env')[0]!, false).url, 'http://127.0.0.1:7/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse', 'AWS_BEDROCK_RUNTIME_ENDPOINT')
})
