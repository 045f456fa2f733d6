/**
 * A spend row carries what the call went through, for the logs' detail view: each attempt when there was more than
 * one (retries, fallbacks) and, with LiteLLM's general_settings.store_prompts_in_spend_logs, the messages and the
 * reply. Without that setting no prompt or reply is kept.
 */
import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { jsonCall } from '../helpers/http.js'
import { defaultChat, errorReply, sequence, startUpstream } from '../helpers/upstream.js'

async function rowFor(url: string, requestId: string): Promise<Record<string, any>> {
  const end = Date.now() + 10_000
  for (;;) {
    const r = await jsonCall(url, 'GET', `/spend/logs?request_id=${requestId}`, undefined, 'sk-master')
    const rows = r.body as Array<Record<string, any>>
    if (Array.isArray(rows) && rows.length) return rows[0]!
    if (Date.now() > end) throw new Error(`no spend row for ${requestId}`)
    await new Promise((res) => setTimeout(res, 100))
  }
}

for (const store of [true, false]) {
  t.test(`retries in the row; prompts ${store ? 'kept' : 'not kept'}`, async (t) => {
    const up = await startUpstream(t, { chat: sequence(errorReply(500, { message: 'once' }), defaultChat({ content: 'the answer' })) })
    const gw = await startGateway(t, {
      model_list: [{ model_name: 'g', litellm_params: { model: 'openai/gpt-4o-mini', api_base: up.url, api_key: 'sk' } }],
      general_settings: { master_key: 'sk-master', ...(store ? { store_prompts_in_spend_logs: true } : {}) },
      router_settings: { num_retries: 1 },
    })
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: 'Bearer sk-master', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'the question' }] }),
    })
    t.equal(r.status, 200)
    const row = await rowFor(gw.url, r.headers.get('x-request-id')!)
    t.equal(row.metadata.retries, 1)
    t.equal(row.metadata.fallbacks, 0)
    t.same(row.metadata.attempts.map((a: { status: number }) => a.status), [500, 200])
    if (store) {
      t.same(row.metadata.messages, [{ role: 'user', content: 'the question' }])
      t.equal(row.metadata.response.choices[0].message.content, 'the answer')
    } else {
      t.equal(row.metadata.messages, undefined, 'no prompt kept')
      t.equal(row.metadata.response, undefined, 'no reply kept')
    }
  })
}
