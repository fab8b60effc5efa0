import Foundation

/// Setting a string to bytes read off the wire without a new allocation when it can
/// be avoided: a recycled message's task id and delivery tag (36-byte uuids, too long
/// for Swift's inline small strings) are written over the old ones' storage.
///
///     message.id.assign(utf8: idBytes)   // same text: kept; same length, ASCII, unshared: in place
extension String {
    /// Make this string the UTF-8 text `bytes`. Kept as it is when it already is that
    /// text; written over in place when the old and new texts are ASCII of the same
    /// length and its storage is its own (`reserveCapacity` copies shared storage first,
    /// so a copy held elsewhere never changes); otherwise a new string.
    mutating func assign(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        let same = withUTF8 { old in
            old.count == bytes.count && (old.isEmpty || memcmp(old.baseAddress!, bytes.baseAddress!, old.count) == 0)
        }
        if same { return }
        // Longer than 15 bytes: heap storage, never a small string held in the value itself.
        guard bytes.count > 15, utf8.count == bytes.count, Self.isASCII(bytes),
            withUTF8({ Self.isASCII($0) })
        else {
            self = String(decoding: bytes, as: UTF8.self)
            return
        }
        reserveCapacity(bytes.count)  // unique native storage from here on
        withUTF8 { old in
            UnsafeMutableRawPointer(mutating: old.baseAddress!).copyMemory(
                from: bytes.baseAddress!, byteCount: bytes.count)
        }
    }

    /// True when no byte has its high bit set (8 bytes at a time).
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var i = 0
        var high: UInt64 = 0
        while i + 8 <= bytes.count {
            high |= UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            high |= UInt64(base[i])
            i += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
}
