@testable import FastCore
import Foundation
import XCTest

/// kombu envelopes, written and read, against Celery 5.7's captured traffic (../shared/celery-wire)
/// and against the JSON tree; base64 against Foundation's.
final class EnvelopeCodecTests: XCTestCase {
    func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: TestPaths.fixtures.appendingPathComponent(name)))
    }

    func testDecodesCapturedCeleryEnvelope() throws {
        let m = try TaskMessage.decode(try fixture("celery57_noop_envelope.json"))
        XCTAssertEqual(m.task, "noop")
        XCTAssertEqual(m.id, "16c18fe1-c3fb-4ffd-a690-9513b30b78e0")
        XCTAssertEqual(m.args, [1])
        XCTAssertTrue(m.kwargs.isEmpty)
        XCTAssertEqual(m.priority, 1)
        XCTAssertEqual(m.deliveryTag, "71a5a25d-a60f-41c4-9d38-347b2789a25f")
        XCTAssertEqual(m.routingKey, "celery")

        let chordHeader = try TaskMessage.decode(try fixture("celery57_chord_header_envelope.json"))
        XCTAssertEqual(chordHeader.group, "9269088f-09e8-4db8-9f93-5b6fc60d132b")
        XCTAssertNotNil(chordHeader.groupIndex)
        XCTAssertEqual(chordHeader.embed["chord"]?["task"], "tsum")
    }

    func testEncodedEnvelopeHasEveryHeaderAndPropertyCeleryWrites() throws {
        var m = TaskMessage(task: "add", args: [2], kwargs: [("y", 3)], queue: "fetch_queue", priority: 5)
        m.origin = "1@test"
        let env = try JSONParser.parse(m.envelope())
        let captured = try JSONParser.parse(try fixture("celery57_noop_envelope.json"))
        XCTAssertEqual(env.objectPairs?.map(\.key), captured.objectPairs?.map(\.key))
        XCTAssertEqual(env["headers"]?.objectPairs?.map(\.key), captured["headers"]?.objectPairs?.map(\.key))
        XCTAssertEqual(env["properties"]?.objectPairs?.map(\.key), captured["properties"]?.objectPairs?.map(\.key))
        XCTAssertEqual(env["headers"]?["argsrepr"], "(2,)")
        XCTAssertEqual(env["headers"]?["kwargsrepr"], "{'y': 3}")
        XCTAssertEqual(env["properties"]?["delivery_info"]?["routing_key"], "fetch_queue")
        let body = Data(base64Encoded: env["body"]!.stringValue!)!
        XCTAssertEqual(
            String(decoding: body, as: UTF8.self),
            #"[[2], {"y": 3}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#)
        // The byte-written fast path equals the JSON-tree form of the same headers.
        XCTAssertEqual(env["headers"], m.protocolHeaders())
        var withEta = m
        withEta.eta = "2026-11-21T07:31:05.219234+00:00"
        withEta.timeLimit = (1.5, 30)
        withEta.group = "g\"1"
        withEta.groupIndex = 2
        XCTAssertEqual(try JSONParser.parse(withEta.envelope())["headers"], withEta.protocolHeaders())
        let back = try TaskMessage.decode(Array(m.envelope().utf8), queue: "fetch_queue")
        XCTAssertEqual(back.id, m.id)
        XCTAssertEqual(back.kwargs.first?.value, 3)
    }

    /// The one-pass decoder reads what a full JSON parse reads, whatever the
    /// spacing, key order, escapes or extra fields, and keeps every header.
    func testEnvelopeDecoderAgreesWithTheFullParser() throws {
        let fixtures = ["celery57_noop_envelope.json", "celery57_chord_header_envelope.json"].map {
            try! Array(Data(contentsOf: TestPaths.fixtures.appendingPathComponent($0)))
        }
        var odd = TaskMessage(task: "caf\u{e9}.t\"x", args: ["\u{1F600}", 1.5, [1, [2]]], kwargs: [("k", ["a": nil])])
        odd.eta = "2026-11-21T10:00:00+00:00"
        odd.groupIndex = 3
        // Compact separators, keys reordered, unknown fields, an escaped body string.
        let env = try JSONParser.parse(odd.envelope())
        var pairs = (env.objectPairs ?? []).reversed().map { $0 }
        pairs.append(("x-extra", ["nested": [1, ["deep": true]], "s": "a\\\"b"]))
        let compact = JSON.object(pairs).serialized().replacingOccurrences(of: "\", \"", with: "\",\"")
            .replacingOccurrences(of: "\": ", with: "\":")
        let escapedBody = odd.envelope().replacingOccurrences(of: "\"body\": \"", with: "\"body\": \"\\u0057")
            .replacingOccurrences(of: "\\u0057W", with: "\\u0057")  // same body, its first letter escaped
        for raw in fixtures + [Array(compact.utf8), Array(escapedBody.utf8), Array(odd.envelope().utf8)] {
            let m = try TaskMessage.decode(raw, queue: "q")
            let full = try JSONParser.parse(raw)
            let h = full["headers"]!
            XCTAssertEqual(m.task, h["task"]?.stringValue)
            XCTAssertEqual(m.id, h["id"]?.stringValue)
            XCTAssertEqual(m.eta, h["eta"]?.stringValue)
            XCTAssertEqual(m.rootId, h["root_id"]?.stringValue)
            XCTAssertEqual(m.groupIndex, h["group_index"]?.intValue.map { Int($0) })
            XCTAssertEqual(m.deliveryTag, full["properties"]?["delivery_tag"]?.stringValue)
            XCTAssertEqual(m.routingKey, full["properties"]?["delivery_info"]?["routing_key"]?.stringValue)
            XCTAssertEqual(m.replyTo, full["properties"]?["reply_to"]?.stringValue ?? "")
            XCTAssertEqual(m.headers, h, "every header kept")
            var replaced = m  // reply_to is read from the envelope: still there once the headers are replaced
            replaced.headers = ["task": "other"]
            XCTAssertEqual(replaced.replyTo, m.replyTo)
            let body = try JSONParser.parse(Base64.decode((full["body"]?.stringValue ?? "").utf8) ?? [])
            XCTAssertEqual(JSON.array(m.args), body[0])
        }
        let back = try TaskMessage.decode(Array(odd.envelope().utf8))
        XCTAssertEqual(back.task, "caf\u{e9}.t\"x")
        XCTAssertEqual(back.rootId, back.id)
        var escapedReply = odd
        escapedReply.replyTo = "a\"b\u{e9}"
        XCTAssertEqual(try TaskMessage.decode(Array(escapedReply.envelope().utf8)).replyTo, "a\"b\u{e9}")
        // A worker passes the tag its claim read: kept, the property not read again.
        let claimed = try TaskMessage.decode(Array(odd.envelope().utf8), deliveryTag: "from-the-claim")
        XCTAssertEqual(claimed.deliveryTag, "from-the-claim")
        XCTAssertEqual(back.deliveryTag, odd.deliveryTag)
        XCTAssertEqual(claimed.id, back.id)
        XCTAssertEqual(claimed.args, back.args)
        XCTAssertEqual(back.args, odd.args)
        // Well-formed around, malformed inside a skipped field: refused, not run.
        let broken = odd.envelope().replacingOccurrences(of: "\"shadow\": null", with: "\"shadow\": nul")
        XCTAssertThrowsError(try TaskMessage.decode(Array(broken.utf8)))
    }

    /// The decoder steps over plain string bytes 8 at a time: a quote, a backslash or a
    /// control character at any offset, next to multi-byte UTF-8, is still seen.
    func testStringScanFindsEveryStopByteAtEveryOffset() throws {
        func envelope(id: String) -> [UInt8] {
            Array((#"{"headers": {"task": "t", "id": ""# + id + #""}, "body": "W1tdLCB7fSwge31d"}"#).utf8)
        }
        for length in 0..<24 {
            for at in 0...length {
                let (head, tail) = (String(repeating: "a", count: at), String(repeating: "b", count: length - at))
                for (stop, expect) in [("\\\"", "\""), ("\\\\", "\\"), ("\\n", "\n"), ("é", "é")] {
                    XCTAssertEqual(try TaskMessage.decode(envelope(id: head + stop + tail)).id, head + expect + tail)
                }
                XCTAssertThrowsError(
                    try TaskMessage.decode(envelope(id: head + "\u{01}" + tail)), "control character at \(at)")
                XCTAssertThrowsError(
                    try TaskMessage.decode(Array((#"{"headers": {"id": ""# + head).utf8)), "unterminated at \(at)")
            }
        }
    }

    func testPoisonMessagesAreNamed() {
        let cases = [
            "garbage": "not JSON", #"{"headers": {}}"#: "no task name",
            #"{"headers": {"task": "add", "id": "1"}, "body": "!!!"}"#: "not base64",
            #"{"headers": {"task": "add", "id": "1"}, "body": "WzEsIDJd"}"#: "[args, kwargs, embed]",
            #"{"headers": {"task": "add", "id": "1"}, "content-type": "application/x-python-serialize", "body": "W10="}"#:
                "unsupported content-type application/x-python-serialize",
            #"{"headers": {"task": "add", "id": "1"}, "content-type": "application/jsonx", "body": "W10="}"#:
                "unsupported content-type application/jsonx",
        ]
        for (raw, reason) in cases {
            XCTAssertThrowsError(try TaskMessage.decode(Array(raw.utf8))) { e in
                XCTAssertTrue("\(e)".contains(reason), "\(raw): \(e)")
            }
        }
    }

    /// The body is read in place as `[args, kwargs, embed]`: the same values the JSON tree
    /// gives for any spacing and embed, and bad bodies named as before.
    func testBodyReaderAgreesWithTheTreeReader() throws {
        func envelope(_ body: String) -> [UInt8] {
            let b64 = Data(body.utf8).base64EncodedString()
            return Array(#"{"headers": {"task": "add", "id": "1"}, "body": "\#(b64)"}"#.utf8)
        }
        let good = [
            #"[[2], {"y": 3}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#,
            #" [ [1, "a", [2]] ,{} , null ] "#,
            #"[[], {}, {"callbacks": null, "errbacks": null, "chain": [{"task": "add"}], "chord": null}]"#,
            #"[[], {}, {"callbacks":null,"errbacks":null,"chain":null,"chord":null}]"#,
        ]
        for body in good {
            let m = try TaskMessage.decode(envelope(body))
            let tree = try JSONParser.parse(body)
            XCTAssertEqual(.array(m.args), tree[0], body)
            XCTAssertEqual(.object(m.kwargs), tree[1], body)
            XCTAssertEqual(m.embed, tree[2]!.isNull ? TaskMessage.noEmbed : tree[2], body)
        }
        let bad = [
            "[[1], {}": "not JSON", "[[1], {}, null] x": "not JSON", "[[1], {}, null, 4]": "[args, kwargs, embed]",
            "[1, {}, null]": "[args, kwargs, embed]", "[[1], [], null]": "[args, kwargs, embed]",
            "[[1], {}]": "[args, kwargs, embed]",
        ]
        for (body, reason) in bad {
            XCTAssertThrowsError(try TaskMessage.decode(envelope(body))) { e in
                XCTAssertTrue("\(e)".contains(reason), "\(body): \(e)")
            }
        }
    }

    /// An event's or a pidbox message's envelope is the JSON tree kombu's json.dumps
    /// writes, byte for byte, and reads back to its headers and body.
    func testKombuEnvelopeIsTheJSONTreeAndReadsBack() throws {
        let body: JSON = [
            "method": "ping", "arguments": [:], "reply_to": ["exchange": "reply.celery.pidbox", "routing_key": "k\"1"],
        ]
        let headers: JSON = ["clock": 3, "expires": 1.5e9, "hostname": "celeris@h\u{e9}"]
        let text = KombuEnvelope.make(
            body: body, headers: headers, exchange: "celery.pidbox", routingKey: "", deliveryMode: 2)
        let tag = try XCTUnwrap(JSONParser.parse(text)["properties"]?["delivery_tag"]?.stringValue)
        let tree: JSON = [
            "body": .string(Data(body.serialized().utf8).base64EncodedString()), "content-encoding": "utf-8",
            "content-type": "application/json", "headers": headers,
            "properties": [
                "delivery_mode": 2, "delivery_info": ["exchange": "celery.pidbox", "routing_key": ""], "priority": 0,
                "body_encoding": "base64", "delivery_tag": .string(tag),
            ],
        ]
        XCTAssertEqual(text, tree.serialized())
        let read = try XCTUnwrap(KombuEnvelope.read(Array(text.utf8)))
        XCTAssertEqual(read.headers, headers)
        XCTAssertEqual(read.body, body)
        XCTAssertEqual(KombuEnvelope.body(of: Array(text.utf8)), body)
        // A body not in base64 is JSON text as it stands; bad base64 or bad JSON reads as nothing.
        XCTAssertEqual(KombuEnvelope.body(of: Array(#"{"body": "{\"a\": 1}"}"#.utf8)), ["a": 1])
        let b64 = #"{"body": "eyJhIjogMX0=", "properties": {"body_encoding": "base64"}}"#
        XCTAssertEqual(KombuEnvelope.read(Array(b64.utf8))?.body, ["a": 1])
        XCTAssertEqual(KombuEnvelope.read(Array(b64.utf8))?.headers, .null)
        XCTAssertNil(KombuEnvelope.body(of: Array(b64.replacingOccurrences(of: "eyJ", with: "!yJ").utf8)))
        XCTAssertNil(KombuEnvelope.body(of: Array(#"{"body": "{\"a\": "}"#.utf8)))
        XCTAssertNil(KombuEnvelope.body(of: Array(text.utf8.dropLast())))
        // A pidbox command: read from the same pass; expired ones are dropped.
        let request = try XCTUnwrap(ControlRequest(envelope: Array(text.utf8), now: 1e9))
        XCTAssertEqual(request.method, "ping")
        XCTAssertEqual(request.replyTo?.routingKey, "k\"1")
        XCTAssertNil(ControlRequest(envelope: Array(text.utf8), now: 2e9), "expired")
    }

    /// A task's envelope and an event's share one writer: the same keys in the same order
    /// as Celery's, a task's with its correlation id and reply-to.
    func testTaskAndEventEnvelopesShareKombusKeyOrder() throws {
        var m = TaskMessage(task: "add", args: [1])
        m.replyTo = "r\"1"
        let task = try JSONParser.parse(m.envelope())
        let event = try JSONParser.parse(
            KombuEnvelope.make(body: [:], headers: [:], exchange: "celeryev", routingKey: "worker.heartbeat"))
        XCTAssertEqual(task.objectPairs?.map(\.key), event.objectPairs?.map(\.key))
        XCTAssertEqual(
            task["properties"]?.objectPairs?.map(\.key),
            ["correlation_id", "reply_to"] + (event["properties"]?.objectPairs?.map(\.key) ?? []))
        XCTAssertEqual(task["properties"]?["reply_to"], "r\"1")
        XCTAssertEqual(task["properties"]?["correlation_id"], .string(m.id))
    }

    /// Bearer tokens' base64url is RFC 4648's: Foundation's base64 with `-_` for `+/`
    /// and no padding, read back with or without padding.
    func testBase64URLMatchesFoundation() {
        var g = SystemRandomNumberGenerator()
        for n in 0..<64 {
            let bytes = Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &g) })
            let url = bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(BearerAuth.base64url(bytes), url, "length \(n)")
            XCTAssertEqual(BearerAuth.unbase64url(url), bytes, "length \(n)")
        }
        XCTAssertNil(BearerAuth.unbase64url("abcde"), "a dangling character")
        XCTAssertNil(BearerAuth.unbase64url("ab$d"))
        let auth = BearerAuth(secret: "s")
        let token = auth.issue(subject: "alice", ttl: 60, scopes: ["tasks"], now: 0)
        XCTAssertEqual(auth.check(token: token, scope: "tasks", now: 1), .allowed("alice"))
        XCTAssertEqual(auth.check(token: token + "x", scope: "tasks", now: 1), .unauthorized("bad token signature"))
    }
}
