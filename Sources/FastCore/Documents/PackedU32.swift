/// Little-endian u32 arrays as base64 text (`Base64`), the compact form results travel in.
///
///     let text = PackedU32.encode([1, 2, 3])   // "AQAAAAIAAAADAAAA"
///     let back = PackedU32.decode(text)        // [1, 2, 3]
public enum PackedU32 {
    public static func encode(_ values: [UInt32]) -> String {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() {
            bytes[4 * i] = UInt8(truncatingIfNeeded: v)
            bytes[4 * i + 1] = UInt8(truncatingIfNeeded: v >> 8)
            bytes[4 * i + 2] = UInt8(truncatingIfNeeded: v >> 16)
            bytes[4 * i + 3] = UInt8(truncatingIfNeeded: v >> 24)
        }
        var text: [UInt8] = []
        Base64.encode(bytes, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt32]? {
        guard let b = Base64.decode(Array(text.utf8)), b.count % 4 == 0 else { return nil }
        return stride(from: 0, to: b.count, by: 4).map {
            UInt32(b[$0]) | UInt32(b[$0 + 1]) << 8 | UInt32(b[$0 + 2]) << 16 | UInt32(b[$0 + 3]) << 24
        }
    }
}
