import Foundation

/// The one directory document tasks may read: every path a task lists or reads is
/// resolved with `realpath` (symlinks followed) and must land inside it. Errors never
/// say whether a path outside the root exists: "does not exist" and "outside the root"
/// read the same.
///
///     let root = try DocumentRoot("/srv/docs")
///     let dir = try root.directory("/srv/docs/batch1")   // "/srv/docs/batch1"
///     _ = try? root.directory("/etc")                     // throws: not a directory under the documents root
public struct DocumentRoot: Sendable {
    /// The root, resolved (no symlinks, no trailing slash).
    public let path: String

    /// Resolve `path`; it must be an existing directory.
    public init(_ path: String) throws(DocumentError) {
        guard let real = DocumentRoot.realPath(path) else {
            throw DocumentError("documents root \(path) does not exist")
        }
        var st = stat()
        guard stat(real, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw DocumentError("documents root \(path) is not a directory")
        }
        self.path = real
    }

    /// `realpath(3)`, or nil when any component is missing or unreadable.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Whether a resolved path is the root or under it.
    public func contains(resolved: String) -> Bool {
        resolved == path || resolved.hasPrefix(path == "/" ? "/" : path + "/")
    }

    /// Whether a resolved path inside the root has a hidden (dot) component below the root.
    func isHidden(resolved: String) -> Bool {
        resolved.dropFirst(path.count).split(separator: "/").contains { $0.hasPrefix(".") }
    }

    /// A client's path: absolute, or relative to the root; `file://` accepted.
    func absolute(_ location: String) -> String {
        let raw = location.hasPrefix("file://") ? String(location.dropFirst("file://".count)) : location
        return raw.hasPrefix("/") ? raw : (path as NSString).appendingPathComponent(raw)
    }

    /// The resolved directory a listing may walk; the same error for a path that does not
    /// exist, is not a directory, is hidden, or resolves outside the root.
    public func directory(_ location: String) throws(DocumentError) -> String {
        let failure = DocumentError("blob location \(location) is not a directory under the documents root")
        guard let real = DocumentRoot.realPath(absolute(location)), contains(resolved: real), !isHidden(resolved: real)
        else { throw failure }
        var st = stat()
        guard stat(real, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw failure }
        return real
    }

    /// The resolved path of a document to read; the same error for a path that does not
    /// exist, is hidden (a dot name below the root, as listings skip) or resolves outside the root (whether it is a regular file is checked when
    /// it is opened, `FileReader.withRegularFile`).
    public func document(_ location: String) throws(DocumentError) -> String {
        guard let real = DocumentRoot.realPath(absolute(location)), contains(resolved: real), real != path,
            !isHidden(resolved: real)
        else {
            throw DocumentError("cannot read \(location): not a readable document under the documents root")
        }
        return real
    }

    /// Check what a descriptor really opened (`/proc/self/fd`), in case a component of the
    /// path was swapped for a symlink after it was resolved. Where `/proc` is not mounted
    /// the resolution alone stands.
    public func check(opened fd: Int32, as location: String) throws(DocumentError) {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
        guard n > 0 else { return }
        let opened = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard contains(resolved: opened) else {
            throw DocumentError("cannot read \(location): not a readable document under the documents root")
        }
    }
}
