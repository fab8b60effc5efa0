/// The scheduler's Lua scripts, run by SHA through `RedisScript`. `sendBatch` is the fence that
/// makes each due time of each entry go out once, whatever the schedulers believe about who
/// leads: it sends only for the lease holder and only a due time later than the recorded one.
///
///     let r = try BeatScripts.renew.run(on: redis, keys: [BeatKeys.leader], args: [id, "3000"])
public enum BeatScripts {
    /// Send (or record as handled) a batch of due times (up to `BeatSender.batchLimit`) in one
    /// call: the lease is checked once, each entry is fenced and written on its own (an entry's
    /// Redis error is that entry's reply; the others go on), and `sent_at` is Redis's own `TIME`.
    ///
    ///     let r = try BeatScripts.sendBatch.run(on: redis, keys: [BeatKeys.leader, BeatKeys.entry(name), "celery",
    ///                                           "_kombu.binding.celery"], args: [id, "", due, envelope, taskId, member, next])
    public static let sendBatch = RedisScript(
        """
        -- KEYS: 1 leader key; then per entry i (0-based) three keys from 2 + i * 3: entry state hash,
        --       queue list, kombu binding set
        -- ARGV: 1 scheduler id, 2 sent-at ms to stamp ("" = Redis's TIME, ms); then per entry i five
        --       values from 3 + i * 5: due ms, envelope ("" = record only: a skip or an anchor),
        --       task id, binding member, next due ms
        -- returns: {-1} not the leader (nothing written); else {sent-at ms (string), then per entry:
        --          1 sent (or recorded), 0 already handled (due <= recorded due; nothing written),
        --          or a string: that entry's Redis error (what it wrote before the error stays)}
        -- Per entry the LPUSH comes after every read and before the state writes (a queue key of
        -- another type fails the entry before its state moves); `count` that is not a number
        -- restarts at 1. A recorded due that is not an integer string (^-?%d+$, what schedulers
        -- write) is treated as absent: the send overwrites it. Each distinct binding is SADDed once.
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
        local now = ARGV[2]
        if now == '' then
          local t = redis.call('TIME')
          now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        end
        local function call(...)
          local r = redis.pcall(...)
          if type(r) == 'table' and r.err then error(r.err, 0) end
          return r
        end
        local bound = {}
        local function bind(key, member)
          bound[key] = bound[key] or {}
          if not bound[key][member] then
            call('SADD', key, member)
            bound[key][member] = true
          end
        end
        local function one(hash, queue, binding, due, envelope, taskId, member, nextDue)
          local recorded = call('HGET', hash, 'due')
          if recorded and string.match(recorded, '^%-?%d+$') and tonumber(recorded) >= tonumber(due) then
            return 0
          end
          if envelope ~= '' then
            local count = (tonumber(call('HGET', hash, 'count')) or 0) + 1
            call('LPUSH', queue, envelope)
            bind(binding, member)
            call('HSET', hash, 'due', due, 'next', nextDue, 'sent_at', now, 'task_id', taskId,
              'count', string.format('%d', count))
          else
            bind(binding, member)
            call('HSET', hash, 'due', due, 'next', nextDue)
          end
          return 1
        end
        local out = {now}
        for i = 0, (#KEYS - 1) / 3 - 1 do
          local k, a = 2 + i * 3, 3 + i * 5
          local ok, r = pcall(one, KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a], ARGV[a + 1], ARGV[a + 2],
            ARGV[a + 3], ARGV[a + 4])
          if ok then out[#out + 1] = r else out[#out + 1] = tostring(r) end
        end
        return out
        """)

    /// Write entries' `spec`/`source`/`next` and the `names` set, or remove entries, for the
    /// lease holder only: a paused former leader's stale view cannot delete a live entry.
    ///
    ///     try BeatScripts.writeEntries.run(on: redis, keys: [BeatKeys.leader, BeatKeys.names, BeatKeys.entry("tick")],
    ///                                      args: [id, "tick", specJSON, "file", "1733300000000"])
    public static let writeEntries = RedisScript(
        """
        -- KEYS: 1 leader key, 2 names set, 3.. entry state hashes (one per entry written)
        -- ARGV: 1 scheduler id; then for each entry hash KEYS[i] (i >= 3), four values from
        --       ARGV[2 + (i - 3) * 4]: name, spec JSON ("" = remove: SREM name, DEL hash), source, next due ms
        -- returns: the number of entries written, or -1 not the leader (nothing written)
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
        for i = 3, #KEYS do
          local a = 2 + (i - 3) * 4
          if ARGV[a + 1] == '' then
            redis.call('SREM', KEYS[2], ARGV[a])
            redis.call('DEL', KEYS[i])
          else
            redis.call('SADD', KEYS[2], ARGV[a])
            redis.call('HSET', KEYS[i], 'spec', ARGV[a + 1], 'source', ARGV[a + 2], 'next', ARGV[a + 3])
          end
        end
        return #KEYS - 2
        """)

    /// Take the leader lease if nobody holds it, and record the leadership, in one step (a
    /// half-done acquire cannot hold the key without knowing it).
    ///
    ///     try BeatScripts.acquire.run(on: redis, keys: [BeatKeys.leader, BeatKeys.leadership], args: [id, "3000", now])
    public static let acquire = RedisScript(
        """
        -- KEYS: 1 leader key, 2 leadership hash
        -- ARGV: 1 scheduler id, 2 lease ms, 3 now ms
        -- returns: 1 acquired (leader set PX lease; leadership id, since, changes + 1), 0 held by another
        -- A leadership key that is not a hash (or a `changes` that is not a number) is replaced: it
        -- is only a record, and every write below must succeed once the lease is taken.
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local kind = redis.call('TYPE', KEYS[2]).ok
        if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[2]) end
        local changes = (tonumber(redis.call('HGET', KEYS[2], 'changes')) or 0) + 1
        redis.call('HSET', KEYS[2], 'id', ARGV[1], 'since', ARGV[3], 'changes', string.format('%d', changes))
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        """)

    /// Extend the leader lease if it is still ours.
    ///
    ///     try BeatScripts.renew.run(on: redis, keys: [BeatKeys.leader], args: [id, "3000"]).integer == 1
    public static let renew = RedisScript(
        """
        -- KEYS: 1 leader key
        -- ARGV: 1 scheduler id, 2 lease ms
        -- returns: 1 renewed, 0 not ours (another id or none)
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """)

    /// Give the leader lease up and wake one standby (warm shutdown).
    ///
    ///     try BeatScripts.release.run(on: redis, keys: [BeatKeys.leader, BeatKeys.handover], args: [id, "3000"])
    public static let release = RedisScript(
        """
        -- KEYS: 1 leader key, 2 hand-over list
        -- ARGV: 1 scheduler id, 2 lease ms (how long the hand-over id waits for a standby)
        -- returns: 1 released, 0 not ours (nothing written)
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('DEL', KEYS[2])
        redis.call('LPUSH', KEYS[2], ARGV[1])
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        return 1
        """)
}
