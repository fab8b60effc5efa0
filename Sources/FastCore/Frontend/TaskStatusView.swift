/// `GET /status/{id}` as the scaling guide's FastAPI endpoint answers it,
/// plus Celery's own `state`.
///
///     TaskStatusView.render(record: nil)  // {"status": "Pending...", "state": "PENDING"}
public enum TaskStatusView {
    /// The answer for a result record's JSON text (nil: no record yet).
    public static func render(record: String?) -> JSON {
        guard let record else { return ["status": "Pending...", "state": "PENDING"] }
        guard let json = try? JSONParser.parse(record), let state = json["status"]?.stringValue else {
            return ["status": "Failed", "state": "UNKNOWN", "result": "unreadable result record"]
        }
        let result = json["result"] ?? .null
        switch state {
        case "SUCCESS":
            return ["status": "Completed", "state": "SUCCESS", "result": result]
        case "FAILURE":
            return ["status": "Failed", "state": "FAILURE", "result": .string(TaskFailureText.text(result))]
        case "PENDING":
            return ["status": "Pending...", "state": "PENDING"]
        default:
            return ["status": .string(state), "state": .string(state), "meta": result]
        }
    }
}
