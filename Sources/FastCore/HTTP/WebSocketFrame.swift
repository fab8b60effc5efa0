import CEventShim

/// A server text frame encoded once and queued on any number of connections
/// without copying its bytes (the C frame is reference-counted; this value
/// holds one reference until it goes out of scope).
///
///     guard let frame = WebSocketFrame(text: #"{"state": "SUCCESS"}"#) else { return }
///     for peer in peers { peer.send(frame: frame) }
public struct WebSocketFrame: ~Copyable {
    let handle: OpaquePointer
    /// The frame's payload, as given.
    public let text: String

    /// Encode a text frame; nil if memory for it could not be had.
    public init?(text: String) {
        var bytes = text
        guard
            let made = bytes.withUTF8({ b in
                ce_frame_new(
                    Int32(CE_WS_TEXT.rawValue), UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: CChar.self),
                    b.count)
            })
        else { return nil }
        handle = made
        self.text = text
    }

    deinit { ce_frame_release(handle) }
}
