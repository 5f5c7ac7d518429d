// The Redis backend's layout: the keys of a topic and the Lua scripts that change them. Every key
// of a topic carries the hash tag `{<topic>}`, so on Redis Cluster they share one slot and one
// script may touch them all. Topic names are ASCII letters, digits, '.', '_' and '-' (topic.ts), so
// a topic cannot hold a brace and end its tag early; keyPrefix is refused if it holds one (a tag in
// the prefix would put every topic in one slot).
//
//   <prefix>{<topic>}:events          stream; entry id `<id>-0`; fields kind, payload (JSON),
//                                     headers (JSON), at (occurred_at_ms)
//   <prefix>{<topic>}:last            the last id ever given: ids never go back, even after the
//                                     stream is trimmed empty or the server restarts (AOF)
//   <prefix>{<topic>}:cursors         hash: consumer name -> acknowledged id
//   <prefix>{<topic>}:headers          set: the header names appendIdempotent has used on the topic
//   <prefix>{<topic>}:header-values    hash: `<name>` NUL `<value>` -> the last id holding it, for
//                                     those names only (kept by every append once a name is in)
//   <prefix>{<topic>}:tip               with provenance: `<id> <record_hash>` of the last record
//                                     chained (kept through compaction: the next record follows it)
//   <prefix>{<topic>}:writer:<writer> hash: batch number -> first id of that batch, and `next`, the
//                                     batch expected next, for one log instance: a retried batch
//                                     is not appended twice, and batches apply in order. Expires a
//                                     day after its last append.

export interface TopicKeys {
  readonly events: string;
  readonly last: string;
  readonly cursors: string;
  readonly writer: string;
  readonly headerNames: string;
  readonly headerValues: string;
  readonly tip: string;
}

export function topicKeys(prefix: string, topic: string, writer: string): TopicKeys {
  const base = `${prefix}{${topic}}:`;
  return { events: `${base}events`, last: `${base}last`, cursors: `${base}cursors`, writer: `${base}writer:${writer}`, headerNames: `${base}headers`, headerValues: `${base}header-values`, tip: `${base}tip` };
}

/**
 * Lua, shared by the append scripts: records event `id`'s headers (JSON) under every header name
 * appendIdempotent uses on the topic (KEYS[4], the names; KEYS[5], the values). Nothing to do, and
 * no JSON decoded, on a topic where it was never used.
 */
const INDEX_HEADERS = `
local function indexHeaders(names, id, headersJson)
  if #names == 0 then return end
  local ok, h = pcall(cjson.decode, headersJson)
  if not ok or type(h) ~= 'table' then return end
  for _, name in ipairs(names) do
    local v = h[name]
    if type(v) == 'string' then redis.call('HSET', KEYS[5], name .. '\0' .. v, string.format('%d', id)) end
  end
end
`;

/** Batch numbers kept per writer: more than the batches one writer ever has in flight per topic. */
export const WRITER_WINDOW = 64;
/** A writer's batch numbers outlive any retry by far, then go (1 day, in ms). */
export const WRITER_TTL_MS = 24 * 60 * 60 * 1000;
// Each script starts with `#!lua`: Redis (7.0+) then knows it writes before running it, so on a
// replica, over maxmemory or after a disk error it is refused whole instead of failing half way
// (Redis does not roll a script back); on a cluster its keys must share a slot, which the hash
// tag makes so.

/**
 * Lua, shared by the append scripts: with provenance (the expected id not empty) the events were
 * chained by the client after the record it believed last, `expected` with hash `prevHash`. If the
 * topic is at another id (another writer appended), or the tip key says that id has another hash
 * (writes the client saw were lost in a restart or a failover, and another writer reused the ids),
 * the script refuses with RINGLOG_CHAIN_MOVED before writing anything, and the client reads the tip
 * again and chains anew. SHA-256 is not available in Redis's Lua, hence the hashing on the client
 * and this optimistic check.
 */
const CHAIN_CHECK = `
local function chainMoved(expectedArg, prevHash, last)
  if expectedArg == '' then return nil end
  if tonumber(expectedArg) == last then
    local tip = redis.call('GET', KEYS[6])
    local tipId, tipHash = nil, nil
    if tip then tipId, tipHash = string.match(tip, '^(%d+) (%S+)$') end
    if not tipId or tonumber(tipId) ~= last or tipHash == prevHash then return nil end
  end
  return redis.error_reply('RINGLOG_CHAIN_MOVED the topic moved on to id ' .. string.format('%d', last))
end
`;

