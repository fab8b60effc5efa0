import Foundation

/// Reads a kombu envelope in one pass without building a JSON tree: only the
/// fields a worker acts on are materialised, everything else is skipped (and
/// still checked to be well-formed JSON); the body's base64 is decoded straight
/// from the envelope's bytes. The headers object is kept as its byte range, for
/// the rare paths that re-send or inspect it (`TaskMessage.headers`).
///
///     let fields = try EnvelopeDecoder.read(bytes)   // task, id, eta, …, body bytes
struct EnvelopeDecoder {
    struct Fields {
        /// The task name, id and origin as they stand in the envelope (or unescaped): the
        /// message writes them into its own strings (`String.assign(utf8:)`).
        var task: Text?, id: Text?, origin: Text?
        /// `root_id` is the same text as `id` (a workflow's first task, any plain task).
        var rootIsId = false
        var eta: String?, expires: String?, rootId: String?, parentId: String?, group: String?
        var retries = 0
        var timeLimit: (soft: Double?, hard: Double?) = (nil, nil)
        var groupIndex: Int?
        var ignoreResult: Bool?
        var replyTo = "", deliveryTag = "", exchange = ""
        /// `reply_to` where it stands (no escapes): kept as bytes until asked for.
        var replyToRange: Range<Int>?
        var routingKey: String?
        var priority = 0
        /// `body_encoding` (nil: absent or null; a task's body is then base64, kombu's default).
        var bodyEncoding: String?
        /// nil when absent or JSON (the JSON case is matched in place, not made a String).
        var contentType: String?
        /// The body string's bytes as they stand in the envelope (base64 text, usually).
        var body: Range<Int>?
        var bodyHasEscapes = false
        /// The headers object's bytes (nil: no headers object).
        var headers: Range<Int>?
    }

    /// A string as read: its bytes' place in the envelope (no escapes), or its unescaped text.
    typealias Text = JSONParser.Reader.StringValue

    /// Every field the worker uses; throws on malformed JSON.
    /// `deliveryTag`: the tag the claim already read from this envelope (its property is then skipped).
    static func read(_ buf: UnsafeBufferPointer<UInt8>, deliveryTag: String? = nil) throws(JSONParseError) -> Fields {
        var r = JSONParser.Reader(buf: buf)
        var f = Fields()
        if let deliveryTag { f.deliveryTag = deliveryTag }
        let knowsTag = deliveryTag != nil
        try r.members { (r, key) throws(JSONParseError) in
            switch key {
            case "headers":
                r.skipSpace()
                let start = r.pos
                if r.peek == UInt8(ascii: "{") {
                    try r.members { (r, key) throws(JSONParseError) in try header(key, &r, &f) }
                    f.headers = start..<r.pos
                } else {
                    try r.skipValue(depth: 1)
                }
            case "properties":
                try r.members { (r, key) throws(JSONParseError) in try property(key, &r, &f, knowsTag: knowsTag) }
            case "body":
                r.skipSpace()
                if r.peek == UInt8(ascii: "\"") {
                    let (range, escaped) = try r.stringSpan()
                    f.body = range
                    f.bodyHasEscapes = escaped
                } else {
                    try r.skipValue(depth: 1)
                }
            case "content-type":
                r.skipSpace()
                if !r.skip(#""application/json""#) { f.contentType = try r.optionalString() }
            default: try r.skipValue(depth: 1)
            }
        }
        r.skipSpace()
        if r.pos != buf.count { throw r.fail("trailing bytes") }
        return f
    }

    private static func header(_ key: MemberKey, _ r: inout JSONParser.Reader, _ f: inout Fields) throws(JSONParseError)
    {
        switch key {
        case "task": f.task = try r.optionalStringValue()
        case "id": f.id = try r.optionalStringValue()
        case "eta": f.eta = try r.optionalString()
        case "expires": f.expires = try r.optionalString()
        case "retries": f.retries = Int(try r.value(depth: 2).intValue ?? 0)
        case "timelimit":
            // Usually `[null, null]`: read as it stands, without building an array.
            r.skipSpace()
            if r.skip("[null, null]") { break }
            if let tl = try r.value(depth: 2).arrayValue, tl.count == 2 {
                f.timeLimit = (tl[0].doubleValue, tl[1].doubleValue)
            }
        case "root_id":
            let root = try r.optionalStringValue()
            if let root, let id = f.id, root.same(as: id, in: r.buf) {
                f.rootIsId = true
            } else {
                f.rootId = root?.text(in: r.buf)
            }
        case "parent_id": f.parentId = try r.optionalString()
        case "group": f.group = try r.optionalString()
        case "group_index": f.groupIndex = try r.value(depth: 2).intValue.map { Int($0) }
        case "ignore_result": if case .bool(let b) = try r.value(depth: 2) { f.ignoreResult = b }
        case "origin": f.origin = try r.optionalStringValue()
        default: try r.skipValue(depth: 2)
        }
    }

    private static func property(
        _ key: MemberKey, _ r: inout JSONParser.Reader, _ f: inout Fields, knowsTag: Bool
    ) throws(JSONParseError) {
        switch key {
        case "body_encoding": f.bodyEncoding = try r.optionalString()
        case "reply_to":
            switch try r.optionalStringValue() {
            case .span(let range): f.replyToRange = range
            case .text(let text): f.replyTo = text
            case nil: break
            }
        case "delivery_tag" where !knowsTag: f.deliveryTag = try r.optionalString() ?? ""
        case "priority": f.priority = Int(try r.value(depth: 2).intValue ?? 0)
        case "delivery_info":
            try r.members { (r, key) throws(JSONParseError) in
                switch key {
                case "exchange": f.exchange = try r.optionalString() ?? ""
                case "routing_key": f.routingKey = try r.optionalString()
                default: try r.skipValue(depth: 3)
                }
            }
        default: try r.skipValue(depth: 2)
        }
    }
}

extension EnvelopeDecoder {
    /// The body found at `range` of the envelope `buf`, decoded (from base64 when `base64`)
    /// and handed to `read`. The usual body, base64 without escapes, is decoded into
    /// scratch space (on the stack when small); a body string with JSON escapes is
    /// unescaped by the full reader first (rare).
    static func withBody<R>(
        _ f: Fields, at range: Range<Int>, base64: Bool, in buf: UnsafeBufferPointer<UInt8>,
        _ read: (UnsafeBufferPointer<UInt8>) throws(PoisonMessage) -> R
    ) throws(PoisonMessage) -> R {
        if f.bodyHasEscapes {
            guard
                let text = try? JSONParser.parse(
                    UnsafeBufferPointer(rebasing: buf[(range.lowerBound - 1)...range.upperBound])
                )
                .stringValue
            else { throw PoisonMessage("envelope has no body") }
            let bodyBytes = base64 ? (Base64.decode(text.utf8) ?? []) : Array(text.utf8)
            if base64 && bodyBytes.isEmpty && !text.isEmpty { throw PoisonMessage("body is not base64") }
            return try bodyBytes.withUnsafeBufferPointer { (b) throws(PoisonMessage) in try read(b) }
        } else if base64 {
            return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Base64.decodedCapacity(range.count)) {
                (scratch) throws(PoisonMessage) in
                guard let n = Base64.decode(buf[range], into: scratch) else {
                    throw PoisonMessage("body is not base64")
                }
                return try read(UnsafeBufferPointer(rebasing: scratch[..<n]))
            }
        } else {
            return try read(UnsafeBufferPointer(rebasing: buf[range]))
        }
    }
}
