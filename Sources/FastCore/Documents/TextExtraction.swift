import Foundation

/// Plain text from the formats the pipeline reads: .txt, .md, .html/.htm,
/// and .pdf through poppler's `pdftotext` when it is installed.
///
///     let text = try TextExtraction.text(of: bytes, path: "a.html")
public enum TextExtraction {
    public static let formats = ["txt", "md", "markdown", "html", "htm", "pdf"]

    public static func text(of bytes: UnsafeRawBufferPointer, path: String) throws(DocumentError) -> String {
        let ext = (path as NSString).pathExtension.lowercased()
        switch ext {
        case "txt", "": return String(decoding: bytes, as: UTF8.self)
        case "md", "markdown": return markdown(String(decoding: bytes, as: UTF8.self))
        case "html", "htm": return html(String(decoding: bytes, as: UTF8.self))
        case "pdf": return try pdf(path: path)
        default: throw DocumentError("unsupported format .\(ext)")
        }
    }

    /// Markdown without its markup: headings, emphasis, code fences, link targets.
    public static func markdown(_ s: String) -> String {
        var out = s.replacingOccurrences(of: #"\[([^\]]*)\]\([^)]*\)"#, with: "$1", options: .regularExpression)
        out = out.replacingOccurrences(of: #"[#*_`>~|-]+"#, with: " ", options: .regularExpression)
        return out
    }

    /// HTML without script/style, tags and comments; entities decoded.
    public static func html(_ s: String) -> String {
        var out = s.replacingOccurrences(
            of: #"(?is)<(script|style)[^>]*>.*?</\1>"#, with: " ", options: .regularExpression)
        out = out.replacingOccurrences(of: #"(?s)<!--.*?-->"#, with: " ", options: .regularExpression)
        out = out.replacingOccurrences(of: #"<[^>]*>"#, with: " ", options: .regularExpression)
        return decodeEntities(out)
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

    /// `pdftotext -q <file> -`; a clear error when poppler-utils is missing or the file is corrupt.
    static func pdf(path: String) throws(DocumentError) -> String {
        let tool = ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let tool else {
            throw DocumentError("cannot extract \(path): pdftotext not installed (apt-get install poppler-utils)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["-q", "-enc", "UTF-8", path, "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { throw DocumentError("cannot run pdftotext: \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw DocumentError("pdftotext could not read \(path) (exit \(p.terminationStatus)): corrupt or not a PDF")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
