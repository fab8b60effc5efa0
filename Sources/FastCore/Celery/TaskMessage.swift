import Foundation

/// A task message in Celery's protocol v2, carried in a kombu envelope.
///
/// Build one to send, or decode one a producer (Python Celery or Celeris) queued:
///
///     var m = TaskMessage(task: "add", args: [2, 3])
///     let text = m.envelope()               // what LPUSH stores
///     let back = try TaskMessage.decode(Array(text.utf8))
public struct TaskMessage: Sendable {
    /// The message's fields, shared between copies until one of them changes (a copy is
    /// one reference count, not one per string: messages are copied on their way from
    /// the claim to the executor and into the task's context).
    fileprivate struct Fields {
        var id: String = ""
        var task: String = ""
        var args: [JSON] = []
        var kwargs: [(key: String, value: JSON)] = []
        var embed: JSON = TaskMessage.noEmbed
        var queue: String = "celery"
        var exchange: String = ""
        var routingKey: String = "celery"
        var priority: Int = 0
        var eta: String? = nil
        var expires: String? = nil
        var retries: Int = 0
        var timeLimit: (soft: Double?, hard: Double?) = (nil, nil)
        var rootId: String? = nil
        var parentId: String? = nil
        var group: String? = nil
        var groupIndex: Int? = nil
        var ignoreResult: Bool = false
        var replyToValue: String? = nil
        var replyToRange: Range<Int>? = nil
        var deliveryTag: String = ""
        var origin: String = ""
        var headersValue: JSON? = nil
        var headersRange: Range<Int>? = nil
        var received: [UInt8] = []
    }

    private final class Storage: @unchecked Sendable {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var storage: Storage

    /// The storage, copied first if another message shares it.
    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
        return storage
    }

    public var id: String {
        get { storage.fields.id }
        _modify { yield &unique().fields.id }
    }
    public var task: String {
        get { storage.fields.task }
        _modify { yield &unique().fields.task }
    }
    public var args: [JSON] {
        get { storage.fields.args }
        _modify { yield &unique().fields.args }
    }
    public var kwargs: [(key: String, value: JSON)] {
        get { storage.fields.kwargs }
        _modify { yield &unique().fields.kwargs }
    }
    /// `{"callbacks", "errbacks", "chain", "chord"}` from the body.
    public var embed: JSON {
        get { storage.fields.embed }
        _modify { yield &unique().fields.embed }
    }
    public var queue: String {
        get { storage.fields.queue }
        _modify { yield &unique().fields.queue }
    }
    public var exchange: String {
        get { storage.fields.exchange }
        _modify { yield &unique().fields.exchange }
    }
    public var routingKey: String {
        get { storage.fields.routingKey }
        _modify { yield &unique().fields.routingKey }
    }
    public var priority: Int {
        get { storage.fields.priority }
        _modify { yield &unique().fields.priority }
    }
    public var eta: String? {
        get { storage.fields.eta }
        _modify { yield &unique().fields.eta }
    }
    public var expires: String? {
        get { storage.fields.expires }
        _modify { yield &unique().fields.expires }
    }
    public var retries: Int {
        get { storage.fields.retries }
        _modify { yield &unique().fields.retries }
    }
    public var timeLimit: (soft: Double?, hard: Double?) {
        get { storage.fields.timeLimit }
        _modify { yield &unique().fields.timeLimit }
    }
    public var rootId: String? {
        get { storage.fields.rootId }
        _modify { yield &unique().fields.rootId }
    }
    public var parentId: String? {
        get { storage.fields.parentId }
        _modify { yield &unique().fields.parentId }
    }
    public var group: String? {
        get { storage.fields.group }
        _modify { yield &unique().fields.group }
    }
    public var groupIndex: Int? {
        get { storage.fields.groupIndex }
        _modify { yield &unique().fields.groupIndex }
    }
    public var ignoreResult: Bool {
        get { storage.fields.ignoreResult }
        _modify { yield &unique().fields.ignoreResult }
    }
    private var replyToValue: String? {
        get { storage.fields.replyToValue }
        _modify { yield &unique().fields.replyToValue }
    }
    private var replyToRange: Range<Int>? {
        get { storage.fields.replyToRange }
        _modify { yield &unique().fields.replyToRange }
    }
    /// The `reply_to` property. A received message reads it from the envelope's bytes
    /// when asked (it is only re-sent, never acted on).
    public var replyTo: String {
        get {
            if let replyToValue { return replyToValue }
            guard let range = replyToRange else { return "" }
            return String(decoding: received[range], as: UTF8.self)
        }
        set {
            replyToValue = newValue
            replyToRange = nil
        }
    }
    public var deliveryTag: String {
        get { storage.fields.deliveryTag }
        _modify { yield &unique().fields.deliveryTag }
    }
    public var origin: String {
        get { storage.fields.origin }
        _modify { yield &unique().fields.origin }
    }
    /// Every header as received, so nothing a producer wrote is lost on re-send
    /// (`.null` for a message made here). A received message keeps the envelope's
    /// bytes and parses its headers only when asked (a retry, `inspect`).
    public var headers: JSON {
        get {
            if let headersValue { return headersValue }
            guard let range = headersRange else { return .null }
            return (try? JSONParser.parse(Array(received[range]))) ?? .null
        }
        set {
            headersValue = newValue
            headersRange = nil
        }
    }
    private var headersValue: JSON? {
        get { storage.fields.headersValue }
        _modify { yield &unique().fields.headersValue }
    }
    private var headersRange: Range<Int>? {
        get { storage.fields.headersRange }
        _modify { yield &unique().fields.headersRange }
    }
    /// A received message's envelope as it was queued (empty for one made here): where
    /// `headersRange` and `replyToRange` point. The worker recycles its storage for the
    /// next claim's envelopes once the task is done.
    var received: [UInt8] {
        get { storage.fields.received }
        _modify { yield &unique().fields.received }
    }

