/**
 * Section 4a, the routing issue's priority run: bench/priority.ts as a child process (its own fake upstream and
 * gateway(s)), once with one gateway and once with two sharing a Redis. Its lines are passed through; its
 * PASS/FAIL lines become target lines. The child runs on the load cores, its gateways on the gateway core.
 */
import { once } from 'node:events'
import path from 'node:path'
import { root } from '../lib/gateway.js'
import { start, stop } from '../lib/procs.js'
import type { BenchContext } from '../lib/context.js'

export interface PriorityRun {
  replicas: number
  lines: string[]
  /** The route lines' verdicts: 'PASS' / 'FAIL' per route. */
  verdicts: { route: string; pass: boolean; line: string }[]
  /** Most calls the upstream held at once, against the group's capacity (more = the gate let too many through). */
  held: { max: number; capacity: number } | null
  exitCode: number | null
}

/** Seconds of priority load per route: half of --seconds, at least 3 (each route also waits out its queue, 3 s). */
export function prioritySeconds(seconds: number): number {
  return Math.max(3, Math.round(seconds / 2))
}

async function runOnce(ctx: BenchContext, replicas: number): Promise<PriorityRun> {
  const args = ['--import', 'tsx', path.join(root, 'bench/priority.ts'), '--seconds', String(prioritySeconds(ctx.seconds)), '--replicas', String(replicas)]
  if (ctx.layout.gateway) args.push('--gateway-cpus', ctx.layout.gateway)
  if (ctx.cpuProf) args.push('--cpu-prof', path.resolve(ctx.cpuProf, `priority-${replicas}`))
  const p = start(`priority-${replicas}`, process.execPath, args, { cpus: ctx.layout.load })
  let out = ''
  p.child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  p.child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d))
  try {
    const [code] = await once(p.child, 'exit') as [number | null]
    const lines = out.trimEnd().split('\n')
    const verdicts = lines.map((line) => /^(\S+)\s+(PASS|FAIL):/.exec(line)).filter((m) => m !== null)
      .map((m) => ({ route: m![1]!, pass: m![2] === 'PASS', line: m!.input }))
    const held = /upstream held at most (\d+) calls at once \(capacity (\d+)\)/.exec(out)
    return { replicas, lines, verdicts, held: held ? { max: Number(held[1]), capacity: Number(held[2]) } : null, exitCode: code }
  } finally {
    await stop(p)
  }
}

export async function priority(ctx: BenchContext): Promise<PriorityRun[]> {
  const runs: PriorityRun[] = []
  for (const replicas of [1, 2]) {
    ctx.progress(`priority: ${replicas} gateway(s)`)
    runs.push(await runOnce(ctx, replicas))
  }
  return runs
}
