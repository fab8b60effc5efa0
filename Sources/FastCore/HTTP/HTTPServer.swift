import CEventShim

/// The C HTTP/1.1 + WebSocket server on an `EventLoop`, reporting to a Swift delegate.
///
///     let server = try HTTPServer(loop: loop, host: "0.0.0.0", port: 8000, limits: .init(), delegate: app)
public final class HTTPServer {
    public struct BindError: Error, CustomStringConvertible {
        public let host: String
        public let port: Int
        public var description: String { "cannot listen on \(host):\(port) (in use, or not a local address)" }
    }

    /// What one client may cost: request sizes, how long a request may take, how
    /// long an idle keep-alive connection stays, and how many connections there may be.
    ///
    ///     var limits = HTTPServer.Limits()
    ///     limits.maxBodyBytes = 4 << 20
    public struct Limits: Sendable, Equatable {
        /// Request line and headers (431 above).
        public var maxHeaderBytes: Int
        /// A request body, Content-Length or chunked (413 above).
        public var maxBodyBytes: Int
        /// A reassembled WebSocket message (close 1009 above).
        public var maxWebSocketMessageBytes: Int
        /// A started request must arrive whole within this (408; 0: no limit).
        public var headerTimeoutMs: Int
        /// A keep-alive connection with no request is closed after this (0: never).
        public var idleTimeoutMs: Int
        /// Beyond this many open connections new ones get `HTTPRequestError.overloaded` (0: no limit).
        public var maxConnections: Int
        /// A connection with this many response, pong or message bytes queued for it is not
        /// read (its next requests wait in the socket) until it takes half of them (0: no limit).
        public var maxQueuedOutputBytes: Int

        public init(
            maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 1 << 20, maxWebSocketMessageBytes: Int = 1 << 20,
            headerTimeoutMs: Int = 10_000, idleTimeoutMs: Int = 60_000, maxConnections: Int = 10_000,
            maxQueuedOutputBytes: Int = 256 * 1024
        ) {
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxWebSocketMessageBytes = maxWebSocketMessageBytes
            self.headerTimeoutMs = headerTimeoutMs
            self.idleTimeoutMs = idleTimeoutMs
            self.maxConnections = maxConnections
            self.maxQueuedOutputBytes = maxQueuedOutputBytes
        }

        /// The C server's form (negative sizes read as 0, times and counts clamped to 32 bits).
        var c: ce_server_limits {
            ce_server_limits(
                max_header_bytes: max(0, maxHeaderBytes), max_body_bytes: max(0, maxBodyBytes),
                max_ws_message: max(0, maxWebSocketMessageBytes), header_timeout_ms: UInt32(clamping: headerTimeoutMs),
                idle_timeout_ms: UInt32(clamping: idleTimeoutMs), max_connections: UInt32(clamping: maxConnections),
                max_output_bytes: max(0, maxQueuedOutputBytes))
        }
    }

    // Exclusivity: a server is used on its loop's thread only: the run-time check is pure cost.
    @exclusivity(unchecked) private(set) var handle: OpaquePointer?
    private let box: DelegateBox
    public var port: Int { handle.map { Int(ce_server_port($0)) } ?? 0 }

    /// `reusePort` lets several loops listen on one port (SO_REUSEPORT; the kernel spreads connections).
    public convenience init(
        loop: EventLoop, host: String, port: Int, limits: Limits, delegate: HTTPServerDelegate, reusePort: Bool = false
    ) throws(BindError) {
        try self.init(loop: loop, host: host, port: port, limits: limits.c, delegate: delegate, reusePort: reusePort)
    }

    /// With the C limits (inside FastCore only).
    init(
        loop: EventLoop, host: String, port: Int, limits: ce_server_limits, delegate: HTTPServerDelegate,
        reusePort: Bool = false
    ) throws(BindError) {
        box = DelegateBox(delegate)
        var limits = limits
        var callbacks = ce_server_callbacks(
            on_request: onRequest, on_http_error: onHTTPError, on_ws_message: onWSMessage, on_ws_error: onWSError,
            on_ws_close: onWSClose, on_close: onClose)
        handle = ce_server_new(
            loop.handle, host, Int32(clamping: port), &limits, &callbacks, Unmanaged.passUnretained(box).toOpaque(),
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

    /// Hand memory freed after a burst back to the OS (the allocator keeps it otherwise,
    /// and RSS would stay at the burst's peak).
    public static func releaseFreeMemory() { ce_release_free_memory() }

    deinit { ce_server_free(handle) }
}

private final class DelegateBox {
    weak var delegate: HTTPServerDelegate?
    init(_ d: HTTPServerDelegate) { delegate = d }
}

private func delegate(_ ctx: UnsafeMutableRawPointer?) -> HTTPServerDelegate? {
    guard let ctx else { return nil }
    return Unmanaged<DelegateBox>.fromOpaque(ctx).takeUnretainedValue().delegate
}

private func onRequest(_ c: OpaquePointer?, _ req: UnsafePointer<ce_http_request>?, _ ctx: UnsafeMutableRawPointer?) {
    guard let c, let req, let d = delegate(ctx) else { return }
    d.handle(HTTPRequest(req), on: Connection(c))
}

private func onHTTPError(_ c: OpaquePointer?, _ kind: Int32, _ ctx: UnsafeMutableRawPointer?) {
    guard let c, let d = delegate(ctx) else { return }
    d.requestFailed(HTTPRequestError(kind: kind), on: Connection(c))
}

private func onWSMessage(
    _ c: OpaquePointer?, _ opcode: Int32, _ data: UnsafePointer<CChar>?, _ len: Int, _ ctx: UnsafeMutableRawPointer?
) {
    guard let c, let d = delegate(ctx) else { return }
    let kind: WebSocketMessageKind = opcode == Int32(CE_WS_TEXT.rawValue) ? .text : .binary
    d.webSocketMessage(kind, UnsafeRawBufferPointer(start: data, count: len), on: Connection(c))
}

private func onWSError(_ c: OpaquePointer?, _ kind: Int32, _ ctx: UnsafeMutableRawPointer?) {
    guard let c, let d = delegate(ctx) else { return }
    d.webSocketFailed(WebSocketError(kind: kind), on: Connection(c))
}

private func onWSClose(_ c: OpaquePointer?, _ code: Int32, _ ctx: UnsafeMutableRawPointer?) {
    guard let c, let d = delegate(ctx) else { return }
    d.webSocketClosed(code: Int(code), on: Connection(c))
}

private func onClose(_ c: OpaquePointer?, _ ctx: UnsafeMutableRawPointer?) {
    guard let c, let d = delegate(ctx) else { return }
    d.connectionClosed(ce_conn_id(c))
}
