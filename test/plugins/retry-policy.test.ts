/**
 * retry_policy (LiteLLM's RetryPolicy): retries per error class override num_retries for that class, also for a
 * class that is not retried otherwise (400), and model_group_retry_policy wins for its group. Through a real gateway,
 * the official openai client and a real fake upstream; the upstream's request count is the number of attempts.
 */
import t from 'tap'
import OpenAI from 'openai'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, errorReply, sequence, startUpstream } from '../helpers/upstream.js'

const up = await startUpstream(t)
const gw = await startGateway(t, `
pipeline: [request-id, router]
upstream:
  - retry:
      num_retries: 0
      initial_backoff_ms: 0
      retry_policy:
        BadRequestErrorRetries: 1
        AuthenticationErrorRetries: 0
        TimeoutErrorRetries: 1
        RateLimitErrorRetries: 2
        ContentPolicyViolationErrorRetries: 0
        InternalServerErrorRetries: 3
      model_group_retry_policy:
        special: { RateLimitErrorRetries: 0 }
model_list:
  - model_name: gpt-4o
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up }
  - model_name: special
    litellm_params: { model: openai/gpt-4o, api_base: ${up.url}, api_key: sk-up }
`)
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-x', maxRetries: 0 })
const messages = [{ role: 'user' as const, content: 'hi' }]

/** Upstream requests one call makes, and the status the client got (200 on success). */
async function attempts(model: string): Promise<{ n: number; status: number }> {
  const before = up.requestsTo('chat').length
  const status = await client.chat.completions.create({ model, messages }).then(() => 200, (e: InstanceType<typeof OpenAI.APIError>) => e.status ?? -1)
  return { n: up.requestsTo('chat').length - before, status }
}

const cases: Array<[string, number, Record<string, unknown>, number]> = [
  ['429 -> RateLimitErrorRetries 2', 429, { message: 'slow down', code: 'rate_limit_exceeded' }, 3],
  ['500 -> InternalServerErrorRetries 3', 500, { message: 'boom' }, 4],
  ['400 -> BadRequestErrorRetries 1 (retried although a 400 is not otherwise)', 400, { message: 'bad' }, 2],
  ['content policy -> its own entry (0) before BadRequestErrorRetries', 400, { message: 'flagged', code: 'content_policy_violation' }, 1],
  ['401 -> AuthenticationErrorRetries 0', 401, { message: 'no key' }, 1],
  ['408 -> TimeoutErrorRetries 1', 408, { message: 'timed out' }, 2],
  ['503 -> not in the policy: num_retries 0', 503, { message: 'overloaded' }, 1],
]

for (const [name, status, error, expected] of cases) {
  t.test(name, async (t) => {
    up.on('chat', errorReply(status, error as { message: string }))
    const r = await attempts('gpt-4o')
    t.equal(r.status, status, 'the error reaches the client')
    t.equal(r.n, expected, `${expected} upstream attempts`)
  })
}

t.test('model_group_retry_policy wins for its group', async (t) => {
  up.on('chat', errorReply(429, { message: 'slow down' }))
  t.same(await attempts('special'), { n: 1, status: 429 }, 'special: RateLimitErrorRetries 0')
  t.same(await attempts('gpt-4o'), { n: 3, status: 429 }, 'other groups keep retry_policy')
})

t.test('retries then success: headers say one retry', async (t) => {
  up.on('chat', sequence(errorReply(429, { message: 'slow down' }), defaultChat()))
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse()
  t.equal(data.object, 'chat.completion')
  t.equal(response.headers.get('x-litellm-attempted-retries'), '1')
  t.equal(response.headers.get('x-litellm-attempted-fallbacks'), '0')
  const log = gw.logs.find((l) => l.msg === 'retrying upstream call' && l.status === 429)
  t.ok(log, 'the retry is logged with its cause')
  t.equal(log?.of, 2, 'the policy count is the retry budget logged')
})
