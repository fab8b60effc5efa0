import Foundation

/// A directory inside the documents root, walked recursively: regular files, and
/// symlinks (resolved inside the root to a regular file, or left for the read to report
/// with the root's generic error). Hidden names (`.x`, and everything under a hidden
/// directory), FIFOs, devices, sockets and symlinked directories are skipped.
///
///     let store = LocalDirectoryStore(directory: try root.directory("/srv/docs/a"), root: root)
public struct LocalDirectoryStore: DocumentStore {
    /// The directory walked (resolved, inside `root`).
    public let directory: String
    public let root: DocumentRoot
    /// The most documents a listing returns; more fails the listing.
    public let maxDocuments: Int
    /// The largest document `read` returns.
    public let maxBytes: Int
    /// The most directory levels walked below `directory`.
    public let maxDepth = 32

    public init(
        directory: String, root: DocumentRoot, maxDocuments: Int = 100_000, maxBytes: Int = FileReader.defaultMaxBytes
    ) {
        self.directory = directory
        self.root = root
        self.maxDocuments = maxDocuments
        self.maxBytes = maxBytes
    }

    public func list() throws(DocumentError) -> [String] {
        var out: [String] = []
        var pending: [(path: String, depth: Int)] = [(directory, 0)]
        while let (dir, depth) = pending.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
                throw DocumentError("cannot list \(dir)")
            }
            for name in names where !name.hasPrefix(".") {
                let path = (dir as NSString).appendingPathComponent(name)
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    if depth < maxDepth { pending.append((path, depth + 1)) }
                    continue
                case S_IFREG: break
                case S_IFLNK:
                    // Inside the root, only a link to a regular file is a document; a link
                    // that dangles or leaves the root is listed and its read fails with the
                    // root's generic error (nothing about what is outside is told).
                    if let real = DocumentRoot.realPath(path), root.contains(resolved: real) {
                        var target = stat()
                        guard stat(real, &target) == 0, (target.st_mode & S_IFMT) == S_IFREG else { continue }
                    }
                default: continue  // FIFOs, devices, sockets
                }
                out.append(path)
                guard out.count <= maxDocuments else {
                    throw DocumentError("more than \(maxDocuments) documents under \(directory)")
                }
            }
        }
        return out.sorted()
    }

    /// Through the shared `FileReader` (io_uring for large files, pooled buffers), inside the root.
    public func read(_ document: String) throws(DocumentError) -> [UInt8] {
        do {
            let real = try root.document(document)
            return try FileReader.withRegularFile(real, maxBytes: maxBytes) { fd, size in
                try root.check(opened: fd, as: document)
                return try FileReader.shared.get().withContents(ofDescriptor: fd, size: size, path: document) {
                    Array($0)
                }
            }
        } catch let e as DocumentError {
            throw e
        } catch {
            throw DocumentError("cannot read \(document): \(error)")
        }
    }
}
