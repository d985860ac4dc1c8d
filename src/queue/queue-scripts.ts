/**
 * The delivery queue's Lua scripts. Each state change of a job is one script, so a job is never half-moved:
 * it is in exactly one of `ready`, `delayed`, `active` or `failed`, and its JSON in `jobs` says who holds it.
 *
 * A job's JSON: `m` message id, `d` domain, `p` priority, `r` priority rank, `t` enqueued (ms), `a` attempts
 * that threw, `s` runs ended (reported, or lost with their lease), `st` times its lease ran out. A job held by a
 * run is in no set but `active`, as the member "<id> <token>"; taking it writes nothing to its JSON (the taker is
 * handed the JSON with `s` counting its own run and `k` its token). A job's ready score is `r × 1e13 + t`:
 * verification first, then oldest first.
 *
 * Due delayed jobs move to ready at most 200 per step, oldest due first; so that a verification retry never waits
 * behind a backlog of due bulk retries, the verification jobs among `delayed` are also in `delayedVerification`
 * (same score), and a step that finds a full batch due moves the due ones of that lane too.
 */
import type { Redis } from 'ioredis';

/** The rank of verification jobs (PRIORITY_RANK in delivery-queue.ts): theirs is the `delayedVerification` lane. */
const LANE = `
local LANE_RANK = 1`;

/**
 * Lua: `enqueueJobs(jobs, ready, delayed, wake, args, from, to, lane)` adds the jobs given in args[from..to] as groups
 * of (id, json, ready score, due ms or 0), each unless its id is present (live or failed), and wakes an idle worker.
 * A delayed verification job also goes in `lane` (delayedVerification; nil: the caller queues none delayed).
 * Used by ENQUEUE and by the message store's create script, which stores a message and queues its jobs at once.
 */
export const ENQUEUE_FN = `${LANE}
local function enqueueJobs(jobs, ready, delayed, wake, args, from, to, lane)
  local added = 0
  for i = from, to, 4 do
    if redis.call('HSETNX', jobs, args[i], args[i + 1]) == 1 then
      local due = tonumber(args[i + 3])
      if due > 0 then
        redis.call('ZADD', delayed, due, args[i])
        if lane and cjson.decode(args[i + 1]).r == LANE_RANK then redis.call('ZADD', lane, due, args[i]) end
      else
        redis.call('ZADD', ready, args[i + 2], args[i])
      end
      added = added + 1
    end
  end
  if added > 0 and redis.call('LLEN', wake) == 0 then redis.call('LPUSH', wake, '1') end
  return added
end`;

// KEYS: jobs, ready, delayed, wake, delayedVerification. ARGV: groups of (id, json, ready score, due ms or 0).
const ENQUEUE = `${ENQUEUE_FN}
return enqueueJobs(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV, 1, #ARGV, KEYS[5])`;

// Moves due delayed jobs to ready; shared by STEP and PROMOTE.
const READY_SCORE = `
local function readyScore(raw) local j = cjson.decode(raw) return j.r * 1e13 + j.t end`;

// The hash of a taken job's message (key), as HGETALL answers it, when its body (the hash's 'body' field, as the
// message store's create script writes it) is at most max bytes; false when it is larger, missing or not a hash
// (the worker then reads it itself, as before).
const PRELOAD = `
local function preload(key, max)
  local len = redis.pcall('HSTRLEN', key, 'body')
  if type(len) ~= 'number' or len > max then return false end
  local h = redis.pcall('HGETALL', key)
  if h.err or #h == 0 then return false end
  return h
end`;

