/**
 * The gateways the bench runs: their LiteLLM-style config files, starting one from the built CLI (dist/) on a
 * pinned core, a budgeted virtual key, and the evidence that the chain measured is the chain meant (the resolved
 * plugin list, routes that only those plugins mount, headers only they set, spend rows written).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { request } from 'undici'
import { MASTER_KEY, MODEL, SLOW_MODEL } from './fixtures.js'
import { freePort, readyWhen, start, type Started } from './procs.js'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const CLI = path.join(root, 'dist/core/cli.js')
export const FALLBACK_MODEL = `${MODEL}-fallback`

/**
 * `core`: request-id, auth (master key), router; retry: the chain before keys and budgets.
 * `full`: no `pipeline:`, so the default chain, which names every bundled plugin that needs no extra server
 *   (store-sqlite, auth, keys, spend, rate-limit, priority-queue, budget, router; fallback, cooldown, retry), plus
 *   logging (LiteLLM's `callbacks: [otel]`, to the fake upstream as a live OTLP receiver) and prometheus; with
 *   `redisUrl`, state-redis joins it and counters, budgets and the queue's gate live in Redis.
 * `quiet`: the full chain without logging and prometheus (what the observability plugins cost is full - quiet).
 * All: two deployments in the model group (simple-shuffle has a choice to make), num_retries 2 (nothing fails,
 * so no retry happens: its cost is the bookkeeping), max_parallel_requests 4096 per deployment (the priority queue
 * gates every call, never saturated), prices (the spend row carries a cost), and a fallback group.
 */
export function gatewayConfig(chain: 'core' | 'full' | 'quiet', upstream: string, logLevel: string, redisUrl?: string): string {
  const deployment = (name: string, base: string, id: string) => `  - model_name: ${name}
    litellm_params: { model: openai/${MODEL}, api_base: ${upstream}${base}, api_key: sk-upstream, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002, max_parallel_requests: 4096 }
    model_info: { id: ${id} }
`
  return `# Written by bench/run.ts (${chain} chain).
server: { log_level: ${logLevel} }
model_list:
${deployment(MODEL, '/v1', 'deployment-a')}${deployment(MODEL, '/v1', 'deployment-b')}${deployment(FALLBACK_MODEL, '/v1', 'deployment-fallback')}${deployment(SLOW_MODEL, '/slow/v1', 'deployment-slow')}
router_settings: { routing_strategy: simple-shuffle, num_retries: 2${redisUrl ? `, redis_url: "${redisUrl}"` : ''} }
general_settings: { master_key: ${MASTER_KEY} }
${chain === 'core'
    ? 'pipeline: [request-id, auth, router]\nupstream: [retry]\n'
    : chain === 'quiet'
      ? `litellm_settings: { fallbacks: [{ ${MODEL}: [${FALLBACK_MODEL}] }] }\n`
      : `litellm_settings: { fallbacks: [{ ${MODEL}: [${FALLBACK_MODEL}] }], callbacks: [otel, prometheus] }\n` +
        // The OTLP sink ships every call's record to a live local receiver: the fake upstream, which answers it 200.
        `environment_variables: { OTEL_EXPORTER_OTLP_ENDPOINT: "${upstream}" }\n`}`
}

export interface Gateway {
  proc: Started
  url: string
  config: string
  dataDir: string
}

export interface GatewayStart {
  label: string
  config: string
  /** SWITCHYARD_DATA_DIR (the SQLite file); two replicas given the same one share it. */
  dataDir: string
  cpus: string
  /** Directory for logs. */
  dir: string
  /** Write a CPU profile into this directory on exit. */
  cpuProf?: string | undefined
}

export async function startGateway(o: GatewayStart): Promise<Gateway> {
  const port = await freePort()
  mkdirSync(o.dataDir, { recursive: true })
  const prof = o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(o.cpuProf, o.label)] : []
  const proc = start(o.label, process.execPath, [...prof, CLI, '--config', o.config, '--port', String(port), '--host', '127.0.0.1'], {
    cpus: o.cpus, log: path.join(o.dir, `${o.label}.log`), env: { SWITCHYARD_DATA_DIR: o.dataDir },
  })
  const url = `http://127.0.0.1:${port}`
  await readyWhen(proc, async () => {
    try {
      const r = await request(`${url}/health/readiness`)
      await r.body.text()
      return r.statusCode === 200
    } catch {
      return false
    }
  })
  return { proc, url, config: o.config, dataDir: o.dataDir }
}