/**
 * KEYS: events, last, writer, header names, header values, tip. ARGV: batch number, writer TTL (ms), event count, the events' fields
 * concatenated (per event: kind, payload JSON and a NUL, headers JSON and a NUL, at), the byte
 * lengths of each event's kind and at (comma separated), and the floor: the writer's oldest batch
 * it has not given up on. JSON text never holds a raw NUL (JSON.stringify writes U+0000 as
 * \u0000), so the long fields need no length, which would cost a scan of each on the caller's
 * thread. One argument for the
 * whole batch instead of four per event: the client then writes a batch to its socket in a few
 * writes rather than thousands (measured: node-redis's per-argument writes took a third of the
 * process's time at 20,000 events/s).
 *
 * ARGV[7], ARGV[8], ARGV[9]: with provenance, the id the client chained after, the batch's last
 * record_hash, and the hash it chained after ('' without): see CHAIN_CHECK.
 *
 * Returns the first id of the batch. A batch number seen before is answered with the first id it
 * got then (a retry appends nothing). A writer's batches are applied in number order only: the
 * writer's hash keeps `next`, raised to the floor (batches below it were given up: they never
 * ran), and a batch above it is refused with RINGLOG_EARLY, to be sent again once the ones
 * before it are settled, so ids follow the writer's call order even when batches are sent again
 * behind later ones. The whole batch is parsed before the first XADD and the counter is stored
 * last: Redis does not roll a script back, and a batch that stopped half way would leave entries
 * above the counter.
 */
export const APPEND_SCRIPT = `#!lua
${INDEX_HEADERS}
${CHAIN_CHECK}
local batch = tonumber(ARGV[1])
local done = redis.call('HGET', KEYS[3], ARGV[1])
if done then return tonumber(done) end
local expected = tonumber(redis.call('HGET', KEYS[3], 'next') or '1')
local floor = tonumber(ARGV[6])
if floor > expected then expected = floor end
if batch < expected then return redis.error_reply('RINGLOG_GIVEN_UP batch ' .. ARGV[1] .. ' was given up by its writer') end
if batch > expected then return redis.error_reply('RINGLOG_EARLY batch ' .. ARGV[1] .. ' waits for batch ' .. expected) end
local count = tonumber(ARGV[3])
local blob = ARGV[4]
local fields = {}
local pos = 1
local function cut(len)
  local v = string.sub(blob, pos, pos + len - 1)
  pos = pos + len
  return v
end
local function upToNul()
  local nul = string.find(blob, '\0', pos, true)
  if not nul then return nil end
  local v = string.sub(blob, pos, nul - 1)
  pos = nul + 1
  return v
end
local nextLength = string.gmatch(ARGV[5], '%d+')
for i = 1, count do
  local kindLength = nextLength()
  local atLength = nextLength()
  if not atLength then break end
  fields[#fields + 1] = cut(tonumber(kindLength))
  fields[#fields + 1] = upToNul()
  fields[#fields + 1] = upToNul()
  fields[#fields + 1] = cut(tonumber(atLength))
end
if #fields ~= count * 4 or pos ~= #blob + 1 then
  return redis.error_reply('RINGLOG_BAD_BATCH batch ' .. ARGV[1] .. ' does not parse')
end
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
local moved = chainMoved(ARGV[7], ARGV[9], n)
if moved then return moved end
local names = redis.call('SMEMBERS', KEYS[4])
for i = 1, count do
  local f = (i - 1) * 4
  redis.call('XADD', KEYS[1], string.format('%d-0', n + i), 'kind', fields[f + 1], 'payload', fields[f + 2], 'headers', fields[f + 3], 'at', fields[f + 4])
  indexHeaders(names, n + i, fields[f + 3])
end
redis.call('SET', KEYS[2], string.format('%d', n + count))
if ARGV[7] ~= '' then redis.call('SET', KEYS[6], string.format('%d ', n + count) .. ARGV[8]) end
redis.call('HSET', KEYS[3], ARGV[1], string.format('%d', n + 1), 'next', string.format('%d', batch + 1))
redis.call('HDEL', KEYS[3], string.format('%d', batch - ${WRITER_WINDOW}))
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return n + 1
`;

