import FastCore
import Foundation

/// An `HTTPServer` on its own `EventLoop` thread in the test process, answering through
/// closures, so a test can look at a connection's C state (queued output, retained input)
/// on the loop thread with `onLoop`.
///
///     let server = try ServerThread(limits: limits) { request, connection in connection.respond(status: 200, body: "{}") }
///     let queued = server.onLoop { server.connection(1)?.queuedBytes ?? 0 }
final class ServerThread: HTTPServerDelegate, @unchecked Sendable {
    typealias Handler = (HTTPRequest, Connection) -> Void

    private let loop: EventLoop
    private var server: HTTPServer?
    private let handler: Handler
    private let jobs = LockedBox<[@Sendable () -> Void]>([])
    private let stopRequested = LockedBox(false)
    private let finished = DispatchSemaphore(value: 0)
    /// Every connection that reached the delegate, by id (loop thread only).
    private(set) var connections: [UInt64: Connection] = [:]
    /// Accept `GET /ws` upgrades (loop thread only).
    var acceptsWebSockets = true
    private(set) var port = 0

    init(limits: HTTPServer.Limits, handler: @escaping Handler) throws {
        loop = try EventLoop()
        self.handler = handler
        server = try HTTPServer(loop: loop, host: "127.0.0.1", port: 0, limits: limits, delegate: self)
        port = server?.port ?? 0
        let thread = Thread { [self] in
            let poll = loop.timer(after: 2, repeating: true) { [self] in
                for job in jobs.exchange([]) { job() }
                if stopRequested.get() { loop.stop() }
            }
            loop.run()
            poll.cancel()
            finished.signal()
        }
        thread.name = "test-server-loop"
        thread.start()
    }

    /// Run `body` on the loop thread and return its value.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = LockedBox<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        jobs.modify {
            $0.append {
                result.set(body())
                done.signal()
            }
        }
        done.wait()
        return result.get()!
    }

    /// The connection the delegate saw with this id (loop thread only).
    func connection(_ id: UInt64) -> Connection? { connections[id] }

    /// Stop the loop and wait for its thread; the server goes with the object.
    func stop() {
        stopRequested.set(true)
        finished.wait()
        connections.removeAll()
        server = nil
    }

    func handle(_ request: HTTPRequest, on connection: Connection) {
        connections[connection.id] = connection
        if acceptsWebSockets, request.path == "/ws", let key = request.header("Sec-WebSocket-Key") {
            return connection.acceptWebSocket(key: key)
        }
        handler(request, connection)
    }

    func requestFailed(_ error: HTTPRequestError, on connection: Connection) {
        connections[connection.id] = connection
        connection.respond(
            status: error == .timeout ? 408 : 400, body: #"{"error": "\#(error)"}"#, close: true)
    }

    func connectionClosed(_ id: UInt64) { connections[id] = nil }
}
