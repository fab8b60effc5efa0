import Foundation

/// Runs poppler's `pdftotext` on an open PDF (given as the child's stdin, `fd://0`: the
/// file checked is the file read), killing it after `timeout` seconds or once it has
/// written more than `maxOutputBytes`.
///
///     let text = try PDFText().text(of: fd, path: "a.pdf")
public struct PDFText: Sendable {
    /// The executable; nil: `/usr/bin/pdftotext` or `/usr/local/bin/pdftotext`, if installed.
    public var tool: String?
    /// Seconds before the child is killed and the document reported as timed out (default 60).
    public var timeout: Double
    /// Bytes of text read before the child is killed and the document refused (default 16 MiB).
    public var maxOutputBytes: Int

    public init(tool: String? = nil, timeout: Double = 60, maxOutputBytes: Int = 16 << 20) {
        self.tool = tool
        self.timeout = timeout
        self.maxOutputBytes = maxOutputBytes
    }

    /// The text of the PDF open on `fd` (`path` names it in errors).
    public func text(of fd: Int32, path: String) throws(DocumentError) -> String {
        let executable =
            tool
            ?? ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            }
        guard let executable else {
            throw DocumentError("cannot extract \(path): pdftotext not installed (apt-get install poppler-utils)")
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw DocumentError("cannot read \(path): not seekable") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["-q", "-enc", "UTF-8", "fd://0", "-"]
        let out = Pipe()
        p.standardInput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { throw DocumentError("cannot run pdftotext: \(error)") }
        try? out.fileHandleForWriting.close()
        let rfd = out.fileHandleForReading.fileDescriptor
        var data: [UInt8] = []
        var problem: String?
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, timeout) * 1e9)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else {
                problem = "pdftotext took more than \(timeout) s on \(path)"
                break
            }
            var pfd = pollfd(fd: rfd, events: Int16(POLLIN), revents: 0)
            let wait = Int32(min(UInt64(Int32.max), (deadline - now) / 1_000_000 + 1))
            let ready = poll(&pfd, 1, wait)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            guard ready > 0 else {
                problem = "cannot read pdftotext's output: \(String(cString: strerror(errno)))"
                break
            }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(rfd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n < 0 { problem = "cannot read pdftotext's output: \(String(cString: strerror(errno)))" }
                break
            }
            guard data.count + n <= maxOutputBytes else {
                problem = "pdftotext wrote more than \(maxOutputBytes) bytes of text for \(path)"
                break
            }
            data += chunk[0..<n]
        }
        if problem != nil && p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        try? out.fileHandleForReading.close()
        if let problem { throw DocumentError(problem) }
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw DocumentError("pdftotext could not read \(path) (exit \(p.terminationStatus)): corrupt or not a PDF")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
