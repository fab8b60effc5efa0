// libFuzzer target: Base64 on any bytes. Decoding never traps or writes past the
// room it asked for; whatever decodes, encoded again, decodes to the same bytes;
// and any bytes encoded decode back to themselves.
@testable import FastCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBase64(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // Through a non-contiguous collection too (the byte-at-a-time path alone).
    let viaGroups = Base64.decode(input)
    let viaBytes = Base64.decode(input.lazy.map { $0 })
    precondition(viaGroups == viaBytes, "decode paths disagree")
    if let decoded = viaGroups {
        var encoded: [UInt8] = []
        Base64.encode(decoded, to: &encoded)
        precondition(Base64.decode(encoded) == decoded, "decode(encode(decode(x))) != decode(x)")
    }
    var encoded: [UInt8] = []
    Base64.encode(input, to: &encoded)
    precondition(encoded.count == (input.count + 2) / 3 * 4, "encoded length")
    precondition(Base64.decode(encoded) == input, "decode(encode(x)) != x")
    return 0
}
