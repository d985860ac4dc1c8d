/**
 * The message store's Lua scripts. A message is two keys: a hash (`record` JSON, `body` the signed message
 * until it is final, and `r:<address>` each recipient's state JSON) and a list (its timeline), so that a
 * delivery reads it with one HGETALL and each state change is one script.
 */
import type { Redis } from 'ioredis';
import { ENQUEUE_FN } from '../queue/queue-scripts.js';
import { FINAL_RECIPIENT_STATUSES } from './types.js';

/**
 * How long RECORD remembers a write id it applied: past the longest retry of one write (a delivery's record waits up
 * to 10 minutes for Redis, DELIVERED_RECORD_MS in src/delivery/stages/outcome.ts), with a margin for the retry in flight.
 */
export const RECORD_WRITE_ID_TTL_MS = 15 * 60_000;

/** Hash field of a recipient's state. Addresses always hold an `@`, so they never meet `record` or `body`. */
export const RECIPIENT_FIELD_PREFIX = 'r:';

// HSET of fields in chunks (Lua's unpack has a stack limit; a message may have many recipients).
const HSET_FN = `
local function hsetAll(key, fields)
  for i = 1, #fields, 1000 do redis.call('HSET', key, unpack(fields, i, math.min(i + 999, #fields))) end
end`;

// Creates every key of a message at once, or nothing when the id is already taken (idempotent retries that
// reuse an id must not overwrite or duplicate), and queues its delivery jobs in the same step when asked
// (stored and queued, or neither). KEYS: msg events mid-index live outbox rcpt-index... [ref-index] [queue jobs
// ready delayed wake]; ARGV: record body id index-ttl createdAt oldest-kept per-address-cap trim outbox-grace-ms n
// job-args-count event×n job-arg×count (address state)... The Message-ID index lets bounce reports without VERP
// find the message; the live index lets the reconciler find messages whose delivery job was lost; the recipient
// indexes let support find every message to an address, newest first, and the reference index every message with
// one booking reference. Trimming an index (old entries, entries over the cap) is done when `trim` is '1': the
// store asks for it on a fraction of its writes, as readers never look past the cap. With an outbox grace above 0
// the events after `queued` also go into the webhook outbox, as RECORD does.
const CREATE = `${ENQUEUE_FN}${HSET_FN}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local nEvents, nJobArgs = tonumber(ARGV[10]), tonumber(ARGV[11])
local firstRcpt = 12 + nEvents + nJobArgs
local fields = {'record', ARGV[1], 'body', ARGV[2]}
for i = firstRcpt, #ARGV, 2 do
  fields[#fields + 1] = '${RECIPIENT_FIELD_PREFIX}' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
hsetAll(KEYS[1], fields)
redis.call('RPUSH', KEYS[2], unpack(ARGV, 12, 11 + nEvents))
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
local grace = tonumber(ARGV[9])
if grace > 0 and nEvents > 1 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[5], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + grace, ARGV[3] .. ':1:' .. (nEvents - 1))
end
local lastIndex = #KEYS
if nJobArgs > 0 then lastIndex = #KEYS - 4 end
for i = 6, lastIndex do
  redis.call('ZADD', KEYS[i], ARGV[5], ARGV[3])
  if ARGV[8] == '1' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[6])
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(tonumber(ARGV[7]) + 1))
  end
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
if nJobArgs > 0 then enqueueJobs(KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS], ARGV, 12 + nEvents, 11 + nEvents + nJobArgs) end
return 1`;

