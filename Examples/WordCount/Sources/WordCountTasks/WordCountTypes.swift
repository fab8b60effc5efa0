/// `wordcount.count`'s arguments. A Python caller passes them by position or by name, as to a
/// function `count(text, top)`: `count.delay("to be or not", 2)` or `count.delay(text="to be or not", top=2)`.
public struct WordCountArguments: Codable, Sendable {
    public var text: String
    public var top: Int

    public init(text: String, top: Int) {
        self.text = text
        self.top = top
    }
}

/// `wordcount.count`'s result; Python sees `{"words": 6, "top": [{"word": "be", "count": 2}, …]}`.
public struct WordCountResult: Codable, Sendable {
    public var words: Int
    public var top: [WordFrequency]
}

/// One word and how many times it occurs.
public struct WordFrequency: Codable, Sendable, Equatable {
    public var word: String
    public var count: Int
}

/// The PROGRESS state's meta: words counted so far out of all of them.
public struct WordCountProgress: Codable, Sendable {
    public var counted: Int
    public var total: Int
}
