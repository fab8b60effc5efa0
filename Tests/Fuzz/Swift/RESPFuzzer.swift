// libFuzzer target: a Redis reply as a connection reads it (hiredis' reader, copied
// into a RedisValue). Any bytes parse or not without trapping; and any arguments
// (the input split at NUL bytes) written as a command read back as the same strings.
@testable import FastCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if let value = RESP.parse(input) {
        _ = value.text
        if case .array(let items) = value { _ = items.map(\.text) }
    }
    let args = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    guard case .array(let items)? = RESP.parse(RESP.format(args)) else {
        preconditionFailure("a formatted command does not parse")
    }
    precondition(items == args.map { .string(Array($0.utf8)) }, "a formatted command reads back changed")
    return 0
}
