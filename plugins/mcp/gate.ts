/** The per-server concurrency gate of an MCP connection (`max_concurrency`). */
import type { GatewayError } from '../../core/errors.js'

/** A FIFO semaphore: `limit` holders at once, waiters served in arrival order, a waiter leaves on its signal. */
export class Gate {
  active = 0
  private readonly queue: Array<() => void> = []

  constructor(private limit: number) {}

  get waiting(): number {
    return this.queue.length
  }

  setLimit(limit: number): void {
    this.limit = limit
    this.pump()
  }

  /** Resolves with the release function once there is room; rejects with `aborted()` if the signal fires first. */
  acquire(signal: AbortSignal | undefined, aborted: () => GatewayError): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(aborted())
    if (this.active < this.limit && this.queue.length === 0) {
      this.active++
      return Promise.resolve(this.releaser())
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(go)
        if (i >= 0) this.queue.splice(i, 1)
        reject(aborted())
      }
      const go = () => {
        signal?.removeEventListener('abort', onAbort)
        this.active++
        resolve(this.releaser())
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.queue.push(go)
    })
  }

  private releaser(): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      this.active--
      this.pump()
    }
  }

  private pump(): void {
    while (this.active < this.limit && this.queue.length) this.queue.shift()!()
  }
}