// Records an attempt (or any state change) in one step. KEYS: msg events live outbox; ARGV: id ttl want-record
// outbox-grace-ms n-updates n-addresses (address state)×n-updates address×n-addresses event…, where the addresses are every
// recipient of the message (none: the script reads them from the record). The states before the change are read
// with the record in one HMGET, so a message that is gone (taken back at intake, or past its retention) changes
// nothing: no hash or timeline is recreated without expiry. Final when every recipient's status is final after
// the updates: then the body goes, the live index entry goes, and the hash and timeline expire after the
// retention. A non-final state never replaces a final one: an attempt still in its SMTP transaction when the
// message was cancelled, or overtaken by another run after its lease ran out, and then deferred, leaves the
// recipient as it is (its events are still appended: the attempt happened). Nor does `expired` replace a final
// state: a cancel or an expiry racing a delivery that was recorded first. Nor does a second delivery replace the
// first: a recipient already `delivered` keeps its state, and the part of a `delivered` event naming it is split off
// and marked `"duplicate":true` (two runs of one job both sent; src/delivery/stages/outcome.ts), in this same step so
// that no second record slips in between a check and the write. With an outbox grace above 0 the events also go into
// the webhook outbox (src/store/webhook-outbox.ts), due after the grace by Redis's clock. With a fifth key (the
// write's id, Keys.recordWrite) the write is applied once: a retry of it whose first try was applied but whose
// answer was lost changes nothing and answers what the first answered. Only a retry looks the id up (ARGV[3] + 2):
// a first try cannot have been applied, and the lookup would cost every delivery a command. ARGV[3] is 1 (or 3) when
// the record JSON is asked for. Answers {events length after the push, 1 when
// final, the record JSON when asked for, the duplicate addresses, the events as pushed when a duplicate changed them
// (else false), 0}; a replay: {the first's length, final and duplicates, the record when asked for, the first's
// events as pushed, 1 when they went into the outbox, else 2}.
const RECORD = `${HSET_FN}
local flags = tonumber(ARGV[3])
local wantRecord, retry = flags % 2 == 1, flags >= 2
if KEYS[5] and retry then
  local done = redis.call('GET', KEYS[5])
  if done then
    local first = cjson.decode(done)
    local record = wantRecord and redis.call('HGET', KEYS[1], 'record')
    local pushed = {}
    if first.n > 0 then pushed = redis.call('LRANGE', KEYS[2], first.length - first.n, first.length - 1) end
    return {first.length, first.final, record, first.duplicates, pushed, first.outboxed == 1 and 1 or 2}
  end
end
local n, m = tonumber(ARGV[5]), tonumber(ARGV[6])
local addresses = {}
for i = 7 + 2 * n, 6 + 2 * n + m do addresses[#addresses + 1] = ARGV[i] end
local record
local before = {}
if m > 0 then
  local fields = {'record'}
  for i, a in ipairs(addresses) do fields[i + 1] = '${RECIPIENT_FIELD_PREFIX}' .. a end
  local values = redis.call('HMGET', KEYS[1], unpack(fields))
  record = values[1]
  for i = 1, #addresses do before[i] = values[i + 1] end
else
  record = redis.call('HGET', KEYS[1], 'record')
  if record then
    addresses = cjson.decode(record).recipients
    local fields = {}
    for i, a in ipairs(addresses) do fields[i] = '${RECIPIENT_FIELD_PREFIX}' .. a end
    if #fields > 0 then before = redis.call('HMGET', KEYS[1], unpack(fields)) end
  end
end
if not record then return {0, 0, false} end
local state = {}
for i, a in ipairs(addresses) do state[a] = before[i] end
local finalStatus = {${[...FINAL_RECIPIENT_STATUSES].map((x) => `['${x}'] = true`).join(', ')}}
local fields = {}
local duplicates, isDuplicate = {}, {}
for i = 7, 6 + 2 * n, 2 do
  local address, new, prior = ARGV[i], ARGV[i + 1], state[ARGV[i]]
  -- The states are JSON.stringify's (no spaces; a quote inside a string is escaped), so a plain find is exact and
  -- the common case, a first delivery, decodes nothing.
  local keep = false
  if prior and string.find(new, '"status":"delivered"', 1, true) then
    if string.find(prior, '"status":"delivered"', 1, true) then
      keep = true
      duplicates[#duplicates + 1] = address
      isDuplicate[address] = true
    end
  elseif prior and finalStatus[cjson.decode(prior).status] then
    local status = cjson.decode(new).status
    keep = status == 'expired' or not finalStatus[status]
  end
  if not keep then
    fields[#fields + 1] = '${RECIPIENT_FIELD_PREFIX}' .. address
    fields[#fields + 1] = new
    state[address] = new
  end
end
if #fields > 0 then hsetAll(KEYS[1], fields) end
local firstEvent = 7 + 2 * n + m
local events, rewritten = {}, false
for i = firstEvent, #ARGV do
  local e = ARGV[i]
  if #duplicates > 0 and string.find(e, '"type":"delivered"', 1, true) then
    local event = cjson.decode(e)
    local fresh, again = {}, {}
    if event.type == 'delivered' and type(event.recipients) == 'table' then
      for _, r in ipairs(event.recipients) do
        if isDuplicate[r] then again[#again + 1] = r else fresh[#fresh + 1] = r end
      end
    end
    if #again > 0 then
      rewritten = true
      if #fresh > 0 then
        event.recipients = fresh
        events[#events + 1] = cjson.encode(event)
      end
      event.recipients = again
      event.duplicate = true
      e = cjson.encode(event)
    end
  end
  events[#events + 1] = e
end
local length, outboxed = 0, 0
if #events > 0 then
  length = redis.call('RPUSH', KEYS[2], unpack(events))
  local grace = tonumber(ARGV[4])
  if grace > 0 then
    outboxed = 1
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + grace, ARGV[1] .. ':' .. (length - #events) .. ':' .. #events)
  end
end
local final = #addresses > 0 and 1 or 0
for _, a in ipairs(addresses) do
  local s = state[a]
  if not s or not finalStatus[cjson.decode(s).status] then final = 0 break end
end
if final == 1 then
  redis.call('HDEL', KEYS[1], 'body')
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if KEYS[5] then
  local first = {length = length, final = final, duplicates = duplicates, n = #events, outboxed = outboxed}
  redis.call('SET', KEYS[5], cjson.encode(first), 'PX', ${RECORD_WRITE_ID_TTL_MS})
end
if not wantRecord then record = false end
return {length, final, record, duplicates, rewritten and events or false, 0}`;

