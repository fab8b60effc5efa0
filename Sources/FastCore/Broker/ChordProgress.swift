/// The progress a chord body asks to show on its own result while its header runs
/// (`celeris_progress` in the body's options): how many parts are in, of how many.
/// `true` shows `{"stage": "joining", "parts": N, "done": k}`; an object names the stage
/// and the two counts' keys, e.g. the document workflow's
/// `{"stage": "extracting", "total": "documents", "done": "extracted"}`. Python workers
/// ignore the option.
///
///     let progress = ChordProgress.option(stage: "extracting", total: "documents", done: "extracted")
///     let body = Signature("compare_data_task", options: ["celeris_progress": progress])
public struct ChordProgress: Equatable, Sendable {
    var stage = "joining"
    var totalKey = "parts"
    var doneKey = "done"

    /// The option's value for a body that wants these labels.
    public static func option(stage: String, total: String, done: String) -> JSON {
        ["stage": .string(stage), "total": .string(total), "done": .string(done)]
    }

    /// What `option` (a body's `celeris_progress`) asks for; nil when it asks for nothing.
    init?(option: JSON?) {
        guard let option else { return nil }
        if option == true { return }
        guard let fields = option.objectPairs else { return nil }
        for (key, value) in fields {
            guard let text = value.stringValue, !text.isEmpty else { continue }
            switch key {
            case "stage": stage = text
            case "total": totalKey = text
            case "done": doneKey = text
            default: break
            }
        }
    }

    /// The PROGRESS meta stored on the body's result.
    func meta(ready: Int, size: Int) -> JSON {
        .object([("stage", .string(stage)), (totalKey, .int(Int64(size))), (doneKey, .int(Int64(ready)))])
    }

    /// The `task_status` update published with it.
    func update(taskId: String, ready: Int, size: Int, now: Double) -> JSON {
        .object([
            ("task_id", .string(taskId)), ("state", "PROGRESS"), ("stage", .string(stage)),
            (doneKey, .int(Int64(ready))), (totalKey, .int(Int64(size))), ("ts", .double(now)),
        ])
    }
}
