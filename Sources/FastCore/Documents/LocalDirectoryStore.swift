import Foundation

/// A directory on the local filesystem (`/path` or `file:///path`), walked recursively.
public struct LocalDirectoryStore: DocumentStore {
    public let root: String

    public init(root: String) { self.root = root }

    public func list() throws(DocumentError) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DocumentError("blob location \(root) is not a directory")
        }
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            throw DocumentError("cannot list \(root)")
        }
        var out: [String] = []
        while let rel = walker.nextObject() as? String {
            let path = (root as NSString).appendingPathComponent(rel)
            var dir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &dir)
            if exists && dir.boolValue { continue }
            if (rel as NSString).lastPathComponent.hasPrefix(".") { continue }
            out.append(path)  // dangling links and unreadable files too: their read reports the error
        }
        return out.sorted()
    }

    /// Through the shared `FileReader` (io_uring for large files, pooled buffers).
    public func read(_ document: String) throws(DocumentError) -> [UInt8] {
        do {
            return try FileReader.shared.get().withContents(of: document) { Array($0) }
        } catch let e as DocumentError {
            throw e
        } catch {
            throw DocumentError("cannot read \(document): \(error)")
        }
    }
}
