import Foundation

/// Random (v4) UUIDs from the OS CSPRNG (`getentropy(3)`, i.e. `getrandom(2)`), as Celery's
/// `uuid4()` makes task ids: a task id is the only key to `/status` and to a
/// WebSocket subscription, so it must not be predictable from other ids.
/// The bytes are read 4 KiB at a time (256 ids per 16 system calls): Foundation's
/// `UUID()` opens /dev/urandom per call here, which showed in the request profile.
///
///     let id = FastUUID.v4()  // "1b4e28ba-2fa1-4d2f-883f-0016d3cca427"
public enum FastUUID {
    private static let lock = NSLock()
    // Exclusivity: `shared` is used under `lock` only: the run-time check is pure cost.
    @exclusivity(unchecked) nonisolated(unsafe) private static var shared = Generator()

    /// A buffer of CSPRNG bytes handing out 16 at a time, refilled from the OS when empty.
    ///
    ///     var g = FastUUID.Generator()
    ///     g.v4()  // the first call reads 4 KiB from getrandom(2)
    public struct Generator {
        /// Bytes read from the OS per refill.
        public static let bufferBytes = 4096
        private var buffer = [UInt8](repeating: 0, count: bufferBytes)
        private var used = bufferBytes
        /// How many times the buffer was refilled from the OS.
        public private(set) var refills = 0

        public init() {}

        /// A lower-case v4 UUID string.
        public mutating func v4() -> String {
            if used + 16 > buffer.count { refill() }
            defer { used += 16 }
            return buffer.withUnsafeBufferPointer {
                FastUUID.format(UnsafeBufferPointer(rebasing: $0[used..<used + 16]))
            }
        }

        private mutating func refill() {
            buffer.withUnsafeMutableBytes { FastUUID.fillFromOS($0) }
            used = 0
            refills += 1
        }
    }

    /// Fill `out` with bytes of the OS CSPRNG: getentropy(3) (getrandom(2), at most 256 bytes
    /// a call); the standard library's system generator if that fails.
    static func fillFromOS(_ out: UnsafeMutableRawBufferPointer) {
        guard let base = out.baseAddress else { return }
        var filled = 0
        while filled < out.count {
            let n = min(256, out.count - filled)
            guard getentropy(base + filled, n) == 0 else { break }
            filled += n
        }
        if filled < out.count {
            var g = SystemRandomNumberGenerator()
            for i in filled..<out.count { out[i] = UInt8.random(in: .min ... .max, using: &g) }
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A lower-case v4 UUID string, as Celery makes task ids.
    public static func v4() -> String { lock.withLock { shared.v4() } }

    /// The UUID text of 16 random bytes with the version (4) and RFC 4122 variant bits set.
    static func format(_ random: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: 36) { out in
            var o = 0
            for i in 0..<16 {
                var byte = random[i]
                if i == 6 { byte = (byte & 0x0F) | 0x40 }  // version 4
                if i == 8 { byte = (byte & 0x3F) | 0x80 }  // RFC 4122 variant
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
