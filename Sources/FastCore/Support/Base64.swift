/// Standard base64 (with padding) written straight into a byte buffer: kombu
/// bodies are encoded per message, and Foundation's `Data.base64EncodedString`
/// costs a `Data` and a `String` each time.
///
///     var out: [UInt8] = []
///     Base64.encode(Array("[[2, 3], {}, {}]".utf8), to: &out)
public enum Base64 {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// The bytes of standard base64 `text` (padding optional, no whitespace); nil if it is not base64.
    public static func decode<Text: Collection<UInt8>>(_ text: Text) -> [UInt8]? {
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: decodedCapacity(text.count)) { buf, count in
            guard let n = decode(text, into: buf) else {
                ok = false
                count = 0
                return
            }
            count = n
        }
        return ok ? out : nil
    }

    /// Room `decode(_:into:)` needs for `count` bytes of base64 text.
    public static func decodedCapacity(_ count: Int) -> Int { count / 4 * 3 + 3 }

    /// Decode `text` into `out` (at least `decodedCapacity(text.count)` bytes); the count
    /// written, or nil if it is not base64.
    ///
    ///     withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Base64.decodedCapacity(n)) { Base64.decode(text, into: $0) }
    public static func decode<Text: Collection<UInt8>>(_ text: Text, into out: UnsafeMutableBufferPointer<UInt8>)
        -> Int?
    {
        // Whole groups of four first, while none is padding or foreign (contiguous text).
        let (done, written) =
            text.withContiguousStorageIfAvailable { decodeGroups($0, into: out) } ?? (0, 0)
        var count = written
        var acc: UInt32 = 0
        var bits = 0
        var padding = 0
        let ok = values.withUnsafeBufferPointer { v -> Bool in
            for c in text.dropFirst(done) {
                if c == UInt8(ascii: "=") {
                    padding += 1
                    continue
                }
                let d = v[Int(c)]
                if d == 0xFF || padding > 0 { return false }
                acc = acc << 6 | UInt32(d)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    out[count] = UInt8(truncatingIfNeeded: acc >> UInt32(bits))
                    count += 1
                }
            }
            return padding <= 2 && bits < 6
        }
        return ok ? count : nil
    }

    /// Decode groups of four characters from the start of `text` into `out` until one
    /// holds padding or a character that is not base64 (left for the caller to read):
    /// how many characters were read, and bytes written.
    private static func decodeGroups(_ text: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>)
        -> (read: Int, written: Int)
    {
        values.withUnsafeBufferPointer { v in
            var i = 0
            var o = 0
            while i + 4 <= text.count {
                let a = UInt32(v[Int(text[i])]), b = UInt32(v[Int(text[i + 1])])
                let c = UInt32(v[Int(text[i + 2])]), d = UInt32(v[Int(text[i + 3])])
                if (a | b | c | d) & 0x80 != 0 { break }
                let n = a << 18 | b << 12 | c << 6 | d
                out[o] = UInt8(truncatingIfNeeded: n >> 16)
                out[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                out[o + 2] = UInt8(truncatingIfNeeded: n)
                i += 4
                o += 3
            }
            return (i, o)
        }
    }

    /// Append the base64 text of `bytes` to `out`.
    public static func encode(_ bytes: [UInt8], to out: inout [UInt8]) {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        alphabet.withUnsafeBufferPointer { a in
            var i = 0
            while i + 3 <= bytes.count {
                let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out.append(a[Int(n >> 18)])
                out.append(a[Int(n >> 12 & 63)])
                out.append(a[Int(n >> 6 & 63)])
                out.append(a[Int(n & 63)])
                i += 3
            }
            let left = bytes.count - i
            guard left > 0 else { return }
            let n = UInt32(bytes[i]) << 16 | (left == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(a[Int(n >> 18)])
            out.append(a[Int(n >> 12 & 63)])
            out.append(left == 2 ? a[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
    }
}
