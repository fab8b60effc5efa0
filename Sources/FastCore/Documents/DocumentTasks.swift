import Foundation

/// The scaling guide's pipeline: fetch → extract (in parallel, one task per
/// document) → compare, on `fetch_queue`, `extract_queue` and `compare_queue`.
///
///     DocumentTasks.register(into: &registry)
///     // POST /process?blob_path=/data/docs sends fetch_documents_task(blob_path, process=true)
public enum DocumentTasks {
    /// Default limits (Celery's task `soft_time_limit`/`time_limit`): a message's own
    /// `timelimit` header wins. Extraction's soft limit is above `PDFText`'s timeout.
    public static let fetchOptions = TaskOptions(softTimeLimit: 120, timeLimit: 150)
    public static let extractOptions = TaskOptions(softTimeLimit: 120, timeLimit: 150)
    public static let compareOptions = TaskOptions(softTimeLimit: 600, timeLimit: 660)

    public static func register(into registry: inout TaskRegistry) {
        registry.register("fetch_documents_task", options: fetchOptions, fetch)
        registry.register("extract_data_task", options: extractOptions, extract)
        registry.register("compare_data_task", options: compareOptions, compare)
    }

    /// `fetch_documents_task(blob_path, process=False, threshold=0.5)`: the documents
    /// under a location inside the documents root (`DocumentPolicy`). With `process`, it
    /// replaces itself with `chord(extract_data_task(doc) for doc, compare_data_task)`, whose
    /// result keeps this task's id; with no documents, with `compare_data_task([])` (Celery
    /// runs an empty chord's body at once with an empty list).
    @Sendable static func fetch(_ ctx: TaskContext) throws -> JSON {
        guard let location = ctx.argument(0, "blob_path")?.stringValue, !location.isEmpty else {
            throw TaskFailure(type: "ValueError", message: "fetch_documents_task needs a blob_path")
        }
        let threshold = try self.threshold(ctx.argument(2, "threshold"), task: "fetch_documents_task")
        let documents: [String]
        do {
            documents = try DocumentStores.store(for: location, policy: DocumentPolicy.shared.get()).list()
        } catch {
            throw TaskFailure(type: "FileNotFoundError", message: error.description)
        }
        guard ctx.argument(1, "process") == true else { return .array(documents.map(JSON.string)) }
        ctx.updateState(
            .progress, meta: ["stage": "fetched", "documents": .int(Int64(documents.count)), "extracted": 0])
        ctx.publishStatus(["state": "PROGRESS", "stage": "fetched", "documents": .int(Int64(documents.count))])
        if documents.isEmpty {
            throw ctx.replace(
                with: .task(
                    Signature("compare_data_task", args: [.array([])], kwargs: [("threshold", .double(threshold))])))
        }
        let progress = ChordProgress.option(stage: "extracting", total: "documents", done: "extracted")
        let body = Signature(
            "compare_data_task", kwargs: [("threshold", .double(threshold))],
            options: ["celeris_progress": progress])
        throw ctx.replace(
            with: .chord(documents.map { .task(Signature("extract_data_task", args: [.string($0)])) }, body))
    }

    /// A similarity threshold: absent means 0.5; otherwise a number in 0...1.
    static func threshold(_ value: JSON?, task: String) throws(TaskFailure) -> Double {
        guard let value, !value.isNull else { return 0.5 }
        guard let t = value.doubleValue, t.isFinite, t >= 0, t <= 1 else {
            throw TaskFailure(type: "ValueError", message: "\(task): threshold must be a number from 0 to 1")
        }
        return t
    }

    /// `extract_data_task(document)`: text, counts, shingles and MinHash (as
    /// base64 little-endian u32 arrays, `PackedU32`) of one document inside the documents
    /// root; a document that cannot be read comes back as `{"document", "error"}`.
    @Sendable static func extract(_ ctx: TaskContext) throws -> JSON {
        guard let path = ctx.argument(0, "document")?.stringValue else {
            throw TaskFailure(type: "ValueError", message: "extract_data_task needs a document path")
        }
        do {
            let f = DocumentFeatures(text: try text(of: path, policy: DocumentPolicy.shared.get()))
            return [
                "document": .string(path), "format": .string((path as NSString).pathExtension.lowercased()),
                "words": .int(Int64(f.words)), "unique_words": .int(Int64(f.uniqueWords)),
                "shingles": .string(PackedU32.encode(f.shingles)), "minhash": .string(PackedU32.encode(f.minhash)),
            ]
        } catch {
            return ["document": .string(path), "error": .string("\(error)")]
        }
    }

    /// A document's text: its format from the extension, the path resolved inside the
    /// root, opened as a regular file of at most `maxBytes`, its first bytes checked
    /// against the format, and only then read whole (or given to `pdftotext`).
    public static func text(of path: String, policy: DocumentPolicy) throws -> String {
        let root = try policy.requireRoot()
        let format = try TextExtraction.format(of: path)
        let real = try root.document(path)
        return try FileReader.withRegularFile(real, maxBytes: policy.maxBytes) { fd, size in
            try root.check(opened: fd, as: path)
            let head = try FileReader.prefix(of: fd, count: TextExtraction.prefixBytes)
            do { try TextExtraction.checkFormat(format, prefix: head) } catch {
                throw DocumentError("cannot extract \(path): \(error)")
            }
            if format == "pdf" { return try policy.pdf.text(of: fd, path: path) }
            return try FileReader.shared.get().withContents(ofDescriptor: fd, size: size, path: path) {
                TextExtraction.text(of: $0, format: format)
            }
        }
    }

    /// `compare_data_task(results, threshold=0.5)`: similar pairs, clusters, and
    /// the per-document errors next to them. Every result is validated first
    /// (`ExtractionResult`): one that is not what `extract_data_task` returns fails the task.
    @Sendable static func compare(_ ctx: TaskContext) throws -> JSON {
        guard let results = ctx.argument(0, "results")?.arrayValue else {
            throw TaskFailure(type: "ValueError", message: "compare_data_task needs the list of extraction results")
        }
        let threshold = try self.threshold(ctx.argument(1, "threshold"), task: "compare_data_task")
        ctx.updateState(.progress, meta: ["stage": "comparing", "documents": .int(Int64(results.count))])
        ctx.publishStatus(["state": "PROGRESS", "stage": "comparing", "documents": .int(Int64(results.count))])
        var names: [String] = []
        var features: [DocumentFeatures] = []
        var errors: [JSON] = []
        for (index, r) in results.enumerated() {
            switch try ExtractionResult(r, index: index) {
            case .failed(let name, let error): errors.append(["document": .string(name), "error": error])
            case .extracted(let name, let f):
                names.append(name)
                features.append(f)
            }
            if index % 1024 == 0 { try ctx.checkSoftTimeLimit() }
        }
        let pairs: [DocumentComparison.Pair]
        let method: String
        do {
            (pairs, method) = try DocumentComparison.similarPairs(features, threshold: threshold) {
                try ctx.checkSoftTimeLimit()
            }
        } catch let e as DocumentError {
            throw TaskFailure(type: "ValueError", message: "compare_data_task: \(e.description)")
        }
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

extension DocumentTasks {
    /// The document pipeline's tasks as one registrable set (route them with `DocumentTasks.routes`).
    ///
    ///     CelerisWorker.main(tasks: [DocumentTasks.all], routes: DocumentTasks.routes)
    public static let all: some RegistrableTask = TaskSet(register: DocumentTasks.register(into:))
}
