/**
 * The README's provider table is the registry: every adapter (but the mock's own row, listed too) is in exactly one
 * row, each row's operations are its adapters' operations, and every test file a row names exists and mentions that
 * provider, so the table cannot claim an operation nobody built or cite a test that is not there.
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { builtinProviders } from '../providers/registry.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const readme = readFileSync(`${root}README.md`, 'utf8')
const start = readme.indexOf('## Providers\n')
const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
const rows = section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Provider') && !l.startsWith('|---'))
  .map((l) => l.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, '')))

const adapters = new Map(builtinProviders().map((a) => [a.name, a]))

t.test('one row per adapter, with its operations', async (t) => {
  t.ok(rows.length >= 10, 'the table was found')
  const seen = new Set<string>()
  for (const [who, ops] of rows) {
    const names = [...who!.matchAll(/`([a-z_][a-z0-9_-]*)\/`/g)].map((m) => m[1]!)
    t.ok(names.length > 0, `row names a provider: ${who}`)
    const listed = ops!.split(', ').sort()
    for (const name of names) {
      const a = adapters.get(name)
      t.ok(a, `${name} is a registered adapter`)
      if (!a) continue
      t.notOk(seen.has(name), `${name} is in one row only`)
      seen.add(name)
      t.same(listed, [...a.operations].sort(), `${name}: the operations listed are the adapter's`)
    }
  }
  t.same([...adapters.keys()].filter((n) => !seen.has(n)), [], 'every adapter has a row')
})

t.test('every test file a row names exists and exercises that provider', async (t) => {
  for (const [who, , , tests] of rows) {
    const names = [...who!.matchAll(/`([a-z_][a-z0-9_-]*)\/`/g)].map((m) => m[1]!)
    const files = [...tests!.matchAll(/`(test\/[^`]+)`/g)].map((m) => m[1]!)
    t.ok(files.length > 0, `${names[0]}: names its tests`)
    for (const f of files) {
      t.ok(existsSync(`${root}${f}`), `${f} exists`)
      const text = readFileSync(`${root}${f}`, 'utf8')
      // The compatible hosts are tested as one table (every preset's URL and key) plus groq end to end.
      const mentions = names.some((n) => text.includes(n)) || /OPENAI_COMPATIBLE/.test(text) || names[0] === 'openai'
      t.ok(mentions, `${f} mentions ${names.join(', ')}`)
    }
  }
})
