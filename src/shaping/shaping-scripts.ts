/**
 * The Lua scripts of provider shaping (each decision is one atomic script, timed by the caller's injected
 * clock, passed in as `now`, ms) and their registration on an ioredis client. The KEYS/ARGV orders documented here are the contract with the
 * callers in shaping-slots.ts.
 */
import type { Redis } from 'ioredis';

/**
 * Lua: parks a job in a held set (a sorted set scored by the message's expiry, `deadline`; none: for good) and drops
 * the entries whose message has expired, so that a job that ends at its expiry while held leaves nothing behind it.
 * Costs nothing on the path of a job that is not held.
 */
const HOLD = `
local function hold(key)
  if jobId == '' then return end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local score = '+inf'
  if deadline > 0 then score = deadline end
  redis.call('ZADD', key, score, jobId)
end`;

/**
 * Lua: is the recipient domain paused by an admin? Needs `now`, `jobId`, `deadline`, `domainKeys` (index of the
 * paused-domains hash in KEYS; the domain's held set follows it), `domain` and HOLD; returns {6, waitMs (-1: until
 * resumed), '', until} and parks the job in the domain's held set when it is. A timed pause that has run out is removed.
 */
const DOMAIN_PAUSE_CHECK = `
if domain ~= '' then
  local dp = redis.call('HGET', KEYS[domainKeys], domain)
  if dp then
    local untilMs = tonumber(string.match(dp, '^(%d+)')) or 0
    if untilMs == 0 or untilMs > now then
      hold(KEYS[domainKeys + 1])
      local wait = -1
      if untilMs > 0 then wait = math.ceil(untilMs - now) end
      return {6, wait, '', tostring(untilMs)}
    end
    redis.call('HDEL', KEYS[domainKeys], domain)
    redis.call('DEL', KEYS[domainKeys + 1])
  end
end`;

// KEYS: state leases held booked waiters(of this priority) pausedDomains domainHeld.
// ARGV: maxRate maxConn reserved isVerification burst leaseId leaseMs jobId horizonMs domain now firstRun('1': the job's
// first run, so it cannot be in the held, booked or waiting sets and their clean-up is skipped) deadline (ms, 0: none;
// the message's expiry: a slot or turn after it would never be used, so none is taken; a held entry is dropped after it)
// Returns { status, waitMs, effectiveRate, pausedUntil }: 0 ok, 1 paused by an admin (waitMs -1 = until
// resumed), 2 backing off after a "too fast" reply, 3 no connection slot, 4 over the rate (come back in
// waitMs: the job's turn in the queue for the booking window, or the slot it did not book because its message
// expires before it), 5 a rate slot is booked in waitMs, 6 the recipient domain is paused by an admin.
const ACQUIRE = `
local now = tonumber(ARGV[11])
local jobId = ARGV[8]
local domain = ARGV[10]
local deadline = tonumber(ARGV[13]) or 0
local domainKeys = 6
${HOLD}
${DOMAIN_PAUSE_CHECK}
local st = redis.call('HMGET', KEYS[1], 'rate', 'tat', 'pausedUntil', 'adminPaused')
local maxRate = tonumber(ARGV[1])
local rate = tonumber(st[1]) or maxRate
if maxRate > 0 and rate > maxRate then rate = maxRate end
local admin = tonumber(st[4])
if admin and (admin == 0 or admin > now) then
  hold(KEYS[3])
  local wait = -1
  if admin > 0 then wait = admin - now end
  return {1, wait, tostring(rate), tostring(admin)}
end
local pausedUntil = tonumber(st[3]) or 0
if pausedUntil > now then
  hold(KEYS[3])
  return {2, pausedUntil - now, tostring(rate), tostring(pausedUntil)}
end
local maxConn = tonumber(ARGV[2])
if maxConn > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local limit = maxConn
  if ARGV[4] ~= '1' then limit = math.max(1, maxConn - tonumber(ARGV[3])) end
  if redis.call('ZCARD', KEYS[2]) >= limit then return {3, 0, tostring(rate), '0'} end
end
-- A job on its first run was never parked, booked or queued for a slot: nothing of it to clear.
local fresh = ARGV[12] == '1'
local booked = false
if jobId ~= '' and not fresh and redis.call('ZREM', KEYS[4], jobId) == 1 then booked = true end
if rate > 0 and not booked then
  local interval = 60000 / rate
  local tat = tonumber(st[2]) or now
  if tat < now then tat = now end
  local horizon = math.max(tonumber(ARGV[9]), interval)
  -- One tick of the millisecond clock on top of the burst: the GCRA's arrival time is fractional, and
  -- without it at most 1 + burst messages would pass per millisecond however high the rate.
  local tolerance = interval * tonumber(ARGV[5]) + 1
  -- Verification never waits behind slots that other messages booked.
  if ARGV[4] == '1' then tolerance = tolerance + horizon end
  if tat - now > tolerance then
    -- A slot or a place among the waiters after the message's expiry would stay unused (the job comes back at the
    -- expiry and is expired then) and hold back every job behind it: the job takes neither, and leaves its old place.
    if jobId ~= '' and deadline > 0 and tat > deadline and tat - now <= horizon then
      redis.call('ZREM', KEYS[5], jobId)
      return {4, math.ceil(tat - now), tostring(rate), '0'}
    end
    if jobId ~= '' and tat - now <= horizon then
      redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat + interval))
      redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60000)
      redis.call('ZADD', KEYS[4], math.floor(tat), jobId)
      redis.call('ZREM', KEYS[5], jobId)
      return {5, math.ceil(tat - now), tostring(rate), '0'}
    end
    local wait = tat - horizon - now
    if jobId ~= '' then
      redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
      wait = wait + redis.call('ZCARD', KEYS[5]) * interval
      if deadline > 0 and now + wait > deadline then
        redis.call('ZREM', KEYS[5], jobId)
      else
        redis.call('ZADD', KEYS[5], math.floor(now + wait), jobId)
      end
    end
    return {4, math.ceil(wait), tostring(rate), '0'}
  end
  redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat + interval))
end
if maxConn > 0 then redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), ARGV[6]) end
if jobId ~= '' and not fresh then
  redis.call('ZREM', KEYS[3], jobId)
  redis.call('ZREM', KEYS[5], jobId)
  if domain ~= '' then redis.call('ZREM', KEYS[7], jobId) end
end
return {0, 0, tostring(rate), '0'}`;

