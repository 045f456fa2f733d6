/**
 * A small structured logger: one JSON line per event on stderr. `child()` adds bound fields (requestId).
 *
 * Writes to stderr are synchronous when it is a pipe or a file on Linux (a container's log pipe, `2> file`), so one
 * write per line would put a syscall on every request (the access line). Lines are batched instead and written
 * once per event-loop turn (setImmediate), and whatever is pending is flushed synchronously when the process exits.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export interface Logger {
  level: LogLevel
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  child(bindings: Record<string, unknown>): Logger
}

export interface LoggerOptions {
  level?: LogLevel
  /** Where lines go; defaults to process.stderr. Tests pass an array sink. */
  write?: (line: string) => void
  bindings?: Record<string, unknown>
}

/** Whether a field is an Error (JSON.stringify alone would print it as {}). */
function hasError(fields: Record<string, unknown>): boolean {
  for (const k in fields) if (fields[k] instanceof Error) return true
  return false
}

/** A copy of the fields with each object field passed through errorFields. */
function withErrorFields(fields: Record<string, unknown>): Record<string, unknown> {
  const rec: Record<string, unknown> = {}
  for (const k in fields) {
    const v = fields[k]
    rec[k] = typeof v === 'object' && v !== null ? errorFields(v) : v
  }
  return rec
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack }
    if ('code' in value) out.code = (value as { code: unknown }).code
    if (value.cause !== undefined) out.cause = errorFields(value.cause)
    return out
  }
  return value
}

/** Flush now past this many pending characters, so a burst cannot grow the buffer without bound: 1 MiB. */
const MAX_PENDING = 1024 * 1024
let pending = ''
let scheduled = false
let exitHooked = false

function flushStderr(): void {
  scheduled = false
  if (!pending) return
  const out = pending
  pending = ''
  process.stderr.write(out)
}

/** The default sink: lines batched per event-loop turn (see above). */
function batchedStderr(line: string): void {
  pending += line
  if (pending.length > MAX_PENDING) return flushStderr()
  if (!scheduled) {
    scheduled = true
    setImmediate(flushStderr)
  }
  if (!exitHooked) {
    exitHooked = true
    process.once('exit', flushStderr)
  }
}

/** The ISO time, formatted once per millisecond: under load many lines share one. */
let lastMs = 0
let lastIso = ''
function isoNow(): string {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    lastIso = new Date(now).toISOString()
  }
  return lastIso
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? batchedStderr
  const bindings = opts.bindings ?? {}
  const logger: Logger = {
    level: opts.level ?? 'info',
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (extra) => createLogger({ level: logger.level, write, bindings: { ...bindings, ...extra } }),
  }
  // Bound fields as JSON text once per logger, not per line.
  const bound = Object.keys(bindings).length ? ',' + JSON.stringify(bindings).slice(1, -1) : ''
  function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < RANK[logger.level]) return
    const head = `{"time":"${isoNow()}","level":"${level}","msg":${JSON.stringify(msg)}${bound}`
    if (!fields) return write(head + '}\n')
    // Plain fields (the access line, every request) are serialised as they are, without a copy; an Error field goes
    // through errorFields. A field named like a bound one appears twice in the text; JSON parsers keep the last,
    // the field, as before.
    const text = JSON.stringify(hasError(fields) ? withErrorFields(fields) : fields)
    write(text.length > 2 ? head + ',' + text.slice(1) + '\n' : head + '}\n')
  }
  return logger
}
