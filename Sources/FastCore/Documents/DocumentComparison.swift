import Foundation

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

    /// The most candidate pairs LSH collects before the comparison is refused (a list
    /// crafted with one MinHash for every document would otherwise collect n²/2).
    public static let maxCandidates = 5_000_000

    /// Pairs at or above `threshold`, most similar first. `check` is called between
    /// rows and bands (the task's soft time limit); more than `maxCandidates` candidate
    /// pairs throws `DocumentError`.
    public static func similarPairs(
        _ docs: [DocumentFeatures], threshold: Double, forceLSH: Bool = false,
        maxCandidates: Int = DocumentComparison.maxCandidates, check: () throws -> Void = {}
    ) throws -> (pairs: [Pair], method: String) {
        var out: [Pair] = []
        if docs.count <= exactLimit && !forceLSH {
            for i in 0..<docs.count {
                try check()
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
            try check()
            var buckets: [[UInt32]: [Int]] = [:]
            for (i, d) in docs.enumerated()
            where !d.shingles.isEmpty && d.minhash.count == DocumentFeatures.signatureSize {
                buckets[Array(d.minhash[(band * rows)..<((band + 1) * rows)]), default: []].append(i)
            }
            for members in buckets.values where members.count > 1 {
                for x in 0..<members.count {
                    for y in (x + 1)..<members.count { candidates.insert(members[x] * docs.count + members[y]) }
                    guard candidates.count <= maxCandidates else {
                        throw DocumentError(
                            "more than \(maxCandidates) candidate pairs: too many near-identical MinHash signatures")
                    }
                }
            }
        }
        for (n, key) in candidates.enumerated() {
            if n % 4096 == 0 { try check() }
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
