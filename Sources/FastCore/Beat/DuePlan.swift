/// What the scheduler does for one entry at one turn: the due times to send (or record as
/// skipped), in ascending order, and the entry's next due time after them. Pure arithmetic on
/// ms since the epoch (Redis's clock); nothing here touches Redis.
///
/// Due times are the chain `d1 = next(after: handled)`, `d2 = next(after: d1)`, ... up to `now`:
/// - those at or after `startedAt` (they passed while this scheduler ran) are sent, late, once
///   each: `.send(due:)`;
/// - those before `startedAt` (no scheduler of ours saw them) collapse into one step at the
///   latest of them: `.send(due:)` for `catchUp == .once`, `.skip(due:)` for `.skip`.
///
/// At most `maxLateSends` steps per plan (the catch-up step counts as one); `next` is then the
/// first due time not planned, so the rest come next turn. A long outage does not loop per due
/// time: interval entries find the latest missed due time by arithmetic; crontab entries walk at
/// most `walkLimit` due times, then bisect for the latest one before `startedAt` (see
/// `latestBefore`).
///
///     let plan = try DuePlan.plan(schedule: due, handled: recorded, now: now, startedAt: started, catchUp: .once)
///     for step in plan.steps { ... }  // then record plan.next
public struct DuePlan: Sendable, Equatable {
    /// One thing to do for a due time.
    public enum Step: Sendable, Equatable {
        /// Send a message for this due time.
        case send(due: Int64)
        /// Record this due time (and the ones before it) handled, sending nothing.
        case skip(due: Int64)

        /// The step's due time (ms).
        ///
        ///     plan.steps.map(\.due)
        public var due: Int64 {
            switch self {
            case .send(let due), .skip(let due): due
            }
        }
    }

    /// At most this many steps per entry per plan; the rest are planned next turn.
    public static let maxLateSends = 100

    /// A crontab entry's missed due times are walked one by one up to this many; a longer
    /// outage is bisected instead. Each `next` costs ~10 µs: the walk bounds a restart's catch-up
    /// to well under a millisecond per entry.
    static let walkLimit = 64

    /// The steps, ascending by due time (empty: nothing due yet).
    public var steps: [Step]
    /// The first due time after the last step (after `handled` when there are no steps).
    public var next: Int64

    /// A plan as given.
    ///
    ///     DuePlan(steps: [.send(due: 1_000)], next: 2_000)
    public init(steps: [Step], next: Int64) {
        self.steps = steps
        self.next = next
    }

    /// Plans the due times of an entry whose last handled due time is `handled`, at `now`, for a
    /// scheduler that started at `startedAt` (all ms on Redis's clock). Throws only what
    /// `DueSchedule.next(after:)` throws.
    ///
    ///     let plan = try DuePlan.plan(schedule: due, handled: 0, now: 5_000, startedAt: 0, catchUp: .skip)
    public static func plan(
        schedule: DueSchedule, handled: Int64, now: Int64, startedAt: Int64, catchUp: ScheduleEntry.CatchUp
    ) throws(CrontabError) -> DuePlan {
        let range = -DueSchedule.farthestMs..<DueSchedule.farthestMs
        guard range.contains(handled), range.contains(now), range.contains(startedAt) else {
            throw CrontabError(field: "due", message: "instant out of range")
        }
        let first = try schedule.next(after: handled)
        guard first <= now else { return DuePlan(steps: [], next: first) }
        var steps: [Step] = []
        var due = first
        if first < startedAt {
            // Due times no scheduler of ours saw: one step at the latest of them.
            let limit = startedAt <= now ? startedAt : now + 1
            let latest = try latestBefore(limit, first: first, schedule: schedule)
            steps.append(catchUp == .once ? .send(due: latest) : .skip(due: latest))
            due = try schedule.next(after: latest)
        }
        while due <= now, steps.count < maxLateSends {
            steps.append(.send(due: due))
            due = try schedule.next(after: due)
        }
        return DuePlan(steps: steps, next: due)
    }

    /// The latest due time of the chain starting at `first` that is before `limit` (`first < limit`).
    ///
    /// Interval: `first + k * interval` with the largest such k. Crontab: walk up to `walkLimit`
    /// due times; if the chain still has not reached `limit`, search back from `limit` with a window
    /// that doubles (1 minute, 2, 4, ...) until `next(after: limit - window)` is before `limit`, then
    /// bisect (in ms) between that instant and `limit` for the last instant whose next due time is
    /// still before `limit`: its next due time is the answer. This relies on `next(after:)` never
    /// going backwards as its argument grows, which holds for Celery's crontab including its DST
    /// rules (checked against the naive walk in `DuePlanTests`). About log2(outage / 1 min) +
    /// log2(window in ms) `next` calls: ~60 for a year, whatever the entry's frequency.
    static func latestBefore(_ limit: Int64, first: Int64, schedule: DueSchedule) throws(CrontabError) -> Int64 {
        if let step = schedule.interval {
            return first + (limit - 1 - first) / step * step
        }
        var previous = first
        var latest = first
        for _ in 0..<walkLimit {
            let after = try schedule.next(after: latest)
            if after >= limit { return latest }
            previous = latest
            latest = after
        }
        // Long outage: find `low` with next(after: low) < limit, close to `limit` (`previous` is one).
        var window: Int64 = 60_000
        var low = previous
        while limit - window > latest {
            if try schedule.next(after: limit - window) < limit {
                low = limit - window
                break
            }
            window *= 2
        }
        // Invariant: next(after: low) < limit; next(after: high) >= limit (high = limit - 1 at first:
        // any due time after it is >= limit).
        var high = limit - 1
        while high - low > 1 {
            let mid = low + (high - low) / 2
            if try schedule.next(after: mid) < limit { low = mid } else { high = mid }
        }
        return try schedule.next(after: low)
    }
}
