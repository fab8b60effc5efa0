/// Appending text to byte buffers in one copy each: a literal from its static bytes,
/// a string from its contiguous UTF-8 (not through `String.UTF8View`'s element-wise
/// path, which costs a few hundred instructions per call on the result-encode path).
///
///     out.append(ascii: #"{"status": ""#)
///     out.append(utf8: taskId)
extension Array where Element == UInt8 {
    /// Append a literal's bytes.
    @inline(__always)
    mutating func append(ascii text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Append a string's UTF-8 bytes.
    @inline(__always)
    mutating func append(utf8 text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }
}
