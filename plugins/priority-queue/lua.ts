/**
 * The Lua side of the shared gate (gate-redis.ts explains the keys and the protocol). Every script that can free
 * capacity ends in `pump()`, which moves the best admissible waiters into slots and PUBLISHes each on its replica's
 * channel as `<member> <minute>` (the minute it was counted in, so its tokens are corrected in that minute).
 *
 * KEYS: [1] waiter liveness zset, per level i: [2i] slots, [2i+1] queue, then [2L+2] this minute's counts.
 * ARGV: [1] now, [2] parallel capacity ('' = none), [3] saturation threshold, [4] '1' when reservation shares apply,
 * [5] lease expiry, [6] channel prefix, [7] key ttl ms, [8] rpm ('' = none), [9] tpm ('' = none), [10] level count L,
 * [11 .. 10+L] per-level limits ('' = none), then each script's own from A = 11 + L.
 */

/** A member's fields: `<arrival ms, 15 digits>|<replica>|<seq>|<estimated tokens>|<priority>`. */
const PRELUDE = `
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2]) or math.huge
local sat = tonumber(ARGV[3])
local reserved = ARGV[4] == '1'
local leaseExp = ARGV[5]
local chan = ARGV[6]
local ttl = ARGV[7]
local rpm = tonumber(ARGV[8])
local tpm = tonumber(ARGV[9])
local rated = rpm ~= nil or tpm ~= nil
local L = tonumber(ARGV[10])
local limits = {}
for i = 1, L do limits[i] = tonumber(ARGV[10 + i]) end
local A = 11 + L
local MK = KEYS[2 * L + 2]
local minute = string.format('%d', math.floor(now / 60000))
local per = {}
local total = 0
local mr, mt = 0, 0
-- Set by pump() when the best waiter with a slot does not fit this minute: its score and member.
local hb, hm = nil, nil

local function load()
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #dead > 0 then
    for i = 1, L do redis.call('ZREM', KEYS[2 * i + 1], unpack(dead)) end
    redis.call('ZREM', KEYS[1], unpack(dead))
  end
  total = 0
  for i = 1, L do
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', now)
    per[i] = redis.call('ZCARD', KEYS[2 * i])
    total = total + per[i]
  end
  if rated then
    local v = redis.call('HMGET', MK, 'r', 't')
    mr = tonumber(v[1]) or 0
    mt = tonumber(v[2]) or 0
  end
end

local function tokensOf(m)
  return tonumber(string.match(m, '^[^|]*|[^|]*|[^|]*|([^|]*)|')) or 0
end

-- True when this minute cannot take one more call of tok tokens (an empty minute takes any one call).
local function refuses(tok)
  if rpm ~= nil and mr >= rpm then return true end
  if tpm ~= nil then
    if mt == 0 then return tpm <= 0 end
    return mt + tok > tpm
  end
  return false
end

local function admissible(i)
  if total >= cap then return false end
  if not reserved or total / cap < sat then return true end
  return limits[i] == nil or per[i] < limits[i]
end

local function take(i, m, tok)
  redis.call('ZADD', KEYS[2 * i], leaseExp, m)
  per[i] = per[i] + 1
  total = total + 1
  if rated then
    mr = redis.call('HINCRBY', MK, 'r', 1)
    if tok > 0 then mt = redis.call('HINCRBY', MK, 't', tok) end
    redis.call('PEXPIRE', MK, 120000)
  end
end

local function pump()
  hb, hm = nil, nil
  while total < cap do
    local bi, bm, bs = nil, nil, nil
    for i = 1, L do
      if admissible(i) then
        local top = redis.call('ZRANGE', KEYS[2 * i + 1], 0, 0, 'WITHSCORES')
        if #top > 0 then
          local s = tonumber(top[2])
          if bi == nil or s < bs or (s == bs and top[1] < bm) then bi, bm, bs = i, top[1], s end
        end
      end
    end
    if bi == nil then return end
    local tok = tokensOf(bm)
    -- Head-of-line: nobody passes the best waiter this minute (see queue.ts).
    if rated and refuses(tok) then
      hb, hm = bs, bm
      return
    end
    redis.call('ZREM', KEYS[2 * bi + 1], bm)
    redis.call('ZREM', KEYS[1], bm)
    take(bi, bm, tok)
    local replica = string.match(bm, '^[^|]*|([^|]*)|')
    if replica then redis.call('PUBLISH', chan .. replica, bm .. ' ' .. minute) end
  end
end

local function touch()
  for i = 1, 2 * L + 1 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
`

