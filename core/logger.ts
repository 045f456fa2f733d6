/**
 * A small structured logger: one JSON line per event on stderr, written with process.stderr.write (asynchronous
 * for pipes and files on POSIX, so the hot path never blocks on it). `child()` adds bound fields (requestId).
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

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack }
    if ('code' in value) out.code = (value as { code: unknown }).code
    if (value.cause !== undefined) out.cause = errorFields(value.cause)
    return out
  }
  return value
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => void process.stderr.write(line))
  const bindings = opts.bindings ?? {}
  const logger: Logger = {
    level: opts.level ?? 'info',
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (extra) => createLogger({ level: logger.level, write, bindings: { ...bindings, ...extra } }),
  }
  function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < RANK[logger.level]) return
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...bindings }
    if (fields) for (const k of Object.keys(fields)) rec[k] = errorFields(fields[k])
    write(JSON.stringify(rec) + '\n')
  }
  return logger
}
