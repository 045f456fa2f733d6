/**
 * What /proc says about a process (Linux). CPU time counts every thread of the process (/proc/PID/stat sums the
 * thread group), so the SQLite worker's writes are in the gateway's figure.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc times (USER_HZ), read once; 100 on every mainstream Linux build. */
const TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** User + system CPU time of a process, µs; null when /proc has no such process. */
export function cpuTimeUs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself hold spaces and parentheses: utime is field 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / TICKS_PER_S
  } catch {
    return null
  }
}

/** Sum of cpuTimeUs over several processes; null if any is gone. */
export function cpuTimeOfUs(pids: readonly number[]): number | null {
  let sum = 0
  for (const pid of pids) {
    const t = cpuTimeUs(pid)
    if (t === null) return null
    sum += t
  }
  return sum
}

/** Resident set now (VmRSS) and its peak since start (VmHWM), bytes; null when the process is gone. */
export function memoryOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return { rss: kib(status, 'VmRSS:') * 1024, hwm: kib(status, 'VmHWM:') * 1024 }
  } catch {
    return null
  }
}

function kib(status: string, field: string): number {
  const at = status.indexOf(field)
  return at < 0 ? NaN : Number.parseInt(status.slice(at + field.length), 10)
}

/** The open-file limit of this process (children inherit it), from /proc/self/limits; null when unreadable. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    return soft === 'unlimited' ? Infinity : Number(soft) || null
  } catch {
    return null
  }
}

/**
 * Busy time of some cores (everything but idle and iowait, any process), µs, from /proc/stat. Minus the CPU time of
 * the process under test, it is what other processes took from that core during a run: on a shared machine, the
 * noise in the figures.
 */
export function coresBusyUs(cores: readonly number[]): number {
  let ticks = 0
  const lines = readFileSync('/proc/stat', 'utf8').split('\n')
  for (const core of cores) {
    const line = lines.find((l) => l.startsWith(`cpu${core} `))
    if (!line) return NaN
    // user nice system idle iowait irq softirq steal ...
    const f = line.split(/\s+/).slice(1).map(Number)
    ticks += f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)
  }
  return (ticks * 1_000_000) / TICKS_PER_S
}
