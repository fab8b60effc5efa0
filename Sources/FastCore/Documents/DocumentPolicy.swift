/// What document tasks may read, and how much: the documents root (the worker's
/// `--documents-root`, or `$CELERIS_DOCUMENTS_ROOT`), the largest document
/// (`--max-document-bytes`, default 64 MiB), the most documents a listing returns,
/// and how `pdftotext` is run. Without a root, document tasks read nothing.
///
///     DocumentPolicy.shared.set(DocumentPolicy(root: try DocumentRoot("/srv/docs")))
public struct DocumentPolicy: Sendable {
    /// The policy document tasks use (set by `celeris-worker` at start).
    public static let shared = LockedBox(DocumentPolicy())

    /// Where documents may be listed and read; nil: nowhere.
    public var root: DocumentRoot?
    /// The largest document read (bytes); a larger one is reported as a per-document error.
    public var maxBytes: Int
    /// The most documents one listing returns; a larger directory fails the fetch.
    public var maxDocuments: Int
    /// How PDFs are turned into text (tool, timeout, output cap).
    public var pdf: PDFText

    public init(
        root: DocumentRoot? = nil, maxBytes: Int = FileReader.defaultMaxBytes, maxDocuments: Int = 100_000,
        pdf: PDFText = PDFText()
    ) {
        self.root = root
        self.maxBytes = maxBytes
        self.maxDocuments = maxDocuments
        self.pdf = pdf
    }

    /// The root, or the error saying how to configure one.
    public func requireRoot() throws(DocumentError) -> DocumentRoot {
        guard let root else {
            throw DocumentError("no documents root configured: start the worker with --documents-root DIR")
        }
        return root
    }
}

extension DocumentPolicy {
    /// Set the shared policy from the worker's flags: `root` resolved (it must be an
    /// existing directory), `maxBytes` at least 1.
    public static func configure(root: String?, maxBytes: Int) throws(DocumentError) {
        guard maxBytes >= 1 else { throw DocumentError("--max-document-bytes must be at least 1") }
        var policy = DocumentPolicy(maxBytes: maxBytes)
        if let root, !root.isEmpty { policy.root = try DocumentRoot(root) }
        shared.set(policy)
    }
}
