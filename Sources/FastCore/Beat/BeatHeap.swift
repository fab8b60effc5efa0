/// A min-heap of entry names by next due time (ms): the scheduler looks at the top only, so a
/// turn with nothing due costs nothing per entry. Stale items (an entry replaced or dropped since
/// it was pushed) are skipped by the caller when popped.
///
///     var heap = BeatHeap()
///     heap.push(due: 1_000, name: "tick")
///     while let top = heap.top, top.due <= now { _ = heap.pop() }
struct BeatHeap {
    typealias Item = (due: Int64, name: String)
    private var items: [Item] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    /// The earliest item.
    var top: Item? { items.first }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(due: Int64, name: String) {
        items.append((due, name))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard less(i, parent) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Item? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let out = items.removeLast()
        var i = 0
        while true {
            let (l, r) = (2 * i + 1, 2 * i + 2)
            var smallest = i
            if l < items.count && less(l, smallest) { smallest = l }
            if r < items.count && less(r, smallest) { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return out
    }

    /// Ordered by due time, then name (a stable order for entries due together).
    private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].due != items[b].due ? items[a].due < items[b].due : items[a].name < items[b].name
    }
}