// KEYS: jobs, ready, delayed, active, failed, wake, delayedVerification.
// ARGV: now, lease end, how many to take, max attempts, token prefix, check delayed ('1'/'0'), op count, message
// key prefix ('' reads no message), largest body read with a job (bytes), then per op (kind, id, token, at): kind
// 'c' completed, 'd' run again at `at`, 'e' threw (counts an attempt; failed after max attempts). A running job's
// `active` member is "<id> <token>": an op whose run no longer holds the lease (it ran out and another run took
// the job) finds no member and changes nothing.
// Returns {per taken job: id, JSON, its message's hash or false; earliest delayed due ms or '' (none) or false
// (not checked)}.
const STEP = `${READY_SCORE}${PRELOAD}${LANE}
local jobs, ready, delayed, active, failed, wake, lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local now = tonumber(ARGV[1])
local i = 10
for _ = 1, tonumber(ARGV[7]) do
  local kind, id, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local at = tonumber(ARGV[i + 3])
  i = i + 4
  if redis.call('ZREM', active, id .. ' ' .. token) == 1 then
    if kind == 'c' then
      redis.call('HDEL', jobs, id)
    else
      local raw = redis.call('HGET', jobs, id)
      if raw then
        local j = cjson.decode(raw)
        j.k = nil
        j.s = (j.s or 0) + 1
        if kind == 'e' then j.a = (j.a or 0) + 1 end
        if kind == 'e' and j.a >= tonumber(ARGV[4]) then redis.call('ZADD', failed, now, id)
        elseif at <= now then redis.call('ZADD', ready, j.r * 1e13 + j.t, id)
        else
          redis.call('ZADD', delayed, at, id)
          if j.r == LANE_RANK then redis.call('ZADD', lane, at, id) end
        end
        redis.call('HSET', jobs, id, cjson.encode(j))
      end
    end
  end
end
-- The earliest delayed job, when asked: when it is due, due ones move to ready first.
local nxt = false
if ARGV[6] == '1' then
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] and tonumber(first[2]) <= now then
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 200)
    for _, id in ipairs(due) do
      redis.call('ZREM', delayed, id)
      local raw = redis.call('HGET', jobs, id)
      if raw then
        local j = cjson.decode(raw)
        redis.call('ZADD', ready, j.r * 1e13 + j.t, id)
        if j.r == LANE_RANK then redis.call('ZREM', lane, id) end
      end
    end
    -- A full batch: more may be due behind it, oldest first. The due verification jobs among them move now too.
    if #due == 200 then
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', lane, '-inf', now, 'LIMIT', 0, 200)) do
        redis.call('ZREM', lane, id)
        -- Only a job that is in delayed and due there (a lane entry of a job no longer delayed is stale).
        local at = redis.call('ZSCORE', delayed, id)
        if at and tonumber(at) <= now then
          redis.call('ZREM', delayed, id)
          local raw = redis.call('HGET', jobs, id)
          if raw then redis.call('ZADD', ready, readyScore(raw), id) end
        end
      end
    end
    first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  end
  nxt = first[2] or ''
end
local out = {}
local take = tonumber(ARGV[3])
if take > 0 then
  local popped = redis.call('ZPOPMIN', ready, take)
  for n = 1, #popped, 2 do
    local id = popped[n]
    local raw = redis.call('HGET', jobs, id)
    if raw then
      -- Not written back: the active member says who holds the job (one write less per run).
      local j = cjson.decode(raw)
      j.s = (j.s or 0) + 1
      j.k = ARGV[5] .. j.s
      redis.call('ZADD', active, ARGV[2], id .. ' ' .. j.k)
      out[#out + 1] = id
      out[#out + 1] = cjson.encode(j)
      -- Its message too: the worker would read it next, in a round trip of its own.
      out[#out + 1] = ARGV[8] ~= '' and preload(ARGV[8] .. j.m, tonumber(ARGV[9])) or false
    end
  end
  -- More ready than this worker could take: wake another idle one.
  if #popped == take * 2 and redis.call('EXISTS', ready) == 1 and redis.call('LLEN', wake) == 0 then redis.call('LPUSH', wake, '1') end
end
return {out, nxt}`;

// KEYS: active. ARGV: lease end, then pairs (id, token). Returns the positions (from 0) of the pairs whose token no
// longer holds the job: a token is the job's run count, so only the pair names the run.
const EXTEND = `
local lost = {}
for i = 2, #ARGV, 2 do
  local member = ARGV[i] .. ' ' .. ARGV[i + 1]
  if redis.call('ZSCORE', KEYS[1], member) then redis.call('ZADD', KEYS[1], ARGV[1], member)
  else lost[#lost + 1] = i / 2 - 1 end
end
return lost`;