export interface PackedEvent {
  readonly kind: string;
  readonly payloadJson: string;
  readonly headersJson: string;
  readonly occurredAtMs: number;
}

/**
 * The batch argument and the lengths APPEND_SCRIPT reads it by. A string, not a Buffer: the
 * fields are strings already, and their concatenation is copied once, when the client writes it.
 * (Measured, bench/event-log-redis.ts: packing into Buffers, fresh or pooled, sustained more
 * events/s flat out, 28,000-31,000 against 19,000-24,000, but cost the caller's paced
 * handleEvent 1.38-1.40x the memory backend's against 1.19-1.26x; the caller's cost is the figure
 * this backend is held to.)
 */
export function packBatch(events: readonly PackedEvent[]): [string, string] {
  let blob = '';
  let lengths = '';
  for (const e of events) {
    const at = String(e.occurredAtMs);
    blob += e.kind + e.payloadJson + '\0' + e.headersJson + '\0' + at;
    lengths += `${Buffer.byteLength(e.kind)},${at.length},`;
  }
  return [blob, lengths];
}

/**
 * KEYS: events, last, (unused), header names, header values, tip. ARGV: header, value, kind, payload
 * JSON, headers JSON, at, and with provenance the id chained after, the record_hash and the hash
 * chained after ('' without). appendIdempotent: the id of an event still in the stream that holds the
 * value under the header, else the event appended. The first use of a header name on a topic
 * indexes the stream once (within this script: nothing can append in between); later appends keep
 * the index. Returns {id, 1 if appended}.
 */
export const IDEMPOTENT_SCRIPT = `#!lua
${INDEX_HEADERS}
${CHAIN_CHECK}
local name, value = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', KEYS[4], name) == 0 then
  redis.call('SADD', KEYS[4], name)
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = e[2]
    for i = 1, #f, 2 do
      if f[i] == 'headers' then indexHeaders({ name }, tonumber(string.match(e[1], '^(%d+)')), f[i + 1]) end
    end
  end
end
local held = redis.call('HGET', KEYS[5], name .. '\0' .. value)
if held and #redis.call('XRANGE', KEYS[1], held .. '-0', held .. '-0') > 0 then return { tonumber(held), 0 } end
local id = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
local moved = chainMoved(ARGV[7], ARGV[9], id - 1)
if moved then return moved end
redis.call('XADD', KEYS[1], string.format('%d-0', id), 'kind', ARGV[3], 'payload', ARGV[4], 'headers', ARGV[5], 'at', ARGV[6])
redis.call('SET', KEYS[2], string.format('%d', id))
if ARGV[7] ~= '' then redis.call('SET', KEYS[6], string.format('%d ', id) .. ARGV[8]) end
indexHeaders(redis.call('SMEMBERS', KEYS[4]), id, ARGV[5])
return { id, 1 }
`;

/**
 * KEYS: events, last, tip. The chain's tip as a chained append needs it: {last id, headers JSON of
 * that record if the stream still holds it (false otherwise), the tip key (false without)}.
 */
export const TIP_SCRIPT = `#!lua flags=no-writes
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local headers = false
local e = redis.call('XRANGE', KEYS[1], string.format('%d-0', last), string.format('%d-0', last))
if #e > 0 then
  local f = e[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'headers' then headers = f[i + 1] end
  end
end
return { last, headers, redis.call('GET', KEYS[3]) or false }
`;

/** KEYS: cursors. ARGV: consumer, id. Moves the cursor forward only. */
export const ACK_SCRIPT = `#!lua
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
`;

/**
 * KEYS: events, last, header values. ARGV: the first id kept (`before` + 1: compact removes ids up
 * to `before`). Header values of the removed events go too. Returns {removed, remaining, latest}.
 */
export const COMPACT_SCRIPT = `#!lua
local removed = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1] .. '-0')
end
local keep = tonumber(ARGV[1])
local values = redis.call('HGETALL', KEYS[3])
for i = 1, #values, 2 do
  if tonumber(values[i + 1]) < keep then redis.call('HDEL', KEYS[3], values[i]) end
end
return { removed, redis.call('XLEN', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0') }
`;
