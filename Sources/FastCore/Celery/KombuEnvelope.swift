/// kombu's Redis envelope, written and read in one place for every message: a task
/// (`TaskMessage.envelopeBytes`, `TaskMessage.decode`), an event, a remote-control
/// (pidbox) command or reply; and the pub/sub channels kombu's Redis fanout uses.
///
///     let text = KombuEnvelope.make(body: event, headers: ["hostname": "celeris@h"],
///                                   exchange: "celeryev", routingKey: "worker.heartbeat")
///     let (headers, body) = KombuEnvelope.read(Array(text.utf8))!
public enum KombuEnvelope {
    /// A JSON envelope with a base64 body (an event, a pidbox command or reply).
    public static func make(body: JSON, headers: JSON, exchange: String, routingKey: String, deliveryMode: Int = 1)
        -> String
    {
        var json: [UInt8] = []
        body.write(to: &json)
        var out: [UInt8] = []
        out.reserveCapacity(json.count * 4 / 3 + 512)
        write(
            body: json, headers: { headers.write(to: &$0) }, replyTo: nil, deliveryMode: deliveryMode,
            exchange: exchange, routingKey: routingKey, priority: 0, deliveryTag: TaskMessage.newId(), to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Write an envelope as kombu's json.dumps does (keys in its order, Python's
    /// separators): `body` (JSON bytes) base64-encoded, the headers object written by
    /// `headers`, then the properties. `replyTo`: a task's `correlation_id` and
    /// `reply_to` (nil: neither property, as in events and pidbox messages). `expiration`:
    /// the property kombu adds for a task that expires (milliseconds left, as text).
    static func write(
        body: [UInt8], headers: (inout [UInt8]) -> Void, replyTo: (correlationId: String, replyTo: String)?,
        deliveryMode: Int, expiration: String? = nil, exchange: String, routingKey: String, priority: Int,
        deliveryTag: String, to out: inout [UInt8]
    ) {
        out.append(ascii: #"{"body": ""#)
        Base64.encode(body, to: &out)
        out.append(ascii: #"", "content-encoding": "utf-8", "content-type": "application/json", "headers": "#)
        headers(&out)
        out.append(ascii: #", "properties": {"#)
        if let replyTo {
            out.append(ascii: #""correlation_id": "#)
            JSON.writeString(replyTo.correlationId, to: &out)
            out.append(ascii: #", "reply_to": "#)
            JSON.writeString(replyTo.replyTo, to: &out)
            out.append(ascii: ", ")
        }
        out.append(ascii: #""delivery_mode": "#)
        out.append(contentsOf: String(deliveryMode).utf8)
        if let expiration {
            out.append(ascii: #", "expiration": "#)
            JSON.writeString(expiration, to: &out)
        }
        out.append(ascii: #", "delivery_info": {"exchange": "#)
        JSON.writeString(exchange, to: &out)
        out.append(ascii: #", "routing_key": "#)
        JSON.writeString(routingKey, to: &out)
        out.append(ascii: #"}, "priority": "#)
        out.append(contentsOf: String(priority).utf8)
        out.append(ascii: #", "body_encoding": "base64", "delivery_tag": "#)
        JSON.writeString(deliveryTag, to: &out)
        out.append(ascii: "}}")
    }

    /// An envelope's headers (`.null` when it has no headers object) and decoded body;
    /// nil when either is not JSON. Read in one pass (`EnvelopeDecoder`).
    public static func read(_ raw: [UInt8]) -> (headers: JSON, body: JSON)? {
        raw.withUnsafeBufferPointer { buf -> (headers: JSON, body: JSON)? in
            guard let f = try? EnvelopeDecoder.read(buf), let range = f.body,
                let body = try? EnvelopeDecoder.withBody(
                    f, at: range, base64: f.bodyEncoding == "base64", in: buf,
                    { (b) throws(PoisonMessage) -> JSON? in try? JSONParser.parse(b) })
            else { return nil }
            let headers = f.headers.flatMap { try? JSONParser.parse(UnsafeBufferPointer(rebasing: buf[$0])) }
            return (headers ?? .null, body)
        }
    }

    /// The decoded body of an envelope, or nil.
    public static func body(of raw: [UInt8]) -> JSON? { read(raw)?.body }

    /// kombu's fanout channel: `/<db>.<exchange>` plus `/<routing_key>` for topic-style events.
    public static func fanoutChannel(db: Int, exchange: String, routingKey: String? = nil) -> String {
        "/\(db).\(exchange)" + (routingKey.map { "/" + $0 } ?? "")
    }
}
