import CEventShim
import Foundation

/// Plain text from the formats the pipeline reads: .txt, .md, .html/.htm,
/// and .pdf through poppler's `pdftotext` (`PDFText`) when it is installed.
/// Every scan here is linear in its input (no backtracking regex): an unclosed
/// `<script`, `<!--`, `<` or `[` costs one pass, not one pass per opening.
///
///     let format = try TextExtraction.format(of: "a.html")        // "html"
///     try TextExtraction.checkFormat(format, prefix: firstBytes)  // before the whole read
///     let text = TextExtraction.text(of: bytes, format: format)
public enum TextExtraction {
    public static let formats = ["txt", "md", "markdown", "html", "htm", "pdf"]
    /// How many leading bytes `checkFormat` looks at.
    public static let prefixBytes = 4096

    /// The format a path's extension names (no extension: text); unsupported ones throw.
    public static func format(of path: String) throws(DocumentError) -> String {
        let ext = (path as NSString).pathExtension.lowercased()
        if ext.isEmpty { return "txt" }
        guard formats.contains(ext) else { throw DocumentError("unsupported format .\(ext)") }
        return ext
    }

    /// Check the first bytes against the format before reading the rest: a PDF starts
    /// with `%PDF-` (within its first 1024 bytes, as readers accept); a text format has
    /// no NUL byte.
    public static func checkFormat(_ format: String, prefix: [UInt8]) throws(DocumentError) {
        if format == "pdf" {
            let head = prefix.prefix(1024)
            guard find(Array(head), from: 0, "%PDF-") != nil else {
                throw DocumentError("not a PDF (no %PDF- header)")
            }
        } else if prefix.contains(0) {
            throw DocumentError("not a text document (binary content)")
        }
    }

    /// The text of a document in a text format (`txt`, `md`/`markdown`, `html`/`htm`).
    public static func text(of bytes: UnsafeRawBufferPointer, format: String) -> String {
        switch format {
        case "md", "markdown": return markdown(String(decoding: bytes, as: UTF8.self))
        case "html", "htm": return html(String(decoding: bytes, as: UTF8.self))
        default: return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Markdown without its markup: link targets (`[text](url)` keeps `text`), then runs
    /// of `#*_`>~|-` (headings, emphasis, code fences, quotes, tables, rules) as one space.
    public static func markdown(_ s: String) -> String {
        let b = Array(s.utf8)
        var linked: [UInt8] = []
        linked.reserveCapacity(b.count)
        var closeBracket = NextByte(0x5D)  // ]
        var closeParen = NextByte(0x29)  // )
        var i = 0
        while i < b.count {
            if b[i] == 0x5B, let j = closeBracket.find(in: b, from: i + 1), j + 1 < b.count, b[j + 1] == 0x28,
                let k = closeParen.find(in: b, from: j + 2)
            {
                linked += b[(i + 1)..<j]
                i = k + 1
                continue
            }
            linked.append(b[i])
            i += 1
        }
        var out: [UInt8] = []
        out.reserveCapacity(linked.count)
        var inMarks = false
        for c in linked {
            switch c {
            case 0x23, 0x2A, 0x5F, 0x60, 0x3E, 0x7E, 0x7C, 0x2D:  // # * _ ` > ~ | -
                if !inMarks { out.append(0x20) }
                inMarks = true
            default:
                out.append(c)
                inMarks = false
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// HTML without script/style elements, comments and tags (each becomes a space);
    /// entities decoded. An unclosed `<script>`/`<style>` or `<!--` runs to the end (as
    /// a browser reads it); a `<` with no `>` after it is text.
    public static func html(_ s: String) -> String {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var closeAngle = NextByte(0x3E)  // >
        var i = 0
        scan: while i < b.count {
            guard b[i] == 0x3C else {  // <
                out.append(b[i])
                i += 1
                continue
            }
            if startsWith(b, i + 1, "!--") {
                guard let end = find(b, from: i + 4, "-->") else { break scan }
                out.append(0x20)
                i = end + 3
                continue
            }
            let raw = rawTextElement(b, at: i + 1)
            guard let gt = closeAngle.find(in: b, from: i + 1) else {
                out.append(b[i])
                i += 1
                continue
            }
            out.append(0x20)
            i = gt + 1
            if let raw {  // skip to its end tag, or to the end of the input
                guard let close = findEndTag(b, from: i, raw) else { break scan }
                i = close  // the end tag is removed as a tag on the next turn
            }
        }
        return decodeEntities(String(decoding: out, as: UTF8.self))
    }

    /// `script` or `style` when the bytes at `i` open one (name then space, `/` or `>`).
    static func rawTextElement(_ b: [UInt8], at i: Int) -> String? {
        for name in ["script", "style"] where startsWith(b, i, name, caseInsensitive: true) {
            let after = i + name.utf8.count
            if after >= b.count { return name }
            switch b[after] {
            case 0x20, 0x09, 0x0A, 0x0C, 0x0D, 0x2F, 0x3E: return name
            default: continue
            }
        }
        return nil
    }

    /// Where `</name` (any case) next starts at or after `from`.
    static func findEndTag(_ b: [UInt8], from: Int, _ name: String) -> Int? {
        var i = from
        while i + 1 < b.count {
            if b[i] == 0x3C && b[i + 1] == 0x2F && startsWith(b, i + 2, name, caseInsensitive: true) { return i }
            i += 1
        }
        return nil
    }

    /// Whether `text` (ASCII) is at `i` in `b`.
    static func startsWith(_ b: [UInt8], _ i: Int, _ text: String, caseInsensitive: Bool = false) -> Bool {
        var k = i
        for t in text.utf8 {
            guard k < b.count else { return false }
            let c = caseInsensitive && b[k] >= 0x41 && b[k] <= 0x5A ? b[k] | 0x20 : b[k]
            guard c == t else { return false }
            k += 1
        }
        return true
    }

    /// Where `text` next starts at or after `from`.
    static func find(_ b: [UInt8], from: Int, _ text: String) -> Int? {
        let needle = Array(text.utf8)
        guard from >= 0, from < b.count, !needle.isEmpty else { return nil }
        let at = b.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                ce_find(h.baseAddress! + from, h.count - from, n.baseAddress!, n.count, 0)
            }
        }
        return at < 0 ? nil : from + at
    }

    static let named: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "eacute": "é", "egrave": "è",
        "agrave": "à", "ccedil": "ç", "uuml": "ü", "ouml": "ö", "auml": "ä", "szlig": "ß", "copy": "©", "mdash": "—",
        "ndash": "–", "hellip": "…", "rsquo": "’", "lsquo": "‘", "ldquo": "“", "rdquo": "”",
    ]

    /// `&amp;`, `&#233;`, `&#xe9;` and the common named entities.
    static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semi = after.prefix(12).firstIndex(of: ";") {
                let name = String(after[..<semi])
                var decoded: String?
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    decoded = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map {
                        String(Character($0))
                    }
                } else if name.hasPrefix("#") {
                    decoded = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else {
                    decoded = named[name]
                }
                if let decoded {
                    out += decoded
                    rest = after[after.index(after: semi)...]
                    continue
                }
            }
            out += "&"
            rest = after
        }
        return out + rest
    }
}
