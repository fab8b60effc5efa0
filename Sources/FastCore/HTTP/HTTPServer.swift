import CEventShim

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
