// libFuzzer target: `POST /tasks` and `/process` as the frontend reads them. The
// input up to its first newline is the request target's query (percent-encoded as
// on the wire), the rest the body. A submission that is accepted must make a
// message whose envelope a worker decodes back to the same task and arguments.
@testable import FastCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTaskSubmission(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let newline = input.firstIndex(of: 0x0A) ?? size
    let query = String(decoding: UnsafeBufferPointer(rebasing: input[..<newline]), as: UTF8.self)
    let body = newline < size ? Array(input[(newline + 1)...]) : []
    let tasks = HTTPRequest(method: "POST", target: "/tasks?" + query, body: body)
    if let submission = try? TaskSubmission(request: tasks, defaultTaskLength: 5) {
        let message = submission.message(routes: TaskRoutes(rules: [("report_*", "reports")]))
        let envelope = message.envelopeBytes()
        guard let back = try? TaskMessage.decode(envelope, queue: message.queue) else {
            preconditionFailure("accepted submission makes an undecodable envelope")
        }
        precondition(
            back.task == message.task && back.bodyJSON() == message.bodyJSON(), "submission changed in transit")
    }
    let process = HTTPRequest(method: "POST", target: "/process?" + query, body: body)
    if let submission = try? TaskSubmission(processRequest: process) {
        _ = submission.message(routes: TaskRoutes()).envelopeBytes()
    }
    return 0
}
