import Foundation

/// An object member's key as it stands in the envelope, matched against literals
/// in a `switch` byte for byte; a key with escapes matches nothing (no field a
/// worker reads is spelled with them).
struct MemberKey {
    let bytes: UnsafeBufferPointer<UInt8>?

    static func ~= (literal: StaticString, key: MemberKey) -> Bool {
        guard let b = key.bytes, b.count == literal.utf8CodeUnitCount else { return false }
        return b.count == 0 || memcmp(b.baseAddress!, literal.utf8Start, b.count) == 0
    }
}

extension JSONParser.Reader {
    var peek: UInt8? { pos < buf.count ? buf[pos] : nil }

    /// Walk an object's members: `body` gets each key where it lies in the buffer
    /// (no string made) and must read or skip its value.
    mutating func members(
        _ body: (inout JSONParser.Reader, MemberKey) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        if try enter(UInt8(ascii: "{"), UInt8(ascii: "}")) { return }
        while true {
            skipSpace()
            guard peek == UInt8(ascii: "\"") else { throw fail("expected key") }
            let (range, escaped) = try stringSpan()
            let key = MemberKey(bytes: escaped ? nil : UnsafeBufferPointer(rebasing: buf[range]))
            skipSpace()
            guard peek == UInt8(ascii: ":") else { throw fail("expected ':'") }
            pos += 1
            try body(&self, key)
            skipSpace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"):
                pos += 1
                return
            default: throw fail("expected ',' or '}'")
            }
        }
    }

    /// Step into a container opened by `open`; true when it is empty (`close` read too).
    mutating func enter(_ open: UInt8, _ close: UInt8) throws(JSONParseError) -> Bool {
        skipSpace()
        guard peek == open else { throw fail("expected '\(Character(Unicode.Scalar(open)))'") }
        pos += 1
        skipSpace()
        guard peek == close else { return false }
        pos += 1
        return true
    }

    /// A string's raw bytes (between the quotes) and whether it holds escapes; checks them.
    mutating func stringSpan() throws(JSONParseError) -> (Range<Int>, Bool) {
        pos += 1
        let start = pos
        var escaped = false
        while pos < buf.count {
            skipPlainBytes()
            guard pos < buf.count else { break }
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return (start..<(pos - 1), escaped)
            }
            if c < 0x20 { throw fail("control character in string") }
            if c == UInt8(ascii: "\\") {
                escaped = true
                pos += 1
                guard pos < buf.count else { break }
                switch buf[pos] {
                case UInt8(ascii: "u"):
                    pos += 1
                    _ = try hex4()
                    continue
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    break
                default: throw fail("bad escape")
                }
            }
            pos += 1
        }
        throw fail("unterminated string")
    }

    /// Step over string bytes 8 at a time while none is a quote, a backslash or a
    /// control character (a base64 body is hundreds of such bytes).
    @inline(__always)
    mutating func skipPlainBytes() {
        guard let base = buf.baseAddress else { return }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while pos + 8 <= buf.count {
            let v = UInt64(littleEndian: UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self))
            let quote = v ^ (ones &* 0x22)
            let backslash = v ^ (ones &* 0x5C)
            let special =
                (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((v &- ones &* 0x20) & ~v)) & highs
            if special != 0 {
                // The lowest flagged byte is a real stop (a borrow only flags bytes above one).
                pos += special.trailingZeroBitCount >> 3
                return
            }
            pos += 8
        }
    }

    /// A string value as it stands in the buffer (no escapes) or unescaped.
    enum StringValue {
        case span(Range<Int>)
        case text(String)

        /// The text, read from `buf` (the buffer it was found in) when it is a span.
        func text(in buf: UnsafeBufferPointer<UInt8>) -> String {
            switch self {
            case .span(let range): return String(decoding: UnsafeBufferPointer(rebasing: buf[range]), as: UTF8.self)
            case .text(let text): return text
            }
        }

        /// Set `s` to the text, over its own storage where it can (`String.assign(utf8:)`).
        func assign(to s: inout String, in buf: UnsafeBufferPointer<UInt8>) {
            switch self {
            case .span(let range): s.assign(utf8: UnsafeBufferPointer(rebasing: buf[range]))
            case .text(let text): s = text
            }
        }

        /// No characters.
        var isEmpty: Bool {
            switch self {
            case .span(let range): return range.isEmpty
            case .text(let text): return text.isEmpty
            }
        }

        /// The same text as `other`, both read from `buf` (an escaped text never matches a span).
        func same(as other: StringValue, in buf: UnsafeBufferPointer<UInt8>) -> Bool {
            switch (self, other) {
            case (.span(let a), .span(let b)):
                return a.count == b.count
                    && (a.isEmpty
                        || memcmp(buf.baseAddress! + a.lowerBound, buf.baseAddress! + b.lowerBound, a.count) == 0)
            case (.text(let a), .text(let b)): return a == b
            default: return false
            }
        }
    }

    /// A string value, nil for null (or any other kind of value, which is skipped).
    mutating func optionalStringValue() throws(JSONParseError) -> StringValue? {
        skipSpace()
        guard peek == UInt8(ascii: "\"") else {
            try skipValue(depth: 1)
            return nil
        }
        let mark = pos
        let (range, escaped) = try stringSpan()
        if !escaped { return .span(range) }
        pos = mark
        return .text(try string())
    }

    /// A string value, nil for null (or any other kind of value, which is skipped).
    mutating func optionalString() throws(JSONParseError) -> String? {
        try optionalStringValue()?.text(in: buf)
    }

    /// Step over one value, checking it is well-formed, without building it.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        if depth > Self.maxDepth { throw fail("nesting too deep") }
        skipSpace()
        guard let c = peek else { throw fail("unexpected end") }
        switch c {
        case UInt8(ascii: "{"): try members { (r, _) throws(JSONParseError) in try r.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            if try enter(UInt8(ascii: "["), UInt8(ascii: "]")) { return }
            while true {
                try skipValue(depth: depth + 1)
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): pos += 1
                case UInt8(ascii: "]"):
                    pos += 1
                    return
                default: throw fail("expected ',' or ']'")
                }
            }
        case UInt8(ascii: "\""): _ = try stringSpan()
        default: _ = try value(depth: depth)  // literals and numbers: no allocation
        }
    }
}
