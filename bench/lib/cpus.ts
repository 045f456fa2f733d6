/**
 * Which cores run what. With `taskset` and two or more allowed cores, the process under test (bare proxy or
 * gateway) gets the first core to itself and everything else (the load generator, the fake upstream, Redis, this
 * process) shares the rest, so the gateway's figures are not muddied by the load it is under. With four or more
 * cores the second replica of the replica run gets its own core too.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

export interface CpuLayout {
  /** Cores this process may use (its affinity), ascending. */
  allowed: number[]
  pinned: boolean
  /** taskset -c lists; '' when not pinned. */
  gateway: string
  /** The second replica's core: its own with >= 4 cores, else the gateway's. */
  gateway2: string
  load: string
  /** One line for the report header. */
  describe: string
}

/** Cores in a Cpus_allowed_list such as "0-3,6". */
export function parseCpuList(list: string): number[] {
  const out: number[] = []
  for (const part of list.trim().split(',')) {
    if (!part) continue
    const [a, b] = part.split('-').map(Number)
    for (let c = a!; c <= (b ?? a!); c++) out.push(c)
  }
  return out
}

function allowedCpus(): number[] {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'))
    if (line) return parseCpuList(line.slice('Cpus_allowed_list:'.length))
  } catch { /* not Linux: fall through */ }
  return Array.from({ length: os.availableParallelism() }, (_, i) => i)
}

export function cpuLayout(): CpuLayout {
  const allowed = allowedCpus()
  const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0
  if (!hasTaskset || allowed.length < 2) {
    const why = !hasTaskset ? 'no taskset on PATH' : 'only one core'
    return { allowed, pinned: false, gateway: '', gateway2: '', load: '', describe: `not pinned (${why}): every process shares the cores` }
  }
  const [gw, second, ...rest] = allowed as [number, number, ...number[]]
  const own2 = allowed.length >= 4
  const load = own2 ? rest : [second, ...rest]
  const gateway2 = String(own2 ? second : gw)
  return {
    allowed, pinned: true, gateway: String(gw), gateway2, load: load.join(','),
    describe: `pinned with taskset: process under test on core ${gw}${own2 ? ` (second replica on ${second})` : ''}, ` +
      `load + fake upstream + Redis on ${load.join(',')}`,
  }
}

/** The command line that runs `cmd args` on `cpus` (unchanged when not pinned). taskset execs, so the PID is cmd's. */
export function onCpus(cpus: string, cmd: string, args: readonly string[]): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, [...args]]
}

/** Move this process (all its threads) onto `cpus`; children it starts later inherit that affinity. */
export function pinSelf(cpus: string): void {
  if (cpus) spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' })
}
