import Foundation

/// What extraction keeps of a document: normalised words, counts, 3-word
/// shingles (32-bit FNV-1a hashes) and a MinHash signature over them.
///
///     let f = DocumentFeatures(text: "The quick brown fox")
///     f.minhash.count  // 128
public struct DocumentFeatures: Sendable {
    public static let signatureSize = 128
    public let words: Int
    public let uniqueWords: Int
    public let shingles: [UInt32]  // sorted, unique
    public let minhash: [UInt32]

    public init(text: String) {
        var bytes = Array(text.utf8)
        let words = DocumentFeatures.wordRanges(&bytes)
        self.words = words.count
        var unique = Set<UInt32>()
        var set = Set<UInt32>()
        set.reserveCapacity(words.count)
        bytes.withUnsafeBufferPointer { b in
            for w in words { unique.insert(fnv1a(b, w)) }
            if words.count >= 3 {
                for i in 0...(words.count - 3) { set.insert(fnv1a(b, words[i].lowerBound..<words[i + 2].upperBound)) }
            } else if let first = words.first, let last = words.last {
                set.insert(fnv1a(b, first.lowerBound..<last.upperBound))
            }
        }
        uniqueWords = unique.count
        shingles = set.sorted()
        minhash = DocumentFeatures.signature(shingles)
    }

    /// Lower-cased letter/digit runs as text (tests, display).
    public static func normalisedWords(_ text: String) -> [String] {
        var bytes = Array(text.utf8)
        return wordRanges(&bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    /// Word byte ranges: ASCII letters and digits (lower-cased in place) and
    /// any non-ASCII bytes; everything else separates. Each word is followed in
    /// the buffer by exactly one space, so a 3-word shingle is the contiguous
    /// range from the first word's start to the third word's end.
    static func wordRanges(_ bytes: inout [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(bytes.count / 5)
        var write = 0
        var start = -1
        for read in 0..<bytes.count {
            var c = bytes[read]
            let isWordByte: Bool
            switch c {
            case 0x41...0x5A:
                c |= 0x20
                isWordByte = true
            case 0x61...0x7A, 0x30...0x39, 0x80...0xFF: isWordByte = true
            default: isWordByte = false
            }
            if isWordByte {
                if start < 0 { start = write }
                bytes[write] = c
                write += 1
            } else if start >= 0 {
                out.append(start..<write)
                bytes[write] = 0x20
                write += 1
                start = -1
            }
        }
        if start >= 0 { out.append(start..<write) }
        return out
    }

    /// MinHash: for each of 128 seeded mixes of the shingle hash, the minimum.
    static func signature(_ shingles: [UInt32]) -> [UInt32] {
        var sig = [UInt32](repeating: .max, count: signatureSize)
        for s in shingles {
            for i in 0..<signatureSize {
                let h = UInt32(truncatingIfNeeded: mix64(UInt64(s) &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >> 32)
                if h < sig[i] { sig[i] = h }
            }
        }
        return sig
    }

    /// splitmix64's finaliser.
    static func mix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// 32-bit FNV-1a of a byte range.
func fnv1a(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> UInt32 {
    var h: UInt32 = 0x811C_9DC5
    for i in r {
        h ^= UInt32(b[i])
        h = h &* 0x0100_0193
    }
    return h
}
