// libFuzzer target: a pidbox broadcast as the worker's remote-control listener reads
// it. The first byte picks the shape: 0 the input is the whole envelope; otherwise
// it is the command body (`{"method": …, "arguments": …, "destination": …,
// "reply_to": …, "ticket": …}`) in a kombu envelope as `celery inspect` sends it.
@testable import FastCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let rest = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let envelope: [UInt8]
    if data[0] % 2 == 0 {
        envelope = rest
    } else {
        var out = Array(#"{"body": ""#.utf8)
        Base64.encode(rest, to: &out)
        out += Array(
            #"", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"clock": 1, "expires": 1e300}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "celery.pidbox", "routing_key": ""}, "priority": 0, "body_encoding": "base64", "delivery_tag": "t"}}"#
                .utf8)
        envelope = out
    }
    guard let request = ControlRequest(envelope: envelope, now: 1_700_000_000) else { return 0 }
    _ = request.isFor("celery@host")
    _ = request.arguments.serialized()
    // The arguments as RemoteControlHandler reads them.
    _ = request.lacks("n")
    _ = request.integer("n", in: 1...ControlRequest.maxConcurrency)
    _ = request.integer("max", in: 1...ControlRequest.maxConcurrency)
    _ = request.seconds("soft", in: 0...ControlRequest.maxTimeLimit)
    _ = request.seconds("hard", in: 0...ControlRequest.maxTimeLimit)
    if let text = request.arguments["rate_limit"]?.stringValue, let rate = RateLimit(text) {
        precondition(rate.perSecond == 0 || rate.perSecond >= RateLimit.minimumPerSecond, "rate below the bound")
        _ = CeleryTime.isoformat(1_700_000_000 + 1 / max(rate.perSecond, RateLimit.minimumPerSecond))
    }
    if let replyTo = request.replyTo {
        _ = KombuEnvelope.make(
            body: ["celery@host": ["ok": "pong"]], headers: ["ticket": request.ticket.map(JSON.string) ?? .null],
            exchange: replyTo.exchange, routingKey: replyTo.routingKey)
    }
    return 0
}
