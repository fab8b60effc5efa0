// libFuzzer target: CeleryTime. Any text parses or not without trapping, and a
// parsed time formats; any 8 bytes read as a Double (NaN, infinities, huge) format
// without trapping. A formatted time in years 1...9999 parses back to itself.
@testable import FastCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCeleryTime(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buf = UnsafeBufferPointer(start: data, count: size)
    if let epoch = CeleryTime.parse(String(decoding: buf, as: UTF8.self)) {
        _ = CeleryTime.isoformat(epoch)
    }
    if size >= 8 {
        let bits = UnsafeRawPointer(data).loadUnaligned(as: UInt64.self)
        let epoch = Double(bitPattern: bits)
        let text = CeleryTime.isoformat(epoch)
        // Years 1...9999 (what Python's datetime holds) read back to the same instant.
        if epoch.isFinite, epoch >= -62_135_596_800, epoch < 253_402_300_800 {
            guard let back = CeleryTime.parse(text) else { preconditionFailure("\(text) does not parse") }
            precondition(CeleryTime.isoformat(back) == text, "\(text) does not round-trip")
        }
    }
    return 0
}
