import Celeris
import Foundation
import WordCountTasks

// wordcount-app FILE [TOP]: counts FILE's words on a worker, printing its progress as it goes,
// then the TOP (default 3) most frequent. Broker: $CELERIS_BROKER_URL or redis://127.0.0.1:6379/0.
let commandLine = CommandLine.arguments
guard commandLine.count == 2 || commandLine.count == 3,
    let text = try? String(contentsOfFile: commandLine[1], encoding: .utf8),
    let top = commandLine.count == 3 ? Int(commandLine[2]) : 3
else {
    print("usage: wordcount-app FILE [TOP]")
    exit(2)
}
let broker = ProcessInfo.processInfo.environment["CELERIS_BROKER_URL"] ?? "redis://127.0.0.1:6379/0"

do {
    let client = try CelerisClient.shared(broker: broker)
    let handle = try await client.send(WordCountTasks.countByName, WordCountArguments(text: text, top: top))
    print("sent wordcount.count \(handle.id)")
    for try await status in handle.states where status.state == "PROGRESS" {
        let progress = try TypedResult.decode(WordCountProgress.self, from: status.result)
        print("counted \(progress.counted) of \(progress.total) words")
    }
    let result = try await handle.get(timeout: .seconds(60))
    let ranked = result.top.map { "\($0.word) \($0.count)" }
    print("\(result.words) words; most frequent: \(ranked.joined(separator: ", "))")
    await client.close()
} catch {
    print("failed: \(error)")  // a task's failure is a TaskFailure: ValueError('top must not be negative')
    exit(1)
}
