import Foundation

/// Stores by location syntax.
public enum DocumentStores {
    public static func store(for location: String) throws(DocumentError) -> any DocumentStore {
        if location.hasPrefix("file://") {
            return LocalDirectoryStore(root: String(location.dropFirst("file://".count)))
        }
        if location.hasPrefix("/") { return LocalDirectoryStore(root: location) }
        throw DocumentError("unsupported blob location '\(location)': use /path or file:///path")
    }
}