    /// Take the envelope buffer and the delivery tag out of a finished message, for the
    /// next claims to copy into (`SpareBuffers`); nil when another copy of the message
    /// shares its storage (the message is then left as it is).
    mutating func takeBuffers() -> (envelope: [UInt8], tag: String)? {
        guard isKnownUniquelyReferenced(&storage) else { return nil }
        defer {
            storage.fields.received = []
            storage.fields.deliveryTag = ""
        }
        return (storage.fields.received, storage.fields.deliveryTag)
    }

    /// A new message with fresh ids, for the default exchange.
    public init(
        task: String, args: [JSON] = [], kwargs: [(key: String, value: JSON)] = [], queue: String = "celery",
        priority: Int = 0, id: String = TaskMessage.newId(), origin: String = TaskMessage.defaultOrigin
    ) {
        var f = Fields()
        f.id = id
        f.task = task
        f.args = args
        f.kwargs = kwargs
        f.embed = ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil]
        f.queue = queue
        f.exchange = ""
        f.routingKey = queue
        f.priority = priority
        f.eta = nil
        f.expires = nil
        f.retries = 0
        f.timeLimit = (nil, nil)
        f.rootId = id
        f.parentId = nil
        f.group = nil
        f.groupIndex = nil
        f.ignoreResult = false
        f.replyToValue = TaskMessage.newId()
        f.deliveryTag = TaskMessage.newId()
        f.origin = origin
        storage = Storage(f)
    }

    /// A lower-case uuid4, as Celery makes task ids and delivery tags.
    public static func newId() -> String { FastUUID.v4() }

    /// `pid@host`, as Celery fills `origin`.
    public static let defaultOrigin: String = {
        "\(ProcessInfo.processInfo.processIdentifier)@\(ProcessInfo.processInfo.hostName)"
    }()

    /// Python's repr of the positional arguments, e.g. `(2, 3)`.
    public var argsRepr: String {
        let inner = args.map(PythonRepr.repr).joined(separator: ", ")
        return args.count == 1 ? "(\(inner),)" : "(\(inner))"
    }

    /// Python's repr of the keyword arguments, e.g. `{'y': 3}`.
    public var kwargsRepr: String {
        "{" + kwargs.map { "'\($0.key)': \(PythonRepr.repr($0.value))" }.joined(separator: ", ") + "}"
    }

    /// The protocol-v2 headers, in Celery 5.7's order.
    public func protocolHeaders() -> JSON {
        let optString: (String?) -> JSON = { $0.map(JSON.string) ?? .null }
        return [
            "lang": "py", "task": .string(task), "id": .string(id), "shadow": nil,
            "eta": optString(eta), "expires": optString(expires), "group": optString(group),
            "group_index": groupIndex.map { .int(Int64($0)) } ?? .null, "retries": .int(Int64(retries)),
            "timelimit": [timeLimit.soft.map(JSON.double) ?? .null, timeLimit.hard.map(JSON.double) ?? .null],
            "root_id": optString(rootId), "parent_id": optString(parentId), "argsrepr": .string(argsRepr),
            "kwargsrepr": .string(kwargsRepr), "origin": .string(origin), "ignore_result": .bool(ignoreResult),
            "replaced_task_nesting": 0, "stamped_headers": nil, "stamps": [:],
        ]
    }

    /// Received headers (every key a producer wrote) updated with this
    /// message's fields; fresh protocol headers for a new message.
    func envelopeHeaders() -> JSON {
        let fresh = protocolHeaders()
        guard case .object = headers else { return fresh }
        var merged = headers
        for key in [
            "task", "id", "eta", "expires", "retries", "timelimit", "group", "group_index", "root_id", "parent_id",
        ] {
            if let v = fresh[key] { merged = merged.setting(key, v) }
        }
        return merged
    }

    /// The body `[args, kwargs, embed]` as JSON text.
    public func bodyJSON() -> String {
        JSON.array([.array(args), .object(kwargs), embed]).serialized()
    }

    /// The kombu envelope as stored in the queue list.
    public func envelope() -> String { String(decoding: envelopeBytes(), as: UTF8.self) }

    /// The kombu envelope's UTF-8 bytes (what LPUSH sends, without a `String` in between).
    public func envelopeBytes() -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(256)
        JSON.array([.array(args), .object(kwargs), embed]).write(to: &body)
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 4 / 3 + 1024)
        out.append(ascii: #"{"body": ""#)
        Base64.encode(body, to: &out)
        out.append(ascii: #"", "content-encoding": "utf-8", "content-type": "application/json", "headers": "#)
        if case .object = headers {
            envelopeHeaders().write(to: &out)  // a received message: keep every header its producer wrote
        } else {
            writeFreshHeaders(to: &out)  // hot path (every POST /tasks): no JSON tree
        }
        out.append(ascii: #", "properties": {"correlation_id": "#)
        JSON.writeString(id, to: &out)
        out.append(ascii: #", "reply_to": "#)
        JSON.writeString(replyTo, to: &out)
        out.append(ascii: #", "delivery_mode": 2, "delivery_info": {"exchange": "#)
        JSON.writeString(exchange, to: &out)
        out.append(ascii: #", "routing_key": "#)
        JSON.writeString(routingKey, to: &out)
        out.append(ascii: #"}, "priority": "#)
        out.append(contentsOf: String(priority).utf8)
        out.append(ascii: #", "body_encoding": "base64", "delivery_tag": "#)
        JSON.writeString(deliveryTag, to: &out)
        out.append(ascii: "}}")
        return out
    }

    /// `protocolHeaders()` written straight as bytes, in the same order.
    private func writeFreshHeaders(to out: inout [UInt8]) {
        func string(_ key: String, _ value: String?, first: Bool = false) {
            out.append(contentsOf: ((first ? "{\"" : ", \"") + key + "\": ").utf8)
            if let value { JSON.writeString(value, to: &out) } else { out.append(ascii: "null") }
        }
        func number(_ v: Double?) {
            if let v { JSON.double(v).write(to: &out) } else { out.append(ascii: "null") }
        }
        string("lang", "py", first: true)
        string("task", task)
        string("id", id)
        out.append(ascii: #", "shadow": null"#)
        string("eta", eta)
        string("expires", expires)
        string("group", group)
        out.append(contentsOf: (#", "group_index": "# + (groupIndex.map(String.init) ?? "null")).utf8)
        out.append(contentsOf: (#", "retries": "# + String(retries)).utf8)
        out.append(ascii: #", "timelimit": ["#)
        number(timeLimit.soft)
        out.append(ascii: ", ")
        number(timeLimit.hard)
        out.append(UInt8(ascii: "]"))
        string("root_id", rootId)
        string("parent_id", parentId)
        string("argsrepr", argsRepr)
        string("kwargsrepr", kwargsRepr)
        string("origin", origin)
        out.append(contentsOf: (#", "ignore_result": "# + (ignoreResult ? "true" : "false")).utf8)
        out.append(ascii: #", "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}"#)
    }

    /// Decode an envelope as a worker receives it; `queue` is the list it came from.
    /// `deliveryTag`: the tag a claim already took from this envelope, kept instead of read again.
    public static func decode(
        _ bytes: [UInt8], queue: String = "celery", deliveryTag: String? = nil
    ) throws(PoisonMessage) -> TaskMessage {
        var m = TaskMessage(storage: Storage(Fields()))
        try m.decode(bytes, queue: queue, deliveryTag: deliveryTag)
        return m
    }

    private init(storage: Storage) { self.storage = storage }

    /// Decode an envelope into this message, replacing every field. The worker decodes
    /// into finished tasks' messages: when nothing else holds this one's storage, its id,
    /// task name and argument array are written over in place rather than made anew (a
    /// copy held elsewhere is never changed). A message that throws is left part-written.
    ///
    ///     try recycled.decode(raw, queue: "celery", deliveryTag: tag)
    mutating func decode(_ bytes: [UInt8], queue: String, deliveryTag: String?) throws(PoisonMessage) {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(Fields()) }
        let s = storage
        try bytes.withUnsafeBufferPointer { (buf) throws(PoisonMessage) in
            let f: EnvelopeDecoder.Fields
            do {
                f = try EnvelopeDecoder.read(buf, deliveryTag: deliveryTag)
            } catch {
                throw PoisonMessage("envelope is not JSON (or not an object): \(error)")
            }
            if let ct = f.contentType, ct != "application/json" {
                throw PoisonMessage("unsupported content-type \(ct)")
            }
            guard let headerRange = f.headers else { throw PoisonMessage("envelope has no headers object") }
            guard let task = f.task, !task.isEmpty else {
                throw PoisonMessage("headers carry no task name (protocol v1 or not a Celery message)")
            }
            guard let id = f.id, !id.isEmpty else { throw PoisonMessage("headers carry no task id") }
            guard let bodyRange = f.body else { throw PoisonMessage("envelope has no body") }
            try Self.body(f, at: bodyRange, in: buf, into: &s.fields)
            s.fields.rootId = nil  // first: an id shared with root_id is not its own storage
            id.assign(to: &s.fields.id, in: buf)
            task.assign(to: &s.fields.task, in: buf)
            s.fields.read(f, queue: queue, headers: headerRange, in: buf)
        }
        s.fields.received = bytes
    }

    /// The body `[args, kwargs, embed]` found at `range` of the envelope `buf`, read into `fields`.
    private static func body(
        _ f: EnvelopeDecoder.Fields, at range: Range<Int>, in buf: UnsafeBufferPointer<UInt8>, into fields: inout Fields
    ) throws(PoisonMessage) {
        if f.bodyHasEscapes {
            // Rare: a body string with JSON escapes; let the full reader unescape it.
            guard
                let text = try? JSONParser.parse(
                    UnsafeBufferPointer(rebasing: buf[(range.lowerBound - 1)...range.upperBound])
                )
                .stringValue
            else { throw PoisonMessage("envelope has no body") }
            let bodyBytes = f.bodyEncoding == "base64" ? (Base64.decode(text.utf8) ?? []) : Array(text.utf8)
            if f.bodyEncoding == "base64" && bodyBytes.isEmpty && !text.isEmpty {
                throw PoisonMessage("body is not base64")
            }
            try bodyBytes.withUnsafeBufferPointer { (b) throws(PoisonMessage) in try Self.body(b, into: &fields) }
        } else if f.bodyEncoding == "base64" {
            // The usual case: the body is decoded into scratch space (on the stack when small)
            // and read from there.
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Base64.decodedCapacity(range.count)) {
                (scratch) throws(PoisonMessage) in
                guard let n = Base64.decode(buf[range], into: scratch) else {
                    throw PoisonMessage("body is not base64")
                }
                try Self.body(UnsafeBufferPointer(rebasing: scratch[..<n]), into: &fields)
            }
        } else {
            try Self.body(UnsafeBufferPointer(rebasing: buf[range]), into: &fields)
        }
    }

    /// The embed Celery sends when there is no canvas, shared by every such message.
    public static let noEmbed: JSON = ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil]

    /// A body `[args, kwargs, embed]`, read without building the outer array (the args
    /// go into `f.args`' own storage); the usual all-null embed, as json.dumps writes
    /// it, becomes `noEmbed` without being built.
    private static func body(_ buf: UnsafeBufferPointer<UInt8>, into f: inout Fields) throws(PoisonMessage) {
        var r = JSONParser.Reader(buf: buf)
        var shaped = true
        let kwargs: JSON
        let embed: JSON
        f.args.removeAll(keepingCapacity: true)
        do {
            try r.expect(UInt8(ascii: "["))
            r.skipSpace()
            if r.peek == UInt8(ascii: "[") {
                try r.elements(depth: 1, into: &f.args)
            } else {
                _ = try r.value(depth: 1)
                shaped = false
            }
            try r.expect(UInt8(ascii: ","))
            kwargs = try r.value(depth: 1)
            try r.expect(UInt8(ascii: ","))
            r.skipSpace()
            embed =
                r.skip(#"{"callbacks": null, "errbacks": null, "chain": null, "chord": null}"#)
                ? Self.noEmbed : try r.value(depth: 1)
            try r.expect(UInt8(ascii: "]"))
            r.skipSpace()
            if r.pos != buf.count { throw r.fail("trailing bytes") }
        } catch {
            // Not three parts, or not JSON at all: say which.
            if (try? JSONParser.parse(buf)) == nil { throw PoisonMessage("body is not JSON: \(error)") }
            throw PoisonMessage("body is not [args, kwargs, embed]")
        }
        guard shaped, case .object(let pairs) = kwargs else { throw PoisonMessage("body is not [args, kwargs, embed]") }
        f.kwargs = pairs
        f.embed = embed.isNull ? Self.noEmbed : embed
    }
}

extension TaskMessage.Fields {
    /// Every other field of a received message from its decoded envelope `buf` (no fresh ids made).
    mutating func read(
        _ d: EnvelopeDecoder.Fields, queue: String, headers: Range<Int>, in buf: UnsafeBufferPointer<UInt8>
    ) {
        if self.queue != queue { self.queue = queue }
        exchange = d.exchange
        routingKey = d.routingKey ?? queue
        priority = d.priority
        eta = d.eta
        expires = d.expires
        retries = d.retries
        timeLimit = d.timeLimit
        rootId = d.rootIsId ? id : d.rootId
        parentId = d.parentId
        group = d.group
        groupIndex = d.groupIndex
        ignoreResult = d.ignoreResult ?? false
        replyToValue = d.replyToRange == nil ? d.replyTo : nil
        replyToRange = d.replyToRange
        deliveryTag = d.deliveryTag
        if let origin = d.origin { origin.assign(to: &self.origin, in: buf) } else { origin = "" }
        headersValue = nil
        headersRange = headers
    }
}
