import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Pool } from 'undici'
const [root, logLevel, upPort, gwPort, stream] = process.argv.slice(2)
const dir = mkdtempSync(path.join(os.tmpdir(), 'cpu-'))
const cfg = path.join(dir, 'c.yaml')
writeFileSync(cfg, `server: { log_level: ${logLevel} }\nmodel_list:\n  - model_name: gpt-4o-mini\n    litellm_params: { model: openai/gpt-4o-mini, api_base: http://127.0.0.1:${upPort}/v1, api_key: sk-upstream }\ngeneral_settings: { master_key: sk-bench }\n`)
const child = spawn(process.execPath, [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROF] : []), path.join(root, 'dist/core/cli.js'), '--config', cfg, '--port', gwPort, '--host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] })
await new Promise<void>((r) => { let b = ''; let ok = false; child.stderr!.on('data', (d) => { if (ok) return; b += d; if (/listening/.test(b)) { ok = true; r() } }) })
const ticks = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]) }
const pool = new Pool(`http://127.0.0.1:${gwPort}`, { connections: 16 })
const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], ...(stream === 'stream' ? { stream: true } : {}) })
async function run(n: number) {
  let i = 0
  await Promise.all(Array.from({ length: 16 }, async () => { while (i++ < n) { const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' }, body }); await r.body.text() } }))
}
await run(3000)
const t0 = ticks(); const N = 20000; await run(N); const t1 = ticks()
console.log(`${logLevel} ${stream}: ${((t1 - t0) * 10000 / N).toFixed(1)} µs CPU per request`)
await pool.close(); child.kill('SIGTERM'); await new Promise((r) => child.on('exit', r))
