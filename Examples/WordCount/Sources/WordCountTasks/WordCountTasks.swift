import Celeris

/// The example's tasks: give them to `CelerisWorker.main(tasks:)`.
public enum WordCountTasks {
    /// Counts the words of `text` and returns the `top` most frequent (most first, then A to Z),
    /// storing a PROGRESS state after each chunk of 100 words. An async task: while it awaits
    /// it holds one of the worker's slots (`-c`) but no thread.
    public static let count = CelerisTask<WordCountArguments, WordCountResult>(
        "wordcount.count", options: TaskOptions(timeLimit: 60, resultExpires: 3600)
    ) { arguments, ctx in
        guard arguments.top >= 0 else { throw TaskFailure(type: "ValueError", message: "top must not be negative") }
        let words = arguments.text.lowercased().split { !$0.isLetter && !$0.isNumber && $0 != "'" }
        var counts: [Substring: Int] = [:]
        for start in stride(from: 0, to: words.count, by: 100) {
            let chunk = words[start..<min(start + 100, words.count)]
            for word in chunk { counts[word, default: 0] += 1 }
            try ctx.progress(WordCountProgress(counted: start + chunk.count, total: words.count))
            try await ctx.sleep(seconds: 0.05)  // stands in for real I/O: awaiting, the task holds no thread
        }
        let ranked = counts.sorted { a, b in a.value != b.value ? a.value > b.value : a.key < b.key }
        let top = ranked.prefix(arguments.top).map { WordFrequency(word: String($0.key), count: $0.value) }
        return WordCountResult(words: words.count, top: top)
    }

    /// The same task by name and types only: what an app that sends it (and does not run it) needs.
    public static let countByName = TaskReference<WordCountArguments, WordCountResult>("wordcount.count")
}
