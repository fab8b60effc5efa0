/// Standard base64 (with padding) written straight into a byte buffer: kombu
/// bodies are encoded per message, and Foundation's `Data.base64EncodedString`
/// costs a `Data` and a `String` each time.
///
///     var out: [UInt8] = []
///     Base64.encode(Array("[[2, 3], {}, {}]".utf8), to: &out)
public enum Base64 {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

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
