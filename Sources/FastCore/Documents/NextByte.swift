/// The next position of one byte at or after a position that only moves forward,
/// remembered between calls: a scanner asking again from a later position never
/// rescans what it already passed, so a run of openings with no closing byte after
/// them costs one pass in all, not one pass each.
///
///     var gt = NextByte(UInt8(ascii: ">"))
///     gt.find(in: bytes, from: 3)   // the first ">" at or after 3, or nil
struct NextByte {
    let byte: UInt8
    /// The last answer: the byte's position, or `bytes.count` when there is none after `from`.
    private var found = -1

    init(_ byte: UInt8) { self.byte = byte }

    /// The byte's first position at or after `from` (`from` never decreasing between calls).
    mutating func find(in b: [UInt8], from: Int) -> Int? {
        if found >= from { return found < b.count ? found : nil }
        var i = max(from, 0)
        while i < b.count && b[i] != byte { i += 1 }
        found = i
        return i < b.count ? i : nil
    }
}
