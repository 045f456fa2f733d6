/**
 * What the generators reading LiteLLM's model_prices_and_context_window.json share (gen-model-limits.ts,
 * gen-media-prices.ts): their command line, the source header, the rows as one JSON string embedded in a .ts module
 * (parsed once at load; see gen-model-limits.ts for why a .ts module and not a .json file), and the write.
 *
 *   npx tsx scripts/gen-<table>.ts [path/to/model_prices_and_context_window.json] [--commit <sha>] [--via <repo>]
 *
 * Defaults read the vendored copy in ../shared/data/litellm (see ../shared/data/README.md for its provenance).
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEFAULT_INPUT = fileURLToPath(new URL('../../shared/data/litellm/model_prices_and_context_window.json', import.meta.url))
/** The vendored copy: BerriAI/litellm's file via the mirror RoCry/llm-api-price (synced from litellm main 2026-07-24). */
const DEFAULT_VIA = 'RoCry/llm-api-price'
const DEFAULT_COMMIT = '8442b939a6ea'
/** Top-level keys of the table that are no model. */
export const SKIP_KEYS: ReadonlySet<string> = new Set(['sample_spec', 'last_updated'])

interface Args { input: string; commit: string; via: string }

function parseArgs(argv: string[]): Args {
  const args: Args = { input: DEFAULT_INPUT, commit: DEFAULT_COMMIT, via: DEFAULT_VIA }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--commit') args.commit = argv[++i] ?? ''
    else if (a === '--via') args.via = argv[++i] ?? ''
    else args.input = a
  }
  if (!args.commit) throw new Error('--commit needs a value')
  return args
}

/** The rows as a JSON object, one model per line, safe inside a template literal. */
export function rowsJson(rows: ReadonlyMap<string, unknown>): string {
  const lines: string[] = []
  for (const [key, row] of rows) lines.push(`${JSON.stringify(key)}:${JSON.stringify(row)}`)
  const json = `{\n${lines.join(',\n')}\n}`
  // The JSON sits in a template literal: it must not close it or open a substitution.
  if (json.includes('`') || json.includes('${') || json.includes('\\')) throw new Error('model key needs escaping in a template literal')
  return json
}

export type Header = Record<string, string | number>

/** Reads the table named on the command line, builds the rows, writes `output` (a path relative to the repo). */
export function generate<Row>(
  output: string, build: (table: Record<string, unknown>) => Map<string, Row>, render: (json: string, header: Header) => string,
): void {
  const args = parseArgs(process.argv.slice(2))
  const text = readFileSync(args.input, 'utf8')
  const table = JSON.parse(text) as Record<string, unknown>
  const rows = build(table)
  const header = {
    source: 'BerriAI/litellm:model_prices_and_context_window.json',
    via: args.via,
    commit: args.commit,
    lastUpdated: typeof table.last_updated === 'string' ? table.last_updated : 'unknown',
    sha256: createHash('sha256').update(text).digest('hex'),
    models: rows.size,
  }
  writeFileSync(`${ROOT}${output}`, render(rowsJson(rows), header))
  process.stdout.write(`wrote ${rows.size} models to ${output}\n`)
}
