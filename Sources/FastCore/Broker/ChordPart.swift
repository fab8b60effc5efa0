import Foundation
import Logging

/// A finished chord header task, waiting to be counted into its chord (a class: an
/// outbox entry, copied on its way to the write, carries a reference, not the fields).
final class ChordPart: Sendable {
    let groupId: String
    let taskId: String
    let groupIndex: Int?
    /// `[1, tid, state, result]` as Celery's Redis backend stores it in `.j`.
    let encoded: String
    let callback: Signature
    /// The header task's message (parent and root of the callback).
    let header: TaskMessage
    /// The token this part claims the chord's finish with: the same on every try, so a
    /// part whose body's enqueue failed still holds its claim when it tries again.
    let claimToken = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()

    init(groupId: String, taskId: String, groupIndex: Int?, encoded: String, callback: Signature, header: TaskMessage) {
        self.groupId = groupId
        self.taskId = taskId
        self.groupIndex = groupIndex
        self.encoded = encoded
        self.callback = callback
        self.header = header
    }
}
