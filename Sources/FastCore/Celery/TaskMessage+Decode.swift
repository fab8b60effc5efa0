/// Reading a message from the kombu envelope a producer queued: one pass over the
/// envelope (`EnvelopeDecoder`), the body read in place.
extension TaskMessage {
    /// The default bound on an envelope a worker decodes (`--max-message-bytes`): 64 MiB.
    /// Celery sets none (Redis' own bound on a string is 512 MB); a message beyond it is
    /// dead-lettered with the reason, not decoded.
    public static let defaultMaxBytes = 64 << 20

    /// Decode an envelope as a worker receives it; `queue` is the list it came from.
    /// `deliveryTag`: the tag a claim already took from this envelope, kept instead of read again.
    /// `maxBytes`: a larger envelope is refused unread.
    public static func decode(
        _ bytes: [UInt8], queue: String = "celery", deliveryTag: String? = nil, maxBytes: Int = defaultMaxBytes
    ) throws(PoisonMessage) -> TaskMessage {
        var m = TaskMessage(storage: Storage(Fields()))
        try m.decode(bytes, queue: queue, deliveryTag: deliveryTag, maxBytes: maxBytes)
        return m
    }

    /// Decode an envelope into this message, replacing every field. The worker decodes
    /// into finished tasks' messages: when nothing else holds this one's storage, its id,
    /// task name and argument array are written over in place rather than made anew (a
    /// copy held elsewhere is never changed). A message that throws is left part-written.
    ///
    ///     try recycled.decode(raw, queue: "celery", deliveryTag: tag)
    mutating func decode(
        _ bytes: [UInt8], queue: String, deliveryTag: String?, maxBytes: Int = defaultMaxBytes
    ) throws(PoisonMessage) {
        guard bytes.count <= maxBytes else {
            throw PoisonMessage(
                "message of \(bytes.count) bytes is larger than the worker's limit of \(maxBytes) bytes (--max-message-bytes); not decoded"
            )
        }
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
            try EnvelopeDecoder.withBody(f, at: bodyRange, base64: (f.bodyEncoding ?? "base64") == "base64", in: buf) {
                (b) throws(PoisonMessage) in try Self.body(b, into: &s.fields)
            }
            s.fields.rootId = nil  // first: an id shared with root_id is not its own storage
            id.assign(to: &s.fields.id, in: buf)
            task.assign(to: &s.fields.task, in: buf)
            s.fields.read(f, queue: queue, headers: headerRange, in: buf)
        }
        s.fields.received = bytes
    }

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
