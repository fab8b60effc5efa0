/// Writing a message: its headers (as a JSON tree, and straight as bytes: twins, pinned
/// equal by `EnvelopeCodecTests.testEncodedEnvelopeHasEveryHeaderAndPropertyCeleryWrites`) and its
/// kombu envelope (`KombuEnvelope.write`).
extension TaskMessage {
    /// The positional arguments as Celery writes the `argsrepr` header, e.g. `(2, 3)`: its
    /// `saferepr`, cut at `argsrepr_maxsize` (`PythonRepr.argsMaxLength`), so a large
    /// argument costs no header (nor task event, nor retry error) more than about 1 KiB.
    public var argsRepr: String { PythonRepr.saferepr(args: args) }

    /// The keyword arguments as Celery writes the `kwargsrepr` header, e.g. `{'y': 3}`: its
    /// `saferepr`, cut at `kwargsrepr_maxsize` (`PythonRepr.kwargsMaxLength`).
    public var kwargsRepr: String { PythonRepr.saferepr(kwargs: kwargs) }

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

    /// The kombu envelope as stored in the queue list; `expiration` as `envelopeBytes`'.
    public func envelope(expiration: String? = nil) -> String {
        String(decoding: envelopeBytes(expiration: expiration), as: UTF8.self)
    }

    /// The kombu envelope's UTF-8 bytes (what LPUSH sends, without a `String` in between).
    /// `expiration`: the property kombu adds when the task expires (milliseconds left, as text).
    public func envelopeBytes(expiration: String? = nil) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(256)
        JSON.array([.array(args), .object(kwargs), embed]).write(to: &body)
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 4 / 3 + 1024)
        KombuEnvelope.write(
            body: body,
            headers: { out in
                if case .object = headers {
                    envelopeHeaders().write(to: &out)  // a received message: keep every header its producer wrote
                } else {
                    writeFreshHeaders(to: &out)  // hot path (every POST /tasks): no JSON tree
                }
            }, replyTo: (id, replyTo), deliveryMode: 2, expiration: expiration, exchange: exchange,
            routingKey: routingKey,
            priority: priority, deliveryTag: deliveryTag, to: &out)
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
}
