// libFuzzer target: a queued envelope as a worker claims it. The first byte picks
// the shape: 0 the input is the whole envelope; otherwise it is the body (the task's
// `[args, kwargs, embed]` JSON), wrapped in a Celery 5.7 envelope, base64 or not.
// A message that decodes must re-encode and decode again to the same fields, and
// its lazily read headers and reply_to must be readable; its follow-ups (embed.chain,
// embed.callbacks, embed.chord) decode as the worker decodes them before the task runs
// and, when they do, make the commands the worker would send after it.
@testable import FastCore

private let headers =
    #"{"lang": "py", "task": "add", "id": "16c18fe1-c3fb-4ffd-a690-9513b30b78e0", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "16c18fe1-c3fb-4ffd-a690-9513b30b78e0", "parent_id": null, "argsrepr": "(2, 3)", "kwargsrepr": "{}", "origin": "gen1@host", "ignore_result": false, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}"#
private let properties =
    #""properties": {"correlation_id": "16c18fe1-c3fb-4ffd-a690-9513b30b78e0", "reply_to": "4b6e2c4e-1b8e-3c8e-9c55-7a0e3a8b6f11", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "#

/// `body` in a Celery 5.7 envelope: base64 (kombu's default), or the JSON text as a string.
private func wrap(_ body: [UInt8], base64: Bool) -> [UInt8] {
    var out = Array(#"{"body": "#.utf8)
    if base64 {
        out.append(UInt8(ascii: "\""))
        Base64.encode(body, to: &out)
        out.append(UInt8(ascii: "\""))
    } else {
        JSON.writeString(String(decoding: body, as: UTF8.self), to: &out)
    }
    out += Array(#", "content-encoding": "utf-8", "content-type": "application/json", "headers": "#.utf8)
    out += Array(headers.utf8) + Array((", " + properties + #""body_encoding": "#).utf8)
    out += Array((base64 ? #""base64", "delivery_tag": "t"}}"# : #""utf-8", "delivery_tag": "t"}}"#).utf8)
    return out
}

private let wellFormed = wrap(
    Array(#"[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#.utf8), base64: true)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let rest = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let envelope = data[0] % 3 == 0 ? rest : wrap(rest, base64: data[0] % 3 == 1)
    // The worker decodes a claim into a finished task's message, over its storage: the
    // message must read whole afterwards, whether that decode succeeded or threw part-way.
    if var recycled = try? TaskMessage.decode(wellFormed, queue: "celery") {
        let decoded = (try? recycled.decode(envelope, queue: "q", deliveryTag: "tag")) != nil
        _ = (recycled.id, recycled.task, recycled.replyTo, recycled.headers, recycled.bodyJSON(), decoded)
        _ = recycled.envelopeBytes()
    }
    _ = KombuEnvelope.read(envelope)
    _ = ControlRequest(envelope: envelope, now: 0)
    guard let message = try? TaskMessage.decode(envelope, queue: "celery") else { return 0 }
    _ = message.headers
    _ = message.replyTo
    _ = message.argsRepr
    _ = message.kwargsRepr
    let again = message.envelopeBytes()
    guard let back = try? TaskMessage.decode(again, queue: "celery") else {
        preconditionFailure("re-encoded message does not decode: \(String(decoding: again, as: UTF8.self))")
    }
    precondition(back.id == message.id && back.task == message.task, "id or task changed on re-encode")
    precondition(back.bodyJSON() == message.bodyJSON(), "body changed on re-encode")
    precondition(back.eta == message.eta && back.expires == message.expires, "eta/expires changed on re-encode")
    precondition(back.retries == message.retries && back.priority == message.priority, "retries/priority changed")
    followUps(of: message)
    // The dispatcher's reading of eta and expires, and `inspect`'s writing of them.
    for time in [message.eta, message.expires] {
        if let epoch = time.flatMap(CeleryTime.parse) { _ = CeleryTime.isoformat(epoch) }
    }
    _ = PythonRepr.truncated(message.argsRepr)
    return 0
}

/// What `TaskContext` does with a message's embed: decode the chain's next step, the link
/// callbacks and a header's chord callback (a `TaskFailure` fails the task), then emit them.
private func followUps(of message: TaskMessage) {
    let embed = message.embed
    func list(_ key: String) throws(TaskFailure) -> [JSON] {
        switch embed[key] {
        case nil, .null?: return []
        case .array(let items)?: return items
        default: throw TaskFailure(type: "ValueError", message: "malformed embed.\(key)")
        }
    }
    do {
        var rest = try list("chain")
        let next = try rest.popLast().map { (step) throws(TaskFailure) in try Canvas(decoding: step, at: "chain") }
        var links: [Canvas] = []
        for link in try list("callbacks") { links.append(try Canvas(decoding: link, at: "callbacks")) }
        if let chord = embed["chord"], !chord.isNull { _ = try Signature(decoding: chord, at: "chord") }
        var out: [[String]] = []
        var producer = TaskProducer()
        let routes = TaskRoutes(rules: [("a*", "qa")])
        _ = next?.emit(
            into: &out, producer: &producer, routes: routes, parent: message, partial: 5, chain: rest, group: nil)
        for link in links {
            _ = link.emit(
                into: &out, producer: &producer, routes: routes, parent: message, partial: nil, chain: [], group: nil)
        }
    } catch {
        _ = error.resultJSON
    }
}
