import Foundation

/// The scaling guide's pipeline: fetch → extract (in parallel, one task per
/// document) → compare, on `fetch_queue`, `extract_queue` and `compare_queue`.
///
///     DocumentTasks.register(into: &registry)
///     // POST /process?blob_path=/data/docs sends fetch_documents_task(blob_path, process=true)
public enum DocumentTasks {
    public static func register(into registry: inout TaskRegistry) {
        registry.register("fetch_documents_task", fetch)
        registry.register("extract_data_task", extract)
        registry.register("compare_data_task", compare)
    }

    /// `fetch_documents_task(blob_path, process=False, threshold=0.5)`: the documents
    /// under a location. With `process`, it replaces itself with
    /// `chord(extract_data_task(doc) for doc, compare_data_task)`, whose result keeps this task's id.
    @Sendable static func fetch(_ ctx: TaskContext) throws -> JSON {
        guard let location = ctx.argument(0, "blob_path")?.stringValue, !location.isEmpty else {
            throw TaskFailure(type: "ValueError", message: "fetch_documents_task needs a blob_path")
        }
        let store: any DocumentStore
        let documents: [String]
        do {
            store = try DocumentStores.store(for: location)
            documents = try store.list()
        } catch {
            throw TaskFailure(type: "FileNotFoundError", message: error.description)
        }
        guard ctx.argument(1, "process") == true else { return .array(documents.map(JSON.string)) }
        let threshold = ctx.argument(2, "threshold") ?? 0.5
        ctx.updateState(
            .progress, meta: ["stage": "fetched", "documents": .int(Int64(documents.count)), "extracted": 0])
        ctx.publishStatus(["state": "PROGRESS", "stage": "fetched", "documents": .int(Int64(documents.count))])
        let progress = ChordProgress.option(stage: "extracting", total: "documents", done: "extracted")
        let body = Signature(
            "compare_data_task", kwargs: [("threshold", threshold)], options: ["celeris_progress": progress])
        throw ctx.replace(
            with: .chord(documents.map { .task(Signature("extract_data_task", args: [.string($0)])) }, body))
    }

    /// `extract_data_task(document)`: text, counts, shingles and MinHash (as
    /// base64 little-endian u32 arrays, `PackedU32`); a
    /// document that cannot be read comes back as `{"document", "error"}`.
    @Sendable static func extract(_ ctx: TaskContext) throws -> JSON {
        guard let path = ctx.argument(0, "document")?.stringValue else {
            throw TaskFailure(type: "ValueError", message: "extract_data_task needs a document path")
        }
        do {
            let text = try FileReader.shared.get().withContents(of: path) {
                try TextExtraction.text(of: $0, path: path)
            }
            let f = DocumentFeatures(text: text)
            return [
                "document": .string(path), "format": .string((path as NSString).pathExtension.lowercased()),
                "words": .int(Int64(f.words)), "unique_words": .int(Int64(f.uniqueWords)),
                "shingles": .string(PackedU32.encode(f.shingles)), "minhash": .string(PackedU32.encode(f.minhash)),
            ]
        } catch {
            return ["document": .string(path), "error": .string("\(error)")]
        }
    }

    /// `compare_data_task(results, threshold=0.5)`: similar pairs, clusters, and
    /// the per-document errors next to them.
    @Sendable static func compare(_ ctx: TaskContext) throws -> JSON {
        guard let results = ctx.argument(0, "results")?.arrayValue else {
            throw TaskFailure(type: "ValueError", message: "compare_data_task needs the list of extraction results")
        }
        let threshold = ctx.argument(1, "threshold")?.doubleValue ?? 0.5
        ctx.updateState(.progress, meta: ["stage": "comparing", "documents": .int(Int64(results.count))])
        ctx.publishStatus(["state": "PROGRESS", "stage": "comparing", "documents": .int(Int64(results.count))])
        var names: [String] = []
        var features: [DocumentFeatures] = []
        var errors: [JSON] = []
        for r in results {
            let name = r["document"]?.stringValue ?? "?"
            if let error = r["error"] {
                errors.append(["document": .string(name), "error": error])
                continue
            }
            guard let shingles = r["shingles"]?.stringValue.flatMap(PackedU32.decode),
                let minhash = r["minhash"]?.stringValue.flatMap(PackedU32.decode)
            else {
                errors.append(["document": .string(name), "error": "extraction result has no shingles"])
                continue
            }
            names.append(name)
            features.append(
                DocumentFeatures(words: Int(r["words"]?.intValue ?? 0), shingles: shingles, minhash: minhash))
        }
        let (pairs, method) = DocumentComparison.similarPairs(features, threshold: threshold)
        let clusters = DocumentComparison.clusters(count: features.count, pairs: pairs)
        ctx.publishOnCompletion(["stage": "completed", "documents": .int(Int64(results.count))])
        return [
            "documents": .int(Int64(results.count)), "compared": .int(Int64(features.count)), "method": .string(method),
            "threshold": .double(threshold),
            "pairs": .array(
                pairs.map {
                    [
                        "a": .string(names[$0.a]), "b": .string(names[$0.b]),
                        "similarity": .double(($0.similarity * 1e4).rounded() / 1e4),
                    ]
                }),
            "clusters": .array(clusters.map { .array($0.map { .string(names[$0]) }) }), "errors": .array(errors),
        ]
    }
}

extension DocumentFeatures {
    /// Rebuild from an extraction result.
    init(words: Int, shingles: [UInt32], minhash: [UInt32]) {
        self.words = words
        self.uniqueWords = 0
        self.shingles = shingles
        self.minhash = minhash
    }
}