/**
 * ARGV[A] member, [A+1] level index, [A+2] priority, [A+3] '1' = may queue, [A+4] liveness expiry.
 * Returns {r, total, m}: r 1 admitted, 0 queued, -1 refused (not queued); m 1 when this minute's rpm/tpm (or a waiter
 * it holds ahead of the call) is what stopped it, 0 when only the parallel capacity did.
 */
export const ENTER = PRELUDE + `
local m, li, pr = ARGV[A], tonumber(ARGV[A + 1]), tonumber(ARGV[A + 2])
local mayQueue = ARGV[A + 3] == '1'
load()
pump()
local held = false
if rated then
  -- A waiter held by the minute is ahead unless this call ranks before it (a call that may not queue ranks last).
  if hm ~= nil and not (mayQueue and (pr < hb or (pr == hb and m < hm))) then held = true
  else held = refuses(tokensOf(m)) end
end
local r = -1
if not held and admissible(li) then
  take(li, m, tokensOf(m))
  r = 1
elseif mayQueue then
  redis.call('ZADD', KEYS[2 * li + 1], pr, m)
  redis.call('ZADD', KEYS[1], ARGV[A + 4], m)
  r = 0
end
touch()
return {r, total, held and 1 or 0}
`

/** ARGV[A] member, [A+1] level index. Returns 0 = left the queue, 1 = it had been admitted (slot freed), -1 = unknown. */
export const LEAVE = PRELUDE + `
local m, li = ARGV[A], tonumber(ARGV[A + 1])
load()
local r = -1
if redis.call('ZREM', KEYS[2 * li + 1], m) == 1 then
  redis.call('ZREM', KEYS[1], m)
  r = 0
elseif redis.call('ZREM', KEYS[2 * li], m) == 1 then
  per[li] = per[li] - 1
  total = total - 1
  r = 1
end
pump()
return r
`

/** ARGV[A] member, [A+1] level index. */
export const RELEASE = PRELUDE + `
local m, li = ARGV[A], tonumber(ARGV[A + 1])
load()
if redis.call('ZREM', KEYS[2 * li], m) == 1 then
  per[li] = per[li] - 1
  total = total - 1
end
pump()
return 1
`

/** The minute boundary: admit whoever this minute takes. Idempotent, so every replica with waiters may run it. */
export const PUMP = PRELUDE + `
load()
pump()
return total
`

/**
 * ARGV[A] liveness expiry, [A+1] held count H, then H pairs (member, level index), then triples (member, level
 * index, priority) of waiters. Re-adds what a restarted Redis lost. Returns the waiters that hold a slot now.
 */
export const BEAT = PRELUDE + `
local wexp = ARGV[A]
local h = tonumber(ARGV[A + 1])
local j = A + 2
for _ = 1, h do
  redis.call('ZADD', KEYS[2 * tonumber(ARGV[j + 1])], leaseExp, ARGV[j])
  j = j + 2
end
local waiting = {}
while j <= #ARGV do
  local m, li = ARGV[j], tonumber(ARGV[j + 1])
  if redis.call('ZSCORE', KEYS[2 * li], m) then
    redis.call('ZADD', KEYS[2 * li], leaseExp, m)
  else
    redis.call('ZADD', KEYS[2 * li + 1], ARGV[j + 2], m)
    redis.call('ZADD', KEYS[1], wexp, m)
  end
  waiting[#waiting + 1] = {m, li}
  j = j + 3
end
load()
pump()
touch()
local admitted = {}
for _, w in ipairs(waiting) do
  if redis.call('ZSCORE', KEYS[2 * w[2]], w[1]) then admitted[#admitted + 1] = w[1] end
end
return admitted
`

/**
 * After a call: KEYS[1] the minute it was counted in, ARGV[1] real minus estimated tokens. Never below 0, and a
 * minute already expired is not brought back.
 */
export const CORRECT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
if v < 0 then redis.call('HSET', KEYS[1], 't', 0) end
return 1
`
