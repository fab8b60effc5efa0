import CEventShim

/// Strict UTF-8 validation (RFC 3629: no overlongs, no surrogates), as RFC 6455
/// requires of text messages (close 1007 otherwise).
///
///     UTF8Validator.isValid(Array("héllo".utf8))  // true
public enum UTF8Validator {
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        ce_utf8_valid(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) != 0
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }
}