// The domain check alone, for a job whose provider is not known before its MX lookup.
// KEYS: pausedDomains domainHeld. ARGV: jobId domain now firstRun deadline (as ACQUIRE's). Returns {0} or the refusal of
// DOMAIN_PAUSE_CHECK.
const DOMAIN_CHECK = `
local now = tonumber(ARGV[3])
local jobId = ARGV[1]
local domain = ARGV[2]
local deadline = tonumber(ARGV[5]) or 0
local domainKeys = 1
${HOLD}
${DOMAIN_PAUSE_CHECK}
if jobId ~= '' and ARGV[4] ~= '1' then redis.call('ZREM', KEYS[2], jobId) end
return {0, 0, '', '0'}`;

// KEYS: state leases booked. ARGV: leaseId outcome maxRate minRate backoffMs recoverAfter recoverStep afterSuccesses reply adaptive now
// outcome: ok | throttle | other | none. Returns { event, effectiveRate, pausedUntil }; event is
// none | paused | recovered | ignored (a throttle signal inside the current back-off window, or too few successes).
const RELEASE = `
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
if ARGV[10] ~= '1' or ARGV[2] == 'none' or ARGV[2] == 'other' then return {'none', '', '0'} end
local now = tonumber(ARGV[11])
local maxRate = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'rate', 'pausedUntil', 'streak')
local rate = tonumber(st[1]) or maxRate
if maxRate > 0 and rate > maxRate then rate = maxRate end
if ARGV[2] == 'ok' then
  redis.call('HINCRBY', KEYS[1], 'streak', 1)
  if maxRate <= 0 or rate >= maxRate then return {'none', tostring(rate), '0'} end
  local clean = redis.call('HINCRBY', KEYS[1], 'clean', 1)
  if clean < tonumber(ARGV[6]) then return {'none', tostring(rate), '0'} end
  rate = math.min(maxRate, rate * (1 + tonumber(ARGV[7])))
  if rate >= maxRate then
    redis.call('HDEL', KEYS[1], 'rate')
  else
    redis.call('HSET', KEYS[1], 'rate', string.format('%.3f', rate))
  end
  redis.call('HSET', KEYS[1], 'clean', 0)
  return {'recovered', tostring(rate), '0'}
end
-- throttle
local pausedUntil = tonumber(st[2]) or 0
if pausedUntil > now then return {'ignored', tostring(rate), tostring(pausedUntil)} end
if (tonumber(st[3]) or 0) < tonumber(ARGV[8]) then return {'ignored', tostring(rate), '0'} end
pausedUntil = now + tonumber(ARGV[5])
if maxRate > 0 then
  rate = math.max(tonumber(ARGV[4]), rate / 2)
  redis.call('HSET', KEYS[1], 'rate', string.format('%.3f', rate))
end
redis.call('HSET', KEYS[1], 'pausedUntil', pausedUntil, 'throttledAt', now, 'clean', 0, 'streak', 0, 'lastSignal', ARGV[9], 'tat', pausedUntil)
-- Slots booked at the old rate are void: their jobs queue again at the new rate after the pause.
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'throttles', 1)
return {'paused', tostring(rate), tostring(pausedUntil)}`;

/** An ioredis client with the shaping scripts defined as commands. */
export type ShapingRedis = Redis & {
  kurirShapeAcquire(...args: Array<string | number>): Promise<[number, number, string, string]>;
  kurirShapeRelease(...args: Array<string | number>): Promise<[string, string, string]>;
  kurirShapeDomain(...args: Array<string | number>): Promise<[number, number, string, string]>;
};

/** Defines the shaping scripts on `redis` (once per client) and returns it typed with them. */
export function withShapingScripts(redis: Redis): ShapingRedis {
  const r = redis as ShapingRedis;
  if (typeof r.kurirShapeAcquire !== 'function') {
    r.defineCommand('kurirShapeAcquire', { numberOfKeys: 7, lua: ACQUIRE });
    r.defineCommand('kurirShapeRelease', { numberOfKeys: 3, lua: RELEASE });
    r.defineCommand('kurirShapeDomain', { numberOfKeys: 2, lua: DOMAIN_CHECK });
  }
  return r;
}
