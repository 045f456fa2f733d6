/**
 * Cooldowns shared between replicas through Redis (`cradle.redis`, whose client already prefixes keys with `sy:`).
 * A failure is one Lua call (count it in the current minute's window; set the cooldown when it crosses the line), so
 * two replicas counting failures of one deployment cannot both read a stale count. A read is one MGET for the group.
 *
 * Redis down: the in-process store takes over (the client fails fast: no offline queue after the first connect),
 * with one warning per outage. Reads merge both stores, so a cooldown set in process during an outage still holds
 * on this replica once Redis is back.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../../core/logger.js'
import type { CooldownParams, CooldownStore } from './index.js'

// KEYS: failure counter of the window, cooldown key. ARGV: window ttl ms, immediate (0/1), allowed fails, until
// (ms epoch), cooldown ms. Returns 1 when the deployment now cools.
const FAIL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if ARGV[2] == '1' or n > tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
  return 1
end
return 0`

/** Slack on the Redis ttl of a cooldown key, ms: the value (until, by the gateway's clock) decides; the ttl only cleans up. */
const TTL_SLACK_MS = 1_000

type Scripted = Redis & {
  syCooldownFail(failsKey: string, coolKey: string, windowTtlMs: number, immediate: string, allowed: number, until: number, cooldownMs: number): Promise<number>
}

export function redisCooldowns(redis: Redis, local: CooldownStore, p: CooldownParams, logger: Logger): CooldownStore {
  if (!(redis as unknown as Partial<Scripted>).syCooldownFail) redis.defineCommand('syCooldownFail', { numberOfKeys: 2, lua: FAIL })
  const r = redis as Scripted
  let down = false
  function failed(err: unknown): void {
    if (down) return
    down = true
    logger.warn('cooldown: Redis unreachable; cooldowns are kept in process until it is back', { err: (err as Error).message })
  }
  function ok(): void {
    if (!down) return
    down = false
    logger.info('cooldown: Redis reachable again; cooldowns are shared again')
  }
  return {
    async fail(id, now, immediate, allowed = p.allowedFails) {
      const until = now + p.cooldownMs
      const window = Math.floor(now / p.windowMs)
      try {
        const cooled = await r.syCooldownFail(`cooldown:fails:${id}:${window}`, `cooldown:${id}`,
          p.windowMs * 2, immediate ? '1' : '0', allowed, until, p.cooldownMs + TTL_SLACK_MS)
        ok()
        return cooled === 1 ? until : 0
      } catch (err) {
        failed(err)
        return local.fail(id, now, immediate, allowed)
      }
    },
    async until(ids, now) {
      const mine = await local.until(ids, now)
      try {
        const shared = await r.mget(ids.map((id) => `cooldown:${id}`))
        ok()
        return mine.map((u, i) => {
          const s = shared[i] == null ? 0 : Number(shared[i])
          return s > now && s > u ? s : u
        })
      } catch (err) {
        failed(err)
        return mine
      }
    },
  }
}
