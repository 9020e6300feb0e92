/**
 * The Lua scripts `RedisStore` runs. Each is one atomic round trip, and each reads the clock with
 * `TIME` inside Redis, so every lease, staleness and fencing decision uses one clock: the store's.
 * (Redis 7 replicates script effects, so calling `TIME` before a write is allowed.)
 *
 * Ownership value: `nodeId|claimId|epoch|lastMediaMs` under `<prefix>own:{<broadcast>}` with PX;
 * the last epoch under `<prefix>fence:{<broadcast>}`. The `{}` hash tag keeps both in one slot.
 *
 * Replies are arrays whose first element is a status: 1 done, 0 refused, -1 the key holds a value
 * this package did not write.
 */

import { createHash } from "node:crypto";

/** A script with its SHA1, for EVALSHA with an EVAL fallback. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
  readonly keys: number;
}

function script(name: string, keys: number, source: string): LuaScript {
  return { name, keys, source, sha: createHash("sha1").update(source).digest("hex") };
}

// Helpers shared by the ownership scripts. `%.0f` prints integral doubles without an exponent.
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function fmt(n) return string.format('%.0f', n) end
local function parse(v)
  local n, c, e, m = string.match(v, '^([^|]+)|([^|]+)|(%d+)|(%d+)$')
  if not n then return nil end
  return n, c, e, tonumber(m)
end
`;

/**
 * Acquire (claim, take over if stale, force, supersede).
 * KEYS: own, fence. ARGV: nodeId, claimId, leaseMs, mode, staleMs, supersedes ('' for none),
 * channel, broadcast, fenceTtlMs.
 * Reply: {1, value, pttl, now, previousValue|false} | {0, currentValue, pttl, now} | {-1, value, 0, now}.
 */
export const ACQUIRE: LuaScript = script(
  "acquire",
  2,
  `${PRELUDE}
local cur = redis.call('GET', KEYS[1])
local pn, pc, pe, pm
if cur then
  pn, pc, pe, pm = parse(cur)
  if not pn then
    if ARGV[4] ~= 'force' then return {-1, cur, 0, now} end
  elseif pc == ARGV[2] then
    return {1, cur, redis.call('PTTL', KEYS[1]), now, false}
  else
    local allowed = ARGV[4] == 'force'
      or (ARGV[4] == 'if-stale' and now - pm > tonumber(ARGV[5]))
      or (ARGV[6] ~= '' and pc == ARGV[6])
    if not allowed then return {0, cur, redis.call('PTTL', KEYS[1]), now} end
  end
end
local prev = tonumber(redis.call('GET', KEYS[2])) or 0
local epoch = fmt(math.max(prev + 1, now))
redis.call('SET', KEYS[2], epoch, 'PX', ARGV[9])
local value = ARGV[1] .. '|' .. ARGV[2] .. '|' .. epoch .. '|' .. fmt(now)
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
local evt
if pn then
  evt = cjson.encode({type = 'stolen', broadcast = ARGV[8], node = ARGV[1], claim = ARGV[2], epoch = epoch,
    prev_node = pn, prev_claim = pc, prev_epoch = pe})
else
  evt = cjson.encode({type = 'claimed', broadcast = ARGV[8], node = ARGV[1], claim = ARGV[2], epoch = epoch})
end
redis.call('PUBLISH', ARGV[7], evt)
return {1, value, tonumber(ARGV[3]), now, cur or false}
`,
);

/**
 * Compare-and-renew. If the caller reports media, `lastMediaMs` becomes `now - mediaAgeMs` (never
 * going backwards), so staleness is judged on the store's clock alone.
 * KEYS: own. ARGV: claimId, leaseMs, mediaAgeMs (-1 when no media is reported).
 * Reply: {1, value, pttl, now} | {0, currentValue|false, pttl, now} | {-1, value, 0, now}.
 */
export const RENEW: LuaScript = script(
  "renew",
  1,
  `${PRELUDE}
local cur = redis.call('GET', KEYS[1])
if not cur then return {0, false, -2, now} end
local pn, pc, pe, pm = parse(cur)
if not pn then return {-1, cur, 0, now} end
if pc ~= ARGV[1] then return {0, cur, redis.call('PTTL', KEYS[1]), now} end
local age = tonumber(ARGV[3])
if age >= 0 then pm = math.max(pm, now - age) end
local value = pn .. '|' .. pc .. '|' .. pe .. '|' .. fmt(pm)
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value, tonumber(ARGV[2]), now}
`,
);

/**
 * Compare-and-delete, then announce the release.
 * KEYS: own. ARGV: claimId, channel, broadcast. Reply: 1 released, 0 not the holder.
 */
export const RELEASE: LuaScript = script(
  "release",
  1,
  `${PRELUDE}
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local pn, pc, pe = parse(cur)
if not pn or pc ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({type = 'released', broadcast = ARGV[3], node = pn, claim = pc, epoch = pe}))
return 1
`,
);

/** Read the holder with its remaining TTL and the store clock. KEYS: own. Reply: {value|false, pttl, now}. */
export const INSPECT: LuaScript = script(
  "inspect",
  1,
  `${PRELUDE}
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), now}
`,
);

/**
 * Node heartbeat: write the node hash with a TTL, stamp it in the `nodes` sorted set (score = last
 * seen), and announce the node when its entry did not exist.
 * KEYS: node hash, nodes zset. ARGV: nodeId, ttlMs, channel, endpoints JSON, capacity JSON ('' for
 * none), version, startedAtMs. Reply: {existed, now}.
 */
export const HEARTBEAT: LuaScript = script(
  "heartbeat",
  2,
  `${PRELUDE}
local existed = redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'endpoints', ARGV[4], 'capacity', ARGV[5], 'version', ARGV[6],
  'started_at_ms', ARGV[7], 'seen_ms', fmt(now))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
if existed == 0 then
  redis.call('PUBLISH', ARGV[3], cjson.encode({type = 'node-up', node = ARGV[1]}))
end
return {existed, now}
`,
);

/**
 * Remove a node entry: at once when `force` is '1' (graceful leave), or only if its hash has
 * expired when '0' (pruning). Announces the departure when the node was listed.
 * KEYS: node hash, nodes zset. ARGV: nodeId, channel, force. Reply: 1 removed, 0 not.
 */
export const REMOVE_NODE: LuaScript = script(
  "remove_node",
  2,
  `
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local existed = redis.call('DEL', KEYS[1])
local listed = redis.call('ZREM', KEYS[2], ARGV[1])
if existed == 1 or listed == 1 then
  redis.call('PUBLISH', ARGV[2], cjson.encode({type = 'node-down', node = ARGV[1]}))
  return 1
end
return 0
`,
);
