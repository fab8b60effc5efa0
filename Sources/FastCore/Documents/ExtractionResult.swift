/// One `extract_data_task` result as `compare_data_task` receives it, validated: any
/// client can send `compare_data_task` its own list, so every field is checked (types,
/// lengths, ranges) and a result that is not what extraction returns is a `ValueError`
/// naming the result, never a trap further on.
///
///     switch try ExtractionResult(["document": "a.txt", "error": "cannot read"], index: 0) { … }
enum ExtractionResult {
    /// A document extraction reported as unreadable: `{"document", "error"}`.
    case failed(name: String, error: JSON)
    /// A document's features, ready to compare.
    case extracted(name: String, features: DocumentFeatures)

    /// The most shingles one result may carry (a 64 MiB text has fewer 3-word shingles).
    static let maxShingles = 16 << 20

    init(_ r: JSON, index: Int) throws(TaskFailure) {
        func invalid(_ name: String?, _ problem: String) -> TaskFailure {
            TaskFailure(
                type: "ValueError",
                message: "compare_data_task: result \(index)\(name.map { " (\($0))" } ?? ""): \(problem)")
        }
        guard r.objectPairs != nil else { throw invalid(nil, "is not an object") }
        var name = "?"
        if let d = r["document"] {
            guard let s = d.stringValue else { throw invalid(nil, "document is not a string") }
            name = s
        }
        if let error = r["error"] {
            self = .failed(name: name, error: error)
            return
        }
        guard let shinglesText = r["shingles"]?.stringValue, let shingles = PackedU32.decode(shinglesText) else {
            throw invalid(name, "shingles must be base64 little-endian u32 values")
        }
        guard shingles.count <= ExtractionResult.maxShingles else {
            throw invalid(name, "more than \(ExtractionResult.maxShingles) shingles")
        }
        for i in shingles.indices.dropFirst() where shingles[i - 1] >= shingles[i] {
            throw invalid(name, "shingles must be sorted and unique")
        }
        guard let minhashText = r["minhash"]?.stringValue, let minhash = PackedU32.decode(minhashText) else {
            throw invalid(name, "minhash must be base64 little-endian u32 values")
        }
        guard minhash.count == DocumentFeatures.signatureSize else {
            throw invalid(
                name, "minhash has \(minhash.count) values, expected \(DocumentFeatures.signatureSize)")
        }
        var words = 0
        if let w = r["words"], !w.isNull {
            guard case .int(let n) = w, n >= 0, n <= Int64(Int32.max) else {
                throw invalid(name, "words must be an integer from 0 to \(Int32.max)")
            }
            words = Int(n)
        }
        self = .extracted(name: name, features: DocumentFeatures(words: words, shingles: shingles, minhash: minhash))
    }
}
