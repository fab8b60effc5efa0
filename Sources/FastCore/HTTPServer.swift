import CEventShim

/// One parsed HTTP request, copied out of the C parser.
public struct HTTPRequest {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var keepAlive: Bool
    public var upgrade: Bool

    /// The first header named `name` (ASCII case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { Self.sameToken($0.name, name) }?.value
    }

    /// ASCII case-insensitive equality (header names), without Foundation's locale-aware compare.
    static func sameToken(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    public init(_ r: UnsafePointer<ce_http_request>) {
        let req = r.pointee
        method = String(cString: req.method)
        let url = UnsafeRawBufferPointer(start: req.url, count: req.url_len)
        let mark = url.firstIndex(of: UInt8(ascii: "?")) ?? url.count
        path = HTTPRequest.percentDecode(String(decoding: url[..<mark], as: UTF8.self))
        query = [:]
        if mark < url.count {
            for pair in url[(mark + 1)...].split(separator: UInt8(ascii: "&")) {
                let eq = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
                let key = HTTPRequest.percentDecode(String(decoding: pair[..<eq], as: UTF8.self))
                query[key] =
                    eq < pair.endIndex
                    ? HTTPRequest.percentDecode(String(decoding: pair[(eq + 1)...], as: UTF8.self)) : ""
            }
        }
        headers = withUnsafeBytes(of: req.headers) { raw in
            let hs = raw.bindMemory(to: ce_header.self)
            return (0..<req.header_count).map { i in
                (
                    String(decoding: UnsafeRawBufferPointer(start: hs[i].name, count: hs[i].name_len), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(start: hs[i].value, count: hs[i].value_len), as: UTF8.self)
                )
            }
        }
        body = req.body_len > 0 ? Array(UnsafeRawBufferPointer(start: req.body, count: req.body_len)) : []
        keepAlive = req.keep_alive != 0
        upgrade = req.upgrade != 0
    }

    /// `%xx` and `+` decoding for paths and query strings.
    static func percentDecode(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return s }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let c = bytes.popFirst() {
            if c == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A client connection; holds a C reference until released with the object.
public final class Connection {
    public let handle: OpaquePointer
    public let id: UInt64

    public init(_ handle: OpaquePointer) {
        self.handle = handle
        ce_conn_retain(handle)
        id = ce_conn_id(handle)
    }

    deinit { ce_conn_release(handle) }

    public var isOpen: Bool { ce_conn_is_open(handle) != 0 }

    /// Called with the status of the response this connection object writes (request metrics).
    public var onRespond: ((Int) -> Void)?

    /// Write a response; `close` ends the connection after it.
    public func respond(
        status: Int, body: String, contentType: String = "application/json", headers: [String: String] = [:],
        close: Bool = false
    ) {
        onRespond?(status)
        onRespond = nil
        let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        var body = body
        body.withUTF8 { b in
            _ = ce_http_respond(
                handle, Int32(status), HTTPStatus.reason(status), contentType,
                UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: CChar.self), b.count,
                extra.isEmpty ? nil : extra, close ? 1 : 0)
        }
    }

    /// Write `value` as a JSON response.
    public func respond(status: Int, json value: JSON, headers: [String: String] = [:], close: Bool = false) {
        respond(status: status, body: value.serialized(), headers: headers, close: close)
    }

    /// Accept a WebSocket upgrade with the client's key.
    public func acceptWebSocket(key: String) { _ = ce_ws_accept(handle, key, key.utf8.count) }

    /// Queue a frame shared with other connections.
    public func send(frame: OpaquePointer) { _ = ce_ws_send_frame(handle, frame) }

    /// Send one text frame to this connection only.
    public func sendText(_ text: String) {
        var text = text
        text.withUTF8 { b in
            _ = ce_ws_send(
                handle, Int32(CE_WS_TEXT.rawValue),
                UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: CChar.self), b.count)
        }
    }

    /// Start the close handshake.
    public func closeWebSocket(code: Int, reason: String) { _ = ce_ws_close(handle, Int32(code), reason) }
}

