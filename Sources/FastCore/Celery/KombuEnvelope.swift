import Foundation

/// kombu envelopes for what is not a task: events and remote-control
/// (pidbox) messages, and the pub/sub channels kombu's Redis fanout uses.
///
///     let text = KombuEnvelope.make(body: event, headers: ["hostname": "celeris@h"],
///                                   exchange: "celeryev", routingKey: "worker.heartbeat")
public enum KombuEnvelope {
    /// A JSON envelope with a base64 body.
    public static func make(body: JSON, headers: JSON, exchange: String, routingKey: String, deliveryMode: Int = 1)
        -> String
    {
        let env: JSON = [
            "body": .string(Data(body.serialized().utf8).base64EncodedString()), "content-encoding": "utf-8",
            "content-type": "application/json", "headers": headers,
            "properties": [
                "delivery_mode": .int(Int64(deliveryMode)),
                "delivery_info": ["exchange": .string(exchange), "routing_key": .string(routingKey)], "priority": 0,
                "body_encoding": "base64", "delivery_tag": .string(TaskMessage.newId()),
            ],
        ]
        return env.serialized()
    }

    /// The decoded body of an envelope, or nil.
    public static func body(of raw: [UInt8]) -> JSON? {
        guard let env = try? JSONParser.parse(raw), let b = env["body"]?.stringValue else { return nil }
        if env["properties"]?["body_encoding"]?.stringValue == "base64" {
            guard let data = Data(base64Encoded: b) else { return nil }
            return try? JSONParser.parse(Array(data))
        }
        return try? JSONParser.parse(b)
    }

    /// kombu's fanout channel: `/<db>.<exchange>` plus `/<routing_key>` for topic-style events.
    public static func fanoutChannel(db: Int, exchange: String, routingKey: String? = nil) -> String {
        "/\(db).\(exchange)" + (routingKey.map { "/" + $0 } ?? "")
    }
}
