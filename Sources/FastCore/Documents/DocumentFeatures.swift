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

/// Little-endian u32 arrays as base64 text, the compact form results travel in.
public enum PackedU32 {
    public static func encode(_ values: [UInt32]) -> String {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() {
            bytes[4 * i] = UInt8(truncatingIfNeeded: v)
            bytes[4 * i + 1] = UInt8(truncatingIfNeeded: v >> 8)
            bytes[4 * i + 2] = UInt8(truncatingIfNeeded: v >> 16)
            bytes[4 * i + 3] = UInt8(truncatingIfNeeded: v >> 24)
        }
        return Data(bytes).base64EncodedString()
    }

    public static func decode(_ text: String) -> [UInt32]? {
        guard let data = Data(base64Encoded: text), data.count % 4 == 0 else { return nil }
        let b = [UInt8](data)
        return stride(from: 0, to: b.count, by: 4).map {
            UInt32(b[$0]) | UInt32(b[$0 + 1]) << 8 | UInt32(b[$0 + 2]) << 16 | UInt32(b[$0 + 3]) << 24
        }
    }
}

/// Pairwise similarity of extracted documents: exact Jaccard on shingles for
/// small sets, MinHash + LSH banding (32 bands × 4 rows) for large ones, and
/// near-duplicate clusters above the threshold.
public enum DocumentComparison {
    public static let exactLimit = 300

    public struct Pair: Sendable {
        public let a: Int
        public let b: Int
        public let similarity: Double
    }

    /// Pairs at or above `threshold`, most similar first.
    public static func similarPairs(_ docs: [DocumentFeatures], threshold: Double, forceLSH: Bool = false) -> (
        pairs: [Pair], method: String
    ) {
        var out: [Pair] = []
        if docs.count <= exactLimit && !forceLSH {
            for i in 0..<docs.count {
                for j in (i + 1)..<max(i + 1, docs.count) {
                    let s = jaccard(docs[i].shingles, docs[j].shingles)
                    if s >= threshold { out.append(Pair(a: i, b: j, similarity: s)) }
                }
            }
            return (out.sorted { $0.similarity > $1.similarity }, "exact-jaccard")
        }
        let bands = 32
        let rows = DocumentFeatures.signatureSize / bands
        var candidates = Set<Int>()
        for band in 0..<bands {
            var buckets: [[UInt32]: [Int]] = [:]
            for (i, d) in docs.enumerated() where !d.shingles.isEmpty {
                buckets[Array(d.minhash[(band * rows)..<((band + 1) * rows)]), default: []].append(i)
            }
            for members in buckets.values where members.count > 1 {
                for x in 0..<members.count {
                    for y in (x + 1)..<members.count { candidates.insert(members[x] * docs.count + members[y]) }
                }
            }
        }
        for key in candidates {
            let i = key / docs.count
            let j = key % docs.count
            let s = jaccard(docs[i].shingles, docs[j].shingles)  // verify candidates exactly
            if s >= threshold { out.append(Pair(a: min(i, j), b: max(i, j), similarity: s)) }
        }
        return (out.sorted { $0.similarity > $1.similarity }, "minhash-lsh")
    }

    /// |A ∩ B| / |A ∪ B| of two sorted unique arrays.
    public static func jaccard(_ a: [UInt32], _ b: [UInt32]) -> Double {
        if a.isEmpty && b.isEmpty { return 0 }
        var i = 0
        var j = 0
        var common = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] {
                common += 1
                i += 1
                j += 1
            } else if a[i] < b[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return Double(common) / Double(a.count + b.count - common)
    }

    /// Connected components of the similar pairs (near-duplicate clusters), each sorted.
    public static func clusters(count: Int, pairs: [Pair]) -> [[Int]] {
        var parent = Array(0..<count)
        func find(_ x: Int) -> Int {
            var x = x
            while parent[x] != x {
                parent[x] = parent[parent[x]]
                x = parent[x]
            }
            return x
        }
        for p in pairs { parent[find(p.a)] = find(p.b) }
        var groups: [Int: [Int]] = [:]
        for p in pairs {
            groups[find(p.a), default: []].append(p.a)
            groups[find(p.a), default: []].append(p.b)
        }
        return groups.values.map { Array(Set($0)).sorted() }.sorted { $0[0] < $1[0] }
    }
}
