import Foundation

/// The scheduler's entries against Redis: a snapshot applied (state kept by name), and as
/// leader the entries' recorded state read, new entries anchored, and `spec`/`source`/`next`
/// and the `names` set written.
extension Scheduler {
    /// Commands per pipelined round trip when syncing.
    static let syncBatch = 512

    /// Replace the entries with `snapshot`'s, keeping what is known of those that stay (their
    /// recorded due time; their next one when the entry is unchanged). An entry whose schedule
    /// cannot be compiled is logged and left out.
    func apply(_ snapshot: ScheduleSource.Snapshot) {
        metrics.scheduleErrors(snapshot.errors.count)
        var fresh: [String: Tracked] = [:]
        // Entries new to this process or with a changed schedule are seen from now: their missed
        // due times collapse into one catch-up step instead of sending the new schedule's backlog.
        let loadedAt = loaded ? nowMs() : .min
        for entry in snapshot.entries {
            let due: DueSchedule
            do {
                due = try DueSchedule(entry.schedule, defaultZone: snapshot.timezone)
            } catch {
                logger.error("beat: entry \(entry.name) left out: \(error)")
                metrics.scheduleErrors()
                continue
            }
            let origin = snapshot.sources[entry.name] ?? ScheduleSource.fileSource
            let old = entries[entry.name]
            // The envelope template is made once per entry version, not per send.
            let template = old.flatMap { $0.entry == entry ? $0.template : nil } ?? BeatEnvelope(entry: entry)
            var tracked = Tracked(
                entry: entry, template: template, due: due, source: origin, handled: nil, next: .max, seenFrom: loadedAt
            )
            if let old {
                tracked.handled = old.handled
                tracked.seenFrom = old.entry.schedule == entry.schedule ? old.seenFrom : loadedAt
                tracked.next =
                    old.entry == entry ? old.next : (old.handled.flatMap { try? due.next(after: $0) } ?? .max)
            }
            fresh[entry.name] = tracked
        }
        entries = fresh
        metrics.entries(entries.count)
        rebuildHeap()
        // The leader writes the new specs and names, and anchors new entries, at once.
        synced = false
    }

    func rebuildHeap() {
        heap.removeAll()
        for (name, tracked) in entries where tracked.handled != nil { heap.push(due: tracked.next, name: name) }
    }

    /// As leader: read every entry's recorded `due`, anchor the new ones at now (record-only
    /// sends through the fence), write `spec`, `source` and `next`, and make `names` the entries'
    /// names (a removed entry's hash is deleted).
    func sync(redis: RedisConnection) throws {
        let names = entries.keys.sorted()
        let now = nowMs()
        var recorded: [String: Int64] = [:]
        for chunk in chunks(names) {
            let replies = try redis.pipeline(chunk.map { ["HGET", BeatKeys.entry($0), BeatKeys.Field.due] })
            for (name, reply) in zip(chunk, replies) {
                if let e = reply.errorMessage { throw RedisError.reply(e) }
                if let due = reply.text.flatMap({ Int64($0) }) { recorded[name] = due }
            }
        }
        var anchors: [BeatSender.Request] = []
        for name in names where recorded[name] == nil {
            guard let tracked = entries[name], let next = nextDue(name, after: now) else { continue }
            anchors.append(.init(template: tracked.template, due: now, next: next, send: false))
        }
        let outcomes = try sender.send(anchors, on: redis) { now }
        for (request, outcome) in zip(anchors, outcomes) {
            switch outcome {
            case .recorded, .sent: recorded[request.entry.name] = now
            case .handled:
                let due = try redis.command("HGET", BeatKeys.entry(request.entry.name), BeatKeys.Field.due)
                recorded[request.entry.name] = due.text.flatMap { Int64($0) } ?? now
            case .notLeader: break
            case .failed(let message):
                // Left unanchored (not scheduled) until the next sync.
                logger.error("beat: entry \(request.entry.name) could not be anchored: \(message)")
                metrics.sendError()
            }
        }
        if outcomes.contains(.notLeader) || outcomes.count < anchors.count {
            lease.lost()
            logger.warning("beat \(id) lost the leadership")
            return
        }
        // (name, spec ("" = remove), source, next), written by the fenced script per chunk.
        var writes: [(name: String, spec: String, source: String, next: String)] = []
        for name in names {
            guard let handled = recorded[name], let next = nextDue(name, after: handled), var tracked = entries[name]
            else { continue }
            tracked.handled = handled
            tracked.next = next
            entries[name] = tracked
            writes.append((name, tracked.entry.jsonObject().serialized(), tracked.source, String(next)))
        }
        let present = Set(entries.keys)
        let listed = try redis.command("SMEMBERS", BeatKeys.names).elements?.compactMap(\.text) ?? []
        for gone in listed.sorted() where !present.contains(gone) {
            writes.append((gone, "", "", ""))
            logger.info("beat: entry \(gone) removed")
        }
        for chunk in chunks(writes) {
            let keys = [BeatKeys.leader, BeatKeys.names] + chunk.map { BeatKeys.entry($0.name) }
            let args = [id] + chunk.flatMap { [$0.name, $0.spec, $0.source, $0.next] }
            if try BeatScripts.writeEntries.run(on: redis, keys: keys, args: args).integer == -1 {
                lease.lost()
                logger.warning("beat \(id) lost the leadership")
                return
            }
        }
        rebuildHeap()
        metrics.entries(entries.count)
        synced = true
    }

    /// The entry's due time after `ms`; nil (and the entry dropped) when it cannot be computed.
    func nextDue(_ name: String, after ms: Int64) -> Int64? {
        guard let tracked = entries[name] else { return nil }
        do {
            return try tracked.due.next(after: ms)
        } catch {
            drop(name, because: error)
            return nil
        }
    }

    /// Stop scheduling `name` (its schedule has no next due time). Like a removed entry, the next
    /// sync (a reload, leadership taken, a reconnect) SREMs it from `names` and deletes its hash.
    func drop(_ name: String, because error: CrontabError) {
        logger.error("beat: entry \(name) dropped: \(error)")
        metrics.scheduleErrors()
        entries[name] = nil
        metrics.entries(entries.count)
    }

    func chunks<T>(_ items: [T]) -> [ArraySlice<T>] {
        stride(from: 0, to: items.count, by: Self.syncBatch).map { items[$0..<min($0 + Self.syncBatch, items.count)] }
    }
}
