import FastCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy on a free loopback port in front of `127.0.0.1:upstream`, for a silent
/// partition: `pause()` stops forwarding in both directions without closing anything
/// (bytes wait in the kernel's buffers, as on a network that drops packets), `resume()`
/// forwards them. A connection made while paused is accepted and then hangs too.
///
///     let proxy = try TCPProxy(upstream: redis.port)
///     proxy.pause(); …; proxy.resume()
final class TCPProxy: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let gate = NSCondition()
    private var paused = false
    private var closed = false
    /// The accept thread has closed the listener (under `gate`): `stop()` leaves it alone.
    private var listenerClosed = false
    private var sockets: [Int32] = []
    private let upstream: Int

    init(upstream: Int) throws {
        self.upstream = upstream
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw TestFailure("proxy: bind/listen failed")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stop forwarding (nothing is closed).
    func pause() { gate.withLock { paused = true } }

    /// Forward again, what waited first.
    func resume() {
        gate.withLock {
            paused = false
            gate.broadcast()
        }
    }

    /// Close the listener and every connection (again: nothing). The listener is only shut
    /// down here; its accept thread closes it, so no thread ever uses the number once closed.
    func stop() {
        gate.withLock {
            guard !closed else { return }
            closed = true
            paused = false
            gate.broadcast()
            for s in sockets { shutdown(s, Int32(SHUT_RDWR)) }
            if !listenerClosed { shutdown(listener, Int32(SHUT_RDWR)) }  // wakes accept (EINVAL)
        }
    }

    deinit { stop() }

    private static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// Wait while paused; false once stopped.
    private func mayForward() -> Bool {
        gate.withLock {
            while paused && !closed { gate.wait() }
            return !closed
        }
    }

    private func acceptLoop() {
        defer {
            gate.withLock {
                listenerClosed = true
                close(listener)
            }
        }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 && (errno == EINTR || errno == ECONNABORTED) { continue }
            guard client >= 0 else { return }
            guard mayForward() else {
                close(client)
                return
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = Self.loopback(port: upstream)
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            gate.withLock { sockets += [client, server] }
            let ends = LockedBox(2)  // the second pump to end closes both sockets
            Thread { [self] in pump(from: client, to: server, ends: ends) }.start()
            Thread { [self] in pump(from: server, to: client, ends: ends) }.start()
        }
    }

    /// Copy `from` to `to` while not paused; at either end's close, shut both down (the
    /// other pump then ends too, and the last one closes them).
    private func pump(from: Int32, to: Int32, ends: LockedBox<Int>) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        defer {
            shutdown(from, Int32(SHUT_RDWR))
            shutdown(to, Int32(SHUT_RDWR))
            if ends.modify({ n -> Int in
                n -= 1
                return n
            }) == 0 {
                gate.withLock {
                    sockets.removeAll { $0 == from || $0 == to }
                    close(from)
                    close(to)
                }
            }
        }
        while mayForward() {
            // Wait for bytes (bounded, so a pause that starts now is seen before the next read).
            var p = pollfd(fd: from, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 50)
            if ready < 0 && errno != EINTR { return }
            guard ready > 0 else { continue }
            guard mayForward() else { return }
            let n = read(from, &buffer, buffer.count)
            guard n > 0 else { return }
            var sent = 0
            while sent < n {
                let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, n - sent) }
                guard w > 0 else { return }
                sent += w
            }
        }
    }
}
