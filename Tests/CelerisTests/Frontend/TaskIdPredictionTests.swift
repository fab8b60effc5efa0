import FastCore
import XCTest

/// Task ids must not be predictable from other ids (an id is the only key to
/// `/status` and to a subscription). The former generator, xoshiro256** seeded
/// once, gives its state away: each id's first half reveals 45 bits of the
/// state word s1, which is linear over GF(2) in the 256-bit seed, so ten ids
/// determine the seed and every id after them. This test runs that attack on a
/// copy of the former generator (it predicts the next id) and on `FastUUID.v4()`
/// (it must not).
final class TaskIdPredictionTests: XCTestCase {
    /// 256 bits: one per unknown seed bit.
    typealias Mask = SIMD4<UInt64>

    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// The inverse of odd `x` modulo 2^64 (Newton's iteration).
    static func inverse(_ x: UInt64) -> UInt64 {
        var y = x
        for _ in 0..<6 { y = y &* (2 &- x &* y) }
        return y
    }

    /// xoshiro256**, as FastUUID was before issue 19.
    struct Xoshiro {
        var s: (UInt64, UInt64, UInt64, UInt64)
        mutating func next() -> UInt64 {
            let result = rotl(s.1 &* 5, 7) &* 9
            let t = s.1 << 17
            s.2 ^= s.0
            s.3 ^= s.1
            s.1 ^= s.2
            s.0 ^= s.3
            s.2 ^= t
            s.3 = rotl(s.3, 45)
            return result
        }
        /// An id the way the former `FastUUID.v4()` made it.
        mutating func id() -> String {
            let (a, b) = (next(), next())
            var bytes = (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * UInt64($0))) }
            bytes += (0..<8).map { UInt8(truncatingIfNeeded: b >> (8 * UInt64($0))) }
            bytes[6] = (bytes[6] & 0x0F) | 0x40
            bytes[8] = (bytes[8] & 0x3F) | 0x80
            let hex = bytes.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
            let h = Array(hex)
            return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(h[$0]) }.joined(separator: "-")
        }
    }

    /// The xoshiro output word in an id's first 8 bytes (bits 52-55 overwritten by the version).
    static func firstWord(_ id: String) -> UInt64? {
        let hex = id.replacingOccurrences(of: "-", with: "")
        guard hex.utf8.count == 32,
            let bytes = Optional(
                (0..<8).compactMap { i -> UInt8? in
                    let start = hex.index(hex.startIndex, offsetBy: 2 * i)
                    return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)
                }), bytes.count == 8
        else { return nil }
        return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    /// The next id after `ids` if they came from one xoshiro256** stream, else nil.
    static func predictNext(after ids: [String]) -> String? {
        // Symbolic state: each bit of each word as a GF(2) combination of the seed's bits.
        var sym: [[Mask]] = (0..<4).map { w in
            (0..<64).map { i in
                var m = Mask(repeating: 0)
                m[w] = 1 << UInt64(i)
                return m
            }
        }
        func step() {
            let t = (0..<64).map { i in i >= 17 ? sym[1][i - 17] : Mask(repeating: 0) }
            for i in 0..<64 {
                sym[2][i] ^= sym[0][i]
                sym[3][i] ^= sym[1][i]
                sym[1][i] ^= sym[2][i]
                sym[0][i] ^= sym[3][i]
                sym[2][i] ^= t[i]
            }
            let s3 = sym[3]
            sym[3] = (0..<64).map { i in s3[(i + 64 - 45) % 64] }
        }
        let (inv9, inv5) = (inverse(9), inverse(5))
        var rows: [(mask: Mask, rhs: UInt64)] = []
        for id in ids {
            guard let a = firstWord(id) else { return nil }
            // s1 = inv5 · rotr(a · inv9, 7): its low 45 bits depend only on a's known low 52 bits.
            let s1 = rotl(a &* inv9, 57) &* inv5
            for bit in 0..<45 { rows.append((sym[1][bit], (s1 >> UInt64(bit)) & 1)) }
            step()
            step()
        }
        // Gaussian elimination over GF(2).
        var pivotRow: [Int: Int] = [:]
        var r = 0
        for col in 0..<256 {
            let (w, b) = (col / 64, UInt64(col % 64))
            guard let p = (r..<rows.count).first(where: { (rows[$0].mask[w] >> b) & 1 == 1 }) else { continue }
            rows.swapAt(r, p)
            for i in rows.indices where i != r && (rows[i].mask[w] >> b) & 1 == 1 {
                rows[i].mask ^= rows[r].mask
                rows[i].rhs ^= rows[r].rhs
            }
            pivotRow[col] = r
            r += 1
        }
        guard r == 256, !rows[r...].contains(where: { $0.rhs == 1 }) else { return nil }
        var seed: [UInt64] = [0, 0, 0, 0]
        for col in 0..<256 where rows[pivotRow[col] ?? 0].rhs == 1 { seed[col / 64] |= 1 << UInt64(col % 64) }
        var g = Xoshiro(s: (seed[0], seed[1], seed[2], seed[3]))
        for _ in ids { _ = g.id() }
        return g.id()
    }

    func testTheAttackPredictsTheFormerGenerator() {
        var rng = SystemRandomNumberGenerator()
        var former = Xoshiro(s: (rng.next(), rng.next(), rng.next(), rng.next() | 1))
        let seen = (0..<10).map { _ in former.id() }
        XCTAssertEqual(Self.predictNext(after: seen), former.id(), "ten ids give away the next one")
    }

    func testTaskIdsAreNotPredictableFromEarlierOnes() {
        let seen = (0..<10).map { _ in FastUUID.v4() }
        let next = FastUUID.v4()
        XCTAssertNotEqual(Self.predictNext(after: seen), next)
    }
}
