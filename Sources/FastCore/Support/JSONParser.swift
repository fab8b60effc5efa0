#if canImport(Glibc)
    import Glibc
#endif

/// A strict JSON reader (RFC 8259) producing `JSON` values.
///
///     let v = try JSONParser.parse(Array(#"{"a": [1, 2.5, "x"]}"#.utf8))
public enum JSONParser {
    /// Parse one complete JSON text; trailing non-space bytes are an error.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSON {
        try bytes.withUnsafeBufferPointer { (buf) throws(JSONParseError) -> JSON in try parse(buf) }
    }

    /// Parse a String's UTF-8 as one JSON text.
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8))
    }

    /// Parse one complete JSON text from a buffer.
    public static func parse(_ buf: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSON {
        var reader = Reader(buf: buf)
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        if reader.pos != buf.count { throw reader.fail("trailing bytes") }
        return value
    }

    struct Reader {
        let buf: UnsafeBufferPointer<UInt8>
        var pos = 0
        static let maxDepth = 512

        func fail(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: pos) }

        mutating func skipSpace() {
            while pos < buf.count {
                let c = buf[pos]
                if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
            }
        }

        mutating func value(depth: Int) throws(JSONParseError) -> JSON {
            if depth > Reader.maxDepth { throw fail("nesting too deep") }
            skipSpace()
            guard pos < buf.count else { throw fail("unexpected end") }
            switch buf[pos] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "N"): try literal("NaN"); return .double(.nan)
            case UInt8(ascii: "I"): try literal("Infinity"); return .double(.infinity)
            default: return try number()
            }
        }

        /// Skip spaces and then `byte`, or fail.
        mutating func expect(_ byte: UInt8) throws(JSONParseError) {
            skipSpace()
            guard pos < buf.count, buf[pos] == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
            pos += 1
        }

        /// Skip `text` if the bytes at the reader are exactly it; false (nothing read) if not.
        mutating func skip(_ text: StaticString) -> Bool {
            let n = text.utf8CodeUnitCount
            guard pos + n <= buf.count, memcmp(buf.baseAddress! + pos, text.utf8Start, n) == 0 else { return false }
            pos += n
            return true
        }

        mutating func literal(_ word: StaticString) throws(JSONParseError) {
            let n = word.utf8CodeUnitCount
            guard pos + n <= buf.count else { throw fail("bad literal") }
            guard memcmp(buf.baseAddress! + pos, word.utf8Start, n) == 0 else { throw fail("bad literal") }
            pos += n
        }

        mutating func object(depth: Int) throws(JSONParseError) -> JSON {
            pos += 1
            var pairs: [(key: String, value: JSON)] = []
            skipSpace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "}") {
                pos += 1
                return .object(pairs)
            }
            pairs.reserveCapacity(4)  // one allocation for the usual small object, not three
            while true {
                skipSpace()
                guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else { throw fail("expected key") }
                let key = try string()
                skipSpace()
                guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                pairs.append((key: key, value: try value(depth: depth + 1)))
                skipSpace()
                guard pos < buf.count else { throw fail("unexpected end") }
                if buf[pos] == UInt8(ascii: ",") {
                    pos += 1
                } else if buf[pos] == UInt8(ascii: "}") {
                    pos += 1
                    return .object(pairs)
                } else {
                    throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(JSONParseError) -> JSON {
            var items: [JSON] = []
            try elements(depth: depth, into: &items)
            return .array(items)
        }

        /// Read the array that starts here, appending its values to `items` (whose storage
        /// a recycled message keeps: a task's arguments need no new array).
        mutating func elements(depth: Int, into items: inout [JSON]) throws(JSONParseError) {
            pos += 1
            skipSpace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "]") {
                pos += 1
                return
            }
            items.reserveCapacity(4)  // one allocation for the usual short array, not three
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard pos < buf.count else { throw fail("unexpected end") }
                if buf[pos] == UInt8(ascii: ",") {
                    pos += 1
                } else if buf[pos] == UInt8(ascii: "]") {
                    pos += 1
                    return
                } else {
                    throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func hex4() throws(JSONParseError) -> UInt32 {
            guard pos + 4 <= buf.count else { throw fail("bad \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = buf[pos]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("bad \\u escape")
                }
                v = v << 4 | d
                pos += 1
            }
            return v
        }

        mutating func string() throws(JSONParseError) -> String {
            pos += 1
            let start = pos
            // Fast path: no escapes.
            while pos < buf.count {
                let c = buf[pos]
                if c == UInt8(ascii: "\"") {
                    let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
                    pos += 1
                    return s
                }
                if c == UInt8(ascii: "\\") || c < 0x20 { break }
                pos += 1
            }
            var bytes = Array(buf[start..<pos])
            while pos < buf.count {
                let c = buf[pos]
                if c == UInt8(ascii: "\"") {
                    pos += 1
                    return String(decoding: bytes, as: UTF8.self)
                }
                if c < 0x20 { throw fail("control character in string") }
                if c != UInt8(ascii: "\\") {
                    bytes.append(c)
                    pos += 1
                    continue
                }
                pos += 1
                guard pos < buf.count else { break }
                let e = buf[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var cp = try hex4()
                    if cp >= 0xD800, cp < 0xDC00, pos + 6 <= buf.count, buf[pos] == UInt8(ascii: "\\"),
                        buf[pos + 1] == UInt8(ascii: "u")
                    {
                        pos += 2
                        let low = try hex4()
                        if low >= 0xDC00, low < 0xE000 {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            cp = 0xFFFD
                        }
                    }
                    let scalar = Unicode.Scalar(cp) ?? "\u{FFFD}"
                    bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw fail("bad escape")
                }
            }
            throw fail("unterminated string")
        }

        mutating func number() throws(JSONParseError) -> JSON {
            let start = pos
            var isInt = true
            if pos < buf.count, buf[pos] == UInt8(ascii: "-") { pos += 1 }
            if pos + 8 <= buf.count, buf[pos] == UInt8(ascii: "I") {
                try literal("Infinity")
                return .double(-.infinity)
            }
            let digitsStart = pos
            while pos < buf.count, buf[pos] >= 0x30, buf[pos] <= 0x39 { pos += 1 }
            if pos == digitsStart { throw fail("unexpected character") }
            if buf[digitsStart] == 0x30, pos - digitsStart > 1 { throw fail("leading zero") }
            if pos < buf.count, buf[pos] == UInt8(ascii: ".") {
                isInt = false
                pos += 1
                let fracStart = pos
                while pos < buf.count, buf[pos] >= 0x30, buf[pos] <= 0x39 { pos += 1 }
                if pos == fracStart { throw fail("bad fraction") }
            }
            if pos < buf.count, buf[pos] == UInt8(ascii: "e") || buf[pos] == UInt8(ascii: "E") {
                isInt = false
                pos += 1
                if pos < buf.count, buf[pos] == UInt8(ascii: "+") || buf[pos] == UInt8(ascii: "-") { pos += 1 }
                let expStart = pos
                while pos < buf.count, buf[pos] >= 0x30, buf[pos] <= 0x39 { pos += 1 }
                if pos == expStart { throw fail("bad exponent") }
            }
            // An integer of up to 18 digits (any retries count, priority, index) is summed in
            // place; longer ones and floats go through the standard library's parsing.
            if isInt && pos - digitsStart <= 18 {
                var v: Int64 = 0
                for i in digitsStart..<pos { v = v &* 10 &+ Int64(buf[i] &- 0x30) }
                return .int(digitsStart > start ? -v : v)
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
            if isInt, let i = Int64(text) { return .int(i) }
            guard let d = Double(text) else { throw fail("bad number") }
            return .double(d)
        }
    }
}
