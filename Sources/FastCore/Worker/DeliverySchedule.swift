/// Held deliveries waiting for a time: an ETA/countdown, or the moment their task's
/// rate limit allows. Kept sorted by due time.
///
///     var schedule = DeliverySchedule()
///     schedule.add(tag, due: now + 10)
///     while let tag = schedule.popDue(now: clock.now()) { start(tag) }
struct DeliverySchedule {
    private(set) var entries: [(due: Double, tag: String)] = []

    var count: Int { entries.count }
    /// The earliest due time.
    var nextDue: Double? { entries.first?.due }
    var tags: [String] { entries.map(\.tag) }

    mutating func add(_ tag: String, due: Double) {
        let i = entries.firstIndex { $0.due > due } ?? entries.count
        entries.insert((due, tag), at: i)
    }

    /// The next delivery whose time has come, removed.
    mutating func popDue(now: Double) -> String? {
        guard let first = entries.first, first.due <= now else { return nil }
        entries.removeFirst()
        return first.tag
    }

    mutating func remove(_ tag: String) { entries.removeAll { $0.tag == tag } }

    /// Every scheduled tag, leaving none.
    mutating func takeAll() -> [String] {
        defer { entries.removeAll() }
        return tags
    }
}