// KEYS: jobs, ready, active, failed, wake. ARGV: now, max stalls, drop failed jobs older than (ms).
// Jobs whose lease ran out (their worker died or stopped renewing) go back to ready, or to failed after
// `max stalls` such returns; failed jobs past retention are deleted. Returns {returned, failed, dropped}.
const RECOVER = `${READY_SCORE}
local members = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, 200)
local back, failedN = 0, 0
for _, member in ipairs(members) do
  redis.call('ZREM', KEYS[3], member)
  local sp = string.find(member, ' ', 1, true)
  local id = string.sub(member, 1, sp - 1)
  local raw = redis.call('HGET', KEYS[1], id)
  -- A job has one active member at most: the member removed above was its holder.
  if raw then
    local j = cjson.decode(raw)
    j.k = nil
    j.s = (j.s or 0) + 1
    j.st = (j.st or 0) + 1
    if j.st > tonumber(ARGV[2]) then
      redis.call('ZADD', KEYS[4], ARGV[1], id)
      failedN = failedN + 1
    else
      redis.call('ZADD', KEYS[2], j.r * 1e13 + j.t, id)
      back = back + 1
    end
    redis.call('HSET', KEYS[1], id, cjson.encode(j))
  end
end
if back > 0 and redis.call('LLEN', KEYS[5]) == 0 then redis.call('LPUSH', KEYS[5], '1') end
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[3], 'LIMIT', 0, 200)
for _, id in ipairs(old) do
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[1], id)
end
return {back, failedN, #old}`;

// KEYS: jobs, ready, from (delayed or failed), wake, delayedVerification. ARGV: reset attempts ('1' or '0'), ids.
// Moves each job found in `from` to ready; returns how many moved.
const PROMOTE = `${READY_SCORE}
local moved = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[3], ARGV[i]) == 1 then
    redis.call('ZREM', KEYS[5], ARGV[i])
    local raw = redis.call('HGET', KEYS[1], ARGV[i])
    if raw then
      if ARGV[1] == '1' then
        local j = cjson.decode(raw)
        j.a = 0
        j.st = 0
        redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(j))
      end
      redis.call('ZADD', KEYS[2], readyScore(raw), ARGV[i])
      moved = moved + 1
    end
  end
end
if moved > 0 and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
return moved`;

// KEYS: jobs, ready, delayed, failed, delayedVerification. ARGV: id. Returns 1 removed, 0 not there, -1 running
// (kept): a job in none of ready, delayed and failed is held by a run.
const REMOVE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local found = redis.call('ZREM', KEYS[2], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1]) + redis.call('ZREM', KEYS[4], ARGV[1])
if found == 0 then return -1 end
redis.call('ZREM', KEYS[5], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])`;

/** An ioredis client with the delivery queue's scripts defined as commands. */
export type QueueRedis = Redis & {
  kurirQueueEnqueue(...args: Array<string | number>): Promise<number>;
  /** Binary replies: a taken job's message hash holds its body as bytes. */
  kurirQueueStepBuffer(...args: Array<string | number>): Promise<[Array<Buffer | Buffer[] | null>, Buffer | null]>;
  kurirQueueExtend(...args: Array<string | number>): Promise<number[]>;
  kurirQueueRecover(...args: Array<string | number>): Promise<[number, number, number]>;
  kurirQueuePromote(...args: Array<string | number>): Promise<number>;
  kurirQueueRemove(...args: Array<string | number>): Promise<number>;
};

/** Defines the queue scripts on `redis` (once per client) and returns it typed with them. */
export function withQueueScripts(redis: Redis): QueueRedis {
  const r = redis as QueueRedis;
  if (typeof r.kurirQueueStepBuffer !== 'function') {
    r.defineCommand('kurirQueueEnqueue', { numberOfKeys: 5, lua: ENQUEUE });
    r.defineCommand('kurirQueueStep', { numberOfKeys: 7, lua: STEP });
    r.defineCommand('kurirQueueExtend', { numberOfKeys: 1, lua: EXTEND });
    r.defineCommand('kurirQueueRecover', { numberOfKeys: 5, lua: RECOVER });
    r.defineCommand('kurirQueuePromote', { numberOfKeys: 5, lua: PROMOTE });
    r.defineCommand('kurirQueueRemove', { numberOfKeys: 5, lua: REMOVE });
  }
  return r;
}
