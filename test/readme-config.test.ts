/**
 * The README's "## Config reference" lists which LiteLLM keys are acted on, ignored with a warning, and refuse to
 * boot. Those lists must be the code's (core/compat/litellm.ts): a key added to one without the other fails here.
 * Each list is then checked against the loader itself, so the exported sets cannot drift from the behaviour either.
 */
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import {
  LITELLM_ACTED_ON, LITELLM_KNOWN_IGNORED, LITELLM_REFUSE_TO_BOOT, REQUEST_DEFAULT_KEYS,
} from '../core/compat/litellm.js'
import { parseConfig } from '../core/config/load.js'

const readme = await readFile(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')

function section(text: string, heading: string, level: '## ' | '### '): string {
  const start = text.indexOf(`\n${level}${heading}`)
  if (start === -1) throw new Error(`README has no "${level}${heading}" heading`)
  const rest = text.slice(start + 1)
  const next = rest.slice(level.length).search(new RegExp(`\\n${level === '## ' ? '## ' : '#{2,3} '}`))
  return next === -1 ? rest : rest.slice(0, next + level.length)
}

/** `| label | `a`, `b` |` rows of the first table in `text` -> label -> backticked names in the given column. */
function tableRows(text: string, column: number): Map<string, string[]> {
  const rows = new Map<string, string[]>()
  let inTable = false
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      if (inTable) break // the first table only; a mapping table may follow
      continue
    }
    inTable = true
    if (/^\|\s*-/.test(line)) continue
    const cells = line.split('|').slice(1, -1).map((c) => c.trim())
    if (cells[0] === 'section' || cells[0] === 'key') continue
    rows.set(cells[0]!, [...cells[column]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!))
  }
  return rows
}

const reference = section(readme, 'Config reference', '## ')
const sorted = (xs: Iterable<string>) => [...xs].sort()

t.test('acted on: the README table is LITELLM_ACTED_ON and REQUEST_DEFAULT_KEYS, section by section', async (t) => {
  const rows = tableRows(section(reference, 'LiteLLM keys acted on', '### '), 1)
  const expected: Record<string, ReadonlySet<string>> = {
    'top level': LITELLM_ACTED_ON.top,
    '`general_settings`': LITELLM_ACTED_ON.general_settings,
    '`litellm_settings`': LITELLM_ACTED_ON.litellm_settings,
    '`router_settings`': LITELLM_ACTED_ON.router_settings,
    '`model_list[]`': LITELLM_ACTED_ON['model_list[]'],
    '`litellm_params`': LITELLM_ACTED_ON.litellm_params,
    '`litellm_params` request defaults': REQUEST_DEFAULT_KEYS,
    '`model_info`': LITELLM_ACTED_ON.model_info,
  }
  t.same(sorted(rows.keys()), sorted(Object.keys(expected)), 'one row per section')
  for (const [label, keys] of Object.entries(expected)) t.same(sorted(rows.get(label) ?? []), sorted(keys), label)
})

t.test('ignored with a warning: the README table is LITELLM_KNOWN_IGNORED', async (t) => {
  const rows = tableRows(section(reference, 'LiteLLM keys ignored with a warning', '### '), 1)
  t.same([...rows.keys()], ['top level'])
  t.same(sorted(rows.get('top level') ?? []), sorted(LITELLM_KNOWN_IGNORED))
})

t.test('refuse to boot: the README table is LITELLM_REFUSE_TO_BOOT', async (t) => {
  const rows = tableRows(section(reference, 'LiteLLM keys that refuse to boot', '### '), 0)
  const keys = [...rows.keys()].map((k) => k.replace(/^`|`$/g, ''))
  t.same(sorted(keys), sorted(Object.keys(LITELLM_REFUSE_TO_BOOT)))
})

t.test('the sets match the loader: acted-on keys are not warned about, known-ignored ones are, misspelt ones refuse', async (t) => {
  const generalSamples: Record<string, unknown> = {
    master_key: 'sk-1', strict_config: false, database_url: 'postgresql://u@127.0.0.1:5432/db', store_model_in_db: true, budget_mode: 'strict',
  }
  const general = Object.fromEntries([...LITELLM_ACTED_ON.general_settings].map((k) => [k, generalSamples[k] ?? 1]))
  const c = parseConfig(JSON.stringify({
    general_settings: general,
    litellm_settings: { drop_params: true, request_timeout: 5, num_retries: 1, set_verbose: false, json_logs: true, max_end_user_budget: 1 },
    router_settings: {
      routing_strategy: 'simple-shuffle', num_retries: 1, timeout: 5, stream_timeout: 5, redis_host: '127.0.0.1', redis_port: 6379,
      redis_password: 'p', redis_url: 'redis://127.0.0.1:6379',
    },
    environment_variables: {},
    model_list: [{
      model_name: 'm', tpm: 1, rpm: 1,
      litellm_params: Object.fromEntries([...LITELLM_ACTED_ON.litellm_params, ...REQUEST_DEFAULT_KEYS].map((k) => [k, sample(k)])),
      model_info: { id: 'x', owned_by: 'me', input_cost_per_token: 0, output_cost_per_token: 0 },
    }],
  }), { env: {} })
  t.same(c.warnings, [], 'every acted-on key loads without a warning')

  const ignored = parseConfig(JSON.stringify(Object.fromEntries([...LITELLM_KNOWN_IGNORED].map((k) => [k, {}]))), { env: {} })
  t.match(ignored.warnings.join('\n'), [...LITELLM_KNOWN_IGNORED].join(', '), 'every known-ignored key is in the one warning')
  t.throws(() => parseConfig('pipline: []\n', { env: {} }), { code: 'GW_ERR_CONFIG_INVALID' }, 'a misspelt section refuses')
})

/** A valid value for each litellm_params key (the schema checks types). */
function sample(k: string): unknown {
  const values: Record<string, unknown> = {
    model: 'mock/x', api_base: 'http://127.0.0.1:9/v1', base_url: 'http://127.0.0.1:9/v1', api_key: 'k', api_version: 'v',
    organization: 'o', custom_llm_provider: 'mock', mock_response: 'hi', drop_params: true, additional_drop_params: ['x'],
    extra_headers: { a: 'b' }, user: 'u', stop: 'x', response_format: { type: 'text' }, tool_choice: 'auto',
    parallel_tool_calls: true, logprobs: false, logit_bias: {}, reasoning_effort: 'low', service_tier: 'auto',
    encoding_format: 'float', timeout: 1, stream_timeout: 1, weight: 1,
  }
  return k in values ? values[k] : 1
}
