// libFuzzer target: JSONParser on any bytes. A value it accepts must serialise and
// read back to the same text (the writer and reader agree), and the reader's
// streaming side (skipValue, the one EnvelopeDecoder uses) must accept exactly
// what the tree parser accepts.
@testable import FastCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buf = UnsafeBufferPointer(start: data, count: size)
    let parsed = try? JSONParser.parse(buf)
    var skipper = JSONParser.Reader(buf: buf)
    let skipped: Bool
    do {
        try skipper.skipValue(depth: 0)
        skipper.skipSpace()
        skipped = skipper.pos == buf.count
    } catch { skipped = false }
    precondition(skipped == (parsed != nil), "skipValue and parse disagree")
    guard let value = parsed else { return 0 }
    let text = value.serialized()
    guard let again = try? JSONParser.parse(text) else {
        preconditionFailure("serialised JSON does not parse: \(text)")
    }
    precondition(again.serialized() == text, "JSON does not round-trip: \(text)")
    _ = value.intValue
    _ = value[0]
    _ = value["task"]
    return 0
}
