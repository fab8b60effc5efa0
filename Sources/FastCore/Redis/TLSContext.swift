import CEventShim

/// One OpenSSL client context (CA store, client certificate, verify mode) per distinct
/// `RedisTLS`, made on first use and kept for the process's life: every link with the same
/// options shares it (loading a CA bundle per connection would cost milliseconds).
///
///     let ctx = try TLSContext.shared(for: endpoint.tls ?? RedisTLS())
///     ce_redis_sync_start_tls(h, ctx.handle, "localhost", 1, &err, err.count)
public final class TLSContext: @unchecked Sendable {
    /// The `ce_tls_config` (never freed: contexts live as long as the process).
    public let handle: OpaquePointer
    public let options: RedisTLS

    private init(handle: OpaquePointer, options: RedisTLS) {
        self.handle = handle
        self.options = options
    }

    private static let cache = LockedBox<[RedisTLS: TLSContext]>([:])

    /// The context for `tls`; a CA file or client certificate that cannot be loaded throws
    /// `.connection("TLS configuration: cannot load the CA certificates /x: no such file")`.
    public static func shared(for tls: RedisTLS) throws(RedisError) -> TLSContext {
        if let known = cache.get()[tls] { return known }
        let verify: Int32 =
            switch tls.certificateRequirement {
            case .none: 0
            case .optional: 1
            case .required: 2
            }
        var err = [CChar](repeating: 0, count: 512)
        let made = ce_tls_config_new(verify, tls.caFile, tls.caPath, tls.certFile, tls.keyFile, &err, err.count)
        guard let made else {
            let text = String(decoding: err.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .connection("TLS configuration: \(text)")
        }
        let fresh = TLSContext(handle: made, options: tls)
        // Two threads may make one at once: the first stored wins, the other is freed.
        let kept = cache.modify { contexts -> TLSContext in
            if let earlier = contexts[tls] { return earlier }
            contexts[tls] = fresh
            return fresh
        }
        if kept !== fresh { ce_tls_config_free(made) }
        return kept
    }
}
