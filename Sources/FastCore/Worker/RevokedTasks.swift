/// Task ids revoked by remote control, kept for the worker's lifetime up to a bound
/// (the oldest forgotten first), as Celery's worker keeps its revoked set.
///
///     var revoked = RevokedTasks()
///     revoked.add(["d9b1…"])
///     if revoked.contains(id) { … }
struct RevokedTasks {
    static let limit = 50_000
    private(set) var ids: [String] = []
    private var set: Set<String> = []

    func contains(_ id: String) -> Bool { set.contains(id) }

    mutating func add(_ new: [String]) {
        for id in new where !set.contains(id) {
            set.insert(id)
            ids.append(id)
        }
        if ids.count > Self.limit {
            for id in ids.prefix(ids.count - Self.limit) { set.remove(id) }
            ids.removeFirst(ids.count - Self.limit)
        }
    }
}
