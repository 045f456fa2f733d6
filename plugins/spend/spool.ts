/**
 * Spool files of the spend writer (writer.ts): JSON lines, one SpendLogRow each, read back in bounded batches. The
 * naming and claiming rules are in writer.ts; this file only reads and inspects them.
 */
import { open } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import type { SpendLogRow } from '../../core/store.js'

const READ_CHUNK_BYTES = 256 * 1024 // 256 KiB
const NEWLINE = 0x0a

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT'
}

export interface SpoolFile {
  path: string
  /** Byte offset of the first row not yet written. */
  offset: number
  /** Rows left to replay (for stats). */
  remaining: number
}

/** Whether a process with this pid exists (EPERM: it exists under another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Rows in a spool file: one per line; a last line without its newline (a crash mid-append) counts too. */
export async function countLines(path: string): Promise<number> {
  let n = 0
  let last = NEWLINE
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) n++
    if (chunk.length) last = chunk[chunk.length - 1]!
  }
  return last === NEWLINE ? n : n + 1
}

/**
 * Up to `max` lines from byte `offset` of a spool file: the rows, the count of unreadable lines, and the offset after
 * the last line consumed. Nothing left when both counts are 0.
 */
export async function readBatch(path: string, offset: number, max: number): Promise<{ rows: SpendLogRow[]; bad: number; next: number }> {
  const fh = await open(path, 'r')
  try {
    const rows: SpendLogRow[] = []
    let bad = 0
    let base = offset // file offset of data[0]
    let data = Buffer.alloc(0)
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES)
    while (rows.length + bad < max) {
      const { bytesRead } = await fh.read(chunk, 0, READ_CHUNK_BYTES, base + data.length)
      const eof = bytesRead === 0
      // Copy: `chunk` is reused by the next read.
      data = Buffer.concat([data, chunk.subarray(0, bytesRead)])
      let start = 0
      while (rows.length + bad < max) {
        let end = data.indexOf(NEWLINE, start)
        if (end === -1) {
          if (!eof || start === data.length) break
          end = data.length // a last line without its newline
        }
        const line = data.toString('utf8', start, end).trim()
        start = Math.min(end + 1, data.length)
        if (!line) continue
        try {
          const row = JSON.parse(line) as SpendLogRow
          if (row && typeof row === 'object' && typeof row.request_id === 'string') rows.push(row)
          else bad++
        } catch {
          bad++ // a line cut short by a crash mid-append
        }
      }
      data = data.subarray(start)
      base += start
      if (eof) break
    }
    return { rows, bad, next: base }
  } finally {
    await fh.close()
  }
}

