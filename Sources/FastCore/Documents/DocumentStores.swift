import Foundation

/// Stores by location syntax, inside the policy's documents root.
public enum DocumentStores {
    /// `/path`, `file:///path` or a path relative to the root; it must resolve to a
    /// directory inside the root (the same error otherwise, whatever exists outside it).
    public static func store(for location: String, policy: DocumentPolicy) throws(DocumentError) -> any DocumentStore {
        if location.contains("://") && !location.hasPrefix("file://") {
            throw DocumentError("unsupported blob location '\(location)': use /path or file:///path")
        }
        let root = try policy.requireRoot()
        return LocalDirectoryStore(
            directory: try root.directory(location), root: root, maxDocuments: policy.maxDocuments,
            maxBytes: policy.maxBytes)
    }
}