// A message without its body: KEYS msg [events]. Answers {record JSON, {address, state JSON or false}…, timeline
// (when the events key is given)}, or false when the record is gone. The addresses come from the record.
const VIEW = `
local record = redis.call('HGET', KEYS[1], 'record')
if not record then return false end
local addresses = cjson.decode(record).recipients
local fields = {}
for i, a in ipairs(addresses) do fields[i] = '${RECIPIENT_FIELD_PREFIX}' .. a end
local states = {}
if #fields > 0 then states = redis.call('HMGET', KEYS[1], unpack(fields)) end
local out = {}
for i, a in ipairs(addresses) do
  out[#out + 1] = a
  out[#out + 1] = states[i]
end
local events = {}
if KEYS[2] then events = redis.call('LRANGE', KEYS[2], 0, -1) end
return {record, out, events}`;

// Moves one message stored in the layout before 2026-11-29 (recipient states in their own hash, the body in
// its own string) into the message hash, keeping the hash's expiry. KEYS: msg old-rcpt old-body. Answers 1 when
// it moved something.
const MIGRATE = `${HSET_FN}
local states = redis.call('HGETALL', KEYS[2])
local body = redis.call('GET', KEYS[3])
if #states == 0 and not body then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local fields = {}
  for i = 1, #states, 2 do
    fields[#fields + 1] = '${RECIPIENT_FIELD_PREFIX}' .. states[i]
    fields[#fields + 1] = states[i + 1]
  end
  if body then
    fields[#fields + 1] = 'body'
    fields[#fields + 1] = body
  end
  hsetAll(KEYS[1], fields)
end
redis.call('DEL', KEYS[2], KEYS[3])
return 1`;

// Takes back a message whose acceptance failed, unless a worker took one of its jobs already (it may be sending:
// the message then stays, to be delivered and reported). KEYS: msg events live jobs ready rcpt-index…;
// ARGV: id n-jobs job-id…. Answers 1 when removed, 0 when kept.
const TAKE_BACK = `
local n = tonumber(ARGV[2])
for i = 3, 2 + n do
  if redis.call('HEXISTS', KEYS[4], ARGV[i]) == 1 and not redis.call('ZSCORE', KEYS[5], ARGV[i]) then return 0 end
end
for i = 3, 2 + n do
  redis.call('HDEL', KEYS[4], ARGV[i])
  redis.call('ZREM', KEYS[5], ARGV[i])
end
for i = 6, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`;

/** A view script's answer: the record JSON and each recipient's state JSON (null when it has none), in record order. */
export function readView(view: [string, Array<string | null>, ...unknown[]]): { record: string; states: Array<[address: string, state: string | null]> } {
  const [record, pairs] = view;
  const states: Array<[string, string | null]> = [];
  for (let i = 0; i < pairs.length; i += 2) states.push([pairs[i] as string, pairs[i + 1] ?? null]);
  return { record, states };
}

/** An ioredis client with the message scripts defined as commands. */
export type MessageRedis = Redis & {
  kurirMsgCreate(...args: Array<string | number | Buffer>): Promise<number>;
  kurirMsgRecord(...args: Array<string | number>): Promise<[number, number, string | null, string[], string[] | null, number]>;
  kurirMsgView(...args: string[]): Promise<[string, Array<string | null>, string[]] | null>;
  kurirMsgMigrate(...args: string[]): Promise<number>;
  kurirMsgTakeBack(...args: Array<string | number>): Promise<number>;
};

/** Defines the message scripts on `redis` once per client (EVALSHA: the script text is not sent each time). */
export function withMessageScripts(redis: Redis): MessageRedis {
  const r = redis as MessageRedis;
  if (typeof r.kurirMsgCreate !== 'function') {
    // The number of keys of create and view varies: it is the first argument of each call.
    r.defineCommand('kurirMsgCreate', { lua: CREATE });
    // Record takes 4 keys, or 5 with a write id.
    r.defineCommand('kurirMsgRecord', { lua: RECORD });
    // The number of keys varies with the recipients: it is the first argument of each call.
    r.defineCommand('kurirMsgTakeBack', { lua: TAKE_BACK });
    r.defineCommand('kurirMsgView', { lua: VIEW });
    r.defineCommand('kurirMsgMigrate', { numberOfKeys: 3, lua: MIGRATE });
  }
  return r;
}
