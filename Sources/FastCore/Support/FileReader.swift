import CEventShim
import Foundation

/// Reads documents into pooled, reused buffers: large files through io_uring
/// (several chunk reads in flight), small ones with `read(2)`.
///
///     let reader = FileReader(mode: .auto)
///     let text = try reader.withContents(of: "/data/a.txt") { String(decoding: $0, as: UTF8.self) }
public final class FileReader: @unchecked Sendable {
    /// The reader tasks use (set from the worker's `--io`).
    public static let shared = LockedBox(FileReader(mode: .auto))

    public let mode: IOMode
    /// Files at least this large go through io_uring.
    public let threshold: Int
    private let chunk = 256 * 1024
    private let lock = NSLock()
    private var rings: [OpaquePointer] = []
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var refusal: Int32?
    private let makeRing: @Sendable () -> (OpaquePointer?, Int32)

    public struct Unavailable: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String {
            "io_uring unavailable: \(String(cString: strerror(errno))) (use --io auto or socket)"
        }
    }

    /// `makeRing` is injectable so tests can play a kernel that refuses io_uring.
    public init(
        mode: IOMode, threshold: Int = 256 * 1024,
        makeRing: @escaping @Sendable () -> (OpaquePointer?, Int32) = {
            var err: Int32 = 0
            let r = ce_uring_new(8, &err)
            return (r, err)
        }
    ) {
        self.mode = mode
        self.threshold = threshold
        self.makeRing = makeRing
    }

    deinit {
        for r in rings { ce_uring_free(r) }
        for b in free { b.deallocate() }
    }

    /// Check that the mode can work here: forcing `uring` where it is refused throws.
    public func validate() throws(Unavailable) {
        guard mode == .uring else { return }
        let ring = try takeRing()
        giveBack(ring: ring)
    }

    /// In `auto` mode, try io_uring once now (the ring is kept for the first large read) and
    /// say why the kernel refused it, e.g. "EPERM" under a container's default seccomp profile;
    /// nil when it is allowed or not wanted. After this, `usesUring` tells what is really used.
    public func probe() -> String? {
        guard mode == .auto else { return nil }
        do throws(Unavailable) {
            giveBack(ring: try takeRing())
            return nil
        } catch {
            return Self.errnoName(error.errno)
        }
    }

    static func errnoName(_ e: Int32) -> String {
        switch e {
        case EPERM: "EPERM"
        case EACCES: "EACCES"
        case ENOSYS: "ENOSYS"
        case ENOMEM: "ENOMEM"
        case EINVAL: "EINVAL"
        case EMFILE: "EMFILE"
        default: "errno \(e)"
        }
    }

    /// Whether io_uring is in use (false once refused, or in `socket` mode).
    public var usesUring: Bool { mode != .socket && lock.withLock { refusal == nil } }

    /// The largest file `withContents(of:)` reads unless told otherwise: 64 MiB (the
    /// worker's `--max-document-bytes`).
    public static let defaultMaxBytes = 64 << 20

    /// Call `body` with the whole file's bytes, in a pooled buffer valid only during the call.
    /// Only a regular file at most `maxBytes` long is read (`openRegularFile`).
    public func withContents<R>(
        of path: String, maxBytes: Int = FileReader.defaultMaxBytes, _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        try FileReader.withRegularFile(path, maxBytes: maxBytes) { fd, size in
            try withContents(ofDescriptor: fd, size: size, path: path, body)
        }
    }

    /// Open `path` for reading without waiting and without following a final symlink
    /// (`O_NONBLOCK | O_NOFOLLOW`: a FIFO or a device cannot hang the caller), check with
    /// `fstat` that it is a regular file of at most `maxBytes`, and call `body` with the
    /// descriptor and the size. Anything else (a FIFO, a device, a socket, a directory, a
    /// symlink, a larger file) throws before a byte is read.
    public static func withRegularFile<R>(
        _ path: String, maxBytes: Int, _ body: (Int32, Int) throws -> R
    ) throws -> R {
        // lstat first: a device is not even opened (opening some has side effects).
        var pre = stat()
        guard lstat(path, &pre) == 0 else {
            throw DocumentError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard (pre.st_mode & S_IFMT) == S_IFREG else { throw DocumentError("cannot open \(path): not a regular file") }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
        guard fd >= 0 else { throw DocumentError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DocumentError("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        // Checked again on what was opened: the path may have been swapped since the lstat.
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw DocumentError("cannot open \(path): not a regular file") }
        // A regular file: blocking reads again (io_uring would return EAGAIN for O_NONBLOCK on some filesystems).
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        let size = Int(st.st_size)
        guard size <= maxBytes else {
            throw DocumentError("cannot read \(path): \(size) bytes, over the \(maxBytes)-byte limit")
        }
        return try body(fd, size)
    }

    /// Up to `count` bytes from the start of an open file (`pread`: the offset is not moved),
    /// to check a format before reading the rest.
    public static func prefix(of fd: Int32, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw DocumentError("cannot read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        out.removeSubrange(done...)
        return out
    }

    /// Call `body` with the first `size` bytes of an open file (from `withRegularFile`),
    /// in a pooled buffer valid only during the call.
    public func withContents<R>(
        ofDescriptor fd: Int32, size: Int, path: String, _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        let buffer = takeBuffer(size)
        defer { giveBack(buffer: buffer) }
        let n = try read(fd: fd, into: buffer, size: size, path: path)
        return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }

    private func read(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, size: Int, path: String) throws -> Int {
        if size >= threshold && mode != .socket {
            do {
                let ring = try takeRing()
                defer { giveBack(ring: ring) }
                let n = ce_uring_read_file(
                    ring, fd, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), size, chunk)
                guard n >= 0 else {
                    throw DocumentError("cannot read \(path): \(String(cString: strerror(Int32(-n))))")
                }
                return Int(n)
            } catch let e as Unavailable {
                if mode == .uring { throw e }  // auto: fall through to read(2)
            }
        }
        var done = 0
        while done < size {
            let n = Glibc.read(fd, buffer.baseAddress! + done, size - done)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw DocumentError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        return done
    }

    private func takeRing() throws(Unavailable) -> OpaquePointer {
        let pooled: OpaquePointer?? = lock.withLock {
            if refusal != nil { return .some(nil) }
            return rings.popLast().map { .some($0) } ?? .none
        }
        switch pooled {
        case .some(.some(let r)): return r
        case .some(.none): throw Unavailable(errno: lock.withLock { refusal ?? EPERM })
        case .none:
            let (ring, err) = makeRing()
            guard let ring else {
                lock.withLock { refusal = err }
                throw Unavailable(errno: err)
            }
            return ring
        }
    }

    private func giveBack(ring: OpaquePointer) { lock.withLock { rings.append(ring) } }

    /// A page-aligned buffer of at least `size` bytes (a power of two), reused across reads.
    private func takeBuffer(_ size: Int) -> UnsafeMutableRawBufferPointer {
        var cap = 4096
        while cap < size { cap <<= 1 }
        return lock.withLock {
            if let i = free.firstIndex(where: { $0.count >= cap && $0.count <= cap * 4 }) { return free.remove(at: i) }
            return UnsafeMutableRawBufferPointer.allocate(byteCount: cap, alignment: 4096)
        }
    }

    private func giveBack(buffer: UnsafeMutableRawBufferPointer) {
        lock.withLock {
            if free.count < 16 { free.append(buffer) } else { buffer.deallocate() }
        }
    }
}
