import Foundation

/// Random (v4) UUIDs from xoshiro256** seeded by the system RNG: Foundation's
/// `UUID()` opens /dev/urandom per call here, which showed in the request profile.
///
///     let id = FastUUID.v4()  // "1b4e28ba-2fa1-4d2f-883f-0016d3cca427"
public enum FastUUID {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var state: (UInt64, UInt64, UInt64, UInt64) = {
        var g = SystemRandomNumberGenerator()
        return (g.next(), g.next(), g.next(), g.next() | 1)
    }()

    private static func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A lower-case v4 UUID string, as Celery makes task ids.
    public static func v4() -> String {
        let (a, b) = lock.withLock { (next(), next()) }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(i)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return String(unsafeUninitializedCapacity: 36) { out in
            var o = 0
            for (i, byte) in bytes.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 {
                    out[o] = UInt8(ascii: "-")
                    o += 1
                }
                out[o] = hex[Int(byte >> 4)]
                out[o + 1] = hex[Int(byte & 0x0F)]
                o += 2
            }
            return 36
        }
    }
}