/** Write a config file and return its path. */
export function writeConfig(dir: string, name: string, text: string): string {
  const file = path.join(dir, `${name}.yaml`)
  writeFileSync(file, text)
  return file
}

/**
 * A virtual key with a budget and rpm/tpm limits: every call pays the key lookup (cached), the limits and the
 * budget reservation. The limits are far above what any run sends (a budget of $1M against about $0.00003 a call,
 * 10^9 calls and 10^12 tokens a minute), so nothing is refused.
 */
export async function virtualKey(gw: Gateway): Promise<string> {
  const r = await request(`${gw.url}/key/generate`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ key_alias: 'bench', max_budget: 1_000_000, rpm_limit: 1_000_000_000, tpm_limit: 1_000_000_000_000, models: [MODEL, FALLBACK_MODEL, SLOW_MODEL] }),
  })
  const body = await r.body.text()
  if (r.statusCode !== 200) throw new Error(`/key/generate answered ${r.statusCode}: ${body}`)
  return (JSON.parse(body) as { key: string }).key
}

/**
 * The chain a config resolves to, by the same loader the CLI runs (dist/), and the bundled plugins it leaves out:
 * a plugin that lands later and is not in the default chain shows up in that second list until the full config
 * names it.
 */
export async function resolvedChain(config: string, dataDir: string): Promise<{ pipeline: string[]; upstream: string[]; absent: string[] }> {
  const load = await import(pathToFileURL(path.join(root, 'dist/core/config/load.js')).href) as {
    loadConfigFile(file: string, opts: { env: Record<string, string | undefined> }): Promise<{ pipeline: { name: string }[]; upstream: { name: string }[] }>
  }
  const bundled = await import(pathToFileURL(path.join(root, 'dist/plugins/index.js')).href) as { bundledPlugins: readonly { name: string }[] }
  const c = await load.loadConfigFile(config, { env: { ...process.env, SWITCHYARD_DATA_DIR: dataDir } })
  const names = new Set([...c.pipeline, ...c.upstream].map((e) => e.name))
  return { pipeline: c.pipeline.map((e) => e.name), upstream: c.upstream.map((e) => e.name), absent: bundled.bundledPlugins.map((p) => p.name).filter((n) => !names.has(n)) }
}

/**
 * Evidence from the running gateway that the full chain is live: routes only the keys, spend and priority-queue
 * plugins mount, and on one call the headers only rate-limit, budget and the router set. Returns the missing ones.
 */
export async function chainEvidence(gw: Gateway, key: string, body: string): Promise<{ seen: string[]; missing: string[] }> {
  const seen: string[] = []
  const missing: string[] = []
  const routes = await request(`${gw.url}/routes`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })
  const listed = JSON.stringify(await routes.body.json())
  for (const [route, plugin] of [['/key/generate', 'keys'], ['/spend/logs', 'keys'], ['/queue/status', 'priority-queue'], ['/metrics', 'prometheus']] as const) {
    ;(listed.includes(`"${route}"`) ? seen : missing).push(`${plugin} ${route}`)
  }
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body })
  await r.body.text()
  if (r.statusCode !== 200) missing.push(`a 200 for one call (got ${r.statusCode})`)
  for (const [header, plugin] of [['x-ratelimit-remaining-requests', 'rate-limit'], ['x-litellm-key-spend', 'budget'], ['x-litellm-model-id', 'router']] as const) {
    ;(r.headers[header] !== undefined ? seen : missing).push(`${plugin} ${header}`)
  }
  return { seen, missing }
}

/** Spend-log rows in a gateway's SQLite file (read after it stopped, so its last batch is in). */
export function spendRows(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'switchyard.db'), { readonly: true, fileMustExist: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM sy_spend_logs').get() as { n: number }).n
  } finally {
    db.close()
  }
}

/** Error-level lines a gateway logged (JSON lines on stderr, kept in its log file): how many, and the first. */
export function loggedErrors(gw: Gateway): { count: number; first: string } {
  let text = ''
  try {
    text = readFileSync(gw.proc.log, 'utf8')
  } catch {
    return { count: 0, first: '' }
  }
  const lines = text.split('\n').filter((l) => l.includes('"level":"error"'))
  return { count: lines.length, first: lines[0] ?? '' }
}
