import Foundation

/// Where documents live: list a location, read a document. The embedded
/// store is a local directory; object stores implement the same two calls.
///
///     let store = try DocumentStores.store(for: "file:///data/docs", policy: DocumentPolicy.shared.get())
///     for doc in try store.list() { let bytes = try store.read(doc) }
public protocol DocumentStore: Sendable {
    /// Every document under the location, sorted.
    func list() throws(DocumentError) -> [String]
    /// One document's bytes.
    func read(_ document: String) throws(DocumentError) -> [UInt8]
}
