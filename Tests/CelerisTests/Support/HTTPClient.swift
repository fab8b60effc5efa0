import FastCore
import Foundation

/// A blocking TCP connection to 127.0.0.1 for sending exact bytes.
final class RawSocket {
    let fd: Int32

    /// The socket is the object's (closed by deinit) only once connected: a failed connect
    /// closes it here and throws before `fd` is set, so no deinit closes the number again
    /// (by then possibly another thread's socket).
    init(port: Int, timeout: Double = 5, receiveBuffer: Int32? = nil) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        if var size = receiveBuffer {  // before connect, so the TCP window stays small
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let why = errno
            close(fd)
            throw TestFailure("connect to \(port) failed: errno \(why)")
        }
        self.fd = fd
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }  // a signal caught while blocked
            if n <= 0 { throw TestFailure("send failed: errno \(errno)") }
            off += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    private var buffer: [UInt8] = []

    /// Why the last `fill()` got nothing: "EOF" or the errno's text.
    private(set) var lastEnd = ""

    /// Read at least one more chunk; false on EOF/timeout. A socket with SO_RCVTIMEO is
    /// never restarted after a signal handler runs (signal(7)), so an EINTR reads again.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                lastEnd = n == 0 ? "EOF" : String(cString: strerror(errno))
                return false
            }
            buffer += chunk[0..<n]
            return true
        }
    }

    /// Exactly `count` bytes, or throws on EOF/timeout.
    func read(_ count: Int) throws -> [UInt8] {
        while buffer.count < count {
            if !fill() { throw TestFailure("connection ended (\(lastEnd)) after \(buffer.count) bytes") }
        }
        let out = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return out
    }

    /// Bytes up to and including `delimiter`.
    func read(until delimiter: [UInt8]) throws -> [UInt8] {
        while true {
            if let r = find(delimiter) {
                let out = Array(buffer[0..<r])
                buffer.removeFirst(r)
                return out
            }
            if !fill() {
                throw TestFailure(
                    "connection ended (\(lastEnd)) before delimiter; got \(String(decoding: buffer, as: UTF8.self))")
            }
        }
    }

    private func find(_ d: [UInt8]) -> Int? {
        guard buffer.count >= d.count else { return nil }
        for i in 0...(buffer.count - d.count) where buffer[i..<(i + d.count)].elementsEqual(d) { return i + d.count }
        return nil
    }

    /// True once the peer has closed (EOF).
    func isClosedByPeer() -> Bool { buffer.isEmpty && !fill() }

    /// One HTTP response.
    func readResponse() throws -> HTTPResponse {
        let head = String(decoding: try read(until: Array("\r\n\r\n".utf8)), as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestFailure("bad status line \(statusLine)") }
        var headers: [String: String] = [:]
        for l in lines where l.contains(":") {
            let kv = l.split(separator: ":", maxSplits: 1)
            headers[kv[0].lowercased()] = kv[1].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let body = status == 101 ? [] : try read(length)
        return HTTPResponse(statusLine: statusLine, status: status, headers: headers, body: body)
    }
}

struct HTTPResponse {
    let statusLine: String
    let status: Int
    let headers: [String: String]
    let body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSON? { try? JSONParser.parse(body) }
}

enum HTTPClient {
    /// One request on a fresh connection.
    static func request(_ method: String, port: Int, path: String, body: String? = nil, headers: [String: String] = [:])
        throws -> HTTPResponse
    {
        let s = try RawSocket(port: port)
        var req = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (k, v) in headers { req += "\(k): \(v)\r\n" }
        if let body { req += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        req += "\r\n" + (body ?? "")
        try s.send(req)
        return try s.readResponse()
    }
}

/// Client-side WebSocket frames for tests that must send bad ones.
enum WSFrame {
    /// `rsv` is the three reserved bits (RSV1-3, 0x40/0x20/0x10 of the first byte).
    static func make(opcode: UInt8, payload: [UInt8], masked: Bool = true, fin: Bool = true, rsv: UInt8 = 0)
        -> [UInt8]
    {
        var f: [UInt8] = [(fin ? 0x80 : 0) | (rsv & 0x70) | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            f.append(maskBit | UInt8(payload.count))
        } else {
            f.append(maskBit | 126)
            f += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        if masked {
            let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
            f += mask
            f += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        } else {
            f += payload
        }
        return f
    }

    /// Read one server frame: (opcode, payload).
    static func read(_ s: RawSocket) throws -> (opcode: UInt8, payload: [UInt8]) {
        let h = try s.read(2)
        var len = Int(h[1] & 0x7F)
        if len == 126 {
            let e = try s.read(2)
            len = Int(e[0]) << 8 | Int(e[1])
        } else if len == 127 {
            let e = try s.read(8)
            len = e.reduce(0) { $0 << 8 | Int($1) }
        }
        return (h[0] & 0x0F, try s.read(len))
    }

    /// Open a WebSocket on `/ws` with a correct handshake.
    static func open(port: Int, receiveBuffer: Int32? = nil) throws -> RawSocket {
        let s = try RawSocket(port: port, receiveBuffer: receiveBuffer)
        try s.send(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let r = try s.readResponse()
        guard r.status == 101, r.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" else {
            throw TestFailure("handshake failed: \(r.statusLine) \(r.headers)")
        }
        return s
    }

    /// The close code in a close frame's payload.
    static func closeCode(_ payload: [UInt8]) -> Int {
        payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005
    }
}
