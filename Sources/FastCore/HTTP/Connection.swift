import CEventShim

/// A client connection handed to an `HTTPServerDelegate`: answer its requests,
/// upgrade it to a WebSocket and talk on that. Holds a reference on the C
/// connection until the object goes.
///
///     connection.respond(status: 200, json: ["task_id": "…"])
///     connection.acceptWebSocket(key: key); connection.sendText("hello")
public final class Connection: WebSocketPeer {
    let handle: OpaquePointer
    public let id: UInt64

    init(_ handle: OpaquePointer) {
        self.handle = handle
        ce_conn_retain(handle)
        id = ce_conn_id(handle)
    }

    deinit { ce_conn_release(handle) }

    public var isOpen: Bool { ce_conn_is_open(handle) != 0 }

    /// Bytes queued for the client and not yet written.
    public var queuedBytes: Int { ce_conn_output_pending(handle) }

    /// Bytes held for the client's input: received and not yet parsed, plus the request and
    /// WebSocket message buffers (a large request's buffer is freed once it is answered).
    public var retainedInputBytes: Int { ce_conn_input_retained(handle) }

    /// True while the connection is not read because the client does not take its output.
    public var isPausedForOutput: Bool { ce_conn_is_paused(handle) != 0 }

    /// Seconds since the client last sent anything.
    public var idleSeconds: Double { Double(ce_conn_idle_ms(handle)) / 1000 }

    // Exclusivity: a connection is used on its loop's thread only: the run-time check is pure cost.
    /// Called with the status of the response this connection object writes (request metrics).
    @exclusivity(unchecked) public var onRespond: ((Int) -> Void)?

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
    public func send(frame: borrowing WebSocketFrame) { _ = ce_ws_send_frame(handle, frame.handle) }

    /// Send one text frame to this connection only.
    public func sendText(_ text: String) {
        var text = text
        text.withUTF8 { b in
            _ = ce_ws_send(
                handle, Int32(CE_WS_TEXT.rawValue),
                UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: CChar.self), b.count)
        }
    }

    /// Send a ping with a short fixed payload.
    public func sendPing() { _ = ce_ws_send(handle, Int32(CE_WS_PING.rawValue), "celeris", 7) }

    /// Start the WebSocket close handshake.
    public func close(code: Int, reason: String) { _ = ce_ws_close(handle, Int32(code), reason) }
}