/// Reason phrases for the statuses Celeris answers with.
public enum HTTPStatus {
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 101: return "Switching Protocols"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 426: return "Upgrade Required"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

/// What the server reports; every method runs on the loop thread.
public protocol HTTPServerDelegate: AnyObject {
    func handle(_ request: HTTPRequest, on connection: Connection)
    func requestFailed(_ kind: Int32, on connection: Connection)
    func webSocketMessage(_ opcode: Int32, _ bytes: UnsafeRawBufferPointer, on connection: Connection)
    func webSocketFailed(_ kind: Int32, on connection: Connection)
    func webSocketClosed(code: Int, on connection: Connection)
    func connectionClosed(_ id: UInt64)
}

/// The C HTTP/WebSocket server bound to a Swift delegate.
///
///     let server = try HTTPServer(loop: loop, host: "0.0.0.0", port: 8000, limits: limits, delegate: app)
public final class HTTPServer {
    public struct BindError: Error, CustomStringConvertible {
        public let host: String
        public let port: Int
        public var description: String { "cannot listen on \(host):\(port) (in use, or not a local address)" }
    }

    public private(set) var handle: OpaquePointer?
    private let box: DelegateBox
    public var port: Int { handle.map { Int(ce_server_port($0)) } ?? 0 }

    /// `reusePort` lets several loops listen on one port (SO_REUSEPORT; the kernel spreads connections).
    public init(
        loop: EventLoop, host: String, port: Int, limits: ce_server_limits, delegate: HTTPServerDelegate,
        reusePort: Bool = false
    ) throws {
        box = DelegateBox(delegate)
        var limits = limits
        var callbacks = ce_server_callbacks(
            on_request: onRequest, on_http_error: onHTTPError, on_ws_message: onWSMessage, on_ws_error: onWSError,
            on_ws_close: onWSClose, on_close: onClose)
        handle = ce_server_new(
            loop.handle, host, Int32(port), &limits, &callbacks, Unmanaged.passUnretained(box).toOpaque(),
            reusePort ? 1 : 0)
        if handle == nil { throw BindError(host: host, port: port) }
    }

    /// Stop accepting connections; open ones keep being served.
    public func stopListening() {
        ce_server_stop_listening(handle)
    }

    /// Open connections (with `countConnections(with:)`, of every server sharing the count).
    public var openConnections: Int { handle.map { Int(ce_server_connections($0)) } ?? 0 }

    /// Count this server's connections with `first`'s so one connection limit bounds both;
    /// `first` must outlive this server.
    public func countConnections(with first: HTTPServer) {
        if let handle, let other = first.handle { ce_server_count_with(handle, other) }
    }

    deinit { ce_server_free(handle) }
}

final class DelegateBox {
    weak var delegate: HTTPServerDelegate?
    init(_ d: HTTPServerDelegate) { delegate = d }
}

private func delegate(_ ctx: UnsafeMutableRawPointer?) -> HTTPServerDelegate? {
    Unmanaged<DelegateBox>.fromOpaque(ctx!).takeUnretainedValue().delegate
}

private func onRequest(_ c: OpaquePointer?, _ req: UnsafePointer<ce_http_request>?, _ ctx: UnsafeMutableRawPointer?) {
    delegate(ctx)?.handle(HTTPRequest(req!), on: Connection(c!))
}

private func onHTTPError(_ c: OpaquePointer?, _ kind: Int32, _ ctx: UnsafeMutableRawPointer?) {
    delegate(ctx)?.requestFailed(kind, on: Connection(c!))
}

private func onWSMessage(
    _ c: OpaquePointer?, _ opcode: Int32, _ data: UnsafePointer<CChar>?, _ len: Int, _ ctx: UnsafeMutableRawPointer?
) {
    delegate(ctx)?.webSocketMessage(opcode, UnsafeRawBufferPointer(start: data, count: len), on: Connection(c!))
}

private func onWSError(_ c: OpaquePointer?, _ kind: Int32, _ ctx: UnsafeMutableRawPointer?) {
    delegate(ctx)?.webSocketFailed(kind, on: Connection(c!))
}

private func onWSClose(_ c: OpaquePointer?, _ code: Int32, _ ctx: UnsafeMutableRawPointer?) {
    delegate(ctx)?.webSocketClosed(code: Int(code), on: Connection(c!))
}

private func onClose(_ c: OpaquePointer?, _ ctx: UnsafeMutableRawPointer?) {
    delegate(ctx)?.connectionClosed(ce_conn_id(c!))
}
